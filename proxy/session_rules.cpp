// Session-ending rules and server-return decisions (see session_rules.hpp); also the state names of metrics.hpp.
#include "proxy/session_rules.hpp"

#include "proxy/metrics.hpp"

namespace pgsluice::proxy {

const char* to_string(client_state s) noexcept {
  switch (s) {
    case client_state::login: return "login";
    case client_state::idle: return "idle";
    case client_state::waiting: return "waiting";
    case client_state::active: return "active";
    case client_state::closing: return "closing";
    case client_state::closed: return "closed";
  }
  return "?";
}

const char* to_string(server_state s) noexcept {
  switch (s) {
    case server_state::connecting: return "connecting";
    case server_state::idle: return "idle";
    case server_state::active: return "active";
    case server_state::resetting: return "resetting";
    case server_state::closed: return "closed";
  }
  return "?";
}

const char* to_string(counter c) noexcept {
  switch (c) {
    case counter::clients_accepted: return "clients_accepted";
    case counter::clients_refused: return "clients_refused";
    case counter::logins_failed: return "logins_failed";
    case counter::servers_opened: return "servers_opened";
    case counter::server_login_failures: return "server_login_failures";
    case counter::transactions: return "transactions";
    case counter::queries: return "queries";
    case counter::wait_timeouts: return "wait_timeouts";
    case counter::cancels_forwarded: return "cancels_forwarded";
    case counter::statements_prepared: return "statements_prepared";
    case counter::pinned_sessions: return "pinned_sessions";
    case counter::server_moves: return "server_moves";
  }
  return "?";
}

namespace {
thread_local unsigned metrics_shard = 0;
}  // namespace

void metrics::set_thread_shard(unsigned index) noexcept { metrics_shard = index + 1; }

metrics::shard& metrics::local() noexcept { return shards_[metrics_shard % shard_count]; }

std::int64_t metrics::total(counter c) const noexcept {
  std::int64_t n = 0;
  for (const auto& s : shards_) n += s.counters[static_cast<std::size_t>(c)].load(std::memory_order_relaxed);
  return n;
}

std::int64_t metrics::clients_in(client_state st) const noexcept {
  std::int64_t n = 0;
  for (const auto& s : shards_) n += s.clients[static_cast<std::size_t>(st)].load(std::memory_order_relaxed);
  return n;
}

std::int64_t metrics::servers_in(server_state st) const noexcept {
  std::int64_t n = 0;
  for (const auto& s : shards_) n += s.servers[static_cast<std::size_t>(st)].load(std::memory_order_relaxed);
  return n;
}

const char* to_string(end_reason r) noexcept {
  switch (r) {
    case end_reason::client_terminate: return "client_terminate";
    case end_reason::client_closed: return "client_closed";
    case end_reason::client_protocol_error: return "client_protocol_error";
    case end_reason::client_login_timeout: return "client_login_timeout";
    case end_reason::client_idle_timeout: return "client_idle_timeout";
    case end_reason::idle_transaction_timeout: return "idle_transaction_timeout";
    case end_reason::auth_failed: return "auth_failed";
    case end_reason::login_refused: return "login_refused";
    case end_reason::query_wait_timeout: return "query_wait_timeout";
    case end_reason::shutdown: return "shutdown";
    case end_reason::server_unavailable: return "server_unavailable";
    case end_reason::server_closed: return "server_closed";
    case end_reason::server_protocol_error: return "server_protocol_error";
    case end_reason::server_fatal: return "server_fatal";
  }
  return "?";
}

bool is_server_side(end_reason r) noexcept {
  switch (r) {
    case end_reason::server_unavailable:
    case end_reason::server_closed:
    case end_reason::server_protocol_error:
    case end_reason::server_fatal: return true;
    default: return false;
  }
}

const char* to_string(server_disposition d) noexcept {
  switch (d) {
    case server_disposition::reuse: return "reuse";
    case server_disposition::reset: return "reset";
    case server_disposition::close: return "close";
  }
  return "?";
}

server_disposition decide_server_disposition(end_reason reason, const server_condition& c) noexcept {
  if (is_server_side(reason)) return server_disposition::close;
  // Replies still on the wire or a COPY in progress: the connection's state is unknown to us,
  // and draining it would hold the slot for an unbounded time.
  if (c.replies_outstanding || c.in_copy) return server_disposition::close;
  if (c.transaction_status != 'I' || c.needs_reset) return server_disposition::reset;
  return server_disposition::reuse;
}

bool may_release_at_ready(bool transaction_mode, bool pinned, bool replies_outstanding, char transaction_status) noexcept {
  return transaction_mode && !pinned && !replies_outstanding && transaction_status == 'I';
}

}  // namespace pgsluice::proxy

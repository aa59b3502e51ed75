// Session-ending rules: the end reasons, and whether a server connection is reused, reset or closed.
#include "proxy/session_rules.hpp"

namespace pgsluice::proxy {

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

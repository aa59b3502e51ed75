// The counters' names and the per-thread shards of metrics.hpp.
#include "proxy/metrics.hpp"

namespace pgsluice::proxy {

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

}  // namespace pgsluice::proxy

// The counters' names, the per-thread shards of metrics.hpp and the sums a scrape reads.
#include "proxy/metrics.hpp"

#include <algorithm>

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
    case counter::client_received_bytes: return "client_received_bytes";
    case counter::client_sent_bytes: return "client_sent_bytes";
    case counter::failovers: return "failovers";
    case counter::config_reloads: return "config_reloads";
    case counter::config_reload_failures: return "config_reload_failures";
    case counter::read_retries: return "read_retries";
    case counter::pipelined_statements: return "pipelined_statements";
    case counter::client_parks: return "client_parks";
  }
  return "?";
}

namespace {
thread_local unsigned metrics_shard = 0;

// 0-9 then A-Z, as SQLSTATE characters are; -1 for anything else.
int base36(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'Z') return c - 'A' + 10;
  return -1;
}
char base36_char(std::size_t v) noexcept { return static_cast<char>(v < 10 ? '0' + v : 'A' + (v - 10)); }
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

void metrics::observe_pool_wait(std::chrono::nanoseconds waited) noexcept {
  const double seconds = std::chrono::duration<double>(waited).count();
  const auto bucket = static_cast<std::size_t>(
      std::lower_bound(pool_wait_bounds.begin(), pool_wait_bounds.end(), seconds) - pool_wait_bounds.begin());
  auto& s = local();
  s.pool_wait_buckets[bucket].fetch_add(1, std::memory_order_relaxed);
  s.pool_wait_ns.fetch_add(static_cast<std::uint64_t>(std::max<std::int64_t>(waited.count(), 0)), std::memory_order_relaxed);
}

metrics::histogram_snapshot metrics::pool_waits() const noexcept {
  histogram_snapshot h;
  std::uint64_t ns = 0;
  for (const auto& s : shards_) {
    for (std::size_t i = 0; i < h.counts.size(); ++i) h.counts[i] += s.pool_wait_buckets[i].load(std::memory_order_relaxed);
    ns += s.pool_wait_ns.load(std::memory_order_relaxed);
  }
  h.sum_seconds = static_cast<double>(ns) / 1e9;
  return h;
}

void metrics::error_sent(std::string_view sqlstate) noexcept {
  std::size_t index = error_class_count - 1;
  if (sqlstate.size() == 5) {
    const int a = base36(sqlstate[0]);
    const int b = base36(sqlstate[1]);
    if (a >= 0 && b >= 0) index = static_cast<std::size_t>(a * 36 + b);
  }
  errors_[index].fetch_add(1, std::memory_order_relaxed);
}

std::vector<std::pair<std::string, std::int64_t>> metrics::errors_by_class() const {
  std::vector<std::pair<std::string, std::int64_t>> out;
  for (std::size_t i = 0; i < error_class_count; ++i) {
    const std::int64_t n = errors_[i].load(std::memory_order_relaxed);
    if (n == 0) continue;
    out.emplace_back(i + 1 == error_class_count ? std::string("invalid") : std::string{base36_char(i / 36), base36_char(i % 36)}, n);
  }
  return out;
}

void metrics::reload_done(bool ok, std::int64_t unix_seconds) noexcept {
  add(ok ? counter::config_reloads : counter::config_reload_failures);
  last_reload_ok_.store(ok, std::memory_order_relaxed);
  last_reload_time_.store(unix_seconds, std::memory_order_relaxed);
}

}  // namespace pgsluice::proxy

// The lag monitor (see monitor.hpp).
#include "proxy/monitor.hpp"

#include <charconv>
#include <cstdio>

#include <spdlog/spdlog.h>

#include "proxy/cluster.hpp"
#include "proxy/pool.hpp"
#include "proxy/runtime.hpp"
#include "proxy/server_connection.hpp"

namespace pgsluice::proxy {

namespace {

// Positions as numbers of bytes (pg_lsn minus 0/0 is numeric), so no LSN text is parsed on the
// server's side of things; works on a primary and on a standby alike.
constexpr std::string_view sample_sql =
    "SELECT pg_is_in_recovery(), "
    "(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END - '0/0'::pg_lsn)::text, "
    "(extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp()) * 1000)::bigint::text";

template <class T>
std::optional<T> number(const std::optional<std::string>& s) {
  if (!s) return std::nullopt;
  T v{};
  const auto* end = s->data() + s->size();
  const auto r = std::from_chars(s->data(), end, v);
  if (r.ec != std::errc{} || r.ptr != end) return std::nullopt;
  return v;
}

}  // namespace

std::optional<std::uint64_t> parse_lsn(std::string_view text) noexcept {
  const auto slash = text.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 >= text.size()) return std::nullopt;
  std::uint32_t hi = 0, lo = 0;
  const auto a = std::from_chars(text.data(), text.data() + slash, hi, 16);
  const auto b = std::from_chars(text.data() + slash + 1, text.data() + text.size(), lo, 16);
  if (a.ec != std::errc{} || a.ptr != text.data() + slash || b.ec != std::errc{} || b.ptr != text.data() + text.size())
    return std::nullopt;
  return (std::uint64_t{hi} << 32) | lo;
}

std::string format_lsn(std::uint64_t lsn) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%X/%X", static_cast<unsigned>(lsn >> 32), static_cast<unsigned>(lsn & 0xffffffffu));
  return buf;
}

std::optional<wal_sample> parse_wal_sample(const std::vector<std::optional<std::string>>& row) {
  if (row.size() < 3 || !row[0]) return std::nullopt;
  wal_sample s;
  s.in_recovery = *row[0] == "t";
  s.position = number<std::uint64_t>(row[1]);
  s.replay_age_ms = number<std::int64_t>(row[2]);
  return s;
}

cluster_monitor::cluster_monitor(runtime& rt, std::shared_ptr<cluster> c, std::chrono::milliseconds interval)
    : rt_(rt), cluster_(c), interval_(interval), conns_(c->backends().size()) {}

void cluster_monitor::start() {
  worker& w = *rt_.workers().front();
  timer_.emplace(w.io());
  asio::co_spawn(w.io(), [self = shared_from_this()]() { return self->run(); }, [](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      spdlog::error("lag monitor failed with an exception: {}", ex.what());
    }
  });
}

void cluster_monitor::stop() {
  stopped_.store(true, std::memory_order_relaxed);
  // The timer lives on the first worker's thread: cancel it there.
  if (timer_) asio::post(timer_->get_executor(), [self = shared_from_this()] { self->timer_->cancel(); });
}

awaitable<std::optional<wal_sample>> cluster_monitor::sample(std::size_t i) {
  auto c = cluster_.lock();
  if (!c) co_return std::nullopt;
  auto& b = *c->backends()[i];
  const auto timeout = b.pool->cfg().connect_timeout;
  auto& conn = conns_[i];
  if (!conn || !conn->is_open()) {
    worker& w = *rt_.workers().front();
    conn = std::make_shared<server_connection>(rt_, rt_.next_server_id(), w.io(), w.index());
    auto creds = b.pool->login_credentials();
    if (auto err = co_await conn->login(b.pool->cfg().target, creds, timeout)) {
      spdlog::debug("monitor backend={}:{} login_failed error=\"{}\"", b.cfg.host, b.cfg.port, err->message);
      conn.reset();
      co_return std::nullopt;
    }
    conn->set_state(server_state::active);
  }
  auto rows = co_await conn->query_rows(sample_sql, {}, timeout);
  if (rows.error || rows.rows.empty()) {
    conn->close();
    conn.reset();
    co_return std::nullopt;
  }
  co_return parse_wal_sample(rows.rows.front());
}

awaitable<void> cluster_monitor::run() {
  std::vector<std::optional<wal_sample>> samples;
  while (!stopped_.load(std::memory_order_relaxed)) {
    samples.assign(conns_.size(), std::nullopt);
    for (std::size_t i = 0; i < conns_.size() && !stopped_.load(std::memory_order_relaxed); ++i) {
      auto c = cluster_.lock();
      if (!c || !c->backends()[i]->pool->can_log_in_alone()) continue;  // no client has logged in yet (SCRAM keys)
      c.reset();
      samples[i] = co_await sample(i);
    }
    auto c = cluster_.lock();
    if (!c) break;
    // The primary's position this round is what replicas are measured against.
    std::optional<std::uint64_t> primary_pos;
    for (std::size_t i = 0; i < samples.size(); ++i) {
      if (samples[i] && !samples[i]->in_recovery && c->backends()[i]->role == router::role::primary)
        primary_pos = samples[i]->position;
    }
    for (std::size_t i = 0; i < samples.size(); ++i) {
      auto& b = *c->backends()[i];
      const auto& s = samples[i];
      if (b.role != router::role::replica) {
        if (s && s->position) b.position.store(*s->position, std::memory_order_relaxed);
        continue;
      }
      const auto before = b.health.load(std::memory_order_relaxed);
      if (!s || !s->position) {
        b.lag_bytes.store(cluster::unknown, std::memory_order_relaxed);
        b.lag_ms.store(-1, std::memory_order_relaxed);
        if (before == router::health::up || before == router::health::lagging) {
          b.set_health(router::health::down);
          spdlog::warn("backend={}:{} cluster={} status=down reason=\"no lag sample\"", b.cfg.host, b.cfg.port, c->name());
        }
        continue;
      }
      b.position.store(*s->position, std::memory_order_relaxed);
      if (primary_pos) {
        const std::uint64_t behind = *primary_pos > *s->position ? *primary_pos - *s->position : 0;
        b.lag_bytes.store(behind, std::memory_order_relaxed);
        b.lag_ms.store(behind == 0 ? 0 : s->replay_age_ms.value_or(-1), std::memory_order_relaxed);
      }
      if (before == router::health::down) {
        b.set_health(router::health::up);
        spdlog::info("backend={}:{} cluster={} status=up", b.cfg.host, b.cfg.port, c->name());
      }
    }
    c.reset();
    if (stopped_.load(std::memory_order_relaxed)) break;
    timer_->expires_after(interval_);
    co_await timer_->async_wait(nothrow_awaitable);
  }
  for (auto& conn : conns_) {
    if (conn) conn->close();
  }
}

}  // namespace pgsluice::proxy

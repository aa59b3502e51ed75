// Per-database counters: shards, sums and PgBouncer's averages (see pool_stats.hpp).
#include "proxy/pool_stats.hpp"

namespace pgsluice::proxy {

namespace {
thread_local unsigned stats_shard = 0;
constexpr std::uint64_t usec_per_sec = 1'000'000;

std::uint64_t delta(std::uint64_t cur, std::uint64_t old) noexcept { return cur >= old ? cur - old : 0; }
}  // namespace

stats_totals& stats_totals::operator+=(const stats_totals& o) noexcept {
  xact_count += o.xact_count;
  query_count += o.query_count;
  bytes_received += o.bytes_received;
  bytes_sent += o.bytes_sent;
  xact_time_us += o.xact_time_us;
  query_time_us += o.query_time_us;
  wait_time_us += o.wait_time_us;
  return *this;
}

stats_totals average_of(const stats_totals& cur, const stats_totals& old, std::chrono::microseconds elapsed) noexcept {
  stats_totals avg;
  if (elapsed.count() <= 0) return avg;
  const auto dur = static_cast<std::uint64_t>(elapsed.count());
  const std::uint64_t queries = delta(cur.query_count, old.query_count);
  const std::uint64_t xacts = delta(cur.xact_count, old.xact_count);
  avg.query_count = usec_per_sec * queries / dur;
  avg.xact_count = usec_per_sec * xacts / dur;
  avg.bytes_received = usec_per_sec * delta(cur.bytes_received, old.bytes_received) / dur;
  avg.bytes_sent = usec_per_sec * delta(cur.bytes_sent, old.bytes_sent) / dur;
  if (queries > 0) avg.query_time_us = delta(cur.query_time_us, old.query_time_us) / queries;
  if (xacts > 0) avg.xact_time_us = delta(cur.xact_time_us, old.xact_time_us) / xacts;
  avg.wait_time_us = usec_per_sec * delta(cur.wait_time_us, old.wait_time_us) / dur;
  return avg;
}

// --- database_stats ----------------------------------------------------------------------------

database_stats::database_stats(std::string name, unsigned shards)
    : name_(std::move(name)), count_(shards == 0 ? 1 : shards), shards_(std::make_unique<shard[]>(count_)) {}

void database_stats::set_thread_shard(unsigned index) noexcept { stats_shard = index + 1; }

database_stats::shard& database_stats::local() noexcept { return shards_[stats_shard % count_]; }

stats_totals database_stats::totals() const noexcept {
  std::array<std::uint64_t, field_count> sum{};
  for (unsigned i = 0; i < count_; ++i) {
    for (std::size_t f = 0; f < field_count; ++f) sum[f] += shards_[i].v[f].load(std::memory_order_relaxed);
  }
  stats_totals t;
  t.xact_count = sum[static_cast<std::size_t>(field::xact_count)];
  t.query_count = sum[static_cast<std::size_t>(field::query_count)];
  t.bytes_received = sum[static_cast<std::size_t>(field::bytes_received)];
  t.bytes_sent = sum[static_cast<std::size_t>(field::bytes_sent)];
  t.xact_time_us = sum[static_cast<std::size_t>(field::xact_time)];
  t.query_time_us = sum[static_cast<std::size_t>(field::query_time)];
  t.wait_time_us = sum[static_cast<std::size_t>(field::wait_time)];
  return t;
}

// --- stats_registry ----------------------------------------------------------------------------

stats_registry::stats_registry(unsigned workers) : shards_(workers + 1) {
  // As PgBouncer's stats_setup: the first window starts one second back.
  new_stamp_ = clock::now();
  old_stamp_ = new_stamp_ - std::chrono::seconds(1);
}

std::shared_ptr<database_stats> stats_registry::get(std::string_view database) {
  std::lock_guard lk(mu_);
  auto it = entries_.find(database);
  if (it == entries_.end()) {
    entry e;
    e.stats = std::make_shared<database_stats>(std::string(database), shards_);
    it = entries_.emplace(std::string(database), std::move(e)).first;
  }
  return it->second.stats;
}

std::vector<stats_registry::row> stats_registry::snapshot(clock::time_point now) const {
  std::lock_guard lk(mu_);
  std::vector<row> out;
  out.reserve(entries_.size());
  const auto elapsed = std::chrono::duration_cast<std::chrono::microseconds>(now - old_stamp_);
  for (const auto& [name, e] : entries_) {
    row r;
    r.database = name;
    r.total = e.stats->totals();
    r.average = average_of(r.total, e.older, elapsed);
    out.push_back(std::move(r));
  }
  return out;
}

void stats_registry::tick(clock::time_point now, std::chrono::milliseconds period) {
  std::lock_guard lk(mu_);
  if (now - new_stamp_ < period) return;
  old_stamp_ = new_stamp_;
  new_stamp_ = now;
  for (auto& [name, e] : entries_) {
    e.older = e.newer;
    e.newer = e.stats->totals();
  }
}

}  // namespace pgsluice::proxy

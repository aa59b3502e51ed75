// Per-database traffic counters (PgBouncer's SHOW STATS): bumped on the relay's hot path per worker thread, summed and averaged on read.
//
// Every client-facing database has one database_stats for the life of the process (a reload
// that rebuilds its pools keeps its counters). Writers are the session coroutines of every
// worker: each thread adds to its own cache line with relaxed atomics, so the hot path takes
// no lock, shares no line between cores and allocates nothing; readers (the admin console,
// /metrics) sum the shards. Counters only grow, so a sum read while writers run is a valid
// recent value.
//
// What is counted, as PgBouncer counts it (its stats.c):
//   query_count      Query and Sync messages relayed to a server
//   xact_count       transactions completed (ReadyForQuery 'I' after work on a server)
//   bytes_received   bytes read from clients;  bytes_sent: bytes read from servers
//   query_time_us    from a query's arrival to its ReadyForQuery
//   xact_time_us     from a transaction's first query to its ending ReadyForQuery 'I'
//   wait_time_us     time clients spent queued for a server (or held by PAUSE)
// Averages are PgBouncer's: counts and bytes per second, times per query / per transaction,
// wait per second, over the window from the stats snapshot before last to now (one to two
// stats_period).
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace pgsluice::proxy {

// Totals (or averages) of one database.
struct stats_totals {
  std::uint64_t xact_count = 0;
  std::uint64_t query_count = 0;
  std::uint64_t bytes_received = 0;
  std::uint64_t bytes_sent = 0;
  std::uint64_t xact_time_us = 0;
  std::uint64_t query_time_us = 0;
  std::uint64_t wait_time_us = 0;
  stats_totals& operator+=(const stats_totals& o) noexcept;
  bool operator==(const stats_totals&) const = default;
};

// PgBouncer's calc_average: `cur` now, `old` the snapshot taken `elapsed` ago.
stats_totals average_of(const stats_totals& cur, const stats_totals& old, std::chrono::microseconds elapsed) noexcept;

class database_stats {
 public:
  enum class field : std::uint8_t { xact_count, query_count, bytes_received, bytes_sent, xact_time, query_time, wait_time };
  static constexpr std::size_t field_count = 7;

  database_stats(std::string name, unsigned shards);
  database_stats(const database_stats&) = delete;
  database_stats& operator=(const database_stats&) = delete;

  const std::string& name() const noexcept { return name_; }

  // Hot path: one relaxed add on this thread's line.
  void add(field f, std::uint64_t n) noexcept {
    local().v[static_cast<std::size_t>(f)].fetch_add(n, std::memory_order_relaxed);
  }

  stats_totals totals() const noexcept;

  // Each worker thread calls this once (worker i uses shard i + 1; other threads shard 0).
  static void set_thread_shard(unsigned index) noexcept;

 private:
  struct alignas(64) shard {
    std::array<std::atomic<std::uint64_t>, field_count> v{};
  };
  shard& local() noexcept;

  std::string name_;
  unsigned count_;
  std::unique_ptr<shard[]> shards_;
};

// Every database's counters by name, and the stats_period window of their averages.
class stats_registry {
 public:
  using clock = std::chrono::steady_clock;

  explicit stats_registry(unsigned workers);

  // The counters of `database`, created on first use and kept for the life of the process.
  std::shared_ptr<database_stats> get(std::string_view database);

  struct row {
    std::string database;
    stats_totals total;
    stats_totals average;
  };
  // One row per database that has counters, by name.
  std::vector<row> snapshot(clock::time_point now) const;

  // Called about once a second: every `period` the window moves on (PgBouncer's refresh_stats).
  void tick(clock::time_point now, std::chrono::milliseconds period);

 private:
  struct entry {
    std::shared_ptr<database_stats> stats;
    stats_totals newer;  // at the last tick
    stats_totals older;  // at the tick before
  };
  unsigned shards_;
  mutable std::mutex mu_;
  std::map<std::string, entry, std::less<>> entries_;
  clock::time_point old_stamp_;
  clock::time_point new_stamp_;
};

}  // namespace pgsluice::proxy

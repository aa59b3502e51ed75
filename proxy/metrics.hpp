// Process-wide counters and gauges, updated by the state setters of sessions, server connections and pools.
//
// Plain atomics so any worker thread can update them without a lock; readers (the /metrics
// scrape, the shutdown log's totals) only load them. Gauges per state are kept in step by the
// state changes of client sessions and server connections (DESIGN.md convention 6).
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pgsluice::proxy {

// States of a client connection as seen by the pooler (PgBouncer's cl_* lists).
enum class client_state : std::uint8_t {
  login,    // startup, authentication, waiting for the first server parameters
  idle,     // logged in, no server attached, waiting for the client's next message
  waiting,  // queued for a server connection
  active,   // a server connection is attached
  closing,  // ending: server being returned or reset, final message being sent
  closed,
};
inline constexpr std::size_t client_state_count = 6;

// States of a server connection (PgBouncer's sv_* lists).
enum class server_state : std::uint8_t {
  connecting,  // TCP connect and login in progress
  idle,        // in the pool, clean, ready for any client
  active,      // attached to a client
  resetting,   // running the reset query or a rollback before going back to the pool
  closed,
};
inline constexpr std::size_t server_state_count = 5;

// Event counters (monotonic).
enum class counter : std::uint8_t {
  clients_accepted,
  clients_refused,        // too many clients, shutting down
  logins_failed,          // authentication failures
  servers_opened,
  server_login_failures,
  transactions,           // ReadyForQuery 'I' seen by a client
  queries,                // Query and Sync messages forwarded
  wait_timeouts,          // clients refused after query_wait_timeout
  cancels_forwarded,
  statements_prepared,    // Parse injected on a server for a client's statement
  pinned_sessions,        // transaction-mode clients pinned to their server
  server_moves,           // server sockets moved to another worker's event loop
  // --- /metrics ---
  client_received_bytes,   // read from client sockets
  client_sent_bytes,       // written (or queued) to client sockets
  failovers,               // a primary replaced after its failure
  config_reloads,          // SIGHUP reloads that took effect
  config_reload_failures,  // SIGHUP reloads refused: the config in use was kept
  read_retries,            // reads run again on another backend after theirs failed before replying
  pipelined_statements,    // statements queued on a lane behind other clients' (pipeline_depth)
  client_parks,            // idle clients whose relay coroutines were put away until their next bytes
};
inline constexpr std::size_t counter_count = 20;
const char* to_string(counter c) noexcept;

// Counters and per-state gauges, sharded per thread: each worker updates its own cache line
// (no line bouncing between cores on the hot path); readers sum the shards. A gauge may be
// raised on one shard and lowered on another (a server moving between workers): only the sum
// is meaningful.
class metrics {
 public:
  // Called once by each event-loop thread (worker i uses shard i + 1; other threads shard 0).
  static void set_thread_shard(unsigned index) noexcept;

  void add(counter c, std::int64_t n = 1) noexcept { local().counters[static_cast<std::size_t>(c)].fetch_add(n, std::memory_order_relaxed); }
  void client_enters(client_state s, std::int64_t n = 1) noexcept {
    local().clients[static_cast<std::size_t>(s)].fetch_add(n, std::memory_order_relaxed);
  }
  void client_moves(client_state from, client_state to) noexcept { move_one(local().clients, from, to); }
  void server_enters(server_state s, std::int64_t n = 1) noexcept {
    local().servers[static_cast<std::size_t>(s)].fetch_add(n, std::memory_order_relaxed);
  }
  void server_moves(server_state from, server_state to) noexcept { move_one(local().servers, from, to); }

  std::int64_t total(counter c) const noexcept;
  std::int64_t clients_in(client_state s) const noexcept;
  std::int64_t servers_in(server_state s) const noexcept;

  // --- /metrics -----------------------------------------------------------------------------
  // Time a client spent queued for a server connection (pool full), in a histogram with these
  // upper bounds (seconds); one more bucket counts the longer waits.
  static constexpr std::array<double, 14> pool_wait_bounds{0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                           0.5,   1.0,   2.5,  5.0,   10.0, 30.0, 60.0};
  void observe_pool_wait(std::chrono::nanoseconds waited) noexcept;
  struct histogram_snapshot {
    std::array<std::uint64_t, pool_wait_bounds.size() + 1> counts{};  // per bucket, not cumulative
    double sum_seconds = 0;
  };
  histogram_snapshot pool_waits() const noexcept;

  // An ErrorResponse sent to a client, counted by the class of its SQLSTATE (first two characters).
  void error_sent(std::string_view sqlstate) noexcept;
  // Classes seen so far ("22", "28", ...) with their counts, in class order.
  std::vector<std::pair<std::string, std::int64_t>> errors_by_class() const;

  // Outcome of the last SIGHUP reload (true until one fails) and when it happened (Unix seconds, 0: none).
  void reload_done(bool ok, std::int64_t unix_seconds) noexcept;
  bool last_reload_ok() const noexcept { return last_reload_ok_.load(std::memory_order_relaxed); }
  std::int64_t last_reload_time() const noexcept { return last_reload_time_.load(std::memory_order_relaxed); }

 private:
  static constexpr std::size_t shard_count = 65;
  struct alignas(64) shard {
    std::array<std::atomic<std::int64_t>, counter_count> counters{};
    std::array<std::atomic<std::int64_t>, client_state_count> clients{};
    std::array<std::atomic<std::int64_t>, server_state_count> servers{};
    std::array<std::atomic<std::uint64_t>, pool_wait_bounds.size() + 1> pool_wait_buckets{};
    std::atomic<std::uint64_t> pool_wait_ns{0};
  };
  shard& local() noexcept;
  // One connection leaves state `from` for state `to` (gauges by state).
  template <class Array, class State>
  static void move_one(Array& gauges, State from, State to) noexcept {
    gauges[static_cast<std::size_t>(from)].fetch_sub(1, std::memory_order_relaxed);
    gauges[static_cast<std::size_t>(to)].fetch_add(1, std::memory_order_relaxed);
  }

  std::array<shard, shard_count> shards_{};
  // Errors are rare: one array for every thread, indexed by the class's two base-36 characters.
  static constexpr std::size_t error_class_count = 36 * 36 + 1;  // the last one: not a valid SQLSTATE
  std::array<std::atomic<std::int64_t>, error_class_count> errors_{};
  std::atomic<bool> last_reload_ok_{true};
  std::atomic<std::int64_t> last_reload_time_{0};
};

}  // namespace pgsluice::proxy

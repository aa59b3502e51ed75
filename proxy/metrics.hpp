// Process-wide counters and gauges, updated by the state setters of sessions, server connections and pools.
//
// Plain atomics so any worker thread can update them without a lock; readers (today the shutdown
// log's totals) only load them. Gauges per state are kept in step by the state changes of client
// sessions and server connections (DESIGN.md convention 6).
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

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
};
inline constexpr std::size_t counter_count = 12;
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

 private:
  static constexpr std::size_t shard_count = 65;
  struct alignas(64) shard {
    std::array<std::atomic<std::int64_t>, counter_count> counters{};
    std::array<std::atomic<std::int64_t>, client_state_count> clients{};
    std::array<std::atomic<std::int64_t>, server_state_count> servers{};
  };
  shard& local() noexcept;
  // One connection leaves state `from` for state `to` (gauges by state).
  template <class Array, class State>
  static void move_one(Array& gauges, State from, State to) noexcept {
    gauges[static_cast<std::size_t>(from)].fetch_sub(1, std::memory_order_relaxed);
    gauges[static_cast<std::size_t>(to)].fetch_add(1, std::memory_order_relaxed);
  }

  std::array<shard, shard_count> shards_{};
};

}  // namespace pgsluice::proxy

// Process-wide counters and gauges, updated by the state setters of sessions, server connections and pools.
//
// Plain atomics so any worker thread can update them without a lock; the admin console and the
// /metrics endpoint (a later issue) only read them. Gauges per state are kept in step by
// client_session::set_state and server_connection::set_state (DESIGN.md convention 6).
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
const char* to_string(client_state s) noexcept;

// States of a server connection (PgBouncer's sv_* lists).
enum class server_state : std::uint8_t {
  connecting,  // TCP connect and login in progress
  idle,        // in the pool, clean, ready for any client
  active,      // attached to a client
  resetting,   // running the reset query or a rollback before going back to the pool
  closed,
};
inline constexpr std::size_t server_state_count = 5;
const char* to_string(server_state s) noexcept;

struct metrics {
  std::array<std::atomic<std::int64_t>, client_state_count> clients{};
  std::array<std::atomic<std::int64_t>, server_state_count> servers{};

  std::atomic<std::uint64_t> clients_accepted{0};
  std::atomic<std::uint64_t> clients_refused{0};       // too many clients, shutting down, bad startup
  std::atomic<std::uint64_t> logins_failed{0};         // authentication failures
  std::atomic<std::uint64_t> servers_opened{0};
  std::atomic<std::uint64_t> server_login_failures{0};
  std::atomic<std::uint64_t> transactions{0};          // ReadyForQuery 'I' seen by a client
  std::atomic<std::uint64_t> queries{0};               // Query and Sync messages forwarded
  std::atomic<std::uint64_t> wait_timeouts{0};         // clients refused after query_wait_timeout
  std::atomic<std::uint64_t> cancels_forwarded{0};
  std::atomic<std::uint64_t> statements_prepared{0};   // Parse injected on a server for a client's statement
  std::atomic<std::uint64_t> pinned_sessions{0};       // transaction-mode clients pinned to their server
  std::atomic<std::uint64_t> server_moves{0};          // server sockets moved to another worker's event loop

  static void move(std::atomic<std::int64_t>& from, std::atomic<std::int64_t>& to) noexcept {
    from.fetch_sub(1, std::memory_order_relaxed);
    to.fetch_add(1, std::memory_order_relaxed);
  }
};

}  // namespace pgsluice::proxy

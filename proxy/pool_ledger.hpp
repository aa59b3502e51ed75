// The decisions of one connection pool, without sockets: who gets which server, who waits, what to open or close.
//
// One pool serves one (database, user) pair for every worker thread; its limit is global, as
// PgBouncer users have long asked for. The ledger is a plain state machine (DESIGN.md
// convention 5): callers report events (a client asks, a server is released, a connection
// attempt ends, time passes) under the pool's mutex and carry out the decisions it returns.
// Clients are served first come, first served; idle servers are reused last in, first out
// (warm caches, and the oldest idle ones reach server_idle_timeout) and preferably from the
// asking client's own worker thread, so a server socket rarely changes event loop. One bounded
// exception to strict FIFO, for the same reason: a server freed on worker W may go to a waiter
// of W among the first `locality_window` waiters, unless the oldest waiter has already waited
// `locality_grace`.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <limits>
#include <optional>
#include <vector>

namespace pgsluice::proxy {

using server_id = std::uint64_t;
using waiter_id = std::uint64_t;
using time_point = std::chrono::steady_clock::time_point;

struct pool_limits {
  std::uint32_t pool_size = 20;
  std::uint32_t min_pool_size = 0;
  std::uint32_t reserve_pool_size = 0;
  std::chrono::milliseconds reserve_pool_timeout{5000};
};

// A budget shared by several pools (max_db_connections, max_user_connections).
class open_gate {
 public:
  virtual ~open_gate() = default;
  // Takes one connection from the budget; false when exhausted.
  virtual bool try_open() = 0;
  // Gives one back (a connection closed or an attempt failed).
  virtual void closed() = 0;
};

// What a client gets: an idle server, or the right to open a new connection itself.
struct grant {
  enum class kind : std::uint8_t { idle_server, connect };
  waiter_id waiter = 0;
  kind k = kind::connect;
  server_id server = 0;
};

struct pool_counts {
  std::uint32_t idle = 0;
  std::uint32_t active = 0;      // handed to a client (or being reset)
  std::uint32_t connecting = 0;  // login in progress
  std::uint32_t waiting = 0;     // clients queued
  std::uint32_t total() const noexcept { return idle + active + connecting; }
};

// How many connections to open so that `total` reaches `min_pool_size`, never above `pool_size`.
std::uint32_t connections_to_open(std::uint32_t total, std::uint32_t min_pool_size, std::uint32_t pool_size) noexcept;

// Connection limit for the oldest waiting client: the pool size, plus the reserve once it has
// waited reserve_pool_timeout (PgBouncer's reserve_pool semantics).
std::uint32_t effective_limit(const pool_limits& limits, std::chrono::steady_clock::duration waited) noexcept;

class pool_ledger {
 public:
  static constexpr std::size_t locality_window = 8;
  static constexpr std::chrono::milliseconds locality_grace{50};

  pool_ledger(pool_limits limits, unsigned workers, open_gate* gate = nullptr);

  // A client on `worker` asks for a server. Returns its grant at once, or nullopt when it must
  // wait (it is queued; a later call returns a grant for it).
  std::optional<grant> request(waiter_id w, unsigned worker, time_point now);

  // An idle server for a client on `worker` when nobody is queued (no waiting, no connecting:
  // nullopt means "ask with request()").
  std::optional<server_id> try_take_idle(unsigned worker);

  // A waiting client gives up (timeout, disconnect). False when it is not queued any more
  // (a grant for it was already returned; the caller must then use or release that grant).
  bool cancel(waiter_id w);

  // A connection attempt made under a `connect` grant (or open_for_min) ended. On success the
  // server is now active for the client that made it (or idle, when `for_client` is false).
  void connect_finished(bool ok, bool for_client, server_id s, unsigned worker, time_point now, time_point created,
                        std::vector<grant>& out);

  // A client is done with an active server. `reusable`: it is clean and may serve another client;
  // otherwise it is being closed.
  void release(server_id s, unsigned worker, bool reusable, time_point now, time_point created,
               std::vector<grant>& out);

  // Grants what can be granted now (e.g. after the reserve timeout passed or a shared budget freed up).
  void dispatch(time_point now, std::vector<grant>& out);

  // Idle servers to close: idle longer than `idle_timeout` (keeping min_pool_size) or older than
  // `lifetime` (0 = no limit). They are removed from the ledger; the caller closes them.
  std::vector<server_id> expire(time_point now, std::chrono::milliseconds idle_timeout,
                                std::chrono::milliseconds lifetime);

  // Removes every idle server (shutdown, reload of the backend address); the caller closes them.
  std::vector<server_id> take_all_idle();

  // Connections to open for min_pool_size; they are counted as connecting at once.
  std::uint32_t open_for_min();

  void set_limits(const pool_limits& l) noexcept { limits_ = l; }
  // A limit on servers handed to clients at once (pool_size = "auto"), below the pool size:
  // idle servers beyond it stay open, clients beyond it wait. Raising it grants nothing by
  // itself: dispatch() (or the next release) does.
  void set_active_limit(std::uint32_t n) noexcept { active_limit_ = n; }
  std::uint32_t active_limit() const noexcept { return active_limit_; }
  const pool_limits& limits() const noexcept { return limits_; }
  pool_counts counts() const noexcept;
  // Position of a queued client (0 = next), or nullopt.
  std::optional<std::size_t> queue_position(waiter_id w) const noexcept;

 private:
  struct idle_entry {
    server_id id;
    time_point since;
    time_point created;
  };
  struct waiter {
    waiter_id id;
    unsigned worker;
    time_point since;
  };

  std::optional<server_id> take_idle(unsigned worker);
  // Index of the waiter to serve next from the idle servers (0 = the oldest).
  std::size_t pick_waiter(time_point now) const noexcept;
  bool may_open(time_point now, time_point waiter_since);
  bool may_hand_out() const noexcept { return active_ + client_connecting_ < active_limit_; }
  void closed_one();

  pool_limits limits_;
  open_gate* gate_;
  std::vector<std::vector<idle_entry>> idle_;  // per worker, most recently idle last
  std::uint32_t idle_count_ = 0;
  std::uint32_t active_ = 0;
  std::uint32_t connecting_ = 0;
  std::uint32_t client_connecting_ = 0;  // of connecting_, those opened for a client
  std::uint32_t active_limit_ = std::numeric_limits<std::uint32_t>::max();
  std::deque<waiter> waiters_;
};

}  // namespace pgsluice::proxy

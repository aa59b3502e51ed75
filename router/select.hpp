// Which backend of a cluster serves a transaction or a session: a pure function of the backends' states and the routing policy.
//
// A client-facing database is a cluster of backends (a primary and streaming replicas), each
// with its own pool. The proxy asks this function at each transaction boundary (transaction
// pooling) or at login (session pooling) and never decides routing itself (DESIGN.md, "Where
// routing sits"). Inputs are a snapshot of what the health and lag bookkeeping knows of each
// backend, the client's consistency needs and the database's policy; no I/O, no clock, no
// locks. The one piece of memory between calls, the load balancer's, is the caller's
// (balancer_state) so that the function stays pure and its tests deterministic.
//
// Decisions kept here:
//  - Writes (and anything not known to be read-only) go to the one primary that is up. When
//    two backends claim to be primary the answer is "ambiguous": writes wait rather than guess
//    which one is real (never two writable primaries).
//  - A fenced backend (a former primary that came back) serves no client traffic; a draining
//    one takes no new work.
//  - Reads go to a replica that is up, has a read weight, is within max_replica_lag and has
//    replayed the client's own last write (min_lsn, read-your-writes); among those, by the
//    load-balancing policy. When none may serve, the primary serves the read
//    (primary_reads = "fallback"), unless the policy says never (then the read waits or fails:
//    route_status::no_replica).
//  - Every choice says why (route_reason) so that the proxy can count routed transactions per
//    backend and reason.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

namespace pgsluice::conf {
struct routing_settings;
}

namespace pgsluice::router {

// The role a backend plays now (configured, or discovered by the health checks later).
enum class role : std::uint8_t { primary, replica, unknown };

// What the health bookkeeping knows of a backend.
//  up: serving; down: failing its checks or refusing connections; lagging: a replica too far
//  behind to serve reads; fenced: kept away from clients by an operator or after a failover;
//  draining: finishing its running work, taking no new work.
enum class health : std::uint8_t { up, down, lagging, fenced, draining };

std::string_view to_string(role r) noexcept;
std::string_view to_string(health h) noexcept;

// One backend as the selection sees it. The first four members are what the cluster knows
// without a lag monitor; the rest default to "unknown".
struct backend_view {
  router::role role = role::primary;
  router::health health = health::up;
  std::uint32_t weight = 1;   // load-balancing weight for reads; 0 = never chosen for reads
  std::uint32_t active = 0;   // server connections handed to clients now (least_connections)
  // WAL position this replica has replayed (pg_last_wal_replay_lsn() as a 64-bit number);
  // 0 = not known. Unused for the primary, which has every write.
  std::uint64_t replay_lsn = 0;
  // Replay lag against the primary, in WAL bytes and in time; nullopt = not measured yet. The
  // monitor reports 0 time lag when the replica has replayed everything the primary wrote
  // (pg_last_xact_replay_timestamp() keeps growing while the primary is idle).
  std::optional<std::uint64_t> lag_bytes;
  std::optional<std::chrono::milliseconds> lag_time;
};

// What the transaction (or session) about to start needs.
enum class need : std::uint8_t {
  write,  // read-write: the primary
  read,   // read-only: a replica when one may serve it, else the primary
};

// A client's routing hint (/* pgsluice: primary */, SET pgsluice.route, target_session_attrs).
enum class route_hint : std::uint8_t {
  automatic,  // decide by the statement and the policy
  primary,    // the primary, even for a read
  replica,    // a replica for a read, even within primary_after_write_for or with primary_reads
              // = "always"; never moves a write, and a replica must still be up, within the lag
              // limit and past min_lsn
};

// How reads are spread over the candidates; weights apply to each.
enum class balance : std::uint8_t {
  round_robin,        // smooth weighted round robin (as nginx's): 2:1 weights give A A B, interleaved
  least_connections,  // fewest active / weight; ties by weighted round robin
  random,             // weighted random
};

// When the primary serves reads.
enum class primary_reads : std::uint8_t {
  never,     // reads wait or fail (route_status::no_replica) rather than go to the primary, even
             // those consistency would send there
  fallback,  // only when no replica may serve them
  always,    // the primary is one more candidate, with its own weight (and the fallback)
};

// What a client's reads see of its own writes.
enum class consistency : std::uint8_t {
  read_your_writes,     // a replica serves a read only when it replayed min_lsn (the proxy fills it)
  primary_after_write,  // reads go to the primary for primary_after_write_for after a write
  eventual,             // any replica within the lag limit (the proxy passes min_lsn = 0)
};

std::string_view to_string(route_hint h) noexcept;
std::string_view to_string(balance b) noexcept;
std::string_view to_string(primary_reads p) noexcept;
std::string_view to_string(consistency c) noexcept;

// The database's routing policy (from conf::routing_settings, see make_route_policy).
struct route_policy {
  bool read_write_split = true;  // false: every transaction goes to the primary
  balance load_balance = balance::round_robin;
  router::primary_reads primary_reads = primary_reads::fallback;
  // A replica over either limit gets no new reads; 0 = that limit is off. With a limit on, a
  // replica whose lag is not measured yet counts as over it.
  std::uint64_t max_replica_lag_bytes = 0;
  std::chrono::milliseconds max_replica_lag_time{0};
  router::consistency consistency = consistency::read_your_writes;
  std::chrono::milliseconds primary_after_write_for{1000};
  // When only min_lsn keeps every replica from a read: wait this long (route_status::wait,
  // the proxy asks again after the next lag sample) before the primary serves it; 0 = no wait.
  std::chrono::milliseconds read_your_writes_wait{0};
};

// The policy a database's resolved settings describe.
route_policy make_route_policy(const conf::routing_settings& s) noexcept;

using time_point = std::chrono::steady_clock::time_point;

// What the transaction (or session) about to start needs, with the client's consistency
// state. Times are the caller's (no clock is read here).
struct route_request {
  router::need need = need::write;
  // Read-your-writes: an LSN at or after the client's last commit; only a replica that
  // replayed it may serve the read. 0 = none (the client wrote nothing, or does not care).
  std::uint64_t min_lsn = 0;
  route_hint force = route_hint::automatic;
  route_policy policy{};
  time_point now{};
  std::optional<time_point> last_write;  // the client's last write (primary_after_write)
  // When the proxy first got route_status::wait for this request (read_your_writes_wait).
  std::optional<time_point> waiting_since;
};

enum class route_status : std::uint8_t {
  chosen,      // `backend` is set
  no_primary,  // no backend is an up primary (down, fenced, or none configured)
  ambiguous,   // more than one backend claims to be an up primary
  no_replica,  // a read no replica may serve, and primary_reads = "never": wait or fail
  wait,        // a read only min_lsn keeps from the replicas: ask again within read_your_writes_wait
};
std::string_view to_string(route_status s) noexcept;

// Why a transaction went where it went (per-backend counters).
enum class route_reason : std::uint8_t {
  write,                  // a write: the primary
  read_replica,           // a read balanced onto a replica
  read_primary,           // a read balanced onto the primary as a candidate (primary_reads = "always")
  read_primary_fallback,  // a read no replica could take (none configured, up, or with a weight)
  hint_primary,           // the client asked for the primary
  hint_replica,           // the client asked for a replica and got one
  lag_avoided,            // every replica that could serve was over max_replica_lag
  consistency_primary,    // read-your-writes (min_lsn) or primary_after_write kept it on the primary
  split_off,              // read_write_split = false: reads go to the primary
};
inline constexpr std::size_t route_reason_count = 9;
std::string_view to_string(route_reason r) noexcept;

struct route_choice {
  route_status status = route_status::no_primary;
  std::size_t backend = 0;  // index into the snapshot when chosen
  route_reason reason = route_reason::write;
  bool chosen() const noexcept { return status == route_status::chosen; }
};

// The load balancer's memory between calls: smooth weighted round robin's current weights
// (per backend index of the snapshot) and the random generator's state. Not synchronised:
// keep one per cluster behind the caller's own lock, or one per worker thread and cluster
// (each gives the configured shares over its own picks). Up to inline_backends backends it
// lives inline and a call allocates nothing; beyond, a vector is sized once.
struct balancer_state {
  static constexpr std::size_t inline_backends = 8;
  explicit balancer_state(std::uint64_t seed = 0x853c49e6748fea9bULL) noexcept : random(seed) {}

  std::array<std::int64_t, inline_backends> current{};
  std::vector<std::int64_t> current_overflow;  // more backends than inline_backends
  std::size_t backends = 0;                    // snapshot size the weights belong to
  std::uint64_t random;                        // splitmix64 state (load_balance = random)
};

// The backend for `req` among `backends` (indices as in the snapshot).
route_choice choose_backend(std::span<const backend_view> backends, const route_request& req,
                            balancer_state& state) noexcept;

// Without balancer memory: round robin then always starts afresh (the heaviest candidate wins
// every time), so this is for writes and single-backend callers; spreading reads needs the
// overload above.
route_choice choose_backend(std::span<const backend_view> backends, const route_request& req) noexcept;

}  // namespace pgsluice::router

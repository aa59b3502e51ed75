// The health and failover state machine of a database's backends: health checks in, statuses, roles and failover orders out; pure, no I/O, no clock.
//
// The prober (proxy/monitor.*) connects to each backend on its own schedule, asks
// pg_is_in_recovery() and the WAL positions, and hands each result to on_check(); operators
// call fence() / unfence() / drain() / undrain(); the prober reports what became of a
// promotion it was ordered to run (on_promote_result()). Every call takes the caller's time
// and returns a decision: the status and role changes, each with its reason (the caller logs
// them), and at most one order (promote a replica, re-point the others).
//
// Rules kept here (DESIGN.md, "Invariants"):
//  - fall / rise as HAProxy's: a backend is marked down after `fall` failed checks in a row and
//    up again after `rise` good ones. Before its first check a backend counts as up (clients are
//    served from the start) but one failed check is then enough (HAProxy does the same).
//  - Roles: a backend configured "auto" is what it says it is (not in recovery = primary). With
//    failover = "follow" or "promote" a configured role is only the starting guess: the
//    backend's own answer wins, so a promotion done by others is followed within one check.
//    With failover = "off" configured roles stand.
//  - Never two writable primaries: once a new primary has been adopted, a former primary that
//    comes back writable is fenced (no client traffic) until an operator un-fences it. Two
//    writable backends that are both up and neither a former primary are "ambiguous": the
//    router makes writes wait rather than guess (timelines and positions go in the reason).
//  - failover = "promote": once the primary has been down for failover_after, the most
//    advanced replica that is up (highest received, else replayed, WAL position) is ordered
//    promoted, once at a time; the others are then ordered to follow it.
//  - lagging: a replica over the database's max_replica_lag (bytes or time) takes no reads.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "router/select.hpp"

namespace pgsluice::router {

// What pgsluice does when the primary fails (conf key `failover`).
enum class failover_mode : std::uint8_t {
  off,      // configured roles stand; a dead primary stays the primary (writes wait, then fail)
  follow,   // roles as the servers report them: a promotion done by others is followed
  promote,  // follow, and promote the most advanced replica once the primary is down for failover_after
};
std::string_view to_string(failover_mode m) noexcept;

struct health_settings {
  std::uint32_t fall = 3;
  std::uint32_t rise = 2;
  failover_mode failover = failover_mode::follow;
  std::chrono::milliseconds failover_after{1000};
  // A replica over either limit is "lagging" (0 = that limit is off).
  std::uint64_t max_lag_bytes = 0;
  std::chrono::milliseconds max_lag_time{0};
};

// One health check as the server answered it (or why it did not).
struct probe_result {
  bool ok = false;
  std::string error;  // when !ok: "connection refused", "timeout", the server's FATAL...
  bool in_recovery = false;
  std::optional<std::uint64_t> position;  // current WAL position (primary) or replayed (replica), bytes since 0/0
  std::optional<std::uint64_t> received;  // replica: WAL received and flushed (pg_last_wal_receive_lsn)
  std::optional<std::int64_t> replay_age_ms;  // replica: age of the last transaction it replayed
  std::optional<std::uint32_t> timeline;
};

// A status or role change of one backend, with why.
struct health_change {
  std::size_t backend = 0;
  health from = health::up;
  health to = health::up;
  role role_from = role::unknown;
  role role_to = role::unknown;
  std::string reason;
};

// Promote `backend` (SELECT pg_promote()).
struct promote_order {
  std::size_t backend = 0;
  std::uint64_t position = 0;             // what it has (received, else replayed)
  std::optional<std::uint64_t> lost_at;   // the failed primary's last known position
  std::string reason;
};

// Point `replicas` at the new primary `primary` (primary_conninfo + reload).
struct repoint_order {
  std::size_t primary = 0;
  std::vector<std::size_t> replicas;
};

struct health_decision {
  std::vector<health_change> changes;
  std::optional<promote_order> promote;
  std::optional<repoint_order> repoint;
  // Messages worth a warning that are not a backend's change (two primaries claimed...).
  std::vector<std::string> notes;
  bool primary_changed = false;  // another backend (or none) is now the one primary
};

using time_point = std::chrono::steady_clock::time_point;

class health_machine {
 public:
  struct backend {
    router::role configured = router::role::unknown;
    router::role role = router::role::unknown;
    router::role published_role = router::role::unknown;  // as of the last decision returned
    health status = health::up;
    bool healthy = true;    // fall / rise verdict
    bool checked = false;   // at least one check came back
    std::uint32_t fails = 0, oks = 0;  // consecutive
    bool fenced = false, draining = false;
    bool former_primary = false;  // was the primary when another one was adopted
    bool writable = false;        // last good check: not in recovery
    std::optional<std::uint64_t> position, received;
    std::optional<std::int64_t> replay_age_ms;
    std::optional<std::uint64_t> lag_bytes;
    std::optional<std::chrono::milliseconds> lag_time;
    std::optional<std::uint32_t> timeline;
    time_point changed{};      // last status or role change
    time_point down_since{};   // when it was marked down
    std::string reason = "starting";
  };

  health_machine(std::vector<role> configured, health_settings s, time_point now);

  health_decision on_check(std::size_t i, const probe_result& r, time_point now);
  // A lag sample between checks: positions and lag only (a failed one is ignored; the next
  // check counts).
  health_decision on_sample(std::size_t i, const probe_result& r, time_point now);
  // Time passing with no check (failover_after may elapse); the prober calls it every round.
  health_decision on_tick(time_point now);
  health_decision on_promote_result(std::size_t i, bool ok, const std::string& error, time_point now);

  health_decision fence(std::size_t i, std::string_view why, time_point now);
  health_decision unfence(std::size_t i, time_point now);
  health_decision drain(std::size_t i, time_point now);
  health_decision undrain(std::size_t i, time_point now);

  std::size_t size() const noexcept { return backends_.size(); }
  const backend& at(std::size_t i) const { return backends_.at(i); }
  const health_settings& settings() const noexcept { return settings_; }
  // The one primary that is up, if there is exactly one.
  std::optional<std::size_t> primary() const noexcept;
  bool ambiguous() const noexcept;
  std::uint64_t failovers() const noexcept { return failovers_; }
  bool promoting() const noexcept { return promoting_.has_value(); }

 private:
  health derive(const backend& b) const noexcept;
  // Adopts the primary (or notes two claims) after a change.
  void settle(health_decision& d);
  // settle(), the failover decision, then every status or role change with its reason.
  health_decision finish(health_decision d, const std::vector<std::string>& reasons, time_point now);
  health_decision on_operator(std::size_t i, std::string why, time_point now);
  void consider_failover(health_decision& d, time_point now);
  void compute_lag(std::size_t i);

  std::vector<backend> backends_;
  health_settings settings_;
  std::optional<std::size_t> primary_;   // adopted primary (may be down now)
  std::optional<std::size_t> promoting_;  // promotion ordered, result not known yet
  time_point retry_at_{};                 // after a failed promotion
  std::optional<std::uint64_t> primary_position_;  // the adopted primary's last position
  bool was_ambiguous_ = false;
  std::uint64_t failovers_ = 0;
  std::vector<std::size_t> repoint_due_;  // replicas to re-point once the promoted one is primary
  std::optional<std::size_t> promoted_;   // promoted by us, waiting to be seen writable
};

}  // namespace pgsluice::router

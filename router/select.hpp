// Which backend of a cluster serves a transaction or a session: a pure function of the backends' states.
//
// A client-facing database is a cluster of backends (a primary and, later, streaming replicas),
// each with its own pool. The proxy asks this function at each transaction boundary
// (transaction pooling) or at login (session pooling) and never decides routing itself
// (DESIGN.md, "Where routing sits"). Inputs are a snapshot of what the health and lag
// bookkeeping knows of each backend; no I/O, no clock, no locks.
//
// Decisions kept here:
//  - Writes (and anything not known to be read-only) go to the one primary that is up. When
//    two backends claim to be primary the answer is "ambiguous": writes wait rather than guess
//    which one is real (never two writable primaries).
//  - A fenced backend (a former primary that came back) serves no client traffic; a draining
//    one takes no new work.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

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

// One backend as the selection sees it.
struct backend_view {
  router::role role = role::primary;
  router::health health = health::up;
  std::uint32_t weight = 1;   // load-balancing weight (used among replicas)
  std::uint32_t active = 0;   // server connections handed to clients now
};

// What the transaction (or session) about to start needs.
enum class need : std::uint8_t {
  write,  // read-write: the primary (today every transaction asks for this)
  read,   // read-only: a replica when one may serve it, else the primary
};

struct route_request {
  router::need need = need::write;
};

enum class route_status : std::uint8_t {
  chosen,         // `backend` is set
  no_primary,     // no backend is an up primary (down, fenced, or none configured)
  ambiguous,      // more than one backend claims to be an up primary
};
std::string_view to_string(route_status s) noexcept;

struct route_choice {
  route_status status = route_status::no_primary;
  std::size_t backend = 0;  // index into the snapshot when chosen
  bool chosen() const noexcept { return status == route_status::chosen; }
};

// The backend for `req` among `backends` (indices as in the snapshot).
route_choice choose_backend(std::span<const backend_view> backends, const route_request& req) noexcept;

}  // namespace pgsluice::router

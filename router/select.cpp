// Backend selection (see select.hpp).
#include "router/select.hpp"

namespace pgsluice::router {

std::string_view to_string(role r) noexcept {
  switch (r) {
    case role::primary: return "primary";
    case role::replica: return "replica";
    case role::unknown: return "unknown";
  }
  return "?";
}

std::string_view to_string(health h) noexcept {
  switch (h) {
    case health::up: return "up";
    case health::down: return "down";
    case health::lagging: return "lagging";
    case health::fenced: return "fenced";
    case health::draining: return "draining";
  }
  return "?";
}

std::string_view to_string(route_status s) noexcept {
  switch (s) {
    case route_status::chosen: return "chosen";
    case route_status::no_primary: return "no_primary";
    case route_status::ambiguous: return "ambiguous";
  }
  return "?";
}

namespace {

route_choice choose_primary(std::span<const backend_view> backends) noexcept {
  route_choice c;
  std::size_t found = 0;
  for (std::size_t i = 0; i < backends.size(); ++i) {
    const auto& b = backends[i];
    if (b.role != role::primary || b.health != health::up) continue;
    if (found++ == 0) c.backend = i;
  }
  if (found == 1) c.status = route_status::chosen;
  if (found > 1) c.status = route_status::ambiguous;
  return c;
}

}  // namespace

route_choice choose_backend(std::span<const backend_view> backends, const route_request& req) noexcept {
  // Reads fall back to the primary until replicas can serve them (read/write splitting decides
  // more here); a write never goes anywhere else.
  (void)req.need;
  return choose_primary(backends);
}

}  // namespace pgsluice::router

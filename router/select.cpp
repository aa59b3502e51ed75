// Backend selection (see select.hpp).
#include "router/select.hpp"

#include "conf/config.hpp"

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

std::string_view to_string(route_hint h) noexcept {
  switch (h) {
    case route_hint::automatic: return "auto";
    case route_hint::primary: return "primary";
    case route_hint::replica: return "replica";
  }
  return "?";
}

std::string_view to_string(balance b) noexcept {
  switch (b) {
    case balance::round_robin: return "round_robin";
    case balance::least_connections: return "least_connections";
    case balance::random: return "random";
  }
  return "?";
}

std::string_view to_string(primary_reads p) noexcept {
  switch (p) {
    case primary_reads::never: return "never";
    case primary_reads::fallback: return "fallback";
    case primary_reads::always: return "always";
  }
  return "?";
}

std::string_view to_string(consistency c) noexcept {
  switch (c) {
    case consistency::read_your_writes: return "read_your_writes";
    case consistency::primary_after_write: return "primary_after_write";
    case consistency::eventual: return "eventual";
  }
  return "?";
}

std::string_view to_string(route_status s) noexcept {
  switch (s) {
    case route_status::chosen: return "chosen";
    case route_status::no_primary: return "no_primary";
    case route_status::ambiguous: return "ambiguous";
    case route_status::no_replica: return "no_replica";
    case route_status::wait: return "wait";
  }
  return "?";
}

std::string_view to_string(route_reason r) noexcept {
  switch (r) {
    case route_reason::write: return "write";
    case route_reason::read_replica: return "read_replica";
    case route_reason::read_primary: return "read_primary";
    case route_reason::read_primary_fallback: return "read_primary_fallback";
    case route_reason::hint_primary: return "hint_primary";
    case route_reason::hint_replica: return "hint_replica";
    case route_reason::lag_avoided: return "lag_avoided";
    case route_reason::consistency_primary: return "consistency_primary";
    case route_reason::split_off: return "split_off";
  }
  return "?";
}

route_policy make_route_policy(const conf::routing_settings& s) noexcept {
  route_policy p;
  p.read_write_split = s.read_write_split;
  switch (s.load_balance) {
    case conf::load_balance::round_robin: p.load_balance = balance::round_robin; break;
    case conf::load_balance::least_connections: p.load_balance = balance::least_connections; break;
    case conf::load_balance::random: p.load_balance = balance::random; break;
  }
  switch (s.primary_reads) {
    case conf::primary_reads::never: p.primary_reads = primary_reads::never; break;
    case conf::primary_reads::fallback: p.primary_reads = primary_reads::fallback; break;
    case conf::primary_reads::always: p.primary_reads = primary_reads::always; break;
  }
  p.max_replica_lag_bytes = s.max_replica_lag.bytes;
  p.max_replica_lag_time = s.max_replica_lag.time;
  switch (s.consistency) {
    case conf::consistency::read_your_writes: p.consistency = consistency::read_your_writes; break;
    case conf::consistency::primary_after_write: p.consistency = consistency::primary_after_write; break;
    case conf::consistency::eventual: p.consistency = consistency::eventual; break;
  }
  p.primary_after_write_for = s.primary_after_write_for;
  p.read_your_writes_wait = s.read_your_writes_wait;
  return p;
}

namespace {

constexpr std::size_t none = static_cast<std::size_t>(-1);

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

route_choice because(route_choice c, route_reason r) noexcept {
  c.reason = r;
  return c;
}

// What keeps a backend from a read, in the order it is checked.
enum class verdict : std::uint8_t { candidate, not_a_replica, unavailable, lagging, behind };

bool over_lag(const backend_view& b, const route_policy& p) noexcept {
  if (p.max_replica_lag_bytes != 0 && (!b.lag_bytes || *b.lag_bytes > p.max_replica_lag_bytes)) return true;
  if (p.max_replica_lag_time.count() != 0 && (!b.lag_time || *b.lag_time > p.max_replica_lag_time)) return true;
  return false;
}

verdict judge_replica(const backend_view& b, const route_request& req) noexcept {
  if (b.role != role::replica) return verdict::not_a_replica;
  if (b.health == health::lagging) return verdict::lagging;
  if (b.health != health::up || b.weight == 0) return verdict::unavailable;
  if (over_lag(b, req.policy)) return verdict::lagging;
  if (req.min_lsn != 0 && b.replay_lsn < req.min_lsn) return verdict::behind;
  return verdict::candidate;
}

// The read candidates of one request: replicas judged so, and the primary when it competes.
struct candidates {
  std::span<const backend_view> backends;
  const route_request& req;
  std::size_t primary = none;  // the primary's index when it is a candidate

  bool operator()(std::size_t i) const noexcept {
    return i == primary || judge_replica(backends[i], req) == verdict::candidate;
  }
};

std::span<std::int64_t> current_weights(balancer_state& s, std::size_t n) {
  if (s.backends != n) {
    s.current.fill(0);
    s.current_overflow.clear();
    s.backends = n;
  }
  if (n <= balancer_state::inline_backends) return {s.current.data(), n};
  if (s.current_overflow.size() != n) s.current_overflow.assign(n, 0);
  return s.current_overflow;
}

// Smooth weighted round robin (nginx's ngx_http_upstream_get_peer): every candidate gains its
// weight, the one with the most wins and gives back the total. Shares follow the weights and
// picks interleave (5:1:1 gives a a b a c a a, not a a a a a b c).
template <class Pred>
std::size_t pick_round_robin(std::span<const backend_view> backends, const Pred& is_candidate,
                             balancer_state& state) {
  const auto current = current_weights(state, backends.size());
  std::int64_t total = 0;
  std::size_t best = none;
  for (std::size_t i = 0; i < backends.size(); ++i) {
    if (!is_candidate(i)) continue;
    current[i] += backends[i].weight;
    total += backends[i].weight;
    if (best == none || current[i] > current[best]) best = i;
  }
  if (best != none) current[best] -= total;
  return best;
}

// Fewest active / weight (compared as cross products: no division); ties by round robin.
template <class Pred>
std::size_t pick_least_connections(std::span<const backend_view> backends, const Pred& is_candidate,
                                   balancer_state& state) {
  std::size_t least = none;
  for (std::size_t i = 0; i < backends.size(); ++i) {
    if (!is_candidate(i)) continue;
    if (least == none || std::uint64_t{backends[i].active} * backends[least].weight <
                             std::uint64_t{backends[least].active} * backends[i].weight) {
      least = i;
    }
  }
  if (least == none) return none;
  const auto tied = [&](std::size_t i) {
    return is_candidate(i) && std::uint64_t{backends[i].active} * backends[least].weight ==
                                  std::uint64_t{backends[least].active} * backends[i].weight;
  };
  return pick_round_robin(backends, tied, state);
}

std::uint64_t splitmix64(std::uint64_t& state) noexcept {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

template <class Pred>
std::size_t pick_random(std::span<const backend_view> backends, const Pred& is_candidate, balancer_state& state) {
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < backends.size(); ++i) {
    if (is_candidate(i)) total += backends[i].weight;
  }
  if (total == 0) return none;
  std::uint64_t r = splitmix64(state.random) % total;
  for (std::size_t i = 0; i < backends.size(); ++i) {
    if (!is_candidate(i)) continue;
    if (r < backends[i].weight) return i;
    r -= backends[i].weight;
  }
  return none;
}

// Where a read goes that no candidate may take: why, then the primary unless the policy says never.
route_choice without_candidates(const route_choice& primary, const route_request& req, route_reason why,
                                bool only_min_lsn_in_the_way) noexcept {
  const auto& p = req.policy;
  if (only_min_lsn_in_the_way && p.read_your_writes_wait.count() > 0 &&
      (!req.waiting_since || req.now - *req.waiting_since < p.read_your_writes_wait)) {
    return route_choice{route_status::wait, 0, why};
  }
  if (p.primary_reads == primary_reads::never) return route_choice{route_status::no_replica, 0, why};
  return because(primary, why);
}

route_choice choose_read(std::span<const backend_view> backends, const route_request& req,
                         balancer_state& state) {
  const auto& p = req.policy;
  const route_choice primary = choose_primary(backends);
  if (!p.read_write_split) return because(primary, route_reason::split_off);
  if (req.force == route_hint::primary) return because(primary, route_reason::hint_primary);
  const bool hinted_replica = req.force == route_hint::replica;

  // primary_after_write: the client wrote a moment ago; its reads stay where its writes are.
  if (!hinted_replica && p.consistency == consistency::primary_after_write && req.last_write &&
      req.now - *req.last_write < p.primary_after_write_for) {
    if (p.primary_reads == primary_reads::never) {
      return route_choice{route_status::no_replica, 0, route_reason::consistency_primary};
    }
    return because(primary, route_reason::consistency_primary);
  }

  candidates is_candidate{backends, req};
  if (!hinted_replica && p.primary_reads == primary_reads::always && primary.chosen() &&
      backends[primary.backend].weight > 0) {
    is_candidate.primary = primary.backend;
  }

  std::size_t pick = none;
  switch (p.load_balance) {
    case balance::round_robin: pick = pick_round_robin(backends, is_candidate, state); break;
    case balance::least_connections: pick = pick_least_connections(backends, is_candidate, state); break;
    case balance::random: pick = pick_random(backends, is_candidate, state); break;
  }
  if (pick != none) {
    const route_reason why = pick == is_candidate.primary ? route_reason::read_primary
                             : hinted_replica             ? route_reason::hint_replica
                                                          : route_reason::read_replica;
    return route_choice{route_status::chosen, pick, why};
  }

  // Nobody may take it: say what kept the replicas away. A replica behind only on min_lsn is
  // the client's consistency; one over the lag limit is lag; otherwise there was no replica.
  bool behind = false;
  bool lagging = false;
  for (const auto& b : backends) {
    switch (judge_replica(b, req)) {
      case verdict::behind: behind = true; break;
      case verdict::lagging: lagging = true; break;
      default: break;
    }
  }
  const route_reason why = behind    ? route_reason::consistency_primary
                           : lagging ? route_reason::lag_avoided
                                     : route_reason::read_primary_fallback;
  return without_candidates(primary, req, why, behind);
}

}  // namespace

route_choice choose_backend(std::span<const backend_view> backends, const route_request& req,
                            balancer_state& state) noexcept {
  // A write never goes anywhere but the one primary.
  if (req.need == need::write) return because(choose_primary(backends), route_reason::write);
  return choose_read(backends, req, state);
}

route_choice choose_backend(std::span<const backend_view> backends, const route_request& req) noexcept {
  balancer_state state;
  return choose_backend(backends, req, state);
}

}  // namespace pgsluice::router

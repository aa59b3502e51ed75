// The health and failover state machine (see health.hpp).
#include "router/health.hpp"

#include <cstdio>

namespace pgsluice::router {

std::string_view to_string(failover_mode m) noexcept {
  switch (m) {
    case failover_mode::off: return "off";
    case failover_mode::follow: return "follow";
    case failover_mode::promote: return "promote";
  }
  return "?";
}

namespace {

std::string lsn_text(std::optional<std::uint64_t> lsn) {
  if (!lsn) return "unknown";
  char buf[24];
  std::snprintf(buf, sizeof buf, "%X/%X", static_cast<unsigned>(*lsn >> 32), static_cast<unsigned>(*lsn & 0xffffffffu));
  return buf;
}

std::string timeline_text(std::optional<std::uint32_t> tli) { return tli ? std::to_string(*tli) : "unknown"; }

// "backend 1 (timeline 2, position 0/3000060)", for the reasons that compare primaries.
std::string describe(std::size_t i, const health_machine::backend& b) {
  return "backend " + std::to_string(i) + " (timeline " + timeline_text(b.timeline) + ", position " +
         lsn_text(b.position) + ")";
}

}  // namespace

health_machine::health_machine(std::vector<role> configured, health_settings s, time_point now)
    : settings_(s) {
  backends_.resize(configured.size());
  for (std::size_t i = 0; i < configured.size(); ++i) {
    auto& b = backends_[i];
    b.configured = configured[i];
    b.role = configured[i];
    b.published_role = configured[i];
    b.changed = now;
    if (b.role == role::primary && !primary_) primary_ = i;
  }
}

health health_machine::derive(const backend& b) const noexcept {
  if (b.fenced) return health::fenced;
  if (b.draining) return health::draining;
  if (!b.healthy) return health::down;
  if (b.role == role::replica) {
    if (settings_.max_lag_bytes != 0 && b.lag_bytes && *b.lag_bytes > settings_.max_lag_bytes) return health::lagging;
    if (settings_.max_lag_time.count() != 0 && b.lag_time && *b.lag_time > settings_.max_lag_time) return health::lagging;
  }
  return health::up;
}

std::optional<std::size_t> health_machine::primary() const noexcept {
  std::optional<std::size_t> found;
  for (std::size_t i = 0; i < backends_.size(); ++i) {
    if (backends_[i].role != role::primary || backends_[i].status != health::up) continue;
    if (found) return std::nullopt;
    found = i;
  }
  return found;
}

bool health_machine::ambiguous() const noexcept {
  std::size_t n = 0;
  for (const auto& b : backends_) n += b.role == role::primary && b.status == health::up;
  return n > 1;
}

void health_machine::compute_lag(std::size_t i) {
  auto& b = backends_[i];
  if (b.role != role::replica || !b.position || !primary_position_) return;
  const std::uint64_t behind = *primary_position_ > *b.position ? *primary_position_ - *b.position : 0;
  b.lag_bytes = behind;
  // The replay timestamp keeps ageing while an idle primary writes nothing: it only counts
  // while there is something left to replay.
  b.lag_time.reset();
  if (behind == 0) b.lag_time = std::chrono::milliseconds(0);
  else if (b.replay_age_ms) b.lag_time = std::chrono::milliseconds(*b.replay_age_ms);
}

void health_machine::settle(health_decision& d) {
  // The primary: adopted when exactly one writable backend is healthy and not fenced.
  std::vector<std::size_t> claims;
  for (std::size_t i = 0; i < backends_.size(); ++i) {
    const auto& b = backends_[i];
    if (b.role == role::primary && b.healthy && !b.fenced) claims.push_back(i);
  }
  if (claims.size() == 1 && primary_ != claims.front()) {
    const std::size_t next = claims.front();
    if (primary_) {
      ++failovers_;
      d.notes.push_back("primary is now " + describe(next, backends_[next]) + ", was backend " +
                        std::to_string(*primary_));
    }
    // Every other backend that was writable is a former primary from now on: fenced if it
    // comes back writable.
    for (std::size_t i = 0; i < backends_.size(); ++i) {
      if (i != next && backends_[i].role == role::primary && !backends_[i].fenced) backends_[i].former_primary = true;
    }
    primary_ = next;
    primary_position_ = backends_[next].position;
    d.primary_changed = true;
    if (promoted_ == next) {
      std::vector<std::size_t> replicas;
      for (auto r : repoint_due_) {
        if (r != next && !backends_[r].fenced) replicas.push_back(r);
      }
      if (!replicas.empty()) d.repoint = repoint_order{next, std::move(replicas)};
      repoint_due_.clear();
      promoted_.reset();
    }
  }
  const bool ambiguous_now = claims.size() > 1;
  if (ambiguous_now && !was_ambiguous_) {
    std::string who;
    for (auto i : claims) who += (who.empty() ? "" : " and ") + describe(i, backends_[i]);
    d.notes.push_back("two backends claim to be primary: " + who + "; writes wait until one is fenced or demoted");
  }
  if (was_ambiguous_ != ambiguous_now) d.primary_changed = true;
  was_ambiguous_ = ambiguous_now;

  for (std::size_t i = 0; i < backends_.size(); ++i) compute_lag(i);
}

health_decision health_machine::finish(health_decision d, const std::vector<std::string>& reasons, time_point now) {
  settle(d);
  consider_failover(d, now);
  // Status and role changes, each with its reason.
  for (std::size_t k = 0; k < backends_.size(); ++k) {
    auto& x = backends_[k];
    const health s = derive(x);
    if (s == x.status && x.role == x.published_role) continue;
    std::string why = k < reasons.size() ? reasons[k] : std::string();
    if (why.empty()) {
      why = s == health::lagging          ? "replay lag over max_replica_lag"
            : x.status == health::lagging ? "replay lag back within max_replica_lag"
                                          : "role changed";
    }
    d.changes.push_back(health_change{k, x.status, s, x.published_role, x.role, why});
    x.status = s;
    x.published_role = x.role;
    x.changed = now;
    x.reason = std::move(why);
  }
  return d;
}

health_decision health_machine::on_check(std::size_t i, const probe_result& r, time_point now) {
  health_decision d;
  std::vector<std::string> reasons(backends_.size());
  auto& b = backends_.at(i);
  const bool first = !b.checked;
  b.checked = true;
  if (r.ok) {
    b.fails = 0;
    ++b.oks;
    if (!b.healthy && b.oks >= settings_.rise) {
      b.healthy = true;
      reasons[i] = "passed " + std::to_string(b.oks) + " health check" + (b.oks == 1 ? "" : "s") + " in a row";
    }
    b.writable = !r.in_recovery;
    b.position = r.position;
    b.received = r.received;
    if (r.timeline) b.timeline = r.timeline;
    b.replay_age_ms = r.replay_age_ms;
    const role observed = r.in_recovery ? role::replica : role::primary;
    const role next = settings_.failover == failover_mode::off && b.configured != role::unknown ? b.configured : observed;
    if (next != b.role) {
      reasons[i] = r.in_recovery ? "the server reports it is in recovery (a standby)"
                                 : "the server reports it is not in recovery (writable)";
    }
    b.role = next;
    if (b.former_primary) {
      if (r.in_recovery) {
        b.former_primary = false;  // rebuilt as a standby: an ordinary replica again
      } else if (!b.fenced && primary_ && *primary_ != i) {
        b.fenced = true;
        reasons[i] = "a former primary came back writable: " + describe(i, b) + " while " +
                     describe(*primary_, backends_[*primary_]) + " is primary; it gets no client traffic until "
                     "an operator un-fences it";
      }
    }
    if (primary_ == i && b.role == role::primary) primary_position_ = b.position;
  } else {
    b.oks = 0;
    ++b.fails;
    if (b.healthy && (b.fails >= settings_.fall || first)) {
      b.healthy = false;
      b.down_since = now;
      reasons[i] = r.error + " (" + std::to_string(b.fails) + " failed health check" + (b.fails == 1 ? "" : "s") +
                   (first ? ", the first one" : " in a row") + ")";
    }
  }
  return finish(std::move(d), reasons, now);
}

void health_machine::consider_failover(health_decision& d, time_point now) {
  if (settings_.failover != failover_mode::promote || promoting_ || promoted_ || !primary_) return;
  const auto& old = backends_[*primary_];
  if (old.healthy || old.fenced) return;  // only a primary that failed its checks is replaced
  for (const auto& b : backends_) {
    if (b.role == role::primary && b.healthy && !b.fenced) return;  // someone is writable already
  }
  if (now - old.down_since < settings_.failover_after || now < retry_at_) return;
  std::optional<std::size_t> best;
  std::uint64_t best_pos = 0;
  for (std::size_t i = 0; i < backends_.size(); ++i) {
    const auto& b = backends_[i];
    if (b.role != role::replica || !b.healthy || b.fenced || b.draining || !b.checked) continue;
    const std::uint64_t pos = b.received.value_or(b.position.value_or(0));
    if (!best || pos > best_pos) {
      best = i;
      best_pos = pos;
    }
  }
  if (!best) return;
  promoting_ = best;
  repoint_due_.clear();
  for (std::size_t i = 0; i < backends_.size(); ++i) {
    if (i != *best && i != *primary_ && backends_[i].role == role::replica && !backends_[i].fenced) repoint_due_.push_back(i);
  }
  promote_order o;
  o.backend = *best;
  o.position = best_pos;
  o.lost_at = primary_position_;
  o.reason = "primary backend " + std::to_string(*primary_) + " down for " +
             std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(now - old.down_since).count()) +
             " ms; backend " + std::to_string(*best) + " has the most WAL (" + lsn_text(best_pos) +
             "; the primary was last seen at " + lsn_text(primary_position_) + ")";
  d.promote = std::move(o);
}

health_decision health_machine::on_sample(std::size_t i, const probe_result& r, time_point now) {
  auto& b = backends_.at(i);
  if (!r.ok || !b.checked || (b.role == role::replica) != r.in_recovery) return {};
  b.position = r.position;
  b.received = r.received;
  b.replay_age_ms = r.replay_age_ms;
  if (primary_ == i && b.role == role::primary) primary_position_ = b.position;
  return finish(health_decision{}, {}, now);
}

health_decision health_machine::on_tick(time_point now) { return finish(health_decision{}, {}, now); }

health_decision health_machine::on_operator(std::size_t i, std::string why, time_point now) {
  std::vector<std::string> reasons(backends_.size());
  reasons.at(i) = std::move(why);
  return finish(health_decision{}, reasons, now);
}

health_decision health_machine::fence(std::size_t i, std::string_view why, time_point now) {
  auto& b = backends_.at(i);
  b.fenced = true;
  return on_operator(i, "fenced: " + std::string(why), now);
}

health_decision health_machine::unfence(std::size_t i, time_point now) {
  auto& b = backends_.at(i);
  b.fenced = false;
  b.former_primary = false;
  return on_operator(i, "un-fenced by an operator", now);
}

health_decision health_machine::drain(std::size_t i, time_point now) {
  backends_.at(i).draining = true;
  return on_operator(i, "draining: no new work, running work finishes", now);
}

health_decision health_machine::undrain(std::size_t i, time_point now) {
  backends_.at(i).draining = false;
  return on_operator(i, "drain ended by an operator", now);
}

health_decision health_machine::on_promote_result(std::size_t i, bool ok, const std::string& error, time_point now) {
  promoting_.reset();
  if (!ok) {
    retry_at_ = now + settings_.failover_after;
    health_decision d;
    d.notes.push_back("promotion of backend " + std::to_string(i) + " failed: " + error + "; retried in " +
                      std::to_string(settings_.failover_after.count()) + " ms");
    return d;
  }
  // pg_promote(true) returned: the server is writable now, no need to wait for its next check.
  auto& b = backends_.at(i);
  b.writable = true;
  b.role = role::primary;
  promoted_ = i;
  return on_operator(i, "promoted by pgsluice (pg_promote())", now);
}

}  // namespace pgsluice::router

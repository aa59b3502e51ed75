// Pool decisions as a plain state machine: FIFO waiters, LIFO idle servers, global limits (see pool_ledger.hpp).
#include "proxy/pool_ledger.hpp"

#include <algorithm>

namespace pgsluice::proxy {

std::uint32_t connections_to_open(std::uint32_t total, std::uint32_t min_pool_size, std::uint32_t pool_size) noexcept {
  const std::uint32_t target = std::min(min_pool_size, pool_size);
  return total >= target ? 0 : target - total;
}

std::uint32_t effective_limit(const pool_limits& limits, std::chrono::steady_clock::duration waited) noexcept {
  if (limits.reserve_pool_size > 0 && waited >= limits.reserve_pool_timeout)
    return limits.pool_size + limits.reserve_pool_size;
  return limits.pool_size;
}

pool_ledger::pool_ledger(pool_limits limits, unsigned workers, open_gate* gate)
    : limits_(limits), gate_(gate), idle_(std::max(1u, workers)) {}

pool_counts pool_ledger::counts() const noexcept {
  return {idle_count_, active_, connecting_, static_cast<std::uint32_t>(waiters_.size())};
}

std::optional<std::size_t> pool_ledger::queue_position(waiter_id w) const noexcept {
  for (std::size_t i = 0; i < waiters_.size(); ++i) {
    if (waiters_[i].id == w) return i;
  }
  return std::nullopt;
}

std::optional<server_id> pool_ledger::take_idle(unsigned worker) {
  if (idle_count_ == 0) return std::nullopt;
  auto pick_from = [&](std::vector<idle_entry>& list) -> std::optional<server_id> {
    if (list.empty()) return std::nullopt;
    const server_id id = list.back().id;
    list.pop_back();
    --idle_count_;
    return id;
  };
  if (worker < idle_.size()) {
    if (auto id = pick_from(idle_[worker])) return id;
  }
  // None on this worker: take the most recently idle one of any other worker.
  std::vector<idle_entry>* best = nullptr;
  for (auto& list : idle_) {
    if (!list.empty() && (best == nullptr || list.back().since > best->back().since)) best = &list;
  }
  return best ? pick_from(*best) : std::nullopt;
}

bool pool_ledger::may_open(time_point now, time_point waiter_since) {
  const std::uint32_t total = idle_count_ + active_ + connecting_;
  if (total >= effective_limit(limits_, now - waiter_since)) return false;
  return gate_ == nullptr || gate_->try_open();
}

void pool_ledger::closed_one() {
  if (gate_ != nullptr) gate_->closed();
}

std::optional<grant> pool_ledger::request(waiter_id w, unsigned worker, time_point now) {
  if (waiters_.empty() && may_hand_out()) {
    if (auto id = take_idle(worker)) {
      ++active_;
      return grant{w, grant::kind::idle_server, *id};
    }
    if (may_open(now, now)) {
      ++connecting_;
      ++client_connecting_;
      return grant{w, grant::kind::connect, 0};
    }
  }
  waiters_.push_back(waiter{w, worker, now});
  return std::nullopt;
}

std::optional<server_id> pool_ledger::try_take_idle(unsigned worker) {
  if (!waiters_.empty() || !may_hand_out()) return std::nullopt;
  auto id = take_idle(worker);
  if (id) ++active_;
  return id;
}

bool pool_ledger::cancel(waiter_id w) {
  auto it = std::find_if(waiters_.begin(), waiters_.end(), [&](const waiter& x) { return x.id == w; });
  if (it == waiters_.end()) return false;
  waiters_.erase(it);
  return true;
}

std::size_t pool_ledger::pick_waiter(time_point now) const noexcept {
  const waiter& head = waiters_.front();
  if (idle_count_ == 0 || !idle_[head.worker % idle_.size()].empty() || now - head.since >= locality_grace) return 0;
  // The idle servers sit on other workers: a waiter of such a worker near the front takes one
  // without moving the socket between event loops or waking another thread.
  const std::size_t limit = std::min(waiters_.size(), locality_window);
  for (std::size_t i = 1; i < limit; ++i) {
    if (!idle_[waiters_[i].worker % idle_.size()].empty()) return i;
  }
  return 0;
}

void pool_ledger::dispatch(time_point now, std::vector<grant>& out) {
  while (!waiters_.empty() && may_hand_out()) {
    const std::size_t i = pick_waiter(now);
    const waiter w = waiters_[i];
    if (auto id = take_idle(w.worker)) {
      ++active_;
      out.push_back(grant{w.id, grant::kind::idle_server, *id});
      waiters_.erase(waiters_.begin() + static_cast<std::ptrdiff_t>(i));
      continue;
    }
    const waiter& head = waiters_.front();
    if (!may_open(now, head.since)) break;
    ++connecting_;
    ++client_connecting_;
    out.push_back(grant{head.id, grant::kind::connect, 0});
    waiters_.pop_front();
  }
}

void pool_ledger::connect_finished(bool ok, bool for_client, server_id s, unsigned worker, time_point now,
                                   time_point created, std::vector<grant>& out) {
  if (connecting_ > 0) --connecting_;
  if (for_client && client_connecting_ > 0) --client_connecting_;
  if (!ok) {
    closed_one();
  } else if (for_client) {
    ++active_;
  } else {
    idle_[worker % idle_.size()].push_back(idle_entry{s, now, created});
    ++idle_count_;
  }
  dispatch(now, out);
}

void pool_ledger::release(server_id s, unsigned worker, bool reusable, time_point now, time_point created,
                          std::vector<grant>& out) {
  if (active_ > 0) --active_;
  if (reusable) {
    idle_[worker % idle_.size()].push_back(idle_entry{s, now, created});
    ++idle_count_;
  } else {
    closed_one();
  }
  dispatch(now, out);
}

std::vector<server_id> pool_ledger::expire(time_point now, std::chrono::milliseconds idle_timeout,
                                           std::chrono::milliseconds lifetime) {
  std::vector<server_id> out;
  for (auto& list : idle_) {
    // Oldest idle first, so min_pool_size keeps the most recently used ones.
    for (auto it = list.begin(); it != list.end();) {
      const std::uint32_t total = idle_count_ + active_ + connecting_;
      const bool too_old = lifetime.count() > 0 && now - it->created >= lifetime;
      const bool too_idle = idle_timeout.count() > 0 && now - it->since >= idle_timeout && total > limits_.min_pool_size;
      if (too_old || too_idle) {
        out.push_back(it->id);
        it = list.erase(it);
        --idle_count_;
        closed_one();
      } else {
        ++it;
      }
    }
  }
  return out;
}

std::vector<server_id> pool_ledger::take_all_idle() {
  std::vector<server_id> out;
  for (auto& list : idle_) {
    for (auto& e : list) {
      out.push_back(e.id);
      closed_one();
    }
    list.clear();
  }
  idle_count_ = 0;
  return out;
}

std::uint32_t pool_ledger::open_for_min() {
  std::uint32_t n = connections_to_open(idle_count_ + active_ + connecting_, limits_.min_pool_size, limits_.pool_size);
  std::uint32_t opened = 0;
  while (opened < n && (gate_ == nullptr || gate_->try_open())) {
    ++opened;
    ++connecting_;
  }
  return opened;
}

}  // namespace pgsluice::proxy

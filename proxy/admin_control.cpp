// PAUSE / RESUME / DISABLE / ENABLE state and the sessions a pause holds (see admin_control.hpp).
#include "proxy/admin_control.hpp"

#include <algorithm>

namespace pgsluice::proxy {

bool traffic_control::paused_locked(std::string_view database) const {
  return all_ || paused_.find(database) != paused_.end();
}

bool traffic_control::paused(std::string_view database) const {
  std::lock_guard lk(mu_);
  return paused_locked(database);
}

bool traffic_control::all_paused() const {
  std::lock_guard lk(mu_);
  return all_;
}

bool traffic_control::disabled(std::string_view database) const {
  std::lock_guard lk(mu_);
  return disabled_.find(database) != disabled_.end();
}

void traffic_control::count_locked() {
  pauses_.store(static_cast<int>(paused_.size()) + (all_ ? 1 : 0), std::memory_order_relaxed);
}

void traffic_control::wake_locked() {
  // Each timer is cancelled on its own worker's thread; the shared_ptr keeps it alive until then.
  for (auto& t : waiters_) {
    asio::post(t->get_executor(), [t] { t->cancel(); });
  }
  waiters_.clear();
}

bool traffic_control::pause_all() {
  std::lock_guard lk(mu_);
  if (all_) return false;
  all_ = true;
  count_locked();
  return true;
}

bool traffic_control::resume_all() {
  std::lock_guard lk(mu_);
  if (!all_) return false;
  all_ = false;
  count_locked();
  wake_locked();
  return true;
}

void traffic_control::pause(std::string_view database) {
  std::lock_guard lk(mu_);
  paused_.emplace(database);
  count_locked();
}

bool traffic_control::resume(std::string_view database) {
  std::lock_guard lk(mu_);
  auto it = paused_.find(database);
  if (it == paused_.end()) return false;
  paused_.erase(it);
  count_locked();
  wake_locked();
  return true;
}

void traffic_control::disable(std::string_view database) {
  std::lock_guard lk(mu_);
  disabled_.emplace(database);
}

void traffic_control::enable(std::string_view database) {
  std::lock_guard lk(mu_);
  if (auto it = disabled_.find(database); it != disabled_.end()) disabled_.erase(it);
}

bool traffic_control::wait_if_paused(std::string_view database, const std::shared_ptr<asio::steady_timer>& timer) {
  std::lock_guard lk(mu_);
  if (!paused_locked(database)) return false;
  waiters_.push_back(timer);
  return true;
}

void traffic_control::forget(const std::shared_ptr<asio::steady_timer>& timer) {
  std::lock_guard lk(mu_);
  waiters_.erase(std::remove(waiters_.begin(), waiters_.end(), timer), waiters_.end());
}

std::vector<std::string> traffic_control::paused_databases() const {
  std::lock_guard lk(mu_);
  return {paused_.begin(), paused_.end()};
}

}  // namespace pgsluice::proxy

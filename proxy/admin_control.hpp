// Internal to proxy/: what the admin console switches on and off — PAUSE (all or one database), DISABLE — and the clients held by a pause.
//
// A paused database lets running transactions finish but gives no server to a new one: the
// session asking for a server waits (its own timer on its own worker) until RESUME. The hot
// path asks `any_paused()`, one relaxed load, before anything else; only while some pause is
// on does a session take the mutex to look at its database and, if paused, register its timer
// — under the same lock that RESUME clears the flag and wakes the registered timers, so no
// wake-up is lost. DISABLE refuses new logins to a database; clients already in stay.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/asio.hpp"

namespace pgsluice::proxy {

class traffic_control {
 public:
  // Hot path: is any pause on at all?
  bool any_paused() const noexcept { return pauses_.load(std::memory_order_relaxed) != 0; }
  // Whether `database` is paused (by PAUSE of all or of it).
  bool paused(std::string_view database) const;
  bool all_paused() const;
  bool disabled(std::string_view database) const;

  // False when already paused (PgBouncer answers "already suspended/paused" for the global one).
  bool pause_all();
  bool resume_all();  // false when not paused
  void pause(std::string_view database);
  bool resume(std::string_view database);  // false when that database is not paused
  void disable(std::string_view database);
  void enable(std::string_view database);

  // If `database` is paused, registers `timer` to be cancelled on its thread when it is
  // resumed and returns true (the caller waits on it, then asks again); false when not paused.
  bool wait_if_paused(std::string_view database, const std::shared_ptr<asio::steady_timer>& timer);
  void forget(const std::shared_ptr<asio::steady_timer>& timer);

  std::vector<std::string> paused_databases() const;

 private:
  bool paused_locked(std::string_view database) const;
  void wake_locked();
  void count_locked();

  mutable std::mutex mu_;
  std::atomic<int> pauses_{0};
  bool all_ = false;
  std::set<std::string, std::less<>> paused_;
  std::set<std::string, std::less<>> disabled_;
  std::vector<std::shared_ptr<asio::steady_timer>> waiters_;
};

}  // namespace pgsluice::proxy

// Internal to proxy/: small members of a client session that cost memory only when used (a timer made on first wait, a value kept on the heap, a one-byte lock).
//
// 10,000 idle clients are 10,000 client_session objects: every member that most sessions never
// use (a timer for a rare wait, the error of the proxy's own query, login keys) is kept out of
// the object itself.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <utility>

#include "proxy/asio.hpp"

namespace pgsluice::proxy {

// A steady_timer made on its first wait: the same calls as the timer's, 16 bytes until then.
// A cancel() before any wait does nothing, as on a timer with no wait pending.
class lazy_timer {
 public:
  explicit lazy_timer(asio::io_context& io) noexcept : io_(&io) {}
  void expires_at(asio::steady_timer::time_point t) { get().expires_at(t); }
  template <class Token>
  auto async_wait(Token&& token) {
    return get().async_wait(std::forward<Token>(token));
  }
  void cancel() {
    if (timer_) timer_->cancel();
  }

 private:
  asio::steady_timer& get() {
    if (!timer_) timer_ = std::make_unique<asio::steady_timer>(*io_);
    return *timer_;
  }
  asio::io_context* io_;
  std::unique_ptr<asio::steady_timer> timer_;
};

// std::optional's interface for a value that is seldom there, kept on the heap: one pointer
// in the object when empty.
template <class T>
class boxed {
 public:
  boxed() = default;
  boxed& operator=(T value) {
    if (value_) {
      *value_ = std::move(value);
    } else {
      value_ = std::make_unique<T>(std::move(value));
    }
    return *this;
  }
  boxed& operator=(std::optional<T> value) {
    if (value) return *this = std::move(*value);
    reset();
    return *this;
  }
  explicit operator bool() const noexcept { return value_ != nullptr; }
  bool has_value() const noexcept { return value_ != nullptr; }
  T& operator*() noexcept { return *value_; }
  const T& operator*() const noexcept { return *value_; }
  T* operator->() noexcept { return value_.get(); }
  const T* operator->() const noexcept { return value_.get(); }
  void reset() noexcept { value_.reset(); }

 private:
  std::unique_ptr<T> value_;
};

// A lock for state read by another thread now and then (a cancel request's target): one byte,
// where std::mutex takes 40. Held only for a copy of a few bytes.
class tiny_lock {
 public:
  void lock() noexcept {
    while (flag_.test_and_set(std::memory_order_acquire)) flag_.wait(true, std::memory_order_relaxed);
  }
  void unlock() noexcept {
    flag_.clear(std::memory_order_release);
    flag_.notify_one();
  }

 private:
  std::atomic_flag flag_;
};

}  // namespace pgsluice::proxy

// The running proxy (runtime.hpp): worker event loops and their janitors, cancel keys, connection budgets and the config.
#include "proxy/runtime.hpp"

#include <malloc.h>
#include <openssl/rand.h>

#include <spdlog/spdlog.h>

#include "proxy/client_session.hpp"
#include "proxy/lanes.hpp"
#include "proxy/pool.hpp"
#include "proxy/tls.hpp"

namespace pgsluice::proxy {

using clock = std::chrono::steady_clock;

// --- worker ------------------------------------------------------------------------------------

worker::worker(runtime& rt, unsigned index) : rt_(rt), index_(index) {}

void worker::start() {
  guard_.emplace(io_.get_executor());
  asio::co_spawn(io_, janitor(), [i = index_](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      spdlog::error("worker{} janitor failed with an exception: {}", i, ex.what());
    }
  });
  thread_ = std::thread([this] {
    metrics::set_thread_shard(index_);
    database_stats::set_thread_shard(index_);
    try {
      io_.run();
    } catch (const std::exception& e) {
      spdlog::critical("worker{} event loop failed with an exception: {}", index_, e.what());
    }
  });
}

void worker::stop() {
  guard_.reset();
  io_.stop();
}

void worker::join() {
  if (thread_.joinable()) thread_.join();
}

void worker::add_session(client_session* s) noexcept {
  if (s->listed_) return;
  s->listed_ = true;
  s->prev_ = nullptr;
  s->next_ = first_;
  if (first_ != nullptr) first_->prev_ = s;
  first_ = s;
  sessions_.fetch_add(1, std::memory_order_relaxed);
}

void worker::remove_session(client_session* s) noexcept {
  if (!s->listed_) return;
  s->listed_ = false;
  if (s->prev_ != nullptr) s->prev_->next_ = s->next_;
  if (s->next_ != nullptr) s->next_->prev_ = s->prev_;
  if (first_ == s) first_ = s->next_;
  s->next_ = s->prev_ = nullptr;
  sessions_.fetch_sub(1, std::memory_order_relaxed);
}

void worker::visit_sessions(const std::function<void(client_session&)>& fn) {
  for (client_session* s = first_; s != nullptr;) {
    client_session* next = s->next_;  // fn may end the session, never unlinks it synchronously
    fn(*s);
    s = next;
  }
}

worker::~worker() = default;

lane_set& worker::lanes() {
  if (!lanes_) lanes_ = std::make_unique<lane_set>(*this);
  return *lanes_;
}

void worker::janitor_tick(clock::time_point now, bool force) {
  const auto cfg = rt_.config();
  const bool shutting_down = rt_.shutting_down();
  if (lanes_) lanes_->tick(shutting_down || force);
  for (client_session* s = first_; s != nullptr;) {
    client_session* next = s->next_;  // check_timeouts never unlinks synchronously
    if (force) {
      s->terminate();
    } else {
      s->check_timeouts(now, *cfg, shutting_down);
    }
    s = next;
  }
}

awaitable<void> worker::janitor() {
  asio::steady_timer timer(io_);
  std::int64_t peak_clients = 0;
  for (;;) {
    timer.expires_after(std::chrono::milliseconds(200));
    auto [ec] = co_await timer.async_wait(nothrow_awaitable);
    if (ec) co_return;
    janitor_tick(clock::now(), false);
    if (index_ == 0) {
      // glibc keeps the heap pages of freed sessions; after many clients left (half of a peak
      // of at least 1,000), hand them back to the system.
      const std::int64_t clients = rt_.client_count().load(std::memory_order_relaxed);
      peak_clients = std::max(peak_clients, clients);
      if (peak_clients >= 1000 && clients <= peak_clients / 2) {
        ::malloc_trim(0);
        peak_clients = clients;
      }
    }
  }
}

// --- cancel keys, budgets --------------------------------------------------------------------

std::pair<std::int32_t, std::int32_t> cancel_registry::add(const std::shared_ptr<client_session>& s) {
  std::lock_guard lk(mu_);
  for (;;) {
    std::uint32_t r[2];
    RAND_bytes(reinterpret_cast<unsigned char*>(r), sizeof r);
    // A positive pid, like a real backend's, so clients that print or compare it are not surprised.
    const auto pid = static_cast<std::int32_t>((r[0] & 0x7fffffff) | 1);
    const auto secret = static_cast<std::int32_t>(r[1]);
    if (map_.emplace(key(pid, secret), s).second) return {pid, secret};
  }
}

void cancel_registry::remove(std::int32_t pid, std::int32_t secret) {
  std::lock_guard lk(mu_);
  map_.erase(key(pid, secret));
}

std::shared_ptr<client_session> cancel_registry::find(std::int32_t pid, std::int32_t secret) {
  std::lock_guard lk(mu_);
  auto it = map_.find(key(pid, secret));
  return it == map_.end() ? nullptr : it->second.lock();
}

bool connection_budget::try_take() noexcept {
  const std::uint32_t limit = limit_.load(std::memory_order_relaxed);
  std::uint32_t cur = used_.load(std::memory_order_relaxed);
  for (;;) {
    if (limit != 0 && cur >= limit) return false;
    if (used_.compare_exchange_weak(cur, cur + 1, std::memory_order_relaxed)) return true;
  }
}

// --- runtime -----------------------------------------------------------------------------------

runtime::runtime(std::shared_ptr<const conf::config> cfg, std::filesystem::path config_file)
    : config_(std::move(cfg)), config_file_(std::move(config_file)) {
  const unsigned n = config_->effective_workers();
  db_stats_ = std::make_unique<stats_registry>(n);
  for (unsigned i = 0; i < n; ++i) workers_.push_back(std::make_unique<worker>(*this, i));
}

runtime::~runtime() {
  // Pools hold idle server sockets registered with the workers' event loops: close them first,
  // then the workers (their event loops may still hold sessions that update stats_ on the way out).
  clusters_.clear();
  workers_.clear();
}

std::shared_ptr<const conf::config> runtime::config() const {
  std::lock_guard lk(config_mu_);
  return config_;
}

void runtime::set_config(std::shared_ptr<const conf::config> cfg) {
  std::lock_guard lk(config_mu_);
  config_ = std::move(cfg);
}

bool runtime::reload() {
  std::lock_guard serial(reload_mu_);  // SIGHUP and RELOAD on the console may race
  std::shared_ptr<const conf::config> next;
  const auto unix_now = std::chrono::duration_cast<std::chrono::seconds>(
                            std::chrono::system_clock::now().time_since_epoch()).count();
  try {
    next = conf::load_config(config_file_);
  } catch (const std::exception& e) {  // conf::config_error included: what() lists its problems
    stats_.reload_done(false, unix_now);
    spdlog::error("reload failed, keeping the current config: {}", e.what());
    return false;
  }
  // New certificates and keys are read now, for the connections that come next.
  std::shared_ptr<const tls_contexts> tls;
  try {
    tls = tls_contexts::load(next->tls);
  } catch (const std::exception& e) {
    spdlog::error("reload failed, keeping the current config: {}", e.what());
    return false;
  }
  stats_.reload_done(true, unix_now);
  for (const auto& msg : conf::reload_restrictions(*config(), *next)) spdlog::warn("reload: {} (needs a restart)", msg);
  for (const auto& w : next->warnings) spdlog::warn("config: {}", w.to_string());
  set_tls(std::move(tls));
  set_config(next);
  clusters_.retire_changed(*next);
  spdlog::info("config reloaded from {}", config_file_.string());
  return true;
}

void runtime::request_shutdown() {
  if (shutdown_hook_) shutdown_hook_();
}

std::shared_ptr<const tls_contexts> runtime::tls() const {
  std::lock_guard lk(config_mu_);
  return tls_;
}

void runtime::set_tls(std::shared_ptr<const tls_contexts> t) {
  std::lock_guard lk(config_mu_);
  tls_ = std::move(t);
}

}  // namespace pgsluice::proxy

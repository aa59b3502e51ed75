// The running proxy (runtime.hpp): worker event loops and their janitors, cancel keys, connection budgets, the config and the pool registry.
#include "proxy/runtime.hpp"

#include <malloc.h>
#include <openssl/rand.h>

#include <spdlog/spdlog.h>

#include "proxy/client_session.hpp"
#include "proxy/pool.hpp"

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

void worker::janitor_tick(clock::time_point now, bool force) {
  const auto cfg = rt_.config();
  const bool shutting_down = rt_.shutting_down();
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
  for (unsigned i = 0; i < n; ++i) workers_.push_back(std::make_unique<worker>(*this, i));
}

runtime::~runtime() {
  // Pools hold idle server sockets registered with the workers' event loops: close them first,
  // then the workers (their event loops may still hold sessions that update stats_ on the way out).
  clear_pools();
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

namespace {

// Everything about a pool that a reload may change, as text (see pool_config::fingerprint).
pool_config make_pool_config(const conf::config& cfg, const conf::database_config& db, std::string_view database,
                             std::string_view user, const std::optional<std::string>& auth_secret) {
  pool_config pc;
  const conf::backend_config* be = db.primary();
  if (be == nullptr && !db.backends.empty()) be = &db.backends.front();
  if (be != nullptr) {
    pc.target.host = be->host;
    pc.target.port = be->port;
  }
  pc.target.dbname = std::string(db.backend_dbname(database));
  const conf::user_config* ucfg = cfg.find_user(user);
  if (db.user) {
    // A forced server user (PgBouncer's user= in [databases]).
    pc.target.user = *db.user;
    const conf::user_config* forced = cfg.find_user(*db.user);
    pc.credentials.secret = db.password ? *db.password : (forced ? forced->password : std::string());
  } else {
    pc.target.user = std::string(user);
    pc.credentials.secret = ucfg ? ucfg->password : auth_secret.value_or(std::string());
  }
  pc.credentials.kind = conf::detect_secret_kind(pc.credentials.secret);
  pc.settings = cfg.effective_pool(db, ucfg);
  pc.connect_timeout = cfg.server_connect_timeout;
  pc.login_retry = cfg.server_login_retry;
  pc.idle_timeout = cfg.server_idle_timeout;
  pc.lifetime = cfg.server_lifetime;
  pc.reserve_timeout = cfg.reserve_pool_timeout;
  pc.max_prepared_statements = cfg.max_prepared_statements;
  pc.reset_query = cfg.server_reset_query;
  pc.reset_always = cfg.server_reset_query_always;
  pc.fingerprint = pc.target.host + '\n' + std::to_string(pc.target.port) + '\n' + pc.target.dbname + '\n' +
                   pc.target.user + '\n' + pc.credentials.secret + '\n' +
                   std::string(conf::to_string(pc.settings.pool_mode)) + '\n' + std::to_string(pc.settings.pool_size) +
                   '\n' + std::to_string(pc.settings.min_pool_size) + '\n' +
                   std::to_string(pc.settings.reserve_pool_size) + '\n' + std::to_string(pc.connect_timeout.count()) +
                   '\n' + std::to_string(pc.idle_timeout.count()) + '\n' + std::to_string(pc.lifetime.count()) + '\n' +
                   std::to_string(pc.max_prepared_statements) + '\n' + pc.reset_query + '\n' +
                   (pc.reset_always ? "1" : "0");
  return pc;
}

}  // namespace

std::shared_ptr<pool> runtime::get_pool(const conf::config& cfg, const conf::database_config& db,
                                        std::string_view database, std::string_view user,
                                        const std::optional<std::string>& auth_secret) {
  std::lock_guard lk(pools_mu_);
  auto key = std::make_pair(std::string(database), std::string(user));
  auto it = pools_.find(key);
  if (it != pools_.end() && !it->second->retired()) return it->second;

  pool_config pc = make_pool_config(cfg, db, database, user, auth_secret);
  auto& db_budget = db_budgets_[std::string(database)];
  if (!db_budget) db_budget = std::make_shared<connection_budget>(pc.settings.max_db_connections);
  db_budget->set_limit(pc.settings.max_db_connections);
  auto& user_budget = user_budgets_[pc.target.user];
  if (!user_budget) user_budget = std::make_shared<connection_budget>(pc.settings.max_user_connections);
  user_budget->set_limit(pc.settings.max_user_connections);
  const std::string name = std::string(database) + "/" + std::string(user);
  spdlog::info("pool={} created server={}:{}/{} server_user={} mode={} pool_size={} min_pool_size={}", name,
               pc.target.host, pc.target.port, pc.target.dbname, pc.target.user, conf::to_string(pc.settings.pool_mode),
               pc.settings.pool_size, pc.settings.min_pool_size);
  auto p = std::make_shared<pool>(*this, name, std::move(pc), db_budget, user_budget);
  pools_[key] = p;
  return p;
}

std::vector<std::shared_ptr<pool>> runtime::pools() {
  std::lock_guard lk(pools_mu_);
  std::vector<std::shared_ptr<pool>> out;
  out.reserve(pools_.size());
  for (const auto& [k, p] : pools_) out.push_back(p);
  return out;
}

void runtime::retire_changed_pools(const conf::config& cfg) {
  std::vector<std::shared_ptr<pool>> retired;
  {
    std::lock_guard lk(pools_mu_);
    for (auto it = pools_.begin(); it != pools_.end();) {
      const auto& [key, p] = *it;
      const conf::database_config* db = cfg.find_database(key.first);
      bool changed = db == nullptr;
      if (!changed) {
        const auto next = make_pool_config(cfg, *db, key.first, key.second,
                                           p->cfg().credentials.secret.empty()
                                               ? std::nullopt
                                               : std::optional<std::string>(p->cfg().credentials.secret));
        changed = next.fingerprint != p->cfg().fingerprint;
      }
      if (changed) {
        retired.push_back(p);
        it = pools_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& p : retired) {
    spdlog::info("pool={} retired reason=config_changed", p->name());
    p->retire();
  }
}

void runtime::clear_pools() {
  std::map<std::pair<std::string, std::string>, std::shared_ptr<pool>> pools;
  {
    std::lock_guard lk(pools_mu_);
    pools.swap(pools_);
  }
  for (auto& [k, p] : pools) p->retire();
}

}  // namespace pgsluice::proxy

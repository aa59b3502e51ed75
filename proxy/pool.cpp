// Server-connection pools shared by all workers: FIFO waiting, hand-over across threads, login of new servers.
#include "proxy/pool.hpp"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "proxy/runtime.hpp"

namespace pgsluice::proxy {

using clock = std::chrono::steady_clock;

bool pool::budget_gate::try_open() {
  if (db_ && !db_->try_take()) return false;
  if (user_ && !user_->try_take()) {
    if (db_) db_->give_back();
    return false;
  }
  return true;
}

void pool::budget_gate::closed() {
  if (db_) db_->give_back();
  if (user_) user_->give_back();
}

namespace {
pool_limits limits_of(const pool_config& c) {
  return pool_limits{c.settings.pool_size, c.settings.min_pool_size, c.settings.reserve_pool_size, c.reserve_timeout};
}

// The bounds of pool_size = "auto": never more busy servers than the shared budgets allow.
concurrency_limit_settings auto_limits_of(const conf::pool_settings& s) {
  concurrency_limit_settings out;
  out.min = s.pool_size_auto_min;
  out.max = s.pool_size;
  if (s.max_db_connections > 0) out.max = std::min(out.max, s.max_db_connections);
  if (s.max_user_connections > 0) out.max = std::min(out.max, s.max_user_connections);
  out.min = std::min(out.min, out.max);
  return out;
}
}  // namespace

pool::pool(runtime& rt, std::string name, pool_config cfg, std::shared_ptr<connection_budget> db_budget,
           std::shared_ptr<connection_budget> user_budget)
    : rt_(rt),
      name_(std::move(name)),
      cfg_(std::move(cfg)),
      gate_(std::move(db_budget), std::move(user_budget)),
      ledger_(limits_of(cfg_), static_cast<unsigned>(rt.workers().size()), &gate_) {
  active_limit_.store(cfg_.settings.pool_size, std::memory_order_relaxed);
  if (cfg_.settings.pool_size_auto) {
    limiter_.emplace(auto_limits_of(cfg_.settings), clock::now());
    ledger_.set_active_limit(limiter_->limit());
    active_limit_.store(limiter_->limit(), std::memory_order_relaxed);
  }
}

pool::~pool() { close_idle(); }

pool_counts pool::counts() const {
  std::lock_guard lk(mu_);
  return ledger_.counts();
}

std::shared_ptr<const parameter_set> pool::initial_params() const {
  std::lock_guard lk(mu_);
  return initial_params_;
}

bool pool::statement_known(const statement_digest& d) const {
  std::lock_guard lk(mu_);
  return known_statements_.count(d) != 0;
}

void pool::statement_validated(const statement_digest& d) {
  std::lock_guard lk(mu_);
  // Bounded: a client generating endless distinct statements only costs itself round trips.
  if (known_statements_.size() >= 100000) known_statements_.clear();
  known_statements_.insert(d);
}

void pool::remember_scram_keys(const protocol::scram_client_keys& keys) {
  std::lock_guard lk(mu_);
  scram_keys_ = keys;
}

std::shared_ptr<server_connection> pool::take_idle_locked(server_id id) {
  auto it = std::find_if(idle_.begin(), idle_.end(), [&](const auto& s) { return s->id() == id; });
  if (it == idle_.end()) return nullptr;
  auto s = std::move(*it);
  *it = std::move(idle_.back());
  idle_.pop_back();
  return s;
}

std::vector<std::shared_ptr<pool::waiter_slot>> pool::deliver_locked(std::vector<grant>& grants) {
  std::vector<std::shared_ptr<waiter_slot>> wake_list;
  for (const auto& g : grants) {
    auto it = waiters_.find(g.waiter);
    if (it == waiters_.end()) continue;  // cannot happen: a cancelled waiter is out of the ledger too
    auto slot = std::move(it->second);
    waiters_.erase(it);
    slot->granted = g;
    if (g.k == grant::kind::idle_server) {
      slot->server = take_idle_locked(g.server);
      slot->granted_at = clock::now();
    }
    wake_list.push_back(std::move(slot));
  }
  grants.clear();
  return wake_list;
}

void pool::wake(std::vector<std::shared_ptr<waiter_slot>>& slots) {
  for (auto& slot : slots) {
    auto ex = slot->timer.get_executor();
    asio::post(ex, [slot = std::move(slot)] { slot->timer.cancel(); });
  }
}

awaitable<acquire_result> pool::acquire(worker& w, std::uint64_t client_id, clock::time_point deadline,
                                        wait_handle* handle) {
  bool waited = false;
  for (;;) {
    clock::time_point granted_at{};  // a server handed over from the queue: when it was
    const waiter_id wid = next_waiter_.fetch_add(1, std::memory_order_relaxed);
    std::optional<grant> g;
    std::shared_ptr<server_connection> srv;
    std::shared_ptr<waiter_slot> slot;
    {
      std::lock_guard lk(mu_);
      g = ledger_.request(wid, w.index(), clock::now());
      if (g && g->k == grant::kind::idle_server) srv = take_idle_locked(g->server);
      if (!g) {
        slot = std::make_shared<waiter_slot>(w.io().get_executor());
        waiters_.emplace(wid, slot);
      }
    }
    if (!g) {
      spdlog::debug("c{} waiting pool={}", client_id, name_);
      waited = true;
      const auto queued_at = clock::now();
      slot->timer.expires_at(deadline);
      if (handle != nullptr) handle->timer = &slot->timer;
      if (handle == nullptr || !handle->cancelled) co_await slot->timer.async_wait(nothrow_awaitable);
      if (handle != nullptr) handle->timer = nullptr;
      std::lock_guard lk(mu_);
      // Every wait that ended with a server or at query_wait_timeout (not a client leaving).
      if (slot->granted || handle == nullptr || !handle->cancelled) rt_.stats().observe_pool_wait(clock::now() - queued_at);
      if (slot->granted) {
        g = slot->granted;
        srv = std::move(slot->server);
        granted_at = slot->granted_at;
      } else {
        ledger_.cancel(wid);
        waiters_.erase(wid);
        acquire_result r;
        r.timed_out = handle == nullptr || !handle->cancelled;
        r.cancelled = !r.timed_out;
        r.waited = true;
        co_return r;
      }
    }

    if (g->k == grant::kind::idle_server) {
      if (!srv || !activate(srv, w, granted_at)) continue;
      acquire_result r;
      r.server = std::move(srv);
      r.waited = waited;
      co_return r;
    }

    // A connect grant: this client opens the new connection on its own worker.
    auto [fresh, err] = co_await open_server(w, true);
    acquire_result r;
    r.waited = waited;
    if (err) {
      r.error = std::move(err);
      co_return r;
    }
    fresh->set_state(server_state::active);
    fresh->last_used = clock::now();  // handed out now: its hold time starts after the login
    r.server = std::move(fresh);
    co_return r;
  }
}

bool pool::activate(const std::shared_ptr<server_connection>& srv, worker& w, clock::time_point granted_at) {
  // A server used moments ago is not checked: the check is a system call per transaction, and
  // a server dying within that window is caught like any failure during a query. A server
  // handed to a queued client counts as idle until it was granted, not until that client's
  // event loop got to it (with 100 clients queued that alone can take milliseconds).
  const auto now = clock::now();
  const auto idle_until = granted_at == clock::time_point{} ? now : granted_at;
  if (idle_until - srv->last_used > std::chrono::milliseconds(2) && !srv->looks_alive()) {
    spdlog::info("{} closing pool={} reason=closed_while_idle", srv->name(), name_);
    release(srv, false);
    return false;
  }
  srv->adopt(w.io(), w.index());
  srv->set_state(server_state::active);
  srv->last_used = now;
  return true;
}

std::shared_ptr<server_connection> pool::try_acquire(worker& w) {
  std::shared_ptr<server_connection> srv;
  {
    std::lock_guard lk(mu_);
    if (auto id = ledger_.try_take_idle(w.index())) srv = take_idle_locked(*id);
  }
  if (!srv || !activate(srv, w, {})) return nullptr;
  return srv;
}

void pool::release(std::shared_ptr<server_connection> s, bool reusable) {
  const auto now = clock::now();
  if (close_needed(s->id()) || !s->is_open() || s->transaction_status != 'I') reusable = false;
  if (reusable && cfg_.lifetime.count() > 0 && now - s->created >= cfg_.lifetime) {
    reusable = false;
    spdlog::info("{} closing pool={} reason=server_lifetime", s->name(), name_);
  }
  // How long the client held it (activate() stamped last_used): the transaction's round trip
  // as the pool sees it, its wait in the queue left out.
  const auto held = now - s->last_used;
  if (reusable) {
    s->set_state(server_state::idle);
    s->last_used = now;
  } else {
    s->close();
  }
  std::vector<grant> grants;
  std::vector<std::shared_ptr<waiter_slot>> wake_list;
  {
    std::lock_guard lk(mu_);
    if (reusable) idle_.push_back(s);
    if (limiter_ && reusable && limiter_->on_sample(held, ledger_.counts().active, now)) {
      ledger_.set_active_limit(limiter_->limit());
      active_limit_.store(limiter_->limit(), std::memory_order_relaxed);
      spdlog::debug("pool={} limit={} baseline_us={}", name_, limiter_->limit(),
                    std::chrono::duration_cast<std::chrono::microseconds>(limiter_->baseline()).count());
    }
    ledger_.release(s->id(), s->worker(), reusable, now, s->created, grants);
    wake_list = deliver_locked(grants);
  }
  wake(wake_list);
}

awaitable<std::pair<std::shared_ptr<server_connection>, std::optional<server_error>>> pool::open_server(worker& w,
                                                                                                        bool for_client) {
  auto fresh = std::make_shared<server_connection>(rt_, rt_.next_server_id(), w.io(), w.index());
  fresh->owner = weak_from_this();
  {
    std::lock_guard lk(live_mu_);
    live_.insert(fresh->id());
  }
  fresh->statements = server_statements(cfg_.max_prepared_statements);
  server_credentials creds = login_credentials();
  auto err = co_await fresh->login(cfg_.target, creds, cfg_.connect_timeout);
  std::vector<grant> grants;
  std::vector<std::shared_ptr<waiter_slot>> wake_list;
  {
    std::lock_guard lk(mu_);
    if (!err) {
      if (creds.scram_keys) scram_keys_ = creds.scram_keys;
      if (!initial_params_) initial_params_ = std::make_shared<parameter_set>(fresh->reported);
      if (!for_client) {
        fresh->set_state(server_state::idle);
        idle_.push_back(fresh);
      }
    } else {
      last_login_failure_ = clock::now();
      // Keys that no longer match the server's verifier were dropped by login(): forget them.
      if (!creds.scram_keys) scram_keys_.reset();
    }
    ledger_.connect_finished(!err, for_client, fresh->id(), w.index(), clock::now(), fresh->created, grants);
    wake_list = deliver_locked(grants);
  }
  wake(wake_list);
  if (err) {
    rt_.stats().add(counter::server_login_failures);
    spdlog::warn("{} login_failed pool={} server={}:{} purpose={} sqlstate={} error=\"{}\"", fresh->name(), name_,
                 cfg_.target.host, cfg_.target.port, for_client ? "client" : "min_pool_size", err->sqlstate, err->message);
    fresh->close();
  } else {
    spdlog::info("{} opened pool={} server={}:{} purpose={} backend_pid={}", fresh->name(), name_, cfg_.target.host,
                 cfg_.target.port, for_client ? "client" : "min_pool_size", fresh->backend_pid);
  }
  co_return std::make_pair(std::move(fresh), std::move(err));
}

awaitable<void> pool::open_idle(worker& w) { co_await open_server(w, false); }

bool pool::can_log_in_locked() const {
  return cfg_.credentials.kind == conf::secret_kind::plaintext || cfg_.credentials.kind == conf::secret_kind::md5 ||
         scram_keys_.has_value() || cfg_.credentials.kind == conf::secret_kind::none;
}

bool pool::can_log_in_alone() const {
  std::lock_guard lk(mu_);
  return can_log_in_locked();
}

server_credentials pool::login_credentials() const {
  std::lock_guard lk(mu_);
  server_credentials creds = cfg_.credentials;
  if (scram_keys_) creds.scram_keys = scram_keys_;
  return creds;
}

void pool::maintain(clock::time_point now) {
  std::vector<std::shared_ptr<server_connection>> expired;
  std::vector<grant> grants;
  std::vector<std::shared_ptr<waiter_slot>> wake_list;
  std::uint32_t to_open = 0;
  {
    std::lock_guard lk(mu_);
    for (auto id : ledger_.expire(now, cfg_.idle_timeout, cfg_.lifetime)) {
      if (auto s = take_idle_locked(id)) expired.push_back(std::move(s));
    }
    // Connections for min_pool_size only when logins work (server_login_retry after a failure)
    // and the credentials can be used without a client (a plaintext password or known keys).
    const bool can_log_in = can_log_in_locked();
    if (!retired() && can_log_in && now - last_login_failure_ >= cfg_.login_retry) to_open = ledger_.open_for_min();
    ledger_.dispatch(now, grants);
    wake_list = deliver_locked(grants);
  }
  wake(wake_list);
  for (auto& s : expired) {
    spdlog::info("{} closing pool={} reason=idle_or_lifetime", s->name(), name_);
    s->close();
  }
  auto& workers = rt_.workers();
  for (std::uint32_t i = 0; i < to_open; ++i) {
    worker& w = *workers[next_worker_.fetch_add(1, std::memory_order_relaxed) % workers.size()];
    asio::co_spawn(w.io(), open_idle(w), [name = name_](std::exception_ptr e) {
      if (e) {
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& ex) {
          spdlog::error("pool={} min_pool_size connect failed with an exception: {}", name, ex.what());
        }
      }
    });
  }
}

void pool::retire() {
  retired_.store(true, std::memory_order_relaxed);
  close_idle();
}

void pool::reconnect(std::uint64_t below) {
  std::uint64_t cur = close_below_.load(std::memory_order_relaxed);
  while (cur < below && !close_below_.compare_exchange_weak(cur, below, std::memory_order_relaxed)) {
  }
  close_idle();
}

std::uint32_t pool::close_needed_count() const {
  std::lock_guard lk(live_mu_);
  if (retired()) return static_cast<std::uint32_t>(live_.size());
  const auto below = close_below_.load(std::memory_order_relaxed);
  return static_cast<std::uint32_t>(std::distance(live_.begin(), live_.lower_bound(below)));
}

void pool::server_gone(std::uint64_t id) {
  std::lock_guard lk(live_mu_);
  live_.erase(id);
}

std::vector<pool::idle_view> pool::idle_servers() const {
  std::lock_guard lk(mu_);
  std::vector<idle_view> out;
  out.reserve(idle_.size());
  for (const auto& s : idle_) {
    out.push_back(idle_view{s->name(), s->id(), s->remote, s->local, s->created, s->last_used, s->backend_pid});
  }
  return out;
}

void pool::close_idle() {
  std::vector<std::shared_ptr<server_connection>> closing;
  {
    std::lock_guard lk(mu_);
    for (auto id : ledger_.take_all_idle()) {
      if (auto s = take_idle_locked(id)) closing.push_back(std::move(s));
    }
  }
  for (auto& s : closing) s->close();
}

}  // namespace pgsluice::proxy

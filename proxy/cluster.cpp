// Clusters of backends and their registry (see cluster.hpp).
#include "proxy/cluster.hpp"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "proxy/pool.hpp"
#include "proxy/runtime.hpp"

namespace pgsluice::proxy {

namespace {

// Everything about a backend's pool that a reload may change, as text (see pool_config::fingerprint).
pool_config make_pool_config(const conf::config& cfg, const conf::database_config& db, const conf::backend_config& be,
                             std::string_view database, std::string_view user,
                             const std::optional<std::string>& auth_secret) {
  pool_config pc;
  pc.target.host = be.host;
  pc.target.port = be.port;
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
  pc.pipeline_depth = cfg.effective_pipeline_depth(db);
  pc.reset_query = cfg.server_reset_query;
  pc.reset_always = cfg.server_reset_query_always;
  pc.fingerprint = pc.target.host + '\n' + std::to_string(pc.target.port) + '\n' +
                   std::string(conf::to_string(be.role)) + '\n' + std::to_string(be.weight) + '\n' + pc.target.dbname +
                   '\n' + pc.target.user + '\n' + pc.credentials.secret + '\n' +
                   std::string(conf::to_string(pc.settings.pool_mode)) + '\n' + std::to_string(pc.settings.pool_size) +
                   '\n' + std::to_string(pc.settings.min_pool_size) + '\n' +
                   std::to_string(pc.settings.reserve_pool_size) + '\n' + std::to_string(pc.connect_timeout.count()) +
                   '\n' + std::to_string(pc.idle_timeout.count()) + '\n' + std::to_string(pc.lifetime.count()) + '\n' +
                   std::to_string(pc.max_prepared_statements) + '\n' + pc.reset_query + '\n' +
                   (pc.reset_always ? "1" : "0") + '\n' + std::to_string(pc.reserve_timeout.count()) + '\n' +
                   std::to_string(pc.login_retry.count()) + '\n' + std::to_string(pc.settings.max_db_connections) + '\n' +
                   std::to_string(pc.settings.max_user_connections) + "\npipeline\n" +
                   std::to_string(pc.pipeline_depth);
  if (pc.settings.pool_size_auto) pc.fingerprint += "\nauto\n" + std::to_string(pc.settings.pool_size_auto_min);
  // How pgsluice talks to the server: a reload changing it retires the pool, so its
  // connections are not kept under the settings they were opened with.
  const conf::tls_config& t = cfg.tls;
  pc.fingerprint += "\ntls\n" + std::string(conf::to_string(t.server_tls_mode)) + '\n' + t.server_tls_ca_file.string() +
                    '\n' + t.server_tls_cert_file.string() + '\n' + t.server_tls_key_file.string();
  return pc;
}

cluster::routing make_routing(const conf::config& cfg, const conf::database_config& db, std::string_view user) {
  const auto rs = cfg.effective_routing(db, cfg.find_user(user));
  cluster::routing r;
  r.policy = router::make_route_policy(rs);
  r.classify.write_functions = rs.write_functions;
  r.session_attrs = rs.target_session_attrs;
  r.lag_check_interval = rs.lag_check_interval;
  r.hold_timeout = cfg.failover_hold_timeout;
  return r;
}

std::string routing_fingerprint(const cluster::routing& r) {
  const auto& p = r.policy;
  std::string f = std::string(p.read_write_split ? "split" : "nosplit") + '\n' + std::string(router::to_string(p.load_balance)) +
                  '\n' + std::string(router::to_string(p.primary_reads)) + '\n' +
                  std::to_string(p.max_replica_lag_bytes) + '\n' + std::to_string(p.max_replica_lag_time.count()) + '\n' +
                  std::string(router::to_string(p.consistency)) + '\n' + std::to_string(p.primary_after_write_for.count()) +
                  '\n' + std::to_string(p.read_your_writes_wait.count()) + '\n' +
                  std::string(conf::to_string(r.session_attrs)) + '\n' + std::to_string(r.lag_check_interval.count()) + '\n' +
                  std::to_string(r.hold_timeout.count()) + '\n';
  for (const auto& fn : r.classify.write_functions) f += fn + ',';
  return f;
}

std::string cluster_fingerprint(const conf::config& cfg, const conf::database_config& db, std::string_view database,
                                std::string_view user, const std::optional<std::string>& auth_secret) {
  std::string f;
  for (const auto& be : db.backends) f += make_pool_config(cfg, db, be, database, user, auth_secret).fingerprint + "\n--\n";
  return f + routing_fingerprint(make_routing(cfg, db, user));
}

}  // namespace

// --- cluster -----------------------------------------------------------------------------------

cluster::cluster(std::string database, std::string user, std::vector<std::unique_ptr<backend>> backends, routing r,
                 std::shared_ptr<database_stats> stats, std::shared_ptr<backend_set> set)
    : name_(database + "/" + user),
      database_(std::move(database)),
      user_(std::move(user)),
      stats_(std::move(stats)),
      backends_(std::move(backends)),
      routing_(std::move(r)),
      set_(std::move(set)) {
  for (std::size_t i = 0; i < backends_.size(); ++i) backends_[i]->shared = &set_->at(i);
  for (const auto& b : backends_) fingerprint_ += b->pool->cfg().fingerprint + "\n--\n";
  fingerprint_ += routing_fingerprint(routing_);
  routes_reads_ = routing_.policy.read_write_split && has_replicas();
}

cluster::~cluster() = default;

std::uint32_t cluster::pipeline_depth() const noexcept {
  return transaction_mode() ? backends_.front()->pool->cfg().pipeline_depth : 0;
}

bool cluster::transaction_mode() const noexcept {
  return !backends_.empty() && backends_.front()->pool->transaction_mode();
}

cluster::pick cluster::choose(const router::route_request& req, const backend* avoid) {
  // A snapshot for the pure decision, on the caller's stack (one entry per backend).
  auto view_of = [avoid](const backend& b) {
    router::backend_view v;
    const auto& s = *b.shared;
    v.role = s.role.load(std::memory_order_relaxed);
    v.health = s.health.load(std::memory_order_relaxed);
    v.weight = b.cfg.weight;
    v.active = b.active.load(std::memory_order_relaxed);
    v.replay_lsn = s.position.load(std::memory_order_relaxed);
    if (const auto lb = s.lag_bytes.load(std::memory_order_relaxed); lb != unknown) v.lag_bytes = lb;
    if (const auto lt = s.lag_ms.load(std::memory_order_relaxed); lt >= 0) v.lag_time = std::chrono::milliseconds(lt);
    if (&b == avoid) v.health = router::health::down;
    return v;
  };
  router::route_choice c;
  if (backends_.size() == 1) {
    // One backend (plain pooling): the same decision over a one-entry snapshot.
    const router::backend_view one = view_of(*backends_.front());
    c = router::choose_backend(std::span<const router::backend_view>(&one, 1), req);
  } else {
    constexpr std::size_t inline_backends = 8;
    std::array<router::backend_view, inline_backends> small;
    std::vector<router::backend_view> large;
    std::span<router::backend_view> views;
    if (backends_.size() <= inline_backends) {
      views = std::span<router::backend_view>(small.data(), backends_.size());
    } else {
      large.resize(backends_.size());
      views = large;
    }
    for (std::size_t i = 0; i < backends_.size(); ++i) views[i] = view_of(*backends_[i]);
    if (req.need == router::need::write) {
      c = router::choose_backend(views, req);
    } else {
      std::lock_guard lk(balancer_mu_);
      c = router::choose_backend(views, req, balancer_);
    }
  }
  pick p;
  p.status = c.status;
  p.reason = c.reason;
  if (c.chosen()) {
    auto& b = *backends_[c.backend];
    p.pool = &b.pool;
    if (routes_reads_) {
      // Counted (and connections counted per backend, for least_connections) where reads are routed.
      p.chosen = &b;
      b.routed[static_cast<std::size_t>(c.reason)].fetch_add(1, std::memory_order_relaxed);
      (c.reason == router::route_reason::write ? b.shared->writes : b.shared->reads).fetch_add(1, std::memory_order_relaxed);
    }
  }
  return p;
}

std::shared_ptr<const parameter_set> cluster::initial_params() const {
  for (const auto& b : backends_) {
    if (auto p = b->pool->initial_params()) return p;
  }
  return nullptr;
}

bool cluster::statement_known(const statement_digest& d) const {
  for (const auto& b : backends_) {
    if (b->pool->statement_known(d)) return true;
  }
  return false;
}

void cluster::remember_scram_keys(const protocol::scram_client_keys& keys) {
  for (const auto& b : backends_) b->pool->remember_scram_keys(keys);
}

void cluster::log_routing() const {
  for (const auto& b : backends_) {
    std::string counts;
    for (std::size_t r = 0; r < router::route_reason_count; ++r) {
      const auto n = b->routed[r].load(std::memory_order_relaxed);
      if (n == 0) continue;
      if (!counts.empty()) counts += ' ';
      counts += std::string(router::to_string(static_cast<router::route_reason>(r))) + '=' + std::to_string(n);
    }
    spdlog::info("routed cluster={} backend={}:{} role={} {}", name_, b->cfg.host, b->cfg.port,
                 router::to_string(b->shared->role.load(std::memory_order_relaxed)),
                 counts.empty() ? std::string("none") : counts);
  }
}

bool cluster::has_replicas() const noexcept {
  return std::any_of(backends_.begin(), backends_.end(),
                     [](const auto& b) { return b->cfg.role != conf::backend_role::primary; });
}

void cluster::retire() {
  retired_.store(true, std::memory_order_relaxed);
  for (const auto& b : backends_) b->pool->retire();
}

// --- registry ----------------------------------------------------------------------------------

std::shared_ptr<connection_budget> cluster_registry::budget(
    std::map<std::string, std::shared_ptr<connection_budget>>& budgets, const std::string& key, std::uint32_t limit) {
  auto& b = budgets[key];
  if (!b) b = std::make_shared<connection_budget>(limit);
  b->set_limit(limit);
  return b;
}

std::shared_ptr<cluster> cluster_registry::build(const conf::config& cfg, const conf::database_config& db,
                                                 std::string_view database, std::string_view user,
                                                 const std::optional<std::string>& auth_secret) {
  const std::string name = std::string(database) + "/" + std::string(user);
  std::vector<std::unique_ptr<cluster::backend>> backends;
  for (std::size_t i = 0; i < db.backends.size(); ++i) {
    const auto& be = db.backends[i];
    pool_config pc = make_pool_config(cfg, db, be, database, user, auth_secret);
    auto db_budget = budget(db_budgets_, std::string(database), pc.settings.max_db_connections);
    auto user_budget = budget(user_budgets_, pc.target.user, pc.settings.max_user_connections);
    const std::string pool_name = db.backends.size() == 1 ? name : name + "#" + std::to_string(i);
    spdlog::info("pool={} created server={}:{}/{} role={} server_user={} mode={} pool_size={} min_pool_size={}",
                 pool_name, pc.target.host, pc.target.port, pc.target.dbname, conf::to_string(be.role), pc.target.user,
                 conf::to_string(pc.settings.pool_mode), pc.settings.pool_size, pc.settings.min_pool_size);
    auto b = std::make_unique<cluster::backend>();
    b->cfg = be;
    b->pool = std::make_shared<pool>(rt_, pool_name, std::move(pc), std::move(db_budget), std::move(user_budget));
    backends.push_back(std::move(b));
  }
  return std::make_shared<cluster>(std::string(database), std::string(user), std::move(backends),
                                   make_routing(cfg, db, user), rt_.db_stats().get(database),
                                   rt_.ha().get(cfg, db, database));
}

std::shared_ptr<cluster> cluster_registry::get(const conf::config& cfg, const conf::database_config& db,
                                               std::string_view database, std::string_view user,
                                               const std::optional<std::string>& auth_secret) {
  std::lock_guard lk(mu_);
  auto key = std::make_pair(std::string(database), std::string(user));
  auto it = clusters_.find(key);
  if (it != clusters_.end() && !it->second->retired()) return it->second;
  auto c = build(cfg, db, database, user, auth_secret);
  clusters_[key] = c;
  c->ha().attach(c);
  return c;
}

std::vector<std::shared_ptr<pool>> cluster_registry::pools() {
  std::lock_guard lk(mu_);
  std::vector<std::shared_ptr<pool>> out;
  for (const auto& [k, c] : clusters_) {
    for (const auto& b : c->backends()) out.push_back(b->pool);
  }
  return out;
}

std::vector<std::shared_ptr<cluster>> cluster_registry::all_including_retired() {
  std::lock_guard lk(mu_);
  std::vector<std::shared_ptr<cluster>> out;
  for (const auto& [k, c] : clusters_) out.push_back(c);
  // Retired clusters live while sessions still use them; forget the others.
  retired_.erase(std::remove_if(retired_.begin(), retired_.end(), [&](const auto& w) {
                   auto c = w.lock();
                   if (c) out.push_back(std::move(c));
                   return !c;
                 }),
                 retired_.end());
  return out;
}

void cluster_registry::retire_changed(const conf::config& cfg) {
  std::vector<std::shared_ptr<cluster>> retired;
  {
    std::lock_guard lk(mu_);
    for (auto it = clusters_.begin(); it != clusters_.end();) {
      const auto& [key, c] = *it;
      const conf::database_config* db = cfg.find_database(key.first);
      bool changed = db == nullptr;
      if (!changed) {
        const auto& secret = c->backends().front()->pool->cfg().credentials.secret;
        changed = cluster_fingerprint(cfg, *db, key.first, key.second,
                                      secret.empty() ? std::nullopt : std::optional<std::string>(secret)) !=
                  c->fingerprint();
      }
      if (changed) {
        retired.push_back(c);
        it = clusters_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& c : retired) {
    // Its clients move to the new settings at their next transaction; a client holding its
    // server (session pooling, a pinned session) keeps the old ones until it leaves.
    spdlog::info("pool={} retired reason=config_changed clients_move=at_next_transaction "
                 "session_or_pinned_clients_move=when_they_reconnect", c->name());
    c->retire();
  }
  std::lock_guard lk(mu_);
  for (auto& c : retired) retired_.push_back(c);
}

void cluster_registry::clear() {
  std::map<std::pair<std::string, std::string>, std::shared_ptr<cluster>> clusters;
  {
    std::lock_guard lk(mu_);
    clusters.swap(clusters_);
  }
  for (auto& [k, c] : clusters) {
    if (c->routes_reads()) c->log_routing();
    c->retire();
  }
  rt_.ha().stop();
}

}  // namespace pgsluice::proxy

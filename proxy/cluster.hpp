// Internal to proxy/: a client-facing database (with its user) as a cluster of backends, each with its own pool, and the registry of clusters.
//
// A cluster holds one backend per configured server (today one primary; replicas come with
// read/write routing). Each backend has its own pool, hence its own connection limit, its own
// server connections with their prepared-statement and settings bookkeeping, its own SCRAM
// keys, and its own health state. Which backend serves a transaction (transaction pooling) or
// a session (session pooling) is decided by router::choose_backend() over a snapshot of the
// backends; the session asks cluster::choose() at that boundary and never decides itself.
// Budgets (max_db_connections, max_user_connections) are shared by every pool of every
// cluster with the same database or server user, over all worker threads.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "conf/config.hpp"
#include "proxy/ha.hpp"
#include "proxy/params.hpp"
#include "proxy/pool_stats.hpp"
#include "protocol/scram.hpp"
#include "proxy/prepared.hpp"
#include "router/classify.hpp"
#include "router/select.hpp"

namespace pgsluice::proxy {

class pool;
class runtime;
class connection_budget;

class cluster : public std::enable_shared_from_this<cluster> {
 public:
  static constexpr std::uint64_t unknown = backend_set::unknown;
  struct backend {
    conf::backend_config cfg;
    std::shared_ptr<proxy::pool> pool;
    // Role, health, WAL position and lag, shared by every cluster of the database and published
    // by its health checks (proxy/ha.hpp); it outlives the cluster (the set is held below).
    backend_set::record* shared = nullptr;
    std::atomic<std::uint32_t> active{0};             // server connections attached to clients now
    // Transactions (or sessions) routed here, by why, for the counters logged at exit.
    std::array<std::atomic<std::uint64_t>, router::route_reason_count> routed{};
  };

  // How a cluster routes: the database's resolved settings.
  struct routing {
    router::route_policy policy;
    router::classify_options classify;
    conf::target_session_attrs session_attrs = conf::target_session_attrs::any;
    std::chrono::milliseconds lag_check_interval{500};
    // How long a transaction that needs the primary waits for one while there is none.
    std::chrono::milliseconds hold_timeout{30000};
  };

  cluster(std::string database, std::string user, std::vector<std::unique_ptr<backend>> backends, routing r,
          std::shared_ptr<database_stats> stats, std::shared_ptr<backend_set> set);
  ~cluster();
  cluster(const cluster&) = delete;
  cluster& operator=(const cluster&) = delete;

  const std::string& name() const noexcept { return name_; }  // "database/user"
  const std::string& database() const noexcept { return database_; }  // client-facing
  const std::string& user() const noexcept { return user_; }          // the client's
  // The database's traffic counters (shared by every cluster of the database, kept across reloads).
  database_stats& stats() const noexcept { return *stats_; }
  bool transaction_mode() const noexcept;
  // pipeline_depth of the database (0: off, and always in session mode).
  std::uint32_t pipeline_depth() const noexcept;
  const std::vector<std::unique_ptr<backend>>& backends() const noexcept { return backends_; }

  // The pool for what the next transaction or session needs (nullptr unless chosen); it points
  // into the cluster, which outlives every session using it.
  struct pick {
    const std::shared_ptr<proxy::pool>* pool = nullptr;
    backend* chosen = nullptr;
    router::route_status status = router::route_status::no_primary;
    router::route_reason reason = router::route_reason::write;
  };
  // `avoid`: a backend counted as down for this choice (a read retried after it failed there).
  pick choose(const router::route_request& req, const backend* avoid = nullptr);
  // Whether reads may go elsewhere than the primary (replicas listed, splitting on): when not,
  // the proxy skips classifying statements altogether.
  bool routes_reads() const noexcept { return routes_reads_; }
  const routing& route_settings() const noexcept { return routing_; }
  // The per-backend routing counters, one line per backend, for the log at exit.
  void log_routing() const;

  // ParameterStatus values a new client is told: those of the first backend that logged in.
  std::shared_ptr<const parameter_set> initial_params() const;
  // A statement some backend of this cluster accepted (its Parse can be answered locally).
  bool statement_known(const statement_digest& d) const;
  // Keys a client proved in its SCRAM login, for every backend holding the same verifier.
  void remember_scram_keys(const protocol::scram_client_keys& keys);

  bool has_replicas() const noexcept;

  // Clients logged in through this cluster now (per-database figures of /metrics).
  std::atomic<std::int64_t>& clients() noexcept { return clients_; }
  std::int64_t client_count() const noexcept { return clients_.load(std::memory_order_relaxed); }

  // The database's backends as the health checks see them (fence, drain, status, waiting writes).
  backend_set& ha() const noexcept { return *set_; }

  void retire();
  bool retired() const noexcept { return retired_.load(std::memory_order_relaxed); }
  // The pools' settings as text: a reload retires the cluster when they change.
  const std::string& fingerprint() const noexcept { return fingerprint_; }

 private:
  std::string name_;
  std::string database_;
  std::string user_;
  std::shared_ptr<database_stats> stats_;
  std::vector<std::unique_ptr<backend>> backends_;
  routing routing_;
  bool routes_reads_ = false;
  std::mutex balancer_mu_;
  router::balancer_state balancer_;
  std::string fingerprint_;
  std::atomic<bool> retired_{false};
  std::atomic<std::int64_t> clients_{0};
  std::shared_ptr<backend_set> set_;
};

// All clusters by (client-facing database, user), created on first use.
class cluster_registry {
 public:
  explicit cluster_registry(runtime& rt) : rt_(rt) {}

  // `auth_secret` is the secret fetched by auth_query for users not in the config.
  std::shared_ptr<cluster> get(const conf::config& cfg, const conf::database_config& db, std::string_view database,
                               std::string_view user, const std::optional<std::string>& auth_secret);
  // Every pool of every cluster (for upkeep and shutdown).
  std::vector<std::shared_ptr<pool>> pools();
  // Every cluster, those a reload retired that still serve clients included (retired last).
  std::vector<std::shared_ptr<cluster>> all_including_retired();
  // After a reload: clusters whose settings changed stop taking clients and drain; new ones are
  // created from the new config on the next login.
  void retire_changed(const conf::config& cfg);
  void clear();

 private:
  std::shared_ptr<cluster> build(const conf::config& cfg, const conf::database_config& db, std::string_view database,
                                 std::string_view user, const std::optional<std::string>& auth_secret);
  std::shared_ptr<connection_budget> budget(std::map<std::string, std::shared_ptr<connection_budget>>& budgets,
                                            const std::string& key, std::uint32_t limit);

  runtime& rt_;
  std::mutex mu_;
  std::map<std::pair<std::string, std::string>, std::shared_ptr<cluster>> clusters_;
  std::vector<std::weak_ptr<cluster>> retired_;  // draining after a reload (SHOW SERVERS, WAIT_CLOSE)
  std::map<std::string, std::shared_ptr<connection_budget>> db_budgets_;
  std::map<std::string, std::shared_ptr<connection_budget>> user_budgets_;
};

}  // namespace pgsluice::proxy

// Internal to proxy/: the running proxy — worker threads with their event loops, the pool registry, cancel keys, config.
//
// Threading model. N workers, each one thread running its own io_context; every worker has
// its own SO_REUSEPORT listening socket per address, so the kernel spreads new clients over
// the workers. A client session lives on the worker that accepted it: both of its coroutines
// (client->server and server->client) run on that thread, so a session's state needs no lock.
// Pools are shared by all workers (one global limit per pool) behind a mutex. A server
// connection's socket is registered with one io_context's reactor; when a session on another
// worker takes it from the pool, the socket is moved to the taker's io_context (release() the
// descriptor, assign it there: two epoll_ctl calls), so all I/O on it is done by the thread that
// uses it, with no cross-thread completion hops. Idle servers are handed out preferring those
// already on the asking worker, so moves are rare once the load is steady.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "conf/config.hpp"
#include "protocol/scram_cache.hpp"
#include "proxy/admin_control.hpp"
#include "proxy/asio.hpp"
#include "proxy/auth_cache.hpp"
#include "proxy/cluster.hpp"
#include "proxy/metrics.hpp"
#include "proxy/pool_ledger.hpp"
#include "proxy/pool_stats.hpp"

namespace pgsluice::proxy {

class client_session;
class pool;
class runtime;
class tls_contexts;
class lane_set;

// One event-loop thread.
class worker {
 public:
  worker(runtime& rt, unsigned index);
  ~worker();
  worker(const worker&) = delete;
  worker& operator=(const worker&) = delete;

  unsigned index() const noexcept { return index_; }
  asio::io_context& io() noexcept { return io_; }
  runtime& rt() noexcept { return rt_; }

  void start();
  // Stops the event loop (serve calls it once the sessions are gone or the shutdown timed out);
  // join() then waits for the thread.
  void stop();
  void join();

  // Sessions living on this worker; only touched from its thread.
  void add_session(client_session* s) noexcept;
  void remove_session(client_session* s) noexcept;
  std::size_t session_count() const noexcept { return sessions_.load(std::memory_order_relaxed); }

  std::vector<tcp::acceptor>& acceptors() noexcept { return acceptors_; }

  // Pipelined statements' lanes of this worker (lanes.hpp), made on first use.
  lane_set& lanes();

  // Runs `fn` on every session of this worker; call it on this worker's thread (the admin
  // console posts there).
  void visit_sessions(const std::function<void(client_session&)>& fn);

  // Runs on this worker every tick: login/idle timeouts of its sessions, shutdown of idle ones;
  // `force` ends every session (end of a graceful shutdown).
  void janitor_tick(std::chrono::steady_clock::time_point now, bool force);

 private:
  awaitable<void> janitor();

  runtime& rt_;
  unsigned index_;
  asio::io_context io_{1};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> guard_;
  std::thread thread_;
  std::vector<tcp::acceptor> acceptors_;
  std::unique_ptr<lane_set> lanes_;
  client_session* first_ = nullptr;  // intrusive list through client_session::next_/prev_
  std::atomic<std::size_t> sessions_{0};
};

// Cancel keys handed to clients (BackendKeyData) -> the session that owns them.
class cancel_registry {
 public:
  // Draws a fresh random key not in use, registers it and returns it.
  std::pair<std::int32_t, std::int32_t> add(const std::shared_ptr<client_session>& s);
  void remove(std::int32_t pid, std::int32_t secret);
  std::shared_ptr<client_session> find(std::int32_t pid, std::int32_t secret);

 private:
  static std::uint64_t key(std::int32_t pid, std::int32_t secret) noexcept {
    return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(pid)) << 32) | static_cast<std::uint32_t>(secret);
  }
  std::mutex mu_;
  std::unordered_map<std::uint64_t, std::weak_ptr<client_session>> map_;
};

// A budget of server connections shared by pools (max_db_connections / max_user_connections).
class connection_budget {
 public:
  explicit connection_budget(std::uint32_t limit) : limit_(limit) {}
  bool try_take() noexcept;
  void give_back() noexcept { used_.fetch_sub(1, std::memory_order_relaxed); }
  void set_limit(std::uint32_t l) noexcept { limit_.store(l, std::memory_order_relaxed); }

 private:
  std::atomic<std::uint32_t> limit_;  // 0 = unlimited
  std::atomic<std::uint32_t> used_{0};
};

class runtime {
 public:
  runtime(std::shared_ptr<const conf::config> cfg, std::filesystem::path config_file);
  ~runtime();

  std::shared_ptr<const conf::config> config() const;
  void set_config(std::shared_ptr<const conf::config> cfg);
  const std::filesystem::path& config_file() const noexcept { return config_file_; }

  // TLS contexts of the current config (proxy/tls.hpp), swapped with it on reload; never null
  // once serve has started (all modes disable: contexts without OpenSSL state).
  std::shared_ptr<const tls_contexts> tls() const;
  void set_tls(std::shared_ptr<const tls_contexts> t);

  std::vector<std::unique_ptr<worker>>& workers() noexcept { return workers_; }

  // Clusters of backends by (client-facing database, user), each backend with its own pool.
  cluster_registry& clusters() noexcept { return clusters_; }
  // Each database's backends: health, failover, fence / drain, status (proxy/ha.hpp).
  ha_registry& ha() noexcept { return ha_; }

  cancel_registry& cancels() noexcept { return cancels_; }
  metrics& stats() noexcept { return stats_; }
  // SCRAM keys derived from plaintext passwords, for every login of the process (both roles).
  protocol::scram_key_cache& scram_cache() noexcept { return scram_cache_; }
  // Secrets auth_query found, reused for auth_query_cache_ttl.
  auth_query_cache& auth_cache() noexcept { return auth_cache_; }

  std::uint64_t next_client_id() noexcept { return next_client_id_.fetch_add(1, std::memory_order_relaxed); }
  std::uint64_t next_server_id() noexcept { return next_server_id_.fetch_add(1, std::memory_order_relaxed); }
  // The id the next server will get: every server opened so far has a smaller one (RECONNECT).
  std::uint64_t server_id_mark() const noexcept { return next_server_id_.load(std::memory_order_relaxed); }

  // Per-database traffic counters (SHOW STATS, /metrics).
  stats_registry& db_stats() noexcept { return *db_stats_; }
  // PAUSE / DISABLE state (admin console).
  traffic_control& control() noexcept { return control_; }

  // Loads the config file again and applies it (SIGHUP, RELOAD): pools whose settings changed
  // are retired (their servers finish what they serve, then close) and rebuilt from the new
  // config at their clients' next transaction; what cannot change without a restart is logged.
  // False (the current config kept) when the file does not load.
  bool reload();
  // SHUTDOWN on the console: the same graceful stop as SIGTERM (serve installs the hook).
  void set_shutdown_hook(std::function<void()> hook) { shutdown_hook_ = std::move(hook); }
  void request_shutdown();
  // When the proxy started (SHOW STATS windows, uptime).
  std::chrono::system_clock::time_point started() const noexcept { return started_; }

  // Logged-in or logging-in clients, for max_client_conn.
  std::atomic<std::int64_t>& client_count() noexcept { return client_count_; }
  bool shutting_down() const noexcept { return shutting_down_.load(std::memory_order_relaxed); }
  void begin_shutdown() noexcept { shutting_down_.store(true, std::memory_order_relaxed); }

 private:
  mutable std::mutex config_mu_;
  std::shared_ptr<const conf::config> config_;
  std::shared_ptr<const tls_contexts> tls_;
  std::filesystem::path config_file_;
  std::vector<std::unique_ptr<worker>> workers_;

  ha_registry ha_{*this};
  cluster_registry clusters_{*this};

  cancel_registry cancels_;
  metrics stats_;
  protocol::scram_key_cache scram_cache_;
  auth_query_cache auth_cache_;
  std::unique_ptr<stats_registry> db_stats_;
  traffic_control control_;
  std::function<void()> shutdown_hook_;
  std::mutex reload_mu_;
  std::chrono::system_clock::time_point started_ = std::chrono::system_clock::now();
  std::atomic<std::uint64_t> next_client_id_{1};
  std::atomic<std::uint64_t> next_server_id_{1};
  std::atomic<std::int64_t> client_count_{0};
  std::atomic<bool> shutting_down_{false};
};

}  // namespace pgsluice::proxy

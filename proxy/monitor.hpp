// Internal to proxy/: the health prober of a database's backends — off the event loops, each backend checked on its own connection and schedule, its answers fed to the backend set's state machine; failover orders run here.
//
// One coroutine per backend, on the health checks' own thread (ha_registry), with one
// connection of its own per backend, logged in as a user of the database that pgsluice can log
// in as alone (its password known, or SCRAM keys a client proved): checks wait for the first
// such login. Each round asks the server its recovery state and positions in one query:
//   pg_is_in_recovery(); pg_current_wal_lsn() on a primary, pg_last_wal_replay_lsn() on a
//   standby; the replay timestamp's age; pg_last_wal_receive_lsn(); the timeline (from the
//   WAL file name on a primary, pg_stat_wal_receiver on a standby)
// https://www.postgresql.org/docs/15/functions-admin.html#FUNCTIONS-RECOVERY-INFO-TABLE
// A round due for a health check (every health_check_interval) logs in afresh and counts for
// fall / rise (a server refusing logins, or whose postmaster is stopped, fails it); the
// rounds in between (every lag_check_interval, databases with replicas) only refresh the
// positions read-your-writes and the lag limits need. Connect, login and query are bounded by
// health_check_timeout: a server that accepts TCP but never answers fails its check.
//
// Orders: promote runs SELECT pg_promote(true, 60) on the chosen replica; repoint rewrites each
// other replica's primary_conninfo to the new primary (ALTER SYSTEM + pg_reload_conf(), the
// replication slot it names created on the new primary) — or logs that an operator must.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "proxy/asio.hpp"
#include "router/health.hpp"

namespace pgsluice::proxy {

class backend_set;
class runtime;
class server_connection;

// One sample as the server answered it (parsed from text; pure, unit-tested).
struct wal_sample {
  bool in_recovery = false;
  std::optional<std::uint64_t> position;      // replay (replica) or current (primary) LSN, bytes
  std::optional<std::int64_t> replay_age_ms;  // replica: now - last replayed transaction's commit time
  std::optional<std::uint64_t> received;      // replica: pg_last_wal_receive_lsn()
  std::optional<std::uint32_t> timeline;
};
std::optional<wal_sample> parse_wal_sample(const std::vector<std::optional<std::string>>& row);
// "16/B374D848" -> bytes since 0/0.
std::optional<std::uint64_t> parse_lsn(std::string_view text) noexcept;
std::string format_lsn(std::uint64_t lsn);

// A replica's primary_conninfo pointed at another server: host and port replaced (hostaddr
// dropped), every other keyword kept. A unix-socket host (a path) is kept when the new primary
// is on the loopback interface: the same machine, reached the way the replica already was.
std::string repoint_conninfo(std::string_view conninfo, std::string_view host, std::uint16_t port);

class health_prober : public std::enable_shared_from_this<health_prober> {
 public:
  struct timing {
    std::chrono::milliseconds check_interval{1000};
    std::chrono::milliseconds sample_interval{1000};
    std::chrono::milliseconds timeout{2000};
  };
  health_prober(runtime& rt, asio::io_context& io, std::shared_ptr<backend_set> set, timing t);
  ~health_prober();
  void start();
  void stop();
  // Orders from the state machine (posted; run on the prober's thread).
  void promote(const router::promote_order& o);
  void repoint(const router::repoint_order& o);

 private:
  awaitable<void> run(std::size_t i);
  awaitable<std::optional<router::probe_result>> probe(std::size_t i);
  // A connection to backend i logged in now (its own, not pooled), or the error.
  awaitable<std::shared_ptr<server_connection>> open(std::size_t i, std::string& error);
  awaitable<void> run_promote(router::promote_order o);
  awaitable<void> run_repoint(router::repoint_order o);
  void spawn(awaitable<void> a, const char* what);

  runtime& rt_;
  asio::io_context& io_;
  std::weak_ptr<backend_set> set_;
  timing timing_;
  std::atomic<bool> stopped_{false};
  std::vector<std::shared_ptr<server_connection>> conns_;
  std::vector<std::unique_ptr<asio::steady_timer>> timers_;
};

}  // namespace pgsluice::proxy

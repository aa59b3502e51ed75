// High availability of each database's backends: their shared health state, the operator's actions (fence, unfence, drain), status snapshots and the failovers counter; no Asio here.
//
// Every client-facing database has one backend_set, shared by all of its (database, user)
// clusters: one health prober (proxy/monitor.hpp) checks each backend on its own connection
// and schedule, on a thread of its own (never on the event loops), and feeds the pure state
// machine router::health_machine; what it decides is published here as plain atomics that
// cluster::choose() reads without a lock on the hot path. Failover orders (promote a replica,
// re-point the others) are run by the prober; a database's writes that find no primary wait
// for one here (wait_for_primary()), woken when one is adopted, never by polling.
//
// Public API (for the admin console and /metrics; thread-safe, callable from any thread):
//   runtime::ha().sets() / find(database)   the backend sets that exist (created on first login)
//   backend_set::status()                   one backend_status per backend
//   backend_set::find(host, port)           a backend's index
//   backend_set::fence(i) / unfence(i)      no client traffic / back in service (a fenced former
//                                           primary stays fenced until unfence())
//   backend_set::drain(i) / undrain(i)      no new work (running transactions and sessions finish)
//   ha_registry::failovers()                primaries replaced since start, process-wide
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "conf/config.hpp"
#include "router/health.hpp"
#include "router/select.hpp"

namespace pgsluice::proxy {

class runtime;
class cluster;
class health_prober;

// One backend as an operator sees it.
struct backend_status {
  std::string host;
  std::uint16_t port = 0;
  router::role role = router::role::unknown;
  router::health status = router::health::up;
  std::uint32_t weight = 1;
  std::optional<std::uint64_t> lag_bytes;  // replica: WAL not replayed yet; nullopt = not measured
  std::optional<double> lag_seconds;
  std::uint64_t reads_routed = 0;   // transactions (or sessions) sent here as reads
  std::uint64_t writes_routed = 0;  // ... as writes
  std::chrono::system_clock::time_point changed_at;  // last status or role change
  std::string reason;                                // why, as logged
};

class backend_set : public std::enable_shared_from_this<backend_set> {
 public:
  static constexpr std::uint64_t unknown = ~std::uint64_t{0};
  // What the router's snapshot reads of one backend (published by the state machine).
  struct record {
    conf::backend_config cfg;
    std::atomic<router::role> role{router::role::unknown};
    std::atomic<router::health> health{router::health::up};
    // Replay position (a replica) or current WAL position (the primary), in bytes since 0/0.
    std::atomic<std::uint64_t> position{0};
    std::atomic<std::uint64_t> lag_bytes{unknown};
    std::atomic<std::int64_t> lag_ms{-1};  // -1 unknown
    std::atomic<std::uint64_t> reads{0};
    std::atomic<std::uint64_t> writes{0};
  };

  backend_set(std::string database, const std::vector<conf::backend_config>& backends, router::health_settings s,
              std::string fingerprint);
  ~backend_set();
  backend_set(const backend_set&) = delete;
  backend_set& operator=(const backend_set&) = delete;

  // --- public API ---
  const std::string& database() const noexcept { return database_; }
  std::vector<backend_status> status() const;
  std::optional<std::size_t> find(std::string_view host, std::uint16_t port) const;
  // False for an index out of range. Each change is logged with its reason.
  bool fence(std::size_t i, std::string_view why = "by an operator");
  bool unfence(std::size_t i);
  bool drain(std::size_t i);
  bool undrain(std::size_t i);

  // --- for the proxy ---
  std::size_t size() const noexcept { return records_.size(); }
  record& at(std::size_t i) noexcept { return *records_[i]; }
  const std::string& fingerprint() const noexcept { return fingerprint_; }
  const router::health_settings& settings() const noexcept { return settings_; }
  // Whether health checks run (databases with more than one backend).
  bool monitored() const noexcept { return monitored_; }

  // From the prober: a health check (counts for fall / rise), or a lag sample between checks
  // (positions only), or what became of an ordered promotion.
  void report_check(std::size_t i, const router::probe_result& r);
  void report_sample(std::size_t i, const router::probe_result& r);
  void report_promotion(std::size_t i, bool ok, const std::string& error);
  void tick();

  // Writes waiting for a primary: `wake` runs once (under the set's lock, from the health
  // checks' thread: it must only post) at the next change of a backend's status or of the
  // primary. Check has_primary() after registering.
  std::uint64_t on_primary(std::function<void()> wake);
  void forget(std::uint64_t id);
  bool has_primary() const noexcept { return has_primary_.load(std::memory_order_acquire); }

  // Clusters using the set lend the prober their server logins (the first that can log in alone).
  void attach(std::weak_ptr<cluster> c);
  std::vector<std::shared_ptr<cluster>> clusters();

  void set_prober(std::shared_ptr<health_prober> p);
  void stop();

 private:
  router::health_decision run(std::size_t i, const std::function<router::health_decision()>& f);
  void apply(const router::health_decision& d);  // under mu_
  void publish();                                // under mu_

  std::string database_;
  std::string fingerprint_;
  router::health_settings settings_;
  std::vector<std::unique_ptr<record>> records_;
  mutable std::mutex mu_;
  router::health_machine machine_;
  std::vector<std::chrono::system_clock::time_point> changed_at_;
  std::atomic<bool> has_primary_{false};
  std::map<std::uint64_t, std::function<void()>> waiters_;
  std::uint64_t next_waiter_ = 1;
  std::vector<std::weak_ptr<cluster>> clusters_;
  std::shared_ptr<health_prober> prober_;
  bool monitored_ = false;  // set before the set is shared
  friend class ha_registry;
};

// Every backend set, by client-facing database; owns the health checks' thread.
class ha_registry {
 public:
  explicit ha_registry(runtime& rt);
  ~ha_registry();
  ha_registry(const ha_registry&) = delete;
  ha_registry& operator=(const ha_registry&) = delete;

  std::vector<std::shared_ptr<backend_set>> sets() const;
  std::shared_ptr<backend_set> find(std::string_view database) const;
  // Primaries replaced (promoted by pgsluice or followed), over every database since start.
  static std::uint64_t failovers() noexcept;

  // --- for the proxy ---
  // The set of `database` for this config, created (and its prober started) on first use, or
  // replaced when its backends or health settings changed.
  std::shared_ptr<backend_set> get(const conf::config& cfg, const conf::database_config& db,
                                   std::string_view database);
  // Stops every prober and the thread (shutdown).
  void stop();

 private:
  struct thread_state;
  runtime& rt_;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<backend_set>, std::less<>> sets_;
  std::unique_ptr<thread_state> thread_;
};

// Counts one failover (the state machine adopted another primary).
void count_failover() noexcept;

}  // namespace pgsluice::proxy

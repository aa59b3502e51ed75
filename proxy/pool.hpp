// Internal to proxy/: one pool of server connections for a (database, user), shared by all worker threads.
//
// The decisions are pool_ledger's (pure, unit-tested); this class adds the mutex, the server
// objects, the waiting clients' wake-ups and the connection attempts. A client waiting for a
// server sleeps on a timer of its own worker (expiring at its query_wait_timeout deadline); the
// thread that frees a server hands it over under the mutex and wakes the waiter by posting to
// the waiter's own executor, so each side only ever touches its own event loop. With
// pool_size = "auto" a concurrency_limit, fed each transaction's hold time under that same
// lock (a few arithmetic operations), caps the servers handed out at once.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "conf/config.hpp"
#include "proxy/asio.hpp"
#include "proxy/concurrency_limit.hpp"
#include "proxy/params.hpp"
#include "proxy/pool_ledger.hpp"
#include "proxy/prepared.hpp"
#include "proxy/server_connection.hpp"

namespace pgsluice::proxy {

class runtime;
class worker;
class connection_budget;

struct pool_config {
  backend_target target;
  server_credentials credentials;
  conf::pool_settings settings{};
  std::chrono::milliseconds connect_timeout{15000};
  std::chrono::milliseconds login_retry{15000};
  std::chrono::milliseconds idle_timeout{600000};
  std::chrono::milliseconds lifetime{3600000};
  std::chrono::milliseconds reserve_timeout{5000};
  std::uint32_t max_prepared_statements = 200;
  std::uint32_t pipeline_depth = 0;  // transaction mode only (config validation)
  std::string reset_query = "DISCARD ALL";
  bool reset_always = false;
  // Everything above that matters, as text: a reload retires the pool when it changes.
  std::string fingerprint;
};

struct acquire_result {
  std::shared_ptr<server_connection> server;
  std::optional<server_error> error;  // login to the server failed
  bool timed_out = false;             // query_wait_timeout passed
  bool cancelled = false;             // the waiting client went away (wait_handle::cancel)
  bool waited = false;                // the client was queued before getting its server
};

// Lets a client session stop its own wait for a server (it is ending). Used on the session's
// thread only, like the wait itself.
struct wait_handle {
  asio::steady_timer* timer = nullptr;  // set while waiting
  bool cancelled = false;
  void cancel() {
    cancelled = true;
    if (timer != nullptr) timer->cancel();
  }
};

class pool : public std::enable_shared_from_this<pool> {
 public:
  pool(runtime& rt, std::string name, pool_config cfg, std::shared_ptr<connection_budget> db_budget,
       std::shared_ptr<connection_budget> user_budget);
  ~pool();

  const std::string& name() const noexcept { return name_; }  // "database/user"
  const pool_config& cfg() const noexcept { return cfg_; }
  bool transaction_mode() const noexcept { return cfg_.settings.pool_mode == conf::pool_mode::transaction; }

  // A server for a client on worker `w`, waiting (FIFO) until `deadline` if the pool is full.
  // The server's socket is moved to `w`'s event loop.
  awaitable<acquire_result> acquire(worker& w, std::uint64_t client_id, std::chrono::steady_clock::time_point deadline,
                                    wait_handle* handle = nullptr);

  // An idle server right now, or nullptr (the caller then goes through acquire()): nobody is
  // queued and one is idle. The socket is moved to `w`'s event loop.
  std::shared_ptr<server_connection> try_acquire(worker& w);

  // Gives a server back: `reusable` if it is clean and may serve anyone, otherwise it is closed.
  void release(std::shared_ptr<server_connection> s, bool reusable);

  // ParameterStatus values of the first server this pool logged in to (what a new client is told).
  std::shared_ptr<const parameter_set> initial_params() const;
  // Keys a client proved in its SCRAM login, for servers that hold the same verifier.
  void remember_scram_keys(const protocol::scram_client_keys& keys);
  // What a connection of this pool logs in with now (the configured secret and any keys learnt).
  server_credentials login_credentials() const;
  // Whether that is enough to log in without a client's help (plaintext, an MD5 hash, known keys).
  bool can_log_in_alone() const;

  // Statements (by digest) that a server of this pool accepted: a client's Parse of one of them
  // can be answered without a server (it is prepared on the server when first used).
  bool statement_known(const statement_digest& d) const;
  void statement_validated(const statement_digest& d);

  // Periodic upkeep: expire idle servers, open connections for min_pool_size, apply the reserve.
  void maintain(std::chrono::steady_clock::time_point now);
  // A reload changed this pool's settings: stop keeping servers, close the idle ones.
  void retire();
  bool retired() const noexcept { return retired_.load(std::memory_order_relaxed); }
  // Closes the idle servers (shutdown).
  void close_idle();
  pool_counts counts() const;
  // Clients queued for a server to open a lane with (pipeline_depth): lanes give their servers
  // back for the other waiters only.
  void lane_waiting(int delta) noexcept { lane_waiters_.fetch_add(static_cast<std::uint32_t>(delta), std::memory_order_relaxed); }
  std::uint32_t lane_waiters() const noexcept { return lane_waiters_.load(std::memory_order_relaxed); }
  // Servers handed to clients at once: the pool size, or with pool_size = "auto" the adaptive
  // limit now (read without the lock, for SHOW POOLS and /metrics).
  std::uint32_t active_limit() const noexcept { return active_limit_.load(std::memory_order_relaxed); }
  bool adaptive() const noexcept { return cfg_.settings.pool_size_auto; }

  // --- the admin console ---
  // RECONNECT: every server opened before `below` (a server id) is closed once released; the
  // idle ones now.
  void reconnect(std::uint64_t below);
  // Whether server `id` is to be closed when released (RECONNECT, or a reload retired the pool).
  bool close_needed(std::uint64_t id) const noexcept {
    return retired() || id < close_below_.load(std::memory_order_relaxed);
  }
  // Servers still open that are to be closed (WAIT_CLOSE waits for none).
  std::uint32_t close_needed_count() const;
  // A server of this pool was closed (server_connection::close).
  void server_gone(std::uint64_t id);
  // What SHOW SERVERS shows of an idle server (read under the pool's lock).
  struct idle_view {
    std::string name;
    std::uint64_t id = 0;
    stream_endpoint remote;
    stream_endpoint local;
    std::chrono::steady_clock::time_point created;
    std::chrono::steady_clock::time_point last_used;
    std::int32_t backend_pid = 0;
  };
  std::vector<idle_view> idle_servers() const;

 private:
  struct waiter_slot {
    explicit waiter_slot(const asio::any_io_executor& ex) : timer(ex) {}
    asio::steady_timer timer;
    std::optional<grant> granted;
    std::shared_ptr<server_connection> server;
    std::chrono::steady_clock::time_point granted_at{};
  };
  class budget_gate : public open_gate {
   public:
    budget_gate(std::shared_ptr<connection_budget> db, std::shared_ptr<connection_budget> user)
        : db_(std::move(db)), user_(std::move(user)) {}
    bool try_open() override;
    void closed() override;

   private:
    std::shared_ptr<connection_budget> db_, user_;
  };

  std::shared_ptr<server_connection> take_idle_locked(server_id id);
  bool can_log_in_locked() const;
  // Checks and prepares an idle server just taken for a client on `w` (granted at `granted_at`
  // to a queued client, or now when that is zero); false (and the server closed and released)
  // when it died while idle.
  bool activate(const std::shared_ptr<server_connection>& srv, worker& w, std::chrono::steady_clock::time_point granted_at);
  // Under the lock: hands out grants; returns the slots to wake once the lock is released.
  std::vector<std::shared_ptr<waiter_slot>> deliver_locked(std::vector<grant>& grants);
  static void wake(std::vector<std::shared_ptr<waiter_slot>>& slots);
  // Opens and logs in a new connection (a `connect` grant or min_pool_size); accounts for it in
  // the ledger and, when not for a client, puts it in the idle list.
  awaitable<std::pair<std::shared_ptr<server_connection>, std::optional<server_error>>> open_server(worker& w,
                                                                                                 bool for_client);
  awaitable<void> open_idle(worker& w);

  runtime& rt_;
  std::string name_;
  pool_config cfg_;
  budget_gate gate_;
  mutable std::mutex mu_;
  pool_ledger ledger_;
  std::vector<std::shared_ptr<server_connection>> idle_;
  std::unordered_map<waiter_id, std::shared_ptr<waiter_slot>> waiters_;
  std::shared_ptr<const parameter_set> initial_params_;
  std::unordered_set<statement_digest, statement_digest_hash> known_statements_;
  std::optional<protocol::scram_client_keys> scram_keys_;
  std::chrono::steady_clock::time_point last_login_failure_{};
  std::atomic<bool> retired_{false};
  std::atomic<std::uint64_t> close_below_{0};
  mutable std::mutex live_mu_;  // apart from mu_: close() may run where mu_ is held by the caller's caller
  std::set<std::uint64_t> live_;  // ids of this pool's open servers
  // pool_size = "auto": fed each reusable release's hold time under mu_, sets the ledger's active limit.
  std::optional<concurrency_limit> limiter_;
  std::atomic<std::uint32_t> active_limit_{0};
  std::atomic<std::uint64_t> next_waiter_{1};
  std::atomic<std::uint32_t> lane_waiters_{0};
  std::atomic<unsigned> next_worker_{0};
};

}  // namespace pgsluice::proxy

// Client sessions, the attached server: choosing a backend, taking and giving back a server, bringing its session settings in line with the client's, writing a batch to it.
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstring>

#include <spdlog/spdlog.h>

#include "protocol/codec.hpp"
#include "protocol/fields.hpp"
#include "protocol/framing.hpp"
#include "proxy/client_session.hpp"
#include "proxy/cluster.hpp"
#include "proxy/monitor.hpp"
#include "proxy/pinning.hpp"
#include "proxy/pool.hpp"
#include "proxy/ready_read.hpp"
#include "proxy/relay_detail.hpp"
#include "proxy/runtime.hpp"
#include "proxy/server_connection.hpp"

namespace pgsluice::proxy {

using namespace relay_detail;

bool client_session::choose_pool(bool* wait) {
  // route_ says what the transaction (or session) needs: a write unless routing classified it.
  if (routing_) route_.now = clock::now();
  const auto pick = cluster_->choose(route_, retry_avoid_);
  hold_ = false;
  if (pick.pool == nullptr) {
    if (pick.status == router::route_status::wait && wait != nullptr) {
      *wait = true;
      return false;
    }
    // No primary, or two claiming to be: the transaction waits for one (failover_hold_timeout)
    // rather than fail or guess.
    const auto hold = cluster_->route_settings().hold_timeout;
    if ((pick.status == router::route_status::no_primary || pick.status == router::route_status::ambiguous) &&
        wait != nullptr && hold.count() > 0) {
      const auto now = clock::now();
      if (!held_since_) {
        held_since_ = now;
        spdlog::info("{} held cluster={} status={} reason=\"waiting for a primary\"", name_, cluster_->name(),
                     router::to_string(pick.status));
      }
      if (now - *held_since_ < hold) {
        *wait = true;
        hold_ = true;
        return false;
      }
    }
    spdlog::warn("{} no_backend cluster={} status={}", name_, cluster_->name(), router::to_string(pick.status));
    fail(end_reason::server_unavailable, "08006",
         "pgsluice: no server available for database \"" + startup_.database + "\" (" +
             std::string(router::to_string(pick.status)) + (held_since_ ? ", waited failover_hold_timeout" : "") +
             ")");
    return false;
  }
  chosen_ = pick.chosen;
  if (pool_.get() != pick.pool->get()) pool_ = *pick.pool;
  return true;
}

awaitable<bool> client_session::attach_server(bool for_login) {
  const auto asked = clock::now();
  // PAUSE: a new transaction waits, queued, until RESUME.
  if (rt_.control().any_paused() && !co_await wait_while_paused()) co_return false;
  if (cluster_->retired() && !refresh_cluster()) co_return false;
 for (int attempt = 0;; ++attempt) {
  // Read-your-writes may ask to wait a little for a replica to replay the client's last write.
  // A backend attach_now() chose a moment ago stands: choosing twice would skew the balance.
  for (bool wait = false; !std::exchange(chosen_now_, false) && !choose_pool(&wait); wait = false) {
    if (!wait || machine_.ending()) co_return false;
    if (hold_) {
      co_await wait_for_primary(false);
      continue;
    }
    if (!route_.waiting_since) route_.waiting_since = clock::now();
    asio::steady_timer t(worker_.io(), std::chrono::milliseconds(5));
    co_await t.async_wait(nothrow_awaitable);
  }
  route_.waiting_since.reset();
  machine_.needs_server();
  const auto wait = cfg_->query_wait_timeout.count() > 0 ? cfg_->query_wait_timeout : std::chrono::hours(24 * 365);
  auto r = co_await pool_->acquire(worker_, id_, clock::now() + wait, &wait_);
  // Time without a server: queued, held by a pause, or while one is opened (PgBouncer's
  // wait_time counts a client's time in its waiting list likewise). attach_now() waits for none.
  dbstats_->add(database_stats::field::wait_time,
                static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(clock::now() - asked).count()));
  // A client that gave up while queued (closed its connection) must not have its query run.
  if (r.waited && r.server && !machine_.ending() && (tls_ || may_have_input(socket_))) {
    // What the client sent since (not consumed): EOF, or a Terminate, means it has left. Only
    // looked at when the event loop saw something arrive since the query was read.
    std::uint8_t next[5];
    const auto n = ::recv(socket_.native_handle(), next, sizeof next, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0 || (n == 5 && std::equal(next, next + 5, protocol::terminate_msg))) end(end_reason::client_closed);
  }
  if (machine_.ending()) {
    if (r.server) {
      const bool clean = r.server->transaction_status == 'I';
      pool_->release(std::move(r.server), clean);
    }
    co_return false;
  }
  if (r.cancelled) {
    machine_.attach_failed();
    co_return false;
  }
  if (r.timed_out) {
    rt_.stats().add(counter::wait_timeouts);
    spdlog::info("{} refused reason=query_wait_timeout pool={}", name_, pool_->name());
    fail(end_reason::query_wait_timeout, "08P01",
         "query_wait_timeout: no server connection became free within query_wait_timeout");
    co_return false;
  }
  if (r.error) {
    // Nothing reached that server yet: a read goes to another backend at once, a write waits
    // for the health checks to say where the primary is now (within failover_hold_timeout).
    // Only where health checks run, and only for a server that could not be reached (a
    // refused login, 28xxx, is the server's answer: the client gets it).
    const auto hold = cluster_->route_settings().hold_timeout;
    const bool unreachable = r.error->sqlstate.starts_with("08") || r.error->sqlstate.starts_with("57");
    if (hold.count() > 0 && attempt < 100 && unreachable && cluster_->ha().monitored()) {
      const auto now = clock::now();
      const bool read = routing_ && route_.need == router::need::read && attempt < 2;
      if (!held_since_) held_since_ = now;
      if (read || now - *held_since_ < hold) {
        spdlog::info("{} attach_failed pool={} retry={} error=\"{}\"", name_, pool_->name(),
                     read ? "another_backend" : "after_health_change", r.error->message);
        machine_.attach_failed();
        if (!read) co_await wait_for_primary(true);
        if (machine_.ending()) co_return false;
        continue;
      }
    }
    fail_with(end_reason::server_unavailable, *r.error);
    co_return false;
  }
  on_attached(std::move(r.server), for_login);
  co_return true;
 }
}

awaitable<void> client_session::wait_for_primary(bool any_change) {
  auto& set = cluster_->ha();
  const auto deadline = *held_since_ + cluster_->route_settings().hold_timeout;
  auto timer = std::make_shared<asio::steady_timer>(worker_.io(), deadline);
  // The wake-up comes from the health checks' thread: it only posts to this worker.
  const auto id = set.on_primary([timer, ex = worker_.io().get_executor()] {
    asio::post(ex, [timer] { timer->cancel(); });
  });
  if (any_change || !set.has_primary()) co_await timer->async_wait(nothrow_awaitable);
  set.forget(id);
}

bool client_session::attach_now() {
  // A pause or a reload to act on first: attach_server() does it.
  if (rt_.control().any_paused() || cluster_->retired()) return false;
  bool wait = false;
  if (!choose_pool(&wait)) return false;
  auto s = pool_->try_acquire(worker_);
  if (!s) {
    chosen_now_ = true;  // attach_server() waits on this backend's pool
    return false;
  }
  on_attached(std::move(s), false);
  return true;
}

awaitable<bool> client_session::wait_while_paused() {
  machine_.needs_server();  // counted as waiting (cl_waiting) meanwhile
  auto t = std::make_shared<asio::steady_timer>(worker_.io(), clock::time_point::max());
  bool logged = false;
  while (!machine_.ending() && rt_.control().wait_if_paused(startup_.database, t)) {
    if (!logged) {
      spdlog::debug("{} held by pause db={}", name_, startup_.database);
      logged = true;
    }
    wait_.timer = t.get();
    if (!wait_.cancelled) co_await t->async_wait(nothrow_awaitable);
    wait_.timer = nullptr;
    rt_.control().forget(t);
    t->expires_at(clock::time_point::max());
  }
  co_return !machine_.ending();
}

bool client_session::refresh_cluster() {
  const auto cfg = rt_.config();
  const conf::database_config* db = cfg->find_database(startup_.database);
  if (db == nullptr) {
    spdlog::info("{} database_removed db={} by=reload", name_, startup_.database);
    fail(end_reason::login_refused, "3D000", "database \"" + startup_.database + "\" does not exist");
    return false;
  }
  // The new cluster: same client, the reloaded backends, pool settings and routing; the
  // server-side statements are prepared again on demand, as on any other server.
  const auto& old_secret = cluster_->backends().front()->pool->cfg().credentials.secret;
  const bool fetched = cfg->find_user(startup_.user) == nullptr && !old_secret.empty();
  cluster_ = rt_.clusters().get(*cfg, *db, startup_.database, startup_.user,
                                fetched ? std::optional<std::string>(old_secret) : std::nullopt);
  if (scram_keys_) cluster_->remember_scram_keys(*scram_keys_);
  transaction_mode_ = cluster_->transaction_mode();
  pipeline_depth_ = static_cast<std::uint8_t>(cluster_->pipeline_depth());
  rewrite_statements_ = transaction_mode_ && cfg->max_prepared_statements > 0;
  routing_ = cluster_->routes_reads();
  route_.policy = cluster_->route_settings().policy;
  if (session_attrs_ == conf::target_session_attrs::standby) route_.policy.primary_reads = router::primary_reads::never;
  chosen_ = nullptr;
  chosen_now_ = false;
  cfg_ = cfg;
  spdlog::info("{} pool={} follows reload", name_, cluster_->name());
  return true;
}

void client_session::on_attached(std::shared_ptr<server_connection> s, bool for_login) {
  if (held_since_) {
    spdlog::info("{} released cluster={} held_ms={}", name_, cluster_->name(),
                 std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - *held_since_).count());
    held_since_.reset();
  }
  server_ = std::move(s);
  counted_backend_ = chosen_;
  if (counted_backend_ != nullptr) counted_backend_->active.fetch_add(1, std::memory_order_relaxed);
  tracker_.clear(true);  // empty already, unless a retry or a reset left something
  machine_.attached(for_login);
  set_cancel_target(server_.get());
  spdlog::debug("{} attached server={} worker={}", name_, server_->name(), worker_.index());
  // The server's settings are brought in line with the client's in the same write as the
  // client's first messages (at login's end for a server kept from login).
  if (!for_login) {
    // A reset pending from the last server is moot: the new one is brought in line anyway.
    settings_due_ = settings_due::none;
    sync_settings(false);
    start_server_pump();
  }
}

void client_session::sync_settings(bool restore) {
  std::string sql;
  if (restore) {
    // After DISCARD ALL / RESET ALL the server is back at its own defaults, where a direct
    // connection would be back at the values of the client's startup packet.
    sql = plan_settings_sync(startup_.reported, startup_.settings, parameter_set{}, parameter_set{});
  } else if (server_->synced_settings != settings_hash_) {
    // Servers remember which client settings they were last brought in line with (by hash),
    // so the comparison is skipped while consecutive clients agree.
    sql = plan_settings_sync(view_, startup_.settings, server_->reported, server_->applied);
  }
  server_->synced_settings = settings_hash_;
  if (!sql.empty()) {
    auto& out = to_server_.begin_owned();
    protocol::append_query(out, sql);
    to_server_.end_owned();
    tracker_.push(expect::internal_query);
    server_->applied = startup_.settings;
    server_->unnamed_owner = 0;  // a simple Query drops the unnamed statement
    internal_error_.reset();
  }
  // Session mode: statements the client prepared before it had a server are prepared now,
  // under the client's own names, replies swallowed.
  for (auto& [name, stmt] : deferred_parses_) {
    auto& out = to_server_.begin_owned();
    protocol::append_parse(out, name, stmt->query, stmt->param_types);
    to_server_.end_owned();
    tracker_.push(expectation{expect::parse_injected, std::move(stmt), {}, {}});
  }
  deferred_parses_.clear();
}

void client_session::restore_reset_parameters(std::string_view sql) {
  // RESET of one parameter puts a direct connection back at the client's startup value, and a
  // pooled server at its own: the startup value goes back right behind the statement.
  if (startup_.reported.empty() && startup_.settings.empty()) return;
  // One pass, case-insensitive, ASCII letters only (c | 0x20 lowers a letter and nothing else
  // into one): it runs on every simple Query, so no locale-aware call per character.
  auto at = [&](std::size_t i, std::string_view w) {
    if (i + w.size() > sql.size()) return false;
    for (std::size_t k = 0; k < w.size(); ++k) {
      if (static_cast<char>(sql[i + k] | 0x20) != w[k]) return false;
    }
    return true;
  };
  bool mentioned = false;
  for (std::size_t i = 0; i < sql.size() && !mentioned; ++i) {
    const char c = static_cast<char>(sql[i] | 0x20);
    mentioned = (c == 'r' && at(i, "reset")) || (c == 'd' && at(i, "default"));
  }
  if (!mentioned) return;
  parameter_set wanted;
  for (const auto& name : reset_parameter_names(sql)) {
    if (const std::string* v = startup_.reported.find(name)) wanted.set(name, *v);
    if (const std::string* v = startup_.settings.find(name)) wanted.set(name, *v);
  }
  if (wanted.empty()) return;
  const std::string set = plan_settings_sync(parameter_set{}, wanted, parameter_set{}, parameter_set{});
  auto& out = to_server_.begin_owned();
  protocol::append_query(out, set);
  to_server_.end_owned();
  tracker_.push(expect::internal_query);
  server_->unnamed_owner = 0;
  internal_error_.reset();
}

void client_session::finish_internal_query() {
  if (internal_error_) {
    spdlog::warn("{} settings_failed server={} error=\"{}\"", name_, server_->name(), internal_error_->message);
    const server_error e = std::move(*internal_error_);
    internal_error_.reset();
    server_->applied.clear();
    server_->synced_settings = 0;
    fail_with(end_reason::login_refused, e);
    return;
  }
  // Adopt the server's spelling of what was set (e.g. DateStyle "iso" -> "ISO, MDY") and tell
  // the client about any value it has not seen.
  for (const auto& [name, value] : server_->reported) {
    if (!is_tracked_parameter(name)) continue;
    const std::string* seen = view_.find(name);
    if (seen != nullptr && *seen != value) {
      view_.set(name, value);
      auto& out = emit_target_->begin_owned();
      protocol::append_parameter_status(out, name, value);
      emit_target_->end_owned();
    }
  }
  update_settings_hash();
  server_->synced_settings = settings_hash_;
}

awaitable<bool> client_session::send_batch() {
  // Usually the server's socket takes the batch at once; only a remainder is copied and
  // written asynchronously.
  // The server pump may be finishing the position query's write: bytes must not interleave.
  while (machine_.server_writing() && !machine_.ending()) {
    write_done_.expires_at(clock::time_point::max());
    co_await write_done_.async_wait(nothrow_awaitable);
  }
  if (machine_.ending() || !server_) co_return false;
  boost::system::error_code wec;
  const std::size_t sent = server_->send_now(to_server_, wec);
  if (!wec && sent < to_server_.bytes()) {
    machine_.server_write_started();
    server_tail_.clear();
    to_server_.copy_tail(sent, server_tail_);
    wec = co_await server_->write(server_tail_);
    server_tail_.clear();
    server_tail_.shrink_to_fit();
    if (machine_.server_write_finished()) signal();  // a release waited for this write
  }
  if (!wec && capture_bytes_ != nullptr && server_ && !co_await send_capture()) co_return false;
  if (wec && !machine_.ending() && server_) {
    spdlog::info("{} server_write_failed server={} error=\"{}\"", name_, server_->name(), wec.message());
    // A kept read: the server pump sees the failed connection too and runs it elsewhere.
    if (!read_retry_armed() || retrying_) fail(end_reason::server_closed, "08006", "server closed the connection unexpectedly");
  }
  co_return true;
}

}  // namespace pgsluice::proxy

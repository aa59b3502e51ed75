// What a /metrics scrape reports: the runtime's counters, gauges and pools gathered into Prometheus families.
//
// Runs on the thread serving the HTTP request (serve's main thread), never on a worker's event
// loop: it sums the per-thread shards, takes each pool's lock just long enough to copy its
// counts, and reads the backends' published health and lag.
#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "conf/config.hpp"
#include "proxy/cluster.hpp"
#include "proxy/exposition.hpp"
#include "proxy/ha.hpp"
#include "proxy/metrics_http.hpp"
#include "proxy/pool.hpp"
#include "proxy/process_stats.hpp"
#include "proxy/runtime.hpp"
#include "router/select.hpp"

#ifndef PGSLUICE_VERSION
#define PGSLUICE_VERSION "unknown"
#endif

namespace pgsluice::proxy {

namespace {

using prom::family;
using prom::labels;
using prom::metric_type;

family make(std::string name, std::string help, metric_type type) {
  family f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = type;
  return f;
}

family single(std::string name, std::string help, metric_type type, double value) {
  family f = make(std::move(name), std::move(help), type);
  f.samples.push_back({{}, value});
  return f;
}

const char* state_name(client_state s) noexcept {
  switch (s) {
    case client_state::login: return "login";
    case client_state::idle: return "idle";
    case client_state::waiting: return "waiting";
    case client_state::active: return "active";
    case client_state::closing: return "closing";
    case client_state::closed: return "closed";
  }
  return "?";
}

const char* state_name(server_state s) noexcept {
  switch (s) {
    case server_state::connecting: return "connecting";
    case server_state::idle: return "idle";
    case server_state::active: return "active";
    case server_state::resetting: return "resetting";
    case server_state::closed: return "closed";
  }
  return "?";
}

// The event counters of metrics.hpp, by their Prometheus names.
struct counter_export {
  counter c;
  const char* name;
  const char* help;
};
constexpr counter_export counter_exports[] = {
    {counter::clients_accepted, "pgsluice_clients_accepted_total", "Client connections accepted."},
    {counter::clients_refused, "pgsluice_clients_refused_total",
     "Clients refused at login: max_client_conn reached or shutting down."},
    {counter::logins_failed, "pgsluice_client_login_failures_total", "Client logins that failed authentication."},
    {counter::servers_opened, "pgsluice_servers_opened_total", "Server connections opened and logged in."},
    {counter::server_login_failures, "pgsluice_server_login_failures_total", "Server connections that failed to log in."},
    {counter::transactions, "pgsluice_transactions_total",
     "Transactions completed for clients (ReadyForQuery idle after a client's request)."},
    {counter::queries, "pgsluice_queries_total", "Client requests forwarded: simple Query messages and extended-protocol Syncs."},
    {counter::wait_timeouts, "pgsluice_pool_wait_timeouts_total",
     "Clients refused after waiting query_wait_timeout for a server connection."},
    {counter::cancels_forwarded, "pgsluice_cancels_forwarded_total", "Cancel requests forwarded to a server."},
    {counter::statements_prepared, "pgsluice_statements_prepared_total",
     "Prepared statements prepared on a server for a client (transaction pooling)."},
    {counter::pinned_sessions, "pgsluice_pinned_sessions_total",
     "Transaction-pooling clients pinned to their server by session state."},
    {counter::server_moves, "pgsluice_server_moves_total", "Server sockets moved to another worker thread's event loop."},
    {counter::client_received_bytes, "pgsluice_client_received_bytes_total", "Bytes received from clients."},
    {counter::client_sent_bytes, "pgsluice_client_sent_bytes_total", "Bytes sent to clients."},
    {counter::failovers, "pgsluice_failovers_total", "Failovers: a failed primary replaced by a promoted replica."},
    {counter::read_retries, "pgsluice_read_retries_total",
     "Read-only statements run again on another backend after theirs failed before any reply reached the client."},
    {counter::pipelined_statements, "pgsluice_pipelined_statements_total",
     "Autocommit statements queued on a server connection behind other clients' (pipeline_depth)."},
    {counter::client_parks, "pgsluice_client_parks_total",
     "Idle clients whose relay coroutines were put away (a second without a message) until their next bytes."},
};

// Per-database traffic (proxy/pool_stats.hpp, the counters of the admin console's SHOW STATS).
void add_database_stats(runtime& rt, std::vector<family>& out) {
  struct column {
    const char* name;
    const char* help;
    double scale;
    std::uint64_t stats_totals::*member;
  };
  static constexpr column columns[] = {
      {"pgsluice_database_transactions_total", "Transactions completed on servers, by client-facing database.", 1,
       &stats_totals::xact_count},
      {"pgsluice_database_queries_total", "Queries (Query and Sync messages) relayed to servers, by database.", 1,
       &stats_totals::query_count},
      {"pgsluice_database_received_bytes_total", "Bytes received from the database's clients.", 1,
       &stats_totals::bytes_received},
      {"pgsluice_database_sent_bytes_total", "Bytes the database's servers sent, relayed to its clients.", 1,
       &stats_totals::bytes_sent},
      {"pgsluice_database_transaction_seconds_total", "Time spent in transactions, from the first query to the end.",
       1e-6, &stats_totals::xact_time_us},
      {"pgsluice_database_query_seconds_total", "Time spent in queries, from arrival to ReadyForQuery.", 1e-6,
       &stats_totals::query_time_us},
      {"pgsluice_database_wait_seconds_total", "Time the database's clients waited for a server (or were held by PAUSE).",
       1e-6, &stats_totals::wait_time_us},
  };
  const auto rows = rt.db_stats().snapshot(std::chrono::steady_clock::now());
  for (const auto& col : columns) {
    family f = make(col.name, col.help, metric_type::counter);
    for (const auto& r : rows) f.samples.push_back({{{"database", r.database}}, static_cast<double>(r.total.*col.member) * col.scale});
    out.push_back(std::move(f));
  }
}

void add_process(std::vector<family>& out) {
  const process_stats p = read_process_stats();
  if (p.ok) {
    out.push_back(single("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
                         metric_type::counter, p.cpu_seconds));
    out.push_back(single("process_resident_memory_bytes", "Resident memory size in bytes.", metric_type::gauge,
                         p.resident_bytes));
    out.push_back(single("process_virtual_memory_bytes", "Virtual memory size in bytes.", metric_type::gauge,
                         p.virtual_bytes));
    if (p.start_time_seconds > 0) {
      out.push_back(single("process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
                           metric_type::gauge, p.start_time_seconds));
    }
  }
  out.push_back(single("process_open_fds", "Number of open file descriptors.", metric_type::gauge, p.open_fds));
  out.push_back(single("process_max_fds", "Maximum number of open file descriptors.", metric_type::gauge, p.max_fds));
}

void add_pools(runtime& rt, std::vector<family>& out) {
  family db_clients = make("pgsluice_database_clients", "Clients logged in, by client-facing database and user.",
                           metric_type::gauge);
  family servers = make("pgsluice_pool_servers",
                        "Server connections of each backend's pool, by state (active: attached to a client or "
                        "being reset).",
                        metric_type::gauge);
  family waiting = make("pgsluice_pool_clients_waiting", "Clients queued for a server connection of the pool.",
                        metric_type::gauge);
  family size = make("pgsluice_pool_size", "The pool's configured size (pool_size; with \"auto\", pool_size_auto_max).",
                     metric_type::gauge);
  family limit = make("pgsluice_pool_limit",
                      "Server connections the pool hands to clients at once: pool_size, or with pool_size = \"auto\" "
                      "the adaptive limit now.",
                      metric_type::gauge);
  family routed = make("pgsluice_backend_routed_total",
                       "Transactions (sessions in session pooling) routed to the backend, by reason: write, "
                       "read_replica, read_primary, ... (databases with replicas).",
                       metric_type::counter);
  family up = make("pgsluice_backend_up", "1 when the backend is up (serving), 0 otherwise.", metric_type::gauge);
  family health = make("pgsluice_backend_health", "The backend's health state: 1 for the current one.", metric_type::gauge);
  family lag_bytes = make("pgsluice_backend_replication_lag_bytes",
                          "How far the replica's replay is behind the primary's WAL position, in bytes.",
                          metric_type::gauge);
  family lag_seconds = make("pgsluice_backend_replication_lag_seconds",
                            "How far the replica's replay is behind in time, in seconds.", metric_type::gauge);
  // A cluster a reload retired still serves its clients until they move on: its clients count
  // with its successor's; its pools, draining, are left out (one series per pool and backend).
  std::map<std::pair<std::string, std::string>, std::int64_t> clients_of;
  for (const auto& c : rt.clusters().all_including_retired()) {
    clients_of[{c->database(), c->user()}] += c->client_count();
    if (c->retired()) continue;
    for (const auto& b : c->backends()) {
      const labels base{{"database", c->database()},
                        {"user", c->user()},
                        {"backend", b->cfg.host + ":" + std::to_string(b->cfg.port)},
                        {"role", std::string(router::to_string(b->shared->role.load(std::memory_order_relaxed)))}};
      auto with = [&base](std::string k, std::string v) {
        labels l = base;
        l.emplace_back(std::move(k), std::move(v));
        return l;
      };
      const pool_counts pc = b->pool->counts();
      servers.samples.push_back({with("state", "idle"), static_cast<double>(pc.idle)});
      servers.samples.push_back({with("state", "active"), static_cast<double>(pc.active)});
      servers.samples.push_back({with("state", "connecting"), static_cast<double>(pc.connecting)});
      waiting.samples.push_back({base, static_cast<double>(pc.waiting)});
      size.samples.push_back({base, static_cast<double>(b->pool->cfg().settings.pool_size)});
      limit.samples.push_back({base, static_cast<double>(b->pool->active_limit())});

      const router::health h = b->shared->health.load(std::memory_order_relaxed);
      up.samples.push_back({base, h == router::health::up ? 1.0 : 0.0});
      for (const router::health s : {router::health::up, router::health::down, router::health::lagging,
                                     router::health::fenced, router::health::draining}) {
        health.samples.push_back({with("state", std::string(router::to_string(s))), s == h ? 1.0 : 0.0});
      }
      if (c->routes_reads()) {
        for (std::size_t r = 0; r < router::route_reason_count; ++r) {
          routed.samples.push_back({with("reason", std::string(router::to_string(static_cast<router::route_reason>(r)))),
                                    static_cast<double>(b->routed[r].load(std::memory_order_relaxed))});
        }
      }
      if (b->shared->role.load(std::memory_order_relaxed) == router::role::replica) {
        if (const auto lb = b->shared->lag_bytes.load(std::memory_order_relaxed); lb != cluster::unknown)
          lag_bytes.samples.push_back({base, static_cast<double>(lb)});
        if (const auto lt = b->shared->lag_ms.load(std::memory_order_relaxed); lt >= 0)
          lag_seconds.samples.push_back({base, static_cast<double>(lt) / 1000.0});
      }
    }
  }
  for (const auto& [key, n] : clients_of)
    db_clients.samples.push_back({{{"database", key.first}, {"user", key.second}}, static_cast<double>(n)});
  for (auto* f : {&db_clients, &servers, &waiting, &size, &limit, &routed, &up, &health, &lag_bytes, &lag_seconds})
    out.push_back(std::move(*f));
}

}  // namespace

std::vector<prom::family> gather_metrics(runtime& rt) {
  std::vector<family> out;
  metrics& m = rt.stats();

  family info = make("pgsluice_build_info", "pgsluice's version; always 1.", metric_type::gauge);
  info.samples.push_back({{{"version", PGSLUICE_VERSION}}, 1});
  out.push_back(std::move(info));

  family clients = make("pgsluice_clients", "Client connections by state (login, idle, waiting for a server, active, closing).",
                        metric_type::gauge);
  for (const auto s : {client_state::login, client_state::idle, client_state::waiting, client_state::active,
                       client_state::closing}) {
    clients.samples.push_back({{{"state", state_name(s)}}, static_cast<double>(m.clients_in(s))});
  }
  out.push_back(std::move(clients));
  family servers = make("pgsluice_servers", "Server connections by state (connecting, idle in a pool, active, resetting).",
                        metric_type::gauge);
  for (const auto s : {server_state::connecting, server_state::idle, server_state::active, server_state::resetting}) {
    servers.samples.push_back({{{"state", state_name(s)}}, static_cast<double>(m.servers_in(s))});
  }
  out.push_back(std::move(servers));

  for (const auto& c : counter_exports) {
    // Failovers are counted by the health checks' state machine (proxy/ha.hpp).
    const auto v = c.c == counter::failovers ? static_cast<std::int64_t>(ha_registry::failovers()) : m.total(c.c);
    out.push_back(single(c.name, c.help, metric_type::counter, static_cast<double>(v)));
  }

  family errors = make("pgsluice_client_errors_total",
                       "ErrorResponses sent to clients (the servers' and pgsluice's own), by SQLSTATE class.",
                       metric_type::counter);
  for (const auto& [cls, n] : m.errors_by_class()) errors.samples.push_back({{{"sqlstate_class", cls}}, static_cast<double>(n)});
  out.push_back(std::move(errors));

  family waits = make("pgsluice_pool_wait_seconds",
                      "Time clients waited in a pool's queue for a server connection (those that got one or timed out).",
                      metric_type::histogram);
  const auto h = m.pool_waits();
  prom::histogram_sample hs;
  hs.bounds.assign(metrics::pool_wait_bounds.begin(), metrics::pool_wait_bounds.end());
  hs.counts.assign(h.counts.begin(), h.counts.end());
  hs.sum = h.sum_seconds;
  waits.histograms.push_back(std::move(hs));
  out.push_back(std::move(waits));

  family reloads = make("pgsluice_config_reloads_total", "Config reloads (SIGHUP), by result.", metric_type::counter);
  reloads.samples.push_back({{{"result", "success"}}, static_cast<double>(m.total(counter::config_reloads))});
  reloads.samples.push_back({{{"result", "failure"}}, static_cast<double>(m.total(counter::config_reload_failures))});
  out.push_back(std::move(reloads));
  out.push_back(single("pgsluice_config_last_reload_successful", "1 when the last config reload succeeded (or none was tried).",
                       metric_type::gauge, m.last_reload_ok() ? 1 : 0));
  out.push_back(single("pgsluice_config_last_reload_timestamp_seconds",
                       "When the last config reload was tried, Unix time; 0 when none was.", metric_type::gauge,
                       static_cast<double>(m.last_reload_time())));

  out.push_back(single("pgsluice_client_connections_limit", "max_client_conn: client connections accepted in total.",
                       metric_type::gauge, static_cast<double>(rt.config()->max_client_conn)));

  add_pools(rt, out);
  add_database_stats(rt, out);
  add_process(out);
  return out;
}

std::string scrape_text(runtime& rt) {
  const auto families = gather_metrics(rt);
  return prom::write_text(families);
}

}  // namespace pgsluice::proxy

// The admin console's SHOW commands, with PgBouncer 1.18's columns, order and types (its admin.c and stats.c); pgsluice's own columns only after them, and SHOW BACKENDS.
//
// Sessions and the servers they hold are read on their own worker threads (gather_sessions),
// idle servers under their pool's lock, counters from their atomics: nothing here touches
// another thread's state directly.
#include <algorithm>
#include <map>

#include "conf/config.hpp"
#include "protocol/codec.hpp"
#include "proxy/admin.hpp"
#include "proxy/client_session.hpp"
#include "proxy/cluster.hpp"
#include "proxy/pool.hpp"
#include "proxy/runtime.hpp"
#include "proxy/server_connection.hpp"

#ifndef PGSLUICE_PROXY_VERSION
#define PGSLUICE_PROXY_VERSION "0"
#endif

namespace pgsluice::proxy {

namespace {

using clock = std::chrono::steady_clock;
using T = admin_result::type;
using cell = admin_result::cell;

// PgBouncer's name for the console's own pool (scripts filter it by that name).
constexpr std::string_view console_pool = "pgbouncer";

bool iequals(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

std::int64_t wall_seconds(clock::time_point t) {
  const auto ago = clock::now() - t;
  return std::chrono::duration_cast<std::chrono::seconds>((std::chrono::system_clock::now() - ago).time_since_epoch())
      .count();
}

std::string addr_of(const tcp::endpoint& e) { return e.address().to_string(); }
std::string addr_of(const stream_endpoint& e) { return endpoint_address(e); }

// The socket columns of SHOW CLIENTS and SHOW SERVERS (PgBouncer's SKF_STD).
admin_result socket_header(std::vector<std::uint8_t>& out) {
  return admin_result(out, {{"type", T::text},         {"user", T::text},         {"database", T::text},
                            {"state", T::text},        {"addr", T::text},         {"port", T::int4},
                            {"local_addr", T::text},   {"local_port", T::int4},   {"connect_time", T::timestamp},
                            {"request_time", T::timestamp}, {"wait", T::int4},    {"wait_us", T::int4},
                            {"close_needed", T::int4}, {"ptr", T::text},          {"link", T::text},
                            {"remote_pid", T::int4},   {"tls", T::text},          {"application_name", T::text}});
}

cell mode_text(std::optional<conf::pool_mode> m) {
  if (!m) return std::nullopt;
  return text(conf::to_string(*m));
}

void stats_row(admin_result& r, const std::string& db, const stats_totals& t) {
  r.row({text(db), num(t.xact_count), num(t.query_count), num(t.bytes_received), num(t.bytes_sent),
         num(t.xact_time_us), num(t.query_time_us), num(t.wait_time_us)});
}

}  // namespace

awaitable<bool> client_session::console_show(std::string_view what, std::vector<std::uint8_t>& out) {
  const auto cfg = rt_.config();
  const auto now = clock::now();
  auto is = [&](std::string_view w) { return iequals(what, w); };

  if (is("help")) {
    protocol::notice_response n;
    const std::string detail =
        "\n\tSHOW HELP|CONFIG|DATABASES|POOLS|CLIENTS|SERVERS|USERS|VERSION\n"
        "\tSHOW LISTS|MEM|STATE|BACKENDS\n"
        "\tSHOW STATS|STATS_TOTALS|STATS_AVERAGES|TOTALS\n"
        "\tRELOAD\n"
        "\tPAUSE [<db>]\n"
        "\tRESUME [<db>]\n"
        "\tDISABLE <db>\n"
        "\tENABLE <db>\n"
        "\tRECONNECT [<db>]\n"
        "\tKILL <db>\n"
        "\tSHUTDOWN\n"
        "\tWAIT_CLOSE [<db>]";
    n.fields = {{'S', "NOTICE"}, {'C', "00000"}, {'M', "Console usage"}, {'D', detail}};
    protocol::encode(n, out);
    admin_complete(out, "SHOW");
    co_return true;
  }
  if (is("version")) {
    admin_result r(out, {{"version", T::text}});
    r.row({text("pgsluice " PGSLUICE_PROXY_VERSION)});
    admin_complete(out, "SHOW");
    co_return true;
  }
  if (is("state")) {
    // PgBouncer 1.19's SHOW STATE (1.18 has none); pgsluice never suspends.
    const bool paused = rt_.control().all_paused();
    admin_result r(out, {{"key", T::text}, {"value", T::text}});
    r.row({text("active"), text(paused ? "no" : "yes")});
    r.row({text("paused"), text(paused ? "yes" : "no")});
    r.row({text("suspended"), text("no")});
    admin_complete(out, "SHOW");
    co_return true;
  }
  if (is("stats") || is("stats_totals") || is("stats_averages") || is("totals")) {
    const auto rows = rt_.db_stats().snapshot(now);
    if (is("stats")) {
      admin_result r(out, {{"database", T::text},        {"total_xact_count", T::numeric}, {"total_query_count", T::numeric},
                           {"total_received", T::numeric}, {"total_sent", T::numeric},     {"total_xact_time", T::numeric},
                           {"total_query_time", T::numeric}, {"total_wait_time", T::numeric}, {"avg_xact_count", T::numeric},
                           {"avg_query_count", T::numeric}, {"avg_recv", T::numeric},      {"avg_sent", T::numeric},
                           {"avg_xact_time", T::numeric}, {"avg_query_time", T::numeric},  {"avg_wait_time", T::numeric}});
      for (const auto& row : rows) {
        const auto& t = row.total;
        const auto& a = row.average;
        r.row({text(row.database), num(t.xact_count), num(t.query_count), num(t.bytes_received), num(t.bytes_sent),
               num(t.xact_time_us), num(t.query_time_us), num(t.wait_time_us), num(a.xact_count), num(a.query_count),
               num(a.bytes_received), num(a.bytes_sent), num(a.xact_time_us), num(a.query_time_us),
               num(a.wait_time_us)});
      }
    } else if (is("totals")) {
      stats_totals t;
      stats_totals a;
      for (const auto& row : rows) {
        t += row.total;
        a += row.average;
      }
      admin_result r(out, {{"name", T::text}, {"value", T::numeric}});
      auto pair = [&](std::string_view k, std::uint64_t v) { r.row({text(k), num(v)}); };
      pair("total_xact_count", t.xact_count);
      pair("total_query_count", t.query_count);
      pair("total_client_bytes", t.bytes_received);
      pair("total_server_bytes", t.bytes_sent);
      pair("total_xact_time", t.xact_time_us);
      pair("total_query_time", t.query_time_us);
      pair("total_wait_time", t.wait_time_us);
      pair("avg_xact_count", a.xact_count);
      pair("avg_query_count", a.query_count);
      pair("avg_client_bytes", a.bytes_received);
      pair("avg_server_bytes", a.bytes_sent);
      pair("avg_xact_time", a.xact_time_us);
      pair("avg_query_time", a.query_time_us);
      pair("avg_wait_time", a.wait_time_us);
    } else {
      admin_result r(out, {{"database", T::text},      {"xact_count", T::numeric}, {"query_count", T::numeric},
                           {"bytes_received", T::numeric}, {"bytes_sent", T::numeric}, {"xact_time", T::numeric},
                           {"query_time", T::numeric}, {"wait_time", T::numeric}});
      for (const auto& row : rows) stats_row(r, row.database, is("stats_totals") ? row.total : row.average);
    }
    admin_complete(out, "SHOW");
    co_return true;
  }
  if (is("users")) {
    admin_result r(out, {{"name", T::text}, {"pool_mode", T::text}});
    for (const auto& u : cfg->users) r.row({text(u.name), mode_text(u.pool_mode)});
    admin_complete(out, "SHOW");
    co_return true;
  }
  if (is("config")) {
    const auto restart = [](std::string_view k) {
      return k == "listen" || k == "listen_backlog" || k == "workers" || k.starts_with("metrics.");
    };
    admin_result r(out, {{"key", T::text}, {"value", T::text}, {"default", T::text}, {"changeable", T::text}});
    for (const auto& s : conf::current_settings(*cfg)) {
      r.row({text(s.key), text(s.value), text(s.default_value), text(restart(s.key) ? "no" : "yes")});
    }
    admin_complete(out, "SHOW");
    co_return true;
  }

  const auto clusters = rt_.clusters().all_including_retired();
  if (is("databases")) {
    admin_result r(out, {{"name", T::text},          {"host", T::text},         {"port", T::int4},
                         {"database", T::text},      {"force_user", T::text},   {"pool_size", T::int4},
                         {"min_pool_size", T::int4}, {"reserve_pool", T::int4}, {"pool_mode", T::text},
                         {"max_connections", T::int4}, {"current_connections", T::int4}, {"paused", T::int4},
                         {"disabled", T::int4}});
    // Configured databases, and those the "*" fallback created for clients.
    std::vector<std::string> names;
    for (const auto& d : cfg->databases) {
      if (d.name != "*") names.push_back(d.name);
    }
    for (const auto& c : clusters) {
      if (std::find(names.begin(), names.end(), c->database()) == names.end()) names.push_back(c->database());
    }
    for (const auto& name : names) {
      const conf::database_config* d = cfg->find_database(name);
      if (d == nullptr) continue;
      const conf::backend_config* primary = d->primary();
      const auto ps = cfg->effective_pool(*d, nullptr);
      std::uint32_t current = 0;
      for (const auto& c : clusters) {
        if (c->database() != name) continue;
        for (const auto& b : c->backends()) current += b->pool->counts().total();
      }
      r.row({text(name), primary ? text(primary->host) : std::nullopt, num(primary ? primary->port : 0),
             text(d->backend_dbname(name)), d->user ? text(*d->user) : std::nullopt, num(ps.pool_size),
             num(ps.min_pool_size), num(ps.reserve_pool_size), mode_text(d->pool_mode), num(ps.max_db_connections),
             num(current), num(rt_.control().paused(name) ? 1 : 0), num(rt_.control().disabled(name) ? 1 : 0)});
    }
    admin_complete(out, "SHOW");
    co_return true;
  }
  if (is("backends")) {
    // Pgpool-II's SHOW POOL_NODES, per database and configured backend.
    admin_result r(out, {{"database", T::text},     {"backend", T::text},       {"host", T::text},
                         {"port", T::int4},         {"role", T::text},          {"status", T::text},
                         {"weight", T::int4},       {"lag_bytes", T::int8},     {"lag_seconds", T::numeric},
                         {"reads_routed", T::int8}, {"writes_routed", T::int8}, {"last_status_change", T::timestamp}});
    for (const auto& d : cfg->databases) {
      for (std::size_t i = 0; i < d.backends.size(); ++i) {
        const auto& be = d.backends[i];
        cell status = text("unused");  // no client has used the database since the start or reload
        cell role = text(conf::to_string(be.role));
        cell lag_bytes;
        cell lag_seconds;
        cell since;
        std::uint64_t reads = 0;
        std::uint64_t writes = 0;
        // Health, role and lag as the database's health checks publish them (proxy/ha.hpp).
        if (const auto set = rt_.ha().find(d.name)) {
          const auto st = set->status();
          if (i < st.size()) {
            const auto& b = st[i];
            status = text(router::to_string(b.status));
            role = text(router::to_string(b.role));
            since = format_timestamp(std::chrono::duration_cast<std::chrono::seconds>(b.changed_at.time_since_epoch()).count());
            if (b.lag_bytes) lag_bytes = num(*b.lag_bytes);
            if (b.lag_seconds) lag_seconds = std::to_string(*b.lag_seconds);
            reads = b.reads_routed;
            writes = b.writes_routed;
          }
        }
        r.row({text(d.name), text(be.host + ":" + std::to_string(be.port)), text(be.host), num(be.port), role, status,
               num(be.weight), lag_bytes, lag_seconds, num(reads), num(writes), since});
      }
    }
    admin_complete(out, "SHOW");
    co_return true;
  }
  // Server connections open and client sessions, over every pool and worker.
  auto server_count = [&] {
    std::uint32_t n = 0;
    for (const auto& c : clusters) {
      for (const auto& b : c->backends()) n += b->pool->counts().total();
    }
    return n;
  };
  auto session_count = [&] {
    std::size_t n = 0;
    for (auto& w : rt_.workers()) n += w->session_count();
    return n;
  };
  if (is("mem")) {
    const auto servers = server_count();
    const auto sessions = session_count();
    // pgsluice allocates sessions and servers one by one (no slabs): nothing is kept free.
    admin_result r(out, {{"name", T::text}, {"size", T::int4}, {"used", T::int4}, {"free", T::int4}, {"memtotal", T::int4}});
    auto mem_row = [&](std::string_view name, std::size_t size, std::size_t used) {
      r.row({text(name), num(static_cast<std::uint64_t>(size)), num(static_cast<std::uint64_t>(used)), num(0),
             num(static_cast<std::uint64_t>(size * used))});
    };
    mem_row("client_cache", sizeof(client_session), sessions);
    mem_row("server_cache", sizeof(server_connection), servers);
    admin_complete(out, "SHOW");
    co_return true;
  }

  if (!is("pools") && !is("clients") && !is("servers") && !is("lists")) co_return false;
  const auto views = co_await gather_sessions();
  if (is("lists")) {
    const auto servers = server_count();
    const auto sessions = session_count();
    admin_result r(out, {{"list", T::text}, {"items", T::int4}});
    auto list = [&](std::string_view k, std::uint64_t v) { r.row({text(k), num(v)}); };
    list("databases", cfg->databases.size());
    list("users", cfg->users.size());
    list("pools", clusters.size());
    list("free_clients", 0);
    list("used_clients", sessions);
    list("login_clients", sessions >= views.size() ? sessions - views.size() : 0);
    list("free_servers", 0);
    list("used_servers", servers);
    list("dns_names", 0);
    list("dns_zones", 0);
    list("dns_queries", 0);
    list("dns_pending", 0);
    admin_complete(out, "SHOW");
    co_return true;
  }
  if (is("clients")) {
    admin_result r = socket_header(out);
    for (const auto& v : views) {
      const auto wait_us = std::chrono::duration_cast<std::chrono::microseconds>(v.waited).count();
      r.row({text("C"), text(v.user), text(v.console ? console_pool : std::string_view(v.database)), text(v.state),
             text(addr_of(v.remote)), num(v.remote.port()), text(addr_of(v.local)), num(v.local.port()),
             text(format_timestamp(wall_seconds(v.connected))), text(format_timestamp(wall_seconds(v.last_request))),
             num(wait_us / 1000000), num(wait_us % 1000000), num(0), text(v.name), text(v.server_name), num(0), text(""),
             text(v.application_name)});
    }
    admin_complete(out, "SHOW");
    co_return true;
  }
  if (is("servers")) {
    admin_result r = socket_header(out);
    for (const auto& v : views) {
      if (!v.has_server) continue;
      r.row({text("S"), text(v.server_user), text(v.database), text("active"), text(addr_of(v.server_remote)),
             num(endpoint_port(v.server_remote)), text(addr_of(v.server_local)), num(endpoint_port(v.server_local)),
             text(format_timestamp(wall_seconds(v.server_connected))), text(format_timestamp(wall_seconds(v.server_used))),
             num(0), num(0), num(v.server_close_needed ? 1 : 0), text(v.server_name), text(v.name), num(v.backend_pid),
             text(""), text(v.application_name)});
    }
    for (const auto& c : clusters) {
      for (const auto& b : c->backends()) {
        const auto& p = b->pool;
        for (const auto& s : p->idle_servers()) {
          r.row({text("S"), text(p->cfg().target.user), text(c->database()), text("idle"), text(addr_of(s.remote)),
                 num(endpoint_port(s.remote)), text(addr_of(s.local)), num(endpoint_port(s.local)),
                 text(format_timestamp(wall_seconds(s.created))), text(format_timestamp(wall_seconds(s.last_used))),
                 num(0), num(0), num(p->close_needed(s.id) ? 1 : 0), text(s.name), text(""), num(s.backend_pid), text(""),
                 text("")});
        }
      }
    }
    admin_complete(out, "SHOW");
    co_return true;
  }
  // POOLS: one row per (database, user), the servers of all its backends together.
  struct pool_row {
    std::string database;
    std::string user;
    std::uint32_t cl_active = 0, cl_waiting = 0, sv_active = 0, sv_idle = 0, sv_login = 0;
    std::uint32_t pool_limit = 0;  // servers handed out at once over its backends (pool_size = "auto": adaptive)
    clock::duration maxwait{};
    cell mode;
  };
  std::map<std::string, pool_row> rows;
  for (const auto& c : clusters) {
    auto& row = rows[c->name()];
    row.database = c->database();
    row.user = c->user();
    row.mode = text(c->transaction_mode() ? "transaction" : "session");
    for (const auto& b : c->backends()) {
      const auto n = b->pool->counts();
      row.sv_active += n.active;
      row.sv_idle += n.idle;
      row.sv_login += n.connecting;
      row.pool_limit += b->pool->active_limit();
    }
  }
  const std::string console_key = std::string(console_pool) + "/" + std::string(console_pool);
  for (const auto& v : views) {
    auto& row = rows[v.console ? console_key : v.cluster];
    if (v.console) {
      row.database = row.user = std::string(console_pool);
      row.mode = text("statement");
    }
    if (row.database.empty()) {
      row.database = v.database;
      row.user = v.user;
    }
    if (v.state == "waiting") {
      ++row.cl_waiting;
      row.maxwait = std::max(row.maxwait, v.waited);
    } else {
      ++row.cl_active;
    }
  }
  admin_result r(out, {{"database", T::text},          {"user", T::text},          {"cl_active", T::int4},
                       {"cl_waiting", T::int4},        {"cl_active_cancel_req", T::int4},
                       {"cl_waiting_cancel_req", T::int4}, {"sv_active", T::int4}, {"sv_active_cancel", T::int4},
                       {"sv_being_canceled", T::int4}, {"sv_idle", T::int4},       {"sv_used", T::int4},
                       {"sv_tested", T::int4},         {"sv_login", T::int4},      {"maxwait", T::int4},
                       {"maxwait_us", T::int4},        {"pool_mode", T::text},     {"pool_limit", T::int4}});
  for (const auto& [key, row] : rows) {
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(row.maxwait).count();
    r.row({text(row.database), text(row.user), num(row.cl_active), num(row.cl_waiting), num(0), num(0), num(row.sv_active),
           num(0), num(0), num(row.sv_idle), num(0), num(0), num(row.sv_login), num(us / 1000000), num(us % 1000000),
           row.mode, num(row.pool_limit)});
  }
  admin_complete(out, "SHOW");
  co_return true;
}

}  // namespace pgsluice::proxy

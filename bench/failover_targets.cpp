// The failover bench's targets as their users configure them: pgsluice (roles auto, promote), Pgpool-II with its failover scripts, HAProxy with pgsql-check, PgBouncer.
#include <csignal>
#include <fstream>
#include <sstream>

#include "bench/failover_detail.hpp"

namespace pgsluice::bench::failover_detail {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

std::string toml_quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

login_probe admin_probe(const pg_cluster& c) { return {c.admin().name, c.admin().password, c.database()}; }

std::string client_conninfo(const config_server& s, const pg_cluster& c) {
  return s.conninfo(c.admin().name, c.admin().password, c.database());
}

// --- pgsluice ------------------------------------------------------------------

// Where the failover keys go differs between builds (a database's own key, or a default
// for all); the bench tries each layout with `pgsluice check` and keeps the first one
// accepted. A build without failover gets the plain layout (primary and replica roles).
enum class pgsluice_layout { database_keys, root_keys, static_roles };

std::string pgsluice_config(pgsluice_layout layout, std::uint16_t listen_port, const pg_cluster& c) {
  const bool ha = layout != pgsluice_layout::static_roles;
  std::ostringstream t;
  t << "# pgsluice for `pgsluice bench failover` (written by bench/failover_targets.cpp)\n"
    << "pool_mode = \"transaction\"\n"
    << "default_pool_size = 20\n"
    << "auth_type = \"scram-sha-256\"\n";
  if (layout == pgsluice_layout::root_keys) t << "failover = \"promote\"\n";
  t << "\n[listen]\nhost = \"127.0.0.1\"\nport = " << listen_port << "\n\n"
    // info: a backend's status changes (down, promoted, fenced) are logged there.
    << "[log]\nlevel = \"info\"\nlog_connections = false\nlog_disconnections = false\n\n[users]\n";
  for (const auto& u : c.state().users) t << toml_quote(u.name) << " = " << toml_quote(u.password) << "\n";
  const std::string db = toml_quote(c.database());
  t << "\n[databases." << db << "]\n";
  if (layout == pgsluice_layout::database_keys) t << "failover = \"promote\"\n";
  std::vector<std::size_t> order{c.primary_index()};
  for (const auto i : c.replica_indexes()) order.push_back(i);
  for (const auto i : order)
    t << "\n[[databases." << db << ".backends]]\nhost = \"127.0.0.1\"\nport = " << c.port(i) << "\nrole = \""
      << (ha ? "auto" : (i == c.primary_index() ? "primary" : "replica")) << "\"\n";
  return t.str();
}

started_target start_pgsluice(const pg_cluster& c, const fs::path& dir, const failover_options& options) {
  std::error_code ec;
  const fs::path binary = options.pgsluice_binary.empty() ? fs::read_symlink("/proc/self/exe", ec) : options.pgsluice_binary;
  fs::create_directories(dir);
  // The first layout this build accepts, checked on a file with a placeholder port.
  pgsluice_layout chosen = pgsluice_layout::static_roles;
  std::string refused;
  for (const auto layout : {pgsluice_layout::database_keys, pgsluice_layout::root_keys}) {
    std::ofstream(dir / "check.toml") << pgsluice_config(layout, 6432, c);
    spawn_options o;
    o.argv = {binary.string(), "check", "-c", (dir / "check.toml").string()};
    o.log_file = dir / "check.log";
    try {
      run_to_completion(o, 30s);
      chosen = layout;
      break;
    } catch (const stack_error& e) {
      if (refused.empty()) refused = e.what();
    }
  }
  started_target t;
  if (chosen == pgsluice_layout::static_roles)
    t.notes.push_back("pgsluice check refused the failover keys: " + refused.substr(0, 300));
  // A build may accept the keys before it finds the primary by itself: then the run goes
  // on with the configured roles, and says so.
  for (;;) {
    config_server::options o;
    o.name = "pgsluice";
    o.dir = dir;
    o.probe = admin_probe(c);
    o.run_as_service_user = false;
    o.stop_signal = SIGTERM;
    o.start_timeout = chosen == pgsluice_layout::static_roles ? 20s : 10s;
    o.write_config = [&c, dir, binary, chosen](std::uint16_t port) {
      std::ofstream(dir / "pgsluice.toml") << pgsluice_config(chosen, port, c);
      return std::vector<std::string>{binary.string(), "serve", "-c", (dir / "pgsluice.toml").string()};
    };
    try {
      t.server = std::make_unique<config_server>(std::move(o));
      break;
    } catch (const stack_error& e) {
      if (chosen == pgsluice_layout::static_roles) throw;
      const std::string why = e.what();
      t.notes.push_back("with role = \"auto\" this build served no login within 10 s (" +
                        why.substr(0, why.find('\n')).substr(0, 300) + "): ran with roles primary and replica instead");
      chosen = pgsluice_layout::static_roles;
    }
  }
  if (chosen == pgsluice_layout::static_roles)
    t.setup = "pgsluice, transaction pooling, backends with roles primary and replica, no failover (this build "
              "cannot run role = \"auto\" / failover = \"promote\")";
  else
    t.setup = std::string("pgsluice, transaction pooling, both servers with role = \"auto\", failover = \"promote\" (") +
              (chosen == pgsluice_layout::database_keys ? "set on the database" : "set as the default") +
              "), health checks and failover_after at their defaults";
  t.log_file = t.server->record().log_file;
  t.conninfo = client_conninfo(*t.server, c);
  return t;
}

// --- Pgpool-II -----------------------------------------------------------------

// failover_command (Pgpool-II docs, "Failover and Failback"): when the failed node was the
// primary, promote the new main node on its own data directory with pg_ctl promote, as
// the docs' example scripts do (they ssh to the node; here it is local).
std::string pgpool_failover_script(const fs::path& pg_ctl, const fs::path& log) {
  std::ostringstream s;
  s << "#!/bin/sh\n"
    << "# failover_command = 'failover.sh %d %h %p %D %m %H %M %P %r %R'\n"
    << "failed_node_id=\"$1\"; failed_host=\"$2\"; failed_port=\"$3\"; new_main_id=\"$5\"\n"
    << "new_main_host=\"$6\"; old_primary_id=\"$8\"; new_main_port=\"$9\"; shift 9; new_main_dir=\"$1\"\n"
    << "log=" << sql_literal(log.string()) << "\n"
    << "echo \"$(date '+%F %T.%N') failover: node $failed_node_id ($failed_host:$failed_port) failed;"
       " old primary $old_primary_id, new main $new_main_id ($new_main_host:$new_main_port)\" >>\"$log\"\n"
    << "if [ \"$failed_node_id\" != \"$old_primary_id\" ]; then echo 'a standby failed: nothing to promote' >>\"$log\"; exit 0; fi\n"
    << "if [ \"$new_main_id\" -lt 0 ]; then echo 'no node left to promote' >>\"$log\"; exit 1; fi\n"
    << sql_literal(pg_ctl.string()) << " promote -w -t 60 -D \"$new_main_dir\" >>\"$log\" 2>&1\n"
    << "status=$?\necho \"$(date '+%F %T.%N') pg_ctl promote exit status $status\" >>\"$log\"\nexit $status\n";
  return s.str();
}

// follow_primary_command: the other standbys follow the new primary (primary_conninfo
// re-pointed, reloaded). With the bench's single standby Pgpool-II never calls it.
std::string pgpool_follow_script(const fs::path& psql, const fs::path& socket_dir, const std::string& superuser,
                                 const fs::path& log) {
  std::ostringstream s;
  s << "#!/bin/sh\n"
    << "# follow_primary_command = 'follow_primary.sh %d %h %p %D %m %H %M %P %r %R'\n"
    << "node_id=\"$1\"; node_port=\"$3\"; new_primary_port=\"$9\"\n"
    << "log=" << sql_literal(log.string()) << "\n"
    << "echo \"$(date '+%F %T.%N') follow_primary: node $node_id follows the primary on port $new_primary_port\" >>\"$log\"\n"
    << sql_literal(psql.string()) << " -X -h " << sql_literal(socket_dir.string()) << " -p \"$node_port\" -U "
    << sql_literal(superuser) << " -d postgres -v ON_ERROR_STOP=1 -c \"ALTER SYSTEM SET primary_conninfo = 'host="
    << socket_dir.string() << " port=$new_primary_port user=" << superuser
    << "'\" -c 'SELECT pg_reload_conf()' >>\"$log\" 2>&1\n";
  return s.str();
}

started_target start_pgpool_target(const pg_cluster& c, const fs::path& dir) {
  const service_user user = resolve_service_user();
  make_service_dir(dir, user, 0700);
  const fs::path bin = c.state().pg_bin_dir;
  const fs::path script_log = dir / "failover-scripts.log";
  write_service_file(dir / "failover.sh", pgpool_failover_script(bin / "pg_ctl", script_log), user, 0700);
  write_service_file(dir / "follow_primary.sh",
                     pgpool_follow_script(bin / "psql", c.socket_dir(), c.state().local_superuser, script_log), user, 0700);
  write_service_file(script_log, "", user);
  pgpool_spec s = pgpool_for(c, dir);
  s.persistent = false;
  const auto q = [](const std::string& v) { return sql_literal(v); };
  // Health checks as in the Pgpool-II docs' streaming-replication example; a broken
  // backend connection fails over at once (failover_on_backend_error, on by default).
  s.settings = {{"health_check_period", "5"},
                {"health_check_timeout", "30"},
                {"health_check_user", q(c.admin().name)},
                {"health_check_password", "''"},
                {"health_check_max_retries", "3"},
                {"health_check_retry_delay", "1"},
                {"failover_on_backend_error", "on"},
                {"failover_command", q((dir / "failover.sh").string() + " %d %h %p %D %m %H %M %P %r %R")},
                {"follow_primary_command", q((dir / "follow_primary.sh").string() + " %d %h %p %D %m %H %M %P %r %R")},
                {"log_min_messages", "warning"}};
  started_target t;
  t.setup = "Pgpool-II 4.3, streaming replication, load balancing, health checks every 5 s (timeout 30 s, "
            "3 retries 1 s apart), failover_on_backend_error = on, failover_command promotes the standby "
            "with pg_ctl promote, follow_primary_command re-points other standbys";
  t.server = start_pgpool(s);
  t.log_file = t.server->record().log_file;
  t.extra_logs.push_back(script_log);
  t.conninfo = client_conninfo(*t.server, c);
  return t;
}

// --- HAProxy -------------------------------------------------------------------

started_target start_haproxy(const pg_cluster& c, const fs::path& dir) {
  const fs::path program = find_program("haproxy", "haproxy");
  const service_user user = resolve_service_user();
  const std::uint16_t primary = c.port(c.primary_index());
  std::vector<std::pair<std::string, std::uint16_t>> replicas;
  for (const auto i : c.replica_indexes()) replicas.emplace_back(c.node(i).name, c.port(i));
  config_server::options o;
  o.name = "haproxy";
  o.dir = dir;
  o.probe = admin_probe(c);
  o.stop_signal = SIGTERM;  // hard stop; SIGUSR1 would wait for the clients
  o.start_timeout = 20s;
  const std::string check_user = c.admin().name;
  o.write_config = [=](std::uint16_t port) {
    std::ostringstream cfg;
    // The usual PostgreSQL front: pgsql-check logs in up to the authentication request,
    // the primary serves, the standby is the backup. HAProxy cannot tell which one is the
    // primary; nothing here promotes the standby.
    cfg << "# HAProxy for `pgsluice bench failover` (written by bench/failover_targets.cpp)\n"
        << "global\n  log stdout format raw local0 info\n  maxconn 4000\n\n"
        << "defaults\n  mode tcp\n  log global\n  option dontlognull\n  timeout connect 5s\n"
        << "  timeout client 30m\n  timeout server 30m\n\n"
        << "listen postgres\n  bind 127.0.0.1:" << port << "\n"
        << "  option pgsql-check user " << check_user << "\n"
        << "  default-server inter 2s fall 3 rise 2 on-marked-down shutdown-sessions\n"
        << "  server primary 127.0.0.1:" << primary << " check\n";
    for (const auto& [name, p] : replicas) cfg << "  server " << name << " 127.0.0.1:" << p << " check backup\n";
    write_service_file(dir / "haproxy.cfg", cfg.str(), user);
    return std::vector<std::string>{program.string(), "-db", "-f", (dir / "haproxy.cfg").string()};
  };
  started_target t;
  t.setup = "HAProxy 2.6, TCP mode, option pgsql-check, the primary first and the standby as backup "
            "(checks every 2 s, down after 3); no promotion: HAProxy does not run one, and people pair it with "
            "Patroni or repmgr rather than Pgpool-II's scripts";
  t.server = std::make_unique<config_server>(std::move(o));
  t.log_file = t.server->record().log_file;
  t.conninfo = client_conninfo(*t.server, c);
  t.notes.push_back("HAProxy cannot tell a primary from a standby: once the primary is down it sends every "
                    "connection, writes included, to the read-only standby");
  return t;
}

// --- PgBouncer -----------------------------------------------------------------

started_target start_pgbouncer_target(const pg_cluster& c, const fs::path& dir) {
  pgbouncer_spec s = pgbouncer_for(c, dir);
  s.persistent = false;
  started_target t;
  t.setup = "PgBouncer 1.18, transaction pooling, in front of the primary: it has no failover";
  t.server = start_pgbouncer(s);
  t.log_file = t.server->record().log_file;
  t.conninfo = client_conninfo(*t.server, c);
  return t;
}

}  // namespace

started_target start_target(const std::string& name, const pg_cluster& cluster, const fs::path& dir,
                            const failover_options& options) {
  if (name == "pgsluice") return start_pgsluice(cluster, dir, options);
  if (name == "pgpool") return start_pgpool_target(cluster, dir);
  if (name == "haproxy") return start_haproxy(cluster, dir);
  if (name == "pgbouncer") return start_pgbouncer_target(cluster, dir);
  throw stack_error("unknown failover target '" + name + "'");
}

}  // namespace pgsluice::bench::failover_detail

// The local bench stack: starts, adopts, describes and stops the cluster and the poolers in front of it.
#include "bench/stack.hpp"

#include <nlohmann/json.hpp>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <ostream>
#include <sstream>

#include "bench/cluster.hpp"
#include "bench/tls_files.hpp"
#include "conf/config.hpp"

namespace pgsluice::bench {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr const char* pooler_names[] = {"pgbouncer", "pgpool", "pgbouncer-pgpool", "pgsluice"};

std::string toml_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string first_line(const std::string& s) {
  const auto nl = s.find('\n');
  return nl == std::string::npos ? s : s.substr(0, nl);
}

// Can the service user reach (traverse) every existing ancestor of `dir`?
bool reachable_by(const fs::path& dir, const service_user& user) {
  if (!user.switch_needed) return true;
  for (fs::path p = dir; !p.empty(); p = p.parent_path()) {
    struct stat st {};
    if (::stat(p.c_str(), &st) == 0) {
      const bool ok = (st.st_mode & S_IXOTH) || (st.st_uid == user.uid && (st.st_mode & S_IXUSR)) ||
                      (st.st_gid == user.gid && (st.st_mode & S_IXGRP));
      if (!ok) return false;
    }
    if (p == p.root_path()) break;
  }
  return true;
}

}  // namespace

const std::vector<std::string>& stack_target_names() {
  static const std::vector<std::string> names{"direct",   "pgbouncer",       "pgpool",        "pgbouncer-pgpool",
                                              "pgsluice", "pgsluice-routed", "pgbouncer-tls", "pgsluice-tls",
                                              "pgbouncer-unix", "pgsluice-unix", "pgsluice-pipelined"};
  return names;
}

fs::path default_stack_dir() {
  const fs::path local = fs::current_path() / ".pgsluice" / "stack";
  try {
    if (reachable_by(local, resolve_service_user())) return local;
  } catch (const std::exception&) {
    return local;  // no postgres user: up() reports that
  }
  return "/var/tmp/pgsluice-stack";
}

std::string routed_database(const std::string& database) { return database + "_routed"; }
std::string unix_database(const std::string& database) { return database + "_unix"; }
std::string pipelined_database(const std::string& database) { return database + "_pipelined"; }

std::string pgsluice_stack_config(std::uint16_t listen_port, std::uint16_t primary_port, const std::string& database,
                                  const std::vector<std::pair<std::string, std::string>>& users, int pool_size,
                                  std::uint32_t max_clients, const std::vector<std::uint16_t>& replica_ports,
                                  const fs::path& tls_cert, const fs::path& tls_key, const fs::path& socket_dir) {
  std::ostringstream t;
  t << "# pgsluice for the local bench stack (written by pgsluice bench stack up):\n"
    << "# transaction pooling in front of the primary, like the PgBouncer target";
  if (!replica_ports.empty())
    t << ";\n# " << routed_database(database) << ": the same database routed over the primary and the replicas";
  t << ".\n"
    << "workers = 0\n"
    << "pool_mode = \"transaction\"\n"
    << "default_pool_size = " << pool_size << "\n"
    << "max_client_conn = " << max_clients << "\n"
    << "max_prepared_statements = 500\n"
    << "auth_type = \"scram-sha-256\"\n";
  // Read-your-writes sends a client's read to a replica once the monitor has seen it
  // replay the client's last write, else to the primary: sampling often keeps the replicas usable.
  if (!replica_ports.empty()) t << "lag_check_interval = \"100ms\"\n";
  t << "\n"
    << "[listen]\nhost = \"127.0.0.1\"\nport = " << listen_port << "\n\n"
    << "[log]\nlevel = \"warning\"\nlog_connections = false\nlog_disconnections = false\n\n";
  if (!tls_cert.empty()) {
    t << "[tls]\nclient_tls_mode = \"allow\"\nclient_tls_cert_file = " << toml_string(tls_cert.string())
      << "\nclient_tls_key_file = " << toml_string(tls_key.string()) << "\n\n";
  }
  t << "[users]\n";
  for (const auto& [name, password] : users) t << toml_string(name) << " = " << toml_string(password) << "\n";
  t << "\n[databases." << toml_string(database) << "]\nhost = \"127.0.0.1\"\nport = " << primary_port << "\n"
    << "\n[databases.\"*\"]\nhost = \"127.0.0.1\"\nport = " << primary_port << "\n";
  if (!socket_dir.empty()) {
    t << "\n# " << unix_database(database) << ": the same primary over its Unix socket (the -unix targets)\n"
      << "[databases." << toml_string(unix_database(database)) << "]\ndbname = " << toml_string(database)
      << "\nhost = " << toml_string(socket_dir.string()) << "\nport = " << primary_port << "\n";
  }
  t << "\n# " << pipelined_database(database)
    << ": the same primary with pipelined statements (the pgsluice-pipelined target)\n"
    << "[databases." << toml_string(pipelined_database(database)) << "]\ndbname = " << toml_string(database)
    << "\nhost = \"127.0.0.1\"\nport = " << primary_port << "\npipeline_depth = 8\n";
  if (!replica_ports.empty()) {
    const std::string routed = toml_string(routed_database(database));
    t << "\n[databases." << routed << "]\ndbname = " << toml_string(database) << "\n"
      << "load_balance = \"round_robin\"\nconsistency = \"read_your_writes\"\n";
    auto backend = [&](std::uint16_t port, const char* role) {
      t << "\n[[databases." << routed << ".backends]]\nhost = \"127.0.0.1\"\nport = " << port << "\nrole = \"" << role
        << "\"\n";
    };
    backend(primary_port, "primary");
    for (const auto port : replica_ports) backend(port, "replica");
  }
  return t.str();
}

struct local_stack::impl {
  fs::path work_dir;
  std::unique_ptr<pg_cluster> cluster;
  std::map<std::string, std::unique_ptr<config_server>> servers;
  std::map<std::string, std::string> problems;
  bool durable = false;

  fs::path state_file() const { return work_dir / "stack.json"; }

  void save() const {
    json servers_json = json::object();
    for (const auto& [name, server] : servers) servers_json[name] = server->record();
    json j{{"format", 1}, {"kind", "pgsluice-bench-stack"}, {"servers", servers_json}, {"problems", problems},
           {"durable", durable}};
    const fs::path tmp = work_dir / "stack.json.tmp";
    {
      std::ofstream out(tmp);
      out << j.dump(2) << '\n';
      if (!out) throw stack_error("cannot write " + tmp.string());
    }
    fs::rename(tmp, state_file());
  }

  void load() {
    std::ifstream in(state_file());
    if (!in) return;
    try {
      const json j = json::parse(in);
      for (const auto& [name, record] : j.at("servers").items())
        servers[name] = std::make_unique<config_server>(record.get<server_record>(), true);
      problems = j.value("problems", std::map<std::string, std::string>());
      durable = j.value("durable", false);
    } catch (const json::exception& e) {
      throw stack_error(state_file().string() + " is damaged (" + e.what() + "): run `pgsluice bench stack down --destroy`");
    }
  }

  bool running(const std::string& name) {
    auto it = servers.find(name);
    return it != servers.end() && it->second->running();
  }

  std::string url(std::uint16_t port, const std::string& dbname = {}, const std::string& sslmode = "disable") const {
    const user_spec& admin = cluster->admin();
    return "postgresql://" + url_encode(admin.name) + ":" + url_encode(admin.password) + "@127.0.0.1:" +
           std::to_string(port) + "/" + url_encode(dbname.empty() ? cluster->database() : dbname) +
           "?sslmode=" + sslmode + "&gssencmode=disable";
  }

  // Every node, for the targets that spread reads (primary first).
  std::vector<stack_node> nodes() const {
    std::vector<stack_node> out;
    std::vector<std::size_t> order{cluster->primary_index()};
    for (const std::size_t i : cluster->replica_indexes()) order.push_back(i);
    for (const std::size_t i : order) out.push_back({cluster->node(i).name, url(cluster->port(i))});
    return out;
  }

  login_probe probe() const { return {cluster->admin().name, cluster->admin().password, cluster->database()}; }
};

local_stack::local_stack(std::unique_ptr<impl> p) : impl_(std::move(p)), work_dir_(impl_->work_dir) {}
local_stack::~local_stack() = default;

std::unique_ptr<local_stack> local_stack::up(const stack_options& options, std::ostream& log) {
  auto p = std::make_unique<impl>();
  p->work_dir = fs::absolute(options.work_dir.empty() ? default_stack_dir() : options.work_dir);
  const service_user user = resolve_service_user();
  make_service_dir(p->work_dir, user, 0755);

  cluster_spec spec;
  spec.work_dir = p->work_dir / "cluster";
  spec.persistent = true;
  spec.replicas = options.replicas;
  spec.max_connections = options.max_connections;
  spec.shared_buffers = options.shared_buffers;
  spec.fsync = options.durable;
  // Steady benchmark numbers: no JIT compiling OLTP queries, no checkpoint storms mid-run.
  spec.settings = {{"jit", "off"}, {"max_parallel_workers_per_gather", "0"}, {"max_wal_size", "'8GB'"}, {"checkpoint_timeout", "'30min'"},
                   {"log_min_messages", "warning"}, {"max_worker_processes", "16"}};
  log << "cluster: PostgreSQL primary + " << options.replicas << " streaming replicas in " << spec.work_dir.string()
      << std::endl;
  p->cluster = pg_cluster::up(spec);
  p->durable = options.durable;
  // Also on a cluster created by an older version (spec.settings only apply at
  // creation): ALTER SYSTEM on every node, then reload. Parallel query would send
  // the spatial workload's small lookups through worker start-up (tens of ms).
  for (std::size_t i = 0; i < p->cluster->node_count(); ++i)
    for (const char* sql : {"ALTER SYSTEM SET jit = off", "ALTER SYSTEM SET max_parallel_workers_per_gather = 0",
                            "SELECT pg_reload_conf()"})
      p->cluster->exec_sql(i, sql);
  for (std::size_t i = 0; i < p->cluster->node_count(); ++i)
    log << "  " << p->cluster->node(i).name << ": port " << p->cluster->port(i) << std::endl;
  p->load();
  p->problems.clear();

  // Starts `name` with `start(port)` unless it runs; reuses its recorded port when it can.
  auto ensure = [&](const std::string& name, const std::function<std::unique_ptr<config_server>(std::optional<std::uint16_t>)>& start,
                    bool force_restart) {
    std::optional<std::uint16_t> old_port;
    if (auto it = p->servers.find(name); it != p->servers.end()) {
      if (it->second->running() && !force_restart) {
        log << name << ": running on port " << it->second->port() << " (pid " << it->second->pid() << ")" << std::endl;
        return false;
      }
      old_port = it->second->port();
      it->second->stop();
      p->servers.erase(it);
    }
    std::unique_ptr<config_server> server;
    try {
      server = start(old_port);
    } catch (const stack_error&) {
      if (!old_port) throw;
      server = start(std::nullopt);  // the old port was taken meanwhile
    }
    log << name << ": started on port " << server->port() << " (pid " << server->pid() << ")" << std::endl;
    p->servers[name] = std::move(server);
    p->save();
    return true;
  };

  const std::string database = p->cluster->database();
  std::vector<std::pair<std::string, std::string>> plaintext;
  for (const auto& u : p->cluster->state().users) plaintext.emplace_back(u.name, u.password);

  // The -tls targets: one certificate for PgBouncer and pgsluice, made once per work dir.
  const fs::path tls_dir = p->work_dir / "tls";
  tls_files tls{tls_dir / "stack-ca.crt", tls_dir / "stack-ca.key", tls_dir / "server.crt", tls_dir / "server.key"};
  if (!fs::exists(tls.cert) || !fs::exists(tls.key)) {
    make_service_dir(tls_dir, user, 0755);
    tls = make_test_certificate(make_test_ca(tls_dir, "stack-ca", user), tls_dir, "server", "localhost", true, user);
  }
  // A PgBouncer started before the stack had TLS targets is restarted with TLS.
  const std::string bouncer_ini = read_file_text(p->work_dir / "pgbouncer" / "pgbouncer.ini");
  // Likewise one started before the -unix targets (its [databases] lacks <db>_unix).
  const bool bouncer_stale = bouncer_ini.find("client_tls_sslmode") == std::string::npos ||
                             bouncer_ini.find(unix_database(database) + " = ") == std::string::npos;
  const fs::path socket_dir = p->cluster->socket_dir();
  const std::string primary_port_text = std::to_string(p->cluster->port(p->cluster->primary_index()));
  ensure("pgbouncer", [&](std::optional<std::uint16_t> port) {
    pgbouncer_spec s = pgbouncer_for(*p->cluster, p->work_dir / "pgbouncer");
    s.persistent = true;
    s.port = port;
    s.default_pool_size = options.pool_size;
    s.max_client_conn = static_cast<int>(options.max_clients);
    s.settings = {{"client_tls_sslmode", "allow"}, {"client_tls_cert_file", tls.cert.string()},
                  {"client_tls_key_file", tls.key.string()}};
    s.extra_databases = {{unix_database(database), "host=" + socket_dir.string() + " port=" + primary_port_text +
                                                       " dbname=" + database}};
    return start_pgbouncer(s);
  }, bouncer_stale);
  const bool pgpool_started = ensure("pgpool", [&](std::optional<std::uint16_t> port) {
    pgpool_spec s = pgpool_for(*p->cluster, p->work_dir / "pgpool");
    s.persistent = true;
    s.port = port;
    s.num_init_children = options.pgpool_children;
    s.max_pool = 1;   // one (user, database) pair in the bench
    s.settings = {{"listen_backlog_multiplier", "4"}};
    return start_pgpool(s);
  }, false);
  // Its config names Pgpool-II's port: restart it whenever Pgpool-II was.
  ensure("pgbouncer-pgpool", [&](std::optional<std::uint16_t> port) {
    pgbouncer_spec s = pgbouncer_for(*p->cluster, p->work_dir / "pgbouncer-pgpool");
    s.persistent = true;
    s.port = port;
    s.backend_port = p->servers.at("pgpool")->port();
    s.auth_entries = plaintext;  // Pgpool-II's SCRAM salt differs from the server's
    s.default_pool_size = options.pool_size;
    s.max_client_conn = static_cast<int>(options.max_clients);
    return start_pgbouncer(s);
  }, pgpool_started);

  if (options.with_pgsluice) {
    std::error_code ec;
    const fs::path binary = options.pgsluice_binary.empty() ? fs::read_symlink("/proc/self/exe", ec) : options.pgsluice_binary;
    const std::uint16_t primary_port = p->cluster->port(p->cluster->primary_index());
    std::vector<std::uint16_t> replica_ports;
    for (const std::size_t i : p->cluster->replica_indexes()) replica_ports.push_back(p->cluster->port(i));
    // A pgsluice started from another build (the executable was replaced or is another file)
    // is restarted, so the stack always measures the binary asked for.
    const std::string toml_text = read_file_text(p->work_dir / "pgsluice" / "pgsluice.toml");
    bool stale = toml_text.find("[tls]") == std::string::npos ||
                 toml_text.find("[databases." + toml_string(unix_database(database)) + "]") == std::string::npos ||
                 toml_text.find("[databases." + toml_string(pipelined_database(database)) + "]") == std::string::npos;
    if (auto it = p->servers.find("pgsluice"); it != p->servers.end() && it->second->running()) {
      std::error_code lec;
      const fs::path running = fs::read_symlink("/proc/" + std::to_string(it->second->pid()) + "/exe", lec);
      stale = stale || (!lec && (running.string().ends_with(" (deleted)") || !fs::equivalent(running, binary, lec)));
      if (stale) log << "pgsluice: running an older build (" << running.string() << "): restarting" << std::endl;
    }
    try {
      ensure("pgsluice", [&](std::optional<std::uint16_t> port) {
        config_server::options o;
        o.name = "pgsluice";
        o.dir = p->work_dir / "pgsluice";
        o.probe = p->probe();
        o.persistent = true;
        o.port = port;
        o.run_as_service_user = false;
        o.stop_signal = SIGTERM;
        o.start_timeout = std::chrono::seconds(20);
        o.write_config = [=, dir = o.dir](std::uint16_t listen_port) {
          const std::string text = pgsluice_stack_config(listen_port, primary_port, database, plaintext,
                                                         options.pool_size, options.max_clients, replica_ports, tls.cert,
                                                         tls.key, socket_dir);
          conf::load_config_from_string(text, "pgsluice.toml");  // throws config_error naming the key
          std::ofstream(dir / "pgsluice.toml") << text;
          return std::vector<std::string>{binary.string(), "serve", "-c", (dir / "pgsluice.toml").string()};
        };
        return std::make_unique<config_server>(std::move(o));
      }, stale);
    } catch (const std::exception& e) {
      p->problems["pgsluice"] = first_line(e.what()) + " (log: " + (p->work_dir / "pgsluice" / "pgsluice.log").string() + ")";
      log << "pgsluice: NOT running: " << p->problems["pgsluice"] << std::endl
          << "  the pgsluice target will show failures" << std::endl;
      p->save();
    }
  }
  p->save();
  return std::unique_ptr<local_stack>(new local_stack(std::move(p)));
}

std::unique_ptr<local_stack> local_stack::attach(const fs::path& work_dir) {
  const fs::path dir = fs::absolute(work_dir.empty() ? default_stack_dir() : work_dir);
  if (!fs::exists(cluster_state::file_in(dir / "cluster"))) return nullptr;
  auto p = std::make_unique<impl>();
  p->work_dir = dir;
  p->cluster = pg_cluster::attach(dir / "cluster");
  p->load();
  return std::unique_ptr<local_stack>(new local_stack(std::move(p)));
}

void local_stack::down(bool destroy, std::ostream& log) {
  for (auto it = std::rbegin(pooler_names); it != std::rend(pooler_names); ++it) {
    auto s = impl_->servers.find(*it);
    if (s == impl_->servers.end()) continue;
    if (s->second->running()) log << *it << ": stopping (pid " << s->second->pid() << ")" << std::endl;
    s->second->stop();
  }
  impl_->save();
  log << "cluster: stopping" << std::endl;
  if (destroy) {
    impl_->cluster->destroy();
    impl_->servers.clear();
    std::error_code ec;
    fs::remove_all(impl_->work_dir, ec);
    if (ec) throw stack_error("cannot remove " + impl_->work_dir.string() + ": " + ec.message());
    log << "removed " << impl_->work_dir.string() << std::endl;
  } else {
    impl_->cluster->stop();
  }
}

std::vector<stack_target> local_stack::targets() {
  std::vector<stack_target> out;
  pg_cluster& c = *impl_->cluster;
  const std::size_t primary = c.primary_index();
  stack_target direct;
  direct.name = "direct";
  direct.port = c.port(primary);
  direct.url = impl_->url(direct.port);
  direct.running = c.running(primary);
  if (c.node(primary).process) direct.pids.push_back(c.node(primary).process->pid);
  direct.memory_scope = "PostgreSQL primary: postmaster and all its backends";
  if (!direct.running) direct.problem = "the primary is not running";
  out.push_back(direct);
  for (const char* name : pooler_names) {
    stack_target t;
    t.name = name;
    auto it = impl_->servers.find(name);
    if (it != impl_->servers.end()) {
      t.port = it->second->port();
      t.url = impl_->url(t.port);
      t.running = it->second->running();
      if (t.running) t.pids.push_back(it->second->pid());
    }
    if (t.name == "pgbouncer") t.memory_scope = "PgBouncer (one process)";
    if (t.name == "pgpool") t.memory_scope = "Pgpool-II: parent and all children";
    if (t.name == "pgsluice") t.memory_scope = "pgsluice (one process)";
    if (t.name == "pgbouncer-pgpool") {
      t.memory_scope = "PgBouncer plus Pgpool-II (all processes)";
      if (impl_->running("pgpool")) t.pids.push_back(impl_->servers.at("pgpool")->pid());
    }
    if (auto pr = impl_->problems.find(name); pr != impl_->problems.end()) t.problem = pr->second;
    else if (it == impl_->servers.end()) t.problem = "never started";
    else if (!t.running) t.problem = "not running";
    if (t.url.empty()) t.url = "postgresql://127.0.0.1:1/" + url_encode(c.database()) + "?sslmode=disable";  // fails fast
    const bool spreads_reads = t.name == "pgpool" || t.name == "pgbouncer-pgpool";
    if (spreads_reads && !c.replica_indexes().empty()) t.nodes = impl_->nodes();
    out.push_back(std::move(t));
  }
  // The second database of the same pgsluice process: routed over the primary and the replicas.
  stack_target routed = *std::find_if(out.begin(), out.end(), [](const stack_target& t) { return t.name == "pgsluice"; });
  routed.name = "pgsluice-routed";
  routed.memory_scope = "pgsluice (one process, shared with the pgsluice target)";
  if (c.replica_indexes().empty()) {
    routed.running = false;
    routed.problem = "the stack has no replicas";
  } else {
    if (routed.port != 0) routed.url = impl_->url(routed.port, routed_database(c.database()));
    routed.nodes = impl_->nodes();
  }
  out.push_back(std::move(routed));
  // The same pgsluice process, its <db>_pipelined database (pipeline_depth = 8).
  stack_target pipelined = *std::find_if(out.begin(), out.end(), [](const stack_target& t) { return t.name == "pgsluice"; });
  pipelined.name = "pgsluice-pipelined";
  pipelined.memory_scope = "pgsluice (one process, shared with the pgsluice target)";
  if (pipelined.port != 0) pipelined.url = impl_->url(pipelined.port, pipelined_database(c.database()));
  out.push_back(std::move(pipelined));
  // The TLS variants: the same processes, clients asking for TLS (sslmode=require).
  for (const char* base : {"pgbouncer", "pgsluice"}) {
    stack_target t = *std::find_if(out.begin(), out.end(), [&](const stack_target& x) { return x.name == base; });
    t.name = std::string(base) + "-tls";
    t.memory_scope += ", shared with the " + std::string(base) + " target";
    if (t.port != 0) t.url = impl_->url(t.port, {}, "require");
    out.push_back(std::move(t));
  }
  // The Unix-socket variants: the same processes, their <db>_unix database (server connections
  // to the primary over its Unix socket; clients still on loopback TCP).
  for (const char* base : {"pgbouncer", "pgsluice"}) {
    stack_target t = *std::find_if(out.begin(), out.end(), [&](const stack_target& x) { return x.name == base; });
    t.name = std::string(base) + "-unix";
    t.memory_scope += ", shared with the " + std::string(base) + " target";
    if (t.port != 0) t.url = impl_->url(t.port, unix_database(c.database()));
    out.push_back(std::move(t));
  }
  return out;
}

std::optional<stack_target> local_stack::target(const std::string& name) {
  for (auto& t : targets())
    if (t.name == name) return t;
  return std::nullopt;
}

std::string local_stack::admin_url() const {
  return impl_->url(impl_->cluster->port(impl_->cluster->primary_index()));
}

std::vector<std::string> local_stack::notes() const {
  std::vector<std::string> n;
  if (!impl_->durable)
    n.push_back("local stack runs PostgreSQL with fsync=off, synchronous_commit=off (disposable data; `stack up --durable` for fsync on)");
  n.push_back("local stack runs PostgreSQL with jit=off and max_parallel_workers_per_gather=0 (OLTP settings)");
  for (const auto& [name, problem] : impl_->problems) n.push_back(name + ": " + problem);
  return n;
}

std::string local_stack::status_text() {
  std::ostringstream s;
  pg_cluster& c = *impl_->cluster;
  s << "work dir: " << impl_->work_dir.string() << "\n";
  for (std::size_t i = 0; i < c.node_count(); ++i) {
    const node_state& n = c.node(i);
    const bool up = c.running(i);
    s << "  " << n.name << (n.role == node_role::primary ? " (primary)" : " (replica)") << "  port " << n.port << "  "
      << (up ? "running, pid " + std::to_string(n.process ? n.process->pid : 0) : std::string("stopped")) << "\n";
  }
  for (const auto& t : targets()) {
    if (t.name == "direct") continue;
    s << "  " << t.name << "  port " << t.port << "  "
      << (t.running ? "running, pid " + std::to_string(t.pids.empty() ? 0 : t.pids.front()) : "stopped")
      << (t.problem.empty() || t.running ? "" : " (" + t.problem + ")") << "\n";
  }
  s << "targets:\n";
  for (const auto& t : targets()) s << "  " << t.name << " = " << t.url << "\n";
  return s.str();
}

}  // namespace pgsluice::bench

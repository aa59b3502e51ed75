// Config-file servers (start on a free port, ready once a real login succeeds, stop) and the PgBouncer and Pgpool-II configs they run with.
#include "bench/poolers.hpp"

#include "bench/cluster.hpp"

#include <csignal>
#include <sstream>

namespace pgsluice::bench {
namespace fs = std::filesystem;
using namespace std::chrono_literals;

config_server::config_server(options opts) : persistent_(opts.persistent) {
    const service_user user = opts.run_as_service_user ? resolve_service_user(opts.service_user_name) : service_user{};
    const service_user& run_as = user; // switch_needed is false for ourselves
    make_service_dir(opts.dir, run_as, 0700);
    record_.name = opts.name;
    record_.log_file = opts.dir / (opts.name + ".log");
    record_.stop_signal = opts.stop_signal;
    for (int attempt = 0;; ++attempt) {
        record_.port = opts.port.value_or(pick_free_port());
        spawn_options o;
        o.argv = opts.write_config(record_.port);
        o.log_file = record_.log_file;
        o.working_dir = opts.dir;
        o.user = opts.run_as_service_user ? &user : nullptr;
        o.parent_death_signal = opts.persistent ? 0 : opts.stop_signal;
        std::error_code ec;
        const auto offset = fs::exists(record_.log_file, ec) ? fs::file_size(record_.log_file, ec) : 0;
        process_ = child_process::spawn(o, opts.stop_signal);
        record_.process = process_.identity();
        const std::string info = conninfo(opts.probe.user, opts.probe.password, opts.probe.dbname) + " connect_timeout=5" +
                                 (opts.probe.conninfo_extra.empty() ? "" : " " + opts.probe.conninfo_extra);
        std::string last_error;
        const bool ready = poll_until(opts.start_timeout, 25ms, [&] {
            if (!process_.running())
                return true;
            auto r = try_connect(info, 5s);
            if (r.ok()) {
                try {
                    r.conn.query("SELECT 1");
                    return true;
                } catch (const stack_error& e) {
                    last_error = e.what();
                    return false;
                }
            }
            last_error = r.raw_error;
            return false;
        });
        if (ready && process_.running())
            return;
        const std::string log = read_file_tail(record_.log_file, 4000, offset);
        const bool exited = !process_.running();
        process_.stop(5s);
        record_.process.reset();
        if (exited && !opts.port && is_address_in_use(log) && attempt < 5)
            continue;
        throw stack_error(opts.name + (exited ? " exited during start-up (status " +
                                                    std::to_string(process_.exit_status().value_or(-1)) + ")"
                                              : " did not accept a login within " +
                                                    std::to_string(opts.start_timeout.count()) + " ms") +
                          (last_error.empty() ? "" : "; last login error: " + last_error) + "; log " +
                          record_.log_file.string() + ":\n" + log);
    }
}

config_server::config_server(const server_record& record, bool persistent) : record_(record), persistent_(persistent) {
    if (record_.process)
        process_ = child_process::adopt(*record_.process, record_.stop_signal);
    if (!process_)
        record_.process.reset();
}

config_server::~config_server() {
    if (persistent_)
        process_.release();
    else
        process_.stop(20s);
}

void config_server::stop() {
    process_.stop(20s);
    record_.process.reset();
}

std::string config_server::conninfo(const std::string& user, const std::string& password,
                                    const std::string& dbname) const {
    return "host=127.0.0.1 port=" + std::to_string(record_.port) + " user=" + conninfo_quote(user) +
           " password=" + conninfo_quote(password) + " dbname=" + conninfo_quote(dbname) +
           " sslmode=disable gssencmode=disable";
}

namespace {

// userlist.txt quoting: PgBouncer doubles '"' inside "...".
std::string userlist_quote(const std::string& s) { return quote_doubling(s, '"'); }

// What every pooler of the stack shares: its name, directory, readiness probe, port and stop signal.
template <class Spec>
config_server::options pooler_options(const char* name, const Spec& spec, int stop_signal) {
    config_server::options o;
    o.name = name;
    o.dir = fs::absolute(spec.dir);
    o.probe = spec.probe;
    o.persistent = spec.persistent;
    o.port = spec.port;
    o.stop_signal = stop_signal;
    return o;
}

} // namespace

std::unique_ptr<config_server> start_pgbouncer(const pgbouncer_spec& spec) {
    const fs::path program = find_program("pgbouncer", "pgbouncer");
    const service_user user = resolve_service_user();
    // PgBouncer 1.18 signals: SIGINT = safe shutdown (waits for clients), SIGTERM = immediate.
    config_server::options o = pooler_options("pgbouncer", spec, SIGTERM);
    o.write_config = [spec, program, user, dir = o.dir](std::uint16_t port) {
        std::ostringstream users;
        for (const auto& [name, secret] : spec.auth_entries)
            users << userlist_quote(name) << " " << userlist_quote(secret) << "\n";
        write_service_file(dir / "userlist.txt", users.str(), user);
        const std::string backend = "host=" + spec.backend_host + " port=" + std::to_string(spec.backend_port);
        std::ostringstream ini;
        ini << ";; PgBouncer for a pgsluice local stack (written by bench/poolers.cpp)\n"
            << "[databases]\n"
            << spec.dbname << " = " << backend << " dbname=" << spec.dbname << "\n";
        for (const auto& [name, connstr] : spec.extra_databases)
            ini << name << " = " << connstr << "\n";
        ini << "* = " << backend << "\n\n"
            << "[pgbouncer]\n"
            << "listen_addr = 127.0.0.1\n"
            << "listen_port = " << port << "\n"
            << "unix_socket_dir =\n"
            << "auth_type = scram-sha-256\n"
            << "auth_file = " << (dir / "userlist.txt").string() << "\n"
            << "pool_mode = " << spec.pool_mode << "\n"
            << "default_pool_size = " << spec.default_pool_size << "\n"
            << "max_client_conn = " << spec.max_client_conn << "\n"
            << "pidfile = " << (dir / "pgbouncer.pid").string() << "\n"
            << "ignore_startup_parameters = extra_float_digits,options\n"
            << "server_tls_sslmode = disable\n";
        if (!spec.admin_user.empty())
            ini << "admin_users = " << spec.admin_user << "\nstats_users = " << spec.admin_user << "\n";
        for (const auto& [k, v] : spec.settings)
            ini << k << " = " << v << "\n";
        write_service_file(dir / "pgbouncer.ini", ini.str(), user);
        return std::vector<std::string>{program.string(), (dir / "pgbouncer.ini").string()};
    };
    auto server = std::make_unique<config_server>(std::move(o));
    return server;
}

pgbouncer_spec pgbouncer_for(const pg_cluster& cluster, const fs::path& dir) {
    pgbouncer_spec s;
    s.dir = dir;
    s.backend_port = cluster.port(cluster.primary_index());
    s.dbname = cluster.database();
    for (const auto& u : cluster.state().users)
        s.auth_entries.emplace_back(u.name, u.method == password_method::scram_sha_256 ? cluster.password_secret(u.name)
                                                                                        : u.password);
    s.admin_user = cluster.admin().name;
    s.probe = {cluster.admin().name, cluster.admin().password, cluster.database()};
    s.persistent = cluster.state().persistent;
    return s;
}

std::unique_ptr<config_server> start_pgpool(const pgpool_spec& spec) {
    const fs::path program = find_program("pgpool", "pgpool2");
    const service_user user = resolve_service_user();
    if (spec.backends.empty())
        throw stack_error("pgpool needs at least one backend");
    // Pgpool-II signals: SIGTERM = smart (waits for clients), SIGINT = fast, SIGQUIT = immediate.
    config_server::options o = pooler_options("pgpool", spec, SIGINT);
    o.write_config = [spec, program, user, dir = o.dir](std::uint16_t port) {
        // pool_passwd "user:TEXTpassword": with SCRAM backends Pgpool-II needs the
        // plaintext (or AES) password, md5 hashes are not enough (Pgpool-II docs 6.2).
        std::ostringstream pw;
        for (const auto& [name, password] : spec.passwords)
            pw << name << ":TEXT" << password << "\n";
        write_service_file(dir / "pool_passwd", pw.str(), user);
        write_service_file(dir / "pcp.conf", "", user);
        write_service_file(dir / "pool_hba.conf", "", user);
        const auto q = [](const std::string& s) { return sql_literal(s); };
        std::ostringstream conf;
        conf << "# Pgpool-II for a pgsluice local stack (written by bench/poolers.cpp)\n"
             << "backend_clustering_mode = 'streaming_replication'\n"
             << "listen_addresses = '127.0.0.1'\n"
             << "port = " << port << "\n"
             << "unix_socket_directories = " << q(dir.string()) << "\n"
             << "pcp_listen_addresses = ''\n"
             << "pcp_port = " << pick_free_port() << "\n"
             << "pcp_socket_dir = " << q(dir.string()) << "\n"
             << "wd_ipc_socket_dir = " << q(dir.string()) << "\n"
             << "logdir = " << q(dir.string()) << "\n"
             << "pid_file_name = " << q((dir / "pgpool.pid").string()) << "\n"
             << "log_destination = 'stderr'\n"
             << "enable_pool_hba = off\n"
             << "pool_passwd = " << q((dir / "pool_passwd").string()) << "\n"
             << "allow_clear_text_frontend_auth = off\n"
             << "num_init_children = " << spec.num_init_children << "\n"
             << "max_pool = " << spec.max_pool << "\n"
             << "connection_cache = on\n"
             << "load_balance_mode = " << (spec.load_balance ? "on" : "off") << "\n"
             << "sr_check_period = 10\n"
             << "sr_check_user = " << q(spec.sr_check_user) << "\n"
             << "sr_check_password = ''\n"
             << "sr_check_database = " << q(spec.sr_check_database) << "\n"
             << "health_check_period = 0\n"
             // 4.3.5 otherwise marks the primary down when one pooled backend is terminated.
             << "failover_on_backend_shutdown = off\n"
             << "failover_command = ''\n"
             << "use_watchdog = off\n"
             << "memory_cache_enabled = off\n"
             << "ssl = off\n";
        for (std::size_t i = 0; i < spec.backends.size(); ++i) {
            const auto& b = spec.backends[i];
            conf << "backend_hostname" << i << " = " << q(b.host) << "\n"
                 << "backend_port" << i << " = " << b.port << "\n"
                 << "backend_weight" << i << " = 1\n"
                 << "backend_data_directory" << i << " = " << q(b.data_dir.string()) << "\n"
                 << "backend_flag" << i << " = 'ALLOW_TO_FAILOVER'\n"
                 << "backend_application_name" << i << " = " << q(b.name) << "\n";
        }
        for (const auto& [k, v] : spec.settings)
            conf << k << " = " << v << "\n";
        write_service_file(dir / "pgpool.conf", conf.str(), user);
        // -n: stay in the foreground (we hold the pid); -D: ignore a stale pgpool_status.
        return std::vector<std::string>{program.string(),
                                        "-n",
                                        "-D",
                                        "-f",
                                        (dir / "pgpool.conf").string(),
                                        "-F",
                                        (dir / "pcp.conf").string(),
                                        "-a",
                                        (dir / "pool_hba.conf").string()};
    };
    return std::make_unique<config_server>(std::move(o));
}

pgpool_spec pgpool_for(const pg_cluster& cluster, const fs::path& dir) {
    pgpool_spec s;
    s.dir = dir;
    const std::size_t p = cluster.primary_index();
    std::vector<std::size_t> order{p};
    for (std::size_t i : cluster.replica_indexes())
        order.push_back(i);
    for (std::size_t i : order)
        s.backends.push_back({"127.0.0.1", cluster.port(i), cluster.node(i).data_dir, cluster.node(i).name});
    for (const auto& u : cluster.state().users)
        s.passwords.emplace_back(u.name, u.password);
    s.sr_check_user = cluster.admin().name;
    s.probe = {cluster.admin().name, cluster.admin().password, cluster.database()};
    s.persistent = cluster.state().persistent;
    return s;
}

} // namespace pgsluice::bench

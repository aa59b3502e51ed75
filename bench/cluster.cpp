// PostgreSQL cluster lifecycle: initdb, streaming replicas from base backups, users, start with readiness checks, stop, promotion.
#include "bench/cluster.hpp"

#include <libpq-fe.h>

#include <cctype>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace pgsluice::bench {
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

// Signals PostgreSQL reads as shutdown modes (docs: 19.5 "Shutting Down the Server").
constexpr int pg_fast_shutdown = SIGINT;

bool keep_work_dir() {
    const char* v = std::getenv("PGSLUICE_KEEP_WORK_DIR");
    return v && *v && std::string_view(v) != "0";
}

std::string node_conf_name() { return "pgsluice-node.conf"; }

} // namespace

pg_cluster::pg_cluster(cluster_state state, service_user user) : state_(std::move(state)), user_(std::move(user)) {
    processes_.resize(state_.nodes.size());
}

pg_cluster::~pg_cluster() {
    if (state_.persistent && committed_) {
        for (auto& p : processes_)
            p.release();
        return;
    }
    try {
        stop();
    } catch (...) {
        // Destructors must not throw; stop() already used SIGKILL where SIGINT was not enough.
    }
    if (remove_dir_ && !keep_work_dir()) {
        std::error_code ec;
        fs::remove_all(state_.work_dir, ec);
    }
}

fs::path pg_cluster::bin_(const char* program) const {
    return find_program((state_.pg_bin_dir / program).string(), "postgresql-15");
}

std::unique_ptr<pg_cluster> pg_cluster::attach(const fs::path& work_dir) {
    auto state = cluster_state::load(work_dir);
    auto user = resolve_service_user(state.os_user);
    std::unique_ptr<pg_cluster> c(new pg_cluster(std::move(state), std::move(user)));
    c->committed_ = true;
    for (std::size_t i = 0; i < c->state_.nodes.size(); ++i) {
        auto& node = c->state_.nodes[i];
        if (node.process)
            c->processes_[i] = child_process::adopt(*node.process, pg_fast_shutdown);
        if (!c->processes_[i])
            node.process.reset();
    }
    return c;
}

std::unique_ptr<pg_cluster> pg_cluster::up(const cluster_spec& spec) {
    if (!spec.work_dir.empty() && fs::exists(cluster_state::file_in(spec.work_dir))) {
        auto c = attach(spec.work_dir);
        c->committed_ = false; // until the restart below succeeds
        c->start_timeout_ = spec.start_timeout;
        if (!c->state_.complete)
            throw stack_error("the cluster in " + spec.work_dir.string() +
                              " was never fully created (an earlier `up` failed): tear it down and start again");
        c->state_.persistent = spec.persistent;
        c->start();
        c->committed_ = true;
        return c;
    }
    auto user = resolve_service_user(spec.os_user);
    cluster_state state;
    state.persistent = spec.persistent;
    state.pg_bin_dir = spec.pg_bin_dir;
    state.os_user = spec.os_user;
    state.database = spec.database;
    state.local_superuser = spec.local_superuser;
    state.users = {spec.admin, spec.scram_user, spec.md5_user};
    const bool temp = spec.work_dir.empty();
    if (temp) {
        state.work_dir = make_temp_dir("pgsluice-", user);
    } else {
        std::error_code ec;
        if (fs::exists(spec.work_dir) && !fs::is_empty(spec.work_dir, ec))
            throw stack_error("work dir " + spec.work_dir.string() + " is not empty and holds no cluster.json");
        state.work_dir = fs::absolute(spec.work_dir);
        make_service_dir(state.work_dir, user, 0700);
    }
    std::unique_ptr<pg_cluster> c(new pg_cluster(std::move(state), std::move(user)));
    c->remove_dir_ = temp && !spec.persistent;
    c->start_timeout_ = spec.start_timeout;
    c->create_(spec);
    c->committed_ = true;
    return c;
}

void pg_cluster::save_() const {
    if (state_.persistent)
        state_.save();
}

void pg_cluster::create_(const cluster_spec& spec) {
    if (spec.replicas < 0)
        throw stack_error("replicas must be >= 0");
    // Check every program first: a missing one must be named, not discovered halfway.
    for (const char* p : {"initdb", "postgres", "pg_basebackup"})
        bin_(p);
    state_.socket_dir = state_.work_dir / "sock";
    make_service_dir(state_.socket_dir, user_, 0700);
    make_service_dir(state_.work_dir / "log", user_, 0700);

    node_state primary;
    primary.name = "primary";
    primary.role = node_role::primary;
    primary.data_dir = state_.work_dir / "primary";
    primary.log_file = state_.work_dir / "log" / "primary.log";
    state_.nodes.push_back(primary);
    processes_.resize(1);
    initdb_primary_(spec);
    save_();
    start_node_(0);
    create_users_();
    for (int r = 1; r <= spec.replicas; ++r) {
        node_state replica;
        replica.name = "replica_" + std::to_string(r);
        replica.role = node_role::replica;
        replica.data_dir = state_.work_dir / replica.name;
        replica.log_file = state_.work_dir / "log" / (replica.name + ".log");
        state_.nodes.push_back(replica);
        processes_.resize(state_.nodes.size());
    }
    // Base backups one after another (each is a checkpoint plus a copy), then start all.
    for (std::size_t i = 1; i < state_.nodes.size(); ++i)
        create_replica_(i);
    for (std::size_t i = 1; i < state_.nodes.size(); ++i)
        start_node_(i);
    wait_replicas_streaming(start_timeout_);
    state_.complete = true;
    save_();
}

void pg_cluster::initdb_primary_(const cluster_spec& spec) {
    const auto& node = state_.nodes[0];
    spawn_options o;
    o.argv = {bin_("initdb").string(),
              "-D", node.data_dir.string(),
              "-U", state_.local_superuser,
              "--auth-local=trust",
              "--auth-host=scram-sha-256",
              "--locale=C",
              "--encoding=UTF8"};
    if (!spec.fsync)
        o.argv.push_back("--no-sync");
    o.log_file = state_.work_dir / "log" / "initdb.log";
    o.working_dir = state_.work_dir;
    o.user = &user_;
    run_to_completion(o, 120s);

    // pg_hba.conf (docs: 21.1 "The pg_hba.conf File"): first match wins. The local
    // superuser is trusted on the unix socket only (the socket dir is ours, mode 0700);
    // md5 users need their md5 line before the scram-sha-256 catch-all.
    std::ostringstream hba;
    hba << "# pgsluice test cluster: written by bench/cluster.cpp\n"
        << "# TYPE  DATABASE     USER  ADDRESS  METHOD\n"
        << "local   all          " << state_.local_superuser << "  trust\n"
        << "local   replication  " << state_.local_superuser << "  trust\n"
        << "local   all          all  scram-sha-256\n";
    for (const auto& u : state_.users)
        if (u.method == password_method::md5) {
            hba << "host    all          " << u.name << "  127.0.0.1/32  md5\n";
            hba << "host    replication  " << u.name << "  127.0.0.1/32  md5\n";
        }
    hba << "host    replication  all  127.0.0.1/32  scram-sha-256\n"
        << "host    all          all  127.0.0.1/32  scram-sha-256\n";
    write_service_file(node.data_dir / "pg_hba.conf", hba.str(), user_);

    // Cluster-wide settings (copied to replicas by pg_basebackup); per-node ones (port,
    // name, upstream) live in pgsluice-node.conf, rewritten at every start.
    const int senders = 2 * spec.replicas + 4; // pg_basebackup -X stream uses two per replica
    std::ostringstream conf;
    conf << "# pgsluice test cluster settings (docs: chapter 20 \"Server Configuration\")\n"
         << "listen_addresses = '127.0.0.1'\n"
         << "unix_socket_directories = " << sql_literal(state_.socket_dir.string()) << "\n"
         << "max_connections = " << spec.max_connections << "\n"
         << "shared_buffers = " << sql_literal(spec.shared_buffers) << "\n"
         << "password_encryption = 'scram-sha-256'\n"
         << "wal_level = replica\n"
         << "max_wal_senders = " << senders << "\n"
         << "max_replication_slots = " << senders << "\n"
         << "hot_standby = on\n"
         << "wal_receiver_status_interval = 1s\n"
         << "logging_collector = off\n"
         << "log_line_prefix = '%m [%p] %q%u@%d '\n"
         << "dynamic_shared_memory_type = posix\n";
    if (!spec.fsync)
        // Disposable data: durability buys nothing here and costs seconds per test.
        conf << "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n";
    for (const auto& [k, v] : spec.settings)
        conf << k << " = " << v << "\n";
    write_service_file(node.data_dir / "pgsluice.conf", conf.str(), user_);
    std::ofstream(node.data_dir / "postgresql.conf", std::ios::app)
        << "\n# pgsluice\ninclude 'pgsluice.conf'\ninclude_if_exists '" << node_conf_name() << "'\n";
}

void pg_cluster::write_node_conf_(const node_state& node) const {
    std::ostringstream conf;
    conf << "# this node (rewritten by pgsluice at every start)\n"
         << "port = " << node.port << "\n"
         << "cluster_name = " << sql_literal(node.name) << "\n";
    if (node.role == node_role::replica) {
        // Streaming from the current primary through its unix socket (docs: 27.2.4
        // "Setting Up a Standby Server"); application_name = slot name makes the replica
        // easy to find in pg_stat_replication.
        const auto& primary = state_.nodes.at(primary_index());
        const std::string upstream = "host=" + conninfo_quote(state_.socket_dir.string()) +
                                     " port=" + std::to_string(primary.port) +
                                     " user=" + conninfo_quote(state_.local_superuser) +
                                     " application_name=" + conninfo_quote(node.name);
        conf << "primary_conninfo = " << sql_literal(upstream) << "\n"
             << "primary_slot_name = " << sql_literal(node.name) << "\n";
    }
    write_service_file(node.data_dir / node_conf_name(), conf.str(), user_);
}

void pg_cluster::create_replica_(std::size_t i) {
    auto& node = state_.nodes[i];
    const auto& primary = state_.nodes[primary_index()];
    spawn_options o;
    o.argv = {bin_("pg_basebackup").string(),
              "-h", state_.socket_dir.string(),
              "-p", std::to_string(primary.port),
              "-U", state_.local_superuser,
              "-D", node.data_dir.string(),
              "-R", "-X", "stream",
              "-C", "-S", node.name,
              "--checkpoint=fast",
              "--no-sync"};
    o.log_file = state_.work_dir / "log" / ("basebackup_" + node.name + ".log");
    o.working_dir = state_.work_dir;
    o.user = &user_;
    run_to_completion(o, 300s);
    // -R wrote primary_conninfo / primary_slot_name into postgresql.auto.conf, which is
    // read last and would pin the primary's current port forever: move them to our
    // node file so a restart on other ports (or after a failover) can re-point them.
    const fs::path auto_conf = node.data_dir / "postgresql.auto.conf";
    std::istringstream in(read_file_text(auto_conf));
    std::string kept, line;
    while (std::getline(in, line))
        if (!line.starts_with("primary_conninfo") && !line.starts_with("primary_slot_name"))
            kept += line + "\n";
    write_service_file(auto_conf, kept, user_);
}

void pg_cluster::create_users_() {
    std::ostringstream sql;
    for (const auto& u : state_.users) {
        // password_encryption decides how CREATE ROLE stores the password (docs: 21.5
        // "Password Authentication"); md5 users need it set to md5 in that session.
        sql << "SET password_encryption = " << (u.method == password_method::md5 ? "'md5'" : "'scram-sha-256'")
            << ";\nCREATE ROLE " << sql_identifier(u.name) << " LOGIN" << (u.superuser ? " SUPERUSER" : "")
            << " PASSWORD " << sql_literal(u.password) << ";\n";
    }
    exec_sql(primary_index(), sql.str());
    exec_sql(primary_index(), "CREATE DATABASE " + sql_identifier(state_.database) + " OWNER " +
                                  sql_identifier(admin().name));
    // The other users may create tables in the public schema of that database (PG15 no
    // longer grants it to PUBLIC).
    exec_sql(primary_index(), "GRANT ALL ON SCHEMA public TO PUBLIC", state_.database);
}

void pg_cluster::start_node_(std::size_t i) {
    auto& node = state_.nodes[i];
    if (processes_[i].running())
        return;
    for (int attempt = 0;; ++attempt) {
        if (node.port == 0)
            node.port = pick_free_port();
        write_node_conf_(node);
        std::error_code ec;
        const auto offset = fs::exists(node.log_file, ec) ? fs::file_size(node.log_file, ec) : 0;
        spawn_options o;
        o.argv = {bin_("postgres").string(), "-D", node.data_dir.string()};
        o.log_file = node.log_file;
        o.working_dir = node.data_dir;
        o.user = &user_;
        // Ephemeral clusters shut down (fast) with us even if we crash.
        o.parent_death_signal = state_.persistent ? 0 : pg_fast_shutdown;
        processes_[i] = child_process::spawn(o, pg_fast_shutdown);
        node.process = processes_[i].identity();
        save_();
        try {
            wait_ready_(i, offset);
            return;
        } catch (const stack_error&) {
            node.process.reset();
            const bool retry = !processes_[i].running() &&
                               is_address_in_use(read_file_tail(node.log_file, 4000, offset)) && attempt < 5;
            processes_[i].stop(5s);
            if (!retry)
                throw;
            // Someone took the port (recorded or picked): move. Replicas find the primary
            // through their node file, rewritten at their own start.
            node.port = 0;
        }
    }
}

void pg_cluster::wait_ready_(std::size_t i, std::uint64_t log_offset) {
    const auto& node = state_.nodes[i];
    const std::string info = local_conninfo(i) + " connect_timeout=2";
    std::string last_error;
    const bool ready = poll_until(start_timeout_, 20ms, [&] {
        if (!processes_[i].running())
            return true; // reported below
        // PQping answers without logging in; PQPING_OK means connections are accepted
        // (a hot standby only once it is consistent).
        if (PQping(info.c_str()) != PQPING_OK)
            return false;
        auto r = try_connect(info, 5s);
        if (!r.ok()) {
            last_error = r.raw_error;
            return false;
        }
        return true;
    });
    if (!processes_[i].running())
        throw stack_error("PostgreSQL node " + node.name + " exited during start-up (status " +
                          std::to_string(processes_[i].exit_status().value_or(-1)) + "); log " +
                          node.log_file.string() + ":\n" + read_file_tail(node.log_file, 4000, log_offset));
    if (!ready)
        throw stack_error("PostgreSQL node " + node.name + " not ready within " +
                          std::to_string(start_timeout_.count()) + " ms" +
                          (last_error.empty() ? "" : " (last error: " + last_error + ")") + "; log:\n" +
                          read_file_tail(node.log_file, 4000, log_offset));
}

void pg_cluster::wait_replicas_streaming(std::chrono::milliseconds timeout) const {
    const std::size_t p = primary_index();
    std::vector<std::string> names;
    for (std::size_t i : replica_indexes())
        if (state_.nodes[i].process)
            names.push_back(state_.nodes[i].name);
    if (names.empty() || !state_.nodes[p].process)
        return;
    std::string list;
    for (const auto& n : names)
        list += (list.empty() ? "" : ",") + sql_literal(n);
    // The slot is active and its walsender streams (docs: 28.2.4 pg_stat_replication).
    const std::string sql = "SELECT count(*) FROM pg_replication_slots s JOIN pg_stat_replication r "
                            "ON r.pid = s.active_pid WHERE r.state = 'streaming' AND s.slot_name IN (" +
                            list + ")";
    std::string last;
    const bool ok = poll_until(timeout, 20ms, [&] {
        try {
            last = exec_sql(p, sql).at(0).at(0).value_or("0");
            return last == std::to_string(names.size());
        } catch (const stack_error& e) {
            last = e.what();
            return false;
        }
    });
    if (!ok)
        throw stack_error("replicas not streaming within " + std::to_string(timeout.count()) + " ms (streaming: " +
                          last + " of " + std::to_string(names.size()) + ")");
    for (std::size_t i : replica_indexes())
        if (state_.nodes[i].process && exec_sql(i, "SELECT pg_is_in_recovery()").at(0).at(0) != "t")
            throw stack_error("node " + state_.nodes[i].name + " is not in recovery");
}

std::size_t pg_cluster::primary_index() const {
    for (std::size_t i = 0; i < state_.nodes.size(); ++i)
        if (state_.nodes[i].role == node_role::primary && !state_.nodes[i].retired)
            return i;
    throw stack_error("cluster has no primary");
}

std::vector<std::size_t> pg_cluster::replica_indexes() const {
    std::vector<std::size_t> out;
    for (std::size_t i = 0; i < state_.nodes.size(); ++i)
        if (state_.nodes[i].role == node_role::replica && !state_.nodes[i].retired)
            out.push_back(i);
    return out;
}

bool pg_cluster::running(std::size_t i) { return processes_.at(i).running(); }

const user_spec& pg_cluster::user(const std::string& name) const {
    for (const auto& u : state_.users)
        if (u.name == name)
            return u;
    throw stack_error("cluster has no user '" + name + "'");
}

const user_spec& pg_cluster::admin() const {
    for (const auto& u : state_.users)
        if (u.superuser)
            return u;
    throw stack_error("cluster has no superuser");
}

std::string pg_cluster::conninfo(std::size_t i, const std::string& user_name, std::optional<std::string> password,
                                 std::optional<std::string> dbname) const {
    std::string pw = password ? *password : user(user_name).password;
    return "host=127.0.0.1 port=" + std::to_string(port(i)) + " user=" + conninfo_quote(user_name) +
           " password=" + conninfo_quote(pw) + " dbname=" + conninfo_quote(dbname.value_or(state_.database)) +
           " sslmode=disable gssencmode=disable";
}

std::string pg_cluster::url(std::size_t i, const std::string& user_name, std::optional<std::string> dbname) const {
    return "postgresql://" + url_encode(user_name) + ":" + url_encode(user(user_name).password) + "@127.0.0.1:" +
           std::to_string(port(i)) + "/" + url_encode(dbname.value_or(state_.database)) + "?sslmode=disable";
}

std::string pg_cluster::local_conninfo(std::size_t i, const std::string& dbname) const {
    return "host=" + conninfo_quote(state_.socket_dir.string()) + " port=" + std::to_string(port(i)) +
           " user=" + conninfo_quote(state_.local_superuser) + " dbname=" + conninfo_quote(dbname);
}

sql_rows pg_cluster::exec_sql(std::size_t i, const std::string& sql, const std::string& dbname) const {
    auto conn = connect(local_conninfo(i, dbname), 10s);
    return conn.query(sql);
}

std::string pg_cluster::password_secret(const std::string& user_name) const {
    auto conn = connect(local_conninfo(primary_index()), 10s);
    auto rows = conn.query("SELECT rolpassword FROM pg_authid WHERE rolname = $1", {user_name});
    if (rows.empty() || !rows[0][0])
        throw stack_error("no stored password for role '" + user_name + "'");
    return *rows[0][0];
}

void pg_cluster::start() {
    // Primary first: replicas need it to reach consistency and stream.
    start_node_(primary_index());
    for (std::size_t i : replica_indexes())
        start_node_(i);
    wait_replicas_streaming(start_timeout_);
    save_();
}

void pg_cluster::stop() {
    // Signal all, then wait: a fast shutdown of each runs in parallel.
    for (auto& p : processes_)
        p.signal(pg_fast_shutdown);
    for (std::size_t i = 0; i < processes_.size(); ++i) {
        processes_[i].stop(30s);
        state_.nodes[i].process.reset();
    }
    if (state_.persistent && fs::exists(cluster_state::file_in(state_.work_dir)))
        state_.save();
}

void pg_cluster::destroy() {
    stop();
    std::error_code ec;
    fs::remove_all(state_.work_dir, ec);
    if (ec)
        throw stack_error("cannot remove " + state_.work_dir.string() + ": " + ec.message());
    committed_ = false;
    remove_dir_ = false;
}

void pg_cluster::promote(std::size_t replica) {
    auto& node = state_.nodes.at(replica);
    if (node.role != node_role::replica)
        throw stack_error("node " + node.name + " is not a replica");
    const std::size_t old_primary = primary_index();
    // pg_promote waits (60 s by default) until the promotion is complete (docs: 9.27.9).
    const auto r = exec_sql(replica, "SELECT pg_promote(true, 60)");
    if (r.at(0).at(0) != "t")
        throw stack_error("pg_promote() on " + node.name + " did not complete");
    const bool ok = poll_until(start_timeout_, 20ms, [&] {
        return exec_sql(replica, "SELECT pg_is_in_recovery()").at(0).at(0) == "f";
    });
    if (!ok)
        throw stack_error("node " + node.name + " still in recovery after promotion");
    state_.nodes[old_primary].role = node_role::replica;
    state_.nodes[old_primary].retired = true;
    node.role = node_role::primary;
    write_node_conf_(node);
    // The other replicas follow the new primary: their slots must exist there, and
    // primary_conninfo is reloadable (SIGHUP) since PostgreSQL 13; the new timeline is
    // followed because recovery_target_timeline defaults to 'latest' (docs: 20.5.5).
    for (std::size_t i : replica_indexes()) {
        exec_sql(replica, "SELECT pg_create_physical_replication_slot(" + sql_literal(state_.nodes[i].name) +
                              ") WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = " +
                              sql_literal(state_.nodes[i].name) + ")");
        write_node_conf_(state_.nodes[i]);
        processes_[i].signal(SIGHUP);
    }
    save_();
    wait_replicas_streaming(start_timeout_);
}

void pg_cluster::kill_node(std::size_t i) {
    processes_.at(i).kill_now();
    state_.nodes[i].process.reset();
    save_();
}

} // namespace pgsluice::bench

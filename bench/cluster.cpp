// Local PostgreSQL clusters, PgBouncer and Pgpool-II: configuration, start with readiness checks, state file, stop.
#include "bench/cluster.hpp"

#include <libpq-fe.h>
#include <nlohmann/json.hpp>
#include <poll.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace pgsluice::bench {
namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace std::chrono_literals;

// =======================================================================================
// libpq helpers

pq_connection::~pq_connection() {
    if (conn_)
        PQfinish(conn_);
}

pq_connection& pq_connection::operator=(pq_connection&& other) noexcept {
    if (this != &other) {
        if (conn_)
            PQfinish(conn_);
        conn_ = other.conn_;
        other.conn_ = nullptr;
    }
    return *this;
}

namespace {

struct result_deleter {
    void operator()(PGresult* r) const { PQclear(r); }
};
using unique_result = std::unique_ptr<PGresult, result_deleter>;

sql_rows take_rows(PGconn* conn, unique_result res, const std::string& sql) {
    if (!res)
        throw sql_error("query failed: " + std::string(PQerrorMessage(conn)), "");
    const auto status = PQresultStatus(res.get());
    if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
        const char* state = PQresultErrorField(res.get(), PG_DIAG_SQLSTATE);
        const char* msg = PQresultErrorField(res.get(), PG_DIAG_MESSAGE_PRIMARY);
        throw sql_error("query failed: " + std::string(msg ? msg : PQresultErrorMessage(res.get())) +
                            " [SQLSTATE " + (state ? state : "?") + "] in: " + sql.substr(0, 200),
                        state ? state : "");
    }
    sql_rows rows;
    const int n = PQntuples(res.get());
    const int cols = PQnfields(res.get());
    rows.reserve(static_cast<std::size_t>(n));
    for (int r = 0; r < n; ++r) {
        sql_row row;
        row.reserve(static_cast<std::size_t>(cols));
        for (int c = 0; c < cols; ++c) {
            if (PQgetisnull(res.get(), r, c))
                row.emplace_back(std::nullopt);
            else
                row.emplace_back(std::string(PQgetvalue(res.get(), r, c),
                                             static_cast<std::size_t>(PQgetlength(res.get(), r, c))));
        }
        rows.push_back(std::move(row));
    }
    return rows;
}

// Splits libpq's verbose error text, e.g.
//   connection to server at "127.0.0.1", port 5432 failed: FATAL:  28P01: password authentication failed for user "x"
//   LOCATION:  auth_failed, auth.c:326
// into severity, SQLSTATE and primary message.
void parse_error_text(connect_result& r) {
    for (const char* severity : {"FATAL:  ", "ERROR:  ", "PANIC:  "}) {
        const auto at = r.raw_error.find(severity);
        if (at == std::string::npos)
            continue;
        r.severity = std::string(severity, std::strlen(severity) - 3);
        std::string rest = r.raw_error.substr(at + std::strlen(severity));
        if (rest.size() > 7 && rest[5] == ':' && rest[6] == ' ') {
            r.sqlstate = rest.substr(0, 5);
            rest = rest.substr(7);
        }
        r.message = rest.substr(0, rest.find('\n'));
        return;
    }
    r.message = r.raw_error.substr(0, r.raw_error.find('\n'));
}

} // namespace

sql_rows pq_connection::query(const std::string& sql) {
    return take_rows(conn_, unique_result(PQexec(conn_, sql.c_str())), sql);
}

sql_rows pq_connection::query(const std::string& sql, const std::vector<std::optional<std::string>>& params) {
    std::vector<const char*> values;
    values.reserve(params.size());
    for (const auto& p : params)
        values.push_back(p ? p->c_str() : nullptr);
    return take_rows(conn_,
                     unique_result(PQexecParams(conn_, sql.c_str(), static_cast<int>(values.size()), nullptr,
                                                values.data(), nullptr, nullptr, 0)),
                     sql);
}

std::optional<std::string> pq_connection::scalar(const std::string& sql) {
    auto rows = query(sql);
    if (rows.empty() || rows.front().empty())
        throw stack_error("query returned no row: " + sql);
    return rows.front().front();
}

connect_result try_connect(const std::string& conninfo, std::chrono::milliseconds timeout) {
    connect_result r;
    PGconn* raw = PQconnectStart(conninfo.c_str());
    if (raw == nullptr) {
        r.raw_error = r.message = "libpq: out of memory";
        return r;
    }
    pq_connection conn{raw};
    // Verbose errors carry the SQLSTATE, which libpq exposes nowhere else for a failed login.
    PQsetErrorVerbosity(raw, PQERRORS_VERBOSE);
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    PostgresPollingStatusType st = PQstatus(raw) == CONNECTION_BAD ? PGRES_POLLING_FAILED : PGRES_POLLING_WRITING;
    while (st != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            r.raw_error = r.message = "timeout after " + std::to_string(timeout.count()) + " ms connecting";
            return r;
        }
        pollfd p{PQsocket(raw), static_cast<short>(st == PGRES_POLLING_READING ? POLLIN : POLLOUT), 0};
        const int n = ::poll(&p, 1, static_cast<int>(left.count()));
        if (n < 0 && errno != EINTR) {
            r.raw_error = r.message = "poll failed while connecting";
            return r;
        }
        if (n > 0)
            st = PQconnectPoll(raw);
    }
    if (st == PGRES_POLLING_OK && PQstatus(raw) == CONNECTION_OK) {
        PQsetErrorVerbosity(raw, PQERRORS_DEFAULT);
        r.conn = std::move(conn);
        return r;
    }
    r.raw_error = PQerrorMessage(raw);
    parse_error_text(r);
    return r;
}

pq_connection connect(const std::string& conninfo, std::chrono::milliseconds timeout) {
    auto r = try_connect(conninfo, timeout);
    if (!r.ok())
        throw sql_error("cannot log in (" + conninfo.substr(0, conninfo.find("password")) + "...): " + r.raw_error,
                        r.sqlstate);
    return std::move(r.conn);
}

std::string conninfo_quote(const std::string& value) {
    std::string out = "'";
    for (char c : value) {
        if (c == '\'' || c == '\\')
            out += '\\';
        out += c;
    }
    return out + "'";
}

// =======================================================================================
// state file

namespace {

const char* method_name(password_method m) { return m == password_method::md5 ? "md5" : "scram-sha-256"; }

password_method method_from(const std::string& s) {
    if (s == "md5")
        return password_method::md5;
    if (s == "scram-sha-256")
        return password_method::scram_sha_256;
    throw stack_error("unknown password method '" + s + "' in state file");
}

// `q` + v + `q` with every `q` inside doubled: SQL literals ('...') and identifiers
// ("..."), configuration values, PgBouncer's userlist entries.
std::string quote_doubling(const std::string& v, char q) {
    std::string out(1, q);
    for (char c : v) {
        if (c == q)
            out += q;
        out += c;
    }
    return out + q;
}

std::string sql_literal(const std::string& v) { return quote_doubling(v, '\''); }
std::string sql_identifier(const std::string& v) { return quote_doubling(v, '"'); }

} // namespace

void to_json(json& j, const process_identity& p) { j = json{{"pid", p.pid}, {"start_time", p.start_time}}; }
void from_json(const json& j, process_identity& p) {
    p.pid = j.at("pid").get<pid_t>();
    p.start_time = j.at("start_time").get<std::uint64_t>();
}

namespace {

json optional_process(const std::optional<process_identity>& p) { return p ? json(*p) : json(nullptr); }
std::optional<process_identity> optional_process(const json& j, const char* key) {
    if (!j.contains(key) || j.at(key).is_null())
        return std::nullopt;
    return j.at(key).get<process_identity>();
}

} // namespace

void cluster_state::save() const {
    json users_j = json::array();
    for (const auto& u : users)
        users_j.push_back({{"name", u.name}, {"password", u.password}, {"method", method_name(u.method)},
                           {"superuser", u.superuser}});
    json nodes_j = json::array();
    for (const auto& n : nodes)
        nodes_j.push_back({{"name", n.name},
                           {"role", n.role == node_role::primary ? "primary" : "replica"},
                           {"port", n.port},
                           {"data_dir", n.data_dir.string()},
                           {"log_file", n.log_file.string()},
                           {"process", optional_process(n.process)},
                           {"retired", n.retired}});
    const json j{{"format", 1},
                 {"kind", "pgsluice-cluster"},
                 {"work_dir", work_dir.string()},
                 {"socket_dir", socket_dir.string()},
                 {"pg_bin_dir", pg_bin_dir.string()},
                 {"os_user", os_user},
                 {"database", database},
                 {"local_superuser", local_superuser},
                 {"persistent", persistent},
                 {"complete", complete},
                 {"users", users_j},
                 {"nodes", nodes_j}};
    const fs::path file = file_in(work_dir);
    const fs::path tmp = file.string() + ".tmp";
    {
        std::ofstream out(tmp, std::ios::trunc);
        out << j.dump(2) << '\n';
        if (!out)
            throw stack_error("cannot write " + tmp.string());
    }
    fs::rename(tmp, file);
}

cluster_state cluster_state::load(const fs::path& work_dir) {
    const fs::path file = file_in(work_dir);
    std::ifstream in(file);
    if (!in)
        throw stack_error("no cluster state in " + work_dir.string() + " (" + file.string() + " missing)");
    try {
        const json j = json::parse(in);
        if (j.at("kind") != "pgsluice-cluster" || j.at("format") != 1)
            throw stack_error(file.string() + " is not a pgsluice cluster state (format 1)");
        cluster_state s;
        s.work_dir = j.at("work_dir").get<std::string>();
        s.socket_dir = j.at("socket_dir").get<std::string>();
        s.pg_bin_dir = j.at("pg_bin_dir").get<std::string>();
        s.os_user = j.at("os_user").get<std::string>();
        s.database = j.at("database").get<std::string>();
        s.local_superuser = j.at("local_superuser").get<std::string>();
        s.persistent = j.value("persistent", true);
        s.complete = j.value("complete", false);
        for (const auto& u : j.at("users"))
            s.users.push_back({u.at("name").get<std::string>(), u.at("password").get<std::string>(),
                               method_from(u.at("method").get<std::string>()), u.value("superuser", false)});
        for (const auto& n : j.at("nodes")) {
            node_state node;
            node.name = n.at("name").get<std::string>();
            node.role = n.at("role") == "primary" ? node_role::primary : node_role::replica;
            node.port = n.at("port").get<std::uint16_t>();
            node.data_dir = n.at("data_dir").get<std::string>();
            node.log_file = n.at("log_file").get<std::string>();
            node.process = optional_process(n, "process");
            node.retired = n.value("retired", false);
            s.nodes.push_back(std::move(node));
        }
        return s;
    } catch (const json::exception& e) {
        throw stack_error("cannot read " + file.string() + ": " + e.what());
    }
}

// =======================================================================================
// pg_cluster

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

namespace {

std::string url_encode(const std::string& s) {
    static const char* hex = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : s) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out;
}

} // namespace

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

// =======================================================================================
// config_server, PgBouncer, Pgpool-II

void to_json(json& j, const server_record& r) {
    j = json{{"name", r.name},         {"port", r.port},
             {"config", r.config.string()}, {"log_file", r.log_file.string()},
             {"stop_signal", r.stop_signal}, {"process", optional_process(r.process)}};
}

void from_json(const json& j, server_record& r) {
    r.name = j.at("name").get<std::string>();
    r.port = j.at("port").get<std::uint16_t>();
    r.config = j.at("config").get<std::string>();
    r.log_file = j.at("log_file").get<std::string>();
    r.stop_signal = j.value("stop_signal", 15);
    r.process = optional_process(j, "process");
}

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
        const std::string info = conninfo(opts.probe.user, opts.probe.password, opts.probe.dbname) + " connect_timeout=5";
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

} // namespace

std::unique_ptr<config_server> start_pgbouncer(const pgbouncer_spec& spec) {
    const fs::path program = find_program("pgbouncer", "pgbouncer");
    const service_user user = resolve_service_user();
    config_server::options o;
    o.name = "pgbouncer";
    o.dir = fs::absolute(spec.dir);
    o.probe = spec.probe;
    o.persistent = spec.persistent;
    o.port = spec.port;
    // PgBouncer 1.18 signals: SIGINT = safe shutdown (waits for clients), SIGTERM = immediate.
    o.stop_signal = SIGTERM;
    o.write_config = [spec, program, user, dir = o.dir](std::uint16_t port) {
        std::ostringstream users;
        for (const auto& [name, secret] : spec.auth_entries)
            users << userlist_quote(name) << " " << userlist_quote(secret) << "\n";
        write_service_file(dir / "userlist.txt", users.str(), user);
        const std::string backend = "host=" + spec.backend_host + " port=" + std::to_string(spec.backend_port);
        std::ostringstream ini;
        ini << ";; PgBouncer for a pgsluice local stack (written by bench/cluster.cpp)\n"
            << "[databases]\n"
            << spec.dbname << " = " << backend << " dbname=" << spec.dbname << "\n"
            << "* = " << backend << "\n\n"
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
    config_server::options o;
    o.name = "pgpool";
    o.dir = fs::absolute(spec.dir);
    o.probe = spec.probe;
    o.persistent = spec.persistent;
    o.port = spec.port;
    // Pgpool-II signals: SIGTERM = smart (waits for clients), SIGINT = fast, SIGQUIT = immediate.
    o.stop_signal = SIGINT;
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
        conf << "# Pgpool-II for a pgsluice local stack (written by bench/cluster.cpp)\n"
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

// Local PostgreSQL 15 clusters (primary + streaming replicas), PgBouncer and Pgpool-II for tests and benchmarks.
//
// One work dir holds everything: data dirs, the unix-socket dir, configs, logs and a state
// file (JSON) recording ports, dirs and the identity (pid + start time) of every server,
// so that `pgsluice bench stack up` can start a stack once, `status` can read it back and
// `down` can stop exactly those processes later, from another command.
//
// Two lifetimes:
//  - ephemeral (tests): work dir under /tmp, servers die with the object (and, through
//    PR_SET_PDEATHSIG, with the process if it crashes); the dir is removed afterwards.
//  - persistent (bench stacks): `persistent = true`; the destructor leaves servers
//    running; `pg_cluster::up` on the same work dir reuses what runs, restarts what is
//    stopped (data kept), and `down` stops it; `destroy` also removes the dir.
#pragma once

#include "bench/process.hpp"

#include <nlohmann/json_fwd.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

struct pg_conn; // libpq's PGconn, kept out of this header

namespace pgsluice::bench {

// ---------------------------------------------------------------------------------------
// libpq helpers

// A statement or login refused by the server, with its SQLSTATE.
class sql_error : public stack_error {
public:
    sql_error(const std::string& what, std::string sqlstate) : stack_error(what), sqlstate_(std::move(sqlstate)) {}
    const std::string& sqlstate() const { return sqlstate_; }

private:
    std::string sqlstate_;
};

// One row of text values; nullopt is SQL NULL.
using sql_row = std::vector<std::optional<std::string>>;
using sql_rows = std::vector<sql_row>;

// A libpq connection (RAII). Throws stack_error from the helpers on failure.
class pq_connection {
public:
    pq_connection() = default;
    explicit pq_connection(::pg_conn* conn) : conn_(conn) {}
    ~pq_connection();
    pq_connection(pq_connection&& other) noexcept : conn_(other.conn_) { other.conn_ = nullptr; }
    pq_connection& operator=(pq_connection&& other) noexcept;
    pq_connection(const pq_connection&) = delete;
    pq_connection& operator=(const pq_connection&) = delete;

    ::pg_conn* get() const { return conn_; }
    explicit operator bool() const { return conn_ != nullptr; }

    // Runs `sql` (simple protocol, may hold several statements); rows of the last result.
    // Throws sql_error carrying the SQLSTATE and message on error.
    sql_rows query(const std::string& sql);
    // Extended protocol with text parameters.
    sql_rows query(const std::string& sql, const std::vector<std::optional<std::string>>& params);
    // First column of the first row (throws when there is no row).
    std::optional<std::string> scalar(const std::string& sql);

private:
    ::pg_conn* conn_ = nullptr;
};

// Outcome of a login attempt, with the server's error split into its fields.
struct connect_result {
    pq_connection conn;    // set on success
    std::string severity;  // e.g. "FATAL"
    std::string sqlstate;  // e.g. "28P01"
    std::string message;   // primary message, e.g. password authentication failed for user "x"
    std::string raw_error; // libpq's full error text
    bool ok() const { return static_cast<bool>(conn); }
};

// Tries to log in with `conninfo` within `timeout`; never throws for a refused login.
connect_result try_connect(const std::string& conninfo, std::chrono::milliseconds timeout = std::chrono::seconds(10));

// Logs in or throws sql_error with the server's SQLSTATE and message.
pq_connection connect(const std::string& conninfo, std::chrono::milliseconds timeout = std::chrono::seconds(10));

// conninfo value quoting ('...' with \ and ' escaped).
std::string conninfo_quote(const std::string& value);

// ---------------------------------------------------------------------------------------
// PostgreSQL cluster

enum class password_method { scram_sha_256, md5 };

struct user_spec {
    std::string name;
    std::string password;
    password_method method = password_method::scram_sha_256;
    bool superuser = false;
};

// What to build. Defaults give a primary + 2 replicas tuned for fast tests.
struct cluster_spec {
    std::filesystem::path work_dir;                               // empty: fresh dir under /tmp
    std::filesystem::path pg_bin_dir = "/usr/lib/postgresql/15/bin";
    std::string os_user = "postgres";                             // used when we are root
    int replicas = 2;
    int max_connections = 200;
    std::string shared_buffers = "32MB";
    bool fsync = false;                                           // off: tests and disposable stacks
    std::string database = "sluice";                             // owned by admin
    // The bootstrap superuser, reachable only over the unix socket (trust): our control channel.
    std::string local_superuser = "postgres";
    user_spec admin{"sluice_admin", "admin-secret", password_method::scram_sha_256, true};
    user_spec scram_user{"sluice_scram", "scram-secret", password_method::scram_sha_256, false};
    user_spec md5_user{"sluice_md5", "md5-secret", password_method::md5, false};
    std::vector<std::pair<std::string, std::string>> settings;    // extra postgresql.conf lines
    bool persistent = false;
    std::chrono::milliseconds start_timeout = std::chrono::seconds(60);
};

enum class node_role { primary, replica };

// One PostgreSQL server of the cluster, as recorded in the state file.
struct node_state {
    std::string name;              // "primary", "replica_1", ...
    node_role role = node_role::primary;
    std::uint16_t port = 0;
    std::filesystem::path data_dir;
    std::filesystem::path log_file;
    std::optional<process_identity> process; // set while running
    // A former primary that was killed and replaced by a promoted replica: never restarted
    // (it would come back as a second primary).
    bool retired = false;
};

// Everything needed to find a cluster again: saved as <work_dir>/cluster.json.
//
//   {"format": 1, "kind": "pgsluice-cluster", "work_dir": "...", "socket_dir": "...",
//    "pg_bin_dir": "...", "os_user": "postgres", "database": "sluice",
//    "local_superuser": "postgres", "persistent": true, "complete": true,
//    "users": [{"name": "sluice_admin", "password": "...", "method": "scram-sha-256",
//               "superuser": true}, ...],
//    "nodes": [{"name": "primary", "role": "primary", "port": 40123,
//               "data_dir": ".../primary", "log_file": ".../log/primary.log",
//               "process": {"pid": 1234, "start_time": 567890} | null,
//               "retired": false}, ...]}
struct cluster_state {
    std::filesystem::path work_dir;
    std::filesystem::path socket_dir;
    std::filesystem::path pg_bin_dir;
    std::string os_user;
    std::string database;
    std::string local_superuser;
    bool persistent = false;
    bool complete = false; // false while `up` is still creating the cluster
    std::vector<user_spec> users;
    std::vector<node_state> nodes;

    static std::filesystem::path file_in(const std::filesystem::path& work_dir) { return work_dir / "cluster.json"; }
    void save() const;                                           // atomically (write + rename)
    static cluster_state load(const std::filesystem::path& work_dir); // throws stack_error
};

void to_json(nlohmann::json& j, const process_identity& p);
void from_json(const nlohmann::json& j, process_identity& p);

// A running primary + N streaming replicas.
class pg_cluster {
public:
    // Brings a cluster up: in a fresh/empty work dir initdb + replicas + users; in a work
    // dir holding a cluster.json, reuses the servers that still run and starts the
    // stopped ones from their data dirs (fast restart). Waits until every node accepts a
    // login and every replica streams. Throws stack_error / missing_dependency; nothing
    // started by a failing call is left running.
    static std::unique_ptr<pg_cluster> up(const cluster_spec& spec);

    // Reads <work_dir>/cluster.json without starting anything (for `status` and `down`).
    // Recorded processes are adopted only if pid and start time still match.
    static std::unique_ptr<pg_cluster> attach(const std::filesystem::path& work_dir);

    // Ephemeral clusters are stopped and their temp dir removed (set
    // PGSLUICE_KEEP_WORK_DIR=1 to keep the dir for post-mortems); persistent ones keep running.
    ~pg_cluster();
    pg_cluster(const pg_cluster&) = delete;
    pg_cluster& operator=(const pg_cluster&) = delete;

    const cluster_state& state() const { return state_; }
    const std::filesystem::path& work_dir() const { return state_.work_dir; }
    std::size_t node_count() const { return state_.nodes.size(); }
    const node_state& node(std::size_t i) const { return state_.nodes.at(i); }
    std::size_t primary_index() const;            // the node whose role is primary
    std::vector<std::size_t> replica_indexes() const;
    std::uint16_t port(std::size_t i) const { return node(i).port; }
    bool running(std::size_t i);

    const user_spec& user(const std::string& name) const; // throws for unknown names
    const user_spec& admin() const;                       // the first superuser in users
    const std::string& database() const { return state_.database; }

    // TCP conninfo to node i as `user` (password from the spec unless given), sslmode=disable.
    std::string conninfo(std::size_t i, const std::string& user, std::optional<std::string> password = std::nullopt,
                         std::optional<std::string> dbname = std::nullopt) const;
    // postgresql://user:password@127.0.0.1:port/db?sslmode=disable
    std::string url(std::size_t i, const std::string& user, std::optional<std::string> dbname = std::nullopt) const;
    // The control channel: unix socket, local superuser, trust.
    std::string local_conninfo(std::size_t i, const std::string& dbname = "postgres") const;

    // Runs `sql` on node i as the local superuser.
    sql_rows exec_sql(std::size_t i, const std::string& sql, const std::string& dbname = "postgres") const;

    // The user's stored verifier from pg_authid (SCRAM-SHA-256$... or md5...), as
    // PgBouncer's userlist needs it.
    std::string password_secret(const std::string& user) const;

    // Starts every stopped node and waits for readiness (and streaming).
    void start();
    // Fast shutdown of every node (SIGINT, then SIGKILL after a bounded wait). Data kept.
    void stop();
    // stop() then remove the work dir.
    void destroy();

    // Failover tests.
    // pg_promote() on `replica`, waits until it accepts writes, then re-points the other
    // replicas to it (slots created there, primary_conninfo reloaded) and waits until they
    // stream. The old primary is marked retired: never restarted (no pg_rewind here).
    void promote(std::size_t replica);
    void kill_node(std::size_t i);      // SIGKILL the postmaster
    void kill_primary() { kill_node(primary_index()); }

    // Waits until every replica whose primary is up is streaming. Throws on timeout.
    void wait_replicas_streaming(std::chrono::milliseconds timeout) const;

    const std::filesystem::path& socket_dir() const { return state_.socket_dir; }
    const service_user& os_user() const { return user_; }

private:
    pg_cluster(cluster_state state, service_user user);
    void create_(const cluster_spec& spec);
    void initdb_primary_(const cluster_spec& spec);
    void save_() const;
    void create_replica_(std::size_t i);
    void create_users_();
    void write_node_conf_(const node_state& node) const;
    void start_node_(std::size_t i);
    void wait_ready_(std::size_t i, std::uint64_t log_offset);
    std::filesystem::path bin_(const char* program) const;

    cluster_state state_;
    service_user user_;
    std::vector<child_process> processes_; // parallel to state_.nodes
    bool remove_dir_ = false;
    bool committed_ = false; // up() finished: a persistent cluster may now outlive us
    std::chrono::milliseconds start_timeout_{60000};
};

// ---------------------------------------------------------------------------------------
// Poolers and other servers started from a config file

// A server process we started with a config file and a port, as recorded in a stack's
// state file: {"name": "pgbouncer", "port": 40200, "config": ".../pgbouncer.ini",
// "log_file": "...", "stop_signal": 15, "process": {"pid": 1, "start_time": 2}}.
struct server_record {
    std::string name;
    std::uint16_t port = 0;
    std::filesystem::path config;
    std::filesystem::path log_file;
    int stop_signal = 15;
    std::optional<process_identity> process;
};
void to_json(nlohmann::json& j, const server_record& r);
void from_json(const nlohmann::json& j, server_record& r);

// Login used to decide that a server is ready: a real user and database, because probes
// with unknown users have side effects (Pgpool-II kills a child for each).
struct login_probe {
    std::string user;
    std::string password;
    std::string dbname;
};

// A config-file server (PgBouncer, Pgpool-II, pgsluice): start on a free port, wait for
// a real login through it, stop. `write_config(port)` must (re)write the config files for
// that port and return the argv to run; on "Address already in use" a new port is tried.
class config_server {
public:
    struct options {
        std::string name;                      // "pgbouncer", "pgpool", "pgsluice"
        std::filesystem::path dir;             // config + log live here (created, owned by the service user)
        std::function<std::vector<std::string>(std::uint16_t port)> write_config;
        login_probe probe;
        int stop_signal = 15;
        bool run_as_service_user = true;       // false: run as ourselves (pgsluice may run as root)
        bool persistent = false;
        std::optional<std::uint16_t> port;     // fixed port (restart of a recorded stack); else free port
        std::chrono::milliseconds start_timeout = std::chrono::seconds(60);
        std::string service_user_name = "postgres";
    };

    explicit config_server(options opts);     // starts and waits; throws stack_error
    // Re-attaches to a recorded server (status / down); empty process when it is gone.
    explicit config_server(const server_record& record, bool persistent = true);
    ~config_server();                         // stops unless persistent
    config_server(const config_server&) = delete;
    config_server& operator=(const config_server&) = delete;

    std::uint16_t port() const { return record_.port; }
    const server_record& record() const { return record_; }
    bool running() { return process_.running(); }
    std::string conninfo(const std::string& user, const std::string& password, const std::string& dbname) const;
    void stop();
    void kill_now() { process_.kill_now(); }
    pid_t pid() const { return process_.pid(); }

private:
    server_record record_;
    child_process process_;
    bool persistent_ = false;
};

// PgBouncer in front of `backend_host:backend_port`.
struct pgbouncer_spec {
    std::filesystem::path dir;            // created if missing
    std::string backend_host = "127.0.0.1";
    std::uint16_t backend_port = 0;
    std::string dbname;                   // client-facing name = backend name
    std::string pool_mode = "transaction";
    int default_pool_size = 20;
    int max_client_conn = 1000;
    // auth_file entries: user -> secret or plaintext. With auth_type scram-sha-256 PgBouncer
    // needs the server's own SCRAM secret (same salt) to log in with the client's keys, or
    // the plaintext password (required when the backend is Pgpool-II, whose salt differs).
    std::vector<std::pair<std::string, std::string>> auth_entries;
    std::string admin_user;               // admin_users
    login_probe probe;
    bool persistent = false;
    std::optional<std::uint16_t> port;
    std::vector<std::pair<std::string, std::string>> settings; // extra [pgbouncer] lines
};
std::unique_ptr<config_server> start_pgbouncer(const pgbouncer_spec& spec);

// PgBouncer spec serving `cluster`'s primary with its users (SCRAM secrets from pg_authid
// for SCRAM users, plaintext for MD5 users).
pgbouncer_spec pgbouncer_for(const pg_cluster& cluster, const std::filesystem::path& dir);

// Pgpool-II in streaming-replication mode, load balancing over the given backends.
struct pgpool_backend {
    std::string host = "127.0.0.1";
    std::uint16_t port = 0;
    std::filesystem::path data_dir;
    std::string name;
};
struct pgpool_spec {
    std::filesystem::path dir;
    std::vector<pgpool_backend> backends; // primary first
    std::vector<std::pair<std::string, std::string>> passwords; // pool_passwd: user -> plaintext
    std::string sr_check_user;            // must be able to log in
    std::string sr_check_database = "postgres";
    int num_init_children = 32;
    int max_pool = 4;
    bool load_balance = true;
    login_probe probe;
    bool persistent = false;
    std::optional<std::uint16_t> port;
    std::vector<std::pair<std::string, std::string>> settings; // extra pgpool.conf lines
};
std::unique_ptr<config_server> start_pgpool(const pgpool_spec& spec);

// Pgpool spec over all nodes of `cluster`, with its users.
pgpool_spec pgpool_for(const pg_cluster& cluster, const std::filesystem::path& dir);

} // namespace pgsluice::bench

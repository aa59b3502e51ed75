// PgBouncer, Pgpool-II and other servers started from a config file on a free port, ready once a real login succeeds.
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
#include <utility>
#include <vector>

namespace pgsluice::bench {

class pg_cluster; // bench/cluster.hpp

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
    std::string conninfo_extra;  // more libpq settings, e.g. "sslmode=require" (later ones win)
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
    // More [databases] entries: client-facing name -> connection string ("host=/dir port=N dbname=db").
    std::vector<std::pair<std::string, std::string>> extra_databases;
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

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
//
// The libpq helpers (bench/pq.hpp) and the config-file servers in front of a cluster
// (bench/poolers.hpp) come with this header.
#pragma once

#include "bench/poolers.hpp"
#include "bench/pq.hpp"
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

namespace pgsluice::bench {

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

} // namespace pgsluice::bench

// GoogleTest harness for integration tests: one real PostgreSQL cluster (plus PgBouncer, Pgpool-II, pgsluice) per test executable.
//
// initdb and base backups cost seconds, so the cluster is started once, on first use, and
// shared by every test of the executable; it is stopped (and its temp dir removed) when
// the executable exits, and killed with it if it crashes (PR_SET_PDEATHSIG). A missing
// dependency (initdb, pgbouncer, pgpool, the pgsluice binary) makes every test that needs
// it FAIL with a message naming it: nothing is skipped silently.
#pragma once

#include "bench/cluster.hpp"
#include "tests/harness/observe.hpp"

#include <chrono>
#include <csignal>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace pgsluice::test {

using bench::connect_result;
using bench::pq_connection;
using bench::sql_error;
using bench::sql_row;
using bench::sql_rows;

// The shared cluster: primary + 2 streaming replicas, users from bench::cluster_spec's
// defaults (sluice_admin superuser / sluice_scram SCRAM / sluice_md5 MD5), database "sluice".
// Throws (the test fails with the reason) when it cannot be started; later calls rethrow
// the same reason instead of retrying.
bench::pg_cluster& cluster();

// PgBouncer (transaction pooling) in front of the primary; Pgpool-II (streaming
// replication, load balancing) over all nodes. Started on first use.
bench::config_server& pgbouncer();
bench::config_server& pgpool();

// libpq: log in (throws sql_error), or try and inspect the refusal.
pq_connection connect(const std::string& conninfo);
connect_result try_connect(const std::string& conninfo);
// Opens a connection, runs `sql`, returns the rows of the last result.
sql_rows query(const std::string& conninfo, const std::string& sql);

// The pgsluice executable: $PGSLUICE_BINARY (set by CTest). Throws naming the variable
// when it is unset or does not point to an executable.
std::filesystem::path pgsluice_binary();

// `pgsluice serve -c FILE` on a free port, in its own temp dir, stopped on destruction.
// The TOML config is written by the test (it knows the schema) for the port chosen here;
// the process counts as started once `probe` can log in through it and run SELECT 1.
class pgsluice_process {
public:
    struct options {
        std::function<std::string(std::uint16_t port)> config; // TOML text for a listen port
        bench::login_probe probe;
        std::vector<std::string> extra_args;                   // after `serve -c FILE`
        std::chrono::milliseconds start_timeout = std::chrono::seconds(30);
        int stop_signal = SIGTERM;
    };

    explicit pgsluice_process(options opts);
    ~pgsluice_process();
    pgsluice_process(const pgsluice_process&) = delete;
    pgsluice_process& operator=(const pgsluice_process&) = delete;

    std::uint16_t port() const { return server_->port(); }
    std::string conninfo(const std::string& user, const std::string& password, const std::string& dbname) const {
        return server_->conninfo(user, password, dbname);
    }
    const std::filesystem::path& dir() const { return dir_; }
    std::filesystem::path config_file() const { return dir_ / "pgsluice.toml"; }
    std::filesystem::path log_file() const { return server_->record().log_file; }
    bool running() { return server_->running(); }
    pid_t pid() const { return server_->pid(); }
    void stop() { server_->stop(); }

private:
    std::filesystem::path dir_;
    std::unique_ptr<bench::config_server> server_;
};

} // namespace pgsluice::test

// Client compatibility: psql, libpq (with pipeline mode), psycopg2, psycopg 3, asyncpg, JDBC and node-postgres run one scenario directly, through pgsluice (transaction and session pooling) and through PgBouncer.
//
// The scenario (tests/drivers/common.py describes it): named prepared statements reused
// across many transactions, parameters of every common type, an error inside a
// transaction that must surface with its SQLSTATE and leave the connection usable, and 20
// concurrent connections against a pool of 3 server connections. Each driver runs as a
// subprocess (libpq runs in this process) and exits non-zero, saying why, on any mismatch.
//
// Targets:
//  - direct: PostgreSQL itself, proving each script right on its own;
//  - pgsluice in transaction and in session mode, pool size 3;
//  - PgBouncer 1.18 in transaction mode, pool size 3, for comparison: it has no
//    prepared-statement support there (it came in 1.21). The drivers that send no named
//    statements must pass through it (it is the working reference for those); for the
//    others what PgBouncer did (exit status, error) is printed, not judged.
// Through pgsluice, the server connections coming from it are sampled (PostgreSQL's
// pg_stat_activity) while the driver runs: never more than the pool size.
// A missing runtime or driver package fails the case naming it; nothing is skipped.
#include "tests/harness/harness.hpp"
#include "tests/integration/drivers_libpq.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace {

namespace fs = std::filesystem;
namespace b = pgsluice::bench;
namespace t = pgsluice::test;
using namespace std::chrono_literals;

constexpr int clients = 20;       // concurrent connections of each driver run
constexpr int transactions = 20;  // per connection
constexpr int pool_size = 3;      // server connections per pool: far fewer than clients
constexpr auto script_timeout = 120s;
const char* const user = "sluice_scram";  // a SCRAM user, as most deployments have

enum class target { direct, pgsluice_transaction, pgsluice_session, pgbouncer_transaction };

std::string to_string(target where) {
    switch (where) {
    case target::direct: return "direct";
    case target::pgsluice_transaction: return "pgsluice_transaction";
    case target::pgsluice_session: return "pgsluice_session";
    case target::pgbouncer_transaction: return "pgbouncer_transaction";
    }
    return "?";
}

struct driver {
    std::string name;
    // Sends named (server-side) prepared statements: PgBouncer 1.18 cannot pool those.
    bool named_statements;
};

// Readable parameters in GoogleTest's failure lines.
void PrintTo(target where, std::ostream* os) { *os << to_string(where); }
void PrintTo(const driver& d, std::ostream* os) { *os << d.name; }

const std::vector<driver> drivers{
    {"psql", false},  {"libpq", true},  {"psycopg2", false}, {"psycopg3", true},
    {"asyncpg", true}, {"jdbc", true},  {"node", true},
};

fs::path source_dir() {
    const char* env = std::getenv("PGSLUICE_SOURCE_DIR");
    if (env == nullptr || *env == '\0')
        throw b::missing_dependency("PGSLUICE_SOURCE_DIR is not set: run this test through ctest");
    return env;
}

fs::path require_file(const fs::path& file, const std::string& hint) {
    if (!fs::exists(file))
        throw b::missing_dependency(file.string() + " is missing: " + hint);
    return file;
}

// argv of a driver script; throws missing_dependency naming what is not installed.
std::vector<std::string> command_for(const std::string& name) {
    const fs::path dir = source_dir() / "tests" / "drivers";
    if (name == "psql") {
        b::find_program("psql", "postgresql-client-15");
        return {"bash", require_file(dir / "psql_driver.sh", "part of the source tree").string()};
    }
    if (name == "psycopg2" || name == "psycopg3" || name == "asyncpg")
        return {"/usr/bin/python3", require_file(dir / (name + "_driver.py"), "part of the source tree").string()};
    if (name == "jdbc") {
        const auto jar = require_file("/usr/share/java/postgresql.jar", "install libpostgresql-jdbc-java");
        b::find_program("java", "default-jdk-headless");
        // A short-lived program: the C1 compiler and the serial GC halve the CPU it takes.
        return {"java", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-cp", jar.string(),
                require_file(dir / "Driver.java", "part of the source tree").string()};
    }
    if (name == "node") {
        require_file(dir / "node" / "node_modules" / "pg" / "package.json",
                     "node-postgres is not installed: run scripts/install.sh (npm ci in tests/drivers/node)");
        b::find_program("node", "nodejs");
        return {"node", (dir / "node" / "driver.js").string()};
    }
    throw std::logic_error("no command for driver " + name);
}

// A server started on first use and shared by every case; a failed start is remembered
// and reported again by each case that needs it.
template <class T>
class lazy {
public:
    template <class Start>
    T& get(Start start) {
        if (!value_ && error_.empty()) {
            try {
                value_ = start();
            } catch (const std::exception& e) {
                error_ = e.what();
            }
        }
        if (!value_)
            throw b::stack_error(error_);
        return *value_;
    }

private:
    std::unique_ptr<T> value_;
    std::string error_;
};

std::uint16_t primary_port() {
    auto& c = t::cluster();
    return c.port(c.primary_index());
}

t::pgsluice_process& pgsluice(const std::string& mode) {
    static lazy<t::pgsluice_process> transaction, session;
    return (mode == "transaction" ? transaction : session).get([&] {
        auto& c = t::cluster();
        const auto& u = c.user(user);
        t::pgsluice_process::options o;
        o.probe = {u.name, u.password, c.database()};
        o.config = [mode, port = primary_port(), &c, &u](std::uint16_t listen_port) {
            const auto& admin = c.admin();
            return "# drivers_test: " + mode + " pooling, a pool far smaller than the driver's concurrency.\n"
                   "workers = 2\n"
                   "pool_mode = \"" + mode + "\"\n"
                   "default_pool_size = " + std::to_string(pool_size) + "\n"
                   "max_client_conn = 500\n"
                   "query_wait_timeout = \"60s\"\n"
                   "auth_type = \"scram-sha-256\"\n"
                   "\n[listen]\nhost = \"127.0.0.1\"\nport = " + std::to_string(listen_port) + "\n"
                   "\n[log]\nlevel = \"" + (std::getenv("PGSLUICE_TEST_LOG_LEVEL") ? std::getenv("PGSLUICE_TEST_LOG_LEVEL") : "info") + "\"\n"
                   "\n[users]\n" + u.name + " = \"" + u.password + "\"\n" + admin.name + " = \"" + admin.password + "\"\n"
                   "\n[databases." + c.database() + "]\nhost = \"127.0.0.1\"\nport = " + std::to_string(port) + "\n";
        };
        return std::make_unique<t::pgsluice_process>(std::move(o));
    });
}

b::config_server& pgbouncer() {
    static lazy<b::config_server> server;
    return server.get([] {
        auto& c = t::cluster();
        auto spec = b::pgbouncer_for(c, c.work_dir() / "pgbouncer-drivers");
        spec.pool_mode = "transaction";
        spec.default_pool_size = pool_size;
        return b::start_pgbouncer(spec);
    });
}

// Where a case connects: port, and for proxies the process to watch.
struct endpoint {
    std::uint16_t port = 0;
    t::pgsluice_process* proxy = nullptr;
};

endpoint endpoint_for(target where) {
    switch (where) {
    case target::direct: return {primary_port(), nullptr};
    case target::pgsluice_transaction: {
        auto& p = pgsluice("transaction");
        return {p.port(), &p};
    }
    case target::pgsluice_session: {
        auto& p = pgsluice("session");
        return {p.port(), &p};
    }
    case target::pgbouncer_transaction: return {pgbouncer().port(), nullptr};
    }
    return {};
}

struct run_result {
    int exit_code = -1;
    std::string output;
};

// Runs a driver script to completion with the connection in PG* variables.
run_result run_script(const std::string& name, std::uint16_t port, const std::string& table) {
    const auto& u = t::cluster().user(user);
    const fs::path dir = b::make_temp_dir("pgsluice-driver-", b::service_user{});
    b::spawn_options o;
    o.argv = command_for(name);
    o.log_file = dir / "output.log";
    o.env = {{"PGHOST", "127.0.0.1"},
             {"PGPORT", std::to_string(port)},
             {"PGUSER", u.name},
             {"PGPASSWORD", u.password},
             {"PGDATABASE", t::cluster().database()},
             {"DRIVER_TABLE", table},
             {"DRIVER_CLIENTS", std::to_string(clients)},
             {"DRIVER_TRANSACTIONS", std::to_string(transactions)}};
    o.parent_death_signal = SIGKILL;
    run_result r;
    auto child = b::child_process::spawn(o, SIGKILL);
    if (child.wait_exit(script_timeout)) {
        r.exit_code = child.exit_status().value_or(-1);
    } else {
        child.stop(1s);
        r.output = "TIMEOUT: still running after " + std::to_string(script_timeout.count()) + " s, killed\n";
    }
    r.output += b::read_file_text(o.log_file);
    std::error_code ec;
    fs::remove_all(dir, ec);
    return r;
}

run_result run_driver(const std::string& name, std::uint16_t port, const std::string& table) {
    if (name != "libpq")
        return run_script(name, port, table);
    const auto& u = t::cluster().user(user);
    t::drivers::libpq_scenario s;
    s.conninfo = "host=127.0.0.1 port=" + std::to_string(port) + " user=" + u.name +
                 " password=" + b::conninfo_quote(u.password) + " dbname=" + t::cluster().database() +
                 " sslmode=disable connect_timeout=60";
    s.table = table;
    s.clients = clients;
    s.transactions = transactions;
    const auto failure = t::drivers::run_libpq_scenario(s);
    return {failure.empty() ? 0 : 1,
            failure.empty() ? "OK libpq: " + std::to_string(clients) + " concurrent clients x " +
                                  std::to_string(transactions) + " transactions with named statements, then as many "
                                  "pipelined; 22012 and 23505 recovered, pipeline aborted until Sync"
                            : failure};
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    for (std::size_t pos = 0; pos < text.size();) {
        const auto end = std::min(text.find('\n', pos), text.size());
        lines.push_back(text.substr(pos, end - pos));
        pos = end + 1;
    }
    return lines;
}

// The first line of a driver's output that reports a failure or an error (else its first line).
std::string first_error_line(const std::string& output) {
    const auto lines = lines_of(output);
    for (const auto& line : lines)
        if (line.starts_with("FAIL ") || line.find("ERROR") != std::string::npos ||
            line.find("rror:") != std::string::npos || line.find("prepared statement") != std::string::npos)
            return line;
    return lines.empty() ? "" : lines.front();
}

class driver_test : public testing::TestWithParam<std::tuple<target, driver>> {};

// The pooler process a case goes through (none for direct).
pid_t pooler_pid(target where, const endpoint& at) {
    if (at.proxy != nullptr)
        return at.proxy->pid();
    return where == target::pgbouncer_transaction ? pgbouncer().pid() : 0;
}

TEST_P(driver_test, runs_the_scenario) {
    const auto [where, drv] = GetParam();
    const endpoint at = endpoint_for(where);
    const std::string table = "drv_" + drv.name + "_" + to_string(where);
    const pid_t pooler = pooler_pid(where, at);
    std::optional<t::server_connection_sampler> sampler;
    if (pooler != 0)
        sampler.emplace(pooler, t::cluster().primary_index());
    const auto start = std::chrono::steady_clock::now();
    const run_result r = run_driver(drv.name, at.port, table);
    const auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const auto servers = sampler ? sampler->finish() : t::server_connection_sampler::result{};
    RecordProperty("seconds", std::to_string(seconds)); // information only
    const std::string connections =
        sampler ? "server connections at most " + std::to_string(servers.most) + " of a pool of " +
                      std::to_string(pool_size) + " (" + std::to_string(servers.samples) + " samples)"
                : "no pooler";
    const std::string shown = "--- " + drv.name + " via " + to_string(where) + " (exit " + std::to_string(r.exit_code) +
                              ", " + connections + ") ---\n" + r.output;

    // The script's verdict line (OK ... / FAIL ...) in the test log, whatever the outcome.
    for (const auto& line : lines_of(r.output))
        if (line.starts_with("OK ") || line.starts_with("FAIL "))
            std::cout << "    " << to_string(where) << ": " << line << " [" << connections << "]\n";

    if (where == target::pgbouncer_transaction && drv.named_statements) {
        // For comparison only: PgBouncer 1.18 has no named-statement support in transaction
        // mode. What it did is shown, not asserted.
        std::cout << "    pgbouncer_transaction: " << drv.name << " exited " << r.exit_code
                  << (r.exit_code == 0 ? "" : ", first error: " + first_error_line(r.output)) << "\n";
        RecordProperty("pgbouncer_exit_code", r.exit_code);
        return;
    }
    EXPECT_EQ(r.exit_code, 0) << shown;
    if (at.proxy != nullptr) {
        t::expect_within_pool(servers, pool_size);
        EXPECT_TRUE(at.proxy->running()) << "pgsluice exited; its log:\n" << b::read_file_tail(at.proxy->log_file(), 6000);
        if (r.exit_code != 0)
            ADD_FAILURE() << "pgsluice log tail:\n" << b::read_file_tail(at.proxy->log_file(), 6000);
    }
}

INSTANTIATE_TEST_SUITE_P(
    drivers, driver_test,
    testing::Combine(testing::Values(target::direct, target::pgsluice_transaction, target::pgsluice_session,
                                     target::pgbouncer_transaction),
                     testing::ValuesIn(drivers)),
    [](const testing::TestParamInfo<driver_test::ParamType>& info) {
        return std::get<1>(info.param).name + "_via_" + to_string(std::get<0>(info.param));
    });

} // namespace

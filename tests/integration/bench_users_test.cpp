// `pgsluice bench run --users` against real PostgreSQL and PgBouncer: Locust's table and CSV files from a short mixed run, a run stopped halfway, a target that is down.
#include "tests/harness/harness.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "bench/cli.hpp"
#include "bench/dataset.hpp"
#include "bench/engine.hpp"
#include "bench/report.hpp"
#include "bench/stack.hpp"

namespace {

namespace b = pgsluice::bench;
namespace t = pgsluice::test;
namespace fs = std::filesystem;

std::string direct_url() {
    auto& c = t::cluster();
    return c.url(c.primary_index(), c.admin().name);
}

std::string bouncer_url() {
    auto& c = t::cluster();
    return t::pgbouncer().conninfo(c.admin().name, c.admin().password, "sluice");
}

void load_once() {
    static const bool loaded = [] {
        b::init_options o;
        o.conninfo = direct_url();
        o.scale = 0.02;
        o.jobs = 2;
        o.progress_tty = 0;
        b::init_datasets(o);
        return true;
    }();
    (void)loaded;
}

fs::path fresh_dir(const std::string& name) {
    const fs::path dir = fs::temp_directory_path() / (name + "-" + std::to_string(::getpid()));
    fs::remove_all(dir);
    return dir;
}

std::string read_all(const fs::path& p) {
    std::ifstream in(p);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

std::vector<std::vector<std::string>> csv_rows(const fs::path& p) {
    std::vector<std::vector<std::string>> rows;
    std::istringstream in(read_all(p));
    for (std::string line; std::getline(in, line);) {
        std::vector<std::string> fields;
        std::istringstream l(line);
        for (std::string f; std::getline(l, f, ',');)
            fields.push_back(f);
        rows.push_back(fields);
    }
    return rows;
}

TEST(bench_users, a_short_mixed_run_of_users_prints_locusts_table_and_writes_its_csv_files) {
    load_once();
    const fs::path results = fresh_dir("bench-users-results");
    std::vector<std::string> args{"bench", "run", "--targets", "direct=" + direct_url() + ",pgbouncer=" + bouncer_url(),
                                  "--users", "20", "--spawn-rate", "20", "--run-time", "3s", "--wait", "10ms..20ms",
                                  "-w", "mixed", "--read-ratio", "80", "--pause", "0", "--results-dir",
                                  results.string()};
    std::vector<char*> argv;
    for (auto& a : args)
        argv.push_back(a.data());
    testing::internal::CaptureStdout();
    const int status = b::run_bench_command(static_cast<int>(argv.size()), argv.data());
    const std::string out = testing::internal::GetCapturedStdout();
    ASSERT_EQ(status, 0) << out;
    // One Locust table per target, with reads and writes in it, and the targets compared.
    for (const char* needle : {"== mixed · simple · 20 users · direct", "== mixed · simple · 20 users · pgbouncer",
                               "# requests", "# fails", "Aggregated", "targets compared", "vs pgbouncer"})
        EXPECT_NE(out.find(needle), std::string::npos) << needle << "\n" << out;
    EXPECT_NE(out.find("users    20/20"), std::string::npos) << "the per-second lines show the users started\n" << out;

    ASSERT_TRUE(fs::exists(results));
    const fs::path dir = fs::directory_iterator(results)->path();
    for (const char* target : {"direct", "pgbouncer"}) {
        const auto stats = csv_rows(dir / (std::string(target) + "_stats.csv"));
        ASSERT_GE(stats.size(), 3u) << target;
        EXPECT_EQ(stats[0].at(0), "Type");
        EXPECT_EQ(stats[0].at(2), "Request Count");
        EXPECT_EQ(stats[0].at(9), "Requests/s");
        std::uint64_t reads = 0, writes = 0, total = 0, failures = 0;
        for (std::size_t i = 1; i < stats.size(); ++i) {
            const auto n = std::stoull(stats[i].at(2));
            if (stats[i].at(0) == "read")
                reads += n;
            if (stats[i].at(0) == "write")
                writes += n;
            if (stats[i].at(1) == "Aggregated") {
                total = n;
                failures = std::stoull(stats[i].at(3));
            }
        }
        // Both kinds ran (the ratio itself is the workload's business, not asserted here).
        EXPECT_GT(reads, 0u) << target;
        EXPECT_GT(writes, 0u) << target;
        EXPECT_EQ(total, reads + writes + (stats.size() > 3 && stats[stats.size() - 2].at(0) == "connect"
                                               ? std::stoull(stats[stats.size() - 2].at(2))
                                               : 0))
            << target;
        EXPECT_EQ(failures, 0u) << target << "\n" << read_all(dir / (std::string(target) + "_failures.csv"));

        const auto history = csv_rows(dir / (std::string(target) + "_stats_history.csv"));
        ASSERT_GE(history.size(), 3u) << target;  // header + a row a second
        EXPECT_EQ(history[0].at(1), "User Count");
        EXPECT_EQ(history[0].at(17), "Total Request Count");
        EXPECT_EQ(history.back().at(1), "20");
        EXPECT_EQ(history.back().at(3), "Aggregated");
        EXPECT_GT(std::stoull(history.back().at(17)), 0u);
        EXPECT_TRUE(fs::exists(dir / (std::string(target) + "_failures.csv")));
    }
    const auto run = b::load_run(dir);
    EXPECT_TRUE(run.complete);
    EXPECT_EQ(run.config.users, 20u);
    EXPECT_TRUE(fs::exists(dir / "report.html"));
    fs::remove_all(results);
}

TEST(bench_users, a_run_stopped_halfway_keeps_what_it_measured_marked_incomplete) {
    load_once();
    const fs::path results = fresh_dir("bench-users-stopped");
    b::run_request r;
    r.targets = "direct=" + direct_url() + ",pgbouncer=" + bouncer_url();
    r.users = "10";
    r.spawn_rate = "100";
    r.run_time = "30s";
    r.wait = "5ms..10ms";
    r.workloads = "read";
    r.results_dir = results.string();
    r.pause = "0";
    std::atomic<bool> stop{false};
    std::vector<b::run_point> points;
    // Stopped (as SIGINT does) once the first target has served requests for a second.
    const auto outcome = b::run_benchmark(
        r,
        [&](const b::run_point& p) {
            points.push_back(p);
            if (p.requests > 0)
                stop.store(true);
        },
        &stop, nullptr);
    ASSERT_EQ(outcome.status, 0) << outcome.error;
    EXPECT_FALSE(outcome.complete);
    ASSERT_FALSE(points.empty());
    EXPECT_EQ(points.front().target, "direct");
    const auto run = b::load_run(outcome.dir);
    EXPECT_FALSE(run.complete);
    ASSERT_EQ(run.results.size(), 1u) << "pgbouncer never started";
    EXPECT_GT(run.results[0].requests, 0u);
    EXPECT_TRUE(run.results[0].interrupted);
    EXPECT_LT(run.results[0].duration_s, 30);
    EXPECT_TRUE(fs::exists(outcome.dir / "direct_stats.csv"));
    fs::remove_all(results);
}

TEST(bench_users, a_target_that_is_down_is_named_and_the_others_still_run) {
    load_once();
    const fs::path results = fresh_dir("bench-users-down");
    b::run_request r;
    r.targets = "down=postgresql://sluice_admin@127.0.0.1:" + std::to_string(b::pick_free_port()) +
                "/sluice?sslmode=disable,direct=" + direct_url();
    r.users = "4";
    r.spawn_rate = "100";
    r.run_time = "1s";
    r.wait = "10ms..20ms";
    r.workloads = "write";
    r.results_dir = results.string();
    r.pause = "0";
    std::ostringstream log;
    const auto outcome = b::run_benchmark(r, {}, nullptr, &log);
    ASSERT_EQ(outcome.status, 0) << outcome.error << log.str();
    EXPECT_NE(log.str().find("target down did not answer before the run"), std::string::npos) << log.str();
    const auto run = b::load_run(outcome.dir);
    ASSERT_EQ(run.results.size(), 2u);
    EXPECT_EQ(run.results[0].requests, 0u);
    EXPECT_GT(run.results[0].errors.count("connect_failed"), 0u);
    EXPECT_GT(run.results[1].requests, 0u);
    EXPECT_NE(read_all(outcome.dir / "down_failures.csv").find("connect_failed"), std::string::npos);
    fs::remove_all(results);
}

} // namespace

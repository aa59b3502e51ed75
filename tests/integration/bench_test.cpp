// `pgsluice bench` against real servers: data set loading, every workload and protocol mode, failures reported as failures, stale reads and read shares through the routed target.
#include "tests/harness/harness.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "bench/cli.hpp"
#include "bench/dataset.hpp"
#include "bench/load_generator.hpp"
#include "bench/report.hpp"
#include "bench/runner.hpp"
#include "bench/stack.hpp"
#include "bench/workloads.hpp"

namespace {

using namespace std::chrono_literals;
namespace b = pgsluice::bench;
namespace t = pgsluice::test;
namespace fs = std::filesystem;

std::string direct_url() {
    auto& c = t::cluster();
    return c.url(c.primary_index(), c.admin().name);
}

// Loads a small data set once per test executable.
const b::dataset_info& loaded() {
    static const b::dataset_info info = [] {
        b::init_options o;
        o.conninfo = direct_url();
        o.scale = 0.02;
        o.jobs = 2;
        o.progress_tty = 0;
        const auto report = b::init_datasets(o);
        for (const auto& note : report.notes)
            ADD_FAILURE() << "init note (PostGIS is part of scripts/install.sh): " << note;
        return b::probe_dataset(direct_url());
    }();
    return info;
}

b::load_result run_load(const std::string& url, const std::string& workload, b::protocol_mode mode,
                        std::uint32_t clients = 4, b::millis duration = 1500ms) {
    b::workload_options w;
    w.name = workload;
    b::load_options o;
    o.conninfo = url;
    o.clients = clients;
    o.protocol = mode;
    o.warmup = 300ms;
    o.duration = duration;
    o.connect_timeout = 3s;
    o.request_timeout = 5s;
    b::load_generator g(o, b::make_workload(w, loaded()));
    return g.run();
}

std::string errors_of(const b::load_result& r) {
    std::string s;
    for (const auto& [k, v] : r.errors)
        s += k + "=" + std::to_string(v) + " (" + r.error_samples.at(k) + ") ";
    return s;
}

TEST(bench, init_loads_every_data_set_and_records_its_sizes) {
    const auto& info = loaded();
    EXPECT_TRUE(info.has_pgbench);
    EXPECT_TRUE(info.has_purchases);
    EXPECT_TRUE(info.has_weather);
    EXPECT_TRUE(info.has_vehicles);
    const auto sizes = b::dataset_sizes::for_scale(0.02);
    EXPECT_EQ(info.sizes.customers, sizes.customers);
    auto conn = t::connect(direct_url());
    EXPECT_EQ(conn.scalar("SELECT count(*) FROM pgbench_accounts"), std::to_string(sizes.pgbench_scale * 100000));
    EXPECT_EQ(conn.scalar("SELECT count(*) FROM purchases"), std::to_string(sizes.purchases));
    EXPECT_EQ(conn.scalar("SELECT count(*) FROM weather"), std::to_string(sizes.weather_rows));
    EXPECT_EQ(conn.scalar("SELECT count(*) FROM vehicle_locations"), std::to_string(sizes.vehicle_rows));
    // purchases is partitioned by month and every row found its partition.
    EXPECT_GE(std::stoi(*conn.scalar("SELECT count(*) FROM pg_inherits WHERE inhparent = 'purchases'::regclass")), 13);
    EXPECT_EQ(conn.scalar("SELECT count(*) FROM purchases_default"), "0");
    // Every row's region is its customer's (the latest-purchases filter relies on it).
    EXPECT_EQ(conn.scalar("SELECT count(*) FROM purchases p JOIN customers c USING (customer_id) WHERE p.region <> c.region"),
              "0");
}

TEST(bench, select_only_runs_in_all_three_protocol_modes_without_failures) {
    for (auto mode : {b::protocol_mode::simple, b::protocol_mode::extended, b::protocol_mode::prepared}) {
        const auto r = run_load(direct_url(), "select-only", mode);
        EXPECT_GT(r.requests, 0u) << b::to_string(mode);
        EXPECT_EQ(r.failures, 0u) << b::to_string(mode) << ": " << errors_of(r);
        EXPECT_EQ(r.latency.count(), r.requests);
        EXPECT_GT(r.latency.percentile(50), 0u);
        EXPECT_LE(r.latency.percentile(50), r.latency.percentile(99));
        EXPECT_GE(r.timeline.size(), 1u);
        // One point per whole second of the run (0.3 s warm-up + 1.5 s measured), each with requests.
        EXPECT_LE(r.timeline.size(), 2u);
        for (const auto& p : r.timeline) EXPECT_GT(p.requests, 0u) << "second " << p.second;
        EXPECT_EQ(r.connections_opened, 4u);
    }
}

TEST(bench, every_builtin_workload_runs_against_postgresql) {
    for (const auto& w : b::builtin_workloads()) {
        const auto r = run_load(direct_url(), std::string(w.name), b::protocol_mode::extended, 2, 1000ms);
        EXPECT_GT(r.requests, 0u) << w.name;
        EXPECT_EQ(r.failures, 0u) << w.name << ": " << errors_of(r);
    }
}

TEST(bench, inserts_and_tpcb_really_write) {
    auto conn = t::connect(direct_url());
    const auto before = std::stoll(*conn.scalar("SELECT count(*) FROM pgbench_history"));
    const auto r = run_load(direct_url(), "tpcb", b::protocol_mode::prepared, 2, 1000ms);
    ASSERT_EQ(r.failures, 0u) << errors_of(r);
    const auto after = std::stoll(*conn.scalar("SELECT count(*) FROM pgbench_history"));
    // Transactions finishing during the warm-up or after the end are not counted.
    EXPECT_GE(static_cast<std::uint64_t>(after - before), r.requests);
}

TEST(bench, connect_per_transaction_opens_a_connection_per_request) {
    b::workload_options w;
    b::load_options o;
    o.conninfo = direct_url();
    o.clients = 2;
    o.warmup = 0ms;
    o.duration = 1000ms;
    o.connect_per_transaction = true;
    b::load_generator g(o, b::make_workload(w, loaded()));
    const auto r = g.run();
    EXPECT_EQ(r.failures, 0u) << errors_of(r);
    EXPECT_GT(r.requests, 0u);
    EXPECT_GE(r.connections_opened, r.requests);
}

// "Not a hang": run() returns on its own (the test's own time limit is the guard); what it
// returns says why nothing was measured.
TEST(bench, a_target_that_is_down_shows_connect_failures_not_a_hang) {
    const auto r = run_load("postgresql://sluice_admin@127.0.0.1:" + std::to_string(b::pick_free_port()) +
                                "/sluice?sslmode=disable",
                            "select-only", b::protocol_mode::simple, 4, 1000ms);
    EXPECT_EQ(r.requests, 0u);
    EXPECT_GT(r.errors.count("connect_failed"), 0u) << errors_of(r);
    EXPECT_EQ(r.connections_opened, 0u);
}

TEST(bench, a_wrong_password_is_an_auth_failure) {
    auto& c = t::cluster();
    const auto r = run_load("postgresql://" + c.admin().name + ":wrong@127.0.0.1:" +
                                std::to_string(c.port(c.primary_index())) + "/sluice?sslmode=disable",
                            "select-only", b::protocol_mode::simple, 2, 500ms);
    EXPECT_EQ(r.requests, 0u);
    EXPECT_GT(r.errors.count("auth_failed"), 0u) << errors_of(r);
}

TEST(bench, a_pooler_killed_mid_run_shows_lost_connections_and_the_run_ends) {
    auto& c = t::cluster();
    const fs::path dir = c.work_dir() / ("bench-kill-" + std::to_string(::getpid()));
    auto spec = b::pgbouncer_for(c, dir);
    spec.persistent = false;
    auto bouncer = b::start_pgbouncer(spec);
    const std::string url = "postgresql://" + c.admin().name + ":" + c.admin().password + "@127.0.0.1:" +
                            std::to_string(bouncer->port()) + "/sluice?sslmode=disable";
    b::workload_options w;
    w.name = "select-only";
    b::load_options o;
    o.conninfo = url;
    o.clients = 4;
    o.warmup = 300ms;
    o.duration = 5000ms;
    o.connect_timeout = 3s;
    o.request_timeout = 5s;
    b::load_generator g(o, b::make_workload(w, loaded()));
    // Readiness from the run itself: the first second reported outside the warm-up with
    // requests served is when PgBouncer dies; the run then goes on to its end.
    bool killed = false;
    const auto r = g.run([&](const b::live_sample& s) {
        if (!killed && !s.warmup && s.point.requests > 0) {
            bouncer->kill_now();
            killed = true;
        }
    });
    ASSERT_TRUE(killed) << "no second of the measured window served a request";
    EXPECT_GT(r.requests, 0u);
    EXPECT_GT(r.errors.count("connection_lost") + r.errors.count("connect_failed"), 0u) << errors_of(r);
}

TEST(bench, run_command_writes_results_json_and_html) {
    const fs::path results = fs::temp_directory_path() / ("bench-results-" + std::to_string(::getpid()));
    loaded();
    std::vector<std::string> args{"bench", "run", "--targets", "direct=" + direct_url() + ",pgbouncer=" +
                                  t::pgbouncer().conninfo(t::cluster().admin().name, t::cluster().admin().password,
                                                          "sluice"),
                                  "--workload", "select-only", "--clients", "2", "--duration", "1s", "--warmup", "0",
                                  "--repeat", "2", "--pause", "0", "--quiet", "--results-dir", results.string()};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    testing::internal::CaptureStdout();
    const int status = b::run_bench_command(static_cast<int>(argv.size()), argv.data());
    const std::string out = testing::internal::GetCapturedStdout();
    ASSERT_EQ(status, 0) << out;
    EXPECT_NE(out.find("vs pgbouncer"), std::string::npos) << out;
    ASSERT_TRUE(fs::exists(results));
    const fs::path run_dir = fs::directory_iterator(results)->path();
    const auto run = b::load_run(run_dir);
    ASSERT_EQ(run.results.size(), 4u);  // 2 targets x 2 repeats, interleaved
    EXPECT_EQ(run.results[0].target, "direct");
    EXPECT_EQ(run.results[1].target, "pgbouncer");
    EXPECT_EQ(run.results[2].target, "direct");
    for (const auto& r : run.results) EXPECT_GT(r.requests, 0u) << r.target;
    EXPECT_EQ(run.config.targets.at(0).url.find(t::cluster().admin().password), std::string::npos) << "password saved";
    std::ifstream html(run_dir / "report.html");
    const std::string page((std::istreambuf_iterator<char>(html)), std::istreambuf_iterator<char>());
    EXPECT_NE(page.find("<svg"), std::string::npos);
    fs::remove_all(results);
}

// The stack's pgsluice (bench/stack.cpp's config) over the test cluster: `sluice` in front of
// the primary, `sluice_routed` over the primary and both replicas.
std::unique_ptr<t::pgsluice_process> start_stack_pgsluice() {
    auto& c = t::cluster();
    std::vector<std::uint16_t> replicas;
    for (auto i : c.replica_indexes())
        replicas.push_back(c.port(i));
    const std::vector<std::pair<std::string, std::string>> users{{c.admin().name, c.admin().password}};
    t::pgsluice_process::options o;
    o.probe = {c.admin().name, c.admin().password, b::routed_database(c.database())};
    o.config = [=, &c](std::uint16_t port) {
        return b::pgsluice_stack_config(port, c.port(c.primary_index()), c.database(), users, 4, 1000, replicas);
    };
    return std::make_unique<t::pgsluice_process>(std::move(o));
}

TEST(bench, read_after_write_through_pgsluice_routed_has_no_stale_reads_and_replicas_serve_reads) {
    auto& c = t::cluster();
    loaded();  // bench init: creates the read-after-write table too
    b::ensure_read_after_write_table(direct_url());
    auto sluice = start_stack_pgsluice();
    const std::string routed = sluice->conninfo(c.admin().name, c.admin().password, b::routed_database(c.database()));
    // Readiness: the lag monitor has sampled the replicas once a plain read lands on one.
    std::set<std::string> replica_ports;
    for (auto i : c.replica_indexes())
        replica_ports.insert(std::to_string(c.port(i)));
    {
        auto conn = t::connect(routed);
        bool on_replica = false;
        for (int i = 0; i < 400 && !on_replica; ++i) {
            on_replica = replica_ports.count(conn.scalar("SELECT inet_server_port()").value_or("")) != 0;
            if (!on_replica)
                std::this_thread::sleep_for(25ms);  // polling a readiness condition, not a fixed wait
        }
        ASSERT_TRUE(on_replica) << "no read through " << b::routed_database(c.database()) << " reached a replica";
    }

    std::vector<b::node_endpoint> nodes{{"primary", direct_url()}};
    for (auto i : c.replica_indexes())
        nodes.push_back({c.node(i).name, c.url(i, c.admin().name)});
    b::bench_target sluice_routed{"pgsluice-routed", routed + " connect_timeout=5", {sluice->pid()}, "pgsluice", nodes};
    b::bench_target pgpool{"pgpool", t::pgpool().conninfo(c.admin().name, c.admin().password, c.database()), {}, "",
                           nodes};
    b::run_plan raw;
    raw.workload.name = "read-after-write";
    raw.clients = 4;
    b::run_plan select = raw;
    select.workload.name = "select-only";
    b::bench_run run;
    run.id = "routed";
    run.config.targets = {{"pgsluice-routed", ""}, {"pgpool", ""}};
    run.config.duration_s = 1.5;
    b::runner_options ro;
    ro.load.warmup = 300ms;
    ro.load.duration = 1500ms;
    ro.load.connect_timeout = 5s;
    ro.load.request_timeout = 5s;
    ro.pause = 0ms;
    ro.live = false;
    std::ostringstream log;
    ro.out = &log;
    b::execute_plans(run, {sluice_routed, pgpool}, {raw, select}, loaded(), ro);
    ASSERT_EQ(run.results.size(), 4u) << log.str();

    const b::run_result& routed_raw = run.results[0];
    ASSERT_EQ(routed_raw.target, "pgsluice-routed");
    ASSERT_EQ(routed_raw.group.workload, "read-after-write");
    EXPECT_TRUE(routed_raw.reads_checked);
    EXPECT_GT(routed_raw.requests, 0u) << log.str();
    EXPECT_EQ(routed_raw.failures, 0u) << log.str();
    EXPECT_EQ(routed_raw.stale_reads, 0u) << "a read through pgsluice-routed missed its own write\n" << log.str();
    ASSERT_EQ(routed_raw.backend_activity.size(), 3u) << log.str();
    // Whatever Pgpool-II shows is reported, not judged; its reads were checked all the same.
    EXPECT_TRUE(run.results[1].reads_checked);
    EXPECT_GT(run.results[1].requests, 0u) << log.str();

    // The replicas served reads (select-only: no write in the way of read-your-writes).
    const b::run_result& routed_select = run.results[2];
    ASSERT_EQ(routed_select.target, "pgsluice-routed");
    EXPECT_EQ(routed_select.failures, 0u) << log.str();
    EXPECT_FALSE(routed_select.reads_checked);
    ASSERT_EQ(routed_select.backend_activity.size(), 3u);
    std::uint64_t replica_scans = 0;
    for (const auto& n : routed_select.backend_activity)
        if (n.node != "primary")
            replica_scans += n.scans;
    EXPECT_GT(replica_scans, 0u) << log.str();

    const auto rows = b::summarize(run);
    ASSERT_EQ(rows.size(), 4u);
    ASSERT_TRUE(rows[0].stale_reads.has_value());
    EXPECT_EQ(*rows[0].stale_reads, 0u);
    double replica_share = 0;
    for (const auto& s : rows[2].read_shares)
        if (s.node != "primary")
            replica_share += s.share;
    EXPECT_GT(replica_share, 0) << b::format_table(run);

    // The report: the stale column in the table, the HTML and results.json; the shares line.
    const std::string table = b::format_table(run);
    EXPECT_NE(table.find("  stale  "), std::string::npos) << table;
    EXPECT_NE(table.find("reads served by: primary "), std::string::npos) << table;
    const fs::path dir = fs::temp_directory_path() / ("bench-routed-" + std::to_string(::getpid()));
    const auto back = b::load_run(b::save_run(run, dir));
    EXPECT_EQ(back.results.at(0).stale_reads, 0u);
    EXPECT_TRUE(back.results.at(0).reads_checked);
    EXPECT_NE(b::render_html(back).find(">stale</th>"), std::string::npos);
    fs::remove_all(dir);
    std::cout << table;  // pgsluice-routed next to Pgpool-II, for the log
}

} // namespace

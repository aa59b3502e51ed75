// The failover bench's pure parts: client events to counts, held writes, recovery and timeline; the targets' detection lines; the report.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "bench/failover.hpp"

namespace {

namespace b = pgsluice::bench;
using namespace std::chrono_literals;

b::op_event write(std::int64_t start_ms, std::int64_t end_ms, bool ok, std::uint16_t port, std::int64_t key = 1) {
    return {start_ms * 1000, end_ms * 1000, b::op_kind::write, ok, key, port};
}
b::op_event read(std::int64_t start_ms, std::int64_t end_ms, bool ok, std::uint16_t port) {
    return {start_ms * 1000, end_ms * 1000, b::op_kind::read, ok, 0, port};
}

TEST(bench_failover, held_threshold_is_three_p99_and_at_least_100_ms) {
    EXPECT_DOUBLE_EQ(b::held_write_threshold_ms(2), 100);
    EXPECT_DOUBLE_EQ(b::held_write_threshold_ms(50), 150);
}

TEST(bench_failover, summary_counts_held_writes_recovery_and_buckets) {
    constexpr std::uint16_t old_port = 5000, new_port = 5001;
    std::vector<b::op_event> events;
    for (int i = 0; i < 20; ++i) events.push_back(write(i * 10, i * 10 + 2, true, old_port, i));  // 2 ms each
    events.push_back(write(300, 700, true, old_port, 50));  // slow, but before the kill: not held
    events.push_back(read(100, 101, true, old_port));
    // Killed at 1000 ms: a reply from the old primary read just after it does not count as
    // recovery; errors; then a write held 1.5 s that succeeds on the new primary.
    events.push_back(write(999, 1001, true, old_port, 100));
    events.push_back(read(1005, 1010, false, 0));
    events.push_back(write(1002, 1020, false, 0));
    events.push_back(write(1100, 2600, true, new_port, 101));
    events.push_back(write(2700, 2705, true, new_port, 102));
    const auto s = b::summarize_events(events, 1000 * 1000, old_port, 100ms, 3000ms);
    EXPECT_EQ(s.writes_ok, 24u);
    EXPECT_EQ(s.reads_ok, 1u);
    EXPECT_EQ(s.read_errors, 1u);
    EXPECT_EQ(s.write_errors, 1u);
    EXPECT_EQ(s.write_errors_after_kill, 1u);
    EXPECT_DOUBLE_EQ(s.write_p50_before_ms, 2);
    EXPECT_DOUBLE_EQ(s.write_p99_before_ms, 400);
    EXPECT_DOUBLE_EQ(s.held_threshold_ms, 1200);
    EXPECT_EQ(s.writes_held, 1u);
    ASSERT_TRUE(s.max_held_ms);
    EXPECT_DOUBLE_EQ(*s.max_held_ms, 1500);
    ASSERT_TRUE(s.first_write_after_kill_ms);
    EXPECT_DOUBLE_EQ(*s.first_write_after_kill_ms, 1600);
    ASSERT_TRUE(s.first_error_after_kill_ms);
    EXPECT_DOUBLE_EQ(*s.first_error_after_kill_ms, 10);
    ASSERT_EQ(s.timeline.size(), 30u);
    EXPECT_EQ(s.timeline[0].writes, 10u);
    EXPECT_EQ(s.timeline[1].reads, 1u);
    EXPECT_EQ(s.timeline[10].writes, 1u);      // the reply at 1001 ms
    EXPECT_EQ(s.timeline[10].read_errors, 1u);
    EXPECT_EQ(s.timeline[10].write_errors, 1u);
    EXPECT_EQ(s.timeline[7].writes, 1u);
    EXPECT_EQ(s.timeline[26].writes, 1u);
    EXPECT_EQ(s.timeline[29].t_ms, 2900u);
}

TEST(bench_failover, no_recovery_without_a_write_on_another_server) {
    std::vector<b::op_event> events{write(0, 1, true, 5000), write(500, 501, false, 0), read(600, 601, true, 5001)};
    const auto s = b::summarize_events(events, 400 * 1000, 5000, 100ms, 1000ms);
    EXPECT_FALSE(s.first_write_after_kill_ms);
    EXPECT_EQ(s.writes_held, 0u);
}

TEST(bench_failover, detection_lines_of_each_target) {
    EXPECT_TRUE(b::is_detection_line("haproxy", "[WARNING]  (1) : Server postgres/primary is DOWN, reason: Layer4 connection problem"));
    EXPECT_FALSE(b::is_detection_line("haproxy", "[NOTICE]   (1) : New worker (2) forked"));
    EXPECT_TRUE(b::is_detection_line("pgbouncer", "LOG S-0x1: sluice/a@127.0.0.1:1 closing because: server conn crashed? (age=1s)"));
    EXPECT_FALSE(b::is_detection_line("pgbouncer", "LOG C-0x1: sluice/a@127.0.0.1:1 login attempt: db=sluice user=a tls=no"));
    EXPECT_TRUE(b::is_detection_line("pgpool", "LOG:  received degenerate backend request for node_id: 0 from pid [1]"));
    EXPECT_TRUE(b::is_detection_line("pgpool", "FATAL:  unable to read data from DB node 0"));
    EXPECT_TRUE(b::is_detection_line("pgsluice", "2026-12-01 12:00:00.000 warning s14 login_failed error=\"could not connect: Connection refused\""));
    EXPECT_FALSE(b::is_detection_line("pgsluice", "2026-12-01 12:00:00.000 info listening on 127.0.0.1:6432"));
    EXPECT_FALSE(b::is_detection_line("unknown", "is DOWN"));
    const auto line = b::first_detection_line("haproxy", "[NOTICE] started\nServer postgres/primary is DOWN\nlast");
    ASSERT_TRUE(line);
    EXPECT_EQ(*line, "Server postgres/primary is DOWN");
    EXPECT_FALSE(b::first_detection_line("haproxy", "nothing\nhere\n"));
}

TEST(bench_failover, table_json_and_html_name_every_target) {
    b::failover_run run;
    run.id = "failover-test";
    run.options.targets = {"pgsluice", "pgbouncer"};
    run.options.duration = 2000ms;
    run.options.kill_at = 1000ms;
    b::failover_result ok;
    ok.target = "pgsluice";
    ok.ran = true;
    ok.kill_at_s = 1;
    ok.setup = "pgsluice, roles auto";
    ok.events = b::summarize_events({write(0, 1, true, 1, 7), write(1200, 1300, true, 2, 8)}, 1000 * 1000, 1, 100ms, 2000ms);
    ok.acknowledged_writes = 2;
    ok.detected_ms = 12;
    ok.detection_source = "log";
    ok.error_messages["FATAL:  terminating connection"] = 3;
    b::failover_result failed;
    failed.target = "pgbouncer";
    failed.problem = "pgbouncer: not installed";
    run.results = {ok, failed};
    const std::string table = b::format_failover_table(run);
    EXPECT_NE(table.find("pgsluice"), std::string::npos) << table;
    EXPECT_NE(table.find("300 ms"), std::string::npos) << "first write 300 ms after the kill:\n" << table;
    EXPECT_NE(table.find("12 ms (log)"), std::string::npos) << table;
    EXPECT_NE(table.find("pgbouncer: not installed"), std::string::npos) << table;
    EXPECT_NE(b::format_failover_timeline(run).find("1 kill"), std::string::npos);
    const auto j = nlohmann::json::parse(b::failover_to_json(run).dump());
    ASSERT_EQ(j.at("results").size(), 2u);
    EXPECT_EQ(j["results"][0]["first_write_after_kill_ms"], 300.0);
    EXPECT_EQ(j["results"][0]["timeline"].size(), 20u);
    EXPECT_FALSE(j["results"][1]["ran"].get<bool>());
    const std::string html = b::render_failover_html(run);
    EXPECT_NE(html.find("<svg"), std::string::npos);
    EXPECT_NE(html.find("did not run: pgbouncer: not installed"), std::string::npos);
}

} // namespace

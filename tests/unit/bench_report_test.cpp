// Unit tests for bench reports: medians and ratios, the text table, JSON round trip and the HTML charts (no network).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "bench/report.hpp"

namespace pgsluice::bench {
namespace {

// A result whose latencies are all `latency_us` and whose rate is `rps` over 10 s.
run_result result(const std::string& target, std::uint32_t clients, std::uint32_t repeat, double rps,
                  std::uint64_t latency_us, std::uint64_t failures = 0) {
  run_result r;
  r.target = target;
  r.group = {"select-only", "simple", clients, false};
  r.repeat = repeat;
  r.duration_s = 10;
  r.warmup_s = 2;
  r.requests = static_cast<std::uint64_t>(rps * 10);
  r.latency.record_n(latency_us * 1000, r.requests);
  r.failures = failures;
  if (failures) {
    r.errors["connect_failed"] = failures;
    r.error_samples["connect_failed"] = "Connection refused";
  }
  for (std::uint32_t s = 0; s < 12; ++s)
    r.timeline.push_back({s, static_cast<std::uint64_t>(rps), 0, latency_us / 1000.0, latency_us / 500.0, clients});
  return r;
}

bench_run sample_run() {
  bench_run run;
  run.id = "2026-11-21T14-03-00";
  run.started_at = "2026-11-21T14:03:00Z";
  run.machine.cores = 2;
  run.machine.ram_bytes = 24ull << 30;
  run.machine.cpu_model = "Test CPU";
  run.machine.versions = {{"pgbouncer", "PgBouncer 1.18.0"}};
  run.config.targets = {{"direct", "postgresql://u@127.0.0.1:1/db"},
                        {"pgbouncer", "postgresql://u@127.0.0.1:2/db"},
                        {"pgsluice", "postgresql://u@127.0.0.1:3/db"}};
  run.config.duration_s = 10;
  run.config.warmup_s = 2;
  run.config.repeat = 3;
  run.config.workloads = {"select-only"};
  run.config.protocols = {"simple"};
  run.config.clients = {10};
  // Interleaved repeats; the medians are 30000 / 20000 / 25000.
  const double direct[] = {30000, 29000, 31000}, bouncer[] = {20000, 21000, 10000}, sluice[] = {25000, 26000, 24000};
  for (std::uint32_t i = 0; i < 3; ++i) {
    run.results.push_back(result("direct", 10, i, direct[i], 300));
    run.results.push_back(result("pgbouncer", 10, i, bouncer[i], 450));
    run.results.push_back(result("pgsluice", 10, i, sluice[i], 380, i == 1 ? 7 : 0));
  }
  run.results.back().memory = memory_usage{12 * 1024, 10 * 1024, 1};
  return run;
}

TEST(bench_report, median_of_odd_even_and_empty) {
  EXPECT_EQ(median({3, 1, 2}), 2);
  EXPECT_EQ(median({4, 1, 3, 2}), 2.5);
  EXPECT_EQ(median({}), 0);
}

TEST(bench_report, summary_takes_medians_and_ratios_within_the_group) {
  const auto rows = summarize(sample_run());
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].target, "direct");
  EXPECT_EQ(rows[1].target, "pgbouncer");
  EXPECT_EQ(rows[2].target, "pgsluice");
  EXPECT_DOUBLE_EQ(rows[0].rps, 30000);
  EXPECT_DOUBLE_EQ(rows[1].rps, 20000);   // the 10000 outlier does not drag it down
  EXPECT_DOUBLE_EQ(rows[2].rps, 25000);
  EXPECT_DOUBLE_EQ(*rows[2].vs_pgbouncer, 1.25);
  EXPECT_NEAR(*rows[2].vs_direct, 25000.0 / 30000.0, 1e-12);
  EXPECT_DOUBLE_EQ(*rows[1].vs_pgbouncer, 1.0);
  EXPECT_NEAR(rows[2].p50_ms, 0.38, 0.38 * 0.01);
  EXPECT_EQ(rows[2].repeats, 3u);
  EXPECT_EQ(rows[2].errors.at("connect_failed"), 7u);  // summed over the repeats
  EXPECT_DOUBLE_EQ(rows[2].failures, 0);               // median of 0, 7, 0
  ASSERT_TRUE(rows[2].memory.has_value());
  EXPECT_EQ(rows[2].memory->rss_kb, 12u * 1024);
}

TEST(bench_report, no_ratio_column_value_without_the_reference_target) {
  bench_run run = sample_run();
  std::erase_if(run.results, [](const run_result& r) { return r.target == "pgbouncer"; });
  for (const auto& row : summarize(run)) {
    EXPECT_FALSE(row.vs_pgbouncer.has_value());
    EXPECT_TRUE(row.vs_direct.has_value());
  }
}

TEST(bench_report, groups_keep_their_own_ratios) {
  bench_run run = sample_run();
  run.results.push_back(result("direct", 100, 0, 1000, 5000));
  run.results.push_back(result("pgsluice", 100, 0, 2000, 2500));
  const auto rows = summarize(run);
  ASSERT_EQ(rows.size(), 5u);
  EXPECT_EQ(rows[3].group.clients, 100u);
  EXPECT_DOUBLE_EQ(*rows[4].vs_direct, 2.0);
  EXPECT_FALSE(rows[4].vs_pgbouncer.has_value());
}

TEST(bench_report, table_has_the_seed_columns_aligned) {
  const std::string table = format_table(sample_run());
  EXPECT_NE(table.find("select-only · simple · 10 clients  (median of 3 runs, 10 s each)"), std::string::npos);
  for (const char* column : {"target", "requests", "failures", "median ms", "average ms", "p95 ms", "p99 ms", "max ms",
                             "requests/s", "vs pgbouncer", "vs direct", "mem MiB"})
    EXPECT_NE(table.find(column), std::string::npos) << column;
  EXPECT_NE(table.find("1.25x"), std::string::npos);
  EXPECT_NE(table.find("failures: connect_failed 7"), std::string::npos);
  // Every data line of the block has the same width as the header.
  std::istringstream lines(table);
  std::string line, header;
  std::getline(lines, line);
  std::getline(lines, header);
  for (int i = 0; i < 3 && std::getline(lines, line);) {
    if (line.find("failures:") != std::string::npos) continue;
    EXPECT_EQ(line.size(), header.size()) << line;
    ++i;
  }
}

TEST(bench_report, live_line_shows_rate_percentiles_and_errors) {
  live_sample s;
  s.point = {4, 21034, 3, 0.41, 1.9, 100};
  s.warmup = true;
  const std::string line = format_live_line("pgbouncer", 100, s);
  EXPECT_NE(line.find("[   5s] pgbouncer"), std::string::npos) << line;
  EXPECT_NE(line.find("tps    21034"), std::string::npos) << line;
  EXPECT_NE(line.find("p99     1.90 ms"), std::string::npos) << line;
  EXPECT_NE(line.find("err      3"), std::string::npos) << line;
  EXPECT_NE(line.find("(warm-up)"), std::string::npos) << line;
}

TEST(bench_report, json_round_trip_keeps_results_and_summary) {
  const bench_run run = sample_run();
  const nlohmann::json j = to_json(run);
  EXPECT_EQ(j.at("summary").size(), 3u);
  EXPECT_EQ(j.at("results").at(0).at("timeline").size(), 12u);
  EXPECT_NEAR(j.at("results").at(0).at("latency").at("percentiles_ms").at("p99").get<double>(), 0.3, 0.003);
  const bench_run back = bench_run_from_json(nlohmann::json::parse(j.dump()));
  EXPECT_EQ(back.id, run.id);
  EXPECT_EQ(back.machine.versions, run.machine.versions);
  EXPECT_EQ(back.config.targets.size(), 3u);
  ASSERT_EQ(back.results.size(), run.results.size());
  for (std::size_t i = 0; i < run.results.size(); ++i) {
    EXPECT_EQ(back.results[i].target, run.results[i].target);
    EXPECT_EQ(back.results[i].group, run.results[i].group);
    EXPECT_EQ(back.results[i].requests, run.results[i].requests);
    EXPECT_EQ(back.results[i].errors, run.results[i].errors);
    EXPECT_EQ(back.results[i].latency.percentile(99), run.results[i].latency.percentile(99));
    EXPECT_EQ(back.results[i].latency.max(), run.results[i].latency.max());
    EXPECT_EQ(back.results[i].timeline.size(), run.results[i].timeline.size());
    EXPECT_EQ(back.results[i].memory.has_value(), run.results[i].memory.has_value());
  }
  EXPECT_EQ(format_table(back), format_table(run));
}

TEST(bench_report, save_and_load_through_a_directory) {
  const auto dir = std::filesystem::temp_directory_path() / ("bench_report_test_" + std::to_string(::getpid()));
  const auto file = save_run(sample_run(), dir / "2026-11-21T14-03-00");
  EXPECT_TRUE(std::filesystem::exists(file));
  EXPECT_EQ(load_run(dir / "2026-11-21T14-03-00").results.size(), 9u);
  EXPECT_EQ(load_run(file).id, "2026-11-21T14-03-00");
  EXPECT_THROW(load_run(dir / "missing"), std::runtime_error);
  std::ofstream(dir / "bad.json") << "{\"format\": \"something else\"}";
  EXPECT_THROW(load_run(dir / "bad.json"), std::runtime_error);
  std::filesystem::remove_all(dir);
}

TEST(bench_report, html_is_self_contained_with_svg_charts) {
  const std::string html = render_html(sample_run());
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_NE(html.find("<svg"), std::string::npos);
  EXPECT_NE(html.find("<polyline"), std::string::npos);       // throughput over time
  EXPECT_NE(html.find("<rect"), std::string::npos);           // bar charts
  EXPECT_NE(html.find("Requests per second"), std::string::npos);
  EXPECT_NE(html.find("Latency percentiles"), std::string::npos);
  EXPECT_NE(html.find("Throughput over time"), std::string::npos);
  EXPECT_NE(html.find("pgsluice"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("<link"), std::string::npos);           // nothing fetched
}

TEST(bench_report, html_escapes_names) {
  bench_run run = sample_run();
  for (auto& r : run.results)
    if (r.target == "pgsluice") r.target = "<b>x</b>";
  const std::string html = render_html(run);
  EXPECT_EQ(html.find("<b>x</b>"), std::string::npos);
  EXPECT_NE(html.find("&lt;b&gt;x&lt;/b&gt;"), std::string::npos);
}

TEST(bench_report, comparison_of_two_runs) {
  bench_run before = sample_run();
  bench_run now = sample_run();
  now.id = "2026-11-22T10-00-00";
  for (auto& r : now.results)
    if (r.target == "pgsluice") r.requests *= 2;
  const std::string text = format_comparison(now, before);
  EXPECT_NE(text.find("+100.0%"), std::string::npos) << text;
  const std::string html = render_html(now, &before);
  EXPECT_NE(html.find("Compared with run 2026-11-21T14-03-00"), std::string::npos);
  EXPECT_NE(html.find("+100.0%"), std::string::npos);
}

TEST(bench_report, passwords_are_redacted) {
  EXPECT_EQ(redact_conninfo("postgresql://bob:s3cret@127.0.0.1:5432/db?sslmode=disable"),
            "postgresql://bob@127.0.0.1:5432/db?sslmode=disable");
  EXPECT_EQ(redact_conninfo("postgresql://bob@h/db?password=x&sslmode=disable"), "postgresql://bob@h/db?sslmode=disable");
  EXPECT_EQ(redact_conninfo("host=h user=bob password='a b' dbname=d"), "host=h user=bob dbname=d");
  EXPECT_EQ(redact_conninfo("host=h password=x"), "host=h");
}

// read-after-write through two targets, 3 repeats: stale reads and per-server activity.
bench_run routed_run() {
  bench_run run;
  run.id = "2026-12-01T10-00-00";
  run.config.targets = {{"pgpool", "postgresql://u@127.0.0.1:2/db"}, {"pgsluice-routed", "postgresql://u@127.0.0.1:3/db"}};
  run.config.duration_s = 10;
  run.config.repeat = 3;
  const std::uint64_t pgpool_stale[] = {0, 40, 2};
  for (std::uint32_t i = 0; i < 3; ++i) {
    run_result p = result("pgpool", 10, i, 2000, 900);
    p.group.workload = "read-after-write";
    p.reads_checked = true;
    p.stale_reads = pgpool_stale[i];
    p.backend_activity = {{"primary", 100, 500}, {"replica_1", 50, 60}, {"replica_2", 50, 60}};
    run_result s = result("pgsluice-routed", 10, i, 2500, 700);
    s.group.workload = "read-after-write";
    s.reads_checked = true;
    s.backend_activity = {{"primary", 300, 600}, {"replica_1", 0, 10}, {"replica_2", 100, 110}};
    run.results.push_back(p);
    run.results.push_back(s);
  }
  return run;
}

TEST(bench_report, activity_is_the_difference_per_node_and_never_negative) {
  const std::vector<node_activity> before{{"primary", 10, 100}, {"replica_1", 500, 50}, {"replica_2", 7, 7}};
  const std::vector<node_activity> after{{"primary", 25, 130}, {"replica_1", 20, 60}, {"replica_3", 9, 9}};
  const auto d = activity_between(before, after);
  ASSERT_EQ(d.size(), 2u);  // replica_2 missing after, replica_3 missing before
  EXPECT_EQ(d[0].node, "primary");
  EXPECT_EQ(d[0].scans, 15u);
  EXPECT_EQ(d[0].xacts, 30u);
  EXPECT_EQ(d[1].node, "replica_1");
  EXPECT_EQ(d[1].scans, 0u);  // counters reset in between
  EXPECT_EQ(d[1].xacts, 10u);
}

TEST(bench_report, read_shares_sum_the_repeats_per_node) {
  const std::vector<node_activity> a{{"primary", 10, 0}, {"replica_1", 30, 0}};
  const std::vector<node_activity> b{{"primary", 0, 0}, {"replica_1", 40, 0}, {"replica_2", 20, 0}};
  const auto shares = read_shares({&a, &b});
  ASSERT_EQ(shares.size(), 3u);
  EXPECT_EQ(shares[0].node, "primary");
  EXPECT_EQ(shares[1].scans, 70u);
  EXPECT_DOUBLE_EQ(shares[0].share, 0.1);
  EXPECT_DOUBLE_EQ(shares[1].share, 0.7);
  EXPECT_DOUBLE_EQ(shares[2].share, 0.2);
  EXPECT_EQ(format_read_shares(shares), "primary 10% · replica_1 70% · replica_2 20%");
  const std::vector<node_activity> idle{{"primary", 0, 3}, {"replica_1", 0, 3}};
  for (const auto& s : read_shares({&idle})) EXPECT_EQ(s.share, 0) << s.node;
  EXPECT_TRUE(read_shares({}).empty());
}

TEST(bench_report, stale_reads_are_summed_over_repeats_and_absent_when_not_checked) {
  const auto rows = summarize(routed_run());
  ASSERT_EQ(rows.size(), 2u);
  ASSERT_TRUE(rows[0].stale_reads.has_value());
  EXPECT_EQ(*rows[0].stale_reads, 42u);  // 0 + 40 + 2: one stale read is one too many, no median
  EXPECT_DOUBLE_EQ(rows[0].failures, 0);  // stale reads are not failures
  ASSERT_TRUE(rows[1].stale_reads.has_value());
  EXPECT_EQ(*rows[1].stale_reads, 0u);
  ASSERT_EQ(rows[1].read_shares.size(), 3u);
  EXPECT_DOUBLE_EQ(rows[1].read_shares[0].share, 0.75);
  EXPECT_DOUBLE_EQ(rows[1].read_shares[1].share, 0.0);
  EXPECT_DOUBLE_EQ(rows[1].read_shares[2].share, 0.25);
  // select-only does not check its reads: no stale count, and no shares where not sampled.
  for (const auto& row : summarize(sample_run())) {
    EXPECT_FALSE(row.stale_reads.has_value()) << row.target;
    EXPECT_TRUE(row.read_shares.empty()) << row.target;
  }
}

TEST(bench_report, table_shows_the_stale_column_and_the_read_shares) {
  const std::string table = format_table(routed_run());
  std::istringstream lines(table);
  std::string title, header, pgpool, shares;
  std::getline(lines, title);
  std::getline(lines, header);
  std::getline(lines, pgpool);
  std::getline(lines, shares);
  const auto column = header.find("stale");
  ASSERT_NE(column, std::string::npos) << table;
  EXPECT_LT(header.find("failures"), column);
  EXPECT_EQ(pgpool.substr(column, 5), "   42") << table;  // right-aligned under its header
  EXPECT_EQ(pgpool.size(), header.size());
  EXPECT_NE(shares.find("reads served by: primary 50% · replica_1 25% · replica_2 25%"), std::string::npos) << table;
  EXPECT_NE(table.find("\nstale: reads that missed the row"), std::string::npos) << table;
  // A workload that does not check its reads shows "-".
  const std::string plain = format_table(sample_run());
  std::istringstream plain_lines(plain);
  std::getline(plain_lines, title);
  std::getline(plain_lines, header);
  std::string direct;
  std::getline(plain_lines, direct);
  EXPECT_EQ(direct.substr(header.find("stale"), 5), "    -") << plain;
}

TEST(bench_report, stale_reads_and_activity_survive_json_and_reach_the_html) {
  const bench_run run = routed_run();
  const nlohmann::json j = to_json(run);
  EXPECT_EQ(j.at("results").at(2).at("stale_reads"), 40);
  EXPECT_EQ(j.at("results").at(1).at("backend_activity").at(2).at("node"), "replica_2");
  EXPECT_EQ(j.at("summary").at(0).at("stale_reads"), 42);
  EXPECT_DOUBLE_EQ(j.at("summary").at(1).at("read_shares").at(0).at("share").get<double>(), 0.75);
  EXPECT_TRUE(to_json(sample_run()).at("summary").at(0).at("stale_reads").is_null());
  const bench_run back = bench_run_from_json(j);
  ASSERT_EQ(back.results.size(), run.results.size());
  EXPECT_EQ(back.results[2].stale_reads, 40u);
  EXPECT_TRUE(back.results[2].reads_checked);
  ASSERT_EQ(back.results[1].backend_activity.size(), 3u);
  EXPECT_EQ(back.results[1].backend_activity[0].scans, 300u);
  EXPECT_EQ(format_table(back), format_table(run));
  const std::string html = render_html(run);
  EXPECT_NE(html.find("<th title=\"reads that missed"), std::string::npos);
  EXPECT_NE(html.find("<td class=\"stale bad\">42</td>"), std::string::npos);
  EXPECT_NE(html.find("reads served by: "), std::string::npos);
  EXPECT_NE(html.find("replica_2 25.0%"), std::string::npos);
}

TEST(bench_report, result_line_and_live_line_show_stale_reads) {
  const bench_run run = routed_run();
  const std::string line = format_result_line(run.results[2]);
  EXPECT_NE(line.find(", 40 stale reads"), std::string::npos) << line;
  EXPECT_NE(line.find("reads served by primary 50%"), std::string::npos) << line;
  EXPECT_EQ(format_result_line(sample_run().results[0]).find("stale"), std::string::npos);
  live_sample s;
  s.point.stale_reads = 3;
  EXPECT_NE(format_live_line("pgpool", 10, s).find("stale 3"), std::string::npos);
}

}  // namespace
}  // namespace pgsluice::bench

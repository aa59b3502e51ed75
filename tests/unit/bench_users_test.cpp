// Unit tests for runs of users: option parsing and its messages, the Locust-style table and CSV files, and `report A B` (no network).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

#include "bench/cli.hpp"
#include "bench/cli_options.hpp"
#include "bench/engine.hpp"
#include "bench/report.hpp"
#include "bench/report_users.hpp"
#include "tests/unit/bench_run_command.hpp"

namespace pgsluice::bench {
namespace {

namespace fs = std::filesystem;

template <class T>
std::string error_of(const parsed<T>& p) {
  const std::string* e = parse_error(p);
  return e ? *e : std::string();
}

TEST(bench_users_options, users_spawn_rate_wait_and_read_ratio) {
  EXPECT_EQ(std::get<0>(parse_user_count("1000")), 1000u);
  EXPECT_EQ(std::get<0>(parse_user_count("10000")), 10000u);
  for (const char* bad : {"0", "-5", "10001", "1e3", "ten", "", "2.5"})
    EXPECT_EQ(error_of(parse_user_count(bad)), std::string("--users: '") + bad + "' is not a whole number from 1 to 10000")
        << bad;
  EXPECT_EQ(std::get<0>(parse_spawn_rate("10")), 10.0);
  EXPECT_EQ(std::get<0>(parse_spawn_rate("0.5")), 0.5);
  for (const char* bad : {"0", "-1", "fast", "20000"})
    EXPECT_NE(error_of(parse_spawn_rate(bad)).find(std::string("--spawn-rate: '") + bad + "' is not a number of users"),
              std::string::npos)
        << bad;
  EXPECT_EQ(std::get<0>(parse_wait("1s..2s")), (std::pair{millis(1000), millis(2000)}));
  EXPECT_EQ(std::get<0>(parse_wait("10ms..20ms")), (std::pair{millis(10), millis(20)}));
  EXPECT_EQ(std::get<0>(parse_wait("1..2")), (std::pair{millis(1000), millis(2000)}));
  EXPECT_EQ(std::get<0>(parse_wait("500ms")), (std::pair{millis(500), millis(500)}));
  EXPECT_EQ(std::get<0>(parse_wait("0")), (std::pair{millis(0), millis(0)}));
  EXPECT_EQ(error_of(parse_wait("2s..1s")), "--wait: '2s..1s': the minimum is longer than the maximum");
  for (const char* bad : {"1s-2s", "1s..", "..2s", "soon", "1s..2s..3s", "-1s..2s"})
    EXPECT_EQ(error_of(parse_wait(bad)),
              std::string("--wait: '") + bad + "' is not MIN..MAX (e.g. 1s..2s, 500ms..1500ms, or 0 for no wait)")
        << bad;
  EXPECT_NE(error_of(parse_wait("1s..2h")).find("longer than an hour"), std::string::npos);
  EXPECT_DOUBLE_EQ(std::get<0>(parse_read_ratio("80")), 0.8);
  EXPECT_DOUBLE_EQ(std::get<0>(parse_read_ratio("80%")), 0.8);
  EXPECT_DOUBLE_EQ(std::get<0>(parse_read_ratio("0.8")), 0.8);
  EXPECT_DOUBLE_EQ(std::get<0>(parse_read_ratio("1")), 1.0);
  EXPECT_DOUBLE_EQ(std::get<0>(parse_read_ratio("0")), 0.0);
  for (const char* bad : {"101", "-5", "most", "%", "0.5.5"})
    EXPECT_EQ(error_of(parse_read_ratio(bad)),
              std::string("--read-ratio: '") + bad + "' is not a share of reads (0..1, or a percentage such as 80)")
        << bad;
}

using testing_support::bench;

fs::path write_file(const std::string& name, const std::string& text) {
  const fs::path p = fs::temp_directory_path() / (name + "-" + std::to_string(::getpid()));
  std::ofstream(p) << text;
  return p;
}

TEST(bench_users_cli, bad_users_options_fail_with_status_2_naming_the_option_before_connecting) {
  // Targets on a closed port: had validation come late, these would try to connect.
  const std::string target = "--targets=x=postgresql://u@127.0.0.1:1/d";
  const fs::path bad_sql = write_file("bad.sql", "-- weight: 2\nSELECT 1;\n-- weight: many\nSELECT 2;\n");
  struct bad_case {
    std::vector<std::string> args;
    std::string message;
  };
  const std::vector<bad_case> cases{
      {{"run", target, "--users", "0"}, "--users: '0' is not a whole number from 1 to 10000"},
      {{"run", target, "--users", "-3"}, "--users: '-3' is not a whole number from 1 to 10000"},
      {{"run", target, "--users", "10", "--spawn-rate", "0"}, "--spawn-rate: '0' is not a number of users started"},
      {{"run", target, "--users", "10", "--spawn-rate", "-2"}, "--spawn-rate: '-2' is not a number"},
      {{"run", target, "--users", "10", "--wait", "1s-2s"}, "--wait: '1s-2s' is not MIN..MAX"},
      {{"run", target, "--users", "10", "--wait", "2s..1s"}, "the minimum is longer than the maximum"},
      {{"run", target, "--users", "10", "--run-time", "0"}, "--run-time must be longer than 0"},
      {{"run", target, "--users", "10", "--run-time", "later"}, "--run-time: 'later' is not a duration"},
      {{"run", target, "--users", "10", "--clients", "5"}, "--users and --clients exclude each other"},
      {{"run", target, "--users", "10", "--warmup", "2s"}, "--users and --warmup exclude each other"},
      {{"run", target, "--spawn-rate", "5"}, "--spawn-rate needs --users"},
      {{"run", target, "--users", "10", "-w", "readz"}, "unknown workload 'readz'"},
      {{"run", target, "--users", "10", "-w", "mixed", "--read-ratio", "180"}, "--read-ratio: '180' is not a share"},
      {{"run", target, "--sql-file", "/nonexistent/x.sql"}, "--sql-file: cannot read /nonexistent/x.sql"},
      {{"run", target, "--sql-file", bad_sql.string()}, bad_sql.string() + ":3: -- weight: 'many' is not a whole number"},
      {{"run", target, "--sql-file", bad_sql.string(), "-w", "read"}, "--sql-file and --workload exclude each other"},
  };
  for (const auto& c : cases) {
    const auto [status, err] = bench(c.args);
    EXPECT_EQ(status, 2) << c.args[2] << " " << err;
    EXPECT_NE(err.find(c.message), std::string::npos) << "stderr: " << err;
  }
  fs::remove(bad_sql);
}

TEST(bench_users_cli, the_engine_validates_as_the_command_does) {
  run_request r;
  r.targets = "x=postgresql://u@127.0.0.1:1/d";
  r.users = "1000";
  r.spawn_rate = "50";
  r.run_time = "60s";
  r.wait = "1s..2s";
  r.workloads = "mixed";
  r.read_ratio = "80";
  EXPECT_EQ(validate_run_request(r), "");
  r.wait = "1s..";
  EXPECT_NE(validate_run_request(r).find("--wait: '1s..' is not MIN..MAX"), std::string::npos);
  r.wait = "";
  r.users = "20000";
  const auto outcome = run_benchmark(r, {}, nullptr, nullptr);
  EXPECT_EQ(outcome.status, 2);
  EXPECT_EQ(outcome.error, "--users: '20000' is not a whole number from 1 to 10000");
  EXPECT_TRUE(outcome.dir.empty());
}

// A run of users with two targets and two kinds of request.
bench_run users_run() {
  bench_run run;
  run.id = "2026-12-01T13-00-00";
  run.config.targets = {{"pgbouncer", ""}, {"pgsluice", ""}};
  run.config.users = 100;
  run.config.spawn_rate = 10;
  run.config.wait_min_s = 1;
  run.config.wait_max_s = 2;
  run.config.duration_s = 10;
  run.config.workloads = {"mixed"};
  for (const auto& [target, factor] : {std::pair{"pgbouncer", 1}, {"pgsluice", 2}}) {
    run_result r;
    r.target = target;
    r.group = {"mixed", "simple", 100, false, true};
    r.duration_s = 10;
    r.started_unix = 1764594000;
    request_stats read{{"read", "latest-purchases"}, 800u * factor, 2, {}, {{"query_error:57014", 2}}};
    read.latency.record_n(2'000'000, read.requests);
    request_stats write{{"write", "insert-purchase"}, 200u * factor, 0, {}, {}};
    write.latency.record_n(4'000'000, write.requests);
    r.by_request = {read, write};
    r.requests = read.requests + write.requests;
    r.failures = 2;
    r.errors = {{"query_error:57014", 2}};
    r.error_samples = {{"query_error:57014", "canceling statement due to statement timeout"}};
    r.latency.merge(read.latency);
    r.latency.merge(write.latency);
    timeline_builder b;
    for (std::uint32_t s = 0; s < 10; ++s) {
      latency_histogram h;
      h.record_n(2'000'000, 100u * factor);
      timeline_point p = b.add(s, h, 100u * factor, s == 3 ? 2 : 0);
      p.users = std::min<std::uint32_t>(100, (s + 1) * 10);
      r.timeline.push_back(p);
    }
    run.results.push_back(std::move(r));
  }
  return run;
}

std::vector<std::string> split_line(const std::string& line) {
  std::vector<std::string> out;
  std::string field;
  std::istringstream in(line);
  while (std::getline(in, field, ',')) out.push_back(field);
  return out;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

TEST(bench_users_csv, stats_csv_has_locust_columns_and_rows) {
  const bench_run run = users_run();
  const auto rows = request_rows(run, run.results[0].group, "pgbouncer");
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows.back().name, "Aggregated");
  EXPECT_EQ(rows.back().requests, 1002u);  // failed requests count as requests, as in Locust
  const auto lines = lines_of(locust_stats_csv(rows));
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[0],
            "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Min Response Time,"
            "Max Response Time,Average Content Size,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,"
            "99.99%,100%");
  const auto read = split_line(lines[1]);
  ASSERT_EQ(read.size(), 22u);
  EXPECT_EQ(read[0], "read");
  EXPECT_EQ(read[1], "latest-purchases");
  EXPECT_EQ(read[2], "802");
  EXPECT_EQ(read[3], "2");
  EXPECT_NEAR(std::stod(read[4]), 2.0, 0.02);     // ms
  EXPECT_NEAR(std::stod(read[9]), 80.2, 0.001);   // requests/s over the 10 s
  EXPECT_EQ(split_line(lines[3])[1], "Aggregated");
  EXPECT_EQ(split_line(lines[3])[0], "");
}

TEST(bench_users_csv, history_csv_has_one_aggregated_row_per_second_with_running_totals) {
  const bench_run run = users_run();
  const auto lines = lines_of(locust_history_csv(run.results[1]));
  ASSERT_EQ(lines.size(), 11u);
  EXPECT_EQ(lines[0],
            "Timestamp,User Count,Type,Name,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%,"
            "Total Request Count,Total Failure Count,Total Median Response Time,Total Average Response Time,"
            "Total Min Response Time,Total Max Response Time,Total Average Content Size");
  const auto first = split_line(lines[1]);
  ASSERT_EQ(first.size(), 24u);
  EXPECT_EQ(first[0], "1764594001");
  EXPECT_EQ(first[1], "10");
  EXPECT_EQ(first[3], "Aggregated");
  EXPECT_EQ(std::stod(first[4]), 200.0);
  const auto last = split_line(lines[10]);
  EXPECT_EQ(last[1], "100");
  EXPECT_EQ(last[17], "2002");  // 10 x 200 successes + 2 failures
  EXPECT_EQ(last[18], "2");
  EXPECT_NEAR(std::stod(last[19]), 2.0, 0.02);
}

TEST(bench_users_csv, failures_csv_and_the_files_on_disk) {
  const bench_run run = users_run();
  const auto rows = request_rows(run, run.results[0].group, "pgbouncer");
  const auto lines = lines_of(locust_failures_csv(rows, &run.results[0]));
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], "Method,Name,Error,Occurrences");
  EXPECT_EQ(lines[1], "read,latest-purchases,query_error:57014: canceling statement due to statement timeout,2");
  const fs::path dir = fs::temp_directory_path() / ("bench-users-csv-" + std::to_string(::getpid()));
  const auto files = write_locust_csv(run, dir);
  EXPECT_EQ(files.size(), 6u);
  for (const char* f : {"pgbouncer_stats.csv", "pgbouncer_stats_history.csv", "pgbouncer_failures.csv",
                        "pgsluice_stats.csv", "pgsluice_stats_history.csv", "pgsluice_failures.csv"})
    EXPECT_TRUE(fs::exists(dir / f)) << f;
  fs::remove_all(dir);
}

TEST(bench_users_report, table_is_locusts_with_p95_p99_and_ratios_between_targets) {
  const std::string table = format_users_table(users_run());
  for (const char* column : {"Type", "Name", "# requests", "# fails", "Median", "Average", "Min", "Max", "req/s",
                             "failures/s", "p95", "p99"})
    EXPECT_NE(table.find(column), std::string::npos) << column << "\n" << table;
  EXPECT_NE(table.find("== mixed · simple · 100 users · pgsluice"), std::string::npos) << table;
  EXPECT_NE(table.find("latest-purchases"), std::string::npos);
  EXPECT_NE(table.find("Aggregated"), std::string::npos);
  EXPECT_NE(table.find("2(0.25%)"), std::string::npos) << table;  // 2 of 802
  EXPECT_NE(table.find("targets compared"), std::string::npos);
  EXPECT_NE(table.find("vs pgbouncer"), std::string::npos);
  EXPECT_NE(table.find("2.00x"), std::string::npos) << table;  // pgsluice served twice as much
  EXPECT_NE(table.find("0.50x"), std::string::npos) << table;
  bench_run stopped = users_run();
  stopped.complete = false;
  EXPECT_NE(format_users_table(stopped).find("INCOMPLETE"), std::string::npos);
}

TEST(bench_users_report, json_keeps_users_requests_by_kind_and_the_timeline) {
  bench_run run = users_run();
  run.complete = false;
  const auto back = bench_run_from_json(to_json(run));
  EXPECT_FALSE(back.complete);
  EXPECT_EQ(back.config.users, 100u);
  EXPECT_EQ(back.config.wait_max_s, 2);
  ASSERT_EQ(back.results.size(), 2u);
  EXPECT_TRUE(back.results[0].group.users);
  ASSERT_EQ(back.results[0].by_request.size(), 2u);
  EXPECT_EQ(back.results[0].by_request[0].kind.name, "latest-purchases");
  EXPECT_EQ(back.results[0].by_request[0].errors.at("query_error:57014"), 2u);
  EXPECT_EQ(back.results[0].timeline.at(9).users, 100u);
  EXPECT_EQ(back.results[0].timeline.at(9).total_requests, 1000u);
  EXPECT_EQ(locust_history_csv(back.results[1]), locust_history_csv(run.results[1]));
}

TEST(bench_users_report, side_by_side_comparison_of_two_runs) {
  const bench_run a = users_run();
  bench_run b = users_run();
  b.id = "2026-12-01T14-00-00";
  for (auto& r : b.results)
    if (r.target == "pgsluice") r.requests = r.requests * 3 / 2;
  b.results.pop_back();
  b.results.front().target = "pgsluice";   // B ran pgsluice only
  const std::string text = format_side_by_side(a, b);
  EXPECT_NE(text.find("A: 2026-12-01T13-00-00  (100 users at 10/s, wait 1..2 s, 10 s · mixed)"), std::string::npos)
      << text;
  EXPECT_NE(text.find("req/s A"), std::string::npos);
  EXPECT_NE(text.find("-50.0%"), std::string::npos) << text;  // pgsluice: 200/s in A, 100/s in B
  // pgbouncer ran in A only: its B side is "-".
  const auto at = text.find("\npgbouncer");
  ASSERT_NE(at, std::string::npos) << text;
  EXPECT_NE(text.substr(at, text.find('\n', at + 1) - at).find(" - "), std::string::npos) << text;
  const std::string html = render_comparison_html(a, b);
  EXPECT_NE(html.find("<svg"), std::string::npos);
  EXPECT_NE(html.find("-50.0%"), std::string::npos);
  EXPECT_NE(html.find("class=\"worse\""), std::string::npos);
}

TEST(bench_users_report, report_a_b_writes_the_comparison_page) {
  const fs::path dir = fs::temp_directory_path() / ("bench-users-report-" + std::to_string(::getpid()));
  bench_run b = users_run();
  b.id = "2026-12-01T14-00-00";
  save_run(users_run(), dir / "a");
  save_run(b, dir / "b");
  const auto [status, err] = bench({"report", (dir / "a").string(), (dir / "b" / "results.json").string()});
  EXPECT_EQ(status, 0) << err;
  EXPECT_TRUE(fs::exists(dir / "a" / "compare-2026-12-01T13-00-00-2026-12-01T14-00-00.html"));
  // One run: the Locust files again, from results.json.
  EXPECT_EQ(bench({"report", (dir / "b").string()}).first, 0);
  EXPECT_TRUE(fs::exists(dir / "b" / "pgsluice_stats_history.csv"));
  const auto [bad, message] = bench({"report", (dir / "a").string(), (dir / "missing").string()});
  EXPECT_EQ(bad, 1);
  EXPECT_NE(message.find("cannot read"), std::string::npos) << message;
  fs::remove_all(dir);
}

}  // namespace
}  // namespace pgsluice::bench

// Unit tests for `pgsluice bench` argument parsing and validation (no network: bad arguments fail before any connection).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "bench/cli.hpp"
#include "bench/cli_options.hpp"
#include "bench/stack.hpp"
#include "tests/unit/bench_run_command.hpp"
#include "conf/config.hpp"

namespace pgsluice::bench {
namespace {

template <class T>
std::string error_of(const parsed<T>& p) {
  const std::string* e = parse_error(p);
  return e ? *e : std::string();
}

TEST(bench_cli_options, client_counts) {
  EXPECT_EQ(std::get<0>(parse_client_counts("10")), std::vector<std::uint32_t>{10});
  EXPECT_EQ(std::get<0>(parse_client_counts("1, 100,10000")), (std::vector<std::uint32_t>{1, 100, 10000}));
  EXPECT_EQ(error_of(parse_client_counts("0")), "--clients: '0' is not a whole number from 1 to 10000");
  EXPECT_EQ(error_of(parse_client_counts("10001")), "--clients: '10001' is not a whole number from 1 to 10000");
  EXPECT_EQ(error_of(parse_client_counts("ten")), "--clients: 'ten' is not a whole number from 1 to 10000");
  EXPECT_EQ(error_of(parse_client_counts("-5")), "--clients: '-5' is not a whole number from 1 to 10000");
  EXPECT_EQ(error_of(parse_client_counts("99999999999999")),
            "--clients: '99999999999999' is not a whole number from 1 to 10000");
  EXPECT_EQ(error_of(parse_client_counts("10,,20")), "--clients: empty item in '10,,20'");
  EXPECT_EQ(error_of(parse_client_counts("10,10")), "--clients: '10' is listed twice");
}

TEST(bench_cli_options, durations_default_to_seconds) {
  EXPECT_EQ(std::get<0>(parse_bench_duration("--duration", "20", false)), millis(20000));
  EXPECT_EQ(std::get<0>(parse_bench_duration("--duration", "20s", false)), millis(20000));
  EXPECT_EQ(std::get<0>(parse_bench_duration("--duration", "500ms", false)), millis(500));
  EXPECT_EQ(std::get<0>(parse_bench_duration("--duration", "2min", false)), millis(120000));
  EXPECT_EQ(std::get<0>(parse_bench_duration("--warmup", "0", true)), millis(0));
  EXPECT_EQ(error_of(parse_bench_duration("--duration", "0", false)), "--duration must be longer than 0");
  EXPECT_NE(error_of(parse_bench_duration("--duration", "soon", false)).find("'soon' is not a duration"), std::string::npos);
  EXPECT_NE(error_of(parse_bench_duration("--duration", "2d", false)).find("longer than a day"), std::string::npos);
}

TEST(bench_cli_options, protocols) {
  const auto modes = std::get<0>(parse_protocols("simple,prepared"));
  ASSERT_EQ(modes.size(), 2u);
  EXPECT_EQ(modes[1], protocol_mode::prepared);
  EXPECT_EQ(error_of(parse_protocols("simple,binary")), "--protocol: 'binary' is not simple, extended or prepared");
}

TEST(bench_cli_options, targets_builtin_named_and_bare_urls) {
  const auto t = std::get<0>(parse_targets(
      "direct,pgsluice,mine=postgresql://u:p@db.example:6432/app,postgresql://u@10.0.0.5:5432/app?sslmode=require"));
  ASSERT_EQ(t.size(), 4u);
  EXPECT_EQ(t[0].name, "direct");
  EXPECT_TRUE(t[0].url.empty());
  EXPECT_EQ(t[2].name, "mine");
  EXPECT_EQ(t[2].url, "postgresql://u:p@db.example:6432/app");
  EXPECT_EQ(t[3].name, "10.0.0.5:5432");
  EXPECT_EQ(std::get<0>(parse_targets("kv=host=h port=5 dbname=d"))[0].url, "host=h port=5 dbname=d");
  EXPECT_NE(error_of(parse_targets("direct,pgcat")).find("unknown target 'pgcat'"), std::string::npos);
  EXPECT_NE(error_of(parse_targets("=postgresql://h/d")).find("has no name"), std::string::npos);
  EXPECT_NE(error_of(parse_targets("x=mysql://h/d")).find("postgresql:// URL"), std::string::npos);
  EXPECT_NE(error_of(parse_targets("direct=postgresql://a/b,direct")).find("two targets are named 'direct'"),
            std::string::npos);
  EXPECT_NE(error_of(parse_targets("direct,direct")).find("'direct' is listed twice"), std::string::npos);
  EXPECT_NE(error_of(parse_targets("h=postgresql://h/d,postgresql://x@h/d")).find("two targets are named 'h'"),
            std::string::npos);
}

TEST(bench_cli_options, defines) {
  EXPECT_EQ(std::get<0>(parse_define("scale=5")), (std::pair<std::string, std::int64_t>{"scale", 5}));
  EXPECT_EQ(std::get<0>(parse_define("n=-3")).second, -3);
  for (const char* bad : {"scale", "=5", "5x=1", "a=b", "a=1.5", "a b=1"}) EXPECT_FALSE(error_of(parse_define(bad)).empty()) << bad;
}

using testing_support::bench;

TEST(bench_cli, bad_arguments_fail_with_status_2_before_connecting) {
  // Targets are URLs on a closed port: had validation come late, these would try to connect.
  const std::string target = "--targets=x=postgresql://u@127.0.0.1:1/d";
  struct bad_case {
    std::vector<std::string> args;
    std::string message;
  };
  const std::vector<bad_case> cases{
      {{"run", target, "--clients", "0"}, "--clients: '0' is not a whole number from 1 to 10000"},
      {{"run", target, "--clients", "10,abc"}, "--clients: 'abc' is not a whole number"},
      {{"run", target, "--duration", "forever"}, "--duration: 'forever' is not a duration"},
      {{"run", target, "--protocol", "binary"}, "'binary' is not simple, extended or prepared"},
      {{"run", target, "--workload", "nope"}, "unknown workload 'nope'"},
      {{"run", target, "--workload", "/nonexistent/x.sql"}, "script file /nonexistent/x.sql not found"},
      {{"run", target, "--workload", "mixed", "--read-ratio", "200"}, "--read-ratio: '200' is not a share of reads"},
      {{"run", target, "--distribution", "gaussian"}, "--distribution: 'gaussian' is not random, fixed or weighted"},
      {{"run", target, "--repeat", "0"}, "--repeat must be from 1 to 100"},
      {{"run", "--targets", "nosuch"}, "unknown target 'nosuch'"},
      {{"run", target, "-D", "x"}, "-D: 'x' is not NAME=INTEGER"},
      {{"init", "--url", "postgresql://u@127.0.0.1:1/d", "--datasets", "pgbench,nope"}, "unknown data set 'nope'"},
      {{"init", "--url", "postgresql://u@127.0.0.1:1/d", "--scale", "0"}, "--scale must be greater than 0"},
      {{"report"}, "runs is required"},
  };
  for (const auto& c : cases) {
    const auto [status, err] = bench(c.args);
    EXPECT_EQ(status, c.args[0] == "report" ? 106 : 2) << c.args[1];   // CLI11's RequiredError code for `report`
    EXPECT_NE(err.find(c.message), std::string::npos) << "stderr: " << err;
  }
}

TEST(bench_cli, unknown_subcommand_is_a_usage_error) {
  const auto [status, err] = bench({"frobnicate"});
  EXPECT_NE(status, 0);
  EXPECT_FALSE(err.empty());
}

TEST(bench_cli, report_of_a_missing_run_fails_cleanly) {
  const auto [status, err] = bench({"report", "/nonexistent/bench-results/x"});
  EXPECT_EQ(status, 1);
  EXPECT_NE(err.find("cannot read /nonexistent/bench-results/x"), std::string::npos) << err;
}

TEST(bench_stack_config, pgsluice_config_for_the_stack_loads) {
  const std::string text = pgsluice_stack_config(6543, 5432, "sluice", {{"sluice_admin", "a\"b"}, {"u2", "p"}}, 20, 11000);
  const auto config = conf::load_config_from_string(text, "stack.toml");
  EXPECT_EQ(config->pool_mode, conf::pool_mode::transaction);
  ASSERT_EQ(config->listen.size(), 1u);
  EXPECT_EQ(config->listen[0].port, 6543);
  EXPECT_EQ(config->max_client_conn, 11000u);
  ASSERT_NE(config->find_user("sluice_admin"), nullptr);
  EXPECT_EQ(config->find_user("sluice_admin")->password, "a\"b");
  ASSERT_NE(config->find_database("sluice"), nullptr);
  EXPECT_EQ(config->find_database("sluice")->primary()->port, 5432);
}

TEST(bench_stack_config, the_routed_database_lists_the_primary_and_the_replicas) {
  const std::string text =
      pgsluice_stack_config(6543, 5432, "sluice", {{"sluice_admin", "pw"}}, 20, 11000, {5433, 5434});
  const auto config = conf::load_config_from_string(text, "stack.toml");
  EXPECT_EQ(config->lag_check_interval, std::chrono::milliseconds(100));
  // The plain target is unchanged: one primary.
  ASSERT_NE(config->find_database("sluice"), nullptr);
  EXPECT_EQ(config->find_database("sluice")->backends.size(), 1u);
  EXPECT_EQ(routed_database("sluice"), "sluice_routed");
  const auto* routed = config->find_database("sluice_routed");
  ASSERT_NE(routed, nullptr) << text;
  EXPECT_EQ(routed->dbname, "sluice");
  ASSERT_EQ(routed->backends.size(), 3u);
  ASSERT_NE(routed->primary(), nullptr);
  EXPECT_EQ(routed->primary()->port, 5432);
  EXPECT_EQ(routed->backends[1].port, 5433);
  EXPECT_EQ(routed->backends[1].role, conf::backend_role::replica);
  EXPECT_EQ(routed->backends[2].role, conf::backend_role::replica);
  // Without replicas there is no routed database.
  EXPECT_EQ(pgsluice_stack_config(6543, 5432, "sluice", {{"u", "p"}}, 20, 11000).find("sluice_routed"), std::string::npos);
}

// pgsluice-pipelined: a database of its own with pipeline_depth, the other databases without it
// (the routed one could not have it), and the whole config valid.
TEST(bench_stack_config, the_pipelined_database_alone_pipelines_statements) {
  const std::string text =
      pgsluice_stack_config(6543, 5432, "sluice", {{"sluice_admin", "pw"}}, 20, 11000, {5433, 5434});
  const auto config = conf::load_config_from_string(text, "stack.toml");
  const auto* pipelined = config->find_database(pipelined_database("sluice"));
  ASSERT_NE(pipelined, nullptr) << text;
  EXPECT_EQ(pipelined->dbname, "sluice");
  EXPECT_EQ(config->effective_pipeline_depth(*pipelined), 8u);
  EXPECT_EQ(config->effective_pipeline_depth(*config->find_database("sluice")), 0u);
  EXPECT_EQ(config->effective_pipeline_depth(*config->find_database("sluice_routed")), 0u);
  const auto& names = stack_target_names();
  EXPECT_NE(std::find(names.begin(), names.end(), "pgsluice-pipelined"), names.end());
}

TEST(bench_cli, pgsluice_routed_is_a_stack_target) {
  const auto& names = stack_target_names();
  EXPECT_NE(std::find(names.begin(), names.end(), "pgsluice-routed"), names.end());
  const auto targets = parse_targets("pgsluice,pgsluice-routed,pgpool");
  ASSERT_EQ(error_of(targets), "");
  EXPECT_EQ(std::get<0>(targets).at(1).name, "pgsluice-routed");
  EXPECT_TRUE(std::get<0>(targets).at(1).url.empty());  // resolved from the stack
}

}  // namespace
}  // namespace pgsluice::bench

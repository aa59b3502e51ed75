// The run form of `pgsluice bench ui`: each field's problem named in its message, defaults and accepted spellings.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "bench/ui_form.hpp"
#include "bench/ui_results.hpp"

namespace {

namespace b = pgsluice::bench;
using json = nlohmann::json;

const std::vector<std::string> known{"direct", "mine"};

std::string problem(const json& form) {
  const auto r = b::parse_run_form(form, known);
  const auto* e = b::parse_error(r);
  return e ? *e : std::string();
}

TEST(bench_ui_form, defaults_and_accepted_spellings) {
  const auto r = b::parse_run_form(json{{"targets", {"direct"}}}, known);
  ASSERT_EQ(b::parse_error(r), nullptr) << *b::parse_error(r);
  const auto& req = std::get<0>(r);
  EXPECT_EQ(req.targets.size(), 1u);
  EXPECT_EQ(req.workload.name, "select-only");
  EXPECT_EQ(req.users, 10u);
  EXPECT_EQ(req.run_time, b::millis(10000));
  EXPECT_EQ(req.warmup, b::millis(0));
  EXPECT_EQ(req.wait_max, b::millis(0));
  const auto w = b::parse_run_form(json{{"targets", {"direct"}}, {"wait_min", "500ms"}, {"wait_max", "1s"}}, known);
  ASSERT_EQ(b::parse_error(w), nullptr);
  EXPECT_EQ(std::get<0>(w).wait_min, b::millis(500));
  EXPECT_EQ(std::get<0>(w).wait_max, b::millis(1000));

  // HTML inputs send strings; durations as text or seconds.
  const auto s = b::parse_run_form(json{{"targets", {"mine", "x=postgresql://u:p@127.0.0.1:5/db"}}, {"users", "25"},
                                        {"spawn_rate", "2.5"}, {"run_time", "2m"}, {"warmup", 3},
                                        {"workload", "mixed"}, {"read_ratio", "0.5"}, {"protocol", "prepared"}},
                                   known);
  ASSERT_EQ(b::parse_error(s), nullptr) << *b::parse_error(s);
  const auto& q = std::get<0>(s);
  EXPECT_EQ(q.users, 25u);
  EXPECT_DOUBLE_EQ(q.spawn_rate, 2.5);
  EXPECT_EQ(q.run_time, b::millis(120000));
  EXPECT_EQ(q.warmup, b::millis(3000));
  EXPECT_DOUBLE_EQ(q.workload.read_ratio, 0.5);
  EXPECT_EQ(q.protocol, b::protocol_mode::prepared);
  ASSERT_EQ(q.targets.size(), 2u);
  EXPECT_EQ(q.targets[1].name, "x");
  EXPECT_EQ(q.targets[1].url, "postgresql://u:p@127.0.0.1:5/db");
}

TEST(bench_ui_form, each_problem_names_its_field) {
  const json ok{{"targets", {"direct"}}};
  auto with = [&](json change) {
    json f = ok;
    f.update(change);
    return problem(f);
  };
  EXPECT_EQ(with({{"users", -3}}), "users must be a whole number from 1 to 10000 (got -3)");
  EXPECT_EQ(with({{"users", 2.5}}), "users must be a whole number from 1 to 10000 (got 2.5)");
  EXPECT_EQ(with({{"users", 10001}}), "users must be a whole number from 1 to 10000 (got 10001)");
  EXPECT_EQ(with({{"users", ""}}), "users must be a whole number from 1 to 10000 (got '')");
  EXPECT_NE(with({{"workload", "nope"}}).find("workload: unknown workload 'nope'"), std::string::npos);
  EXPECT_NE(with({{"workload", "../x.sql"}}).find("is a script path"), std::string::npos);
  EXPECT_NE(with({{"run_time", "0s"}}).find("run_time must be longer than 0"), std::string::npos);
  EXPECT_NE(with({{"run_time", 0}}).find("run_time must be longer than 0"), std::string::npos);
  EXPECT_NE(with({{"run_time", "2d"}}).find("run_time"), std::string::npos);
  EXPECT_NE(with({{"warmup", -1}}).find("warmup must be 0 or more"), std::string::npos);
  EXPECT_NE(with({{"spawn_rate", "fast"}}).find("spawn_rate must be 0"), std::string::npos);
  EXPECT_NE(with({{"read_ratio", 1.5}}).find("read_ratio must be a number from 0 to 1"), std::string::npos);
  EXPECT_NE(with({{"protocol", "udp"}}).find("protocol: 'udp'"), std::string::npos);
  EXPECT_EQ(with({{"targets", json::array()}}), "targets: choose at least one target");
  EXPECT_NE(with({{"targets", {"pgpool"}}}).find("pgpool needs the local stack"), std::string::npos);
  EXPECT_NE(with({{"targets", {"elsewhere"}}}).find("unknown target 'elsewhere' (offered: direct, mine;"),
            std::string::npos);
  EXPECT_NE(with({{"targets", {"direct", "direct"}}}).find("two targets are named 'direct'"), std::string::npos);
  EXPECT_NE(with({{"targets", {"x=notaurl"}}}).find("targets: 'x=notaurl'"), std::string::npos);
  EXPECT_EQ(with({{"wait_min", "2s"}, {"wait_max", "1s"}}), "wait_max must not be shorter than wait_min");
  EXPECT_NE(with({{"wait_min", "often"}}).find("wait_min: 'often'"), std::string::npos);
  EXPECT_EQ(problem(json::array()), "the run form must be a JSON object");
}

TEST(bench_ui_results, a_run_id_never_reaches_outside_the_results_dir) {
  const auto dir = std::filesystem::temp_directory_path() / "pgsluice-ui-results-test";
  std::filesystem::create_directories(dir / "2026-01-01T00-00-00");
  EXPECT_TRUE(b::result_dir(dir, "2026-01-01T00-00-00"));
  for (const char* bad : {"..", ".", "", "../etc", "a/b", "2026-01-01T00-00-00/../..", "missing"})
    EXPECT_FALSE(b::result_dir(dir, bad)) << bad;
  std::filesystem::remove_all(dir);
}

}  // namespace

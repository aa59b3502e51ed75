// Unit tests for bench workloads: the pgbench-style script engine and the seed workloads' parameters (no network).
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <thread>

#include "bench/script.hpp"
#include "bench/workloads.hpp"

namespace pgsluice::bench {
namespace {

dataset_info full_dataset() {
  dataset_info d;
  d.has_pgbench = d.has_purchases = d.has_weather = d.has_vehicles = true;
  d.sizes = dataset_sizes::for_scale(1);
  return d;
}

std::shared_ptr<const transaction_source> workload(const std::string& name, workload_options o = {}) {
  o.name = name;
  return make_workload(o, full_dataset());
}

TEST(bench_script, select_only_compiles_to_one_bound_statement) {
  script_workload w;
  w.add_script("select-only", pgbench_select_only_script, 1, {{"scale", 10}});
  ASSERT_EQ(w.statements().size(), 1u);
  EXPECT_EQ(w.statements()[0].sql, "SELECT abalance FROM pgbench_accounts WHERE aid = $1");
  EXPECT_EQ(w.statements()[0].param_count, 1u);
  rng r(1);
  transaction tx;
  for (int i = 0; i < 1000; ++i) {
    tx.clear();
    w.next(r, tx);
    ASSERT_EQ(tx.size(), 1u);
    const auto aid = std::stoll(tx[0].params.at(0));
    ASSERT_GE(aid, 1);
    ASSERT_LE(aid, 1000000);
  }
}

TEST(bench_script, tpcb_reuses_one_parameter_number_per_variable) {
  script_workload w;
  w.add_script("tpcb", pgbench_tpcb_script, 1, {{"scale", 2}});
  ASSERT_EQ(w.statements().size(), 7u);
  EXPECT_EQ(w.statements()[0].sql, "BEGIN");
  EXPECT_EQ(w.statements()[1].sql, "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2");
  EXPECT_EQ(w.statements()[5].sql,
            "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ($1, $2, $3, $4, CURRENT_TIMESTAMP)");
  EXPECT_EQ(w.statements()[6].sql, "END");
  rng r(3);
  transaction tx;
  w.next(r, tx);
  ASSERT_EQ(tx.size(), 7u);
  // The same :aid in the UPDATE and the SELECT.
  EXPECT_EQ(tx[1].params[1], tx[2].params[0]);
  const auto bid = std::stoll(tx[5].params[1]);
  EXPECT_GE(bid, 1);
  EXPECT_LE(bid, 2);
  const auto delta = std::stoll(tx[1].params[0]);
  EXPECT_GE(delta, -5000);
  EXPECT_LE(delta, 5000);
}

TEST(bench_script, expressions_follow_pgbench_arithmetic) {
  rng r(1);
  EXPECT_EQ(evaluate_expression("100000 * :scale", {{"scale", 3}}, r).i, 300000);
  EXPECT_EQ(evaluate_expression("-(7 + 3) / 4 % 3", {}, r).i, -2);  // integer division truncates
  EXPECT_DOUBLE_EQ(evaluate_expression("1.5 * 2", {}, r).d, 3.0);
  EXPECT_EQ(evaluate_expression("least(5, :x, 9)", {{"x", 2}}, r).i, 2);
  EXPECT_EQ(evaluate_expression("greatest(5, :x, 9)", {{"x", 2}}, r).i, 9);
  EXPECT_EQ(evaluate_expression("abs(-4)", {}, r).i, 4);
  EXPECT_EQ(evaluate_expression("int(7.9)", {}, r).i, 7);
  EXPECT_EQ(evaluate_expression("10 / 0", {}, r).i, 0);  // never throws on a worker thread
  for (int i = 0; i < 200; ++i) {
    const auto v = evaluate_expression("random_zipfian(10, 20, 1.5)", {}, r).i;
    ASSERT_GE(v, 10);
    ASSERT_LE(v, 20);
    const auto e = evaluate_expression("random_exponential(1, 100, 5.0)", {}, r).i;
    ASSERT_GE(e, 1);
    ASSERT_LE(e, 100);
  }
}

TEST(bench_script, errors_name_the_script_and_line) {
  auto compile_error = [](std::string_view text) {
    script_workload w;
    try {
      w.add_script("my.sql", text, 1, {});
    } catch (const script_error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(compile_error("\\set x random(1,\n").find("my.sql:1"), std::string::npos);
  EXPECT_NE(compile_error("-- c\n\\set x :nope + 1\nSELECT 1;").find("my.sql:2: undefined variable :nope"),
            std::string::npos);
  EXPECT_NE(compile_error("SELECT 1;\n\\sleep 10 ms\n").find("unsupported meta-command \\sleep"), std::string::npos);
  EXPECT_NE(compile_error("SELECT :missing;").find("undefined variable :missing"), std::string::npos);
  EXPECT_NE(compile_error("\\set x 1\n").find("no SQL command"), std::string::npos);
  EXPECT_NE(compile_error("\\set x frobnicate(1)\nSELECT :x;").find("unknown function frobnicate()"),
            std::string::npos);
}

TEST(bench_script, sql_spanning_lines_casts_quotes_and_continuations) {
  script_workload w;
  w.add_script("s.sql",
               "\\set id random(1, \\\n 10)\n"
               "SELECT :id::int AS v, ':id' AS literal,\n"
               "       'a;b' AS semi -- trailing :comment\n"
               "FROM t WHERE x = :id; SELECT 2\n",
               1, {});
  ASSERT_EQ(w.statements().size(), 2u);
    // The comment stays (the server skips it) and its :comment is not a variable.
  EXPECT_EQ(w.statements()[0].sql,
            "SELECT $1::int AS v, ':id' AS literal,\n       'a;b' AS semi -- trailing :comment\nFROM t WHERE x = $1");
  EXPECT_EQ(w.statements()[0].param_count, 1u);
  EXPECT_EQ(w.statements()[1].sql, "SELECT 2");
}

TEST(bench_script, weighted_scripts_are_chosen_in_proportion) {
  script_workload w;
  w.add_script("a", "SELECT 1;", 9, {});
  w.add_script("b", "SELECT 2;", 1, {});
  rng r(11);
  int first = 0;
  transaction tx;
  for (int i = 0; i < 10000; ++i) {
    tx.clear();
    w.next(r, tx);
    first += tx[0].statement == 0;
  }
  EXPECT_NEAR(first / 10000.0, 0.9, 0.02);
}

TEST(bench_workloads, options_are_validated_without_a_database) {
  workload_options o;
  EXPECT_EQ(validate_workload_options(o), "");
  o.name = "nope";
  EXPECT_NE(validate_workload_options(o).find("unknown workload 'nope'"), std::string::npos);
  o.name = "./custom.sql";
  EXPECT_EQ(validate_workload_options(o), "");
  o.name = "mixed";
  o.read_ratio = 1.5;
  EXPECT_NE(validate_workload_options(o).find("--read-ratio"), std::string::npos);
  o.read_ratio = 0.5;
  o.region = "atlantis";
  EXPECT_NE(validate_workload_options(o).find("unknown region 'atlantis'"), std::string::npos);
  EXPECT_EQ(parse_key_distribution("zipf"), key_distribution::weighted);
  EXPECT_FALSE(parse_key_distribution("gaussian").has_value());
}

TEST(bench_workloads, missing_data_set_says_how_to_load_it) {
  dataset_info empty;
  workload_options o;
  o.name = "weather-avg";
  try {
    make_workload(o, empty);
    FAIL() << "expected an error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("bench init"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("weather"), std::string::npos);
  }
}

TEST(bench_workloads, every_builtin_fills_all_its_placeholders) {
  for (const auto& info : builtin_workloads()) {
    const auto w = workload(std::string(info.name));
    rng r(5);
    transaction tx;
    for (int i = 0; i < 200; ++i) {
      tx.clear();
      w->next(r, tx);
      ASSERT_FALSE(tx.empty()) << info.name;
      for (std::size_t k = 0; k < tx.size(); ++k) {
        const auto& def = w->statements().at(tx[k].statement);
        ASSERT_EQ(tx[k].params.size(), def.param_count) << info.name << ": " << def.sql;
        for (const auto& p : tx[k].params) ASSERT_FALSE(p.empty()) << info.name;
      }
    }
  }
}

TEST(bench_workloads, latest_purchases_filters_on_real_regions) {
  const auto w = workload("latest-purchases");
  rng r(2);
  std::set<std::string> seen;
  transaction tx;
  for (int i = 0; i < 500; ++i) {
    tx.clear();
    w->next(r, tx);
    seen.insert(tx[0].params[0]);
    EXPECT_EQ(tx[0].params[1], "20");
  }
  EXPECT_EQ(seen.size(), regions.size());
  for (const auto& s : seen) EXPECT_NE(std::find(regions.begin(), regions.end(), s), regions.end()) << s;

  workload_options none;
  none.region = "none";
  const auto all = workload("latest-purchases", none);
  tx.clear();
  all->next(r, tx);
  EXPECT_EQ(all->statements()[tx[0].statement].sql.find("WHERE"), std::string::npos);
}

TEST(bench_workloads, distributions_shape_the_weather_stations) {
  auto station_counts = [](key_distribution d) {
    workload_options o;
    o.distribution = d;
    const auto w = workload("weather-avg", o);
    rng r(9);
    std::map<std::string, int> counts;
    transaction tx;
    for (int i = 0; i < 20000; ++i) {
      tx.clear();
      w->next(r, tx);
      ++counts[tx[0].params[0]];
    }
    return counts;
  };
  const auto fixed = station_counts(key_distribution::fixed);
  ASSERT_EQ(fixed.size(), 1u);
  EXPECT_EQ(fixed.begin()->first, "station-0001");

  const auto uniform = station_counts(key_distribution::random);
  EXPECT_GT(uniform.size(), 990u);                      // 1000 stations, 20 draws each on average
  EXPECT_LT(uniform.at("station-0001"), 60);

  const auto weighted = station_counts(key_distribution::weighted);
  // Zipf s=1.1 over 1000 keys: the hottest station gets ~17% of the draws.
  EXPECT_GT(weighted.at("station-0001"), 2500);
  EXPECT_GT(weighted.at("station-0001"), weighted.at("station-0002"));
  EXPECT_LT(weighted.size(), uniform.size());
}

TEST(bench_workloads, purchases_mixed_honours_the_read_ratio_and_inserts_match_the_customer_region) {
  workload_options o;
  o.read_ratio = 0.7;
  const auto w = workload("purchases-mixed", o);
  rng r(4);
  int reads = 0;
  transaction tx;
  for (int i = 0; i < 10000; ++i) {
    tx.clear();
    w->next(r, tx);
    const auto& sql = w->statements()[tx[0].statement].sql;
    if (sql.rfind("SELECT", 0) == 0) {
      ++reads;
    } else {
      ASSERT_EQ(tx[0].params[3], region_of_customer(std::stoll(tx[0].params[0])));
    }
  }
  EXPECT_NEAR(reads / 10000.0, 0.7, 0.02);
}

TEST(bench_workloads, spatial_points_stay_in_the_vehicle_area) {
  const auto w = workload("spatial");
  rng r(8);
  transaction tx;
  for (int i = 0; i < 1000; ++i) {
    tx.clear();
    w->next(r, tx);
    const double lon = std::stod(tx[0].params[0]), lat = std::stod(tx[0].params[1]);
    ASSERT_GE(lon, vehicle_area.lon_min);
    ASSERT_LE(lon, vehicle_area.lon_max);
    ASSERT_GE(lat, vehicle_area.lat_min);
    ASSERT_LE(lat, vehicle_area.lat_max);
  }
}

TEST(bench_dataset, sizes_scale_and_keep_minimums) {
  const auto one = dataset_sizes::for_scale(1);
  EXPECT_EQ(one.pgbench_scale, 10);
  EXPECT_EQ(one.purchases, 400000);
  const auto big = dataset_sizes::for_scale(20);
  EXPECT_EQ(big.weather_rows, 10000000);  // the seeds' 10-million-row weather table
  const auto tiny = dataset_sizes::for_scale(0.001);
  EXPECT_EQ(tiny.pgbench_scale, 1);
  EXPECT_GE(tiny.customers, 100);
  EXPECT_EQ(location_name(7), "station-0007");
  EXPECT_EQ(human_count(1234567), "1.23M");
  EXPECT_EQ(human_count(999), "999");
}

TEST(bench_workloads, read_after_write_writes_a_new_key_then_reads_that_key_back) {
  EXPECT_EQ(validate_workload_options(workload_options{.name = "read-after-write"}), "");
  dataset_info nothing;  // needs no data set: its table is created before the run
  const auto w = make_workload(workload_options{.name = "read-after-write"}, nothing);
  ASSERT_EQ(w->statements().size(), 2u);
  EXPECT_EQ(w->statements()[0].sql.rfind("INSERT INTO pgsluice_bench_writes ", 0), 0u) << w->statements()[0].sql;
  EXPECT_FALSE(w->statements()[0].reads_own_write);
  EXPECT_EQ(w->statements()[1].sql.rfind("SELECT ", 0), 0u);
  EXPECT_NE(w->statements()[1].sql.find("WHERE run_id = $1 AND seq = $2"), std::string::npos);
  EXPECT_TRUE(w->statements()[1].reads_own_write);  // the stale-read check
  rng r(9);
  transaction tx;
  std::set<std::pair<std::string, std::string>> keys;
  std::string run;
  for (int i = 0; i < 1000; ++i) {
    tx.clear();
    w->next(r, tx);
    ASSERT_EQ(tx.size(), 2u);  // two autocommit statements, no BEGIN
    EXPECT_EQ(tx[0].statement, 0u);
    EXPECT_EQ(tx[1].statement, 1u);
    EXPECT_EQ(tx[0].params[0], tx[1].params[0]);  // reads the very key it wrote
    EXPECT_EQ(tx[0].params[1], tx[1].params[1]);
    if (run.empty()) run = tx[0].params[0];
    EXPECT_EQ(tx[0].params[0], run);
    EXPECT_TRUE(keys.emplace(tx[0].params[0], tx[0].params[1]).second) << "key used twice";
  }
  // Another workload object (another run, or another process) draws another run key.
  tx.clear();
  make_workload(workload_options{.name = "read-after-write"}, nothing)->next(r, tx);
  EXPECT_NE(tx[0].params[0], run);
}

TEST(bench_workloads, read_after_write_keys_stay_unique_across_client_threads) {
  const auto w = make_workload(workload_options{.name = "read-after-write"}, dataset_info{});
  std::vector<std::vector<std::string>> seqs(4);
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < seqs.size(); ++t)
    threads.emplace_back([&, t] {
      rng r(t);
      transaction tx;
      for (int i = 0; i < 2000; ++i) {
        tx.clear();
        w->next(r, tx);
        seqs[t].push_back(tx[0].params[1]);
      }
    });
  for (auto& t : threads) t.join();
  std::set<std::string> all;
  for (const auto& s : seqs) all.insert(s.begin(), s.end());
  EXPECT_EQ(all.size(), 8000u);
}

}  // namespace
}  // namespace pgsluice::bench

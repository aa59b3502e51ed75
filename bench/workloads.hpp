// The bench workloads: pgbench's select-only and tpcb, the seed workloads over the purchases,
// weather and vehicles data sets, read-after-write (stale reads through a router), and
// custom pgbench-style script files.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bench/dataset.hpp"
#include "bench/transaction.hpp"

namespace pgsluice::bench {

// How keys (customers, weather stations) are drawn.
enum class key_distribution { random, fixed, weighted };
std::string_view to_string(key_distribution) noexcept;
std::optional<key_distribution> parse_key_distribution(std::string_view) noexcept;

struct workload_options {
  std::string name = "select-only";   // a built-in name, or the path of a .sql script
  double read_ratio = 0.9;            // mixed, purchases-mixed: share of reads vs writes, 0..1
  key_distribution distribution = key_distribution::random;
  double zipf_exponent = 1.1;         // weighted: P(k) ~ 1/k^s, hot spots on the first keys
  std::string region = "random";      // latest-purchases: "random", "none" (no filter) or a region name
  std::uint32_t limit = 20;           // latest-purchases: rows returned
  std::map<std::string, std::int64_t> variables;  // scripts: predefined :variables (pgbench -D)
  bool sql_file = false;              // `name` is a weighted SQL file (bench/sql_file.hpp), not a pgbench script
};

struct workload_info {
  std::string_view name;
  std::string_view dataset;           // what `bench init` must have loaded
  std::string_view description;
};
const std::vector<workload_info>& builtin_workloads();
bool is_script_path(std::string_view name) noexcept;   // ends in .sql or contains '/'

// Checks options that need no database (names, ratios, region); "" when valid.
std::string validate_workload_options(const workload_options& options);

// Builds a workload for the data the database holds (see probe_dataset). Throws
// std::invalid_argument with a message telling what to do (e.g. run bench init)
// when the options or the data do not fit, script_error for a bad script.
std::shared_ptr<const transaction_source> make_workload(const workload_options& options, const dataset_info& data);

// The statements of pgbench's built-in scripts, in pgbench's own script language
// (PostgreSQL 15 src/bin/pgbench/pgbench.c, builtin_script[]).
extern const std::string_view pgbench_select_only_script;
extern const std::string_view pgbench_tpcb_script;

}  // namespace pgsluice::bench

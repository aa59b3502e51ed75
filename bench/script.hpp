// pgbench-style scripts: `\set var expression` lines and SQL commands using :var, compiled into a workload.
//
// Supports the subset of pgbench's script language that custom benchmark files
// use in practice: integer and float arithmetic (+ - * / %, parentheses, unary
// minus), the functions random(lo, hi), random_zipfian(lo, hi, s),
// random_exponential(lo, hi, p), abs(), least(), greatest(), int(), double(),
// variables defined by \set or given up front (:scale), and SQL commands ended
// by a semicolon that may span lines. Each :var in a command becomes a bound
// parameter ($n) so the script runs in all three protocol modes; in simple mode
// the values are substituted as literals, as pgbench does.
// https://www.postgresql.org/docs/15/pgbench.html#id-1.9.4.11.9
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "bench/transaction.hpp"

namespace pgsluice::bench {

// A script that failed to compile; what() is "NAME:LINE: message".
class script_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A value of a script variable (pgbench has integers and doubles).
struct script_value {
  bool is_double = false;
  std::int64_t i = 0;
  double d = 0;
  double as_double() const noexcept { return is_double ? d : static_cast<double>(i); }
  std::int64_t as_int() const noexcept { return is_double ? static_cast<std::int64_t>(d) : i; }
  std::string to_string() const;
};

class compiled_script;

// One or more scripts chosen per transaction by weight (pgbench's -b name@weight / -f file@weight).
class script_workload : public transaction_source {
 public:
  // `variables` are predefined (e.g. {"scale", 10}); scripts may read them as :name.
  // Throws script_error naming the script and line.
  void add_script(std::string_view name, std::string_view text, std::uint32_t weight,
                  const std::map<std::string, std::int64_t>& variables);

  const std::vector<statement_def>& statements() const override { return statements_; }
  void next(rng& r, transaction& out) const override;

  std::size_t script_count() const noexcept { return scripts_.size(); }

  // One request kind per script, in add_script order: next() then tells which script ran.
  void set_request_kinds(std::vector<request_kind> kinds) { kinds_ = std::move(kinds); }
  const std::vector<request_kind>& request_kinds() const override { return kinds_; }

  script_workload();
  ~script_workload() override;
  script_workload(script_workload&&) noexcept;
  script_workload& operator=(script_workload&&) noexcept;

 private:
  std::vector<statement_def> statements_;
  std::vector<std::unique_ptr<compiled_script>> scripts_;
  std::vector<std::uint32_t> cumulative_weights_;
  std::vector<request_kind> kinds_;
};

// Evaluates one expression with the given variables (for tests and `\set` checks).
// Throws script_error on syntax errors or unknown variables.
script_value evaluate_expression(std::string_view expression, const std::map<std::string, std::int64_t>& variables,
                                 rng& r);

}  // namespace pgsluice::bench

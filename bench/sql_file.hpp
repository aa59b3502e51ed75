// Weighted SQL files for `pgsluice bench run --sql-file FILE`: requests chosen at random by weight, like Locust's @task(N).
//
// The format, plain SQL with header comments:
//
//   -- weight: 3                      a request picked 3 times as often as one of weight 1
//   -- name: recent purchases         its row in the reports (default: its first SQL words)
//   -- type: read                     read or write (default: from its first SQL word)
//   \set region random(1, 8)          pgbench-style lines and :variables work as in scripts
//   SELECT ... WHERE region_id = :region;
//
// A request is a block: its header lines (weight, name, type, each at most once, in any
// order), then its SQL (one or more statements, all sent as one request, e.g. BEGIN; ...;
// COMMIT;) up to the next header line. A statement above the first header, or in a file
// without headers, is a request of weight 1 of its own. Other `--` comments are comments.
// A bad file fails before anything connects, with an error naming the file and the line.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "bench/transaction.hpp"

namespace pgsluice::bench {

inline constexpr std::uint32_t max_sql_file_weight = 1000000;

struct sql_file_request {
  std::string name;
  std::string type;                  // "read" or "write"
  std::uint32_t weight = 1;
  std::size_t line = 0;              // of its first line (header or SQL) in the file
  std::string text;                  // its SQL and \set lines, as a pgbench-style script
  bool named = false;                // the name comes from a `-- name:` header
};

// Splits a file into its requests. Throws script_error ("FILE:LINE: message").
std::vector<sql_file_request> parse_sql_file(std::string_view file_name, std::string_view text);

// "read" for statements that only read (SELECT, VALUES, TABLE, SHOW, EXPLAIN, WITH without
// a data-modifying part), else "write"; transaction control (BEGIN, COMMIT, ...) is skipped.
std::string classify_sql_request(std::string_view sql);

// The workload of a parsed file: one request kind per request, chosen by weight.
// Throws script_error for a bad \set or an undefined :variable, naming the file's line.
std::shared_ptr<const transaction_source> make_sql_file_workload(std::string_view file_name, std::string_view text,
                                                                 const std::map<std::string, std::int64_t>& variables);

}  // namespace pgsluice::bench

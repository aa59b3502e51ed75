// Reports of runs of users, as Locust gives them: its statistics table per target and its CSV files, same columns.
//
// Locust's counting is kept: "# requests" is every request, failed or not, "# fails" the
// failed ones; response times are of the successful requests, in milliseconds (with
// decimals, not rounded to whole ms: a database answers in less). The CSV files carry
// Locust's column names exactly (https://docs.locust.io/en/stable/retrieving-stats.html),
// so tools reading PREFIX_stats.csv and PREFIX_stats_history.csv read these.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "bench/histogram.hpp"
#include "bench/report.hpp"

namespace pgsluice::bench {

// One row of the statistics: a kind of request, or the "Aggregated" total.
struct request_row {
  std::string type;                     // "read", "write", "sql", "connect"; "" for Aggregated
  std::string name;
  std::uint64_t requests = 0;           // successful + failed
  std::uint64_t failures = 0;
  latency_histogram latency;            // of the successful requests
  std::map<std::string, std::uint64_t> errors;  // error kind -> count
  double seconds = 0;                   // measured time the counts cover (summed over repeats)

  double rps() const noexcept { return seconds > 0 ? static_cast<double>(requests) / seconds : 0; }
  double failures_per_second() const noexcept { return seconds > 0 ? static_cast<double>(failures) / seconds : 0; }
};

// The rows of one target in one group, summed over its repeats: each kind of request
// that ran or failed, in the workload's order, then "Aggregated".
std::vector<request_row> request_rows(const bench_run& run, const group_key& g, const std::string& target);

// Per group, per target: Type, Name, # requests, # fails, Median, Average, Min, Max,
// req/s, failures/s (Locust's console table), then p95 and p99; after each group's
// targets, their requests/s and percentiles side by side with the ratio of each to every
// other target of the group.
std::string format_users_table(const bench_run& run);

// "[  12s] pgsluice         users   600/1000  req/s    512  p50   0.41  p95   1.20  p99   1.90 ms  fails     0"
std::string format_users_live_line(const std::string& target, std::uint32_t users, const live_sample& sample);

// Locust's PREFIX_stats.csv: "Type","Name","Request Count","Failure Count","Median Response
// Time","Average Response Time","Min Response Time","Max Response Time","Average Content
// Size","Requests/s","Failures/s","50%" ... "100%". Content size is 0 (not measured).
std::string locust_stats_csv(const std::vector<request_row>& rows);
// Locust's PREFIX_stats_history.csv: one "Aggregated" row per second of the run
// ("Timestamp","User Count","Type","Name","Requests/s","Failures/s","50%" ... "100%",
// "Total Request Count", ... "Total Average Content Size"); the percentiles are that second's.
std::string locust_history_csv(const run_result& r);
// Locust's PREFIX_failures.csv: "Method","Name","Error","Occurrences".
std::string locust_failures_csv(const std::vector<request_row>& rows, const run_result* sample_source = nullptr);

// Writes the three files for every group and target into `dir`, PREFIX being the target's
// name (with the group's, when the run has several groups); the history is that of the
// repeat closest to the median. Returns the files written.
std::vector<std::filesystem::path> write_locust_csv(const bench_run& run, const std::filesystem::path& dir);

}  // namespace pgsluice::bench

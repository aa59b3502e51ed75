// Bench results: the data model of a run, medians and ratios, the terminal table, live lines, JSON files and the HTML report.
//
// The code is in report.cpp (model, medians, table, live lines), report_json.cpp,
// report_html.cpp with report_charts.cpp, report_compare.cpp (two runs side by side) and,
// for runs of users, report_users.hpp (Locust's table and CSV files).
//
// A run is a set of (workload, protocol, clients, connect-per-transaction)
// groups; in each group every target ran `repeat` times, interleaved (A B C A B
// C ...). The table shows per target the median of each metric over the
// repeats, and the ratio of its median requests/s to PgBouncer's and to direct
// PostgreSQL's in the same group.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "bench/histogram.hpp"
#include "bench/load_generator.hpp"
#include "bench/sysinfo.hpp"

namespace pgsluice::bench {

struct target_config {
  std::string name;         // "direct", "pgbouncer", ... or a user's name
  std::string url;          // with the password removed
};

struct run_config {
  std::vector<std::string> workloads;
  std::vector<std::string> protocols;
  std::vector<std::uint32_t> clients;
  std::vector<target_config> targets;
  double duration_s = 0;
  double warmup_s = 0;
  double ramp = 0;
  std::uint32_t repeat = 1;
  std::uint32_t threads = 0;
  bool connect_per_transaction = false;
  double read_ratio = 0;
  std::string distribution;
  std::string region;
  double scale = 0;
  // Users (Locust's model); users == 0 for closed-loop runs of --clients.
  std::uint32_t users = 0;
  double spawn_rate = 0;                // users started per second; 0 = all at once
  double wait_min_s = 0, wait_max_s = 0;  // between two requests of a user
  std::string sql_file;                 // --sql-file, when the workload came from one
};

struct group_key {
  std::string workload;
  std::string protocol;
  std::uint32_t clients = 0;
  bool connect_per_transaction = false;
  bool users = false;         // `clients` are users (think time between requests, Locust's model)
  auto operator<=>(const group_key&) const = default;
  std::string label() const;  // "select-only · simple · 10 clients", "mixed · simple · 1000 users"
};

// What one server of the cluster did during one run, from its own statistics views,
// sampled on the node itself before and after the run (the difference is kept):
// `scans` = seq_scan + idx_scan summed over the user tables of the bench database (every
// statement that reads rows scans a table; a plain INSERT scans none, nor do the health
// and lag probes of the poolers), `xacts` = xact_commit of the bench database.
// PostgreSQL 15 publishes a busy backend's counters at most once a second and an idle
// backend's last second up to 10 s later (PGSTAT_IDLE_INTERVAL): about a second of the
// previous run's reads (on the servers it used) can show up in the next run's numbers.
struct node_activity {
  std::string node;                     // "primary", "replica_1", ...
  std::uint64_t scans = 0;
  std::uint64_t xacts = 0;
};

// after - before per node (matched by name; a counter that went backwards, e.g. after a
// stats reset, counts 0). Nodes missing from either sample are left out.
std::vector<node_activity> activity_between(const std::vector<node_activity>& before,
                                            const std::vector<node_activity>& after);

// A node's share of the reads (table scans) of a target in a group.
struct read_share {
  std::string node;
  std::uint64_t scans = 0;
  double share = 0;                     // 0..1; 0 for every node when nothing was scanned
};

// Sums the activity of several repeats per node (in first-seen order) and divides.
std::vector<read_share> read_shares(const std::vector<const std::vector<node_activity>*>& repeats);

// "primary 1% · replica_1 50% · replica_2 49%"
std::string format_read_shares(const std::vector<read_share>& shares);

// One target's run of one group, one repeat.
struct run_result {
  std::string target;
  group_key group;
  std::uint32_t repeat = 0;
  std::uint64_t requests = 0;
  std::uint64_t failures = 0;
  std::uint64_t stale_reads = 0;        // reads that missed their own write (load_result::stale_reads)
  bool reads_checked = false;           // the workload checks its reads (read-after-write)
  std::map<std::string, std::uint64_t> errors;
  std::map<std::string, std::string> error_samples;
  std::vector<node_activity> backend_activity;  // per server, for targets that spread reads; else empty
  double duration_s = 0;
  double warmup_s = 0;
  std::uint64_t connections_opened = 0;
  latency_histogram latency;
  latency_histogram connect_latency;
  std::vector<timeline_point> timeline;
  std::optional<memory_usage> memory;   // peak over the run of the target's server processes
  std::string memory_scope;             // what was measured, e.g. "pgbouncer (1 process)"
  std::vector<request_stats> by_request;  // per request kind (load_result::by_request), named
  double started_unix = 0;              // wall-clock start of the run (CSV timestamps)
  bool interrupted = false;             // stopped before its end (SIGINT, a stop flag)

  double rps() const noexcept { return duration_s > 0 ? static_cast<double>(requests) / duration_s : 0; }
  static run_result from(const std::string& target, const group_key& group, std::uint32_t repeat,
                         const load_result& r);
};

// The medians of one target in one group.
struct summary_row {
  group_key group;
  std::string target;
  std::uint32_t repeats = 0;
  double requests = 0;
  double failures = 0;
  // Stale reads summed over the repeats (not a median: one stale read is one too many);
  // nullopt when the workload does not check its reads.
  std::optional<std::uint64_t> stale_reads;
  std::vector<read_share> read_shares;  // over the repeats; empty when not sampled
  double mean_ms = 0, p50_ms = 0, p95_ms = 0, p99_ms = 0, max_ms = 0;
  double rps = 0;
  std::optional<double> vs_pgbouncer;   // rps / PgBouncer's rps in this group
  std::optional<double> vs_direct;
  std::optional<memory_usage> memory;   // largest peak over the repeats
  std::map<std::string, std::uint64_t> errors;  // summed over repeats
};

struct bench_run {
  std::string id;                       // "2026-11-21T14-03-00": the results directory name
  std::string started_at;               // ISO 8601, UTC
  machine_info machine;
  run_config config;
  std::vector<run_result> results;
  std::vector<std::string> notes;
  bool complete = true;                 // false: stopped halfway; the results are what was measured
};

double median(std::vector<double> values);

// Summary rows in group order, targets in the order of config.targets.
std::vector<summary_row> summarize(const bench_run& run);

// The comparison table (plain text, aligned columns), one block per group.
std::string format_table(const bench_run& run);

// "[ 12s] pgbouncer        c=100  tps  21034  p50   0.41 ms  p99   1.90 ms  err      0  conn  100"
std::string format_live_line(const std::string& target, std::uint32_t clients, const live_sample& sample);

// "   -> 123456 requests (12345.6/s), 0 failures, p50 0.25 ms, p99 1.20 ms, max 9.87 ms"
std::string format_result_line(const run_result& r);

nlohmann::json to_json(const bench_run& run);
bench_run bench_run_from_json(const nlohmann::json& j);   // throws nlohmann::json::exception on bad input

// Writes <dir>/results.json; returns its path.
std::filesystem::path save_run(const bench_run& run, const std::filesystem::path& dir);
// Reads a results.json, or the results.json inside a directory. Throws std::runtime_error.
bench_run load_run(const std::filesystem::path& path);

// Per group and target: requests/s and p99 of `run` next to `baseline`'s, with the change
// (format_side_by_side(baseline, run)).
std::string format_comparison(const bench_run& run, const bench_run& baseline);

// Two saved runs side by side (`pgsluice bench report A B`): per group and target, A's and
// B's requests/s, p50, p95, p99 and failures, and the change from A to B; rows found in
// one run only are shown with "-" on the other side.
std::string format_side_by_side(const bench_run& a, const bench_run& b);
// The same as a self-contained HTML page with bar charts.
std::string render_comparison_html(const bench_run& a, const bench_run& b);

// A self-contained HTML page (inline CSS and SVG, no scripts, no network): for
// each group throughput over time and latency percentiles per target, and a bar
// chart of requests/s; with `baseline`, a comparison of the two runs.
std::string render_html(const bench_run& run, const bench_run* baseline = nullptr);

// "2026-11-21T14-03-00" for now (UTC); `iso` receives "2026-11-21T14:03:00Z".
std::string timestamp_id(std::string* iso = nullptr);

// postgresql://user:secret@host/db -> postgresql://user@host/db; key=value strings lose password=...
std::string redact_conninfo(const std::string& conninfo);

}  // namespace pgsluice::bench

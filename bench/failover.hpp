// `pgsluice bench failover`: a mixed load through each HA target while the primary is killed, and what the clients saw.
//
// For each target a fresh cluster is built (a primary and a synchronous standby,
// `synchronous_standby_names = 'ANY 1 (replica_1)'`), the target is started in front of
// it the way its users run it, clients read and write through it, and at --kill-at the
// primary's postmaster and every process it started get SIGKILL. Afterwards every write
// a client saw acknowledged is looked up on the surviving primary. The cluster is thrown
// away after each target, so each starts from the same state.
//
// The pure part (events -> counts, timeline, held writes; log lines -> detection) is
// here so it is unit-tested without servers; the servers are in failover.cpp and
// failover_targets.cpp, the report in failover_report.cpp.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <iosfwd>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bench/sysinfo.hpp"

namespace CLI {
class App;
}

namespace pgsluice::bench {

// The targets `bench failover` knows, in report order.
const std::vector<std::string>& failover_target_names();

struct failover_options {
  std::vector<std::string> targets;           // empty: failover_target_names()
  std::chrono::milliseconds duration{30000};  // load time per target, kill included
  std::chrono::milliseconds kill_at{5000};    // from the start of the load
  std::uint32_t clients = 8;
  double read_ratio = 0.5;                    // share of reads among the operations
  std::chrono::milliseconds request_timeout{30000};  // a held write may wait this long
  std::chrono::milliseconds connect_timeout{3000};
  std::chrono::milliseconds retry_delay{50};  // after a failed operation, before the next
  std::chrono::milliseconds bucket{100};      // timeline resolution
  std::filesystem::path results_dir = "bench-results";
  std::filesystem::path pgsluice_binary;      // empty: this executable
  bool html = true;
  bool live = true;                           // one line per second per target
  std::ostream* out = nullptr;
  const std::atomic<bool>* stop = nullptr;
};

// One operation a client ran: times in microseconds since the load started.
enum class op_kind : std::uint8_t { read, write };
struct op_event {
  std::int64_t start_us = 0;
  std::int64_t end_us = 0;
  op_kind kind = op_kind::read;
  bool ok = false;
  std::int64_t key = 0;            // the row written (writes)
  std::uint16_t server_port = 0;   // inet_server_port() of the server that answered (successes)
};

struct failover_bucket {
  std::uint32_t t_ms = 0;          // start of the bucket, since the load started
  std::uint64_t reads = 0, writes = 0, read_errors = 0, write_errors = 0;
};

// What the client events say, before any server is asked.
struct event_summary {
  std::uint64_t reads_ok = 0, writes_ok = 0, read_errors = 0, write_errors = 0;
  std::uint64_t read_errors_after_kill = 0, write_errors_after_kill = 0;
  std::uint64_t writes_held = 0;   // answered after the kill, succeeded, took longer than held_threshold_ms
  double held_threshold_ms = 0;
  double write_p50_before_ms = 0, write_p99_before_ms = 0;
  std::optional<double> max_held_ms;
  // From the kill to the first acknowledged write answered by a server other than the
  // old primary (a reply already on its way when the primary died does not count).
  std::optional<double> first_write_after_kill_ms;
  std::optional<double> first_error_after_kill_ms;
  std::vector<failover_bucket> timeline;
};

// The shortest "held" write: 3 x the p99 of the writes acknowledged before the kill, and
// at least 100 ms (a busy machine's normal jitter is not a held write).
double held_write_threshold_ms(double p99_before_ms);

// Counts, held writes, recovery and the timeline (buckets of `bucket` up to `duration`).
event_summary summarize_events(const std::vector<op_event>& events, std::int64_t kill_us,
                               std::uint16_t old_primary_port, std::chrono::milliseconds bucket,
                               std::chrono::milliseconds duration);

// Does this line of the target's own log show it noticed the primary's failure?
// `target` is one of failover_target_names(); lines are matched without case.
bool is_detection_line(std::string_view target, std::string_view line);

// The first detection line among `text`'s lines, if any.
std::optional<std::string> first_detection_line(std::string_view target, std::string_view text);

// One target's failover, as reported.
struct failover_result {
  std::string target;
  std::string setup;                         // how the target was configured, one sentence
  std::string problem;                       // why it did not run, when it did not
  bool ran = false;
  double kill_at_s = 0;
  std::uint32_t processes_killed = 0;        // the postmaster and its children
  std::uint32_t processes_left = 0;          // of those, still alive after the kill (should be 0)
  std::vector<int> killed_pids;              // the postmaster first
  event_summary events;
  std::optional<double> detected_ms;         // from the kill; the target's log, else its first error
  std::string detection_source;              // "log", "first client error" or "" (none)
  std::string detection_line;
  std::uint64_t acknowledged_writes = 0;
  std::uint64_t missing_writes = 0;          // acknowledged, absent from the surviving primary
  std::uint64_t unacknowledged_found = 0;    // failed for the client, yet committed
  std::string checked_on;                    // node read back, and who promoted it
  bool promoted_by_target = false;
  std::map<std::string, std::uint64_t> error_messages;  // first line -> count (at most 20 kinds)
  std::vector<std::string> notes;
};

struct failover_run {
  std::string id;                            // "failover-2026-12-01T12-00-00"
  std::string started_at;
  machine_info machine;
  failover_options options;
  std::vector<failover_result> results;
  std::vector<std::string> notes;
};

// Runs every target in turn; progress on options.out. Throws stack_error when even the
// first cluster cannot be built; a target that cannot start is reported, not thrown.
failover_run run_failover(const failover_options& options);

// Report (failover_report.cpp).
std::string format_failover_table(const failover_run& run);      // the summary, one row per target
std::string format_failover_timeline(const failover_run& run);   // per second, per target, kill marked
nlohmann::json failover_to_json(const failover_run& run);
std::string render_failover_html(const failover_run& run);       // inline SVG, no external assets
// Writes results.json (and report.html) into options.results_dir/run.id; returns that dir.
std::filesystem::path save_failover_run(const failover_run& run);

// Registers the `failover` subcommand on `bench`'s app; the returned function runs it once
// it was parsed (`pgsluice_binary`: the --pgsluice-binary option, read when it runs).
std::function<int()> add_failover_command(CLI::App& app, const std::string& pgsluice_binary);

}  // namespace pgsluice::bench

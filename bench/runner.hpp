// Runs a benchmark plan: every target runs the same workload in turn (A B C A B C ...), with live lines and memory sampling.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <functional>
#include <iosfwd>
#include <string>
#include <vector>

#include "bench/load_generator.hpp"
#include "bench/report.hpp"
#include "bench/workloads.hpp"

namespace pgsluice::bench {

// A server behind a target, reached directly (not through the target) to read its statistics.
struct node_endpoint {
  std::string name;                // "primary", "replica_1", ...
  std::string url;                 // a user who can read pg_stat_user_tables, the bench database
};

struct bench_target {
  std::string name;
  std::string url;                 // with the password: what the load generator connects to
  std::vector<pid_t> pids;         // server processes whose memory (with their children) is sampled
  std::string memory_scope;
  // For targets that spread reads over several servers: sampled before and after each
  // run, giving run_result::backend_activity (which server served the reads).
  std::vector<node_endpoint> nodes;
};

// Reads each node's counters (node_activity) now; throws stack_error / sql_error.
std::vector<node_activity> sample_nodes(const std::vector<node_endpoint>& nodes);

// One comparison group: a workload, a protocol, a client count, connect-per-transaction or not.
struct run_plan {
  workload_options workload;
  protocol_mode protocol = protocol_mode::simple;
  std::uint32_t clients = 10;
  bool connect_per_transaction = false;
  bool users = false;                     // clients are users: runner_options::load has the think time
  std::vector<std::string> only_targets;  // run this plan on these targets only; empty = every target
};

struct runner_options {
  load_options load;               // durations, ramp, timeouts, threads, seed (conninfo, clients, protocol set per run)
  std::uint32_t repeat = 1;
  millis pause{1000};              // between two runs, so the previous target's connections are gone
  bool live = true;                // one line per second per target
  std::ostream* out = nullptr;
  const std::atomic<bool>* stop = nullptr;
  // Called once per second per target (on the calling thread), next to the live line.
  std::function<void(const std::string& target, const group_key& group, const live_sample&)> on_second;
};

// Runs every plan on every target, `repeat` times, interleaved; fills run.results
// (run.config and run.machine are the caller's). Workloads are built first, so a
// plan that cannot run (unknown workload, data set missing) throws before any load.
void execute_plans(bench_run& run, const std::vector<bench_target>& targets, const std::vector<run_plan>& plans,
                   const dataset_info& data, const runner_options& options);

}  // namespace pgsluice::bench

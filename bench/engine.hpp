// The programmatic entry of `pgsluice bench run`: its options in a struct, one point per second and target through a callback, a stop flag, results in RESULTS_DIR/<run>/.
//
// `pgsluice bench run` is a thin layer over run_benchmark(), and so can be anything else
// that starts runs (a web page, a test): the same validation with the same messages
// (naming the command-line option), the same results on disk (results.json, report.html,
// the Locust-style CSV files). Only standard headers here: no libpq, no JSON, no CLI11.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <iosfwd>
#include <string>
#include <vector>

namespace pgsluice::bench {

// Every option of `pgsluice bench run`, as the command line takes it (text for lists,
// durations and ratios, so that a form can pass its fields through and get the same errors).
// An empty string means "not given": the command's default.
struct run_request {
  std::string work_dir;           // --work-dir: the local stack (default ./.pgsluice/stack)
  std::string targets = "direct,pgbouncer,pgpool,pgbouncer-pgpool,pgsluice,pgsluice-routed";  // -t

  // The closed loop of pgbench: a fixed number of clients, each sending its next request
  // as soon as the last one is answered.
  std::string clients;            // -c "10,100" (default 10)
  std::string duration;           // -T measured time per run (default 20s)
  std::string warmup;             // --warmup (default 2s)
  double ramp = 0;                // --ramp clients started per second

  // Users, as Locust runs them: `users` started at `spawn_rate` per second, each waiting
  // `wait` (MIN..MAX, Locust's between()) after every request; measured from the first
  // second, spawning included. Excludes clients / duration / warmup / ramp.
  std::string users;              // --users N (1..10000)
  std::string spawn_rate;         // --spawn-rate R users/s (default 1, as Locust)
  std::string run_time;           // --run-time T (default 20s)
  std::string wait;               // --wait "1s..2s", "500ms..1s", "0" (default 0: none)

  // What each request does.
  std::string workloads;          // -w built-in names or pgbench script paths (default select-only)
  std::string sql_file;           // --sql-file FILE: weighted SQL requests (bench/sql_file.hpp)
  std::string read_ratio;         // --read-ratio share of reads for mixed: 0..1 or a percentage (default 0.9)
  std::string distribution = "random";  // --distribution random | fixed | weighted
  std::string region = "random";  // --region for latest-purchases
  std::uint32_t limit = 20;       // --limit for latest-purchases
  std::vector<std::string> defines;  // -D NAME=INTEGER

  std::string protocols = "simple";  // -M simple,extended,prepared
  std::uint32_t repeat = 1;       // --repeat: runs per target, interleaved
  std::uint32_t threads = 0;      // -j load generator threads (0: one per core)
  std::uint64_t seed = 1;
  bool connect_per_transaction = false;  // -C
  std::string pause = "1s";
  std::string connect_timeout = "15s";
  std::string request_timeout = "10s";

  std::string results_dir = "bench-results";
  bool no_html = false;
  bool no_csv = false;
  bool quiet = false;             // no per-second lines in the log
};

// One second of one target's run, as it happens.
struct run_point {
  std::string target;
  std::string group;              // e.g. "mixed · simple · 1000 users"
  std::uint32_t second = 0;       // since that target's run started
  bool warmup = false;            // not counted in the results
  std::uint32_t users = 0;        // started so far (users runs), else clients
  std::uint32_t connected = 0;
  std::uint64_t requests = 0;     // completed in that second: requests/s
  std::uint64_t failures = 0;
  double p50_ms = 0, p95_ms = 0, p99_ms = 0;
};

struct run_outcome {
  int status = 0;                 // 0 done, 1 failed while running, 2 bad options (nothing started)
  std::string error;              // for status 1 and 2: what went wrong, naming the option
  std::string run_id;             // "2026-12-01T13-05-00"
  std::filesystem::path dir;      // RESULTS_DIR/<run_id>/ once anything was written
  bool complete = true;           // false when stopped halfway (results so far are saved)
};

// "" when the request is valid, else the message `bench run` prints (naming the option).
// Reads --sql-file and script files; connects to nothing.
std::string validate_run_request(const run_request& request);

// Validates, attaches the local stack if a target needs it, runs every target in turn
// and writes the results. `on_point` (may be empty) is called on the calling thread once
// per second of each target's run. Setting `*stop` ends the run within about a second:
// what was measured is saved, marked incomplete. `log` gets what the command prints
// (progress lines, the tables; nullptr for nothing).
run_outcome run_benchmark(const run_request& request, const std::function<void(const run_point&)>& on_point,
                          const std::atomic<bool>* stop, std::ostream* log);

}  // namespace pgsluice::bench

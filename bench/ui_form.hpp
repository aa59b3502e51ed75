// The run form of `pgsluice bench ui`: its JSON fields checked into a run request, each problem a message naming the field.
//
// Only what needs no database is checked here (numbers, names, ranges), so it is
// unit-tested without servers; whether the targets answer and hold the workload's
// data is checked by the run manager (bench/ui_runs.hpp) just before the run.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "bench/cli_options.hpp"
#include "bench/load_generator.hpp"
#include "bench/workloads.hpp"

namespace pgsluice::bench {

// What one run started from the page runs: one workload, one protocol, one user count,
// on every chosen target in turn.
struct ui_run_request {
  std::vector<target_spec> targets;   // names offered by the page, or NAME=postgresql://...
  workload_options workload;
  protocol_mode protocol = protocol_mode::simple;
  std::uint32_t users = 10;           // the load generator's clients
  double spawn_rate = 0;              // users started per second; 0 = all at once
  millis run_time{10000};             // measured, per target
  millis warmup{0};
  millis wait_min{0};                 // think time after each request, drawn from [wait_min, wait_max]
  millis wait_max{0};
};

// Longest run the page accepts per target: a forgotten browser tab must not load a server for days.
inline constexpr std::chrono::hours ui_max_run_time{24};

// Checks `form` (a JSON object: targets, workload, protocol, users, spawn_rate, run_time,
// warmup, wait_min, wait_max, read_ratio; absent fields take their defaults). `known_targets` are the names
// the page offers; other targets must be NAME=postgresql://... Script paths are refused
// (a form must not name files on the server).
parsed<ui_run_request> parse_run_form(const nlohmann::json& form, const std::vector<std::string>& known_targets);

}  // namespace pgsluice::bench

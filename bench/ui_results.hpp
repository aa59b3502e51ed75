// The Results page's data: past runs found under bench-results/, one run's files, CSV of a run's summary.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <filesystem>
#include <optional>
#include <string>

#include "bench/report.hpp"

namespace pgsluice::bench {

// Every <dir>/<id>/results.json, newest first: id, start time, workloads, targets, users,
// run time, failures and per target its best requests/s and p99. Files that are not
// results of `pgsluice bench` are left out; unreadable ones are listed with their error.
nlohmann::json list_results(const std::filesystem::path& dir);

// <dir>/<id>, when `id` names a results directory directly under `dir` (no path
// separators, no "..": the page cannot reach other files).
std::optional<std::filesystem::path> result_dir(const std::filesystem::path& dir, const std::string& id);

// The summary of a run as CSV: one row per group and target (medians over repeats).
std::string summary_csv(const bench_run& run);

}  // namespace pgsluice::bench

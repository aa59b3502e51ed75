// The steps of a bench run that `bench run` (engine.cpp) and `bench quick` (cli.cpp) share: validation, targets, data, results.
#pragma once

#include <filesystem>
#include <iosfwd>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench/cli_options.hpp"
#include "bench/engine.hpp"
#include "bench/runner.hpp"

namespace pgsluice::bench {

class local_stack;

// A bad option: the command prints it and exits with status 2 before touching any server.
struct usage_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

template <class T>
T value_or_usage(parsed<T> p) {
  if (auto e = parse_error(p)) throw usage_error(*e);
  return std::get<0>(std::move(p));
}

// What the run needs, validated before anything connects.
struct run_setup {
  std::vector<target_spec> targets;
  std::vector<workload_options> workloads;
  std::vector<std::uint32_t> clients;   // or the one number of users
  std::vector<protocol_mode> protocols;
  runner_options runner;
  bool users = false;
  double spawn_rate = 0;
};

// Throws usage_error (or script_error for a bad --sql-file) naming the option.
run_setup validate_run(const run_request& r);
std::vector<workload_options> make_workloads(const run_request& r);

std::unique_ptr<local_stack> attach_or_explain(const std::string& work_dir);
bool needs_stack(const std::vector<target_spec>& targets);
std::vector<bench_target> resolve_targets(const std::vector<target_spec>& specs, local_stack* stack,
                                          std::vector<std::string>& notes);
// `message` with the password of `url` masked.
std::string scrub(std::string message, const std::string& url);
dataset_info probe_any(local_stack* stack, const std::vector<bench_target>& targets, std::vector<std::string>& notes);
bool uses_read_after_write(const std::vector<run_plan>& plans);
void prepare_read_after_write(local_stack* stack, const std::vector<bench_target>& targets,
                              std::vector<std::string>& notes);
std::vector<run_plan> cross_product(const run_setup& s, bool connect_per_transaction);
bench_run new_run(const run_setup& s, const run_request& r, const std::vector<bench_target>& targets);
// Prints the table(s), writes results.json, report.html and the CSV files; `stopped`
// marks the run incomplete. Returns the directory.
std::filesystem::path finish_run(bench_run& run, const run_request& r, bool stopped, std::ostream& out);
void print_notes(const bench_run& run, std::ostream& out);

}  // namespace pgsluice::bench

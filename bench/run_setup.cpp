// The steps of a bench run: options validated into a plan, targets resolved, data probed, results printed and written.
#include "bench/run_setup.hpp"

#include <algorithm>
#include <fstream>
#include <map>
#include <ostream>
#include <sstream>

#include "bench/dataset.hpp"
#include "bench/report_users.hpp"
#include "bench/script.hpp"
#include "bench/sql_file.hpp"
#include "bench/stack.hpp"
#include "bench/sysinfo.hpp"

namespace pgsluice::bench {

namespace fs = std::filesystem;

std::unique_ptr<local_stack> attach_or_explain(const std::string& work_dir) {
  auto stack = local_stack::attach(work_dir);
  if (!stack)
    throw std::runtime_error("no local stack in " + (work_dir.empty() ? default_stack_dir().string() : work_dir) +
                             ": start one with `pgsluice bench stack up` (or give --url / NAME=postgresql://... targets)");
  return stack;
}

std::vector<workload_options> make_workloads(const run_request& w) {
  const double read_ratio = w.read_ratio.empty() ? 0.9 : value_or_usage(parse_read_ratio(w.read_ratio));
  if (!w.sql_file.empty() && !w.workloads.empty())
    throw usage_error("--sql-file and --workload exclude each other: give one");
  const auto names = w.sql_file.empty() ? value_or_usage(parse_list("--workload", w.workloads.empty() ? "select-only" : w.workloads))
                                        : std::vector<std::string>{w.sql_file};
  const auto distribution = parse_key_distribution(w.distribution);
  if (!distribution) throw usage_error("--distribution: '" + w.distribution + "' is not random, fixed or weighted");
  std::map<std::string, std::int64_t> variables;
  for (const auto& d : w.defines) variables.insert(value_or_usage(parse_define(d)));
  std::vector<workload_options> out;
  for (const auto& name : names) {
    workload_options o;
    o.name = name;
    o.read_ratio = read_ratio;
    o.sql_file = !w.sql_file.empty();
    o.distribution = *distribution;
    o.region = w.region;
    o.limit = w.limit;
    o.variables = variables;
    if (const std::string problem = validate_workload_options(o); !problem.empty()) throw usage_error(problem);
    if (o.sql_file) {
      // Parsed and compiled now, so that a bad file fails before anything connects.
      std::ifstream in(name);
      if (!in) throw usage_error("--sql-file: cannot read " + name);
      std::stringstream text;
      text << in.rdbuf();
      auto with_scale = variables;
      with_scale.emplace("scale", 1);
      make_sql_file_workload(name, text.str(), with_scale);
    } else if (is_script_path(name) && !fs::exists(name)) {
      throw usage_error("--workload: script file " + name + " not found");
    }
    out.push_back(std::move(o));
  }
  return out;
}

run_setup validate_run(const run_request& r) {
  run_setup s;
  s.targets = value_or_usage(parse_targets(r.targets));
  s.workloads = make_workloads(r);
  s.protocols = value_or_usage(parse_protocols(r.protocols));
  s.users = !r.users.empty();
  if (s.users) {
    // Locust's model: no warm-up, no fixed client count; measured from the first second.
    for (const auto& [given, option] : {std::pair{!r.clients.empty(), "--clients"}, {!r.duration.empty(), "--duration"},
                                        {!r.warmup.empty(), "--warmup"}, {r.ramp != 0, "--ramp"}})
      if (given)
        throw usage_error(std::string("--users and ") + option + " exclude each other (with --users: --spawn-rate, "
                          "--run-time, --wait; a run of users is measured from its first second, as Locust does)");
    s.clients = {value_or_usage(parse_user_count(r.users))};
    s.spawn_rate = r.spawn_rate.empty() ? 1.0 : value_or_usage(parse_spawn_rate(r.spawn_rate));
    s.runner.load.duration = value_or_usage(parse_bench_duration("--run-time", r.run_time.empty() ? "20s" : r.run_time, false));
    s.runner.load.warmup = millis(0);
    s.runner.load.measure_from_start = true;
    s.runner.load.ramp = s.spawn_rate;
    if (r.connect_per_transaction) throw usage_error("--users and --connect-per-transaction exclude each other");
  } else {
    for (const auto& [given, option] : {std::pair{!r.spawn_rate.empty(), "--spawn-rate"}, {!r.run_time.empty(), "--run-time"}})
      if (given) throw usage_error(std::string(option) + " needs --users (for --clients: --ramp, --duration)");
    s.clients = value_or_usage(parse_client_counts(r.clients.empty() ? "10" : r.clients));
    s.runner.load.duration = value_or_usage(parse_bench_duration("--duration", r.duration.empty() ? "20s" : r.duration, false));
    s.runner.load.warmup = value_or_usage(parse_bench_duration("--warmup", r.warmup.empty() ? "2s" : r.warmup, true));
    if (r.ramp < 0) throw usage_error("--ramp must be 0 (all at once) or a number of clients started per second");
    s.runner.load.ramp = r.ramp;
  }
  if (!r.wait.empty()) {
    const auto [lo, hi] = value_or_usage(parse_wait(r.wait));
    s.runner.load.think_min = lo;
    s.runner.load.think_max = hi;
  }
  s.runner.load.connect_timeout = value_or_usage(parse_bench_duration("--connect-timeout", r.connect_timeout, false));
  s.runner.load.request_timeout = value_or_usage(parse_bench_duration("--request-timeout", r.request_timeout, false));
  s.runner.pause = value_or_usage(parse_bench_duration("--pause", r.pause, true));
  if (r.repeat < 1 || r.repeat > 100) throw usage_error("--repeat must be from 1 to 100");
  if (r.threads > 256) throw usage_error("--threads must be at most 256");
  s.runner.load.threads = r.threads;
  s.runner.load.seed = r.seed;
  s.runner.repeat = r.repeat;
  s.runner.live = !r.quiet;
  return s;
}

// Stack targets get their URL and processes from the running stack.
std::vector<bench_target> resolve_targets(const std::vector<target_spec>& specs, local_stack* stack,
                                          std::vector<std::string>& notes) {
  std::vector<bench_target> out;
  for (const auto& spec : specs) {
    bench_target t;
    t.name = spec.name;
    if (!spec.url.empty()) {
      t.url = spec.url;
    } else {
      const auto st = stack ? stack->target(spec.name) : std::nullopt;
      if (!st) throw std::runtime_error("target " + spec.name + " needs the local stack: run `pgsluice bench stack up`");
      t.url = st->url;
      t.pids = st->pids;
      t.memory_scope = st->memory_scope;
      for (const auto& n : st->nodes) t.nodes.push_back({n.name, n.url});
      if (!st->running) notes.push_back(spec.name + " was not running when the run started (" + st->problem + ")");
    }
    out.push_back(std::move(t));
  }
  return out;
}

bool needs_stack(const std::vector<target_spec>& targets) {
  return std::any_of(targets.begin(), targets.end(), [](const target_spec& t) { return t.url.empty(); });
}

// `message` with the password of `url` masked (libpq and connect errors may quote the URL).
std::string scrub(std::string message, const std::string& url) {
  const std::string redacted = redact_conninfo(url);
  // Searching on after each replacement: a URL without a password is its own redaction.
  for (std::size_t at = 0; !url.empty() && (at = message.find(url, at)) != std::string::npos; at += redacted.size())
    message.replace(at, url.size(), redacted);
  // Also where the URL is quoted cut short: mask the password itself.
  std::string password;
  if (const auto scheme = url.find("://"); scheme != std::string::npos) {
    const auto at = url.find('@', scheme + 3);
    const auto colon = url.find(':', scheme + 3);
    if (at != std::string::npos && colon < at) password = url.substr(colon + 1, at - colon - 1);
  }
  if (password.size() >= 3)
    for (std::size_t at = 0; (at = message.find(password, at)) != std::string::npos; at += 3)
      message.replace(at, password.size(), "***");
  return message;
}

// The data set through the first target that answers (the direct primary when there is a
// stack). When none answers the run still goes ahead, so that every target shows its
// failures, with parameters for a scale-1 data set.
dataset_info probe_any(local_stack* stack, const std::vector<bench_target>& targets, std::vector<std::string>& notes) {
  std::string errors;
  std::vector<std::string> urls;
  if (stack) urls.push_back(stack->admin_url());
  for (const auto& t : targets) urls.push_back(t.url);
  for (const auto& url : urls) {
    try {
      return probe_dataset(url);
    } catch (const std::exception& e) {
      if (errors.empty()) errors = scrub(e.what(), url);
    }
  }
  while (!errors.empty() && (errors.back() == '\n' || errors.back() == ' ')) errors.pop_back();
  notes.push_back("no target answered before the run (" + errors + "); workload parameters assume a scale-1 data set");
  dataset_info assumed;
  assumed.has_pgbench = assumed.has_purchases = assumed.has_weather = assumed.has_vehicles = true;
  assumed.sizes = dataset_sizes::for_scale(1);
  return assumed;
}

bool uses_read_after_write(const std::vector<run_plan>& plans) {
  return std::any_of(plans.begin(), plans.end(), [](const run_plan& p) { return p.workload.name == "read-after-write"; });
}

// The read-after-write table, created (or emptied) on the primary before the run: through
// the stack's primary, else through the first target that takes it.
void prepare_read_after_write(local_stack* stack, const std::vector<bench_target>& targets,
                              std::vector<std::string>& notes) {
  std::vector<std::string> urls;
  if (stack) urls.push_back(stack->admin_url());
  for (const auto& t : targets) urls.push_back(t.url);
  std::string error;
  for (const auto& url : urls) {
    try {
      ensure_read_after_write_table(url);
      return;
    } catch (const std::exception& e) {
      if (error.empty()) error = scrub(e.what(), url);
    }
  }
  notes.push_back("could not create " + std::string(read_after_write_table) + " (" + error +
                  "): read-after-write runs will show its errors");
}

std::vector<run_plan> cross_product(const run_setup& s, bool connect_per_transaction) {
  std::vector<run_plan> plans;
  for (const auto& w : s.workloads)
    for (const auto p : s.protocols)
      for (const auto c : s.clients) plans.push_back({w, p, c, connect_per_transaction, s.users, {}});
  return plans;
}

bench_run new_run(const run_setup& s, const run_request& r, const std::vector<bench_target>& targets) {
  bench_run run;
  run.id = timestamp_id(&run.started_at);
  run.machine = collect_machine_info();
  std::error_code ec;
  run.machine.versions["pgsluice"] = PGSLUICE_BENCH_VERSION;
  run_config& c = run.config;
  for (const auto& wl : s.workloads) c.workloads.push_back(wl.name);
  for (auto p : s.protocols) c.protocols.emplace_back(to_string(p));
  c.clients = s.clients;
  for (const auto& t : targets) c.targets.push_back({t.name, redact_conninfo(t.url)});
  c.duration_s = std::chrono::duration<double>(s.runner.load.duration).count();
  c.warmup_s = std::chrono::duration<double>(s.runner.load.warmup).count();
  c.ramp = s.runner.load.ramp;
  c.repeat = r.repeat;
  c.threads = r.threads;
  c.connect_per_transaction = r.connect_per_transaction;
  c.read_ratio = s.workloads.empty() ? 0.9 : s.workloads.front().read_ratio;
  c.distribution = r.distribution;
  c.region = r.region;
  if (s.users) {
    c.users = s.clients.front();
    c.spawn_rate = s.spawn_rate;
  }
  c.wait_min_s = std::chrono::duration<double>(s.runner.load.think_min).count();
  c.wait_max_s = std::chrono::duration<double>(s.runner.load.think_max).count();
  c.sql_file = r.sql_file;
  return run;
}

fs::path finish_run(bench_run& run, const run_request& r, bool stopped, std::ostream& out) {
  if (stopped) {
    run.complete = false;
    run.notes.push_back("interrupted: the run was stopped before its end; the last target's run covers less than "
                        "the full duration and targets not reached are missing");
  }
  out << '\n' << (run.config.users > 0 ? format_users_table(run) : format_table(run));
  const fs::path dir = fs::path(r.results_dir) / run.id;
  const fs::path json_file = save_run(run, dir);
  out << "\nresults: " << json_file.string() << (run.complete ? "" : "  (incomplete)") << '\n';
  if (!r.no_html) {
    const fs::path html = dir / "report.html";
    std::ofstream(html) << render_html(run);
    out << "report:  " << html.string() << '\n';
  }
  if (!r.no_csv && !run.results.empty()) {
    const auto files = write_locust_csv(run, dir);
    out << "csv:     " << (dir / "*_stats.csv").string() << ", *_stats_history.csv, *_failures.csv (" << files.size()
        << " files)\n";
  }
  return dir;
}

void print_notes(const bench_run& run, std::ostream& out) {
  for (const auto& n : run.notes) out << "note: " << n << '\n';
}
}  // namespace pgsluice::bench

// `pgsluice bench`: the stack, init, run, quick, report and explain subcommands.
#include "bench/cli.hpp"

#include <CLI/CLI.hpp>
#include <libpq-fe.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <thread>

#include "bench/cli_options.hpp"
#include "bench/cluster.hpp"
#include "bench/dataset.hpp"
#include "bench/report.hpp"
#include "bench/runner.hpp"
#include "bench/script.hpp"
#include "bench/stack.hpp"
#include "bench/sysinfo.hpp"
#include "bench/ui.hpp"
#include "bench/workloads.hpp"

namespace pgsluice::bench {

namespace {

namespace fs = std::filesystem;

std::atomic<bool> interrupted{false};

extern "C" void on_interrupt(int) { interrupted.store(true); }

// Ctrl-C ends the current run early; results measured so far are still written.
class interrupt_guard {
 public:
  interrupt_guard() {
    interrupted.store(false);
    struct sigaction sa {};
    sa.sa_handler = on_interrupt;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int_);
    sigaction(SIGTERM, &sa, &old_term_);
  }
  ~interrupt_guard() {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
  }

 private:
  struct sigaction old_int_ {};
  struct sigaction old_term_ {};
};

struct usage_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

template <class T>
T value_or_usage(parsed<T> p) {
  if (auto e = parse_error(p)) throw usage_error(*e);
  return std::get<0>(std::move(p));
}

// Everything the subcommands share.
struct common_args {
  std::string work_dir;
  std::string pgsluice_binary;
};

struct stack_args {
  int replicas = 2;
  bool durable = false;
  int pool_size = 20;
  int pgpool_children = 128;
  bool no_pgsluice = false;
  bool destroy = false;
};

struct workload_args {
  std::string workloads = "select-only";
  double read_ratio = 0.9;
  std::string distribution = "random";
  std::string region = "random";
  std::uint32_t limit = 20;
  std::vector<std::string> defines;
};

struct run_args {
  std::string targets = "direct,pgbouncer,pgpool,pgbouncer-pgpool,pgsluice,pgsluice-routed";
  std::string clients = "10";
  std::string protocols = "simple";
  std::string duration = "20s";
  std::string warmup = "2s";
  std::string pause = "1s";
  std::string connect_timeout = "15s";
  std::string request_timeout = "10s";
  double ramp = 0;
  std::uint32_t repeat = 1;
  std::uint32_t threads = 0;
  std::uint64_t seed = 1;
  bool connect_per_transaction = false;
  std::string results_dir = "bench-results";
  bool no_html = false;
  bool quiet = false;
};

struct init_args {
  double scale = 1;
  std::string datasets = "pgbench,purchases,weather,vehicles";
  unsigned jobs = 0;
  std::string url;
  bool reinit = false;
};

stack_options make_stack_options(const common_args& c, const stack_args& s) {
  stack_options o;
  o.work_dir = c.work_dir;
  o.replicas = s.replicas;
  o.durable = s.durable;
  o.pool_size = s.pool_size;
  o.pgpool_children = s.pgpool_children;
  o.with_pgsluice = !s.no_pgsluice;
  o.pgsluice_binary = c.pgsluice_binary.empty() ? fs::path{} : fs::absolute(c.pgsluice_binary);
  return o;
}

std::unique_ptr<local_stack> attach_or_explain(const common_args& c) {
  auto stack = local_stack::attach(c.work_dir);
  if (!stack)
    throw std::runtime_error("no local stack in " + (c.work_dir.empty() ? default_stack_dir().string() : c.work_dir) +
                             ": start one with `pgsluice bench stack up` (or give --url / NAME=postgresql://... targets)");
  return stack;
}

std::vector<workload_options> make_workloads(const workload_args& w) {
  const auto names = value_or_usage(parse_list("--workload", w.workloads));
  const auto distribution = parse_key_distribution(w.distribution);
  if (!distribution) throw usage_error("--distribution: '" + w.distribution + "' is not random, fixed or weighted");
  std::map<std::string, std::int64_t> variables;
  for (const auto& d : w.defines) variables.insert(value_or_usage(parse_define(d)));
  std::vector<workload_options> out;
  for (const auto& name : names) {
    workload_options o;
    o.name = name;
    o.read_ratio = w.read_ratio;
    o.distribution = *distribution;
    o.region = w.region;
    o.limit = w.limit;
    o.variables = variables;
    if (const std::string problem = validate_workload_options(o); !problem.empty()) throw usage_error(problem);
    if (is_script_path(name) && !fs::exists(name)) throw usage_error("--workload: script file " + name + " not found");
    out.push_back(std::move(o));
  }
  return out;
}

// What the run needs, validated before anything connects.
struct run_setup {
  std::vector<target_spec> targets;
  std::vector<workload_options> workloads;
  std::vector<std::uint32_t> clients;
  std::vector<protocol_mode> protocols;
  runner_options runner;
};

run_setup validate_run(const run_args& r, const workload_args& w) {
  run_setup s;
  s.targets = value_or_usage(parse_targets(r.targets));
  s.workloads = make_workloads(w);
  s.clients = value_or_usage(parse_client_counts(r.clients));
  s.protocols = value_or_usage(parse_protocols(r.protocols));
  s.runner.load.duration = value_or_usage(parse_bench_duration("--duration", r.duration, false));
  s.runner.load.warmup = value_or_usage(parse_bench_duration("--warmup", r.warmup, true));
  s.runner.load.connect_timeout = value_or_usage(parse_bench_duration("--connect-timeout", r.connect_timeout, false));
  s.runner.load.request_timeout = value_or_usage(parse_bench_duration("--request-timeout", r.request_timeout, false));
  s.runner.pause = value_or_usage(parse_bench_duration("--pause", r.pause, true));
  if (r.ramp < 0) throw usage_error("--ramp must be 0 (all at once) or a number of clients started per second");
  if (r.repeat < 1 || r.repeat > 100) throw usage_error("--repeat must be from 1 to 100");
  if (r.threads > 256) throw usage_error("--threads must be at most 256");
  s.runner.load.ramp = r.ramp;
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
  for (std::size_t at; (at = message.find(url)) != std::string::npos;) message.replace(at, url.size(), redacted);
  // Also where the URL is quoted cut short: mask the password itself.
  std::string password;
  if (const auto scheme = url.find("://"); scheme != std::string::npos) {
    const auto at = url.find('@', scheme + 3);
    const auto colon = url.find(':', scheme + 3);
    if (at != std::string::npos && colon < at) password = url.substr(colon + 1, at - colon - 1);
  }
  if (password.size() >= 3)
    for (std::size_t at; (at = message.find(password)) != std::string::npos;) message.replace(at, password.size(), "***");
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
      for (const auto c : s.clients) plans.push_back({w, p, c, connect_per_transaction});
  return plans;
}

bench_run new_run(const run_setup& s, const run_args& r, const workload_args& w, const std::vector<bench_target>& targets) {
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
  c.ramp = r.ramp;
  c.repeat = r.repeat;
  c.threads = r.threads;
  c.connect_per_transaction = r.connect_per_transaction;
  c.read_ratio = w.read_ratio;
  c.distribution = w.distribution;
  c.region = w.region;
  return run;
}

// Prints the table, writes results.json and report.html; returns the directory.
fs::path finish_run(bench_run& run, const run_args& r, std::ostream& out) {
  if (interrupted.load()) run.notes.push_back("interrupted: the last run covers less than the full duration");
  out << '\n' << format_table(run);
  const fs::path dir = fs::path(r.results_dir) / run.id;
  const fs::path json_file = save_run(run, dir);
  out << "\nresults: " << json_file.string() << '\n';
  if (!r.no_html) {
    const fs::path html = dir / "report.html";
    std::ofstream(html) << render_html(run);
    out << "report:  " << html.string() << '\n';
  }
  return dir;
}

void print_notes(const bench_run& run, std::ostream& out) {
  for (const auto& n : run.notes) out << "note: " << n << '\n';
}

int cmd_run(const common_args& c, const run_args& r, const workload_args& w) {
  const run_setup s = validate_run(r, w);
  std::unique_ptr<local_stack> stack;
  if (needs_stack(s.targets)) stack = attach_or_explain(c);
  std::vector<std::string> notes;
  const auto targets = resolve_targets(s.targets, stack.get(), notes);
  const dataset_info data = probe_any(stack.get(), targets, notes);
  bench_run run = new_run(s, r, w, targets);
  run.config.scale = data.sizes.scale;
  run.notes = notes;
  if (stack)
    for (const auto& n : stack->notes()) run.notes.push_back(n);
  const auto plans = cross_product(s, r.connect_per_transaction);
  if (uses_read_after_write(plans)) prepare_read_after_write(stack.get(), targets, run.notes);
  print_notes(run, std::cout);
  interrupt_guard guard;
  runner_options ro = s.runner;
  ro.out = &std::cout;
  ro.stop = &interrupted;
  execute_plans(run, targets, plans, data, ro);
  finish_run(run, r, std::cout);
  return 0;
}

int cmd_stack(const std::string& action, const common_args& c, const stack_args& s) {
  if (action == "up") {
    auto stack = local_stack::up(make_stack_options(c, s), std::cout);
    std::cout << stack->status_text();
    return 0;
  }
  auto stack = local_stack::attach(c.work_dir);
  if (!stack) {
    std::cout << "no local stack in " << (c.work_dir.empty() ? default_stack_dir().string() : c.work_dir) << '\n';
    return action == "status" ? 1 : 0;
  }
  if (action == "status") {
    std::cout << stack->status_text();
    for (const auto& n : stack->notes()) std::cout << "note: " << n << '\n';
    return 0;
  }
  stack->down(s.destroy, std::cout);
  return 0;
}

init_options make_init_options(const init_args& a, const std::string& url) {
  init_options o;
  o.conninfo = url;
  o.scale = a.scale;
  o.jobs = a.jobs;
  o.out = &std::cout;
  const auto list = value_or_usage(parse_list("--datasets", a.datasets));
  o.datasets = {list.begin(), list.end()};
  for (const auto& d : o.datasets)
    if (std::find(dataset_names.begin(), dataset_names.end(), d) == dataset_names.end())
      throw usage_error("--datasets: unknown data set '" + d + "' (pgbench, purchases, weather, vehicles)");
  return o;
}

void print_init_report(const init_report& r) {
  for (const auto& [table, rows] : r.rows) std::cout << "  " << table << ": " << rows << " rows\n";
  for (const auto& n : r.notes) std::cout << "note: " << n << '\n';
  std::cout << "init done in " << static_cast<int>(r.seconds + 0.5) << " s (COPY " << static_cast<int>(r.copy_seconds + 0.5)
            << " s)\n";
}

int cmd_init(const common_args& c, const init_args& a) {
  if (!(a.scale > 0 && a.scale <= 100000)) throw usage_error("--scale must be greater than 0");
  std::unique_ptr<local_stack> stack;
  std::string url = a.url;
  init_options probe_only = make_init_options(a, url);  // validates --datasets before connecting
  if (url.empty()) {
    stack = attach_or_explain(c);
    url = stack->admin_url();
  }
  probe_only.conninfo = url;
  try {
    print_init_report(init_datasets(probe_only));
  } catch (const stack_error& e) {
    throw std::runtime_error(scrub(e.what(), url));
  }
  return 0;
}

int cmd_quick(const common_args& c, const stack_args& s, const init_args& a, run_args r, const workload_args& w,
              bool clients_given, bool workloads_given, bool scale_given) {
  // Validate first: a bad argument must not cost a cluster start.
  if (!(a.scale > 0)) throw usage_error("--scale must be greater than 0");
  run_setup setup = validate_run(r, w);
  std::cout << "== local stack\n";
  auto stack = local_stack::up(make_stack_options(c, s), std::cout);
  dataset_info data = probe_dataset(stack->admin_url());
  const bool complete = data.has_pgbench && data.has_purchases && data.has_weather;
  if (a.reinit || !complete || (scale_given && a.scale != data.sizes.scale)) {
    std::cout << "== loading data sets (scale " << a.scale << ")\n";
    print_init_report(init_datasets(make_init_options(a, stack->admin_url())));
    data = probe_dataset(stack->admin_url());
  } else {
    std::cout << "== data sets already loaded (scale " << data.sizes.scale << "; --reinit to reload)\n";
  }
  std::vector<std::string> notes;
  const auto targets = resolve_targets(setup.targets, stack.get(), notes);
  std::vector<run_plan> plans;
  if (clients_given || workloads_given) {
    plans = cross_product(setup, r.connect_per_transaction);
  } else {
    // The README comparison: pgbench's select-only at 10 and 100 clients, prepared
    // mode (transaction pooling must keep it working) and TPC-B; then read-after-write
    // through the targets that read from replicas (pgsluice-routed, Pgpool-II) next to
    // plain pooling. pgsluice-routed joins the select-only groups only: TPC-B writes
    // everything, so routing has nothing to do there.
    workload_options select_only = setup.workloads.front();
    select_only.name = "select-only";
    workload_options tpcb = select_only;
    tpcb.name = "tpcb";
    workload_options read_after_write = select_only;
    read_after_write.name = "read-after-write";
    std::vector<std::string> not_routed;
    for (const auto& t : targets)
      if (t.name != "pgsluice-routed") not_routed.push_back(t.name);
    plans = {{select_only, protocol_mode::simple, 10, false},
             {select_only, protocol_mode::simple, 100, false},
             {select_only, protocol_mode::prepared, 10, false},
             {tpcb, protocol_mode::simple, 10, false, not_routed},
             {read_after_write, protocol_mode::simple, 10, false, {"pgpool", "pgsluice", "pgsluice-routed"}}};
    setup.clients = {10, 100};
    setup.protocols = {protocol_mode::simple, protocol_mode::prepared};
    setup.workloads = {select_only, tpcb, read_after_write};
  }
  bench_run run = new_run(setup, r, w, targets);
  run.config.scale = data.sizes.scale;
  run.notes = notes;
  for (const auto& n : stack->notes()) run.notes.push_back(n);
  if (uses_read_after_write(plans)) prepare_read_after_write(stack.get(), targets, run.notes);
  std::size_t runs = 0;
  for (const auto& plan : plans)
    for (const auto& t : targets)
      runs += plan.only_targets.empty() || std::find(plan.only_targets.begin(), plan.only_targets.end(), t.name) !=
                                               plan.only_targets.end();
  std::cout << "== comparison (" << plans.size() << " groups, " << runs * setup.runner.repeat << " runs of "
            << r.duration << " each after " << r.warmup << " warm-up)\n";
  print_notes(run, std::cout);
  interrupt_guard guard;
  runner_options ro = setup.runner;
  ro.out = &std::cout;
  ro.stop = &interrupted;
  execute_plans(run, targets, plans, data, ro);
  finish_run(run, r, std::cout);
  return 0;
}

int cmd_report(const std::vector<std::string>& runs, const std::string& output) {
  if (runs.empty() || runs.size() > 2) throw usage_error("report: give one results directory (or results.json), or two to compare");
  const bench_run run = load_run(runs[0]);
  std::optional<bench_run> baseline;
  if (runs.size() == 2) baseline = load_run(runs[1]);
  std::cout << format_table(run);
  if (baseline) std::cout << '\n' << format_comparison(run, *baseline);
  fs::path out = output;
  if (out.empty()) {
    const fs::path base = fs::is_directory(runs[0]) ? fs::path(runs[0]) : fs::path(runs[0]).parent_path();
    out = base / (baseline ? "compare-" + baseline->id + ".html" : "report.html");
  }
  std::ofstream file(out);
  file << render_html(run, baseline ? &*baseline : nullptr);
  if (!file) throw std::runtime_error("cannot write " + out.string());
  std::cout << "\nreport: " << out.string() << '\n';
  return 0;
}

bool is_transaction_control(const std::string& sql) {
  std::string head;
  for (char ch : sql) {
    if (std::isspace(static_cast<unsigned char>(ch))) {
      if (!head.empty()) break;
      continue;
    }
    if (ch == ';') break;
    head += static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  }
  return head == "BEGIN" || head == "END" || head == "COMMIT" || head == "ROLLBACK" || head == "START";
}

int cmd_explain(const common_args& c, const workload_args& w, const std::string& url_arg, bool all) {
  workload_args wa = w;
  if (all) {
    wa.workloads.clear();
    for (const auto& info : builtin_workloads()) wa.workloads += (wa.workloads.empty() ? "" : ",") + std::string(info.name);
  }
  const auto workloads = make_workloads(wa);
  std::unique_ptr<local_stack> stack;
  std::string url = url_arg;
  if (url.empty()) {
    stack = attach_or_explain(c);
    url = stack->admin_url();
  }
  dataset_info data;
  pq_connection conn;
  try {
    data = probe_dataset(url);
    conn = connect(url);
  } catch (const stack_error& e) {
    throw std::runtime_error(scrub(e.what(), url));
  }
  for (const auto& wo : workloads) {
    std::shared_ptr<const transaction_source> source;
    try {
      source = make_workload(wo, data);
    } catch (const std::invalid_argument& e) {
      std::cout << "== " << wo.name << ": skipped: " << e.what() << "\n\n";
      continue;
    }
    rng r(42);
    transaction tx;
    source->next(r, tx);
    std::cout << "== " << wo.name << "\n";
    std::set<std::uint32_t> shown;
    // Every distinct statement of the workload, with parameters from one sample transaction.
    for (int round = 0; round < 64 && shown.size() < source->statements().size(); ++round) {
      for (std::size_t i = 0; i < tx.size(); ++i) {
        const command& cmd = tx[i];
        if (!shown.insert(cmd.statement).second) continue;
        std::string sql;
        render_simple_query(source->statements()[cmd.statement].sql, cmd.params, sql);
        if (is_transaction_control(sql)) continue;
        std::cout << "-- " << sql << ";\n";
        // Inside a transaction rolled back afterwards: EXPLAIN ANALYZE runs writes for real.
        conn.query("BEGIN");
        try {
          for (const auto& row : conn.query("EXPLAIN (ANALYZE, BUFFERS) " + sql))
            std::cout << "   " << row.at(0).value_or("") << "\n";
        } catch (const sql_error& e) {
          std::cout << "   error: " << e.what() << "\n";
        }
        conn.query("ROLLBACK");
        std::cout << "\n";
      }
      tx.clear();
      source->next(r, tx);
    }
  }
  return 0;
}

// `bench ui`: --target items must carry their URL (stack targets are offered anyway).
int cmd_ui(const common_args& c, ui_serve_options o, const std::vector<std::string>& targets, const std::string& results) {
  for (const auto& item : targets) {
    auto specs = value_or_usage(parse_targets(item));
    for (auto& t : specs) {
      if (t.url.empty()) throw usage_error("--target " + item + ": give NAME=postgresql://... (stack targets are offered anyway)");
      o.app.extra_targets.push_back(std::move(t));
    }
  }
  o.app.results_dir = results;
  o.app.work_dir = c.work_dir;
  return serve_ui(o, std::cout);
}

}  // namespace

int run_bench_command(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  CLI::App app{"pgsluice bench: compare pgsluice, PgBouncer and Pgpool-II on a local cluster", "pgsluice bench"};
  app.require_subcommand(1);
  app.fallthrough();
  common_args common;
  app.add_option("--work-dir", common.work_dir, "Local stack directory (default: ./.pgsluice/stack)");
  app.add_option("--pgsluice-binary", common.pgsluice_binary, "pgsluice executable for the stack (default: this one)");

  stack_args sa;
  init_args ia;
  run_args ra;
  workload_args wa;

  auto add_stack_options = [&](CLI::App* cmd) {
    cmd->add_option("--replicas", sa.replicas, "Streaming replicas")->check(CLI::Range(0, 8));
    cmd->add_flag("--durable", sa.durable, "Run PostgreSQL with fsync on");
    cmd->add_option("--pool-size", sa.pool_size, "PgBouncer / pgsluice server connections per pool")->check(CLI::Range(1, 1000));
    cmd->add_option("--pgpool-children", sa.pgpool_children, "Pgpool-II num_init_children")->check(CLI::Range(1, 2000));
    cmd->add_flag("--no-pgsluice", sa.no_pgsluice, "Do not start pgsluice");
  };
  auto add_workload_options = [&](CLI::App* cmd) {
    cmd->add_option("-w,--workload", wa.workloads, "Workloads (comma-separated): built-in names or .sql script paths");
    cmd->add_option("--read-ratio", wa.read_ratio, "mixed: share of reads, 0..1");
    cmd->add_option("--distribution", wa.distribution, "Key choice: random, fixed or weighted (zipf hot spots)");
    cmd->add_option("--region", wa.region, "latest-purchases: random, none or a region name");
    cmd->add_option("--limit", wa.limit, "latest-purchases: rows returned");
    cmd->add_option("-D,--define", wa.defines, "Script variable NAME=INTEGER (like pgbench -D)");
  };
  auto add_run_options = [&](CLI::App* cmd) {
    cmd->add_option("-t,--targets", ra.targets,
                    "Targets (comma-separated): direct, pgbouncer, pgpool, pgbouncer-pgpool, pgsluice, pgsluice-routed, "
                    "NAME=postgresql://...");
    cmd->add_option("-c,--clients", ra.clients, "Client counts (comma-separated), 1 to 10000");
    cmd->add_option("-M,--protocol", ra.protocols, "simple, extended, prepared (comma-separated)");
    cmd->add_option("-T,--duration", ra.duration, "Measured time per run (e.g. 20s, 2m)");
    cmd->add_option("--warmup", ra.warmup, "Warm-up before measuring, excluded from results");
    cmd->add_option("--ramp", ra.ramp, "Clients started per second (0 = all at once)");
    cmd->add_option("--repeat", ra.repeat, "Runs per target; targets alternate and medians are reported");
    cmd->add_flag("-C,--connect-per-transaction", ra.connect_per_transaction, "New connection for every transaction");
    cmd->add_option("-j,--threads", ra.threads, "Load generator threads (default: one per core)");
    cmd->add_option("--connect-timeout", ra.connect_timeout, "Give up a connection attempt after this long");
    cmd->add_option("--request-timeout", ra.request_timeout, "Give up a request after this long");
    cmd->add_option("--pause", ra.pause, "Pause between runs");
    cmd->add_option("--seed", ra.seed, "Random seed for workload parameters");
    cmd->add_option("--results-dir", ra.results_dir, "Where the timestamped results directories go");
    cmd->add_flag("--no-html", ra.no_html, "Do not write report.html");
    cmd->add_flag("-q,--quiet", ra.quiet, "No per-second lines");
  };
  auto add_init_options = [&](CLI::App* cmd) {
    cmd->add_option("-s,--scale", ia.scale, "Data set size (1 = 1M pgbench accounts, 400k purchases, 500k weather rows)");
    cmd->add_option("--datasets", ia.datasets, "pgbench, purchases, weather, vehicles (comma-separated)");
    cmd->add_option("--jobs", ia.jobs, "Parallel COPY connections (default: cores + 1)");
  };

  auto* stack = app.add_subcommand("stack", "Start, stop or show the local stack");
  stack->require_subcommand(1);
  auto* up = stack->add_subcommand("up", "Start (or adopt) the cluster, PgBouncer, Pgpool-II, PgBouncer->Pgpool-II and pgsluice");
  add_stack_options(up);
  auto* down = stack->add_subcommand("down", "Stop everything the stack started (data kept)");
  down->add_flag("--destroy", sa.destroy, "Also remove the work dir");
  auto* status = stack->add_subcommand("status", "Show the servers and the target URLs");

  auto* init = app.add_subcommand("init", "Create and load the data sets (parallel COPY)");
  add_init_options(init);
  init->add_option("--url", ia.url, "Load into this database instead of the local stack's primary");

  auto* run = app.add_subcommand("run", "Run workloads against targets and report");
  add_run_options(run);
  add_workload_options(run);

  auto* quick = app.add_subcommand("quick", "Stack up, load data if needed, run the standard comparison, write JSON and HTML");
  add_stack_options(quick);
  add_init_options(quick);
  add_run_options(quick);
  add_workload_options(quick);
  quick->add_flag("--reinit", ia.reinit, "Reload the data sets even if present");

  std::vector<std::string> report_runs;
  std::string report_output;
  auto* report = app.add_subcommand("report", "Render a saved run as HTML, or compare two runs");
  report->add_option("runs", report_runs, "Results directory (or results.json); a second one to compare against")->required();
  report->add_option("-o,--output", report_output, "HTML file to write (default: next to the run)");

  std::string explain_url;
  bool explain_all = false;
  auto* explain = app.add_subcommand("explain", "EXPLAIN (ANALYZE, BUFFERS) each statement of the workloads");
  add_workload_options(explain);
  explain->add_option("--url", explain_url, "Database to explain on (default: the local stack's primary)");
  explain->add_flag("--all", explain_all, "Every built-in workload");

  // --- bench ui
  ui_serve_options ui_options;
  std::vector<std::string> ui_targets;
  auto* ui = app.add_subcommand("ui", "Serve a web page: choose targets and workload, run, watch it live, browse results");
  ui->add_option("--listen", ui_options.listen,
                 "HOST:PORT (default 127.0.0.1:8089, port 0 = any free; beyond loopback a printed token is required)");
  ui->add_flag("--token", ui_options.require_token, "Require the printed token on loopback too (shared machines)");
  ui->add_option("--target", ui_targets, "A target NAME=postgresql://... offered next to the local stack's (repeatable)");
  ui->add_option("--results-dir", ra.results_dir, "Where runs are saved and the Results page reads them");
  // --- end bench ui

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  // quick's defaults: shorter runs than `bench run`.
  if (quick->parsed()) {
    if (quick->count("--duration") == 0) ra.duration = "10s";
    if (quick->count("--clients") == 0) ra.clients = "10,100";
  }
  try {
    if (up->parsed()) return cmd_stack("up", common, sa);
    if (down->parsed()) return cmd_stack("down", common, sa);
    if (status->parsed()) return cmd_stack("status", common, sa);
    if (init->parsed()) return cmd_init(common, ia);
    if (run->parsed()) return cmd_run(common, ra, wa);
    if (quick->parsed())
      return cmd_quick(common, sa, ia, ra, wa, quick->count("--clients") + quick->count("--protocol") > 0,
                       quick->count("--workload") > 0, quick->count("--scale") > 0);
    if (report->parsed()) return cmd_report(report_runs, report_output);
    if (ui->parsed()) return cmd_ui(common, ui_options, ui_targets, ra.results_dir);
    if (explain->parsed()) return cmd_explain(common, wa, explain_url, explain_all || explain->count("--workload") == 0);
  } catch (const usage_error& e) {
    std::cerr << "pgsluice bench: " << e.what() << '\n';
    return 2;
  } catch (const script_error& e) {
    std::cerr << "pgsluice bench: " << e.what() << '\n';
    return 2;
  } catch (const std::invalid_argument& e) {
    std::cerr << "pgsluice bench: " << e.what() << '\n';
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "pgsluice bench: " << e.what() << '\n';
    return 1;
  }
  return 0;
}

}  // namespace pgsluice::bench

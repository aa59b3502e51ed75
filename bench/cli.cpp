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
#include "bench/engine.hpp"
#include "bench/failover.hpp"
#include "bench/report.hpp"
#include "bench/report_users.hpp"
#include "bench/run_setup.hpp"
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

// Ctrl-C ends the current run early; results measured so far are still written, marked
// incomplete. A second Ctrl-C (the handler is reset by the first) ends the process at once.
class interrupt_guard {
 public:
  interrupt_guard() {
    interrupted.store(false);
    struct sigaction sa {};
    sa.sa_handler = on_interrupt;
    sa.sa_flags = SA_RESETHAND;
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

// `bench run`: the engine's entry (bench/engine.hpp) with the terminal as its log.
int cmd_run(const common_args& c, run_request r) {
  r.work_dir = c.work_dir;
  interrupt_guard guard;
  const run_outcome o = run_benchmark(r, {}, &interrupted, &std::cout);
  if (o.status != 0) {
    std::cerr << "pgsluice bench: " << o.error << '\n';
    if (!o.dir.empty()) std::cerr << "pgsluice bench: what was measured is saved in " << o.dir.string() << '\n';
    return o.status;
  }
  if (!o.complete) {
    std::cerr << "pgsluice bench: interrupted: the results so far are saved in " << o.dir.string()
              << " (marked incomplete)\n";
    return 130;
  }
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
    stack = attach_or_explain(c.work_dir);
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

int cmd_quick(const common_args& c, const stack_args& s, const init_args& a, const run_request& r, bool clients_given,
              bool workloads_given, bool scale_given) {
  // Validate first: a bad argument must not cost a cluster start.
  if (!(a.scale > 0)) throw usage_error("--scale must be greater than 0");
  run_setup setup = validate_run(r);
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
             {tpcb, protocol_mode::simple, 10, false, false, not_routed},
             {read_after_write, protocol_mode::simple, 10, false, false, {"pgpool", "pgsluice", "pgsluice-routed"}}};
    setup.clients = {10, 100};
    setup.protocols = {protocol_mode::simple, protocol_mode::prepared};
    setup.workloads = {select_only, tpcb, read_after_write};
  }
  bench_run run = new_run(setup, r, targets);
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
            << setup.runner.load.duration.count() / 1000.0 << " s each after " << setup.runner.load.warmup.count() / 1000.0
            << " s warm-up)\n";
  print_notes(run, std::cout);
  interrupt_guard guard;
  runner_options ro = setup.runner;
  ro.out = &std::cout;
  ro.stop = &interrupted;
  execute_plans(run, targets, plans, data, ro);
  finish_run(run, r, interrupted.load(), std::cout);
  return interrupted.load() ? 130 : 0;
}

// One run: its table, report.html and CSV files again. Two runs: side by side, and an HTML comparison.
int cmd_report(const std::vector<std::string>& runs, const std::string& output) {
  if (runs.empty() || runs.size() > 2) throw usage_error("report: give one results directory (or results.json), or two to compare");
  const bench_run a = load_run(runs[0]);
  const fs::path base = fs::is_directory(runs[0]) ? fs::path(runs[0]) : fs::path(runs[0]).parent_path();
  fs::path out = output;
  if (runs.size() == 1) {
    std::cout << (a.config.users > 0 ? format_users_table(a) : format_table(a));
    if (out.empty()) out = base / "report.html";
    if (output.empty()) {
      const auto files = write_locust_csv(a, base);
      std::cout << "\ncsv:    " << files.size() << " files in " << base.string() << '\n';
    }
  } else {
    const bench_run b = load_run(runs[1]);
    std::cout << format_side_by_side(a, b);
    if (out.empty()) out = base / ("compare-" + a.id + "-" + b.id + ".html");
  }
  std::ofstream file(out);
  file << (runs.size() == 1 ? render_html(a) : render_comparison_html(a, load_run(runs[1])));
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

int cmd_explain(const common_args& c, const run_request& w, const std::string& url_arg, bool all) {
  run_request wa = w;
  if (all) {
    wa.workloads.clear();
    for (const auto& info : builtin_workloads()) wa.workloads += (wa.workloads.empty() ? "" : ",") + std::string(info.name);
  }
  const auto workloads = make_workloads(wa);
  std::unique_ptr<local_stack> stack;
  std::string url = url_arg;
  if (url.empty()) {
    stack = attach_or_explain(c.work_dir);
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
  run_request rq;

  auto add_stack_options = [&](CLI::App* cmd) {
    cmd->add_option("--replicas", sa.replicas, "Streaming replicas")->check(CLI::Range(0, 8));
    cmd->add_flag("--durable", sa.durable, "Run PostgreSQL with fsync on");
    cmd->add_option("--pool-size", sa.pool_size, "PgBouncer / pgsluice server connections per pool")->check(CLI::Range(1, 1000));
    cmd->add_option("--pgpool-children", sa.pgpool_children, "Pgpool-II num_init_children")->check(CLI::Range(1, 2000));
    cmd->add_flag("--no-pgsluice", sa.no_pgsluice, "Do not start pgsluice");
  };
  auto add_workload_options = [&](CLI::App* cmd) {
    cmd->add_option("-w,--workload", rq.workloads,
                    "Workloads (comma-separated): read, write, mixed, select-only, tpcb, ... (bench explain --all), "
                    "or pgbench script paths");
    cmd->add_option("--sql-file", rq.sql_file, "Weighted SQL requests from FILE ('-- weight: N' headers; see BENCHMARKS.md)");
    cmd->add_option("--read-ratio", rq.read_ratio, "mixed: share of reads, 0..1 or a percentage (80)");
    cmd->add_option("--distribution", rq.distribution, "Key choice: random, fixed or weighted (zipf hot spots)");
    cmd->add_option("--region", rq.region, "latest-purchases: random, none or a region name");
    cmd->add_option("--limit", rq.limit, "latest-purchases: rows returned");
    cmd->add_option("-D,--define", rq.defines, "Script variable NAME=INTEGER (like pgbench -D)");
  };
  auto add_run_options = [&](CLI::App* cmd) {
    cmd->add_option("-t,--targets", rq.targets,
                    "Targets (comma-separated): direct, pgbouncer, pgpool, pgbouncer-pgpool, pgsluice, pgsluice-routed, "
                    "pgbouncer-tls, pgsluice-tls (clients on TLS), pgbouncer-unix, pgsluice-unix (servers over the "
                    "primary's Unix socket), pgsluice-pipelined (pipeline_depth = 8), NAME=postgresql://...");
    cmd->add_option("-c,--clients", rq.clients, "Client counts (comma-separated), 1 to 10000 (default 10)");
    cmd->add_option("--users", rq.users, "Users, as Locust runs them (1 to 10000): each waits --wait between requests");
    cmd->add_option("--spawn-rate", rq.spawn_rate, "--users: users started per second (default 1)");
    cmd->add_option("--run-time", rq.run_time, "--users: how long the run lasts, spawning included (default 20s)");
    cmd->add_option("--wait", rq.wait, "Wait between a user's requests: MIN..MAX (1s..2s), one duration, or 0");
    cmd->add_option("-M,--protocol", rq.protocols, "simple, extended, prepared (comma-separated)");
    cmd->add_option("-T,--duration", rq.duration, "Measured time per run (e.g. 20s, 2m; default 20s)");
    cmd->add_option("--warmup", rq.warmup, "Warm-up before measuring, excluded from results (default 2s)");
    cmd->add_option("--ramp", rq.ramp, "Clients started per second (0 = all at once)");
    cmd->add_option("--repeat", rq.repeat, "Runs per target; targets alternate and medians are reported");
    cmd->add_flag("-C,--connect-per-transaction", rq.connect_per_transaction, "New connection for every transaction");
    cmd->add_option("-j,--threads", rq.threads, "Load generator threads (default: one per core)");
    cmd->add_option("--connect-timeout", rq.connect_timeout, "Give up a connection attempt after this long");
    cmd->add_option("--request-timeout", rq.request_timeout, "Give up a request after this long");
    cmd->add_option("--pause", rq.pause, "Pause between runs");
    cmd->add_option("--seed", rq.seed, "Random seed for workload parameters");
    cmd->add_option("--results-dir", rq.results_dir, "Where the timestamped results directories go");
    cmd->add_flag("--no-html", rq.no_html, "Do not write report.html");
    cmd->add_flag("--no-csv", rq.no_csv, "Do not write the Locust-style CSV files");
    cmd->add_flag("-q,--quiet", rq.quiet, "No per-second lines");
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
  auto* report = app.add_subcommand("report", "Render a saved run again, or compare two runs side by side (report A B)");
  report->add_option("runs", report_runs, "Results directory (or results.json); a second one to compare with")->required();
  report->add_option("-o,--output", report_output, "HTML file to write (default: next to the run)");

  std::string explain_url;
  bool explain_all = false;
  auto* explain = app.add_subcommand("explain", "EXPLAIN (ANALYZE, BUFFERS) each statement of the workloads");
  add_workload_options(explain);
  explain->add_option("--url", explain_url, "Database to explain on (default: the local stack's primary)");
  explain->add_flag("--all", explain_all, "Every built-in workload");

  // failover: the HA benchmark (bench/failover_cli.cpp).
  const auto run_failover_if_parsed = add_failover_command(app, common.pgsluice_binary);

  // --- bench ui
  ui_serve_options ui_options;
  std::vector<std::string> ui_targets;
  auto* ui = app.add_subcommand("ui", "Serve a web page: choose targets and workload, run, watch it live, browse results");
  ui->add_option("--listen", ui_options.listen,
                 "HOST:PORT (default 127.0.0.1:8089, port 0 = any free; beyond loopback a printed token is required)");
  ui->add_flag("--token", ui_options.require_token, "Require the printed token on loopback too (shared machines)");
  ui->add_option("--target", ui_targets, "A target NAME=postgresql://... offered next to the local stack's (repeatable)");
  ui->add_option("--results-dir", rq.results_dir, "Where runs are saved and the Results page reads them");
  // --- end bench ui

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  // quick's defaults: shorter runs than `bench run`.
  if (quick->parsed()) {
    if (quick->count("--duration") == 0 && quick->count("--users") == 0) rq.duration = "10s";
    if (quick->count("--clients") == 0 && quick->count("--users") == 0) rq.clients = "10,100";
  }
  try {
    if (up->parsed()) return cmd_stack("up", common, sa);
    if (down->parsed()) return cmd_stack("down", common, sa);
    if (status->parsed()) return cmd_stack("status", common, sa);
    if (init->parsed()) return cmd_init(common, ia);
    if (run->parsed()) return cmd_run(common, rq);
    if (quick->parsed())
      return cmd_quick(common, sa, ia, rq, quick->count("--clients") + quick->count("--protocol") + quick->count("--users") > 0,
                       quick->count("--workload") + quick->count("--sql-file") > 0, quick->count("--scale") > 0);
    if (report->parsed()) return cmd_report(report_runs, report_output);
    if (ui->parsed()) return cmd_ui(common, ui_options, ui_targets, rq.results_dir);
    if (explain->parsed())
      return cmd_explain(common, rq, explain_url,
                         explain_all || explain->count("--workload") + explain->count("--sql-file") == 0);
    if (const int status = run_failover_if_parsed(); status >= 0) return status;
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

// The `pgsluice bench failover` subcommand: options, validation, the run, the printed table and the files written.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <iostream>
#include <memory>

#include "bench/cli_options.hpp"
#include "bench/failover.hpp"

namespace pgsluice::bench {

namespace {

std::atomic<bool> failover_interrupted{false};
extern "C" void on_failover_interrupt(int) { failover_interrupted.store(true); }

struct failover_args {
  std::string targets = "pgsluice,pgpool,haproxy,pgbouncer";
  std::string kill_at = "5s";
  std::string duration = "30s";
  std::uint32_t clients = 8;
  double read_ratio = 0.5;
  std::string request_timeout = "30s";
  std::string results_dir = "bench-results";
  bool no_html = false;
  bool quiet = false;
};

template <class T>
T checked(parsed<T> p) {
  if (const auto* e = parse_error(p)) throw std::invalid_argument(*e);
  return std::get<0>(std::move(p));
}

failover_options validate(const failover_args& a) {
  failover_options o;
  o.targets = checked(parse_list("--targets", a.targets));
  for (const auto& t : o.targets)
    if (std::find(failover_target_names().begin(), failover_target_names().end(), t) == failover_target_names().end())
      throw std::invalid_argument("--targets: unknown target '" + t + "' (pgsluice, pgpool, haproxy, pgbouncer)");
  o.kill_at = checked(parse_bench_duration("--kill-at", a.kill_at, false));
  o.duration = checked(parse_bench_duration("--duration", a.duration, false));
  if (o.kill_at >= o.duration) throw std::invalid_argument("--kill-at must come before the end of --duration");
  o.request_timeout = checked(parse_bench_duration("--request-timeout", a.request_timeout, false));
  if (a.clients < 1 || a.clients > 256) throw std::invalid_argument("--clients must be from 1 to 256");
  if (!(a.read_ratio >= 0 && a.read_ratio < 1)) throw std::invalid_argument("--read-ratio must be from 0 to below 1 (writes are needed)");
  o.clients = a.clients;
  o.read_ratio = a.read_ratio;
  o.results_dir = a.results_dir;
  o.html = !a.no_html;
  o.live = !a.quiet;
  return o;
}

}  // namespace

std::function<int()> add_failover_command(CLI::App& app, const std::string& pgsluice_binary) {
  auto args = std::make_shared<failover_args>();
  auto* cmd = app.add_subcommand(
      "failover", "Kill the primary under a read/write load through pgsluice, Pgpool-II, HAProxy and PgBouncer; report recovery");
  cmd->add_option("-t,--targets", args->targets, "Targets (comma-separated): pgsluice, pgpool, haproxy, pgbouncer");
  cmd->add_option("--kill-at", args->kill_at, "When the primary is killed, from the start of the load (e.g. 5s)");
  cmd->add_option("-T,--duration", args->duration, "Load time per target, the kill included");
  cmd->add_option("-c,--clients", args->clients, "Clients, each one connection, reading and writing");
  cmd->add_option("--read-ratio", args->read_ratio, "Share of reads among the operations, 0..1");
  cmd->add_option("--request-timeout", args->request_timeout, "Give up an operation after this long");
  cmd->add_option("--results-dir", args->results_dir, "Where the failover-<time> results directory goes");
  cmd->add_flag("--no-html", args->no_html, "Do not write report.html");
  cmd->add_flag("-q,--quiet", args->quiet, "No per-second lines");
  return [cmd, args, &pgsluice_binary]() -> int {
    if (!cmd->parsed()) return -1;
    failover_options o = validate(*args);
    if (!pgsluice_binary.empty()) o.pgsluice_binary = std::filesystem::absolute(pgsluice_binary);
    o.out = &std::cout;
    failover_interrupted.store(false);
    struct sigaction sa {}, old_int {}, old_term {};
    sa.sa_handler = on_failover_interrupt;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    o.stop = &failover_interrupted;
    failover_run run;
    try {
      run = run_failover(o);
    } catch (...) {
      sigaction(SIGINT, &old_int, nullptr);
      sigaction(SIGTERM, &old_term, nullptr);
      throw;
    }
    sigaction(SIGINT, &old_int, nullptr);
    sigaction(SIGTERM, &old_term, nullptr);
    std::cout << '\n' << format_failover_table(run) << '\n' << format_failover_timeline(run);
    const auto dir = save_failover_run(run);
    std::cout << "\nresults: " << (dir / "results.json").string() << '\n';
    if (o.html) std::cout << "report:  " << (dir / "report.html").string() << '\n';
    std::cout << "logs:    " << (dir / "logs").string() << '\n';
    const bool any_ran = std::any_of(run.results.begin(), run.results.end(), [](const failover_result& r) { return r.ran; });
    return any_ran ? 0 : 1;
  };
}

}  // namespace pgsluice::bench

// Benchmark orchestration: interleaved target runs, live output, peak memory of each target's processes.
#include "bench/runner.hpp"

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <ostream>
#include <thread>

#include "bench/pq.hpp"
#include "bench/report_users.hpp"
#include "bench/sysinfo.hpp"

namespace pgsluice::bench {

namespace {

// Samples the memory of a target's process trees every two seconds; keeps the peak.
class memory_sampler {
 public:
  explicit memory_sampler(std::vector<pid_t> pids) : pids_(std::move(pids)) {
    if (!pids_.empty()) thread_ = std::thread([this] { loop(); });
  }
  ~memory_sampler() { stop(); }

  std::optional<memory_usage> stop() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
    return peak_;
  }

 private:
  void sample() {
    memory_usage total;
    bool any = false;
    for (pid_t pid : pids_)
      if (auto m = process_tree_memory(pid, true)) {
        any = true;
        total.rss_kb += m->rss_kb;
        total.pss_kb += m->pss_kb;
        total.processes += m->processes;
      }
    if (!any) return;
    if (!peak_) peak_ = total;
    peak_->rss_kb = std::max(peak_->rss_kb, total.rss_kb);
    peak_->pss_kb = std::max(peak_->pss_kb, total.pss_kb);
    peak_->processes = std::max(peak_->processes, total.processes);
  }

  void loop() {
    std::unique_lock lock(mutex_);
    do {
      lock.unlock();
      try {
        sample();
      } catch (const std::exception&) {
        // A sample lost (processes coming and going) must not end the run.
      }
      lock.lock();
    } while (!wake_.wait_for(lock, std::chrono::seconds(2), [this] { return stopping_; }));
  }

  std::vector<pid_t> pids_;
  std::optional<memory_usage> peak_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

bool checks_reads(const transaction_source& source) {
  const auto& statements = source.statements();
  return std::any_of(statements.begin(), statements.end(), [](const statement_def& s) { return s.reads_own_write; });
}

// Samples the nodes, or explains on `out` why not (the run goes on without shares).
std::optional<std::vector<node_activity>> try_sample(const bench_target& target, std::ostream* out) {
  if (target.nodes.empty()) return std::nullopt;
  try {
    return sample_nodes(target.nodes);
  } catch (const std::exception& e) {
    if (out) *out << "   (" << target.name << ": server statistics not sampled: " << e.what() << ")" << std::endl;
    return std::nullopt;
  }
}

}  // namespace

std::vector<node_activity> sample_nodes(const std::vector<node_endpoint>& nodes) {
  std::vector<node_activity> out;
  for (const auto& n : nodes) {
    pq_connection conn = connect(n.url, std::chrono::seconds(5));
    // One statement, one transaction: a fresh statistics snapshot (stats_fetch_consistency).
    const auto rows = conn.query(
        "SELECT (SELECT coalesce(sum(seq_scan + coalesce(idx_scan, 0)), 0) FROM pg_stat_user_tables)::bigint::text,"
        " (SELECT xact_commit FROM pg_stat_database WHERE datname = current_database())::text");
    node_activity a;
    a.node = n.name;
    if (!rows.empty() && rows[0].size() == 2) {
      a.scans = std::stoull(rows[0][0].value_or("0"));
      a.xacts = std::stoull(rows[0][1].value_or("0"));
    }
    out.push_back(std::move(a));
  }
  return out;
}

void execute_plans(bench_run& run, const std::vector<bench_target>& targets, const std::vector<run_plan>& plans,
                   const dataset_info& data, const runner_options& options) {
  std::vector<std::shared_ptr<const transaction_source>> workloads;
  for (const run_plan& plan : plans) workloads.push_back(make_workload(plan.workload, data));
  std::ostream* out = options.out;
  auto stopped = [&] { return options.stop && options.stop->load(); };

  bool first = true;
  for (std::size_t p = 0; p < plans.size() && !stopped(); ++p) {
    const run_plan& plan = plans[p];
    group_key group{plan.workload.name, std::string(to_string(plan.protocol)), plan.clients, plan.connect_per_transaction,
                    plan.users};
    for (std::uint32_t rep = 0; rep < options.repeat && !stopped(); ++rep) {
      for (const bench_target& target : targets) {
        if (stopped()) break;
        if (!plan.only_targets.empty() &&
            std::find(plan.only_targets.begin(), plan.only_targets.end(), target.name) == plan.only_targets.end())
          continue;
        if (!first && options.pause.count() > 0) std::this_thread::sleep_for(options.pause);
        first = false;
        if (out)
          *out << "== " << group.label() << " · " << target.name << " (run " << rep + 1 << "/" << options.repeat << ")"
               << std::endl;
        load_options lo = options.load;
        lo.conninfo = target.url;
        lo.clients = plan.clients;
        lo.protocol = plan.protocol;
        lo.connect_per_transaction = plan.connect_per_transaction;
        lo.seed = options.load.seed + rep;  // same parameters for every target of a repeat
        const auto nodes_before = try_sample(target, out);
        memory_sampler sampler(target.pids);
        load_generator generator(lo, workloads[p]);
        const double started = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
        const load_result r = generator.run(
            [&](const live_sample& s) {
              if (out && options.live)
                *out << (plan.users ? format_users_live_line(target.name, plan.clients, s)
                                    : format_live_line(target.name, plan.clients, s))
                     << std::endl;
              if (options.on_second) options.on_second(target.name, group, s);
            },
            options.stop);
        run_result result = run_result::from(target.name, group, rep, r);
        result.started_unix = started;
        result.interrupted = stopped();
        result.memory = sampler.stop();
        result.reads_checked = checks_reads(*workloads[p]);
        if (nodes_before)
          if (const auto nodes_after = try_sample(target, out))
            result.backend_activity = activity_between(*nodes_before, *nodes_after);
        result.memory_scope = target.memory_scope;
        if (out) {
          *out << format_result_line(result) << std::endl;
          for (const auto& [kind, sample] : r.error_samples) *out << "   " << kind << ": " << sample << std::endl;
        }
        run.results.push_back(std::move(result));
      }
    }
  }
}

}  // namespace pgsluice::bench

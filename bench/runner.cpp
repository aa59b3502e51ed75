// Benchmark orchestration: interleaved target runs, live output, peak memory of each target's processes.
#include "bench/runner.hpp"

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <ostream>
#include <thread>

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

}  // namespace

void execute_plans(bench_run& run, const std::vector<bench_target>& targets, const std::vector<run_plan>& plans,
                   const dataset_info& data, const runner_options& options) {
  std::vector<std::shared_ptr<const transaction_source>> workloads;
  for (const run_plan& plan : plans) workloads.push_back(make_workload(plan.workload, data));
  std::ostream* out = options.out;
  auto stopped = [&] { return options.stop && options.stop->load(); };

  bool first = true;
  for (std::size_t p = 0; p < plans.size() && !stopped(); ++p) {
    const run_plan& plan = plans[p];
    group_key group{plan.workload.name, std::string(to_string(plan.protocol)), plan.clients, plan.connect_per_transaction};
    for (std::uint32_t rep = 0; rep < options.repeat && !stopped(); ++rep) {
      for (const bench_target& target : targets) {
        if (stopped()) break;
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
        memory_sampler sampler(target.pids);
        load_generator generator(lo, workloads[p]);
        const load_result r = generator.run(
            [&](const live_sample& s) {
              if (out && options.live) *out << format_live_line(target.name, plan.clients, s) << std::endl;
            },
            options.stop);
        run_result result = run_result::from(target.name, group, rep, r);
        result.memory = sampler.stop();
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

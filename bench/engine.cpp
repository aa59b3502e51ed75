// run_benchmark(): a whole `bench run` from a run_request, for the command line and for anything else that starts runs.
#include "bench/engine.hpp"

#include <ostream>
#include <sstream>

#include "bench/dataset.hpp"
#include "bench/load_generator.hpp"
#include "bench/pq.hpp"
#include "bench/run_setup.hpp"
#include "bench/script.hpp"
#include "bench/stack.hpp"

namespace pgsluice::bench {

namespace {

// A sink for when the caller wants no log.
class null_buffer : public std::streambuf {
 protected:
  int overflow(int c) override { return c; }
};

// Tells before the run which targets do not answer (they are run all the same: their
// failures are part of the comparison).
void note_unreachable(const std::vector<bench_target>& targets, std::vector<std::string>& notes) {
  for (const auto& t : targets) {
    try {
      connect(t.url, std::chrono::seconds(3));
    } catch (const std::exception& e) {
      std::string why = scrub(e.what(), t.url);
      while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
      notes.push_back("target " + t.name + " did not answer before the run (" + why +
                      "); it runs all the same, its requests count as failures");
    }
  }
}

// 10,000 users hold 10,000 sockets: the open-files limit must allow them (plus libpq's and
// our own few descriptors).
void check_open_files(std::uint32_t connections) {
  const std::uint64_t limit = raise_open_files_limit();
  const std::uint64_t needed = static_cast<std::uint64_t>(connections) + 64;
  if (limit > 0 && needed > limit)
    throw usage_error(std::to_string(connections) + " connections need about " + std::to_string(needed) +
                      " open files; this process may open " + std::to_string(limit) +
                      " (raise `ulimit -n`, or run fewer users or clients)");
}

}  // namespace

std::string validate_run_request(const run_request& request) {
  try {
    validate_run(request);
  } catch (const usage_error& e) {
    return e.what();
  } catch (const script_error& e) {
    return e.what();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return {};
}

run_outcome run_benchmark(const run_request& r, const std::function<void(const run_point&)>& on_point,
                          const std::atomic<bool>* stop, std::ostream* log) {
  null_buffer discard;
  std::ostream quiet(&discard);
  std::ostream& out = log ? *log : quiet;
  run_outcome outcome;
  std::optional<bench_run> run;
  try {
    const run_setup s = validate_run(r);
    std::uint32_t most = 0;
    for (auto n : s.clients) most = std::max(most, n);
    check_open_files(most);
    std::unique_ptr<local_stack> stack;
    if (needs_stack(s.targets)) stack = attach_or_explain(r.work_dir);
    std::vector<std::string> notes;
    const auto targets = resolve_targets(s.targets, stack.get(), notes);
    const dataset_info data = probe_any(stack.get(), targets, notes);
    note_unreachable(targets, notes);
    run = new_run(s, r, targets);
    run->config.scale = data.sizes.scale;
    run->notes = notes;
    if (stack)
      for (const auto& n : stack->notes()) run->notes.push_back(n);
    if (s.users && s.spawn_rate > 0) {
      const double spawn_s = static_cast<double>(s.clients.front()) / s.spawn_rate;
      const double run_s = std::chrono::duration<double>(s.runner.load.duration).count();
      if (spawn_s > run_s) {
        std::ostringstream note;
        note << "at " << s.spawn_rate << " users/s, starting " << s.clients.front() << " users takes " << spawn_s
             << " s; the run lasts " << run_s << " s, so not all of them start";
        run->notes.push_back(note.str());
      }
    }
    const auto plans = cross_product(s, r.connect_per_transaction);
    if (uses_read_after_write(plans)) prepare_read_after_write(stack.get(), targets, run->notes);
    outcome.run_id = run->id;
    print_notes(*run, out);
    runner_options ro = s.runner;
    ro.out = &out;
    ro.stop = stop;
    if (on_point)
      ro.on_second = [&](const std::string& target, const group_key& group, const live_sample& sample) {
        run_point p;
        p.target = target;
        p.group = group.label();
        p.second = sample.point.second;
        p.warmup = sample.warmup;
        p.users = group.users ? sample.point.users : group.clients;
        p.connected = sample.point.connected;
        p.requests = sample.point.requests;
        p.failures = sample.point.errors;
        p.p50_ms = sample.point.p50_ms;
        p.p95_ms = sample.point.p95_ms;
        p.p99_ms = sample.point.p99_ms;
        on_point(p);
      };
    execute_plans(*run, targets, plans, data, ro);
    const bool stopped = stop && stop->load();
    outcome.dir = finish_run(*run, r, stopped, out);
    outcome.complete = run->complete;
    bool any_request = false;
    for (const auto& res : run->results) any_request |= res.requests > 0;
    if (!run->results.empty() && !any_request && !stopped) {
      outcome.status = 1;
      outcome.error = "no request succeeded on any target (see the failures above and in " + outcome.dir.string() + ")";
    }
  } catch (const usage_error& e) {
    outcome.status = 2;
    outcome.error = e.what();
  } catch (const script_error& e) {
    outcome.status = 2;
    outcome.error = e.what();
  } catch (const std::invalid_argument& e) {
    outcome.status = 2;
    outcome.error = e.what();
  } catch (const std::exception& e) {
    outcome.status = 1;
    outcome.error = e.what();
    // Whatever ran before the failure is kept.
    if (run && !run->results.empty() && outcome.dir.empty()) {
      try {
        outcome.dir = finish_run(*run, r, true, out);
        outcome.complete = false;
      } catch (const std::exception&) {
      }
    }
  }
  return outcome;
}

}  // namespace pgsluice::bench

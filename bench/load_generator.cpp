// The libpq load generator's run: worker threads started, the measured window fixed, seconds reported live and merged.
#include "bench/load_generator.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <thread>
#include <utility>

#include "bench/load_worker.hpp"

namespace pgsluice::bench {

using detail::run_context;
using detail::second_slot;
using detail::steady;
using detail::time_point;
using detail::worker;
using detail::worker_output;

std::uint64_t raise_open_files_limit() noexcept {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return 0;
  if (lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
    getrlimit(RLIMIT_NOFILE, &lim);
  }
  return lim.rlim_cur;
}

timeline_point timeline_builder::add(std::uint32_t second, const latency_histogram& latency, std::uint64_t requests,
                                     std::uint64_t errors) {
  auto ms = [](std::uint64_t ns) { return static_cast<double>(ns) / 1e6; };
  total_.merge(latency);
  total_requests_ += requests;
  total_errors_ += errors;
  timeline_point p;
  p.second = second;
  p.requests = requests;
  p.errors = errors;
  p.p50_ms = ms(latency.percentile(50));
  p.p95_ms = ms(latency.percentile(95));
  p.p99_ms = ms(latency.percentile(99));
  for (std::size_t i = 0; i < locust_percentiles.size(); ++i) p.percentiles_ms[i] = ms(latency.percentile(locust_percentiles[i]));
  p.total_requests = total_requests_;
  p.total_errors = total_errors_;
  p.total_p50_ms = ms(total_.percentile(50));
  p.total_mean_ms = total_.mean() / 1e6;
  p.total_min_ms = ms(total_.min());
  p.total_max_ms = ms(total_.max());
  return p;
}

struct load_generator::impl {
  load_options options;
  std::shared_ptr<const transaction_source> source;
};

load_generator::load_generator(load_options options, std::shared_ptr<const transaction_source> source)
    : impl_(std::make_unique<impl>(impl{std::move(options), std::move(source)})) {}

load_generator::~load_generator() = default;

load_result load_generator::run(const std::function<void(const live_sample&)>& on_second,
                                const std::atomic<bool>* stop) {
  const load_options& opts = impl_->options;
  raise_open_files_limit();

  run_context ctx;
  ctx.options = &opts;
  ctx.source = impl_->source.get();
  ctx.request_kinds = static_cast<std::uint32_t>(std::max<std::size_t>(1, ctx.source->request_kinds().size()));
  for (std::size_t i = 0; i < ctx.source->statements().size(); ++i) ctx.prepared_names.push_back("P_" + std::to_string(i));
  // Earlier keywords are overridden by what the expanded dbname (the URL) sets.
  ctx.keywords = {"application_name", "dbname", nullptr};
  ctx.values = {opts.application_name.c_str(), opts.conninfo.c_str(), nullptr};
  ctx.stop = stop;

  std::uint32_t threads = opts.threads ? opts.threads : std::max(1u, std::thread::hardware_concurrency());
  threads = std::max(1u, std::min(threads, std::max(1u, opts.clients)));
  std::vector<std::vector<std::uint32_t>> slices(threads);
  for (std::uint32_t i = 0; i < opts.clients; ++i) slices[i % threads].push_back(i);

  ctx.start = steady::now();
  // Persistent connections: the warm-up lasts until every client is connected (at
  // most connect_phase_limit longer), so the measured window never includes the
  // login storm of thousands of clients. Connect-per-transaction runs reconnect all
  // the time: their warm-up is the fixed one.
  const bool wait_for_connections = !opts.connect_per_transaction && !opts.measure_from_start;
  bool window_fixed = !wait_for_connections;
  ctx.set_window(ctx.start + opts.warmup + (wait_for_connections ? opts.connect_phase_limit : millis(0)), opts.duration);

  std::vector<std::unique_ptr<worker>> workers;
  const std::uint32_t slots = std::max(1u, opts.max_connecting / threads);
  for (auto& slice : slices) workers.push_back(std::make_unique<worker>(ctx, std::move(slice), slots));
  std::vector<std::thread> running;
  for (auto& w : workers) running.emplace_back([&w] { w->run(); });

  // Merges second `s` of every worker (all must have published it) into the timeline
  // `builder` keeps the running totals of.
  auto merge_second = [&](timeline_builder& builder, std::int64_t s) {
    second_slot sum;
    for (auto& w : workers) {
      worker_output& out = w->output();
      std::lock_guard lock(out.seconds_mutex);
      if (s < static_cast<std::int64_t>(out.seconds.size())) {
        const second_slot& slot = out.seconds[static_cast<std::size_t>(s)];
        sum.latency.merge(slot.latency);
        sum.requests += slot.requests;
        sum.errors += slot.errors;
        sum.stale_reads += slot.stale_reads;
        sum.connected += slot.connected;
        sum.users += slot.users;
      }
    }
    timeline_point p = builder.add(static_cast<std::uint32_t>(s), sum.latency, sum.requests, sum.errors);
    p.stale_reads = sum.stale_reads;
    p.connected = sum.connected;
    p.users = sum.users;
    return p;
  };
  timeline_builder live_timeline;
  auto total_seconds = [&] {
    return static_cast<std::int64_t>(std::ceil(std::chrono::duration<double>(ctx.end() - ctx.start).count() - 1e-9));
  };
  auto all_published = [&](std::int64_t s) {
    return std::all_of(workers.begin(), workers.end(),
                       [&](const auto& w) { return w->output().published.load(std::memory_order_acquire) >= s; });
  };

  // Main thread: fixes the measured window, and reports second s once every worker has moved past it.
  std::int64_t reported = 0;
  std::uint64_t most_connected = 0;
  time_point last_progress = ctx.start;
  for (;;) {
    const time_point now = steady::now();
    if (stop && stop->load()) break;
    if (!window_fixed) {
      std::uint64_t connected = 0;
      for (const auto& w : workers) connected += w->output().connected_now.load(std::memory_order_relaxed);
      if (connected > most_connected) {
        most_connected = connected;
        last_progress = now;
      }
      // A target that refuses or stalls logins must not stretch the warm-up: measure
      // once no new client got in for 5 s.
      const bool stuck = now - last_progress >= std::chrono::seconds(5);
      if (now >= ctx.start + opts.warmup &&
          (connected >= opts.clients || stuck || now >= ctx.start + opts.warmup + opts.connect_phase_limit)) {
        ctx.set_window(now, opts.duration);
        window_fixed = true;
      }
    }
    if (reported < total_seconds() && now >= ctx.start + std::chrono::seconds(reported + 1) + std::chrono::milliseconds(30)) {
      const time_point give_up = now + std::chrono::milliseconds(500);
      while (!all_published(reported) && steady::now() < give_up && !(stop && stop->load()))
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      if (on_second) {
        live_sample sample;
        sample.point = merge_second(live_timeline, reported);
        // A worker busy with logins may publish its second late; the users started are known now.
        std::uint32_t users = 0;
        for (const auto& w : workers) users += w->output().users_now.load(std::memory_order_relaxed);
        sample.point.users = std::max(sample.point.users, users);
        sample.warmup = ctx.start + std::chrono::seconds(reported + 1) <= ctx.warmup_end();
        on_second(sample);
      }
      ++reported;
      continue;
    }
    if (window_fixed && reported >= total_seconds()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  for (auto& t : running) t.join();

  load_result result;
  time_point finished = ctx.start;
  std::size_t seconds = 0;
  result.by_request.resize(ctx.request_kinds + 1);
  for (auto& worker : workers) {
    worker_output* w = &worker->output();
    for (std::size_t k = 0; k < result.by_request.size(); ++k) {
      request_stats& into = result.by_request[k];
      const request_stats& from = w->by_request[k];
      into.kind = from.kind;
      into.requests += from.requests;
      into.failures += from.failures;
      into.latency.merge(from.latency);
      for (const auto& [e, n] : from.errors) into.errors[e] += n;
    }
    result.latency.merge(w->latency);
    result.connect_latency.merge(w->connect_latency);
    result.requests += w->requests;
    result.stale_reads += w->stale_reads;
    result.connections_opened += w->connections_opened;
    result.peak_connected += w->peak_connected;
    for (const auto& [k, v] : w->errors) result.errors[k] += v;
    for (const auto& [k, v] : w->samples) result.error_samples.emplace(k, v);
    finished = std::max(finished, w->finished_at);
    seconds = std::max(seconds, w->seconds.size());
  }
  for (const auto& [k, v] : result.errors) result.failures += v;
  // The seconds of the run proper; the sliver after the end (closing connections) is left out.
  // Whole seconds only: a last sliver of a second would plot as a sudden drop.
  const auto whole_seconds = static_cast<std::size_t>(std::max(0.0, std::floor(std::chrono::duration<double>(ctx.end() - ctx.start).count())));
  seconds = std::min(seconds, std::max<std::size_t>(1, whole_seconds));
  timeline_builder final_timeline;
  for (std::size_t s = 0; s < seconds; ++s)
    result.timeline.push_back(merge_second(final_timeline, static_cast<std::int64_t>(s)));
  // The "connect" row only when something failed outside a request.
  if (result.by_request.back().failures == 0) result.by_request.pop_back();
  result.warmup_seconds = std::chrono::duration<double>(ctx.warmup_end() - ctx.start).count();
  const time_point measured_end = std::min(finished, ctx.end());
  result.measured_seconds = measured_end > ctx.warmup_end()
                                ? std::chrono::duration<double>(measured_end - ctx.warmup_end()).count()
                                : 0.0;
  return result;
}

}  // namespace pgsluice::bench

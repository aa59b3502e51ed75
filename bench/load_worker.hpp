// One load-generator thread: its share of the clients, driven through libpq from one epoll loop (internal to load_generator.cpp).
//
// The run (load_generator::run) starts one worker per thread and reads what each one
// publishes: a slot per elapsed second as it goes, the totals once it has returned. The
// client state machine itself (connect, prepare, execute, roll back, think, reconnect)
// lives in load_worker.cpp; this header shows only what the two sides share, and keeps
// libpq out of it.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "bench/histogram.hpp"
#include "bench/load_generator.hpp"
#include "bench/transaction.hpp"

namespace pgsluice::bench::detail {

using steady = std::chrono::steady_clock;
using time_point = steady::time_point;

// Everything the workers share read-only.
struct run_context {
  const load_options* options = nullptr;
  const transaction_source* source = nullptr;
  std::uint32_t request_kinds = 1;        // rows of worker_output::by_request before the "connect" row
  std::vector<std::string> prepared_names;
  std::vector<const char*> keywords;
  std::vector<const char*> values;
  time_point start;
  // The measured window, in ns since start. The warm-up may end late (when every
  // client is connected), so both move once, from the main thread.
  std::atomic<std::int64_t> warmup_end_ns{0};
  std::atomic<std::int64_t> end_ns{0};
  const std::atomic<bool>* stop = nullptr;

  time_point warmup_end() const noexcept {
    return start + std::chrono::nanoseconds(warmup_end_ns.load(std::memory_order_relaxed));
  }
  time_point end() const noexcept { return start + std::chrono::nanoseconds(end_ns.load(std::memory_order_relaxed)); }
  void set_window(time_point warmup_until, millis duration) noexcept {
    const auto w = std::chrono::duration_cast<std::chrono::nanoseconds>(warmup_until - start).count();
    warmup_end_ns.store(w, std::memory_order_relaxed);
    end_ns.store(w + std::chrono::duration_cast<std::chrono::nanoseconds>(duration).count(), std::memory_order_relaxed);
  }
};

// What one worker saw in one second of the run.
struct second_slot {
  latency_histogram latency;
  std::uint64_t requests = 0;
  std::uint64_t errors = 0;
  std::uint64_t stale_reads = 0;
  std::uint32_t connected = 0;
  std::uint32_t users = 0;
};

// A worker's results: the totals are read after its thread has been joined; the seconds
// (under seconds_mutex, up to `published`) and connected_now while it runs.
struct worker_output {
  latency_histogram latency, connect_latency;
  std::uint64_t requests = 0;
  std::uint64_t stale_reads = 0;
  std::uint64_t connections_opened = 0;
  std::uint32_t peak_connected = 0;
  std::map<std::string, std::uint64_t> errors;
  std::map<std::string, std::string> samples;
  std::vector<request_stats> by_request;  // request_kinds rows, then the "connect" row
  time_point finished_at;

  std::mutex seconds_mutex;
  std::vector<second_slot> seconds;
  std::atomic<std::int64_t> published{-1};
  std::atomic<std::uint32_t> connected_now{0};
  std::atomic<std::uint32_t> users_now{0};   // started so far: live lines need no lagging worker's slot
};

class worker {
 public:
  // `ids` are this worker's clients (their numbers decide seeds and spawn times).
  worker(const run_context& ctx, std::vector<std::uint32_t> ids, std::uint32_t connect_slots);
  ~worker();
  worker(const worker&) = delete;
  worker& operator=(const worker&) = delete;

  // The event loop, until the end of the window or the stop flag; then every connection is closed.
  void run();
  worker_output& output() noexcept;

 private:
  struct engine;
  std::unique_ptr<engine> engine_;
};

}  // namespace pgsluice::bench::detail

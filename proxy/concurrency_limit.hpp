// The adaptive limit of pool_size = "auto": how many server connections may be busy at once, learnt from round trips.
//
// Why: a PostgreSQL server on a few cores serves the most transactions per second with a few
// busy backends; more of them only queue inside the server (CPU, locks, caches) and make every
// transaction slower. Queueing the extra clients in the pool instead costs nothing in
// throughput and keeps the server at its best concurrency.
//
// How (TCP Vegas, as in Netflix's concurrency-limits "VegasLimit", with BBR's ProbeRTT to
// re-learn the baseline): each finished transaction reports how long it held its server (its
// round trip as the pool sees it, queueing in the pool excluded) and how many servers were busy
// then. Samples are grouped in windows; per window the mean round trip `rtt` is compared with
// the baseline `base` (the lowest window mean seen at low concurrency), and
//     queue = limit * (1 - base / rtt)
// estimates how many transactions wait inside the server. Below alpha the limit grows (only
// when it was actually used: a pool with less demand than its limit learns nothing about more),
// above beta it shrinks towards the concurrency that would keep `queue` near alpha (at most
// halving per window); in between it holds. Every probe_interval the limit drops to its minimum
// for one window, whose mean becomes the new baseline: a workload whose transactions became
// slower at any concurrency is not mistaken for queueing for ever.
//
// Pure: samples and time in, limit out (DESIGN.md convention 5); the pool calls it under its
// lock and publishes the limit.
#pragma once

#include <chrono>
#include <cstdint>

namespace pgsluice::proxy {

struct concurrency_limit_settings {
  std::uint32_t min = 2;
  std::uint32_t max = 100;
  // A window closes at the first sample after both: this much time, and max(window_samples,
  // limit) samples taken at or below the limit.
  std::chrono::steady_clock::duration window = std::chrono::milliseconds(50);
  std::uint32_t window_samples = 16;
  // How often the baseline is measured again at the minimum limit.
  std::chrono::steady_clock::duration probe_interval = std::chrono::seconds(10);
};

class concurrency_limit {
 public:
  using clock = std::chrono::steady_clock;

  concurrency_limit(concurrency_limit_settings s, clock::time_point now) noexcept;

  // A transaction ended: it held its server for `rtt`, while `in_flight` servers (itself
  // included) were busy. Returns true when the limit changed.
  bool on_sample(clock::duration rtt, std::uint32_t in_flight, clock::time_point now) noexcept;

  std::uint32_t limit() const noexcept { return limit_; }
  // The round trip taken as "no queueing" (zero until the first window closed).
  clock::duration baseline() const noexcept { return baseline_; }
  bool probing() const noexcept { return probing_; }
  const concurrency_limit_settings& settings() const noexcept { return s_; }

  // The decision for one window, exposed for tests: the next limit for `limit` given the
  // window's mean round trip, the baseline, and whether the limit was reached.
  static std::uint32_t next_limit(std::uint32_t limit, double rtt, double baseline, bool saturated,
                                  const concurrency_limit_settings& s) noexcept;

 private:
  void start_window(clock::time_point now) noexcept;
  bool close_window(clock::time_point now) noexcept;

  concurrency_limit_settings s_;
  std::uint32_t limit_;
  clock::duration baseline_{0};
  bool probing_ = false;
  std::uint32_t limit_before_probe_ = 0;
  clock::time_point last_probe_;
  // The window being filled.
  clock::time_point window_start_;
  std::uint32_t count_ = 0;
  std::uint32_t max_in_flight_ = 0;
  double sum_ = 0;  // seconds
};

}  // namespace pgsluice::proxy

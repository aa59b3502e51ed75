// A Vegas-style latency limiter: windows of round trips against a probed baseline decide the pool's active limit.
#include "proxy/concurrency_limit.hpp"

#include <algorithm>
#include <cmath>

namespace pgsluice::proxy {

namespace {
// Vegas's thresholds grow with the logarithm of the limit (3 and 6 log10, VegasLimit's): a
// larger limit tolerates a few more queued transactions before it counts as congestion, and
// the band is wide enough for round trips that other load on a shared host makes noisy.
// Floors keep small limits from flapping on the noise of one transaction.
double alpha_of(std::uint32_t limit) noexcept { return std::max(1.0, 3.0 * std::log10(static_cast<double>(limit))); }
double beta_of(std::uint32_t limit) noexcept { return std::max(2.0, 6.0 * std::log10(static_cast<double>(limit))); }
}  // namespace

concurrency_limit::concurrency_limit(concurrency_limit_settings s, clock::time_point now) noexcept
    : s_(s), limit_(0), last_probe_(now) {
  s_.min = std::max<std::uint32_t>(1, s_.min);
  s_.max = std::max(s_.min, s_.max);
  // Start low: the first windows measure the baseline, then the limit climbs to what the server takes.
  limit_ = s_.min;
  start_window(now);
}

std::uint32_t concurrency_limit::next_limit(std::uint32_t limit, double rtt, double baseline, bool saturated,
                                            const concurrency_limit_settings& s) noexcept {
  if (rtt <= 0 || baseline <= 0) return std::clamp(limit, s.min, s.max);
  const double l = static_cast<double>(limit);
  const double queue = l * (1.0 - std::min(1.0, baseline / rtt));
  const double alpha = alpha_of(limit);
  std::uint32_t next = limit;
  if (queue > beta_of(limit)) {
    // Where the server's queue would be about alpha if round trips grow with concurrency (as
    // on a saturated server), but never below half the limit in one step: one noisy window
    // must not collapse a pool.
    const double target = l * baseline / rtt + alpha;
    const double floor_half = std::ceil(l / 2.0);
    next = static_cast<std::uint32_t>(std::min(l - 1.0, std::max(floor_half, std::floor(target))));
  } else if (queue < alpha && saturated) {
    next = limit + static_cast<std::uint32_t>(std::max(1.0, std::round(alpha - queue)));
  }
  return std::clamp(next, s.min, s.max);
}

void concurrency_limit::start_window(clock::time_point now) noexcept {
  window_start_ = now;
  count_ = 0;
  max_in_flight_ = 0;
  sum_ = 0;
}

bool concurrency_limit::on_sample(clock::duration rtt, std::uint32_t in_flight, clock::time_point now) noexcept {
  // Transactions that started while more servers were busy than the limit allows now (just
  // after a decrease, or during a probe's drain) say nothing about the current limit.
  if (in_flight <= limit_) {
    ++count_;
    max_in_flight_ = std::max(max_in_flight_, in_flight);
    sum_ += std::chrono::duration<double>(std::max(rtt, clock::duration::zero())).count();
  }
  if (count_ < std::max(s_.window_samples, limit_) || now - window_start_ < s_.window) return false;
  return close_window(now);
}

bool concurrency_limit::close_window(clock::time_point now) noexcept {
  const std::uint32_t before = limit_;
  const double mean = sum_ / count_;
  const auto mean_d = std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(mean));
  if (probing_) {
    // Measured at the minimum: the round trip without queueing in the server, as it is now.
    baseline_ = mean_d;
    probing_ = false;
    last_probe_ = now;
    limit_ = limit_before_probe_;
  } else {
    if (baseline_.count() == 0 || mean_d < baseline_) baseline_ = mean_d;
    const double base = std::chrono::duration<double>(baseline_).count();
    limit_ = next_limit(limit_, mean, base, max_in_flight_ >= limit_, s_);
    if (now - last_probe_ >= s_.probe_interval) {
      if (limit_ > s_.min) {
        probing_ = true;
        limit_before_probe_ = limit_;
        limit_ = s_.min;
      } else {
        // Already at the minimum: this window was the probe.
        baseline_ = mean_d;
        last_probe_ = now;
      }
    }
  }
  start_window(now);
  return limit_ != before;
}

}  // namespace pgsluice::proxy

// Log-linear latency histogram: bucket arithmetic, merging and percentiles.
#include "bench/histogram.hpp"

#include <algorithm>
#include <bit>
#include <cmath>

namespace pgsluice::bench {

namespace {
constexpr std::uint64_t sub_buckets = 1ull << latency_histogram::sub_bucket_bits;  // 128
constexpr int first_log_exponent = latency_histogram::sub_bucket_bits + 1;         // 2^8 = 256
}  // namespace

std::size_t latency_histogram::bucket_count() noexcept {
  static const std::size_t n = bucket_index(max_trackable_ns) + 1;
  return n;
}

std::size_t latency_histogram::bucket_index(std::uint64_t ns) noexcept {
  if (ns > max_trackable_ns) ns = max_trackable_ns;
  if (ns < linear_limit) return static_cast<std::size_t>(ns);
  const int exponent = std::bit_width(ns) - 1;               // >= 8
  const int shift = exponent - sub_bucket_bits;              // keeps 8 significant bits
  const std::uint64_t mantissa = ns >> shift;                // in [128, 256)
  return static_cast<std::size_t>(linear_limit + static_cast<std::uint64_t>(exponent - first_log_exponent) * sub_buckets +
                                  (mantissa - sub_buckets));
}

std::uint64_t latency_histogram::bucket_lower(std::size_t index) noexcept {
  if (index < linear_limit) return index;
  const std::uint64_t rel = index - linear_limit;
  const int exponent = first_log_exponent + static_cast<int>(rel / sub_buckets);
  const std::uint64_t mantissa = sub_buckets + rel % sub_buckets;
  return mantissa << (exponent - sub_bucket_bits);
}

std::uint64_t latency_histogram::bucket_upper(std::size_t index) noexcept {
  if (index < linear_limit) return index;
  const std::uint64_t rel = index - linear_limit;
  const int exponent = first_log_exponent + static_cast<int>(rel / sub_buckets);
  const std::uint64_t mantissa = sub_buckets + rel % sub_buckets;
  return ((mantissa + 1) << (exponent - sub_bucket_bits)) - 1;
}

void latency_histogram::record_n(std::uint64_t ns, std::uint64_t n) noexcept {
  if (n == 0) return;
  if (counts_.empty()) counts_.assign(bucket_count(), 0);
  counts_[bucket_index(ns)] += n;
  count_ += n;
  sum_ += ns * n;
  min_ = std::min(min_, ns);
  max_ = std::max(max_, ns);
}

void latency_histogram::merge(const latency_histogram& other) {
  if (other.count_ == 0) return;
  if (counts_.empty()) counts_.assign(bucket_count(), 0);
  for (std::size_t i = 0; i < other.counts_.size(); ++i) counts_[i] += other.counts_[i];
  count_ += other.count_;
  sum_ += other.sum_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
}

void latency_histogram::reset() noexcept {
  std::fill(counts_.begin(), counts_.end(), 0);
  count_ = 0;
  sum_ = 0;
  min_ = ~0ull;
  max_ = 0;
}

std::uint64_t latency_histogram::percentile(double q) const noexcept {
  if (count_ == 0) return 0;
  if (q <= 0) return min_;
  if (q >= 100) return max_;
  auto rank = static_cast<std::uint64_t>(std::ceil(q / 100.0 * static_cast<double>(count_)));
  rank = std::clamp<std::uint64_t>(rank, 1, count_);
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= rank) {
      const std::uint64_t lo = bucket_lower(i);
      const std::uint64_t mid = lo + (bucket_upper(i) - lo) / 2;
      return std::clamp(mid, min_, max_);
    }
  }
  return max_;
}

std::vector<std::pair<std::uint64_t, std::uint64_t>> latency_histogram::nonzero_buckets() const {
  std::vector<std::pair<std::uint64_t, std::uint64_t>> out;
  for (std::size_t i = 0; i < counts_.size(); ++i)
    if (counts_[i] != 0) out.emplace_back(bucket_lower(i), counts_[i]);
  return out;
}

latency_histogram latency_histogram::from_buckets(const std::vector<std::pair<std::uint64_t, std::uint64_t>>& buckets,
                                                  std::uint64_t min_ns, std::uint64_t max_ns, double sum_ns) {
  latency_histogram h;
  for (const auto& [lower, n] : buckets) h.record_n(lower, n);
  if (h.count_ != 0) {
    h.min_ = min_ns;   // the exact extremes saved alongside the buckets
    h.max_ = max_ns;
    h.sum_ = static_cast<std::uint64_t>(std::max(0.0, sum_ns));
  }
  return h;
}

}  // namespace pgsluice::bench

// Log-linear latency histogram (HDR-style): ~0.8% bucket precision from 1 ns to 100 s, mergeable.
//
// Values below 256 ns get one bucket each; above, every power of two is split in
// 128 equal sub-buckets, so a bucket is never wider than 1/128 of its lower
// bound. Histograms of different threads and seconds are added bucket by bucket,
// which keeps percentiles exact up to that precision (averaging percentiles would not).
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace pgsluice::bench {

class latency_histogram {
 public:
  static constexpr int sub_bucket_bits = 7;                                // 128 sub-buckets
  static constexpr std::uint64_t linear_limit = 1ull << (sub_bucket_bits + 1);  // 256
  static constexpr std::uint64_t max_trackable_ns = 100'000'000'000ull;    // 100 s; larger values clamp
  static std::size_t bucket_count() noexcept;

  static std::size_t bucket_index(std::uint64_t ns) noexcept;
  static std::uint64_t bucket_lower(std::size_t index) noexcept;   // smallest value in the bucket
  static std::uint64_t bucket_upper(std::size_t index) noexcept;   // largest value in the bucket

  void record(std::uint64_t ns) noexcept { record_n(ns, 1); }
  void record_n(std::uint64_t ns, std::uint64_t n) noexcept;
  void merge(const latency_histogram& other);
  void reset() noexcept;

  std::uint64_t count() const noexcept { return count_; }
  bool empty() const noexcept { return count_ == 0; }
  std::uint64_t min() const noexcept { return count_ ? min_ : 0; }
  std::uint64_t max() const noexcept { return max_; }
  double mean() const noexcept { return count_ ? static_cast<double>(sum_) / static_cast<double>(count_) : 0.0; }

  // The value at percentile q (0..100): the middle of the bucket holding the
  // ceil(q% * count)-th smallest value, clamped to [min, max]. 0 when empty.
  std::uint64_t percentile(double q) const noexcept;

  // Non-empty buckets as (lower bound ns, count), ascending: the compact form saved in JSON.
  std::vector<std::pair<std::uint64_t, std::uint64_t>> nonzero_buckets() const;
  // Rebuilds from nonzero_buckets() output plus the exact extremes and sum.
  static latency_histogram from_buckets(const std::vector<std::pair<std::uint64_t, std::uint64_t>>& buckets,
                                        std::uint64_t min_ns, std::uint64_t max_ns, double sum_ns);
  double sum() const noexcept { return static_cast<double>(sum_); }

 private:
  std::vector<std::uint64_t> counts_;   // allocated on first record: idle histograms cost nothing
  std::uint64_t count_ = 0;
  std::uint64_t sum_ = 0;         // ns; overflows only after 584 years of summed latency
  std::uint64_t min_ = ~0ull;
  std::uint64_t max_ = 0;
};

}  // namespace pgsluice::bench

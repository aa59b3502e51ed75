// Fast deterministic random numbers for the bench: xoshiro256**, uniform ranges and a Zipf sampler.
//
// Every client of a run gets its own generator seeded from (run seed, client id),
// so each target sees the same sequence of parameters and runs stay comparable.
#pragma once

#include <cmath>
#include <cstdint>

namespace pgsluice::bench {

__extension__ using uint128_t = unsigned __int128;  // GCC/Clang builtin; __extension__ keeps -Wpedantic quiet

// splitmix64: seeds xoshiro and hashes row numbers into reproducible values when loading data.
inline std::uint64_t splitmix64(std::uint64_t& state) noexcept {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Stateless variant: a well-mixed 64-bit value for (seed, index).
inline std::uint64_t mix64(std::uint64_t seed, std::uint64_t index) noexcept {
  std::uint64_t state = seed ^ (index * 0xd1342543de82ef95ull);
  return splitmix64(state);
}

// xoshiro256** (Blackman & Vigna): small, fast, good enough for workload parameters.
class rng {
 public:
  explicit rng(std::uint64_t seed = 1) noexcept { reseed(seed); }

  void reseed(std::uint64_t seed) noexcept {
    for (auto& word : s_) word = splitmix64(seed);
  }

  std::uint64_t next() noexcept {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

  // Uniform in [0, bound) without modulo bias (Lemire's multiply-shift with rejection).
  std::uint64_t below(std::uint64_t bound) noexcept {
    if (bound == 0) return 0;
    uint128_t m = static_cast<uint128_t>(next()) * bound;
    auto low = static_cast<std::uint64_t>(m);
    if (low < bound) {
      const std::uint64_t threshold = -bound % bound;
      while (low < threshold) {
        m = static_cast<uint128_t>(next()) * bound;
        low = static_cast<std::uint64_t>(m);
      }
    }
    return static_cast<std::uint64_t>(m >> 64);
  }

  // Uniform integer in [lo, hi] (inclusive, like pgbench's random()).
  std::int64_t uniform(std::int64_t lo, std::int64_t hi) noexcept {
    if (hi <= lo) return lo;
    const auto span = static_cast<std::uint64_t>(hi) - static_cast<std::uint64_t>(lo) + 1;
    return static_cast<std::int64_t>(static_cast<std::uint64_t>(lo) + (span == 0 ? next() : below(span)));
  }

  // Uniform double in [0, 1).
  double unit() noexcept { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

  double uniform_real(double lo, double hi) noexcept { return lo + (hi - lo) * unit(); }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) noexcept { return (x << k) | (x >> (64 - k)); }
  std::uint64_t s_[4]{};
};

// Zipf distribution over 1..n with exponent s > 0: P(k) proportional to 1/k^s.
// Rejection-inversion sampling (Hörmann & Derflinger 1996), O(1) time and memory,
// so "hot spot" workloads work over millions of keys; the same method backs
// pgbench's random_zipfian().
class zipf_sampler {
 public:
  zipf_sampler(std::uint64_t n, double s) noexcept
      : n_(n < 1 ? 1 : n), s_exp_(s <= 0 ? 1e-9 : s) {
    h_integral_x1_ = h_integral(1.5) - 1.0;
    h_integral_n_ = h_integral(static_cast<double>(n_) + 0.5);
    threshold_ = 2.0 - h_integral_inverse(h_integral(2.5) - h(2.0));
  }

  std::uint64_t operator()(rng& r) const noexcept {
    for (;;) {
      const double u = h_integral_n_ + r.unit() * (h_integral_x1_ - h_integral_n_);
      const double x = h_integral_inverse(u);
      auto k = static_cast<std::int64_t>(x + 0.5);
      if (k < 1) k = 1;
      if (static_cast<std::uint64_t>(k) > n_) k = static_cast<std::int64_t>(n_);
      const auto kd = static_cast<double>(k);
      if (kd - x <= threshold_ || u >= h_integral(kd + 0.5) - h(kd)) return static_cast<std::uint64_t>(k);
    }
  }

  std::uint64_t size() const noexcept { return n_; }
  double exponent() const noexcept { return s_exp_; }

 private:
  // (x^(1-s) - 1) / (1-s), continuous at s = 1 (log x).
  double h_integral(double x) const noexcept {
    const double log_x = std::log(x);
    return helper2((1.0 - s_exp_) * log_x) * log_x;
  }
  double h(double x) const noexcept { return std::exp(-s_exp_ * std::log(x)); }
  double h_integral_inverse(double x) const noexcept {
    double t = x * (1.0 - s_exp_);
    if (t < -1.0) t = -1.0;
    return std::exp(helper1(t) * x);
  }
  static double helper1(double x) noexcept {  // log1p(x)/x
    return std::abs(x) > 1e-8 ? std::log1p(x) / x : 1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x));
  }
  static double helper2(double x) noexcept {  // expm1(x)/x
    return std::abs(x) > 1e-8 ? std::expm1(x) / x : 1.0 + x * 0.5 * (1.0 + x * (1.0 / 3.0) * (1.0 + 0.25 * x));
  }

  std::uint64_t n_;
  double s_exp_;
  double h_integral_x1_ = 0;
  double h_integral_n_ = 0;
  double threshold_ = 0;
};

}  // namespace pgsluice::bench

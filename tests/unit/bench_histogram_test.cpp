// Unit tests for the bench's latency histogram, random generators and query rendering (no network).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "bench/histogram.hpp"
#include "bench/load_generator.hpp"
#include "bench/random.hpp"

namespace pgsluice::bench {
namespace {

TEST(bench_histogram, bucket_bounds_are_contiguous_and_within_one_percent) {
  for (std::size_t i = 1; i < latency_histogram::bucket_count(); ++i) {
    ASSERT_EQ(latency_histogram::bucket_lower(i), latency_histogram::bucket_upper(i - 1) + 1) << i;
    const double lo = static_cast<double>(latency_histogram::bucket_lower(i));
    const double width = static_cast<double>(latency_histogram::bucket_upper(i)) - lo + 1;
    if (lo >= 256) {
      ASSERT_LE(width / lo, 1.0 / 128 + 1e-12) << i;
    }
  }
  for (std::uint64_t v : {0ull, 1ull, 255ull, 256ull, 1000ull, 123456789ull, 99'999'999'999ull}) {
    const std::size_t i = latency_histogram::bucket_index(v);
    EXPECT_LE(latency_histogram::bucket_lower(i), v);
    EXPECT_GE(latency_histogram::bucket_upper(i), v);
  }
}

TEST(bench_histogram, values_above_100_seconds_clamp_into_the_last_bucket) {
  latency_histogram h;
  h.record(500'000'000'000ull);
  EXPECT_EQ(latency_histogram::bucket_index(500'000'000'000ull), latency_histogram::bucket_count() - 1);
  EXPECT_EQ(h.count(), 1u);
  EXPECT_EQ(h.max(), 500'000'000'000ull);  // the exact extreme is kept
}

TEST(bench_histogram, percentiles_match_exact_order_statistics_within_one_percent) {
  // Log-uniform latencies from 1 µs to 10 s, compared against the sorted values.
  rng r(42);
  std::vector<std::uint64_t> values;
  latency_histogram h;
  for (int i = 0; i < 200000; ++i) {
    const auto v = static_cast<std::uint64_t>(std::exp(r.uniform_real(std::log(1e3), std::log(1e10))));
    values.push_back(v);
    h.record(v);
  }
  std::sort(values.begin(), values.end());
  for (double q : {1.0, 10.0, 50.0, 90.0, 95.0, 99.0, 99.9}) {
    const auto rank = static_cast<std::size_t>(std::ceil(q / 100.0 * static_cast<double>(values.size())));
    const double exact = static_cast<double>(values[rank - 1]);
    const double got = static_cast<double>(h.percentile(q));
    EXPECT_NEAR(got / exact, 1.0, 0.01) << "p" << q;
  }
  EXPECT_EQ(h.percentile(0), values.front());
  EXPECT_EQ(h.percentile(100), values.back());
  EXPECT_EQ(h.min(), values.front());
  EXPECT_EQ(h.max(), values.back());
  double sum = 0;
  for (auto v : values) sum += static_cast<double>(v);
  EXPECT_NEAR(h.mean(), sum / static_cast<double>(values.size()), 1.0);
}

TEST(bench_histogram, merge_equals_recording_everything_in_one) {
  latency_histogram a, b, all;
  rng r(7);
  for (int i = 0; i < 10000; ++i) {
    const auto v = static_cast<std::uint64_t>(r.uniform(100, 50'000'000));
    (i % 3 ? a : b).record(v);
    all.record(v);
  }
  latency_histogram merged;
  merged.merge(a);
  merged.merge(b);
  merged.merge(latency_histogram{});  // merging an empty one changes nothing
  EXPECT_EQ(merged.count(), all.count());
  EXPECT_EQ(merged.min(), all.min());
  EXPECT_EQ(merged.max(), all.max());
  EXPECT_DOUBLE_EQ(merged.mean(), all.mean());
  for (double q : {50.0, 95.0, 99.0}) EXPECT_EQ(merged.percentile(q), all.percentile(q));
  EXPECT_EQ(merged.nonzero_buckets(), all.nonzero_buckets());
}

TEST(bench_histogram, empty_histogram_reports_zeros) {
  latency_histogram h;
  EXPECT_TRUE(h.empty());
  EXPECT_EQ(h.percentile(50), 0u);
  EXPECT_EQ(h.min(), 0u);
  EXPECT_EQ(h.max(), 0u);
  EXPECT_EQ(h.mean(), 0.0);
  EXPECT_TRUE(h.nonzero_buckets().empty());
}

TEST(bench_histogram, small_counts_pick_the_right_rank) {
  latency_histogram h;
  for (std::uint64_t v : {100ull, 200ull, 300ull, 400ull}) h.record(v);  // exact below 256 ns
  EXPECT_EQ(h.percentile(25), 100u);
  EXPECT_EQ(h.percentile(50), 200u);
  EXPECT_EQ(h.percentile(50.1), 300u);
  EXPECT_EQ(h.percentile(100), 400u);
}

TEST(bench_histogram, bucket_round_trip_keeps_percentiles_and_extremes) {
  latency_histogram h;
  rng r(3);
  for (int i = 0; i < 5000; ++i) h.record(static_cast<std::uint64_t>(r.uniform(1000, 9'000'000)));
  const auto back = latency_histogram::from_buckets(h.nonzero_buckets(), h.min(), h.max(), h.sum());
  EXPECT_EQ(back.count(), h.count());
  EXPECT_EQ(back.min(), h.min());
  EXPECT_EQ(back.max(), h.max());
  EXPECT_NEAR(back.mean(), h.mean(), 1.0);
  for (double q : {50.0, 95.0, 99.0}) EXPECT_EQ(back.percentile(q), h.percentile(q));
}

TEST(bench_random, uniform_stays_in_inclusive_range_and_hits_both_ends) {
  rng r(1);
  bool lo = false, hi = false;
  for (int i = 0; i < 10000; ++i) {
    const auto v = r.uniform(-3, 3);
    ASSERT_GE(v, -3);
    ASSERT_LE(v, 3);
    lo |= v == -3;
    hi |= v == 3;
  }
  EXPECT_TRUE(lo && hi);
  EXPECT_EQ(r.uniform(5, 5), 5);
}

TEST(bench_random, same_seed_same_sequence) {
  rng a(99), b(99), c(100);
  bool differs = false;
  for (int i = 0; i < 100; ++i) {
    const auto x = a.next();
    ASSERT_EQ(x, b.next());
    differs |= x != c.next();
  }
  EXPECT_TRUE(differs);
}

TEST(bench_random, zipf_frequencies_follow_the_power_law) {
  // P(k) = k^-s / H(n, s); compare observed frequencies of the first ranks.
  const std::uint64_t n = 1000;
  const double s = 1.1;
  zipf_sampler z(n, s);
  rng r(5);
  std::vector<std::uint64_t> counts(n + 1);
  const int draws = 400000;
  for (int i = 0; i < draws; ++i) {
    const auto k = z(r);
    ASSERT_GE(k, 1u);
    ASSERT_LE(k, n);
    ++counts[k];
  }
  double h = 0;
  for (std::uint64_t k = 1; k <= n; ++k) h += std::pow(static_cast<double>(k), -s);
  for (std::uint64_t k : {1ull, 2ull, 3ull, 10ull, 50ull}) {
    const double expected = std::pow(static_cast<double>(k), -s) / h;
    const double observed = static_cast<double>(counts[k]) / draws;
    EXPECT_NEAR(observed / expected, 1.0, 0.05) << "rank " << k;
  }
  // Hot spot: rank 1 is drawn far more often than the median key.
  EXPECT_GT(counts[1], 50 * std::max<std::uint64_t>(1, counts[n / 2]));
}

TEST(bench_random, zipf_with_one_key_always_returns_it) {
  zipf_sampler z(1, 1.5);
  rng r(1);
  for (int i = 0; i < 100; ++i) ASSERT_EQ(z(r), 1u);
}

TEST(bench_query_render, simple_mode_substitutes_literals) {
  std::string out;
  render_simple_query("SELECT abalance FROM pgbench_accounts WHERE aid = $1", {"42"}, out);
  EXPECT_EQ(out, "SELECT abalance FROM pgbench_accounts WHERE aid = 42");
  render_simple_query("UPDATE t SET b = b-$1 WHERE r = $2 AND n = $10", {"-5", "it's", "x", "x", "x", "x", "x", "x", "x", "9"}, out);
  EXPECT_EQ(out, "UPDATE t SET b = b-(-5) WHERE r = 'it''s' AND n = 9");
  // Placeholders inside quotes and identifiers such as a$1 are left alone.
  render_simple_query("SELECT '$1', \"c$1\", a$1, $1::int", {"7"}, out);
  EXPECT_EQ(out, "SELECT '$1', \"c$1\", a$1, 7::int");
  // A placeholder without a value stays as written (the server reports it).
  render_simple_query("SELECT $2", {"1"}, out);
  EXPECT_EQ(out, "SELECT $2");
}

TEST(bench_query_render, numeric_detection) {
  for (const char* v : {"0", "-5", "+3", "1.5", ".5", "2e10", "-1.25E-3"}) EXPECT_TRUE(looks_numeric(v)) << v;
  EXPECT_TRUE(looks_numeric("1."));  // a valid numeric literal in SQL too
  for (const char* v : {"", "-", "x1", "1e", "1 ", "NaN", "0x10", "1,5"}) EXPECT_FALSE(looks_numeric(v)) << v;
}

TEST(bench_connect_errors, classified_by_message) {
  EXPECT_EQ(classify_connect_error("connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  password "
                                   "authentication failed for user \"x\""),
            error_kind::auth_failed);
  EXPECT_EQ(classify_connect_error("FATAL:  role \"nouser\" does not exist"), error_kind::auth_failed);
  EXPECT_EQ(classify_connect_error("FATAL:  sorry, too many clients already"), error_kind::too_many_connections);
  EXPECT_EQ(classify_connect_error("ERROR:  no more connections allowed (max_client_conn)"),
            error_kind::too_many_connections);
  EXPECT_EQ(classify_connect_error("connection to server failed: Connection refused"), error_kind::connect_failed);
  EXPECT_EQ(classify_connect_error("FATAL:  database \"nodb\" does not exist"), error_kind::connect_failed);
}

TEST(bench_protocol_mode, parse_and_print_round_trip) {
  for (auto m : {protocol_mode::simple, protocol_mode::extended, protocol_mode::prepared})
    EXPECT_EQ(parse_protocol_mode(to_string(m)), m);
  EXPECT_FALSE(parse_protocol_mode("Simple").has_value());
}

}  // namespace
}  // namespace pgsluice::bench

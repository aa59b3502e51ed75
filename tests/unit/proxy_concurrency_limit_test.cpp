// The adaptive limit of pool_size = "auto" against a model server on a fake clock: where it settles and how it reacts.
#include "proxy/concurrency_limit.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>

namespace pgsluice::proxy {
namespace {

using clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// A server that shares `cores` among its busy backends (processor sharing): a transaction takes
// `service` alone, longer once more are busy than there are cores. `demand` clients keep it busy.
struct model {
  std::chrono::microseconds service{100};
  double cores = 2;
  std::uint32_t demand = 100;
  double rtt_seconds(std::uint32_t busy) const {
    return std::chrono::duration<double>(service).count() * std::max(1.0, busy / cores);
  }
};

struct run_stats {
  std::uint32_t lowest = ~0u;
  std::uint32_t highest = 0;
};

// Feeds `lim` the round trips of `m` for `how_long` of fake time (±10% noise), as the pool would:
// with n servers busy, one transaction ends every rtt/n.
run_stats drive(concurrency_limit& lim, const model& m, clock::time_point& now, clock::duration how_long,
                std::mt19937& rng) {
  std::uniform_real_distribution<double> noise(0.9, 1.1);
  run_stats st;
  const auto end = now + how_long;
  while (now < end) {
    const std::uint32_t busy = std::max<std::uint32_t>(1, std::min(lim.limit(), m.demand));
    const double rtt = m.rtt_seconds(busy) * noise(rng);
    now += std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(rtt / busy));
    lim.on_sample(std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(rtt)), busy, now);
    st.lowest = std::min(st.lowest, lim.limit());
    st.highest = std::max(st.highest, lim.limit());
  }
  return st;
}

struct concurrency_limit_test : ::testing::Test {
  clock::time_point now = clock::time_point{} + 1h;
  std::mt19937 rng{42};
  concurrency_limit_settings settings{};
};

TEST_F(concurrency_limit_test, StartsAtTheMinimum) {
  settings.min = 3;
  concurrency_limit lim(settings, now);
  EXPECT_EQ(lim.limit(), 3u);
  EXPECT_EQ(lim.baseline(), clock::duration::zero());
}

TEST_F(concurrency_limit_test, GrowsToTheMaximumWhenRoundTripsDoNotGrowWithConcurrency) {
  concurrency_limit lim(settings, now);
  drive(lim, model{.service = 1ms, .cores = 1000, .demand = 200}, now, 10s, rng);
  EXPECT_EQ(lim.limit(), settings.max);
}

TEST_F(concurrency_limit_test, SettlesNearTheServersCoresWhenRoundTripsGrowWithConcurrency) {
  concurrency_limit lim(settings, now);
  drive(lim, model{.cores = 2, .demand = 100}, now, 5s, rng);
  const auto st = drive(lim, model{.cores = 2, .demand = 100}, now, 5s, rng);
  EXPECT_GE(st.lowest, settings.min);
  EXPECT_LE(st.highest, 8u) << "a server with 2 cores gains nothing from more busy backends";
  EXPECT_GT(lim.baseline(), clock::duration::zero());
}

TEST_F(concurrency_limit_test, ComesDownWhenTheServerStartsQueueing) {
  concurrency_limit lim(settings, now);
  drive(lim, model{.service = 1ms, .cores = 1000}, now, 10s, rng);
  ASSERT_EQ(lim.limit(), settings.max);
  // The same server now saturates at 4 busy backends (other load on its host, say).
  drive(lim, model{.service = 1ms, .cores = 4}, now, 2s, rng);
  EXPECT_LE(lim.limit(), 12u);
  EXPECT_GE(lim.limit(), 3u);
}

TEST_F(concurrency_limit_test, GoesUpWhenTheServerTakesMore) {
  concurrency_limit lim(settings, now);
  drive(lim, model{.cores = 2}, now, 5s, rng);
  ASSERT_LE(lim.limit(), 8u);
  drive(lim, model{.cores = 32}, now, 5s, rng);
  EXPECT_GE(lim.limit(), 28u);
  EXPECT_LE(lim.limit(), 48u);
}

TEST_F(concurrency_limit_test, DoesNotGrowBeyondWhatTheClientsUse) {
  concurrency_limit lim(settings, now);
  drive(lim, model{.cores = 1000, .demand = 3}, now, 10s, rng);
  EXPECT_LE(lim.limit(), 4u) << "three clients never show what a larger limit would do";
}

TEST_F(concurrency_limit_test, StaysWithinItsBounds) {
  settings.min = 5;
  settings.max = 12;
  concurrency_limit lim(settings, now);
  run_stats all;
  for (double cores : {1.0, 1000.0, 3.0, 64.0, 1.0}) {
    const auto st = drive(lim, model{.cores = cores}, now, 3s, rng);
    all.lowest = std::min(all.lowest, st.lowest);
    all.highest = std::max(all.highest, st.highest);
  }
  EXPECT_EQ(all.lowest, 5u);
  EXPECT_EQ(all.highest, 12u);
}

TEST_F(concurrency_limit_test, RelearnsTheBaselineWhenTransactionsBecomeSlowerAtAnyConcurrency) {
  concurrency_limit lim(settings, now);
  drive(lim, model{.cores = 4}, now, 5s, rng);
  const auto settled = lim.limit();
  ASSERT_GE(settled, 4u);
  // Heavier transactions: five times longer even alone. Against the old baseline that looks
  // like queueing, so the limit drops ...
  const model heavy{.service = 500us, .cores = 4};
  const auto st = drive(lim, heavy, now, 1s, rng);
  EXPECT_LT(st.lowest, settled);
  // ... until a probe at the minimum measures the new baseline and the limit returns.
  drive(lim, heavy, now, settings.probe_interval + 5s, rng);
  EXPECT_GT(lim.limit(), st.lowest);
  EXPECT_GE(lim.limit(), 5u);
  EXPECT_GE(lim.baseline(), 400us);
}

TEST_F(concurrency_limit_test, ProbesTheBaselineAtTheMinimumNowAndThen) {
  concurrency_limit lim(settings, now);
  drive(lim, model{.service = 1ms, .cores = 1000}, now, 10s, rng);
  ASSERT_EQ(lim.limit(), settings.max);
  bool probed = false;
  std::uniform_real_distribution<double> noise(0.9, 1.1);
  const auto end = now + settings.probe_interval + 1s;
  while (now < end && !probed) {
    now += 10us;
    lim.on_sample(1ms, std::min(lim.limit(), 100u), now);
    probed = lim.probing() && lim.limit() == settings.min;
  }
  EXPECT_TRUE(probed);
  // Transactions still running from before the probe are left out of its window.
  for (int i = 0; i < 200; ++i) lim.on_sample(50ms, 50, now += 1ms);
  EXPECT_TRUE(lim.probing());
  for (int i = 0; i < 100 && lim.probing(); ++i) lim.on_sample(1ms, 1, now += 1ms);
  EXPECT_FALSE(lim.probing());
  EXPECT_EQ(lim.limit(), settings.max) << "the limit before the probe comes back";
  EXPECT_EQ(lim.baseline(), 1ms);
}

TEST(concurrency_limit_decision, HoldsIncreasesAndDecreasesAroundTheEstimatedQueue) {
  const concurrency_limit_settings s{};
  // No queueing, limit reached: grows.
  EXPECT_GT(concurrency_limit::next_limit(10, 1.0, 1.0, true, s), 10u);
  // No queueing, limit not reached: the clients asked for less, nothing learnt.
  EXPECT_EQ(concurrency_limit::next_limit(10, 1.0, 1.0, false, s), 10u);
  // queue = 10 * (1 - 1/1.5) = 3.3, between alpha (3) and beta (6): holds.
  EXPECT_EQ(concurrency_limit::next_limit(10, 1.5, 1.0, true, s), 10u);
  // queue = 10 * (1 - 1/3) = 6.7 > beta: shrinks towards 10/3 + alpha = 6.3.
  EXPECT_EQ(concurrency_limit::next_limit(10, 3.0, 1.0, true, s), 6u);
  // A hundred transactions, fifty times the baseline: at most halved in one window.
  EXPECT_EQ(concurrency_limit::next_limit(100, 50.0, 1.0, true, s), 50u);
  // Bounds.
  EXPECT_EQ(concurrency_limit::next_limit(2, 50.0, 1.0, true, s), s.min);
  EXPECT_EQ(concurrency_limit::next_limit(s.max, 1.0, 1.0, true, s), s.max);
  // Nothing measured yet: unchanged.
  EXPECT_EQ(concurrency_limit::next_limit(7, 1.0, 0.0, true, s), 7u);
}

}  // namespace
}  // namespace pgsluice::proxy

// Unit tests for the health and failover state machine (router/health.hpp), on a fake clock.
#include <gtest/gtest.h>

#include "router/health.hpp"

namespace pgsluice::router {
namespace {

using namespace std::chrono_literals;
const time_point t0{};

probe_result primary_ok(std::uint64_t pos, std::uint32_t tli = 1) {
  probe_result r;
  r.ok = true;
  r.in_recovery = false;
  r.position = pos;
  r.timeline = tli;
  return r;
}
probe_result replica_ok(std::uint64_t replayed, std::uint64_t received, std::uint32_t tli = 1) {
  probe_result r;
  r.ok = true;
  r.in_recovery = true;
  r.position = replayed;
  r.received = received;
  r.timeline = tli;
  return r;
}
probe_result failed(std::string why = "connection refused") {
  probe_result r;
  r.error = std::move(why);
  return r;
}

health_settings settings(failover_mode m, std::uint32_t fall = 3, std::uint32_t rise = 2) {
  health_settings s;
  s.fall = fall;
  s.rise = rise;
  s.failover = m;
  s.failover_after = 5s;
  return s;
}

TEST(health_machine, fall_and_rise_count_consecutive_checks) {
  health_machine m({role::primary, role::replica}, settings(failover_mode::follow), t0);
  EXPECT_TRUE(m.on_check(1, replica_ok(10, 10), t0).changes.empty());
  // Two failures: still up (fall = 3); a success in between resets the count.
  EXPECT_TRUE(m.on_check(1, failed(), t0 + 1s).changes.empty());
  EXPECT_TRUE(m.on_check(1, failed(), t0 + 2s).changes.empty());
  EXPECT_TRUE(m.on_check(1, replica_ok(10, 10), t0 + 3s).changes.empty());
  EXPECT_TRUE(m.on_check(1, failed(), t0 + 4s).changes.empty());
  EXPECT_TRUE(m.on_check(1, failed(), t0 + 5s).changes.empty());
  auto d = m.on_check(1, failed("timeout"), t0 + 6s);
  ASSERT_EQ(d.changes.size(), 1u);
  EXPECT_EQ(d.changes[0].to, health::down);
  EXPECT_NE(d.changes[0].reason.find("timeout"), std::string::npos) << d.changes[0].reason;
  EXPECT_NE(d.changes[0].reason.find("3 failed"), std::string::npos) << d.changes[0].reason;
  EXPECT_EQ(m.at(1).status, health::down);
  // rise = 2: one good check is not enough.
  EXPECT_TRUE(m.on_check(1, replica_ok(10, 10), t0 + 7s).changes.empty());
  d = m.on_check(1, replica_ok(10, 10), t0 + 8s);
  ASSERT_EQ(d.changes.size(), 1u);
  EXPECT_EQ(d.changes[0].to, health::up);
  EXPECT_EQ(m.at(1).changed, t0 + 8s);
}

TEST(health_machine, the_first_check_failing_marks_down_at_once) {
  health_machine m({role::primary, role::replica}, settings(failover_mode::follow), t0);
  auto d = m.on_check(0, failed("connection refused"), t0);
  ASSERT_EQ(d.changes.size(), 1u);
  EXPECT_EQ(d.changes[0].to, health::down);
  EXPECT_FALSE(m.primary());
}

TEST(health_machine, auto_roles_are_discovered_and_a_promotion_by_others_followed) {
  health_machine m({role::unknown, role::unknown, role::unknown}, settings(failover_mode::follow, 1, 1), t0);
  EXPECT_FALSE(m.primary());
  auto d = m.on_check(0, primary_ok(100), t0);
  EXPECT_TRUE(d.primary_changed);
  EXPECT_EQ(m.primary(), 0u);
  m.on_check(1, replica_ok(100, 100), t0);
  m.on_check(2, replica_ok(90, 95), t0);
  EXPECT_EQ(m.at(1).role, role::replica);
  EXPECT_EQ(m.at(2).lag_bytes, 10u);
  // The primary stops; someone promotes backend 2: followed on its next check, no order given.
  m.on_check(0, failed(), t0 + 1s);
  EXPECT_FALSE(m.primary());
  d = m.on_check(2, primary_ok(200, 2), t0 + 2s);
  EXPECT_FALSE(d.promote);
  EXPECT_TRUE(d.primary_changed);
  EXPECT_EQ(m.primary(), 2u);
  EXPECT_EQ(m.failovers(), 1u);
  // The old primary comes back writable: fenced, with both timelines in the reason.
  d = m.on_check(0, primary_ok(150, 1), t0 + 3s);
  ASSERT_EQ(d.changes.size(), 1u);
  EXPECT_EQ(d.changes[0].to, health::fenced);
  EXPECT_NE(d.changes[0].reason.find("timeline 1"), std::string::npos) << d.changes[0].reason;
  EXPECT_NE(d.changes[0].reason.find("timeline 2"), std::string::npos) << d.changes[0].reason;
  EXPECT_EQ(m.primary(), 2u);
  // It stays fenced through further checks until an operator un-fences it.
  m.on_check(0, primary_ok(150, 1), t0 + 4s);
  EXPECT_EQ(m.at(0).status, health::fenced);
}

TEST(health_machine, a_former_primary_rebuilt_as_a_standby_is_an_ordinary_replica) {
  health_machine m({role::primary, role::replica}, settings(failover_mode::follow, 1, 1), t0);
  m.on_check(0, failed(), t0);
  m.on_check(1, primary_ok(50, 2), t0 + 1s);
  EXPECT_EQ(m.primary(), 1u);
  m.on_check(0, replica_ok(50, 50, 2), t0 + 2s);
  EXPECT_EQ(m.at(0).status, health::up);
  EXPECT_EQ(m.at(0).role, role::replica);
}

TEST(health_machine, two_writable_backends_are_ambiguous_and_writes_wait) {
  health_machine m({role::unknown, role::unknown}, settings(failover_mode::follow, 1, 1), t0);
  m.on_check(0, primary_ok(100, 1), t0);
  auto d = m.on_check(1, primary_ok(120, 2), t0);
  EXPECT_TRUE(m.ambiguous());
  EXPECT_FALSE(m.primary());
  ASSERT_EQ(d.notes.size(), 1u);
  EXPECT_NE(d.notes[0].find("timeline 2"), std::string::npos) << d.notes[0];
  // An operator fences one: the other is the primary.
  d = m.fence(0, "operator", t0 + 1s);
  EXPECT_EQ(m.primary(), 1u);
  EXPECT_TRUE(d.primary_changed);
}

TEST(health_machine, off_keeps_configured_roles) {
  health_machine m({role::primary, role::replica}, settings(failover_mode::off, 1, 1), t0);
  m.on_check(0, failed(), t0);
  m.on_check(1, primary_ok(10, 2), t0 + 1s);
  EXPECT_EQ(m.at(1).role, role::replica);
  EXPECT_FALSE(m.primary());
  EXPECT_FALSE(m.on_tick(t0 + 60s).promote);
}

TEST(health_machine, promote_picks_the_replica_with_the_most_wal_after_failover_after) {
  health_machine m({role::primary, role::replica, role::replica}, settings(failover_mode::promote, 2, 1), t0);
  m.on_check(0, primary_ok(1000), t0);
  m.on_check(1, replica_ok(900, 990), t0);
  m.on_check(2, replica_ok(950, 1000), t0);
  m.on_check(0, failed(), t0 + 1s);
  EXPECT_TRUE(m.on_check(0, failed(), t0 + 2s).changes.size() == 1);  // down at 2s
  EXPECT_FALSE(m.on_tick(t0 + 6s).promote);                           // 4s < failover_after
  auto d = m.on_tick(t0 + 7s);
  ASSERT_TRUE(d.promote);
  EXPECT_EQ(d.promote->backend, 2u);  // received 1000 beats 990 (replay positions do not decide)
  EXPECT_EQ(d.promote->position, 1000u);
  EXPECT_EQ(d.promote->lost_at, 1000u);
  EXPECT_TRUE(m.promoting());
  EXPECT_FALSE(m.on_tick(t0 + 8s).promote) << "one promotion at a time";
  d = m.on_promote_result(2, true, "", t0 + 9s);
  EXPECT_EQ(m.primary(), 2u);
  EXPECT_EQ(m.failovers(), 1u);
  ASSERT_TRUE(d.repoint);
  EXPECT_EQ(d.repoint->primary, 2u);
  EXPECT_EQ(d.repoint->replicas, std::vector<std::size_t>{1});
  EXPECT_FALSE(m.on_tick(t0 + 60s).promote);
  // The old primary restarted as it was: fenced.
  m.on_check(0, primary_ok(1000), t0 + 61s);
  EXPECT_EQ(m.at(0).status, health::fenced);
  EXPECT_EQ(m.primary(), 2u);
  m.unfence(0, t0 + 62s);
  EXPECT_TRUE(m.ambiguous()) << "un-fenced while still writable: writes wait rather than guess";
}

TEST(health_machine, a_failed_promotion_is_retried_after_failover_after) {
  health_machine m({role::primary, role::replica}, settings(failover_mode::promote, 1, 1), t0);
  m.on_check(1, replica_ok(10, 10), t0);
  m.on_check(0, failed(), t0);
  ASSERT_TRUE(m.on_tick(t0 + 5s).promote);
  auto d = m.on_promote_result(1, false, "permission denied", t0 + 5s);
  ASSERT_EQ(d.notes.size(), 1u);
  EXPECT_FALSE(m.on_tick(t0 + 6s).promote);
  EXPECT_TRUE(m.on_tick(t0 + 10s).promote);
}

TEST(health_machine, no_promotion_while_the_primary_is_only_draining_or_fenced) {
  health_machine m({role::primary, role::replica}, settings(failover_mode::promote, 1, 1), t0);
  m.on_check(1, replica_ok(10, 10), t0);
  m.drain(0, t0);
  EXPECT_EQ(m.at(0).status, health::draining);
  EXPECT_FALSE(m.primary());
  EXPECT_FALSE(m.on_tick(t0 + 60s).promote);
  m.undrain(0, t0 + 61s);
  EXPECT_EQ(m.primary(), 0u);
  m.fence(0, "maintenance", t0 + 62s);
  EXPECT_FALSE(m.on_tick(t0 + 120s).promote);
}

TEST(health_machine, lagging_replicas_by_the_limits) {
  auto s = settings(failover_mode::follow, 1, 1);
  s.max_lag_bytes = 100;
  health_machine m({role::primary, role::replica}, s, t0);
  m.on_check(0, primary_ok(1000), t0);
  auto d = m.on_check(1, replica_ok(800, 1000), t0);
  ASSERT_EQ(d.changes.size(), 1u);
  EXPECT_EQ(d.changes[0].to, health::lagging);
  d = m.on_check(1, replica_ok(950, 1000), t0 + 1s);
  ASSERT_EQ(d.changes.size(), 1u);
  EXPECT_EQ(d.changes[0].to, health::up);
}

TEST(health_machine, samples_between_checks_move_positions_not_statuses) {
  health_machine m({role::primary, role::replica}, settings(failover_mode::follow, 1, 1), t0);
  m.on_check(0, primary_ok(1000), t0);
  m.on_check(1, replica_ok(900, 1000), t0);
  EXPECT_EQ(m.at(1).lag_bytes, 100u);
  m.on_sample(0, primary_ok(1500), t0 + 100ms);
  m.on_sample(1, replica_ok(1500, 1500), t0 + 100ms);
  EXPECT_EQ(m.at(1).lag_bytes, 0u);
  EXPECT_EQ(m.at(1).lag_time, std::chrono::milliseconds(0));
  EXPECT_TRUE(m.on_sample(1, failed(), t0 + 200ms).changes.empty());
  EXPECT_EQ(m.at(1).status, health::up);
}

}  // namespace
}  // namespace pgsluice::router

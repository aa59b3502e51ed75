// Unit tests for pool decisions (proxy/pool_ledger.hpp): limits, FIFO waiters, LIFO idle, reserve, expiry.
#include <gtest/gtest.h>

#include "proxy/pool_ledger.hpp"

namespace pgsluice::proxy {
namespace {

using namespace std::chrono_literals;
const time_point t0{};

struct counting_gate : open_gate {
  std::uint32_t limit;
  std::uint32_t used = 0;
  explicit counting_gate(std::uint32_t l) : limit(l) {}
  bool try_open() override {
    if (used >= limit) return false;
    ++used;
    return true;
  }
  void closed() override { --used; }
};

TEST(pool_sizing, connections_to_open_for_min_pool_size) {
  EXPECT_EQ(connections_to_open(0, 3, 10), 3u);
  EXPECT_EQ(connections_to_open(2, 3, 10), 1u);
  EXPECT_EQ(connections_to_open(5, 3, 10), 0u);
  EXPECT_EQ(connections_to_open(0, 30, 10), 10u);  // never above the pool size
}

TEST(pool_sizing, reserve_only_after_the_timeout) {
  pool_limits l{10, 0, 3, 5000ms};
  EXPECT_EQ(effective_limit(l, 1s), 10u);
  EXPECT_EQ(effective_limit(l, 5s), 13u);
  l.reserve_pool_size = 0;
  EXPECT_EQ(effective_limit(l, 60s), 10u);
}

TEST(pool_ledger, connects_up_to_the_limit_then_queues_fifo) {
  pool_ledger p({2, 0, 0, 5000ms}, 1);
  auto a = p.request(1, 0, t0);
  auto b = p.request(2, 0, t0);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->k, grant::kind::connect);
  EXPECT_EQ(b->k, grant::kind::connect);
  EXPECT_FALSE(p.request(3, 0, t0));
  EXPECT_FALSE(p.request(4, 0, t0));
  EXPECT_EQ(p.counts().connecting, 2u);
  EXPECT_EQ(p.counts().waiting, 2u);
  EXPECT_EQ(p.queue_position(4), 1u);

  std::vector<grant> out;
  p.connect_finished(true, true, 100, 0, t0, t0, out);
  p.connect_finished(true, true, 101, 0, t0, t0, out);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(p.counts().active, 2u);

  p.release(100, 0, true, t0, t0, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].waiter, 3u);  // first come, first served
  EXPECT_EQ(out[0].k, grant::kind::idle_server);
  EXPECT_EQ(out[0].server, 100u);
  EXPECT_EQ(p.counts().idle, 0u);
  EXPECT_EQ(p.counts().total(), 2u);
}

TEST(pool_ledger, try_take_idle_only_when_nobody_waits) {
  pool_ledger p({1, 0, 0, 5000ms}, 1);
  EXPECT_FALSE(p.try_take_idle(0));  // nothing idle: no connect grant either
  EXPECT_EQ(p.counts().total(), 0u);
  ASSERT_TRUE(p.request(1, 0, t0));
  std::vector<grant> out;
  p.connect_finished(true, true, 100, 0, t0, t0, out);
  p.release(100, 0, true, t0, t0, out);
  auto id = p.try_take_idle(0);
  ASSERT_TRUE(id);
  EXPECT_EQ(*id, 100u);
  EXPECT_EQ(p.counts().active, 1u);
  EXPECT_FALSE(p.request(2, 0, t0));  // queued
  p.release(100, 0, true, t0, t0, out);
  ASSERT_EQ(out.size(), 1u);  // went to the waiter, not left idle
  EXPECT_FALSE(p.try_take_idle(0));
}

TEST(pool_ledger, new_requests_do_not_overtake_waiters) {
  pool_ledger p({1, 0, 0, 5000ms}, 1);
  ASSERT_TRUE(p.request(1, 0, t0));
  std::vector<grant> out;
  p.connect_finished(true, true, 100, 0, t0, t0, out);
  EXPECT_FALSE(p.request(2, 0, t0));
  // Client 1 releases and, in the same instant, client 3 asks: client 2 gets the server.
  p.release(100, 0, true, t0, t0, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].waiter, 2u);
  EXPECT_FALSE(p.request(3, 0, t0));
}

TEST(pool_ledger, broken_server_makes_room_for_a_new_connection) {
  pool_ledger p({1, 0, 0, 5000ms}, 1);
  ASSERT_TRUE(p.request(1, 0, t0));
  std::vector<grant> out;
  p.connect_finished(true, true, 100, 0, t0, t0, out);
  EXPECT_FALSE(p.request(2, 0, t0));
  p.release(100, 0, false, t0, t0, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].waiter, 2u);
  EXPECT_EQ(out[0].k, grant::kind::connect);
  EXPECT_EQ(p.counts().connecting, 1u);
  EXPECT_EQ(p.counts().active, 0u);
}

TEST(pool_ledger, failed_connect_lets_the_next_waiter_try) {
  pool_ledger p({1, 0, 0, 5000ms}, 1);
  ASSERT_TRUE(p.request(1, 0, t0));
  EXPECT_FALSE(p.request(2, 0, t0));
  std::vector<grant> out;
  p.connect_finished(false, true, 0, 0, t0, t0, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].waiter, 2u);
  EXPECT_EQ(out[0].k, grant::kind::connect);
}

TEST(pool_ledger, cancelled_waiter_leaves_the_queue) {
  pool_ledger p({1, 0, 0, 5000ms}, 1);
  ASSERT_TRUE(p.request(1, 0, t0));
  EXPECT_FALSE(p.request(2, 0, t0));
  EXPECT_FALSE(p.request(3, 0, t0));
  EXPECT_TRUE(p.cancel(2));
  EXPECT_FALSE(p.cancel(2));
  std::vector<grant> out;
  p.connect_finished(true, true, 100, 0, t0, t0, out);
  p.release(100, 0, true, t0, t0, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].waiter, 3u);
}

TEST(pool_ledger, idle_servers_are_lifo_and_prefer_the_same_worker) {
  pool_ledger p({4, 0, 0, 5000ms}, 2);
  std::vector<grant> out;
  for (waiter_id w = 1; w <= 3; ++w) ASSERT_TRUE(p.request(w, 0, t0));
  p.connect_finished(true, true, 10, 0, t0, t0, out);
  p.connect_finished(true, true, 11, 0, t0, t0, out);
  p.connect_finished(true, true, 12, 0, t0, t0, out);
  p.release(10, 1, true, t0 + 1s, t0, out);  // idle on worker 1
  p.release(11, 0, true, t0 + 2s, t0, out);  // idle on worker 0
  p.release(12, 0, true, t0 + 3s, t0, out);  // idle on worker 0, most recent
  auto g = p.request(4, 1, t0 + 4s);
  ASSERT_TRUE(g);
  EXPECT_EQ(g->server, 10u);  // worker 1's own
  g = p.request(5, 1, t0 + 4s);
  ASSERT_TRUE(g);
  EXPECT_EQ(g->server, 12u);  // none left on worker 1: most recently idle elsewhere
  g = p.request(6, 0, t0 + 4s);
  ASSERT_TRUE(g);
  EXPECT_EQ(g->server, 11u);
}

TEST(pool_ledger, a_freed_server_prefers_a_waiter_of_its_worker_within_the_grace) {
  pool_ledger p({2, 0, 0, 5000ms}, 2);
  std::vector<grant> out;
  ASSERT_TRUE(p.request(1, 0, t0));
  ASSERT_TRUE(p.request(2, 1, t0));
  p.connect_finished(true, true, 100, 0, t0, t0, out);
  p.connect_finished(true, true, 101, 1, t0, t0, out);
  EXPECT_FALSE(p.request(3, 0, t0));  // oldest waiter, worker 0
  EXPECT_FALSE(p.request(4, 1, t0));  // worker 1
  // Server 101 is freed on worker 1 right away: waiter 4 (same worker) gets it.
  p.release(101, 1, true, t0 + 1ms, t0, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].waiter, 4u);
  out.clear();
  // Server 101 freed again on worker 1, and the oldest waiter has now waited past the grace:
  // strict FIFO again, even though it means moving the server to worker 0.
  EXPECT_FALSE(p.request(5, 1, t0 + 1ms));
  p.release(101, 1, true, t0 + pool_ledger::locality_grace + 1ms, t0, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].waiter, 3u);
}

TEST(pool_ledger, reserve_pool_after_waiting) {
  pool_ledger p({1, 0, 1, 5000ms}, 1);
  ASSERT_TRUE(p.request(1, 0, t0));
  EXPECT_FALSE(p.request(2, 0, t0));
  std::vector<grant> out;
  p.dispatch(t0 + 1s, out);
  EXPECT_TRUE(out.empty());
  p.dispatch(t0 + 5s, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].waiter, 2u);
  EXPECT_EQ(out[0].k, grant::kind::connect);
  EXPECT_EQ(p.counts().connecting, 2u);
}

TEST(pool_ledger, shared_budget_limits_connections) {
  counting_gate gate(1);
  pool_ledger a({5, 0, 0, 5000ms}, 1, &gate);
  pool_ledger b({5, 0, 0, 5000ms}, 1, &gate);
  ASSERT_TRUE(a.request(1, 0, t0));
  EXPECT_FALSE(b.request(2, 0, t0));
  std::vector<grant> out;
  a.connect_finished(true, true, 100, 0, t0, t0, out);
  a.release(100, 0, false, t0, t0, out);  // closed: budget freed
  EXPECT_EQ(gate.used, 0u);
  b.dispatch(t0, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].waiter, 2u);
  EXPECT_EQ(gate.used, 1u);
}

TEST(pool_ledger, expiry_keeps_min_pool_size_but_not_past_lifetime) {
  pool_ledger p({5, 1, 0, 5000ms}, 1);
  std::vector<grant> out;
  ASSERT_TRUE(p.request(1, 0, t0));
  ASSERT_TRUE(p.request(2, 0, t0));
  p.connect_finished(true, true, 100, 0, t0, t0, out);
  p.connect_finished(true, true, 101, 0, t0, t0, out);
  p.release(100, 0, true, t0, t0, out);
  p.release(101, 0, true, t0 + 10s, t0, out);
  auto closed = p.expire(t0 + 20s, 15s, 0ms);
  ASSERT_EQ(closed.size(), 1u);
  EXPECT_EQ(closed[0], 100u);  // idle for 20s; 101 only 10s
  closed = p.expire(t0 + 60s, 15s, 0ms);
  EXPECT_TRUE(closed.empty());  // min_pool_size keeps the last one
  closed = p.expire(t0 + 60s, 15s, 30s);
  ASSERT_EQ(closed.size(), 1u);  // but not past its lifetime
  EXPECT_EQ(p.counts().total(), 0u);
  EXPECT_EQ(p.open_for_min(), 1u);
  EXPECT_EQ(p.counts().connecting, 1u);
  EXPECT_EQ(p.open_for_min(), 0u);
}

}  // namespace
}  // namespace pgsluice::proxy

namespace pgsluice::proxy {
namespace {

// pool_size = "auto": the adaptive limit caps servers handed out at once, below the pool size.
TEST(pool_ledger_active_limit, caps_servers_handed_out_and_keeps_the_idle_ones_beyond_it) {
  pool_ledger p({10, 0, 0, 5000ms}, 1);
  std::vector<grant> out;
  for (waiter_id w = 1; w <= 4; ++w) {
    auto g = p.request(w, 0, t0);
    ASSERT_TRUE(g);
    p.connect_finished(true, true, 100 + w, 0, t0, t0, out);
  }
  EXPECT_EQ(p.counts().active, 4u);
  p.set_active_limit(2);
  // Four busy, limit two: new clients wait, although the pool could open six more.
  EXPECT_FALSE(p.request(10, 0, t0));
  EXPECT_FALSE(p.try_take_idle(0));
  p.release(101, 0, true, t0, t0, out);
  p.release(102, 0, true, t0, t0, out);
  EXPECT_TRUE(out.empty()) << "still at the limit: two busy";
  EXPECT_EQ(p.counts().idle, 2u);
  p.release(103, 0, true, t0, t0, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].waiter, 10u);
  EXPECT_EQ(out[0].k, grant::kind::idle_server);
  out.clear();
  EXPECT_EQ(p.counts().active, 2u);
  EXPECT_EQ(p.counts().idle, 2u) << "idle servers beyond the limit stay open";
  // Raised again: an idle server is handed out, up to the new limit.
  p.set_active_limit(3);
  auto g = p.request(11, 0, t0);
  ASSERT_TRUE(g);
  EXPECT_EQ(g->k, grant::kind::idle_server);
  EXPECT_FALSE(p.request(12, 0, t0));
}

TEST(pool_ledger_active_limit, raising_it_lets_waiters_in_at_the_next_dispatch) {
  pool_ledger p({10, 0, 0, 5000ms}, 1);
  p.set_active_limit(1);
  std::vector<grant> out;
  auto a = p.request(1, 0, t0);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->k, grant::kind::connect);
  EXPECT_FALSE(p.request(2, 0, t0)) << "the connection being opened for client 1 counts";
  EXPECT_FALSE(p.request(3, 0, t0));
  p.connect_finished(true, true, 100, 0, t0, t0, out);
  EXPECT_TRUE(out.empty());
  p.set_active_limit(3);
  p.dispatch(t0, out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].waiter, 2u);
  EXPECT_EQ(out[0].k, grant::kind::connect);
  EXPECT_EQ(out[1].waiter, 3u);
  EXPECT_EQ(p.counts().connecting, 2u);
  EXPECT_EQ(p.counts().waiting, 0u);
}

}  // namespace
}  // namespace pgsluice::proxy

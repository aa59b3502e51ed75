// Backend selection: table-driven snapshots of backend states and requests, the backend chosen for each and why, and the shares of the load-balancing policies over many picks.
#include <gtest/gtest.h>

#include <cctype>
#include <chrono>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "conf/config.hpp"
#include "router/select.hpp"

namespace r = pgsluice::router;
using namespace std::chrono_literals;

namespace {

struct select_case {
  const char* name;
  std::vector<r::backend_view> backends;
  r::need need;
  r::route_status status;
  std::size_t backend;  // when chosen
};

const r::backend_view primary_up{r::role::primary, r::health::up, 1, 0};
const r::backend_view primary_down{r::role::primary, r::health::down, 1, 0};
const r::backend_view primary_fenced{r::role::primary, r::health::fenced, 1, 0};
const r::backend_view primary_draining{r::role::primary, r::health::draining, 1, 0};
const r::backend_view replica_up{r::role::replica, r::health::up, 1, 0};
const r::backend_view unknown_up{r::role::unknown, r::health::up, 1, 0};

const select_case cases[] = {
    {"one primary, write", {primary_up}, r::need::write, r::route_status::chosen, 0},
    {"one primary, read falls back to it", {primary_up}, r::need::read, r::route_status::chosen, 0},
    {"primary after a replica", {replica_up, primary_up}, r::need::write, r::route_status::chosen, 1},
    {"write never goes to a replica", {replica_up, primary_down}, r::need::write, r::route_status::no_primary, 0},
    {"primary down", {primary_down}, r::need::write, r::route_status::no_primary, 0},
    {"fenced primary serves nobody", {primary_fenced}, r::need::write, r::route_status::no_primary, 0},
    {"draining primary takes no new work", {primary_draining}, r::need::write, r::route_status::no_primary, 0},
    {"fenced former primary beside the new one", {primary_fenced, primary_up}, r::need::write,
     r::route_status::chosen, 1},
    {"two up primaries: writes wait", {primary_up, replica_up, primary_up}, r::need::write,
     r::route_status::ambiguous, 0},
    {"role not known yet is no primary", {unknown_up}, r::need::write, r::route_status::no_primary, 0},
    {"no backends", {}, r::need::write, r::route_status::no_primary, 0},
};

class select_test : public ::testing::TestWithParam<select_case> {};

TEST_P(select_test, chooses) {
  const auto& c = GetParam();
  const auto got = r::choose_backend(c.backends, r::route_request{c.need});
  EXPECT_EQ(r::to_string(got.status), r::to_string(c.status));
  if (c.status == r::route_status::chosen) {
    EXPECT_EQ(got.backend, c.backend);
  }
}

INSTANTIATE_TEST_SUITE_P(cases, select_test, ::testing::ValuesIn(cases), [](const auto& info) {
  std::string n;
  for (const char* p = info.param.name; *p != 0; ++p) n += std::isalnum(static_cast<unsigned char>(*p)) ? *p : '_';
  return n;
});

TEST(router_names, every_value_has_a_name) {
  EXPECT_EQ(r::to_string(r::health::lagging), "lagging");
  EXPECT_EQ(r::to_string(r::role::replica), "replica");
  EXPECT_EQ(r::to_string(r::route_status::ambiguous), "ambiguous");
  EXPECT_EQ(r::to_string(r::route_status::no_replica), "no_replica");
  EXPECT_EQ(r::to_string(r::route_status::wait), "wait");
  EXPECT_EQ(r::to_string(r::route_hint::automatic), "auto");
  EXPECT_EQ(r::to_string(r::balance::least_connections), "least_connections");
  EXPECT_EQ(r::to_string(r::primary_reads::always), "always");
  EXPECT_EQ(r::to_string(r::consistency::primary_after_write), "primary_after_write");
  for (std::size_t i = 0; i < r::route_reason_count; ++i) {
    EXPECT_NE(r::to_string(static_cast<r::route_reason>(i)), "?") << i;
  }
  EXPECT_EQ(r::to_string(static_cast<r::route_reason>(r::route_reason_count)), "?");
}

// --- reads ------------------------------------------------------------------------------

const r::backend_view replica_down{r::role::replica, r::health::down, 1, 0};
const r::backend_view replica_draining{r::role::replica, r::health::draining, 1, 0};
const r::backend_view replica_fenced{r::role::replica, r::health::fenced, 1, 0};
const r::backend_view replica_lagging{r::role::replica, r::health::lagging, 1, 0};
const r::backend_view replica_no_weight{r::role::replica, r::health::up, 0, 0};

r::backend_view replica(std::uint32_t weight, std::uint32_t active = 0) {
  return {r::role::replica, r::health::up, weight, active};
}
r::backend_view lagging(std::optional<std::uint64_t> bytes, std::optional<std::chrono::milliseconds> time) {
  return {.role = r::role::replica, .lag_bytes = bytes, .lag_time = time};
}
r::backend_view replayed(std::uint64_t lsn) { return {.role = r::role::replica, .replay_lsn = lsn}; }
r::backend_view primary_weighing(std::uint32_t weight) { return {r::role::primary, r::health::up, weight, 0}; }

const r::time_point t0 = r::time_point{} + 10h;
constexpr auto read = r::need::read;
constexpr auto write = r::need::write;
constexpr r::route_policy lag_limits{.max_replica_lag_bytes = 1000, .max_replica_lag_time = 2s};
constexpr r::route_policy never{.primary_reads = r::primary_reads::never};
constexpr r::route_policy always{.primary_reads = r::primary_reads::always};
constexpr r::route_policy split_off{.read_write_split = false};
constexpr r::route_policy after_write{.consistency = r::consistency::primary_after_write,
                                      .primary_after_write_for = 1s};
constexpr r::route_policy after_write_never{.primary_reads = r::primary_reads::never,
                                            .consistency = r::consistency::primary_after_write};
constexpr r::route_policy ryw_wait{.read_your_writes_wait = 100ms};
constexpr r::route_policy ryw_wait_never{.primary_reads = r::primary_reads::never, .read_your_writes_wait = 100ms};
constexpr r::route_policy least{.load_balance = r::balance::least_connections};

using st = r::route_status;
using why = r::route_reason;

struct read_case {
  const char* name;
  std::vector<r::backend_view> backends;
  r::route_request req;
  st status;
  std::size_t backend;  // when chosen
  why reason;
};

const read_case read_cases[] = {
    // The split itself.
    {"read goes to the replica", {primary_up, replica_up}, {.need = read}, st::chosen, 1, why::read_replica},
    {"write goes to the primary", {primary_up, replica_up}, {.need = write}, st::chosen, 0, why::write},
    {"write ignores a replica hint", {primary_up, replica_up}, {.need = write, .force = r::route_hint::replica},
     st::chosen, 0, why::write},
    {"read with only a primary", {primary_up}, {.need = read}, st::chosen, 0, why::read_primary_fallback},
    {"read with the primary down still served", {primary_down, replica_up}, {.need = read}, st::chosen, 1,
     why::read_replica},
    {"read with nothing up", {primary_down, replica_down}, {.need = read}, st::no_primary, 0,
     why::read_primary_fallback},
    {"read fallback with two primaries waits", {primary_up, primary_up}, {.need = read}, st::ambiguous, 0,
     why::read_primary_fallback},
    {"read beside two primaries still goes to a replica", {primary_up, replica_up, primary_up}, {.need = read},
     st::chosen, 1, why::read_replica},
    {"unknown role serves no read", {primary_up, unknown_up}, {.need = read}, st::chosen, 0,
     why::read_primary_fallback},
    // Replicas that may not serve.
    {"replica down", {primary_up, replica_down}, {.need = read}, st::chosen, 0, why::read_primary_fallback},
    {"replica draining", {primary_up, replica_draining}, {.need = read}, st::chosen, 0, why::read_primary_fallback},
    {"replica fenced", {primary_up, replica_fenced}, {.need = read}, st::chosen, 0, why::read_primary_fallback},
    {"replica with weight 0", {primary_up, replica_no_weight}, {.need = read}, st::chosen, 0,
     why::read_primary_fallback},
    {"replica marked lagging", {primary_up, replica_lagging}, {.need = read}, st::chosen, 0, why::lag_avoided},
    // Lag limits.
    {"lag within both limits", {primary_up, lagging(1000, 2s)}, {.need = read, .policy = lag_limits}, st::chosen, 1,
     why::read_replica},
    {"lag over the bytes limit", {primary_up, lagging(1001, 0s)}, {.need = read, .policy = lag_limits}, st::chosen, 0,
     why::lag_avoided},
    {"lag over the time limit", {primary_up, lagging(0, 2001ms)}, {.need = read, .policy = lag_limits}, st::chosen,
     0, why::lag_avoided},
    {"unknown lag counts as over a limit", {primary_up, lagging(std::nullopt, 0s)},
     {.need = read, .policy = lag_limits}, st::chosen, 0, why::lag_avoided},
    {"unknown lag time counts as over a limit", {primary_up, lagging(0, std::nullopt)},
     {.need = read, .policy = lag_limits}, st::chosen, 0, why::lag_avoided},
    {"unknown lag with the limits off", {primary_up, lagging(std::nullopt, std::nullopt)}, {.need = read},
     st::chosen, 1, why::read_replica},
    {"huge lag with the limits off", {primary_up, lagging(1ull << 40, 1h)}, {.need = read}, st::chosen, 1,
     why::read_replica},
    {"only the bytes limit on", {primary_up, lagging(10, std::nullopt)},
     {.need = read, .policy = {.max_replica_lag_bytes = 100}}, st::chosen, 1, why::read_replica},
    {"the lagging replica is skipped", {primary_up, lagging(5000, 0s), lagging(10, 0s)},
     {.need = read, .policy = lag_limits}, st::chosen, 2, why::read_replica},
    {"every replica lags: the primary", {primary_up, lagging(5000, 0s), lagging(0, 1min)},
     {.need = read, .policy = lag_limits}, st::chosen, 0, why::lag_avoided},
    {"every replica lags and primary_reads never", {primary_up, lagging(5000, 0s)},
     {.need = read, .policy = {.primary_reads = r::primary_reads::never, .max_replica_lag_bytes = 1000}},
     st::no_replica, 0, why::lag_avoided},
    // Read-your-writes.
    {"replica past min_lsn", {primary_up, replayed(500)}, {.need = read, .min_lsn = 500}, st::chosen, 1,
     why::read_replica},
    {"replica behind min_lsn", {primary_up, replayed(499)}, {.need = read, .min_lsn = 500}, st::chosen, 0,
     why::consistency_primary},
    {"replay position unknown", {primary_up, replayed(0)}, {.need = read, .min_lsn = 1}, st::chosen, 0,
     why::consistency_primary},
    {"the replica that caught up", {primary_up, replayed(100), replayed(900)}, {.need = read, .min_lsn = 500},
     st::chosen, 2, why::read_replica},
    {"behind beats lagging as the reason",
     {primary_up, lagging(5000, 0s), {.role = r::role::replica, .replay_lsn = 100, .lag_bytes = 10}},
     {.need = read, .min_lsn = 500, .policy = {.max_replica_lag_bytes = 1000}}, st::chosen, 0,
     why::consistency_primary},
    {"behind: wait when allowed", {primary_up, replayed(100)}, {.need = read, .min_lsn = 500, .policy = ryw_wait},
     st::wait, 0, why::consistency_primary},
    {"behind: still waiting", {primary_up, replayed(100)},
     {.need = read, .min_lsn = 500, .policy = ryw_wait, .now = t0, .waiting_since = t0 - 99ms}, st::wait, 0,
     why::consistency_primary},
    {"behind: waited enough, the primary", {primary_up, replayed(100)},
     {.need = read, .min_lsn = 500, .policy = ryw_wait, .now = t0, .waiting_since = t0 - 100ms}, st::chosen, 0,
     why::consistency_primary},
    {"behind: waited enough, primary_reads never", {primary_up, replayed(100)},
     {.need = read, .min_lsn = 500, .policy = ryw_wait_never, .now = t0, .waiting_since = t0 - 1s}, st::no_replica,
     0, why::consistency_primary},
    {"no wait for a replica that is down", {primary_up, replica_down}, {.need = read, .min_lsn = 500, .policy = ryw_wait},
     st::chosen, 0, why::read_primary_fallback},
    // Hints.
    {"hint primary", {primary_up, replica_up}, {.need = read, .force = r::route_hint::primary}, st::chosen, 0,
     why::hint_primary},
    {"hint primary with it down", {primary_down, replica_up}, {.need = read, .force = r::route_hint::primary},
     st::no_primary, 0, why::hint_primary},
    {"hint replica", {primary_up, replica_up}, {.need = read, .force = r::route_hint::replica}, st::chosen, 1,
     why::hint_replica},
    {"hint replica with none up", {primary_up, replica_down}, {.need = read, .force = r::route_hint::replica},
     st::chosen, 0, why::read_primary_fallback},
    {"hint replica still needs min_lsn", {primary_up, replayed(10)},
     {.need = read, .min_lsn = 20, .force = r::route_hint::replica}, st::chosen, 0, why::consistency_primary},
    {"hint replica keeps the primary out of always", {primary_weighing(5), replica_up},
     {.need = read, .force = r::route_hint::replica, .policy = always}, st::chosen, 1, why::hint_replica},
    {"hint replica wins over primary_after_write", {primary_up, replica_up},
     {.need = read, .force = r::route_hint::replica, .policy = after_write, .now = t0, .last_write = t0 - 10ms},
     st::chosen, 1, why::hint_replica},
    // primary_reads.
    {"never: no replica", {primary_up}, {.need = read, .policy = never}, st::no_replica, 0,
     why::read_primary_fallback},
    {"never: a replica serves", {primary_up, replica_up}, {.need = read, .policy = never}, st::chosen, 1,
     why::read_replica},
    {"never: writes still go to the primary", {primary_up, replica_up}, {.need = write, .policy = never}, st::chosen,
     0, why::write},
    {"always: the heavier primary first", {primary_weighing(3), replica_up}, {.need = read, .policy = always},
     st::chosen, 0, why::read_primary},
    {"always: the heavier replica first", {primary_up, replica(3)}, {.need = read, .policy = always}, st::chosen, 1,
     why::read_replica},
    {"always: primary with weight 0 only as fallback", {primary_weighing(0), replica_down},
     {.need = read, .policy = always}, st::chosen, 0, why::read_primary_fallback},
    {"always: no replica", {primary_up}, {.need = read, .policy = always}, st::chosen, 0, why::read_primary},
    // read_write_split = false.
    {"split off: reads to the primary", {primary_up, replica_up}, {.need = read, .policy = split_off}, st::chosen, 0,
     why::split_off},
    {"split off wins over a replica hint", {primary_up, replica_up},
     {.need = read, .force = r::route_hint::replica, .policy = split_off}, st::chosen, 0, why::split_off},
    {"split off: writes are writes", {primary_up, replica_up}, {.need = write, .policy = split_off}, st::chosen, 0,
     why::write},
    // primary_after_write.
    {"just wrote: the primary", {primary_up, replica_up},
     {.need = read, .policy = after_write, .now = t0, .last_write = t0 - 999ms}, st::chosen, 0,
     why::consistency_primary},
    {"wrote long enough ago: a replica", {primary_up, replica_up},
     {.need = read, .policy = after_write, .now = t0, .last_write = t0 - 1s}, st::chosen, 1, why::read_replica},
    {"never wrote: a replica", {primary_up, replica_up}, {.need = read, .policy = after_write, .now = t0}, st::chosen,
     1, why::read_replica},
    {"last write ignored under read_your_writes", {primary_up, replica_up},
     {.need = read, .now = t0, .last_write = t0 - 1ms}, st::chosen, 1, why::read_replica},
    {"just wrote and primary_reads never", {primary_up, replica_up},
     {.need = read, .policy = after_write_never, .now = t0, .last_write = t0}, st::no_replica, 0,
     why::consistency_primary},
    // least_connections.
    {"least connections", {primary_up, replica(1, 5), replica(1, 2)}, {.need = read, .policy = least}, st::chosen, 2,
     why::read_replica},
    {"least connections per weight", {primary_up, replica(2, 4), replica(1, 3)}, {.need = read, .policy = least},
     st::chosen, 1, why::read_replica},
    {"least connections skips weight 0", {primary_up, replica(0, 0), replica(1, 9)}, {.need = read, .policy = least},
     st::chosen, 2, why::read_replica},
    {"least connections with the primary", {primary_weighing(1), replica(1, 3)},
     {.need = read, .policy = {.load_balance = r::balance::least_connections, .primary_reads = r::primary_reads::always}},
     st::chosen, 0, why::read_primary},
    {"random", {primary_up, replica_down, replica_up}, {.need = read, .policy = {.load_balance = r::balance::random}},
     st::chosen, 2, why::read_replica},
};

void PrintTo(const read_case& c, std::ostream* os) { *os << c.name; }

class read_test : public ::testing::TestWithParam<read_case> {};

TEST_P(read_test, chooses) {
  const auto& c = GetParam();
  r::balancer_state state;
  const auto got = r::choose_backend(c.backends, c.req, state);
  EXPECT_EQ(r::to_string(got.status), r::to_string(c.status));
  EXPECT_EQ(r::to_string(got.reason), r::to_string(c.reason));
  if (c.status == st::chosen) {
    EXPECT_EQ(got.backend, c.backend);
  }
  // The stateless overload decides the same on a first pick.
  const auto again = r::choose_backend(c.backends, c.req);
  EXPECT_EQ(again.status, got.status);
  EXPECT_EQ(again.reason, got.reason);
}

INSTANTIATE_TEST_SUITE_P(cases, read_test, ::testing::ValuesIn(read_cases), [](const auto& info) {
  std::string n;
  for (const char* p = info.param.name; *p != 0; ++p) n += std::isalnum(static_cast<unsigned char>(*p)) ? *p : '_';
  return n;
});

// --- shares over many picks -------------------------------------------------------------

// How many of `picks` reads each backend served (and that each was chosen).
std::map<std::size_t, int> shares(const std::vector<r::backend_view>& backends, const r::route_request& req, int picks,
                                  r::balancer_state& state) {
  std::map<std::size_t, int> out;
  for (int i = 0; i < picks; ++i) {
    const auto c = r::choose_backend(backends, req, state);
    EXPECT_TRUE(c.chosen());
    ++out[c.backend];
  }
  return out;
}

std::map<std::size_t, int> shares(const std::vector<r::backend_view>& backends, const r::route_request& req,
                                  int picks) {
  r::balancer_state state;
  return shares(backends, req, picks, state);
}

TEST(router_balance, round_robin_follows_the_weights) {
  const auto got = shares({primary_up, replica(2), replica(1)}, {.need = read}, 300);
  EXPECT_NEAR(got.at(1), 200, 1);
  EXPECT_NEAR(got.at(2), 100, 1);
  EXPECT_EQ(got.count(0), 0u);
}

TEST(router_balance, round_robin_interleaves_like_nginx) {
  // nginx's smooth weighted round robin: weights 5, 1, 1 give a a b a c a a.
  const std::vector<r::backend_view> b{replica(5), replica(1), replica(1), primary_up};
  r::balancer_state state;
  std::string order;
  for (int i = 0; i < 14; ++i) order += static_cast<char>('a' + r::choose_backend(b, {.need = read}, state).backend);
  EXPECT_EQ(order, "aabacaaaabacaa");
}

TEST(router_balance, round_robin_with_the_primary_always_a_candidate) {
  const auto got = shares({primary_weighing(1), replica(1), replica(1)}, {.need = read, .policy = always}, 300);
  EXPECT_NEAR(got.at(0), 100, 1);
  EXPECT_NEAR(got.at(1), 100, 1);
  EXPECT_NEAR(got.at(2), 100, 1);
}

TEST(router_balance, weight_zero_and_lagging_replicas_get_nothing) {
  const auto got = shares({primary_up, replica(0), lagging(5000, 0s), lagging(0, 0s), lagging(10, 1s)},
                          {.need = read, .policy = lag_limits}, 200);
  EXPECT_EQ(got.size(), 2u);
  EXPECT_NEAR(got.at(3), 100, 1);
  EXPECT_NEAR(got.at(4), 100, 1);
}

TEST(router_balance, round_robin_keeps_its_shares_when_a_replica_comes_back) {
  std::vector<r::backend_view> b{primary_up, replica(1), replica(1)};
  r::balancer_state state;
  auto got = shares(b, {.need = read}, 100, state);
  b[2].health = r::health::down;
  got = shares(b, {.need = read}, 50, state);
  EXPECT_EQ(got.at(1), 50);
  b[2].health = r::health::up;
  got = shares(b, {.need = read}, 100, state);
  EXPECT_NEAR(got.at(1), 50, 1);
  EXPECT_NEAR(got.at(2), 50, 1);
}

TEST(router_balance, round_robin_beyond_the_inline_backends) {
  std::vector<r::backend_view> b{primary_up};
  for (int i = 0; i < 11; ++i) b.push_back(replica(i == 0 ? 2 : 1));
  const auto got = shares(b, {.need = read}, 1200);
  EXPECT_NEAR(got.at(1), 200, 1);
  for (std::size_t i = 2; i < b.size(); ++i) EXPECT_NEAR(got.at(i), 100, 1) << i;
}

TEST(router_balance, random_follows_the_weights) {
  const r::route_request req{.need = read, .policy = {.load_balance = r::balance::random}};
  const auto got = shares({primary_up, replica(2), replica(1)}, req, 3000);
  EXPECT_NEAR(got.at(1), 2000, 100);
  EXPECT_NEAR(got.at(2), 1000, 100);
  // Deterministic for a seed.
  r::balancer_state a(42), b(42);
  EXPECT_EQ(shares({primary_up, replica(2), replica(1)}, req, 50, a),
            shares({primary_up, replica(2), replica(1)}, req, 50, b));
}

TEST(router_balance, least_connections_ties_follow_the_weights) {
  // Nobody busy: every replica ties at 0, and weighted round robin breaks the ties.
  const auto got = shares({primary_up, replica(2), replica(1)}, {.need = read, .policy = least}, 300);
  EXPECT_NEAR(got.at(1), 200, 1);
  EXPECT_NEAR(got.at(2), 100, 1);
}

TEST(router_balance, least_connections_fills_the_least_busy_per_weight) {
  // Each pick holds its connection: active counts grow as a pool's would, in the 2:1 weights.
  std::vector<r::backend_view> b{primary_up, replica(2), replica(1)};
  r::balancer_state state;
  for (int i = 0; i < 300; ++i) {
    const auto c = r::choose_backend(b, {.need = read, .policy = least}, state);
    ASSERT_TRUE(c.chosen());
    ++b[c.backend].active;
  }
  EXPECT_NEAR(b[1].active, 200u, 1u);
  EXPECT_NEAR(b[2].active, 100u, 1u);
}

// --- the policy from the config ----------------------------------------------------------

TEST(router_policy, made_from_the_resolved_settings) {
  pgsluice::conf::routing_settings s;
  s.read_write_split = true;
  s.load_balance = pgsluice::conf::load_balance::least_connections;
  s.primary_reads = pgsluice::conf::primary_reads::never;
  s.max_replica_lag = {16u << 20, 2s};
  s.consistency = pgsluice::conf::consistency::primary_after_write;
  s.primary_after_write_for = 3s;
  s.read_your_writes_wait = 250ms;
  const auto p = r::make_route_policy(s);
  EXPECT_TRUE(p.read_write_split);
  EXPECT_EQ(p.load_balance, r::balance::least_connections);
  EXPECT_EQ(p.primary_reads, r::primary_reads::never);
  EXPECT_EQ(p.max_replica_lag_bytes, 16u << 20);
  EXPECT_EQ(p.max_replica_lag_time, 2s);
  EXPECT_EQ(p.consistency, r::consistency::primary_after_write);
  EXPECT_EQ(p.primary_after_write_for, 3s);
  EXPECT_EQ(p.read_your_writes_wait, 250ms);
  s.read_write_split = false;
  s.load_balance = pgsluice::conf::load_balance::random;
  s.primary_reads = pgsluice::conf::primary_reads::always;
  s.consistency = pgsluice::conf::consistency::eventual;
  const auto q = r::make_route_policy(s);
  EXPECT_FALSE(q.read_write_split);
  EXPECT_EQ(q.load_balance, r::balance::random);
  EXPECT_EQ(q.primary_reads, r::primary_reads::always);
  EXPECT_EQ(q.consistency, r::consistency::eventual);
}

}  // namespace

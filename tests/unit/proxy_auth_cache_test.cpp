// Unit tests of the auth_query result cache (proxy/auth_cache.hpp): lifetime, 0 = off, forgetting, keys, capacity.
#include <chrono>
#include <string>

#include <gtest/gtest.h>

#include "proxy/auth_cache.hpp"

namespace pgsluice::test {
namespace {

using proxy::auth_query_cache;
using namespace std::chrono_literals;

const auto t0 = auth_query_cache::clock::time_point{} + 1000s;

TEST(auth_query_cache, secret_is_reused_within_the_lifetime_only) {
  auth_query_cache c;
  const auto k = auth_query_cache::key("db", "auth", "SELECT ...", "alice");
  EXPECT_FALSE(c.find(k, 5s, t0));
  c.store(k, "SCRAM-SHA-256$4096:...", t0);
  EXPECT_EQ(c.find(k, 5s, t0).value_or(""), "SCRAM-SHA-256$4096:...");
  EXPECT_EQ(c.find(k, 5s, t0 + 4999ms).value_or(""), "SCRAM-SHA-256$4096:...");
  EXPECT_FALSE(c.find(k, 5s, t0 + 5s));  // expired: asked again
  EXPECT_EQ(c.size(), 0u);
}

TEST(auth_query_cache, zero_lifetime_means_no_reuse) {
  auth_query_cache c;
  const auto k = auth_query_cache::key("db", "auth", "q", "alice");
  c.store(k, "pw", t0);
  EXPECT_FALSE(c.find(k, 0ms, t0));
}

TEST(auth_query_cache, a_newer_answer_replaces_the_old_and_forget_drops_it) {
  auth_query_cache c;
  const auto k = auth_query_cache::key("db", "auth", "q", "alice");
  c.store(k, "old", t0);
  c.store(k, "new", t0 + 1s);
  EXPECT_EQ(c.find(k, 5s, t0 + 5500ms).value_or(""), "new");
  c.forget(k);
  EXPECT_FALSE(c.find(k, 5s, t0 + 5500ms));
}

TEST(auth_query_cache, keys_tell_every_part_apart) {
  const auto base = auth_query_cache::key("db", "auth", "q", "alice");
  EXPECT_NE(base, auth_query_cache::key("db2", "auth", "q", "alice"));
  EXPECT_NE(base, auth_query_cache::key("db", "auth2", "q", "alice"));
  EXPECT_NE(base, auth_query_cache::key("db", "auth", "q2", "alice"));
  EXPECT_NE(base, auth_query_cache::key("db", "auth", "q", "bob"));
  // No ambiguous joins.
  EXPECT_NE(auth_query_cache::key("ab", "c", "q", "u"), auth_query_cache::key("a", "bc", "q", "u"));
  auth_query_cache c;
  c.store(base, "pw", t0);
  EXPECT_FALSE(c.find(auth_query_cache::key("db", "auth", "q", "bob"), 5s, t0));
}

TEST(auth_query_cache, full_cache_drops_its_oldest_half) {
  auth_query_cache c(4);
  for (int i = 0; i < 4; ++i) c.store("k" + std::to_string(i), "pw", t0 + std::chrono::seconds(i));
  EXPECT_EQ(c.size(), 4u);
  c.store("k4", "pw", t0 + 10s);
  EXPECT_LE(c.size(), 3u);
  EXPECT_TRUE(c.find("k4", 60s, t0 + 10s));
  EXPECT_TRUE(c.find("k3", 60s, t0 + 10s));
  EXPECT_FALSE(c.find("k0", 60s, t0 + 10s));
}

}  // namespace
}  // namespace pgsluice::test

// Unit tests of the SCRAM key cache (protocol/scram_cache.hpp): same keys as deriving each time, Hi() once, wrong passwords still refused.
//
// The cache must be invisible to the outcome of every exchange: right passwords log in, wrong
// ones fail, and a changed password is a different entry. What it changes is the number of Hi()
// derivations, which the cache counts.
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "protocol/crypto.hpp"
#include "protocol/scram.hpp"
#include "protocol/scram_cache.hpp"
#include "tests/unit/protocol_auth_fixtures.hpp"

namespace pgsluice::test {
namespace {

using namespace pgsluice::protocol;

// A client logging in with `password` to a server holding `verifier` (fresh random nonces).
exchange_outcome login(const scram_verifier& verifier, std::string_view password, scram_key_cache* client_cache = nullptr) {
  auto server = scram_server::from_verifier(verifier);
  scram_client_options o;
  o.key_cache = client_cache;
  auto client = scram_client::from_password(password, o);
  EXPECT_TRUE(server && client);
  if (!server || !client) return {make_error_code(errc::crypto_failure), "setup"};
  return run_exchange(*client, *server);
}

TEST(scram_key_cache, derives_the_rfc7677_keys_once) {
  scram_key_cache cache;
  const auto salt = b64("W22ZaJ0SNY7soEsUEjb6gQ==");
  auto first = cache.derive("pencil", salt, 4096);
  ASSERT_TRUE(first) << first.error().message();
  // The verifier of RFC 7677's exchange holds H(ClientKey) and ServerKey.
  const auto expected = parse_scram_verifier(rfc_verifier);
  ASSERT_TRUE(expected);
  scram_key stored{};
  ASSERT_TRUE(crypto::sha256(first->client_key, stored));
  EXPECT_EQ(stored, expected->stored_key);
  EXPECT_EQ(first->server_key, expected->server_key);
  EXPECT_EQ(cache.derivations(), 1u);

  auto again = cache.derive("pencil", salt, 4096);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->client_key, first->client_key);
  EXPECT_EQ(again->server_key, first->server_key);
  EXPECT_EQ(cache.derivations(), 1u);
  EXPECT_EQ(cache.hits(), 1u);
  EXPECT_EQ(cache.size(), 1u);
}

TEST(scram_key_cache, password_salt_and_iterations_each_make_another_entry) {
  scram_key_cache cache;
  const auto salt = b64("W22ZaJ0SNY7soEsUEjb6gQ==");
  const auto other_salt = b64("SZDp8g+rKZxNldJ3u1+CZw==");
  auto base = cache.derive("pencil", salt, 4096);
  auto other_password = cache.derive("pencil2", salt, 4096);
  auto other_salted = cache.derive("pencil", other_salt, 4096);
  auto other_count = cache.derive("pencil", salt, 4097);
  ASSERT_TRUE(base && other_password && other_salted && other_count);
  EXPECT_NE(base->client_key, other_password->client_key);
  EXPECT_NE(base->client_key, other_salted->client_key);
  EXPECT_NE(base->client_key, other_count->client_key);
  EXPECT_EQ(cache.derivations(), 4u);
  EXPECT_EQ(cache.hits(), 0u);
  // Length prefixes keep ("ab", salt "c...") apart from ("a", salt "bc..."): no ambiguous joins.
  const std::vector<std::uint8_t> s1{'c', 'd'}, s2{'b', 'c', 'd'};
  auto j1 = cache.derive("ab", s1, 1);
  auto j2 = cache.derive("a", s2, 1);
  ASSERT_TRUE(j1 && j2);
  EXPECT_NE(j1->client_key, j2->client_key);
}

TEST(scram_key_cache, bad_inputs_are_refused) {
  scram_key_cache cache;
  EXPECT_TRUE(fails_with(cache.derive("pw", {}, 4096), errc::invalid_verifier));
  const std::vector<std::uint8_t> salt{1, 2, 3};
  EXPECT_TRUE(fails_with(cache.derive("pw", salt, 0), errc::invalid_verifier));
  EXPECT_EQ(cache.size(), 0u);
}

TEST(scram_key_cache, oldest_entries_go_first_past_the_capacity) {
  scram_key_cache cache(2);
  const std::vector<std::uint8_t> salt{1, 2, 3, 4};
  ASSERT_TRUE(cache.derive("a", salt, 2));
  ASSERT_TRUE(cache.derive("b", salt, 2));
  ASSERT_TRUE(cache.derive("c", salt, 2));
  EXPECT_EQ(cache.size(), 2u);
  ASSERT_TRUE(cache.derive("c", salt, 2));  // still there
  EXPECT_EQ(cache.derivations(), 3u);
  ASSERT_TRUE(cache.derive("a", salt, 2));  // evicted: derived again
  EXPECT_EQ(cache.derivations(), 4u);
  cache.clear();
  EXPECT_EQ(cache.size(), 0u);
}

TEST(scram_key_cache, verifier_for_checks_logins_like_a_stored_verifier) {
  scram_key_cache cache;
  auto v = cache.verifier_for("alice", "s3cret");
  ASSERT_TRUE(v) << v.error().message();
  EXPECT_EQ(v->iterations, scram_default_iterations);
  EXPECT_EQ(v->salt.size(), scram_default_salt_length);
  // It is the verifier PostgreSQL would store for this password with this salt.
  auto reference = make_scram_verifier("s3cret", v->salt, v->iterations);
  ASSERT_TRUE(reference);
  EXPECT_EQ(*v, *reference);

  EXPECT_FALSE(login(*v, "s3cret").error);
  // Many logins, one derivation; a wrong password is refused with the cache warm.
  for (int i = 0; i < 3; ++i) {
    auto again = cache.verifier_for("alice", "s3cret");
    ASSERT_TRUE(again);
    EXPECT_EQ(*again, *v);
    const auto wrong = login(*again, "s3cret-not");
    EXPECT_EQ(wrong.error, make_error_code(errc::auth_failed)) << wrong.stage;
    EXPECT_FALSE(login(*again, "s3cret").error);
  }
  EXPECT_EQ(cache.derivations(), 1u);
}

TEST(scram_key_cache, verifier_salt_is_per_user_and_per_password) {
  scram_key_cache cache;
  auto alice = cache.verifier_for("alice", "same");
  auto bob = cache.verifier_for("bob", "same");
  auto alice_new = cache.verifier_for("alice", "changed");
  ASSERT_TRUE(alice && bob && alice_new);
  EXPECT_NE(alice->salt, bob->salt);
  EXPECT_NE(alice->salt, alice_new->salt);
  // After a password change the old password no longer fits the verifier in use.
  EXPECT_EQ(login(*alice_new, "same").error, make_error_code(errc::auth_failed));
  EXPECT_FALSE(login(*alice_new, "changed").error);
  // Another cache (another process) draws other salts.
  scram_key_cache other;
  auto alice_elsewhere = other.verifier_for("alice", "same");
  ASSERT_TRUE(alice_elsewhere);
  EXPECT_NE(alice_elsewhere->salt, alice->salt);
  // SASLprep applies: a non-ASCII space is a space, as in PostgreSQL.
  auto spaced = cache.verifier_for("carol", "a\xC2\xA0" "b");
  ASSERT_TRUE(spaced);
  EXPECT_FALSE(login(*spaced, "a b").error);
}

TEST(scram_key_cache, client_role_derives_once_per_server_salt) {
  scram_key_cache cache;
  auto pg = parse_scram_verifier(pg_verifier);  // password 'secret'
  ASSERT_TRUE(pg);
  for (int i = 0; i < 3; ++i) EXPECT_FALSE(login(*pg, "secret", &cache).error);
  EXPECT_EQ(cache.derivations(), 1u);
  EXPECT_EQ(cache.hits(), 2u);
  // A server whose verifier changed (new salt): new keys, derived once, and logins work.
  auto changed = make_scram_verifier("secret", b64("W22ZaJ0SNY7soEsUEjb6gQ=="));
  ASSERT_TRUE(changed);
  EXPECT_FALSE(login(*changed, "secret", &cache).error);
  EXPECT_EQ(cache.derivations(), 2u);
  // A wrong configured password fails against the server as before, cached or not.
  for (int i = 0; i < 2; ++i) {
    const auto wrong = login(*pg, "not-secret", &cache);
    EXPECT_EQ(wrong.error, make_error_code(errc::auth_failed)) << wrong.stage;
  }
  EXPECT_EQ(cache.derivations(), 3u);
}

}  // namespace
}  // namespace pgsluice::test

// Unit tests of SCRAM-SHA-256 (protocol/scram.hpp): RFC 7677 vectors, round trips, malformed messages, channel binding.
//
// Vectors come from RFC 7677 section 3 and, for the PostgreSQL-style "n=" variant, from an
// independent implementation (Python's hashlib); exchanges PostgreSQL itself recorded are in
// protocol_auth_pg_vectors_test.cpp. The tests stay offline.
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "protocol/crypto.hpp"
#include "protocol/scram.hpp"
#include "tests/unit/protocol_auth_fixtures.hpp"

namespace pgsluice::test {
namespace {

using namespace pgsluice::protocol;

// RFC 7677 section 3.
constexpr std::string_view rfc_client_nonce = "rOprNGfwEbeRWgbNEkqO";
constexpr std::string_view rfc_server_nonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
constexpr std::string_view rfc_salt = "W22ZaJ0SNY7soEsUEjb6gQ==";
constexpr std::string_view rfc_client_first = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
constexpr std::string_view rfc_server_first =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
constexpr std::string_view rfc_client_final =
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
constexpr std::string_view rfc_server_final = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";
// Its ClientKey (computed with Python's hashlib from the same inputs).
constexpr std::string_view rfc_client_key = "pg/JI9Z+hkSpLRa5btpe9GVrDHJcSEN0viVTVXaZbos=";
// The same exchange with PostgreSQL's empty user name ("n=").
constexpr std::string_view pg_style_client_first = "n,,n=,r=rOprNGfwEbeRWgbNEkqO";
constexpr std::string_view pg_style_client_final =
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=qvT2SWdEH5Q06albL+hjSYuUhCG7VndFyzIb7CK4n9k=";
constexpr std::string_view pg_style_server_final = "v=3HO6Qt1M4MKJrmlKaoOqLAI0/0TV0HZe7J9H3MBtSOg=";

// The proxy's side of pass-through: an application logs in with its password against the
// verifier, and the proxy keeps the ClientKey it recovered.
std::optional<scram_client_keys> keys_recovered_from_login(std::string_view verifier, std::string_view password) {
  auto proxy_side = scram_server::from_verifier(verifier);
  auto app = scram_client::from_password(password);
  if (!proxy_side || !app || run_exchange(*app, *proxy_side).error) return std::nullopt;
  return proxy_side->recovered_keys();
}

// ---------------------------------------------------------------------------------------------
// RFC 7677 vector.

TEST(scram, rfc7677_client_exact_bytes) {
  auto client = scram_client::from_password("pencil", client_opts(rfc_client_nonce, "user"));
  ASSERT_TRUE(client) << client.error().message();
  EXPECT_EQ(client->mechanism(), "SCRAM-SHA-256");
  EXPECT_EQ(client->client_first(), rfc_client_first);
  EXPECT_EQ(client->current_state(), scram_client::state::awaiting_server_first);
  auto final_msg = client->on_server_first(rfc_server_first);
  ASSERT_TRUE(final_msg) << final_msg.error().message();
  EXPECT_EQ(*final_msg, rfc_client_final);
  EXPECT_TRUE(client->on_server_final(rfc_server_final));
  EXPECT_EQ(client->current_state(), scram_client::state::done);
  const auto keys = client->keys();
  ASSERT_TRUE(keys.has_value());
  EXPECT_EQ(keys->client_key, key_from_b64(rfc_client_key));
  EXPECT_EQ(keys->salt, b64(rfc_salt));
  EXPECT_EQ(keys->iterations, 4096u);
}

TEST(scram, rfc7677_server_exact_bytes) {
  scram_server_options o = server_opts(rfc_server_nonce);
  o.salt = b64(rfc_salt);
  auto server = scram_server::from_password("pencil", o);
  ASSERT_TRUE(server) << server.error().message();
  auto first = server->on_client_first(rfc_client_first);
  ASSERT_TRUE(first) << first.error().message();
  EXPECT_EQ(*first, rfc_server_first);
  auto final_msg = server->on_client_final(rfc_client_final);
  ASSERT_TRUE(final_msg) << final_msg.error().message();
  EXPECT_EQ(*final_msg, rfc_server_final);
  EXPECT_EQ(server->current_state(), scram_server::state::done);
  const auto keys = server->recovered_keys();
  ASSERT_TRUE(keys.has_value());
  EXPECT_EQ(keys->client_key, key_from_b64(rfc_client_key));
}

TEST(scram, rfc7677_verifier_from_password) {
  auto v = make_scram_verifier("pencil", b64(rfc_salt), 4096);
  ASSERT_TRUE(v) << v.error().message();
  EXPECT_EQ(to_string(*v), rfc_verifier);
  auto server = scram_server::from_verifier(rfc_verifier, server_opts(rfc_server_nonce));
  ASSERT_TRUE(server);
  ASSERT_TRUE(server->on_client_first(rfc_client_first));
  auto final_msg = server->on_client_final(rfc_client_final);
  ASSERT_TRUE(final_msg) << final_msg.error().message();
  EXPECT_EQ(*final_msg, rfc_server_final);
}

TEST(scram, postgresql_style_empty_user_name) {
  auto client = scram_client::from_password("pencil", client_opts(rfc_client_nonce));
  ASSERT_TRUE(client);
  EXPECT_EQ(client->client_first(), pg_style_client_first);
  auto final_msg = client->on_server_first(rfc_server_first);
  ASSERT_TRUE(final_msg);
  EXPECT_EQ(*final_msg, pg_style_client_final);
  EXPECT_TRUE(client->on_server_final(pg_style_server_final));

  auto server = scram_server::from_verifier(rfc_verifier, server_opts(rfc_server_nonce));
  ASSERT_TRUE(server);
  auto first = server->on_client_first(pg_style_client_first);
  ASSERT_TRUE(first);
  EXPECT_EQ(*first, rfc_server_first);
  auto server_final = server->on_client_final(pg_style_client_final);
  ASSERT_TRUE(server_final) << server_final.error().message();
  EXPECT_EQ(*server_final, pg_style_server_final);
  // The user name does not enter the keys: the RFC's signature does not verify this exchange.
  auto other = scram_client::from_password("pencil", client_opts(rfc_client_nonce));
  ASSERT_TRUE(other);
  other->client_first();
  ASSERT_TRUE(other->on_server_first(rfc_server_first));
  EXPECT_TRUE(fails_with(other->on_server_final(rfc_server_final), errc::bad_server_signature));
}

TEST(scram, user_name_is_escaped) {
  auto client = scram_client::from_password("pw", client_opts("abc", "a=b,c"));
  ASSERT_TRUE(client);
  EXPECT_EQ(client->client_first(), "n,,n=a=3Db=2Cc,r=abc");
}

// ---------------------------------------------------------------------------------------------
// Round trips, pass-through, tampering.

TEST(scram, round_trip_from_plaintext_password_with_random_nonces_and_salt) {
  auto server = scram_server::from_password("hunter2");
  auto client = scram_client::from_password("hunter2");
  ASSERT_TRUE(server);
  ASSERT_TRUE(client);
  const std::string first = client->client_first();
  EXPECT_EQ(first.size(), std::string_view("n,,n=,r=").size() + 24);  // 18 random bytes in base64
  const auto out = run_exchange(*client, *server);
  EXPECT_FALSE(out.error) << out.stage << ": " << out.error.message();

  auto other = scram_client::from_password("hunter2");
  ASSERT_TRUE(other);
  EXPECT_NE(other->client_first(), first);
}

TEST(scram, wrong_password_is_refused) {
  auto server = scram_server::from_verifier(pg_verifier);
  auto client = scram_client::from_password("Secret");
  ASSERT_TRUE(server && client);
  const auto out = run_exchange(*client, *server);
  EXPECT_EQ(out.error, make_error_code(errc::auth_failed));
  EXPECT_EQ(server->current_state(), scram_server::state::failed);
  // A failed exchange stays failed.
  EXPECT_TRUE(fails_with(server->on_client_final("c=biws,r=x,p=x"), errc::auth_out_of_order));
}

TEST(scram, pass_through_with_recovered_client_key) {
  // A client logs in to the proxy with its password; the proxy recovers ClientKey and uses it to
  // log in to a server that holds the same verifier, never knowing the password.
  const auto keys = keys_recovered_from_login(pg_verifier, "secret");
  ASSERT_TRUE(keys.has_value());
  EXPECT_EQ(keys->iterations, 4096u);

  auto server = scram_server::from_verifier(pg_verifier);
  auto proxy_client = scram_client::from_keys(*keys);
  ASSERT_TRUE(server && proxy_client);
  const auto out = run_exchange(*proxy_client, *server);
  EXPECT_FALSE(out.error) << out.stage << ": " << out.error.message();

  // The same keys replayed against the transcript PostgreSQL accepted give its exact bytes.
  const auto& t = pg_transcripts[0];
  auto replay = scram_client::from_keys(*keys, client_opts(t.client_nonce));
  ASSERT_TRUE(replay);
  EXPECT_EQ(replay->client_first(), t.client_first);
  auto final_msg = replay->on_server_first(t.server_first);
  ASSERT_TRUE(final_msg);
  EXPECT_EQ(*final_msg, t.client_final);
  EXPECT_TRUE(replay->on_server_final(t.server_final));
}

TEST(scram, pass_through_keys_refuse_a_server_with_another_salt) {
  const auto keys = keys_recovered_from_login(pg_verifier, "secret");
  ASSERT_TRUE(keys.has_value());

  // Same password, different salt: another verifier.
  auto server = scram_server::from_password("secret");
  auto proxy_client = scram_client::from_keys(*keys);
  ASSERT_TRUE(server && proxy_client);
  auto out = run_exchange(*proxy_client, *server);
  EXPECT_EQ(out.error, make_error_code(errc::scram_secret_mismatch));
  EXPECT_EQ(out.stage, "client.on_server_first");

  // Without salt information the mismatch shows only as the server refusing the proof.
  scram_client_keys bare = *keys;
  bare.salt.clear();
  bare.iterations = 0;
  auto server2 = scram_server::from_password("secret");
  auto blind = scram_client::from_keys(bare);
  ASSERT_TRUE(server2 && blind);
  out = run_exchange(*blind, *server2);
  EXPECT_EQ(out.error, make_error_code(errc::auth_failed));
}

TEST(scram, client_keys_can_be_cached_for_later_connections) {
  auto server = scram_server::from_verifier(pg_verifier);
  auto client = scram_client::from_password("secret");
  ASSERT_TRUE(server && client);
  EXPECT_FALSE(client->keys().has_value());  // no salt yet
  ASSERT_FALSE(run_exchange(*client, *server).error);
  const auto cached = client->keys();
  ASSERT_TRUE(cached.has_value());
  EXPECT_EQ(cached->server_key, parse_scram_verifier(pg_verifier)->server_key);

  auto server2 = scram_server::from_verifier(pg_verifier);
  auto client2 = scram_client::from_keys(*cached);
  ASSERT_TRUE(server2 && client2);
  EXPECT_FALSE(run_exchange(*client2, *server2).error);
}

// Server-side view of a client-final-message that was changed in transit.
TEST(scram, tampered_client_final_is_refused) {
  const auto& t = pg_transcripts[0];
  struct tamper_case {
    std::string message;
    errc expected;
  };
  std::string flipped_proof(t.client_final);
  flipped_proof[flipped_proof.size() - 5] = flipped_proof[flipped_proof.size() - 5] == 'A' ? 'B' : 'A';
  std::string other_nonce(t.client_final);
  other_nonce.replace(other_nonce.find("ysTU"), 4, "ysTV");
  std::string short_nonce(t.client_final);
  short_nonce.erase(short_nonce.find(",p=") - 1, 1);
  std::string y_instead_of_n(t.client_final);
  y_instead_of_n.replace(0, 6, "c=eSws");
  const tamper_case cases[] = {
      {flipped_proof, errc::auth_failed},
      {other_nonce, errc::nonce_mismatch},
      {short_nonce, errc::nonce_mismatch},
      {y_instead_of_n, errc::channel_binding_error},
  };
  for (const auto& c : cases) {
    auto server = scram_server::from_verifier(pg_verifier, server_opts(t.server_nonce));
    ASSERT_TRUE(server);
    ASSERT_TRUE(server->on_client_first(t.client_first));
    EXPECT_TRUE(fails_with(server->on_client_final(c.message), c.expected)) << c.message;
    EXPECT_EQ(server->current_state(), scram_server::state::failed);
  }
}

// Client-side view of a server that does not know the password (or a tampered exchange).
TEST(scram, tampered_server_messages_are_refused) {
  const auto& t = pg_transcripts[0];
  auto fresh = [&] {
    auto c = scram_client::from_password(t.password, client_opts(t.client_nonce));
    EXPECT_TRUE(c);
    c->client_first();
    return std::move(*c);
  };
  {
    auto c = fresh();
    ASSERT_TRUE(c.on_server_first(t.server_first));
    std::string sig(t.server_final);
    sig[3] = sig[3] == 'A' ? 'B' : 'A';
    EXPECT_TRUE(fails_with(c.on_server_final(sig), errc::bad_server_signature));
    EXPECT_EQ(c.current_state(), scram_client::state::failed);
  }
  {
    // A server signature for another AuthMessage: the salt changed in transit.
    auto c = fresh();
    std::string first(t.server_first);
    first.replace(first.find("s=S"), 3, "s=T");
    ASSERT_TRUE(c.on_server_first(first));
    EXPECT_TRUE(fails_with(c.on_server_final(t.server_final), errc::bad_server_signature));
  }
  {
    auto c = fresh();
    ASSERT_TRUE(c.on_server_first(t.server_first));
    EXPECT_TRUE(fails_with(c.on_server_final("e=invalid-proof"), errc::auth_failed));
  }
  {
    auto c = fresh();
    std::string first(t.server_first);
    first.replace(2, 8, "PGSLUICE");  // server did not echo our nonce
    EXPECT_TRUE(fails_with(c.on_server_first(first), errc::nonce_mismatch));
  }
}

TEST(scram, calls_out_of_order_are_refused) {
  auto client = scram_client::from_password("secret");
  ASSERT_TRUE(client);
  EXPECT_TRUE(fails_with(client->on_server_first(pg_transcripts[0].server_first), errc::auth_out_of_order));
  EXPECT_EQ(client->current_state(), scram_client::state::failed);

  auto client2 = scram_client::from_password("secret");
  ASSERT_TRUE(client2);
  client2->client_first();
  EXPECT_TRUE(fails_with(client2->on_server_final(pg_transcripts[0].server_final), errc::auth_out_of_order));

  auto server = scram_server::from_verifier(pg_verifier);
  ASSERT_TRUE(server);
  EXPECT_TRUE(fails_with(server->on_client_final(pg_transcripts[0].client_final), errc::auth_out_of_order));

  auto server2 = scram_server::from_verifier(pg_verifier);
  ASSERT_TRUE(server2);
  ASSERT_TRUE(server2->on_client_first("n,,n=,r=abc"));
  EXPECT_TRUE(fails_with(server2->on_client_first("n,,n=,r=abc"), errc::auth_out_of_order));
}

TEST(scram, client_first_is_idempotent) {
  auto client = scram_client::from_password("secret", client_opts("abc"));
  ASSERT_TRUE(client);
  EXPECT_EQ(client->client_first(), "n,,n=,r=abc");
  EXPECT_EQ(client->client_first(), "n,,n=,r=abc");
  EXPECT_EQ(client->current_state(), scram_client::state::awaiting_server_first);
}

// ---------------------------------------------------------------------------------------------
// Malformed messages.

struct message_case {
  const char* name;
  std::string_view message;
  errc expected;
};

TEST(scram, malformed_client_first_table) {
  using namespace std::string_view_literals;
  const message_case cases[] = {
      {"empty", "", errc::malformed_sasl},
      {"no_gs2_header", "n=,r=abc", errc::malformed_sasl},
      {"unknown_cbind_flag", "x,,n=,r=abc", errc::malformed_sasl},
      {"flag_without_comma", "n", errc::malformed_sasl},
      {"missing_second_comma", "n,n=,r=abc", errc::malformed_sasl},
      {"authzid_not_supported", "n,a=admin,n=,r=abc", errc::malformed_sasl},
      {"mandatory_extension", "n,,m=ext,n=,r=abc", errc::malformed_sasl},
      {"missing_user", "n,,r=abc", errc::malformed_sasl},
      {"missing_nonce", "n,,n=", errc::malformed_sasl},
      {"empty_nonce", "n,,n=,r=", errc::malformed_sasl},
      {"nonce_with_space", "n,,n=,r=ab c", errc::malformed_sasl},
      {"nonce_with_high_byte", "n,,n=,r=ab\xC3\xA9", errc::malformed_sasl},
      {"trailing_comma", "n,,n=,r=abc,", errc::malformed_sasl},
      {"bad_extension", "n,,n=,r=abc,xyz", errc::malformed_sasl},
      {"embedded_nul", "n,,n=,r=a\0bc"sv, errc::malformed_sasl},
      {"p_without_plus_mechanism", "p=tls-server-end-point,,n=,r=abc", errc::channel_binding_error},
      {"p_with_bad_cb_name", "p=,,n=,r=abc", errc::malformed_sasl},
  };
  for (const auto& c : cases) {
    auto server = scram_server::from_verifier(pg_verifier);
    ASSERT_TRUE(server);
    EXPECT_TRUE(fails_with(server->on_client_first(c.message), c.expected)) << c.name;
    EXPECT_EQ(server->current_state(), scram_server::state::failed) << c.name;
  }
  // Extensions after the nonce are ignored, as PostgreSQL does.
  auto server = scram_server::from_verifier(pg_verifier, server_opts("SRV"));
  ASSERT_TRUE(server);
  auto first = server->on_client_first("n,,n=someone,r=abc,x=ext");
  ASSERT_TRUE(first);
  EXPECT_TRUE(first->starts_with("r=abcSRV,s="));
}

TEST(scram, malformed_client_final_table) {
  using namespace std::string_view_literals;
  // Client nonce "abc", server nonce "SRV".
  const message_case cases[] = {
      {"empty", "", errc::malformed_sasl},
      {"missing_channel_binding", "r=abcSRV,p=" "YsTzZD/wRI6HFxa9CPIdxKHuR9o/O/QCGDqwsa1UZf4=", errc::malformed_sasl},
      {"missing_nonce", "c=biws,p=YsTzZD/wRI6HFxa9CPIdxKHuR9o/O/QCGDqwsa1UZf4=", errc::malformed_sasl},
      {"missing_proof", "c=biws,r=abcSRV", errc::malformed_sasl},
      {"proof_not_last", "c=biws,r=abcSRV,p=YsTzZD/wRI6HFxa9CPIdxKHuR9o/O/QCGDqwsa1UZf4=,x=1", errc::malformed_sasl},
      {"trailing_comma", "c=biws,r=abcSRV,p=YsTzZD/wRI6HFxa9CPIdxKHuR9o/O/QCGDqwsa1UZf4=,", errc::malformed_sasl},
      {"proof_bad_base64", "c=biws,r=abcSRV,p=YsTzZD/wRI6HFxa9CPIdxKHuR9o/O/QCGDqwsa1UZf4", errc::malformed_sasl},
      {"proof_wrong_length", "c=biws,r=abcSRV,p=YsTzZD/w", errc::malformed_sasl},
      {"channel_binding_bad_base64", "c=biw,r=abcSRV,p=YsTzZD/wRI6HFxa9CPIdxKHuR9o/O/QCGDqwsa1UZf4=",
       errc::malformed_sasl},
      {"channel_binding_other_header", "c=eSws,r=abcSRV,p=YsTzZD/wRI6HFxa9CPIdxKHuR9o/O/QCGDqwsa1UZf4=",
       errc::channel_binding_error},
      {"nonce_mismatch", "c=biws,r=abcSRW,p=YsTzZD/wRI6HFxa9CPIdxKHuR9o/O/QCGDqwsa1UZf4=", errc::nonce_mismatch},
      {"nonce_without_server_part", "c=biws,r=abc,p=YsTzZD/wRI6HFxa9CPIdxKHuR9o/O/QCGDqwsa1UZf4=",
       errc::nonce_mismatch},
      {"wrong_order", "r=abcSRV,c=biws,p=YsTzZD/wRI6HFxa9CPIdxKHuR9o/O/QCGDqwsa1UZf4=", errc::malformed_sasl},
      {"embedded_nul", "c=biws,r=abcSRV,p=YsTzZD/wRI6HFxa9CPIdxKHuR9o/O/QCGDqwsa1UZf4=\0"sv, errc::malformed_sasl},
      {"well_formed_but_wrong_proof", "c=biws,r=abcSRV,x=ext,p=YsTzZD/wRI6HFxa9CPIdxKHuR9o/O/QCGDqwsa1UZf4=",
       errc::auth_failed},
  };
  for (const auto& c : cases) {
    auto server = scram_server::from_verifier(pg_verifier, server_opts("SRV"));
    ASSERT_TRUE(server);
    ASSERT_TRUE(server->on_client_first("n,,n=,r=abc"));
    EXPECT_TRUE(fails_with(server->on_client_final(c.message), c.expected)) << c.name;
  }
}

TEST(scram, malformed_server_first_table) {
  using namespace std::string_view_literals;
  // Client nonce "abc".
  const message_case cases[] = {
      {"empty", "", errc::malformed_sasl},
      {"mandatory_extension", "m=ext,r=abcSRV,s=SZDp8g+rKZxNldJ3u1+CZw==,i=4096", errc::malformed_sasl},
      {"missing_nonce", "s=SZDp8g+rKZxNldJ3u1+CZw==,i=4096", errc::malformed_sasl},
      {"missing_salt", "r=abcSRV,i=4096", errc::malformed_sasl},
      {"missing_iterations", "r=abcSRV,s=SZDp8g+rKZxNldJ3u1+CZw==", errc::malformed_sasl},
      {"nonce_not_ours", "r=abdSRV,s=SZDp8g+rKZxNldJ3u1+CZw==,i=4096", errc::nonce_mismatch},
      {"nonce_without_server_part", "r=abc,s=SZDp8g+rKZxNldJ3u1+CZw==,i=4096", errc::nonce_mismatch},
      {"nonce_shorter", "r=ab,s=SZDp8g+rKZxNldJ3u1+CZw==,i=4096", errc::nonce_mismatch},
      {"nonce_not_printable", "r=abcS\x7fV,s=SZDp8g+rKZxNldJ3u1+CZw==,i=4096", errc::malformed_sasl},
      {"salt_bad_base64", "r=abcSRV,s=SZDp8g+rKZxNldJ3u1+CZw=,i=4096", errc::malformed_sasl},
      {"salt_empty", "r=abcSRV,s=,i=4096", errc::malformed_sasl},
      {"iterations_zero", "r=abcSRV,s=SZDp8g+rKZxNldJ3u1+CZw==,i=0", errc::malformed_sasl},
      {"iterations_negative", "r=abcSRV,s=SZDp8g+rKZxNldJ3u1+CZw==,i=-1", errc::malformed_sasl},
      {"iterations_plus_sign", "r=abcSRV,s=SZDp8g+rKZxNldJ3u1+CZw==,i=+4096", errc::malformed_sasl},
      {"iterations_not_a_number", "r=abcSRV,s=SZDp8g+rKZxNldJ3u1+CZw==,i=4k", errc::malformed_sasl},
      {"iterations_empty", "r=abcSRV,s=SZDp8g+rKZxNldJ3u1+CZw==,i=", errc::malformed_sasl},
      {"iterations_absurd", "r=abcSRV,s=SZDp8g+rKZxNldJ3u1+CZw==,i=10000001", errc::malformed_sasl},
      {"iterations_overflow", "r=abcSRV,s=SZDp8g+rKZxNldJ3u1+CZw==,i=99999999999999999999999", errc::malformed_sasl},
      {"trailing_comma", "r=abcSRV,s=SZDp8g+rKZxNldJ3u1+CZw==,i=4096,", errc::malformed_sasl},
      {"garbage_attribute", "r=abcSRV,s=SZDp8g+rKZxNldJ3u1+CZw==,i=4096,garbage", errc::malformed_sasl},
      {"embedded_nul", "r=abcSRV,s=SZDp8g+rKZxNldJ3u1+CZw==,i=40\0" "96"sv, errc::malformed_sasl},
      {"wrong_order", "s=SZDp8g+rKZxNldJ3u1+CZw==,r=abcSRV,i=4096", errc::malformed_sasl},
  };
  for (const auto& c : cases) {
    auto client = scram_client::from_password("secret", client_opts("abc"));
    ASSERT_TRUE(client);
    client->client_first();
    EXPECT_TRUE(fails_with(client->on_server_first(c.message), c.expected)) << c.name;
    EXPECT_EQ(client->current_state(), scram_client::state::failed) << c.name;
  }
}

TEST(scram, iteration_limit_is_configurable) {
  scram_client_options o = client_opts("abc");
  o.max_iterations = 1000;
  auto client = scram_client::from_password("secret", o);
  ASSERT_TRUE(client);
  client->client_first();
  EXPECT_TRUE(fails_with(client->on_server_first("r=abcSRV,s=SZDp8g+rKZxNldJ3u1+CZw==,i=1001"), errc::malformed_sasl));
  auto client2 = scram_client::from_password("secret", o);
  ASSERT_TRUE(client2);
  client2->client_first();
  EXPECT_TRUE(client2->on_server_first("r=abcSRV,s=SZDp8g+rKZxNldJ3u1+CZw==,i=1000,x=extension"));
}

TEST(scram, malformed_server_final_table) {
  const auto& t = pg_transcripts[0];
  const message_case cases[] = {
      {"empty", "", errc::malformed_sasl},
      {"no_attribute", "YkFCltqVVD6lnohud4ot4LupnEcBlixHr/mHzPFtmDI=", errc::malformed_sasl},
      {"bad_base64", "v=YkFCltqVVD6lnohud4ot4LupnEcBlixHr/mHzPFtmDI", errc::malformed_sasl},
      {"short_signature", "v=YkFC", errc::malformed_sasl},
      {"trailing_comma", "v=YkFCltqVVD6lnohud4ot4LupnEcBlixHr/mHzPFtmDI=,", errc::malformed_sasl},
      {"other_attribute", "x=YkFCltqVVD6lnohud4ot4LupnEcBlixHr/mHzPFtmDI=", errc::malformed_sasl},
      {"server_error", "e=other-error", errc::auth_failed},
  };
  for (const auto& c : cases) {
    auto client = scram_client::from_password(t.password, client_opts(t.client_nonce));
    ASSERT_TRUE(client);
    client->client_first();
    ASSERT_TRUE(client->on_server_first(t.server_first));
    EXPECT_TRUE(fails_with(client->on_server_final(c.message), c.expected)) << c.name;
  }
}

TEST(scram, bad_options_are_refused) {
  EXPECT_TRUE(fails_with(scram_client::from_password("pw", client_opts("a,b")), errc::malformed_sasl));
  EXPECT_TRUE(fails_with(scram_client::from_password("pw", client_opts("a b")), errc::malformed_sasl));
  scram_client_options bad_flag;
  bad_flag.cbind_flag = 'p';
  EXPECT_TRUE(fails_with(scram_client::from_password("pw", bad_flag), errc::channel_binding_error));
  scram_client_options no_data;
  no_data.channel_binding = scram_channel_binding{};
  EXPECT_TRUE(fails_with(scram_client::from_password("pw", no_data), errc::channel_binding_error));
  EXPECT_TRUE(fails_with(scram_server::from_verifier(pg_verifier, server_opts("a,b")), errc::malformed_sasl));
  scram_server_options zero_iterations;
  zero_iterations.iterations = 0;
  EXPECT_TRUE(fails_with(scram_server::from_password("pw", zero_iterations), errc::invalid_verifier));
}

// ---------------------------------------------------------------------------------------------
// Channel binding.

scram_channel_binding binding(std::uint8_t fill) {
  scram_channel_binding cb;
  cb.data.assign(32, fill);
  return cb;
}

TEST(scram, channel_binding_plus_round_trip) {
  scram_server_options so;
  so.channel_binding = binding(0x42);
  auto server = scram_server::from_verifier(pg_verifier, so);
  ASSERT_TRUE(server);
  EXPECT_EQ(server->mechanisms(), (std::vector<std::string_view>{"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"}));

  scram_client_options co = client_opts("abc");
  co.channel_binding = binding(0x42);
  auto client = scram_client::from_password("secret", co);
  ASSERT_TRUE(client);
  EXPECT_EQ(client->mechanism(), "SCRAM-SHA-256-PLUS");
  EXPECT_EQ(client->client_first(), "p=tls-server-end-point,,n=,r=abc");
  const auto out = run_exchange(*client, *server);
  EXPECT_FALSE(out.error) << out.stage << ": " << out.error.message();
}

TEST(scram, channel_binding_data_mismatch_is_refused) {
  // A man in the middle terminates TLS: the client sees another certificate than the server's.
  scram_server_options so;
  so.channel_binding = binding(0x42);
  auto server = scram_server::from_verifier(pg_verifier, so);
  scram_client_options co;
  co.channel_binding = binding(0x43);
  auto client = scram_client::from_password("secret", co);
  ASSERT_TRUE(server && client);
  const auto out = run_exchange(*client, *server);
  EXPECT_EQ(out.error, make_error_code(errc::channel_binding_error));
  EXPECT_EQ(out.stage, "server.on_client_final");
}

TEST(scram, channel_binding_negotiation_rules) {
  scram_server_options tls;
  tls.channel_binding = binding(1);
  struct negotiation_case {
    const char* name;
    bool server_tls;
    std::string_view mechanism;
    std::string_view client_first;
    std::optional<errc> expected;  // nullopt: accepted
  };
  const negotiation_case cases[] = {
      {"plain_n", false, "SCRAM-SHA-256", "n,,n=,r=abc", std::nullopt},
      {"plain_y_without_tls", false, "SCRAM-SHA-256", "y,,n=,r=abc", std::nullopt},
      {"tls_n", true, "SCRAM-SHA-256", "n,,n=,r=abc", std::nullopt},
      {"tls_y_is_downgrade", true, "SCRAM-SHA-256", "y,,n=,r=abc", errc::channel_binding_error},
      {"plus_without_tls", false, "SCRAM-SHA-256-PLUS", "p=tls-server-end-point,,n=,r=abc",
       errc::unsupported_mechanism},
      {"plus_with_n", true, "SCRAM-SHA-256-PLUS", "n,,n=,r=abc", errc::channel_binding_error},
      {"plus_with_other_cb_type", true, "SCRAM-SHA-256-PLUS", "p=tls-unique,,n=,r=abc", errc::channel_binding_error},
      {"plus_ok", true, "SCRAM-SHA-256-PLUS", "p=tls-server-end-point,,n=,r=abc", std::nullopt},
      {"p_under_plain_mechanism", true, "SCRAM-SHA-256", "p=tls-server-end-point,,n=,r=abc",
       errc::channel_binding_error},
      {"unknown_mechanism", false, "SCRAM-SHA-1", "n,,n=,r=abc", errc::unsupported_mechanism},
  };
  for (const auto& c : cases) {
    auto server = scram_server::from_verifier(pg_verifier, c.server_tls ? tls : scram_server_options{});
    ASSERT_TRUE(server);
    const auto r = server->on_client_first(c.mechanism, c.client_first);
    if (c.expected) {
      EXPECT_TRUE(fails_with(r, *c.expected)) << c.name;
    } else {
      EXPECT_TRUE(r) << c.name << ": " << r.error().message();
    }
  }
}

TEST(scram, y_flag_round_trip_without_tls) {
  scram_client_options co;
  co.cbind_flag = 'y';
  auto client = scram_client::from_password("secret", co);
  auto server = scram_server::from_verifier(pg_verifier);
  ASSERT_TRUE(client && server);
  EXPECT_TRUE(client->client_first().starts_with("y,,n=,r="));
  EXPECT_FALSE(run_exchange(*client, *server).error);
}

// ---------------------------------------------------------------------------------------------
// Mock exchanges for unknown users.

TEST(scram, mock_exchange_looks_real_and_always_fails) {
  const std::array<std::uint8_t, 32> secret{7, 7, 7};
  auto a1 = scram_server::mock("alice", secret, server_opts("SRV"));
  auto a2 = scram_server::mock("alice", secret, server_opts("SRV"));
  auto b = scram_server::mock("bob", secret, server_opts("SRV"));
  ASSERT_TRUE(a1 && a2 && b);
  const auto f1 = a1->on_client_first("n,,n=,r=abc");
  const auto f2 = a2->on_client_first("n,,n=,r=abc");
  const auto fb = b->on_client_first("n,,n=,r=abc");
  ASSERT_TRUE(f1 && f2 && fb);
  EXPECT_EQ(*f1, *f2);  // stable per user: probing twice reveals nothing
  EXPECT_NE(*f1, *fb);
  EXPECT_TRUE(f1->ends_with(",i=4096"));
  const auto salt_text = f1->substr(f1->find(",s=") + 3, f1->find(",i=") - f1->find(",s=") - 3);
  EXPECT_EQ(b64(salt_text).size(), scram_default_salt_length);

  // Even a client that answers with the right structure fails, at the proof step.
  auto client = scram_client::from_password("anything", client_opts("abc"));
  ASSERT_TRUE(client);
  client->client_first();
  auto final_msg = client->on_server_first(*f1);
  ASSERT_TRUE(final_msg);
  EXPECT_TRUE(fails_with(a1->on_client_final(*final_msg), errc::auth_failed));
  EXPECT_FALSE(a1->recovered_keys().has_value());
}

}  // namespace
}  // namespace pgsluice::test

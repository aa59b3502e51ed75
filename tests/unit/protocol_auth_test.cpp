// Unit tests of SCRAM-SHA-256, SASLprep and MD5 authentication (protocol/scram.hpp, sasl_prep.hpp, md5.hpp).
//
// Vectors come from RFC 7677 section 3, from an independent implementation (Python's hashlib)
// for the PostgreSQL-style "n=" variant, and from a real PostgreSQL 15.18 server: verifiers read
// from pg_authid after CREATE ROLE ... PASSWORD, and SCRAM / MD5 exchanges it accepted (or
// refused) on the wire, recorded once with a fixed client nonce. The tests stay offline.
#include <array>
#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "protocol/crypto.hpp"
#include "protocol/md5.hpp"
#include "protocol/sasl_prep.hpp"
#include "protocol/scram.hpp"

namespace pgsluice::test {
namespace {

using namespace pgsluice::protocol;

template <class R>
::testing::AssertionResult fails_with(const R& r, errc expected) {
  const auto code = make_error_code(expected);
  if (r.has_value()) return ::testing::AssertionFailure() << "succeeded, expected: " << code.message();
  if (r.error() != code) {
    return ::testing::AssertionFailure() << "failed with: " << r.error().message() << ", expected: " << code.message();
  }
  return ::testing::AssertionSuccess();
}

std::vector<std::uint8_t> b64(std::string_view text) {
  auto bytes = crypto::base64_decode(text);
  EXPECT_TRUE(bytes.has_value()) << text;
  return bytes.value_or(std::vector<std::uint8_t>{});
}

scram_key key_from_b64(std::string_view text) {
  scram_key k{};
  const auto bytes = b64(text);
  EXPECT_EQ(bytes.size(), k.size());
  std::copy_n(bytes.begin(), std::min(bytes.size(), k.size()), k.begin());
  return k;
}

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
// Its verifier and keys (computed with Python's hashlib from the same inputs).
constexpr std::string_view rfc_verifier =
    "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
    "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=";
constexpr std::string_view rfc_client_key = "pg/JI9Z+hkSpLRa5btpe9GVrDHJcSEN0viVTVXaZbos=";
// The same exchange with PostgreSQL's empty user name ("n=").
constexpr std::string_view pg_style_client_first = "n,,n=,r=rOprNGfwEbeRWgbNEkqO";
constexpr std::string_view pg_style_client_final =
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=qvT2SWdEH5Q06albL+hjSYuUhCG7VndFyzIb7CK4n9k=";
constexpr std::string_view pg_style_server_final = "v=3HO6Qt1M4MKJrmlKaoOqLAI0/0TV0HZe7J9H3MBtSOg=";

// Recorded against PostgreSQL 15.18: role scram_user, password 'secret'.
constexpr std::string_view pg_verifier =
    "SCRAM-SHA-256$4096:SZDp8g+rKZxNldJ3u1+CZw==$Falvn2s+QQZJHcUjLQ9dVr4wkAsdmtIl+VplEr0m4cc=:"
    "q7wEbCcdTtN8ayoBIRF+bloFM+azlrTPFn4aedN7n5g=";

struct transcript {
  const char* name;
  std::string_view password;
  char cbind_flag;
  std::string_view client_nonce;
  std::string_view server_nonce;
  std::string_view client_first;
  std::string_view server_first;
  std::string_view client_final;
  std::string_view server_final;  // empty: the server refused the proof (28P01)
};

const transcript pg_transcripts[] = {
    {"accepted_n", "secret", 'n', "pgsluiceClientNonce+/AbCdEf", "ysTU31287RquIu98Q6wtCpwP",
     "n,,n=,r=pgsluiceClientNonce+/AbCdEf",
     "r=pgsluiceClientNonce+/AbCdEfysTU31287RquIu98Q6wtCpwP,s=SZDp8g+rKZxNldJ3u1+CZw==,i=4096",
     "c=biws,r=pgsluiceClientNonce+/AbCdEfysTU31287RquIu98Q6wtCpwP,p=YsTzZD/wRI6HFxa9CPIdxKHuR9o/O/QCGDqwsa1UZf4=",
     "v=YkFCltqVVD6lnohud4ot4LupnEcBlixHr/mHzPFtmDI="},
    {"accepted_y", "secret", 'y', "yFlagNonce0123456789", "2pb8HXCtRnJSzLhw3DZoX6bR", "y,,n=,r=yFlagNonce0123456789",
     "r=yFlagNonce01234567892pb8HXCtRnJSzLhw3DZoX6bR,s=SZDp8g+rKZxNldJ3u1+CZw==,i=4096",
     "c=eSws,r=yFlagNonce01234567892pb8HXCtRnJSzLhw3DZoX6bR,p=QaDChpEK9egr4G1LJV3WMKK6140cDUU18El1x7con2Q=",
     "v=UwRjDJbqy+0S6nSD9e0J2AIfNaBczapecxnFRQB84Hc="},
    {"refused_wrong_password", "wrong", 'n', "pgsluiceClientNonce+/AbCdEf", "RY+ymASTNaAQlIEWPeEVoaLu",
     "n,,n=,r=pgsluiceClientNonce+/AbCdEf",
     "r=pgsluiceClientNonce+/AbCdEfRY+ymASTNaAQlIEWPeEVoaLu,s=SZDp8g+rKZxNldJ3u1+CZw==,i=4096",
     "c=biws,r=pgsluiceClientNonce+/AbCdEfRY+ymASTNaAQlIEWPeEVoaLu,p=p8uWAhnn5T3oZTmp1ggupN/8555kY+OERG+zn/hwc2M=",
     ""},
};

scram_client_options client_opts(std::string_view nonce, std::string_view user = "") {
  scram_client_options o;
  o.nonce = nonce;
  o.user = user;
  return o;
}

scram_server_options server_opts(std::string_view nonce) {
  scram_server_options o;
  o.nonce = nonce;
  return o;
}

// Runs a whole exchange in process; returns the first error (or success) and both state machines.
struct exchange_outcome {
  boost::system::error_code error;
  std::string stage;  // where it failed
};

exchange_outcome run_exchange(scram_client& client, scram_server& server) {
  auto first = server.on_client_first(client.mechanism(), client.client_first());
  if (!first) return {first.error(), "server.on_client_first"};
  auto final_msg = client.on_server_first(*first);
  if (!final_msg) return {final_msg.error(), "client.on_server_first"};
  auto server_final = server.on_client_final(*final_msg);
  if (!server_final) return {server_final.error(), "server.on_client_final"};
  auto done = client.on_server_final(*server_final);
  if (!done) return {done.error(), "client.on_server_final"};
  return {};
}

// The proxy's side of pass-through: an application logs in with its password against the
// verifier, and the proxy keeps the ClientKey it recovered.
std::optional<scram_client_keys> keys_recovered_from_login(std::string_view verifier, std::string_view password) {
  auto proxy_side = scram_server::from_verifier(verifier);
  auto app = scram_client::from_password(password);
  if (!proxy_side || !app || run_exchange(*app, *proxy_side).error) return std::nullopt;
  return proxy_side->recovered_keys();
}

// ---------------------------------------------------------------------------------------------
// Building blocks.

TEST(crypto, base64_round_trip_and_strictness) {
  for (std::string_view s : {"", "f", "fo", "foo", "foob", "fooba", "foobar"}) {
    const std::string enc = crypto::base64_encode(crypto::as_bytes(s));
    const auto dec = crypto::base64_decode(enc);
    ASSERT_TRUE(dec.has_value()) << enc;
    EXPECT_EQ(std::string(dec->begin(), dec->end()), s);
  }
  EXPECT_EQ(crypto::base64_encode(crypto::as_bytes("foobar")), "Zm9vYmFy");
  EXPECT_EQ(crypto::base64_encode(crypto::as_bytes("fo")), "Zm8=");
  EXPECT_EQ(crypto::base64_encode(crypto::as_bytes("n,,")), "biws");
  for (std::string_view bad : {"Zm8", "Zm8==", "Z===", "====", "Zm9v YmFy", "Zm9v\nYmFy", "Zm=v", "Zm9v!mFy", "=Zm8"}) {
    EXPECT_FALSE(crypto::base64_decode(bad).has_value()) << bad;
  }
}

TEST(crypto, constant_time_equal_and_hex) {
  const std::array<std::uint8_t, 3> a{1, 2, 3}, b{1, 2, 4};
  const std::array<std::uint8_t, 2> c{1, 2};
  EXPECT_TRUE(crypto::constant_time_equal(a, a));
  EXPECT_FALSE(crypto::constant_time_equal(a, b));
  EXPECT_FALSE(crypto::constant_time_equal(a, c));
  EXPECT_EQ(crypto::hex_lower(std::array<std::uint8_t, 3>{0x00, 0xab, 0xff}), "00abff");
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
// Exchanges recorded against PostgreSQL 15.

void PrintTo(const transcript& t, std::ostream* os) { *os << t.name; }

class scram_pg_transcript : public ::testing::TestWithParam<transcript> {};

TEST_P(scram_pg_transcript, client_reproduces_what_postgresql_saw) {
  const auto& t = GetParam();
  scram_client_options o = client_opts(t.client_nonce);
  o.cbind_flag = t.cbind_flag;
  auto client = scram_client::from_password(t.password, o);
  ASSERT_TRUE(client);
  EXPECT_EQ(client->client_first(), t.client_first);
  auto final_msg = client->on_server_first(t.server_first);
  ASSERT_TRUE(final_msg) << final_msg.error().message();
  EXPECT_EQ(*final_msg, t.client_final);
  if (!t.server_final.empty()) {
    EXPECT_TRUE(client->on_server_final(t.server_final));
  }
}

TEST_P(scram_pg_transcript, server_answers_as_postgresql_did) {
  const auto& t = GetParam();
  auto server = scram_server::from_verifier(pg_verifier, server_opts(t.server_nonce));
  ASSERT_TRUE(server);
  auto first = server->on_client_first(t.client_first);
  ASSERT_TRUE(first) << first.error().message();
  EXPECT_EQ(*first, t.server_first);
  auto final_msg = server->on_client_final(t.client_final);
  if (t.server_final.empty()) {
    EXPECT_TRUE(fails_with(final_msg, errc::auth_failed));
    EXPECT_EQ(server->current_state(), scram_server::state::failed);
    EXPECT_FALSE(server->recovered_keys().has_value());
  } else {
    ASSERT_TRUE(final_msg) << final_msg.error().message();
    EXPECT_EQ(*final_msg, t.server_final);
  }
}

INSTANTIATE_TEST_SUITE_P(postgresql15, scram_pg_transcript, ::testing::ValuesIn(pg_transcripts),
                         [](const auto& info) { return std::string(info.param.name); });

// Verifiers PostgreSQL 15.18 stored for CREATE ROLE ... PASSWORD '<password>' (UTF8 database;
// the raw-bytes one in a SQL_ASCII database). Several exercise SASLprep: each right password must
// log in, the wrong one must not, and make_scram_verifier must rebuild the very same verifier.
struct pg_verifier_case {
  const char* name;
  std::string_view verifier;
  std::vector<std::string_view> right;  // right[0] is what CREATE ROLE got
  std::string_view wrong;
};

const pg_verifier_case pg_verifiers[] = {
    {"ascii", pg_verifier, {"secret"}, "Secret"},
    {"ascii_punctuation",
     "SCRAM-SHA-256$4096:mGqB3wtWG0wUZbGCPt8/Ig==$blQqIiX8YdjRw4BVk+vunCYe1U07uNQOcvOvvw0uJAc=:"
     "816DfJ7cRnPaZFwYL7i1MS47sFKiuZPp9NdI38VY1Hg=",
     {"p@ss w0rd!~"},
     "p@ss w0rd!"},
    {"ascii_long",
     "SCRAM-SHA-256$4096:wJSoo+FAT9OrCi1nTe1joQ==$gIcrSCvJUn1H5mO2Q2uvV7IFb5cPux2cLl53ZJQb40E=:"
     "eU/FqVQZ0ik/fXaw+sn7wwe8NBmEwES89O4ZqKIrY3Q=",
     {"correct horse battery staple, 0123456789 ABCDEFGHIJKLMNOPQRSTUVWXYZ abcdefghijklmnopqrstuvwxyz"},
     "correct horse battery staple"},
    {"ascii_control_kept",  // PostgreSQL skips SASLprep for ASCII, control characters included
     "SCRAM-SHA-256$4096:qkZz5mHy39Q3L+iik4QO1w==$XhXT7vm0P2snsLYL9dqsG+vwU2HDCNkzlVz6yX/VM5g=:"
     "fFHMvWinLtEKS29l9jGUO24Pa+QA32XLPolwDCvpIm0=",
     {"tab\there"},
     "tabhere"},
    {"latin1_letters",  // "Pässwörd": NFKC-stable, hashed as given
     "SCRAM-SHA-256$4096:yETsko4YXb/GCH+eGvmhOA==$o5ZsvaGEjJ1cf84hhjy8L1nmwrBHG3pCrfmM7aZYojY=:"
     "c+icTOhO2vEsck3ARcLlx7LN94Hpetw40fXGR0oNvoc=",
     {"P\xC3\xA4ssw\xC3\xB6rd"},
     "Passwort"},
    {"cyrillic",  // "пароль"
     "SCRAM-SHA-256$4096:pDW42Ub/KZO+VxmCPDzd3A==$+m5Pey3jLOwlK9IbygcxgicrHHcTmSWtsUqQ3BwlnhY=:"
     "1WLXpJMvvWZS9X2QN2Ju8RPGOstuZI6jqr2M8X6GXuI=",
     {"\xD0\xBF\xD0\xB0\xD1\x80\xD0\xBE\xD0\xBB\xD1\x8C"},
     "parol"},
    {"no_break_space_mapped_to_space",  // U+00A0 "secret" -> " secret"
     "SCRAM-SHA-256$4096:x8tdg6f1K3Ym9RbcqF7BZg==$sGNqfQ4q/9Rid4W+ry1nBuFgY3qET1vkj3QMkS9mlvg=:"
     "P1ggBhemP1FgP5kNHGIkVigh3/o81BbvJgjwyuTJaOY=",
     {"\xC2\xA0secret", " secret"},
     "secret"},
    {"soft_hyphen_mapped_to_nothing",  // "I" U+00AD "X" -> "IX"
     "SCRAM-SHA-256$4096:hVS1qxCJg18vRRGm4QgswA==$VzZe7TYteIB9aDlB2PWh+qn9+EEEoA5hQ0Hr1w5pOW4=:"
     "3rEw5SvkcIrOiW1Q0n1l8t4MFwqiZakR1NYBAx17NPs=",
     {"I\xC2\xADX", "IX"},
     "I-X"},
    {"c1_control_prohibited_raw_bytes",  // "a" U+0080 "b": prohibited, PostgreSQL hashes the raw bytes
     "SCRAM-SHA-256$4096:xW8eQhjTl7+xX3rVJLFVmg==$cnMC7o271FQXGQOjsHJBcowMqLEsXzaZdBgDSUPpv8I=:"
     "Wxz04QcX2x1oXxJ3nZFUifCtb9pDfKp8F4vgQ+YqhOA=",
     {"a\xC2\x80"
      "b"},
     "ab"},
    {"empty_after_mapping_raw_bytes",  // U+00AD alone maps to "", which PostgreSQL refuses: raw bytes
     "SCRAM-SHA-256$4096:rDAgAiy1assIA77LGnR3kg==$P+4d8Xun/UyeVwDHgiZEZg/FBPPjzq/EhPnd8vKrTfo=:"
     "LYrDI4fx4CH3YYiZOfO8FDHBzcNH+z8XNXzdGTlLn9o=",
     {"\xC2\xAD"},
     ""},
    {"invalid_utf8_raw_bytes",  // bytes FF FE "secret"
     "SCRAM-SHA-256$4096:aP5dIKSHGE45t5JW9N3zKg==$4+8aBx8Mrze3Y1jT8T8HeZn7pqoI99v9SqUwlDjP0SU=:"
     "SFGwO5+NV5Vx2u2C+LVvaML+nxMv+eGKZ1qGzN9q648=",
     {"\xFF\xFE"
      "secret"},
     "secret"},
};

void PrintTo(const pg_verifier_case& c, std::ostream* os) { *os << c.name; }

class scram_pg_verifier : public ::testing::TestWithParam<pg_verifier_case> {};

TEST_P(scram_pg_verifier, right_password_logs_in_and_wrong_one_does_not) {
  const auto& c = GetParam();
  const auto parsed = parse_scram_verifier(c.verifier);
  ASSERT_TRUE(parsed) << parsed.error().message();
  EXPECT_EQ(to_string(*parsed), c.verifier);

  const auto rebuilt = make_scram_verifier(c.right.front(), parsed->salt, parsed->iterations);
  ASSERT_TRUE(rebuilt) << rebuilt.error().message();
  EXPECT_EQ(to_string(*rebuilt), c.verifier);

  for (const std::string_view password : c.right) {
    auto server = scram_server::from_verifier(c.verifier);
    auto client = scram_client::from_password(password);
    ASSERT_TRUE(server);
    ASSERT_TRUE(client) << client.error().message();
    const auto out = run_exchange(*client, *server);
    EXPECT_FALSE(out.error) << out.stage << ": " << out.error.message();
    EXPECT_EQ(client->current_state(), scram_client::state::done);
    EXPECT_EQ(server->current_state(), scram_server::state::done);
  }
  auto server = scram_server::from_verifier(c.verifier);
  auto client = scram_client::from_password(c.wrong);
  ASSERT_TRUE(server);
  ASSERT_TRUE(client);
  const auto out = run_exchange(*client, *server);
  EXPECT_EQ(out.error, make_error_code(errc::auth_failed));
  EXPECT_EQ(out.stage, "server.on_client_final");
}

INSTANTIATE_TEST_SUITE_P(postgresql15, scram_pg_verifier, ::testing::ValuesIn(pg_verifiers),
                         [](const auto& info) { return std::string(info.param.name); });

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

// ---------------------------------------------------------------------------------------------
// Verifiers.

TEST(scram, verifier_parsing_table) {
  const std::string good(pg_verifier);
  struct verifier_case {
    const char* name;
    std::string text;
    bool ok;
  };
  auto replace = [&](std::string_view from, std::string_view to) {
    std::string s = good;
    s.replace(s.find(from), from.size(), to);
    return s;
  };
  const verifier_case cases[] = {
      {"good", good, true},
      {"rfc", std::string(rfc_verifier), true},
      {"empty", "", false},
      {"plaintext", "secret", false},
      {"md5_hash", "md539c4422cad2e8aa743c2904bf0925538", false},
      {"wrong_prefix", replace("SCRAM-SHA-256$", "SCRAM-SHA-1$"), false},
      {"lower_case_prefix", replace("SCRAM-SHA-256$", "scram-sha-256$"), false},
      {"missing_keys", good.substr(0, good.find('$', 14)), false},
      {"missing_server_key", good.substr(0, good.rfind(':')), false},
      {"missing_salt", replace("4096:SZDp8g+rKZxNldJ3u1+CZw==", "4096"), false},
      {"empty_salt", replace("SZDp8g+rKZxNldJ3u1+CZw==", ""), false},
      {"salt_bad_base64", replace("SZDp8g+rKZxNldJ3u1+CZw==", "SZDp8g+rKZxNldJ3u1+CZw="), false},
      {"stored_key_bad_base64", replace("Falvn2s+", "Falvn2s*"), false},
      {"stored_key_short", replace("Falvn2s+QQZJHcUjLQ9dVr4wkAsdmtIl+VplEr0m4cc=", "Falvn2s+"), false},
      {"server_key_long", good + "AAAA", false},
      {"iterations_zero", replace("4096:", "0:"), false},
      {"iterations_negative", replace("4096:", "-1:"), false},
      {"iterations_not_number", replace("4096:", "4k:"), false},
      {"iterations_too_large", replace("4096:", "2147483648:"), false},
      {"iterations_max", replace("4096:", "2147483647:"), true},
      {"extra_field", good + "$x", false},
      {"extra_colon", good + ":x", false},
      {"trailing_space", good + " ", false},
  };
  for (const auto& c : cases) {
    const auto v = parse_scram_verifier(c.text);
    if (c.ok) {
      ASSERT_TRUE(v) << c.name;
      EXPECT_EQ(to_string(*v), c.text) << c.name;
    } else {
      EXPECT_TRUE(fails_with(v, errc::invalid_verifier)) << c.name;
      EXPECT_TRUE(fails_with(scram_server::from_verifier(c.text), errc::invalid_verifier)) << c.name;
    }
  }
  const auto v = parse_scram_verifier(pg_verifier);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->iterations, 4096u);
  EXPECT_EQ(v->salt, b64("SZDp8g+rKZxNldJ3u1+CZw=="));
  EXPECT_EQ(v->stored_key, key_from_b64("Falvn2s+QQZJHcUjLQ9dVr4wkAsdmtIl+VplEr0m4cc="));
  EXPECT_EQ(v->server_key, key_from_b64("q7wEbCcdTtN8ayoBIRF+bloFM+azlrTPFn4aedN7n5g="));
}

TEST(scram, build_verifier_uses_a_fresh_salt) {
  const auto a = build_scram_verifier("secret");
  const auto b = build_scram_verifier("secret");
  ASSERT_TRUE(a && b);
  EXPECT_NE(*a, *b);
  const auto parsed = parse_scram_verifier(*a);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->salt.size(), scram_default_salt_length);
  EXPECT_EQ(parsed->iterations, scram_default_iterations);
  auto server = scram_server::from_verifier(*a);
  auto client = scram_client::from_password("secret");
  ASSERT_TRUE(server && client);
  EXPECT_FALSE(run_exchange(*client, *server).error);

  const auto custom = build_scram_verifier("secret", 10);
  ASSERT_TRUE(custom);
  EXPECT_TRUE(custom->starts_with("SCRAM-SHA-256$10:"));
  EXPECT_TRUE(fails_with(make_scram_verifier("secret", {}, 4096), errc::invalid_verifier));
}

// ---------------------------------------------------------------------------------------------
// SASLprep.

TEST(sasl_prep, table) {
  using namespace std::string_view_literals;
  struct prep_case {
    const char* name;
    std::string_view input;
    std::string_view output;  // when expected is not set
    std::optional<errc> expected;
  };
  const std::string max_length(max_sasl_prep_password_length, 'a');
  const std::string too_long(max_sasl_prep_password_length + 1, 'a');
  const prep_case cases[] = {
      {"ascii", "pencil", "pencil", {}},
      {"ascii_empty", "", "", {}},
      {"ascii_controls_kept", "a\tb\x7f", "a\tb\x7f", {}},
      {"ascii_max_length", max_length, max_length, {}},
      {"too_long", too_long, "", errc::invalid_password},
      {"nul", "a\0b"sv, "", errc::invalid_password},
      {"invalid_utf8_raw", "\xFF\xFE", "\xFF\xFE", {}},
      {"truncated_utf8_raw", "ab\xC3", "ab\xC3", {}},
      {"overlong_utf8_raw", "\xC0\xAF", "\xC0\xAF", {}},
      {"surrogate_utf8_raw", "\xED\xA0\x80", "\xED\xA0\x80", {}},
      {"above_unicode_raw", "\xF4\x90\x80\x80", "\xF4\x90\x80\x80", {}},
      {"latin1_unchanged", "P\xC3\xA4ssw\xC3\xB6rd", "P\xC3\xA4ssw\xC3\xB6rd", {}},
      {"greek_unchanged", "\xCE\xB1\xCE\xB2\xCE\xB3", "\xCE\xB1\xCE\xB2\xCE\xB3", {}},
      {"nbsp_to_space", "a\xC2\xA0" "b", "a b", {}},
      {"ideographic_space_to_space", "a\xE3\x80\x80" "b", "a b", {}},
      {"zero_width_space_to_space", "a\xE2\x80\x8B" "b", "a b", {}},  // C.1.2 wins over B.1
      {"soft_hyphen_removed", "I\xC2\xAD" "X", "IX", {}},
      {"zero_width_joiner_removed", "\xC3\xA9\xE2\x80\x8D", "\xC3\xA9", {}},
      {"empty_after_mapping_raw", "\xC2\xAD\xC2\xAD", "\xC2\xAD\xC2\xAD", {}},
      {"c1_control_raw", "a\xC2\x80" "b", "a\xC2\x80" "b", {}},
      {"private_use_raw", "\xC3\xA9\xEE\x80\x80", "\xC3\xA9\xEE\x80\x80", {}},
      {"ascii_control_in_unicode_raw", "\xC3\xA9\t", "\xC3\xA9\t", {}},
      {"prohibited_beats_unsupported_raw", "\xE5\xAF\x86\xC2\x80", "\xE5\xAF\x86\xC2\x80", {}},
      {"combining_accent_unsupported", "e\xCC\x81", "", errc::sasl_prep_unsupported},
      {"ligature_unsupported", "\xEF\xAC\x81", "", errc::sasl_prep_unsupported},  // U+FB01 -> "fi" under NFKC
      {"superscript_two_unsupported", "x\xC2\xB2", "", errc::sasl_prep_unsupported},
      {"cjk_unsupported", "\xE5\xAF\x86\xE7\xA0\x81", "", errc::sasl_prep_unsupported},
      {"hebrew_unsupported", "\xD7\x90", "", errc::sasl_prep_unsupported},
  };
  for (const auto& c : cases) {
    const auto r = sasl_prep_password(c.input);
    if (c.expected) {
      EXPECT_TRUE(fails_with(r, *c.expected)) << c.name;
    } else {
      ASSERT_TRUE(r) << c.name << ": " << r.error().message();
      EXPECT_EQ(*r, c.output) << c.name;
    }
  }
  // The errors reach the SCRAM entry points.
  EXPECT_TRUE(fails_with(scram_client::from_password("e\xCC\x81"), errc::sasl_prep_unsupported));
  EXPECT_TRUE(fails_with(scram_server::from_password("e\xCC\x81"), errc::sasl_prep_unsupported));
  EXPECT_TRUE(fails_with(build_scram_verifier(too_long), errc::invalid_password));
}

// ---------------------------------------------------------------------------------------------
// MD5. Recorded against PostgreSQL 15.18: role md5_user, password 'secret'.

constexpr std::string_view pg_md5_hash = "md539c4422cad2e8aa743c2904bf0925538";
constexpr md5_salt pg_md5_salt_ok{0x80, 0xed, 0xfd, 0x0d};
constexpr std::string_view pg_md5_response_ok = "md5e5bb3f421a2bddf5d155923fbb5f506d";  // accepted
constexpr md5_salt pg_md5_salt_refused{0x08, 0x75, 0x06, 0x8c};
constexpr std::string_view pg_md5_response_refused = "md516017d55b31cd66dc186bc054a2241f9";  // 'wrong', refused

TEST(md5, password_hash_matches_pg_authid) {
  const auto h = md5_password_hash("md5_user", "secret");
  ASSERT_TRUE(h) << h.error().message();
  EXPECT_EQ(*h, pg_md5_hash);
  EXPECT_TRUE(is_md5_hash(*h));
  // The user name is the salt: another user, another hash.
  EXPECT_NE(*md5_password_hash("other", "secret"), pg_md5_hash);
}

TEST(md5, client_response_matches_what_postgresql_accepted) {
  const auto r = md5_client_response("md5_user", "secret", pg_md5_salt_ok);
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, pg_md5_response_ok);
  const auto wrong = md5_client_response("md5_user", "wrong", pg_md5_salt_refused);
  ASSERT_TRUE(wrong);
  EXPECT_EQ(*wrong, pg_md5_response_refused);
  // From the stored hash (pass-through), with or without the prefix.
  EXPECT_EQ(*md5_salted_response(pg_md5_hash, pg_md5_salt_ok), pg_md5_response_ok);
  EXPECT_EQ(*md5_salted_response(pg_md5_hash.substr(3), pg_md5_salt_ok), pg_md5_response_ok);
}

TEST(md5, server_verification) {
  EXPECT_TRUE(md5_verify_response(pg_md5_hash, pg_md5_salt_ok, pg_md5_response_ok));
  EXPECT_TRUE(fails_with(md5_verify_response(pg_md5_hash, pg_md5_salt_refused, pg_md5_response_refused),
                         errc::auth_failed));
  // Right answer for another salt (a replay) is refused.
  EXPECT_TRUE(fails_with(md5_verify_response(pg_md5_hash, pg_md5_salt_refused, pg_md5_response_ok), errc::auth_failed));
  EXPECT_TRUE(fails_with(md5_verify_response(pg_md5_hash, pg_md5_salt_ok, ""), errc::auth_failed));
  EXPECT_TRUE(fails_with(md5_verify_response(pg_md5_hash, pg_md5_salt_ok, pg_md5_response_ok.substr(0, 34)),
                         errc::auth_failed));
  EXPECT_TRUE(fails_with(md5_verify_response(pg_md5_hash, pg_md5_salt_ok, "MD5E5BB3F421A2BDDF5D155923FBB5F506D"),
                         errc::auth_failed));
  EXPECT_TRUE(
      fails_with(md5_verify_response(pg_md5_hash.substr(3), pg_md5_salt_ok, pg_md5_response_ok), errc::invalid_verifier));
}

TEST(md5, hash_recognition_table) {
  struct hash_case {
    std::string_view text;
    bool is_hash;
  };
  const hash_case cases[] = {
      {"md539c4422cad2e8aa743c2904bf0925538", true},
      {"md539C4422CAD2E8AA743C2904BF0925538", false},  // PostgreSQL accepts lower case only
      {"MD539c4422cad2e8aa743c2904bf0925538", false},
      {"md539c4422cad2e8aa743c2904bf092553", false},
      {"md539c4422cad2e8aa743c2904bf09255380", false},
      {"md539c4422cad2e8aa743c2904bf092553g", false},
      {"39c4422cad2e8aa743c2904bf0925538", false},
      {"", false},
      {pg_verifier, false},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(is_md5_hash(c.text), c.is_hash) << c.text;
    const auto r = md5_salted_response(c.text, pg_md5_salt_ok);
    if (c.is_hash) {
      EXPECT_TRUE(r) << c.text;
    } else if (c.text.size() != 32) {
      EXPECT_TRUE(fails_with(r, errc::invalid_verifier)) << c.text;
    }
  }
}

}  // namespace
}  // namespace pgsluice::test

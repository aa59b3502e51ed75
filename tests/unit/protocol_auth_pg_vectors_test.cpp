// Unit tests of SCRAM against PostgreSQL 15: recorded exchanges, pg_authid verifiers, verifier parsing.
//
// Recorded once against a real PostgreSQL 15.18 server (verifiers read from pg_authid after
// CREATE ROLE ... PASSWORD, exchanges it accepted or refused on the wire with a fixed client
// nonce); the tests stay offline.
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "protocol/scram.hpp"
#include "tests/unit/protocol_auth_fixtures.hpp"

namespace pgsluice::test {
namespace {

using namespace pgsluice::protocol;

// ---------------------------------------------------------------------------------------------
// Exchanges recorded against PostgreSQL 15.

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

}  // namespace
}  // namespace pgsluice::test

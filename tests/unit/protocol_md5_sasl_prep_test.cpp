// Unit tests of base64 and constant-time helpers, SASLprep and MD5 (protocol/crypto.hpp, sasl_prep.hpp, md5.hpp).
//
// The MD5 vectors were recorded once against a real PostgreSQL 15.18 server; the tests stay offline.
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <gtest/gtest.h>

#include "protocol/crypto.hpp"
#include "protocol/md5.hpp"
#include "protocol/sasl_prep.hpp"
#include "protocol/scram.hpp"
#include "tests/unit/protocol_auth_fixtures.hpp"

namespace pgsluice::test {
namespace {

using namespace pgsluice::protocol;

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

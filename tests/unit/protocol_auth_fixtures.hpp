// Vectors and helpers shared by the authentication unit tests (protocol_scram_test.cpp and its siblings).
//
// Vectors come from RFC 7677 section 3, from an independent implementation (Python's hashlib)
// for the PostgreSQL-style "n=" variant, and from a real PostgreSQL 15.18 server: verifiers read
// from pg_authid after CREATE ROLE ... PASSWORD, and SCRAM / MD5 exchanges it accepted (or
// refused) on the wire, recorded once with a fixed client nonce. The tests stay offline.
#pragma once

#include <algorithm>
#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "protocol/crypto.hpp"
#include "protocol/errc.hpp"
#include "protocol/scram.hpp"

namespace pgsluice::test {

template <class R>
::testing::AssertionResult fails_with(const R& r, pgsluice::errc expected) {
  const auto code = pgsluice::make_error_code(expected);
  if (r.has_value()) return ::testing::AssertionFailure() << "succeeded, expected: " << code.message();
  if (r.error() != code) {
    return ::testing::AssertionFailure() << "failed with: " << r.error().message() << ", expected: " << code.message();
  }
  return ::testing::AssertionSuccess();
}

inline std::vector<std::uint8_t> b64(std::string_view text) {
  auto bytes = protocol::crypto::base64_decode(text);
  EXPECT_TRUE(bytes.has_value()) << text;
  return bytes.value_or(std::vector<std::uint8_t>{});
}

inline protocol::scram_key key_from_b64(std::string_view text) {
  protocol::scram_key k{};
  const auto bytes = b64(text);
  EXPECT_EQ(bytes.size(), k.size());
  std::copy_n(bytes.begin(), std::min(bytes.size(), k.size()), k.begin());
  return k;
}

// RFC 7677 section 3's password "pencil" and salt as a stored verifier (computed with Python's
// hashlib from the same inputs).
inline constexpr std::string_view rfc_verifier =
    "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
    "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=";

// Recorded against PostgreSQL 15.18: role scram_user, password 'secret'.
inline constexpr std::string_view pg_verifier =
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

inline const transcript pg_transcripts[] = {
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

inline void PrintTo(const transcript& t, std::ostream* os) { *os << t.name; }

inline protocol::scram_client_options client_opts(std::string_view nonce, std::string_view user = "") {
  protocol::scram_client_options o;
  o.nonce = nonce;
  o.user = user;
  return o;
}

inline protocol::scram_server_options server_opts(std::string_view nonce) {
  protocol::scram_server_options o;
  o.nonce = nonce;
  return o;
}

// Runs a whole exchange in process; returns the first error (or success) and both state machines.
struct exchange_outcome {
  boost::system::error_code error;
  std::string stage;  // where it failed
};

inline exchange_outcome run_exchange(protocol::scram_client& client, protocol::scram_server& server) {
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

}  // namespace pgsluice::test

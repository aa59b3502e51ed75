// Fuzz target for SCRAM-SHA-256 (both roles), verifier parsing, SASLprep, MD5 and base64: arbitrary bytes must never crash.
//
// Input layout: byte 0 picks what to feed (low 3 bits) and options (high bits); for the two-step
// exchanges the rest is split at the first '\n' into the first and the second message. Besides
// "no crash", a few properties are checked and trap when broken: a printed verifier parses back
// to the same value, ASCII passwords pass SASLprep unchanged, base64 decoding is stable, and any
// password SASLprep accepts authenticates against a verifier built from itself.
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "protocol/crypto.hpp"
#include "protocol/md5.hpp"
#include "protocol/sasl_prep.hpp"
#include "protocol/scram.hpp"

namespace {

using namespace pgsluice::protocol;

// Role scram_user, password 'secret', as stored by PostgreSQL 15 (tests/unit/protocol_auth_test.cpp).
constexpr std::string_view verifier_text =
    "SCRAM-SHA-256$4096:SZDp8g+rKZxNldJ3u1+CZw==$Falvn2s+QQZJHcUjLQ9dVr4wkAsdmtIl+VplEr0m4cc=:"
    "q7wEbCcdTtN8ayoBIRF+bloFM+azlrTPFn4aedN7n5g=";
// Its ClientKey and ServerKey, so the client role can run without the costly Hi().
constexpr scram_key client_key{0x3b, 0xc0, 0x51, 0x7e, 0x6c, 0x31, 0x58, 0x16, 0x3f, 0x8f, 0x56,
                               0xda, 0xac, 0xed, 0xa4, 0x50, 0x45, 0x2b, 0x54, 0x83, 0xf8, 0xcd,
                               0xf8, 0xd1, 0x3c, 0x2a, 0xe2, 0x6b, 0x07, 0x83, 0x7b, 0xb5};
constexpr scram_key server_key{0xab, 0xbc, 0x04, 0x6c, 0x27, 0x1d, 0x4e, 0xd3, 0x7c, 0x6b, 0x2a,
                               0x01, 0x21, 0x11, 0x7e, 0x6e, 0x5a, 0x05, 0x33, 0xe6, 0xb3, 0x96,
                               0xb4, 0xcf, 0x16, 0x7e, 0x1a, 0x79, 0xd3, 0x7b, 0x9f, 0x98};

void check(bool property) {
  if (!property) __builtin_trap();
}

std::pair<std::string_view, std::string_view> split(std::string_view s) {
  const std::size_t nl = s.find('\n');
  if (nl == std::string_view::npos) return {s, {}};
  return {s.substr(0, nl), s.substr(nl + 1)};
}

// Server role: client-first then client-final.
void server_role(std::uint8_t options, std::string_view input) {
  scram_server_options o;
  o.nonce = "ysTU31287RquIu98Q6wtCpwP";
  if (options & 0x10) o.channel_binding = scram_channel_binding{std::string(tls_server_end_point), {1, 2, 3}};
  auto server = (options & 0x20) ? scram_server::mock("user", std::array<std::uint8_t, 4>{1, 2, 3, 4}, o)
                                 : scram_server::from_verifier(verifier_text, o);
  check(server.has_value());
  const auto [first, final_msg] = split(input);
  const std::string_view mechanism = (options & 0x40) ? scram_sha_256_plus_name : scram_sha_256_name;
  const auto server_first = server->on_client_first(mechanism, first);
  const auto server_final = server->on_client_final(final_msg);
  check(server_final.has_value() == (server->current_state() == scram_server::state::done));
  check(server->recovered_keys().has_value() == server_final.has_value());
  if (!server_first) check(!server_final);
}

// Client role: server-first then server-final.
void client_role(std::uint8_t options, std::string_view input) {
  scram_client_options o;
  o.nonce = "pgsluiceClientNonce+/AbCdEf";
  o.cbind_flag = (options & 0x10) ? 'y' : 'n';
  o.max_iterations = 4096;  // Hi() per input stays cheap
  scram_client_keys keys;
  keys.client_key = client_key;
  keys.server_key = server_key;
  auto client = (options & 0x20) ? scram_client::from_password("secret", o) : scram_client::from_keys(keys, o);
  check(client.has_value());
  client->client_first();
  const auto [first, final_msg] = split(input);
  const auto client_final = client->on_server_first(first);
  const auto done = client->on_server_final(final_msg);
  check(done.has_value() == (client->current_state() == scram_client::state::done));
  if (!client_final) check(!done);
}

void verifier(std::string_view input) {
  const auto v = parse_scram_verifier(input);
  if (v) {
    // Printing may normalise (leading zeros, unused base64 bits), but must parse back identically.
    const auto again = parse_scram_verifier(to_string(*v));
    check(again.has_value() && *again == *v);
    auto server = scram_server::from_verifier(*v);
    check(server.has_value());
  }
}

void sasl_prep(std::string_view input) {
  const auto r = sasl_prep_password(input);
  bool ascii = input.size() <= max_sasl_prep_password_length && input.find('\0') == std::string_view::npos;
  for (const char c : input) ascii = ascii && static_cast<unsigned char>(c) < 0x80;
  if (ascii) check(r.has_value() && *r == input);
}

// A password authenticates against a verifier built from itself (one iteration keeps it fast).
void round_trip(std::string_view password) {
  scram_server_options so;
  so.salt = {1, 2, 3, 4};
  so.iterations = 1;
  auto server = scram_server::from_password(password, so);
  auto client = scram_client::from_password(password);
  check(server.has_value() == client.has_value());
  if (!server) return;
  auto first = server->on_client_first(client->mechanism(), client->client_first());
  check(first.has_value());
  auto final_msg = client->on_server_first(*first);
  check(final_msg.has_value());
  auto server_final = server->on_client_final(*final_msg);
  check(server_final.has_value());
  check(client->on_server_final(*server_final).has_value());
}

void md5(std::string_view input) {
  const std::array<std::uint8_t, 4> salt{1, 2, 3, 4};
  const auto [hash, response] = split(input);
  const auto r = md5_salted_response(hash, salt);
  const auto v = md5_verify_response(hash, salt, response);
  if (v) check(r.has_value() && *r == response);
  (void)md5_password_hash(hash, response);
}

void base64(std::string_view input) {
  const auto decoded = crypto::base64_decode(input);
  if (!decoded) return;
  const auto again = crypto::base64_decode(crypto::base64_encode(*decoded));
  check(again.has_value() && *again == *decoded);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t selector = data[0];
  const std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (selector & 0x07) {
    case 0: server_role(selector, input); break;
    case 1: client_role(selector, input); break;
    case 2: verifier(input); break;
    case 3: sasl_prep(input); break;
    case 4: round_trip(input); break;
    case 5: md5(input); break;
    default: base64(input); break;
  }
  return 0;
}

// MD5 password hashing and salted-response checks as PostgreSQL does them (see protocol/md5.hpp).
#include "protocol/md5.hpp"

#include <algorithm>

#include "protocol/crypto.hpp"

namespace pgsluice::protocol {
namespace {

using boost::system::result;

constexpr std::string_view md5_prefix = "md5";

bool is_lower_hex(std::string_view s) noexcept {
  return std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// "md5" + hex(md5(a || b)), PostgreSQL's pg_md5_encrypt().
result<std::string> md5_encrypt(crypto::bytes_view a, crypto::bytes_view b) {
  std::string input(reinterpret_cast<const char*>(a.data()), a.size());
  input.append(reinterpret_cast<const char*>(b.data()), b.size());
  crypto::digest128 digest{};
  const bool ok = crypto::md5(crypto::as_bytes(input), digest);
  crypto::secure_clear(input);
  if (!ok) return errc::crypto_failure;
  return std::string(md5_prefix) + crypto::hex_lower(digest);
}

}  // namespace

bool is_md5_hash(std::string_view text) noexcept {
  return text.size() == md5_hash_length && text.starts_with(md5_prefix) && is_lower_hex(text.substr(md5_prefix.size()));
}

result<std::string> md5_password_hash(std::string_view user, std::string_view password) {
  return md5_encrypt(crypto::as_bytes(password), crypto::as_bytes(user));
}

result<std::string> md5_salted_response(std::string_view hash, std::span<const std::uint8_t, 4> salt) {
  if (hash.starts_with(md5_prefix) && hash.size() == md5_hash_length) hash.remove_prefix(md5_prefix.size());
  if (hash.size() != md5_hash_length - md5_prefix.size() || !is_lower_hex(hash)) return errc::invalid_verifier;
  return md5_encrypt(crypto::as_bytes(hash), salt);
}

result<std::string> md5_client_response(std::string_view user, std::string_view password,
                                        std::span<const std::uint8_t, 4> salt) {
  auto hash = md5_password_hash(user, password);
  if (!hash) return hash.error();
  return md5_salted_response(*hash, salt);
}

result<void> md5_verify_response(std::string_view stored_hash, std::span<const std::uint8_t, 4> salt,
                                 std::string_view response) {
  if (!is_md5_hash(stored_hash)) return errc::invalid_verifier;
  auto expected = md5_salted_response(stored_hash, salt);
  if (!expected) return expected.error();
  if (!crypto::constant_time_equal(crypto::as_bytes(*expected), crypto::as_bytes(response))) return errc::auth_failed;
  return {};
}

}  // namespace pgsluice::protocol

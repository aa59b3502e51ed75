// MD5 password authentication, both roles: the hashes PostgreSQL stores and the salted responses it checks.
//
// PostgreSQL stores "md5" + hex(md5(password || user)) in pg_authid.rolpassword. During
// AuthenticationMD5Password the client answers "md5" + hex(md5(hex_hash || salt)), hex_hash being
// those 32 hex digits without the prefix, and the server computes the same from what it stores
// (https://www.postgresql.org/docs/15/auth-password.html,
// https://www.postgresql.org/docs/15/protocol-flow.html#id-1.10.6.7.3).
// The password is used as given: PostgreSQL applies no SASLprep to MD5.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include <boost/system/result.hpp>

#include "protocol/errc.hpp"

namespace pgsluice::protocol {

// "md5" followed by 32 lower-case hex digits.
inline constexpr std::size_t md5_hash_length = 35;
using md5_salt = std::array<std::uint8_t, 4>;

// True for what PostgreSQL recognises as a stored MD5 hash (get_password_type()): "md5" and
// exactly 32 lower-case hex digits.
bool is_md5_hash(std::string_view text) noexcept;

// "md5" + hex(md5(password || user)): what PostgreSQL stores for `user`.
// errc::crypto_failure if MD5 is unavailable (e.g. OpenSSL in FIPS-only mode).
boost::system::result<std::string> md5_password_hash(std::string_view user, std::string_view password);

// Client role: the PasswordMessage answer to AuthenticationMD5Password, "md5" + hex(md5(hex_hash
// || salt)). `hash` is a stored hash, with or without its "md5" prefix (32 lower-case hex digits
// then). errc::invalid_verifier for anything else, errc::crypto_failure.
boost::system::result<std::string> md5_salted_response(std::string_view hash, std::span<const std::uint8_t, 4> salt);

// Client role from the password: md5_salted_response(md5_password_hash(user, password), salt).
boost::system::result<std::string> md5_client_response(std::string_view user, std::string_view password,
                                                       std::span<const std::uint8_t, 4> salt);

// Server role: checks a client's PasswordMessage (without its terminating NUL) against the stored
// hash and the salt we sent, comparing in constant time. Errors: errc::invalid_verifier (stored
// hash malformed), errc::auth_failed (wrong answer), errc::crypto_failure.
boost::system::result<void> md5_verify_response(std::string_view stored_hash, std::span<const std::uint8_t, 4> salt,
                                                std::string_view response);

}  // namespace pgsluice::protocol

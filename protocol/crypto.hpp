// Hash, MAC, key-derivation, randomness and encoding primitives behind protocol/scram.hpp and protocol/md5.hpp.
//
// A thin wrapper over OpenSSL's libcrypto that keeps OpenSSL out of every header. Each primitive
// reports failure with `false` (an OpenSSL call can fail, e.g. MD5 in a FIPS-only configuration)
// instead of throwing, so the SCRAM and MD5 code can turn it into errc::crypto_failure.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace pgsluice::protocol::crypto {

using bytes_view = std::span<const std::uint8_t>;
using digest256 = std::array<std::uint8_t, 32>;
using digest128 = std::array<std::uint8_t, 16>;

// The bytes of a string, for the primitives below.
inline bytes_view as_bytes(std::string_view s) noexcept {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

bool sha256(bytes_view data, digest256& out) noexcept;
bool hmac_sha256(bytes_view key, bytes_view data, digest256& out) noexcept;
// PBKDF2-HMAC-SHA-256 with a 32-byte output: SCRAM's Hi() (RFC 5802 section 2.2).
bool pbkdf2_sha256(bytes_view password, bytes_view salt, std::uint32_t iterations, digest256& out) noexcept;
bool md5(bytes_view data, digest128& out) noexcept;
// SHA-224, SHA-256, SHA-384 or SHA-512 (`bits`) of `data` into `out` (resized); false for other sizes.
bool sha2(unsigned bits, bytes_view data, std::vector<std::uint8_t>& out);

// Cryptographically secure random bytes (RAND_bytes).
bool random_bytes(std::span<std::uint8_t> out) noexcept;

// Equality in time independent of where the inputs differ; inputs of different sizes are unequal
// (sizes are not secret here: proofs, signatures and hashes have fixed lengths).
bool constant_time_equal(bytes_view a, bytes_view b) noexcept;

// Overwrites memory in a way the compiler may not elide, for keys and passwords going out of scope.
void secure_clear(void* p, std::size_t n) noexcept;
// Clears the whole allocation of a string holding a secret (also beyond size()), then empties it.
void secure_clear(std::string& s) noexcept;

// Standard base64 (RFC 4648 section 4) with padding, as SCRAM and pg_authid use it.
std::string base64_encode(bytes_view data);
// Strict decoder: length a multiple of 4, only the base64 alphabet, '=' only as final padding.
// No whitespace is skipped. nullopt when the text is not base64.
std::optional<std::vector<std::uint8_t>> base64_decode(std::string_view text);

// Lower-case hexadecimal, as in PostgreSQL's MD5 hashes.
std::string hex_lower(bytes_view data);

}  // namespace pgsluice::protocol::crypto

// SCRAM key derivation done once per (password, salt, iteration count) instead of once per login.
//
// Hi() is PBKDF2-HMAC-SHA-256 with 4096 rounds by default: milliseconds of CPU, by design. A
// pooler that derives it at every login pays that for each connect-per-transaction client, on
// both sides: verifying a client against a plaintext password from the config, and logging in to
// a server with one. The result depends only on the password, the salt and the iteration count,
// so it is remembered here, keyed by an HMAC of those three under a per-cache random secret (the
// password itself is not kept). Only secrets pgsluice holds (the config, auth_query results) and
// salts servers send ever go in: nothing a client types, so a client cannot fill the cache, and a
// wrong password is checked against the right keys exactly as without the cache.
//
// For the server role a plaintext password needs a salt of its own: PostgreSQL draws one when the
// password is set and keeps it in pg_authid; here it is an HMAC of (user, password) under the same
// secret, so it is stable while the cache lives, differs between users and changes with the
// password, as a stored verifier's would.
//
// Thread-safe (one mutex, held only for lookups and inserts, never while deriving). Bounded: past
// `capacity` entries the oldest go first.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <span>
#include <string_view>
#include <unordered_map>

#include <boost/system/result.hpp>

#include "protocol/scram.hpp"

namespace pgsluice::protocol {

// ClientKey and ServerKey of one (password, salt, iterations): RFC 5802 section 3.
struct scram_derived_keys {
  scram_key client_key{};
  scram_key server_key{};
};

class scram_key_cache {
 public:
  static constexpr std::size_t default_capacity = 4096;

  explicit scram_key_cache(std::size_t capacity = default_capacity);
  ~scram_key_cache();
  scram_key_cache(const scram_key_cache&) = delete;
  scram_key_cache& operator=(const scram_key_cache&) = delete;

  // The keys of an already SASLprep'ed password with this salt and iteration count, derived on
  // the first call and remembered. Errors: errc::invalid_verifier (empty salt, zero iterations),
  // errc::crypto_failure.
  boost::system::result<scram_derived_keys> derive(std::string_view prepared_password, std::span<const std::uint8_t> salt,
                                                   std::uint32_t iterations);

  // A verifier for `password` (plaintext, SASLprep'ed here) to check `user`'s SCRAM login with:
  // the salt is stable per (user, password) while this cache lives. Errors: those of
  // sasl_prep_password and derive().
  boost::system::result<scram_verifier> verifier_for(std::string_view user, std::string_view password,
                                                     std::uint32_t iterations = scram_default_iterations);

  // Observability and tests.
  std::size_t size() const;
  std::uint64_t hits() const noexcept { return hits_.load(std::memory_order_relaxed); }
  std::uint64_t derivations() const noexcept { return derivations_.load(std::memory_order_relaxed); }
  // Forgets every entry (keys are cleared from memory).
  void clear();

 private:
  using digest = std::array<std::uint8_t, 32>;
  struct digest_hash {
    std::size_t operator()(const digest& d) const noexcept;
  };
  // HMAC(secret_, length-prefixed parts): the lookup key, or the salt of verifier_for.
  digest keyed_digest(std::string_view tag, std::span<const std::span<const std::uint8_t>> parts) const;

  const std::size_t capacity_;
  std::array<std::uint8_t, 32> secret_{};
  mutable std::mutex mu_;
  std::unordered_map<digest, scram_derived_keys, digest_hash> entries_;
  std::deque<digest> order_;  // insertion order, for eviction
  std::atomic<std::uint64_t> hits_{0};
  std::atomic<std::uint64_t> derivations_{0};
};

}  // namespace pgsluice::protocol

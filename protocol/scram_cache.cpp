// The SCRAM key cache of protocol/scram_cache.hpp: lookups under a mutex, Hi() outside it.
#include "protocol/scram_cache.hpp"

#include <cstring>
#include <vector>

#include "protocol/crypto.hpp"
#include "protocol/sasl_prep.hpp"

namespace pgsluice::protocol {

namespace {

void put_length(std::vector<std::uint8_t>& out, std::size_t n) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(n >> shift));
}

}  // namespace

scram_key_cache::scram_key_cache(std::size_t capacity) : capacity_(capacity == 0 ? 1 : capacity) {
  // Without randomness the digests would still be correct keys, only predictable salts: a failure
  // here (which RAND_bytes does not have in practice) leaves the secret zero rather than throwing.
  (void)crypto::random_bytes(secret_);
}

scram_key_cache::~scram_key_cache() {
  clear();
  crypto::secure_clear(secret_.data(), secret_.size());
}

std::size_t scram_key_cache::digest_hash::operator()(const digest& d) const noexcept {
  std::size_t h = 0;
  std::memcpy(&h, d.data(), sizeof h);  // already an HMAC output: any 8 bytes are uniform
  return h;
}

scram_key_cache::digest scram_key_cache::keyed_digest(std::string_view tag,
                                                      std::span<const std::span<const std::uint8_t>> parts) const {
  std::vector<std::uint8_t> input(tag.begin(), tag.end());
  for (const auto& p : parts) {
    put_length(input, p.size());
    input.insert(input.end(), p.begin(), p.end());
  }
  digest d{};
  if (!crypto::hmac_sha256(secret_, input, d)) d.fill(0);
  crypto::secure_clear(input.data(), input.size());
  return d;
}

boost::system::result<scram_derived_keys> scram_key_cache::derive(std::string_view prepared_password,
                                                                  std::span<const std::uint8_t> salt,
                                                                  std::uint32_t iterations) {
  if (salt.empty() || iterations == 0) return errc::invalid_verifier;
  std::array<std::uint8_t, 4> iter{};
  for (std::size_t i = 0; i < iter.size(); ++i) iter[i] = static_cast<std::uint8_t>(iterations >> (24 - 8 * i));
  const std::span<const std::uint8_t> parts[] = {crypto::as_bytes(prepared_password), salt, iter};
  const digest key = keyed_digest("keys", parts);
  {
    std::lock_guard lk(mu_);
    if (auto it = entries_.find(key); it != entries_.end()) {
      hits_.fetch_add(1, std::memory_order_relaxed);
      return it->second;
    }
  }
  // Derived without the lock: other logins go on meanwhile. Two logins missing at once both
  // derive; the second insert finds the first and changes nothing.
  scram_derived_keys k;
  if (!derive_scram_keys(prepared_password, salt, iterations, k.client_key, k.server_key)) return errc::crypto_failure;
  derivations_.fetch_add(1, std::memory_order_relaxed);
  std::lock_guard lk(mu_);
  if (entries_.emplace(key, k).second) {
    order_.push_back(key);
    while (entries_.size() > capacity_) {
      auto it = entries_.find(order_.front());
      if (it != entries_.end()) {
        crypto::secure_clear(&it->second, sizeof it->second);
        entries_.erase(it);
      }
      order_.pop_front();
    }
  }
  return k;
}

boost::system::result<scram_verifier> scram_key_cache::verifier_for(std::string_view user, std::string_view password,
                                                                    std::uint32_t iterations) {
  auto prepared = sasl_prep_password(password);
  if (!prepared) return prepared.error();
  const std::span<const std::uint8_t> parts[] = {crypto::as_bytes(user), crypto::as_bytes(*prepared)};
  const digest salt_digest = keyed_digest("salt", parts);
  scram_verifier v;
  v.iterations = iterations;
  v.salt.assign(salt_digest.begin(), salt_digest.begin() + scram_default_salt_length);
  auto keys = derive(*prepared, v.salt, iterations);
  crypto::secure_clear(*prepared);
  if (!keys) return keys.error();
  v.server_key = keys->server_key;
  const bool ok = crypto::sha256(keys->client_key, v.stored_key);
  crypto::secure_clear(&*keys, sizeof *keys);
  if (!ok) return errc::crypto_failure;
  return v;
}

std::size_t scram_key_cache::size() const {
  std::lock_guard lk(mu_);
  return entries_.size();
}

void scram_key_cache::clear() {
  std::lock_guard lk(mu_);
  for (auto& [key, keys] : entries_) crypto::secure_clear(&keys, sizeof keys);
  entries_.clear();
  order_.clear();
}

}  // namespace pgsluice::protocol

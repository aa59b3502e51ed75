// OpenSSL-backed implementation of the primitives declared in protocol/crypto.hpp.
#include "protocol/crypto.hpp"

#include <climits>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

namespace pgsluice::protocol::crypto {
namespace {

// OpenSSL takes int lengths; anything larger is refused rather than truncated.
bool fits_int(std::size_t n) noexcept { return n <= static_cast<std::size_t>(INT_MAX); }

// OpenSSL accepts a null pointer only with length 0; an empty span may have one anyway.
const unsigned char* data_or_empty(bytes_view b) noexcept {
  static const unsigned char empty = 0;
  return b.empty() ? &empty : b.data();
}

constexpr char b64_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int b64_value(char c) noexcept {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

}  // namespace

bool sha256(bytes_view data, digest256& out) noexcept {
  unsigned int len = 0;
  return EVP_Digest(data_or_empty(data), data.size(), out.data(), &len, EVP_sha256(), nullptr) == 1 &&
         len == out.size();
}

bool hmac_sha256(bytes_view key, bytes_view data, digest256& out) noexcept {
  if (!fits_int(key.size())) return false;
  unsigned int len = 0;
  return HMAC(EVP_sha256(), data_or_empty(key), static_cast<int>(key.size()), data_or_empty(data), data.size(),
              out.data(), &len) != nullptr &&
         len == out.size();
}

bool pbkdf2_sha256(bytes_view password, bytes_view salt, std::uint32_t iterations, digest256& out) noexcept {
  if (!fits_int(password.size()) || !fits_int(salt.size()) || iterations == 0 || iterations > INT_MAX) return false;
  return PKCS5_PBKDF2_HMAC(reinterpret_cast<const char*>(data_or_empty(password)), static_cast<int>(password.size()),
                           data_or_empty(salt), static_cast<int>(salt.size()), static_cast<int>(iterations),
                           EVP_sha256(), static_cast<int>(out.size()), out.data()) == 1;
}

bool sha2(unsigned bits, bytes_view data, std::vector<std::uint8_t>& out) {
  const EVP_MD* md = bits == 224 ? EVP_sha224() : bits == 256 ? EVP_sha256() : bits == 384 ? EVP_sha384()
                   : bits == 512 ? EVP_sha512() : nullptr;
  if (md == nullptr) return false;
  out.resize(bits / 8);
  unsigned int len = 0;
  return EVP_Digest(data_or_empty(data), data.size(), out.data(), &len, md, nullptr) == 1 && len == out.size();
}

bool md5(bytes_view data, digest128& out) noexcept {
  // EVP_MD_fetch rather than EVP_md5(): in a FIPS-only configuration the fetch fails cleanly.
  EVP_MD* md = EVP_MD_fetch(nullptr, "MD5", nullptr);
  if (md == nullptr) return false;
  unsigned int len = 0;
  const bool ok = EVP_Digest(data_or_empty(data), data.size(), out.data(), &len, md, nullptr) == 1 && len == out.size();
  EVP_MD_free(md);
  return ok;
}

bool random_bytes(std::span<std::uint8_t> out) noexcept {
  if (!fits_int(out.size())) return false;
  if (out.empty()) return true;
  return RAND_bytes(out.data(), static_cast<int>(out.size())) == 1;
}

bool constant_time_equal(bytes_view a, bytes_view b) noexcept {
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

void secure_clear(void* p, std::size_t n) noexcept {
  if (p != nullptr && n != 0) OPENSSL_cleanse(p, n);
}

void secure_clear(std::string& s) noexcept {
  // Growing to capacity() never reallocates, and makes the whole buffer (the short-string buffer
  // included) part of the string, so clearing it is well defined.
  s.resize(s.capacity());
  secure_clear(s.data(), s.size());
  s.clear();
}

std::string base64_encode(bytes_view data) {
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= data.size(); i += 3) {
    const std::uint32_t v = (std::uint32_t{data[i]} << 16) | (std::uint32_t{data[i + 1]} << 8) | data[i + 2];
    out += b64_alphabet[(v >> 18) & 63];
    out += b64_alphabet[(v >> 12) & 63];
    out += b64_alphabet[(v >> 6) & 63];
    out += b64_alphabet[v & 63];
  }
  const std::size_t rest = data.size() - i;
  if (rest == 1) {
    const std::uint32_t v = std::uint32_t{data[i]} << 16;
    out += b64_alphabet[(v >> 18) & 63];
    out += b64_alphabet[(v >> 12) & 63];
    out += "==";
  } else if (rest == 2) {
    const std::uint32_t v = (std::uint32_t{data[i]} << 16) | (std::uint32_t{data[i + 1]} << 8);
    out += b64_alphabet[(v >> 18) & 63];
    out += b64_alphabet[(v >> 12) & 63];
    out += b64_alphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

std::optional<std::vector<std::uint8_t>> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  std::size_t padding = 0;
  if (!text.empty() && text.back() == '=') ++padding;
  if (text.size() >= 2 && text[text.size() - 2] == '=') ++padding;
  std::vector<std::uint8_t> out;
  out.reserve(text.size() / 4 * 3);
  for (std::size_t i = 0; i < text.size(); i += 4) {
    const bool last = i + 4 == text.size();
    const std::size_t pad = last ? padding : 0;
    std::uint32_t v = 0;
    for (std::size_t j = 0; j < 4; ++j) {
      const char c = text[i + j];
      int d = 0;
      if (j >= 4 - pad) {
        if (c != '=') return std::nullopt;
      } else {
        d = b64_value(c);
        if (d < 0) return std::nullopt;  // includes a '=' before the final padding
      }
      v = (v << 6) | static_cast<std::uint32_t>(d);
    }
    out.push_back(static_cast<std::uint8_t>(v >> 16));
    if (pad < 2) out.push_back(static_cast<std::uint8_t>(v >> 8));
    if (pad < 1) out.push_back(static_cast<std::uint8_t>(v));
  }
  return out;
}

std::string hex_lower(bytes_view data) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(data.size() * 2);
  for (const std::uint8_t b : data) {
    out += digits[b >> 4];
    out += digits[b & 15];
  }
  return out;
}

}  // namespace pgsluice::protocol::crypto

// tls-server-end-point channel binding data (see protocol/channel_binding.hpp).
#include "protocol/channel_binding.hpp"

#include <algorithm>
#include <array>

#include "protocol/crypto.hpp"

namespace pgsluice::protocol {
namespace {

using bytes = std::span<const std::uint8_t>;

// One DER element: its tag and content, and what follows it in the enclosing buffer.
struct element {
  std::uint8_t tag = 0;
  bytes content;
  bytes rest;
};

// Reads the element at the start of `in` (definite lengths only, as DER requires).
std::optional<element> read_element(bytes in) noexcept {
  if (in.size() < 2) return std::nullopt;
  element e;
  e.tag = in[0];
  std::size_t len = in[1];
  std::size_t header = 2;
  if (len & 0x80) {
    const std::size_t count = len & 0x7f;
    if (count == 0 || count > 4 || in.size() < 2 + count) return std::nullopt;  // indefinite or absurd
    len = 0;
    for (std::size_t i = 0; i < count; ++i) len = (len << 8) | in[2 + i];
    header += count;
  }
  if (len > in.size() - header) return std::nullopt;
  e.content = in.subspan(header, len);
  e.rest = in.subspan(header + len);
  return e;
}

constexpr std::uint8_t sequence_tag = 0x30;
constexpr std::uint8_t oid_tag = 0x06;

struct known_algorithm {
  std::array<std::uint8_t, 9> oid;
  std::size_t size;
  end_point_hash hash;
};

// OID content bytes (X.690 encoding) of the signature algorithms with one hash.
constexpr known_algorithm algorithms[] = {
    // 1.2.840.113549.1.1.{4,5,14,11,12,13}: {md5,sha1,sha224,sha256,sha384,sha512}WithRSAEncryption
    {{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x04}, 9, end_point_hash::sha256},
    {{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05}, 9, end_point_hash::sha256},
    {{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0e}, 9, end_point_hash::sha224},
    {{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b}, 9, end_point_hash::sha256},
    {{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c}, 9, end_point_hash::sha384},
    {{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d}, 9, end_point_hash::sha512},
    // 1.2.840.10045.4.1 ecdsa-with-SHA1; 1.2.840.10045.4.3.{1,2,3,4} ecdsa-with-SHA{224,256,384,512}
    {{0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x01}, 7, end_point_hash::sha256},
    {{0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x01}, 8, end_point_hash::sha224},
    {{0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02}, 8, end_point_hash::sha256},
    {{0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03}, 8, end_point_hash::sha384},
    {{0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04}, 8, end_point_hash::sha512},
    // 1.2.840.10040.4.3 dsa-with-sha1; 2.16.840.1.101.3.4.3.{1,2} dsa-with-sha{224,256}
    {{0x2a, 0x86, 0x48, 0xce, 0x38, 0x04, 0x03}, 7, end_point_hash::sha256},
    {{0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03, 0x01}, 9, end_point_hash::sha224},
    {{0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03, 0x02}, 9, end_point_hash::sha256},
};

}  // namespace

std::optional<bytes> certificate_signature_oid(bytes der) noexcept {
  const auto cert = read_element(der);
  if (!cert || cert->tag != sequence_tag || !cert->rest.empty()) return std::nullopt;
  const auto tbs = read_element(cert->content);
  if (!tbs || tbs->tag != sequence_tag) return std::nullopt;
  const auto algorithm = read_element(tbs->rest);
  if (!algorithm || algorithm->tag != sequence_tag) return std::nullopt;
  const auto signature = read_element(algorithm->rest);  // BIT STRING, the last element
  if (!signature || signature->tag != 0x03 || !signature->rest.empty()) return std::nullopt;
  const auto oid = read_element(algorithm->content);
  if (!oid || oid->tag != oid_tag || oid->content.empty()) return std::nullopt;
  return oid->content;
}

std::optional<end_point_hash> end_point_hash_for(bytes signature_oid) noexcept {
  for (const auto& a : algorithms) {
    if (signature_oid.size() == a.size && std::equal(signature_oid.begin(), signature_oid.end(), a.oid.begin())) {
      return a.hash;
    }
  }
  return std::nullopt;
}

boost::system::result<std::vector<std::uint8_t>> server_end_point_data(bytes der) {
  const auto oid = certificate_signature_oid(der);
  if (!oid) return errc::channel_binding_error;
  const auto hash = end_point_hash_for(*oid);
  if (!hash) return errc::channel_binding_error;
  std::vector<std::uint8_t> out;
  if (!crypto::sha2(static_cast<unsigned>(*hash), der, out)) return errc::crypto_failure;
  return out;
}

}  // namespace pgsluice::protocol

// Channel binding data of type tls-server-end-point (RFC 5929 section 4) from a server certificate, for SCRAM-SHA-256-PLUS.
//
// The binding data is the hash of the server's certificate (DER), with the hash function of
// the certificate's signature algorithm, except that MD5 and SHA-1 are replaced by SHA-256
// (RFC 5929 section 4.1). A certificate whose signature algorithm names no single hash
// (Ed25519, RSA-PSS with its hash in the parameters) has no defined binding: PostgreSQL then
// refuses SCRAM-SHA-256-PLUS, and so does pgsluice (it offers only SCRAM-SHA-256).
//
// Pure: the certificate is read with a small DER walker (only the outer structure: Certificate
// ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }, RFC 5280 section 4.1);
// the hash comes from protocol/crypto.hpp. Never throws on input.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include <boost/system/result.hpp>

#include "protocol/errc.hpp"

namespace pgsluice::protocol {

enum class end_point_hash : std::uint16_t { sha224 = 224, sha256 = 256, sha384 = 384, sha512 = 512 };

// The OBJECT IDENTIFIER content bytes of the certificate's signatureAlgorithm; nullopt when
// `der` is not a DER certificate (wrong tags, lengths running past the end, trailing bytes).
std::optional<std::span<const std::uint8_t>> certificate_signature_oid(std::span<const std::uint8_t> der) noexcept;

// The hash RFC 5929 section 4.1 prescribes for a signature algorithm (OID content bytes):
// RSA PKCS#1 v1.5, ECDSA and DSA with MD5/SHA-1 (-> SHA-256) or a SHA-2 hash; nullopt otherwise.
std::optional<end_point_hash> end_point_hash_for(std::span<const std::uint8_t> signature_oid) noexcept;

// The tls-server-end-point binding data of a DER certificate. errc::channel_binding_error when
// it is not a certificate or its algorithm defines no hash; errc::crypto_failure.
boost::system::result<std::vector<std::uint8_t>> server_end_point_data(std::span<const std::uint8_t> der);

}  // namespace pgsluice::protocol

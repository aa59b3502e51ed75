// Unit tests of tls-server-end-point channel binding data (protocol/channel_binding.hpp): DER vectors, RFC 5929's hash rule, real certificates.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "protocol/channel_binding.hpp"
#include "protocol/scram.hpp"

namespace pgsluice::test {
namespace {

using bytes = std::vector<std::uint8_t>;
using protocol::end_point_hash;

// One DER element (short or long length form).
bytes der(std::uint8_t tag, const bytes& content) {
  bytes out{tag};
  const std::size_t n = content.size();
  if (n < 0x80) {
    out.push_back(static_cast<std::uint8_t>(n));
  } else if (n < 0x100) {
    out.insert(out.end(), {0x81, static_cast<std::uint8_t>(n)});
  } else {
    out.insert(out.end(), {0x82, static_cast<std::uint8_t>(n >> 8), static_cast<std::uint8_t>(n)});
  }
  out.insert(out.end(), content.begin(), content.end());
  return out;
}
bytes cat(std::initializer_list<bytes> parts) {
  bytes out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

// Certificate ::= SEQUENCE { tbsCertificate SEQUENCE, signatureAlgorithm SEQUENCE { OID, params }, BIT STRING }
bytes certificate(const bytes& oid, std::size_t tbs_size = 40) {
  const bytes tbs = der(0x30, bytes(tbs_size, 0x05));
  const bytes algorithm = der(0x30, cat({der(0x06, oid), der(0x05, {})}));
  const bytes signature = der(0x03, bytes(33, 0x11));
  return der(0x30, cat({tbs, algorithm, signature}));
}

const bytes md5_rsa{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x04};
const bytes sha1_rsa{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05};
const bytes sha256_rsa{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b};
const bytes sha512_rsa{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d};
const bytes rsa_pss{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a};
const bytes ecdsa_sha1{0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x01};
const bytes ecdsa_sha224{0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x01};
const bytes ecdsa_sha384{0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03};
const bytes ed25519{0x2b, 0x65, 0x70};

bytes digest(const EVP_MD* md, const bytes& data) {
  bytes out(EVP_MD_get_size(md));
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), out.data(), &len, md, nullptr);
  return out;
}

TEST(channel_binding, rfc5929_hash_rule) {
  struct row {
    const char* name;
    bytes oid;
    std::optional<end_point_hash> want;
  };
  const row rows[] = {
      {"md5_becomes_sha256", md5_rsa, end_point_hash::sha256},
      {"sha1_becomes_sha256", sha1_rsa, end_point_hash::sha256},
      {"ecdsa_sha1_becomes_sha256", ecdsa_sha1, end_point_hash::sha256},
      {"sha256_rsa", sha256_rsa, end_point_hash::sha256},
      {"sha512_rsa", sha512_rsa, end_point_hash::sha512},
      {"ecdsa_sha224", ecdsa_sha224, end_point_hash::sha224},
      {"ecdsa_sha384", ecdsa_sha384, end_point_hash::sha384},
      {"rsa_pss_hash_in_parameters", rsa_pss, std::nullopt},
      {"ed25519_no_hash", ed25519, std::nullopt},
      {"prefix_of_a_known_oid", bytes(sha256_rsa.begin(), sha256_rsa.end() - 1), std::nullopt},
      {"known_oid_and_more", cat({sha256_rsa, {0x01}}), std::nullopt},
  };
  for (const auto& r : rows) EXPECT_EQ(protocol::end_point_hash_for(r.oid), r.want) << r.name;
}

TEST(channel_binding, hash_of_the_whole_certificate) {
  struct row {
    const char* name;
    bytes oid;
    const EVP_MD* md;
  };
  const row rows[] = {
      {"sha1_rsa", sha1_rsa, EVP_sha256()},   {"md5_rsa", md5_rsa, EVP_sha256()},
      {"sha256_rsa", sha256_rsa, EVP_sha256()}, {"sha512_rsa", sha512_rsa, EVP_sha512()},
      {"ecdsa_sha224", ecdsa_sha224, EVP_sha224()}, {"ecdsa_sha384", ecdsa_sha384, EVP_sha384()},
  };
  for (const auto& r : rows) {
    for (const std::size_t tbs : {std::size_t{40}, std::size_t{300}}) {  // short and long length forms
      const bytes cert = certificate(r.oid, tbs);
      const auto oid = protocol::certificate_signature_oid(cert);
      ASSERT_TRUE(oid) << r.name;
      EXPECT_EQ(bytes(oid->begin(), oid->end()), r.oid) << r.name;
      const auto h = protocol::server_end_point_data(cert);
      ASSERT_TRUE(h) << r.name;
      EXPECT_EQ(*h, digest(r.md, cert)) << r.name;
    }
  }
}

TEST(channel_binding, malformed_or_unbound_certificates_are_refused) {
  const bytes good = certificate(sha256_rsa);
  bytes trailing = good;
  trailing.push_back(0);
  bytes truncated(good.begin(), good.end() - 1);
  bytes wrong_outer = good;
  wrong_outer[0] = 0x31;
  bytes indefinite = good;
  indefinite[1] = 0x80;
  const bytes no_signature =
      der(0x30, cat({der(0x30, bytes(4, 1)), der(0x30, cat({der(0x06, sha256_rsa), der(0x05, {})}))}));
  const bytes algorithm_not_an_oid =
      der(0x30, cat({der(0x30, bytes(4, 1)), der(0x30, der(0x04, sha256_rsa)), der(0x03, bytes(3, 1))}));
  const struct {
    const char* name;
    bytes der;
  } rows[] = {{"empty", {}},
              {"one_byte", {0x30}},
              {"trailing_byte", trailing},
              {"truncated", truncated},
              {"wrong_outer_tag", wrong_outer},
              {"indefinite_length", indefinite},
              {"no_signature", no_signature},
              {"algorithm_not_an_oid", algorithm_not_an_oid},
              {"huge_length", {0x30, 0x84, 0xff, 0xff, 0xff, 0xff, 0x00}},
              {"ed25519", certificate(ed25519)},
              {"rsa_pss", certificate(rsa_pss)}};
  for (const auto& r : rows) {
    const auto h = protocol::server_end_point_data(r.der);
    ASSERT_FALSE(h) << r.name;
    EXPECT_EQ(h.error(), make_error_code(errc::channel_binding_error)) << r.name;
  }
}

// --- real certificates made by OpenSSL, hashed as OpenSSL's X509_digest does -----------------

struct cert_deleter {
  void operator()(X509* x) const { X509_free(x); }
};
struct key_deleter {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};

// A self-signed certificate with a fresh key of `type` ("EC" P-256 or "ED25519"), signed with `md`.
std::unique_ptr<X509, cert_deleter> self_signed(const char* type, const EVP_MD* md) {
  std::unique_ptr<EVP_PKEY, key_deleter> key(std::string(type) == "EC" ? EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256")
                                                                       : EVP_PKEY_Q_keygen(nullptr, nullptr, type));
  std::unique_ptr<X509, cert_deleter> x(X509_new());
  X509_set_version(x.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x.get()), 7);
  X509_gmtime_adj(X509_getm_notBefore(x.get()), 0);
  X509_gmtime_adj(X509_getm_notAfter(x.get()), 3600);
  X509_NAME_add_entry_by_txt(X509_get_subject_name(x.get()), "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
  X509_set_issuer_name(x.get(), X509_get_subject_name(x.get()));
  X509_set_pubkey(x.get(), key.get());
  EXPECT_GT(X509_sign(x.get(), key.get(), md), 0);
  return x;
}

bytes der_of(X509* x) {
  unsigned char* p = nullptr;
  const int len = i2d_X509(x, &p);
  bytes out(p, p + len);
  OPENSSL_free(p);
  return out;
}

bytes openssl_digest(X509* x, const EVP_MD* md) {
  bytes out(EVP_MAX_MD_SIZE);
  unsigned int len = 0;
  X509_digest(x, md, out.data(), &len);
  out.resize(len);
  return out;
}

TEST(channel_binding, real_certificates) {
  const auto ecdsa384 = self_signed("EC", EVP_sha384());
  auto h = protocol::server_end_point_data(der_of(ecdsa384.get()));
  ASSERT_TRUE(h);
  EXPECT_EQ(*h, openssl_digest(ecdsa384.get(), EVP_sha384()));

  // SHA-1 signatures bind with SHA-256 (RFC 5929 section 4.1).
  const auto ecdsa1 = self_signed("EC", EVP_sha1());
  h = protocol::server_end_point_data(der_of(ecdsa1.get()));
  ASSERT_TRUE(h);
  EXPECT_EQ(*h, openssl_digest(ecdsa1.get(), EVP_sha256()));

  const auto ed = self_signed("ED25519", nullptr);
  EXPECT_FALSE(protocol::server_end_point_data(der_of(ed.get())));
}

// Both ends derive the binding from the same certificate: SCRAM-SHA-256-PLUS succeeds; a
// client that saw another certificate (someone in the middle) is refused.
TEST(channel_binding, scram_plus_with_certificate_hashes) {
  const auto mine = self_signed("EC", EVP_sha256());
  const auto other = self_signed("EC", EVP_sha256());
  auto binding = [](X509* x) {
    protocol::scram_channel_binding cb;
    cb.data = *protocol::server_end_point_data(der_of(x));
    return cb;
  };
  for (const bool same : {true, false}) {
    protocol::scram_server_options so;
    so.channel_binding = binding(mine.get());
    auto server = protocol::scram_server::from_password("pw", so);
    ASSERT_TRUE(server);
    protocol::scram_client_options co;
    co.channel_binding = binding(same ? mine.get() : other.get());
    auto client = protocol::scram_client::from_password("pw", co);
    ASSERT_TRUE(client);
    auto first = server->on_client_first(client->mechanism(), client->client_first());
    ASSERT_TRUE(first);
    auto final_msg = client->on_server_first(*first);
    ASSERT_TRUE(final_msg);
    auto verdict = server->on_client_final(*final_msg);
    if (same) {
      ASSERT_TRUE(verdict);
      EXPECT_TRUE(client->on_server_final(*verdict));
    } else {
      ASSERT_FALSE(verdict);
      EXPECT_EQ(verdict.error(), make_error_code(errc::channel_binding_error));
    }
  }
}

}  // namespace
}  // namespace pgsluice::test

// Certificates for TLS tests and the bench stack's TLS targets, made with the openssl command: a CA, server and client certificates.
#pragma once

#include <filesystem>
#include <string>

#include "bench/process.hpp"

namespace pgsluice::bench {

// A certificate and its private key (PEM), with the CA that signed it (a CA's own files:
// cert == ca_cert).
struct tls_files {
  std::filesystem::path ca_cert;
  std::filesystem::path ca_key;
  std::filesystem::path cert;
  std::filesystem::path key;
};

// A new self-signed CA (EC P-256, SHA-256) named `name`: <dir>/<name>.crt and .key, owned by
// `owner` (keys mode 0600, as PostgreSQL and PgBouncer require). Throws stack_error with
// openssl's output when it fails.
tls_files make_test_ca(const std::filesystem::path& dir, const std::string& name, const service_user& owner);

// A certificate signed by `ca`, subject CN `common_name`: <dir>/<stem>.crt and .key. A server
// certificate names 127.0.0.1 and localhost in its subjectAltName (for verify-full); a client
// certificate is for clientAuth.
tls_files make_test_certificate(const tls_files& ca, const std::filesystem::path& dir, const std::string& stem,
                                const std::string& common_name, bool server, const service_user& owner);

}  // namespace pgsluice::bench

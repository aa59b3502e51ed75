// Checks of the [tls] section across its keys: what each mode needs, keys that would have no effect, paths made absolute.
#include <string>

#include "conf/config.hpp"
#include "conf/loading.hpp"

namespace pgsluice::conf::detail {

namespace {

bool verifies(tls_mode m) noexcept { return m == tls_mode::verify_ca || m == tls_mode::verify_full; }

std::string quoted_mode(tls_mode m) { return "\"" + std::string(to_string(m)) + "\""; }

}  // namespace

void check_tls(context& ctx, config& c) {
  tls_config& t = c.tls;
  // Files are named relative to the config file, wherever serve was started from.
  const std::filesystem::path base = c.source.empty() ? std::filesystem::path() : c.source.parent_path();
  for (auto* p : {&t.client_tls_cert_file, &t.client_tls_key_file, &t.client_tls_ca_file, &t.server_tls_ca_file,
                  &t.server_tls_cert_file, &t.server_tls_key_file}) {
    if (!p->empty() && p->is_relative() && !base.empty()) *p = base / *p;
  }

  // Towards clients.
  if (t.client_tls_mode == tls_mode::disable) {
    for (const auto& [key, path] : {std::pair{"tls.client_tls_cert_file", &t.client_tls_cert_file},
                                    std::pair{"tls.client_tls_key_file", &t.client_tls_key_file}}) {
      if (!path->empty()) ctx.error_at(key, "has no effect with client_tls_mode = \"disable\" (set a mode that uses TLS)");
    }
  } else {
    if (t.client_tls_cert_file.empty() || t.client_tls_key_file.empty()) {
      ctx.error_at("tls.client_tls_mode", quoted_mode(t.client_tls_mode) +
                                              " needs client_tls_cert_file and client_tls_key_file (the certificate "
                                              "pgsluice presents to clients)");
    }
  }
  if (verifies(t.client_tls_mode) && t.client_tls_ca_file.empty()) {
    ctx.error_at("tls.client_tls_mode", quoted_mode(t.client_tls_mode) +
                                            " needs client_tls_ca_file (the CA client certificates must be signed by)");
  }
  if (!verifies(t.client_tls_mode) && !t.client_tls_ca_file.empty()) {
    ctx.error_at("tls.client_tls_ca_file", "is used only with client_tls_mode = \"verify-ca\" or \"verify-full\" (got " +
                                               quoted_mode(t.client_tls_mode) + ")");
  }

  // Towards servers.
  if (t.server_tls_cert_file.empty() != t.server_tls_key_file.empty()) {
    ctx.error_at(t.server_tls_cert_file.empty() ? "tls.server_tls_key_file" : "tls.server_tls_cert_file",
                 "server_tls_cert_file and server_tls_key_file go together (a client certificate and its key)");
  }
  if (t.server_tls_mode == tls_mode::disable && !t.server_tls_cert_file.empty()) {
    ctx.error_at("tls.server_tls_cert_file", "has no effect with server_tls_mode = \"disable\"");
  }
  if (!verifies(t.server_tls_mode) && !t.server_tls_ca_file.empty()) {
    ctx.error_at("tls.server_tls_ca_file", "is used only with server_tls_mode = \"verify-ca\" or \"verify-full\" (got " +
                                               quoted_mode(t.server_tls_mode) + ")");
  }
  // A Unix-socket backend is never reached over TLS (libpq ignores sslmode there too): say so
  // once, where a reader of `check` expects every server connection to be encrypted.
  if (t.server_tls_mode != tls_mode::disable) {
    for (const auto& db : c.databases) {
      for (const auto& b : db.backends) {
        if (b.host.starts_with('/')) {
          ctx.warning_at("tls.server_tls_mode", quoted_mode(t.server_tls_mode) + " does not apply to the Unix-socket backend " +
                                                    b.host + " of database " + db.name + " (plaintext there, as libpq)");
          return;
        }
      }
    }
  }
}

}  // namespace pgsluice::conf::detail

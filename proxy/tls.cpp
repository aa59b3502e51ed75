// TLS contexts from [tls], and one connection's OpenSSL state over its non-blocking socket (see proxy/tls.hpp).
#include "proxy/tls.hpp"

#include <cerrno>
#include <stdexcept>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/error.hpp>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "protocol/channel_binding.hpp"

namespace pgsluice::proxy {

namespace {

std::string openssl_reason() {
  std::string out;
  while (const unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? std::string("unknown OpenSSL error") : out;
}

[[noreturn]] void refuse(std::string_view key, const std::filesystem::path& file, std::string_view what) {
  throw std::runtime_error("tls." + std::string(key) + ": cannot use " + file.string() + " (" + std::string(what) +
                           "): " + openssl_reason());
}

// Settings both roles share: TLS 1.2 or later, no renegotiation, no session resumption (no
// cache to keep coherent between workers), partial writes (tls_send_now's contract).
SSL_CTX* new_context(const SSL_METHOD* method) {
  SSL_CTX* ctx = SSL_CTX_new(method);
  if (ctx == nullptr) throw std::runtime_error("tls: cannot create an OpenSSL context: " + openssl_reason());
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET | SSL_OP_IGNORE_UNEXPECTED_EOF |
                               SSL_OP_NO_COMPRESSION);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  return ctx;
}

void use_certificate(SSL_CTX* ctx, std::string_view cert_key, const std::filesystem::path& cert,
                     std::string_view key_key, const std::filesystem::path& key) {
  if (SSL_CTX_use_certificate_chain_file(ctx, cert.c_str()) != 1) refuse(cert_key, cert, "certificate chain, PEM");
  if (SSL_CTX_use_PrivateKey_file(ctx, key.c_str(), SSL_FILETYPE_PEM) != 1) refuse(key_key, key, "private key, PEM");
  if (SSL_CTX_check_private_key(ctx) != 1) refuse(key_key, key, "the key of " + cert.string());
}

bool verifies(conf::tls_mode m) noexcept { return m == conf::tls_mode::verify_ca || m == conf::tls_mode::verify_full; }

boost::system::error_code ssl_error(unsigned long e) {
  return {static_cast<int>(e), boost::asio::error::get_ssl_category()};
}

}  // namespace

// --- contexts ------------------------------------------------------------------------------

std::shared_ptr<const tls_contexts> tls_contexts::load(const conf::tls_config& cfg) {
  std::shared_ptr<tls_contexts> t(new tls_contexts());
  t->client_mode_ = cfg.client_tls_mode;
  t->server_mode_ = cfg.server_tls_mode;
  t->handshake_timeout_ = cfg.client_tls_handshake_timeout;
  ERR_clear_error();
  if (cfg.client_tls_mode != conf::tls_mode::disable) {
    t->client_ctx_ = new_context(TLS_server_method());
    use_certificate(t->client_ctx_, "client_tls_cert_file", cfg.client_tls_cert_file, "client_tls_key_file",
                    cfg.client_tls_key_file);
    if (verifies(cfg.client_tls_mode)) {
      if (SSL_CTX_load_verify_locations(t->client_ctx_, cfg.client_tls_ca_file.c_str(), nullptr) != 1)
        refuse("client_tls_ca_file", cfg.client_tls_ca_file, "CA certificates, PEM");
      STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(cfg.client_tls_ca_file.c_str());
      if (names == nullptr) refuse("client_tls_ca_file", cfg.client_tls_ca_file, "CA certificates, PEM");
      SSL_CTX_set_client_CA_list(t->client_ctx_, names);
      SSL_CTX_set_verify(t->client_ctx_, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    }
    // The binding data of SCRAM-SHA-256-PLUS: the hash of the certificate clients receive.
    if (X509* leaf = SSL_CTX_get0_certificate(t->client_ctx_)) {
      unsigned char* der = nullptr;
      const int len = i2d_X509(leaf, &der);
      if (len > 0) {
        if (auto h = protocol::server_end_point_data({der, static_cast<std::size_t>(len)})) t->client_end_point_ = std::move(*h);
        OPENSSL_free(der);
      }
    }
  }
  if (cfg.server_tls_mode != conf::tls_mode::disable) {
    t->server_ctx_ = new_context(TLS_client_method());
    if (!cfg.server_tls_cert_file.empty()) {
      use_certificate(t->server_ctx_, "server_tls_cert_file", cfg.server_tls_cert_file, "server_tls_key_file",
                      cfg.server_tls_key_file);
    }
    if (verifies(cfg.server_tls_mode)) {
      if (cfg.server_tls_ca_file.empty()) {
        if (SSL_CTX_set_default_verify_paths(t->server_ctx_) != 1)
          throw std::runtime_error("tls.server_tls_ca_file: unset, and the system's CAs cannot be loaded: " + openssl_reason());
      } else if (SSL_CTX_load_verify_locations(t->server_ctx_, cfg.server_tls_ca_file.c_str(), nullptr) != 1) {
        refuse("server_tls_ca_file", cfg.server_tls_ca_file, "CA certificates, PEM");
      }
      SSL_CTX_set_verify(t->server_ctx_, SSL_VERIFY_PEER, nullptr);
    } else {
      SSL_CTX_set_verify(t->server_ctx_, SSL_VERIFY_NONE, nullptr);
    }
  }
  return t;
}

tls_contexts::~tls_contexts() {
  SSL_CTX_free(client_ctx_);
  SSL_CTX_free(server_ctx_);
}

// --- one connection ------------------------------------------------------------------------

namespace {

// An SSL object on the socket's descriptor, the socket non-blocking; null on failure.
template <class Socket>
SSL* ssl_on(ssl_ctx_st* ctx, Socket& socket) {
  boost::system::error_code ec;
  socket.native_non_blocking(true, ec);
  SSL* ssl = SSL_new(ctx);
  if (ssl == nullptr || ec || SSL_set_fd(ssl, socket.native_handle()) != 1) {
    SSL_free(ssl);
    return nullptr;
  }
  return ssl;
}

}  // namespace

std::unique_ptr<tls_channel> tls_channel::accepting(ssl_ctx_st* ctx, tcp::socket& socket) {
  SSL* ssl = ssl_on(ctx, socket);
  if (ssl == nullptr) return nullptr;
  SSL_set_accept_state(ssl);
  return std::unique_ptr<tls_channel>(new tls_channel(ssl));
}

std::unique_ptr<tls_channel> tls_channel::connecting(ssl_ctx_st* ctx, stream_socket& socket, const std::string& host,
                                                     bool verify_name) {
  SSL* ssl = ssl_on(ctx, socket);
  if (ssl == nullptr) return nullptr;
  SSL_set_connect_state(ssl);
  boost::system::error_code not_ip;
  asio::ip::make_address(host, not_ip);
  bool ok = !not_ip || SSL_set_tlsext_host_name(ssl, host.c_str()) == 1;
  if (ok && verify_name) {
    // verify-full: the certificate names the host (a DNS name in its SAN or CN) or the address
    // (an IP address in its SAN), as libpq checks.
    if (!not_ip) {
      ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host.c_str()) == 1;
    } else {
      SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      ok = SSL_set1_host(ssl, host.c_str()) == 1;
    }
  }
  if (!ok) {
    SSL_free(ssl);
    return nullptr;
  }
  return std::unique_ptr<tls_channel>(new tls_channel(ssl));
}

tls_channel::~tls_channel() { SSL_free(ssl_); }

tls_channel::io tls_channel::result_of(int ret, std::size_t n) noexcept {
  io r;
  if (ret == 1) {
    r.n = n;
    return r;
  }
  const int saved_errno = errno;
  switch (SSL_get_error(ssl_, ret)) {
    case SSL_ERROR_WANT_READ:
      r.need = wait::read;
      break;
    case SSL_ERROR_WANT_WRITE:
      r.need = wait::write;
      break;
    case SSL_ERROR_ZERO_RETURN:
      r.ec = asio::error::eof;
      break;
    case SSL_ERROR_SYSCALL:
      r.ec = saved_errno != 0 ? boost::system::error_code(saved_errno, boost::system::system_category())
                              : boost::system::error_code(asio::error::eof);
      break;
    default: {
      const unsigned long e = ERR_peek_last_error();
      r.ec = e != 0 ? ssl_error(e) : boost::system::error_code(asio::error::connection_aborted);
      break;
    }
  }
  return r;
}

tls_channel::io tls_channel::read_now(std::span<std::uint8_t> into) noexcept {
  ERR_clear_error();
  errno = 0;
  std::size_t n = 0;
  const int ret = SSL_read_ex(ssl_, into.data(), into.size(), &n);
  return result_of(ret, n);
}

tls_channel::io tls_channel::write_now(std::span<const std::uint8_t> bytes) noexcept {
  io total;
  while (total.n < bytes.size()) {
    ERR_clear_error();
    errno = 0;
    std::size_t n = 0;
    const int ret = SSL_write_ex(ssl_, bytes.data() + total.n, bytes.size() - total.n, &n);
    io r = result_of(ret, n);
    if (r.need != wait::none || r.ec) {
      r.n = total.n;
      return r;
    }
    total.n += r.n;
  }
  return total;
}

tls_channel::io tls_channel::handshake_now() noexcept {
  ERR_clear_error();
  errno = 0;
  return result_of(SSL_do_handshake(ssl_), 0);
}

bool tls_channel::has_pending() const noexcept { return SSL_has_pending(ssl_) == 1; }

void tls_channel::shutdown_now() noexcept {
  ERR_clear_error();
  if (SSL_is_init_finished(ssl_)) SSL_shutdown(ssl_);
  ERR_clear_error();
}

std::string tls_channel::version() const { return SSL_get_version(ssl_); }

std::string tls_channel::cipher() const {
  const char* c = SSL_get_cipher_name(ssl_);
  return c != nullptr ? c : "";
}

std::vector<std::uint8_t> tls_channel::peer_certificate() const {
  std::vector<std::uint8_t> out;
  X509* peer = SSL_get1_peer_certificate(ssl_);
  if (peer == nullptr) return out;
  unsigned char* der = nullptr;
  const int len = i2d_X509(peer, &der);
  if (len > 0) {
    out.assign(der, der + len);
    OPENSSL_free(der);
  }
  X509_free(peer);
  return out;
}

std::string tls_channel::peer_common_name() const {
  std::string out;
  X509* peer = SSL_get1_peer_certificate(ssl_);
  if (peer == nullptr) return out;
  char buf[256];
  const int len = X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, buf, sizeof buf);
  // A CN with an embedded NUL would compare equal to its prefix: treat it as no CN, as PostgreSQL does.
  if (len > 0 && static_cast<std::size_t>(len) == std::char_traits<char>::length(buf)) out.assign(buf, static_cast<std::size_t>(len));
  X509_free(peer);
  return out;
}

std::string tls_channel::describe(const boost::system::error_code& ec) const {
  std::string out = ec.message();
  const long v = SSL_get_verify_result(ssl_);
  if (v != X509_V_OK) out += " (certificate: " + std::string(X509_verify_cert_error_string(v)) + ")";
  return out;
}

// --- coroutines ------------------------------------------------------------------------------

namespace {

template <class Socket>
awaitable<boost::system::error_code> wait_for(Socket& s, tls_channel::wait w) {
  auto [ec] = co_await s.async_wait(w == tls_channel::wait::read ? tcp::socket::wait_read : tcp::socket::wait_write,
                                    nothrow_awaitable);
  co_return ec;
}

template <class Socket>
awaitable<std::tuple<boost::system::error_code, std::size_t>> read_some(Socket& s, tls_channel& t,
                                                                        std::span<std::uint8_t> into) {
  for (;;) {
    const auto r = t.read_now(into);
    if (r.need == tls_channel::wait::none) co_return std::tuple{r.ec, r.n};
    if (auto ec = co_await wait_for(s, r.need)) co_return std::tuple{ec, std::size_t{0}};
  }
}

template <class Socket>
awaitable<boost::system::error_code> write_all(Socket& s, tls_channel& t, std::span<const std::uint8_t> bytes) {
  while (!bytes.empty()) {
    const auto r = t.write_now(bytes);
    if (r.ec) co_return r.ec;
    bytes = bytes.subspan(r.n);
    if (r.need != tls_channel::wait::none) {
      if (auto ec = co_await wait_for(s, r.need)) co_return ec;
    }
  }
  co_return boost::system::error_code{};
}

template <class Socket>
awaitable<boost::system::error_code> handshake(Socket& s, tls_channel& t) {
  for (;;) {
    const auto r = t.handshake_now();
    if (r.need == tls_channel::wait::none) co_return r.ec;
    if (auto ec = co_await wait_for(s, r.need)) co_return ec;
  }
}

}  // namespace

awaitable<std::tuple<boost::system::error_code, std::size_t>> tls_read_some(tcp::socket& s, tls_channel& t,
                                                                            std::span<std::uint8_t> into) {
  return read_some(s, t, into);
}
awaitable<std::tuple<boost::system::error_code, std::size_t>> tls_read_some(stream_socket& s, tls_channel& t,
                                                                            std::span<std::uint8_t> into) {
  return read_some(s, t, into);
}
awaitable<boost::system::error_code> tls_write_all(tcp::socket& s, tls_channel& t, std::span<const std::uint8_t> bytes) {
  return write_all(s, t, bytes);
}
awaitable<boost::system::error_code> tls_write_all(stream_socket& s, tls_channel& t, std::span<const std::uint8_t> bytes) {
  return write_all(s, t, bytes);
}
awaitable<boost::system::error_code> tls_handshake(tcp::socket& s, tls_channel& t) { return handshake(s, t); }
awaitable<boost::system::error_code> tls_handshake(stream_socket& s, tls_channel& t) { return handshake(s, t); }

std::size_t tls_send_now(tls_channel& t, const gather_list& g, std::vector<std::uint8_t>& scratch,
                         boost::system::error_code& ec) {
  std::span<const std::uint8_t> bytes;
  std::size_t pieces = 0;
  g.for_each([&](std::span<const std::uint8_t> s) {
    if (pieces++ == 0) bytes = s;
  });
  if (pieces > 1) {
    scratch.clear();
    g.for_each([&](std::span<const std::uint8_t> s) { scratch.insert(scratch.end(), s.begin(), s.end()); });
    bytes = scratch;
  }
  const auto r = t.write_now(bytes);
  ec = r.ec;
  return r.n;
}

}  // namespace pgsluice::proxy

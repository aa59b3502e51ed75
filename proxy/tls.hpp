// Internal to proxy/: TLS towards clients and servers — the contexts built from [tls], one connection's OpenSSL state, its non-blocking I/O.
//
// OpenSSL runs directly on the socket's descriptor (an fd BIO, the socket non-blocking), not
// through asio::ssl::stream: a TLS read or write is then an attempt now (SSL_read_ex /
// SSL_write_ex) and, only when OpenSSL would block, a wait for the socket to become readable
// or writable. That keeps the relay's shape (write at once, wait only for a remainder) for TLS
// connections, and lets a pooled server connection move between workers: its descriptor, the
// one the SSL object holds, stays the same (server_connection::adopt). Plaintext connections
// never touch this file: the relay checks one pointer per read and write and takes the
// existing path when it is null (no virtual call, no variant).
//
// Waits follow OpenSSL's would-block answers at once (the socket has just said EAGAIN), so an
// edge-triggered reactor cannot miss the readiness that ends them.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <tuple>
#include <vector>

#include "conf/config.hpp"
#include "proxy/asio.hpp"
#include "proxy/buffer.hpp"

struct ssl_st;
struct ssl_ctx_st;

namespace pgsluice::proxy {

// The TLS contexts of one config, immutable once loaded; a reload loads new ones, which new
// connections use (sessions keep those they started with).
class tls_contexts {
 public:
  // Reads the files [tls] names. Throws std::runtime_error naming the key and the file (and
  // OpenSSL's reason) when one cannot be used.
  static std::shared_ptr<const tls_contexts> load(const conf::tls_config& cfg);
  ~tls_contexts();
  tls_contexts(const tls_contexts&) = delete;
  tls_contexts& operator=(const tls_contexts&) = delete;

  conf::tls_mode client_mode() const noexcept { return client_mode_; }
  conf::tls_mode server_mode() const noexcept { return server_mode_; }
  std::chrono::milliseconds handshake_timeout() const noexcept { return handshake_timeout_; }
  // TLS towards clients (client_tls_mode is not disable).
  ssl_ctx_st* client_ctx() const noexcept { return client_ctx_; }
  // TLS towards servers (server_tls_mode is not disable).
  ssl_ctx_st* server_ctx() const noexcept { return server_ctx_; }
  // tls-server-end-point binding data of the certificate presented to clients; empty when its
  // signature algorithm defines none (then SCRAM-SHA-256-PLUS is not offered).
  const std::vector<std::uint8_t>& client_end_point() const noexcept { return client_end_point_; }

 private:
  tls_contexts() = default;
  conf::tls_mode client_mode_ = conf::tls_mode::disable;
  conf::tls_mode server_mode_ = conf::tls_mode::disable;
  std::chrono::milliseconds handshake_timeout_{10000};
  ssl_ctx_st* client_ctx_ = nullptr;
  ssl_ctx_st* server_ctx_ = nullptr;
  std::vector<std::uint8_t> client_end_point_;
};

// Whether a mode refuses plaintext (require, verify-ca, verify-full).
inline bool tls_required(conf::tls_mode m) noexcept {
  return m == conf::tls_mode::require || m == conf::tls_mode::verify_ca || m == conf::tls_mode::verify_full;
}

// One TLS connection over a socket descriptor.
class tls_channel {
 public:
  // Accepting (client side of pgsluice) or connecting (towards a server `host`) on the socket,
  // which is made non-blocking. Towards a server, a host name goes out as SNI (not an address,
  // as libpq); `verify_name`: the certificate must name `host` (verify-full). Null on failure.
  static std::unique_ptr<tls_channel> accepting(ssl_ctx_st* ctx, tcp::socket& socket);
  static std::unique_ptr<tls_channel> connecting(ssl_ctx_st* ctx, stream_socket& socket, const std::string& host,
                                                 bool verify_name);
  ~tls_channel();
  tls_channel(const tls_channel&) = delete;
  tls_channel& operator=(const tls_channel&) = delete;

  // What an attempt did: bytes moved, or the direction to wait for, or the error (eof on close).
  enum class wait : std::uint8_t { none, read, write };
  struct io {
    std::size_t n = 0;
    wait need = wait::none;
    boost::system::error_code ec;
  };
  io read_now(std::span<std::uint8_t> into) noexcept;
  io write_now(std::span<const std::uint8_t> bytes) noexcept;
  io handshake_now() noexcept;
  // Decrypted or received bytes OpenSSL holds that the socket no longer shows.
  bool has_pending() const noexcept;
  // close_notify, best effort and never blocking.
  void shutdown_now() noexcept;

  // After the handshake: "TLSv1.3", the cipher, whether the peer sent a certificate, the
  // peer certificate's DER, the common name of its subject.
  std::string version() const;
  std::string cipher() const;
  std::vector<std::uint8_t> peer_certificate() const;
  std::string peer_common_name() const;
  // Why the handshake failed: OpenSSL's reason and the certificate check's, when it failed.
  std::string describe(const boost::system::error_code& ec) const;

 private:
  explicit tls_channel(ssl_st* ssl) : ssl_(ssl) {}
  io result_of(int ret, std::size_t n) noexcept;
  ssl_st* ssl_;
};

// The coroutine side: attempt, wait on the socket for what OpenSSL needs, again. Clients are on
// tcp::socket, servers on stream_socket (TCP there too: never TLS over a Unix socket).
awaitable<std::tuple<boost::system::error_code, std::size_t>> tls_read_some(tcp::socket& s, tls_channel& t,
                                                                            std::span<std::uint8_t> into);
awaitable<boost::system::error_code> tls_write_all(tcp::socket& s, tls_channel& t, std::span<const std::uint8_t> bytes);
awaitable<boost::system::error_code> tls_handshake(tcp::socket& s, tls_channel& t);
awaitable<std::tuple<boost::system::error_code, std::size_t>> tls_read_some(stream_socket& s, tls_channel& t,
                                                                            std::span<std::uint8_t> into);
awaitable<boost::system::error_code> tls_write_all(stream_socket& s, tls_channel& t, std::span<const std::uint8_t> bytes);
awaitable<boost::system::error_code> tls_handshake(stream_socket& s, tls_channel& t);

// gather_list::send_now for a TLS connection: as much of `g` as goes out now (pieces joined in
// `scratch` first, so records are full). A remainder must be sent next, from the returned
// offset, before anything else (OpenSSL's retry rule).
std::size_t tls_send_now(tls_channel& t, const gather_list& g, std::vector<std::uint8_t>& scratch,
                         boost::system::error_code& ec);

}  // namespace pgsluice::proxy

// Internal to proxy/: one connection to a PostgreSQL server — login (trust/md5/SCRAM, pass-through keys), state, caches.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "conf/config.hpp"
#include "protocol/scram.hpp"
#include "proxy/asio.hpp"
#include "proxy/buffer.hpp"
#include "proxy/metrics.hpp"
#include "proxy/params.hpp"
#include "proxy/prepared.hpp"

namespace pgsluice::proxy {

class runtime;
class pool;
class tls_channel;
class tls_contexts;

// Where a pool's connections go, and as whom.
struct backend_target {
  std::string host;
  std::uint16_t port = 5432;
  std::string dbname;
  std::string user;
};

// A backend whose host is a directory (an absolute path, as libpq reads `host`) is reached over
// the Unix-domain socket <host>/.s.PGSQL.<port> PostgreSQL makes there (unix_socket_directories).
// TLS is never attempted on it: libpq ignores sslmode there, and so does server_tls_mode.
// https://www.postgresql.org/docs/15/libpq-connect.html#LIBPQ-CONNECT-HOST
inline bool is_unix_socket_host(std::string_view host) noexcept { return host.starts_with('/'); }
std::string unix_socket_path(const backend_target& t);
// How errors and logs name the server: "host:port", or `socket "<path>"`.
std::string describe_server(const backend_target& t);
// SHOW SERVERS' columns for an end of a server connection: the IP address and port, or "unix"
// (as PgBouncer shows it) and the port in the socket's file name (0 for the unnamed end).
std::string endpoint_address(const stream_endpoint& e);
std::uint16_t endpoint_port(const stream_endpoint& e);

// What pgsluice can log in with. `secret` is as configured or fetched by auth_query: a
// plaintext password, an MD5 hash (usable for md5 servers as is) or a SCRAM verifier (usable
// only with the ClientKey a client proved during its own SCRAM login: pass-through).
struct server_credentials {
  conf::secret_kind kind = conf::secret_kind::none;
  std::string secret;
  std::optional<protocol::scram_client_keys> scram_keys;
};

// An error to show the client: the server's own ErrorResponse fields, or one made by pgsluice.
struct server_error {
  std::string severity = "FATAL";
  std::string sqlstate = "08006";
  std::string message;
  std::string detail;
};

// Runs `on_expire` once if not disarmed (destroyed) within `after`; used to bound logins and
// internal queries by cancelling the socket they wait on.
class watchdog {
 public:
  watchdog(const asio::any_io_executor& ex, std::chrono::milliseconds after, std::function<void()> on_expire);
  ~watchdog();
  watchdog(const watchdog&) = delete;
  watchdog& operator=(const watchdog&) = delete;
  bool fired() const noexcept { return *fired_; }

 private:
  asio::steady_timer timer_;
  std::shared_ptr<bool> fired_;
  std::weak_ptr<bool> armed_;
};

class server_connection {
 public:
  using clock = std::chrono::steady_clock;

  server_connection(runtime& rt, std::uint64_t id, asio::io_context& io, unsigned worker);
  ~server_connection();
  server_connection(const server_connection&) = delete;
  server_connection& operator=(const server_connection&) = delete;

  std::uint64_t id() const noexcept { return id_; }
  const std::string& name() const noexcept { return name_; }  // "s7", in every log line

  stream_socket& socket() noexcept { return *socket_; }
  unsigned worker() const noexcept { return worker_; }
  // Moves the socket to another worker's io_context (no operation may be pending on it).
  void adopt(asio::io_context& io, unsigned worker);
  // An idle server must have nothing to say: readable data or EOF means the server closed or
  // sent an error (e.g. terminated by an administrator).
  bool looks_alive() noexcept;
  void close() noexcept;
  bool is_open() const noexcept { return socket_ && socket_->is_open(); }
  // The TLS connection when server_tls_mode put one on the socket (null: plaintext).
  tls_channel* tls() const noexcept { return tls_.get(); }

  // The relay's writes (TLS or not): as much of `g` as the connection takes now, without
  // waiting; then the rest, awaited. A remainder must be written before anything else.
  std::size_t send_now(const gather_list& g, boost::system::error_code& ec) {
    if (tls_ == nullptr) {
      int err = 0;
      const std::size_t n = g.send_now(socket_->native_handle(), err);
      if (err != 0) ec.assign(err, boost::system::system_category());
      return n;
    }
    return tls_send_now_(g, ec);
  }
  awaitable<boost::system::error_code> write(std::span<const std::uint8_t> bytes);

  server_state state() const noexcept { return state_; }
  void set_state(server_state s) noexcept;

  // Connect (TCP or Unix socket), StartupMessage, authentication, then ParameterStatus/BackendKeyData until
  // ReadyForQuery, all within `timeout`. On success `creds.scram_keys` holds the keys of this
  // server's verifier (for pass-through and to skip the key derivation next time).
  awaitable<std::optional<server_error>> login(const backend_target& target, server_credentials& creds,
                                               std::chrono::milliseconds timeout);

  // Runs `sql` as one simple Query (possibly several statements) and discards its results; the
  // first error is returned. Used for the reset query and ROLLBACK.
  awaitable<std::optional<server_error>> run_internal(std::string_view sql, std::chrono::milliseconds timeout);

  // Extended-protocol query with text parameters; text values of the first column of each row
  // (nullopt for NULL). Used for auth_query.
  struct rows_result {
    std::optional<server_error> error;
    std::vector<std::vector<std::optional<std::string>>> rows;
  };
  awaitable<rows_result> query_rows(std::string_view sql, const std::vector<std::string>& params,
                                    std::chrono::milliseconds timeout);

  // --- state the relay reads and updates (only by the session holding the connection) ---
  parameter_set reported;      // last ParameterStatus value of each parameter
  parameter_set applied;       // settings pgsluice SET on this connection for its clients
  // Settings hash of the last client this connection was brought in line with; 0 = unknown.
  std::size_t synced_settings = 0;
  server_statements statements{0};
  // Client id whose unnamed statement this connection holds (transaction pooling); 0 = nobody's.
  std::uint64_t unnamed_owner = 0;
  char transaction_status = 'I';
  std::int32_t backend_pid = 0;
  std::int32_t backend_secret = 0;
  stream_endpoint remote;      // the server: an IP address and port, or its Unix socket's path
  stream_endpoint local;       // this end of the connection (SHOW SERVERS)
  // What a CancelRequest for this connection's query needs, made once (after the login set
  // the key) and shared with the client holding it: a pointer per client, not a copy.
  struct cancel_key {
    stream_endpoint server;
    std::int32_t pid = 0;
    std::int32_t secret = 0;
  };
  const std::shared_ptr<const cancel_key>& cancel_info() {
    if (!cancel_info_ || cancel_info_->pid != backend_pid || cancel_info_->secret != backend_secret)
      cancel_info_ = std::make_shared<const cancel_key>(cancel_key{remote, backend_pid, backend_secret});
    return cancel_info_;
  }
  clock::time_point created = clock::now();
  clock::time_point last_used = clock::now();
  std::weak_ptr<pool> owner;

 private:
  std::shared_ptr<const cancel_key> cancel_info_;
  // Reads one complete message into buf_ (returns its tag and body, valid until the next read).
  struct message {
    char tag = 0;
    std::span<const std::uint8_t> body;
    std::size_t size = 0;
  };
  awaitable<std::optional<message>> read_message(boost::system::error_code& ec);
  awaitable<bool> write_all(const std::vector<std::uint8_t>& bytes, boost::system::error_code& ec);
  awaitable<std::optional<server_error>> authenticate(const backend_target& target, server_credentials& creds,
                                                      const message& first, boost::system::error_code& ec);
  // One attempt: connect, TLS as `mode` says, startup, authentication (login() may make two, for allow).
  awaitable<std::optional<server_error>> login_once(const backend_target& target, server_credentials& creds,
                                                    const watchdog& wd, const tls_contexts* tls, conf::tls_mode mode);
  // SSLRequest and the handshake; nullopt when the connection goes on (TLS or, for prefer, plaintext).
  awaitable<std::optional<server_error>> start_tls(const backend_target& target, const tls_contexts& tls,
                                                   conf::tls_mode mode);
  std::size_t tls_send_now_(const gather_list& g, boost::system::error_code& ec);

  runtime& rt_;
  std::uint64_t id_;
  std::string name_;
  std::optional<stream_socket> socket_;
  std::unique_ptr<tls_channel> tls_;
  std::vector<std::uint8_t> tls_scratch_;
  unsigned worker_;
  server_state state_ = server_state::connecting;
  byte_buffer buf_{4096};
  std::size_t pending_consume_ = 0;
};

// Sends a CancelRequest for backend `pid` over a new connection to `server` and waits until the
// server has read it (it closes the connection); the error text when that failed.
// https://www.postgresql.org/docs/15/protocol-flow.html#id-1.10.6.7.10
awaitable<std::optional<std::string>> send_cancel_request(asio::io_context& io, stream_endpoint server, std::int32_t pid,
                                                          std::int32_t secret);

// The fields of an ErrorResponse body as a server_error.
server_error to_server_error(std::span<const std::uint8_t> body);

}  // namespace pgsluice::proxy

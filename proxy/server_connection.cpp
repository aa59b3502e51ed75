// Server connections: connect (TCP or a Unix socket), login with trust/cleartext/md5/SCRAM (password or pass-through keys), internal queries.
#include "proxy/server_connection.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <variant>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <spdlog/spdlog.h>

#include "protocol/codec.hpp"
#include "protocol/fields.hpp"
#include "protocol/framing.hpp"
#include "proxy/pool.hpp"
#include "protocol/md5.hpp"
#include "proxy/runtime.hpp"
#include "proxy/tls.hpp"
#include "protocol/channel_binding.hpp"

namespace pgsluice::proxy {

namespace {

server_error local_error(std::string sqlstate, std::string message) {
  server_error e;
  e.sqlstate = std::move(sqlstate);
  e.message = std::move(message);
  return e;
}

std::span<const std::uint8_t> as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}
std::string_view as_text(std::span<const std::uint8_t> b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

// A whole backend message (tag and body as read_message returns them) through the full decoder.
protocol::result<protocol::backend_message> decode(char tag, std::span<const std::uint8_t> body, std::size_t size) {
  protocol::frame f;
  f.kind = protocol::frame_kind::regular;
  f.tag = tag;
  f.size = size;
  f.body = body;
  return protocol::decode_backend(f);
}

}  // namespace

std::string unix_socket_path(const backend_target& t) {
  // As libpq's UNIXSOCK_PATH: the directory, then ".s.PGSQL." and the port.
  return t.host + "/.s.PGSQL." + std::to_string(t.port);
}

std::string describe_server(const backend_target& t) {
  if (is_unix_socket_host(t.host)) return "on socket \"" + unix_socket_path(t) + "\"";
  return t.host + ":" + std::to_string(t.port);
}

namespace {

std::optional<tcp::endpoint> ip_endpoint(const stream_endpoint& e) {
  const int family = e.data()->sa_family;
  if (family != AF_INET && family != AF_INET6) return std::nullopt;
  tcp::endpoint ip;
  std::memcpy(ip.data(), e.data(), std::min(e.size(), ip.capacity()));
  return ip;
}

}  // namespace

std::string endpoint_address(const stream_endpoint& e) {
  if (e.data()->sa_family == AF_UNIX) return "unix";
  const auto ip = ip_endpoint(e);
  return ip ? ip->address().to_string() : std::string();
}

std::uint16_t endpoint_port(const stream_endpoint& e) {
  if (const auto ip = ip_endpoint(e)) return ip->port();
  if (e.data()->sa_family != AF_UNIX || e.size() <= offsetof(sockaddr_un, sun_path)) return 0;
  const auto* un = reinterpret_cast<const sockaddr_un*>(e.data());
  const std::string_view path(un->sun_path, strnlen(un->sun_path, e.size() - offsetof(sockaddr_un, sun_path)));
  constexpr std::string_view prefix = ".s.PGSQL.";
  const auto at = path.rfind(prefix);
  std::uint16_t port = 0;
  if (at != std::string_view::npos) {
    const char* first = path.data() + at + prefix.size();
    std::from_chars(first, path.data() + path.size(), port);
  }
  return port;
}

server_error to_server_error(std::span<const std::uint8_t> body) {
  const auto f = protocol::read_error_fields(body);
  server_error e;
  e.severity = f.severity.empty() ? "ERROR" : std::string(f.severity);
  e.sqlstate = f.sqlstate.empty() ? "XX000" : std::string(f.sqlstate);
  e.message = std::string(f.message);
  e.detail = std::string(f.detail);
  return e;
}

watchdog::watchdog(const asio::any_io_executor& ex, std::chrono::milliseconds after, std::function<void()> on_expire)
    : timer_(ex), fired_(std::make_shared<bool>(false)) {
  if (after.count() <= 0) return;
  timer_.expires_after(after);
  // The handler may run after this object is gone (expired just before disarming): it only
  // calls on_expire while `armed` is still set, and the destructor clears it.
  auto armed = std::make_shared<bool>(true);
  armed_ = armed;
  timer_.async_wait([armed, fired = fired_, f = std::move(on_expire)](const boost::system::error_code& ec) {
    if (!ec && *armed) {
      *fired = true;
      f();
    }
  });
}

watchdog::~watchdog() {
  if (auto a = armed_.lock()) *a = false;
  timer_.cancel();
}

server_connection::server_connection(runtime& rt, std::uint64_t id, asio::io_context& io, unsigned worker)
    : rt_(rt), id_(id), name_("s" + std::to_string(id)), socket_(std::in_place, io), worker_(worker) {
  rt_.stats().server_enters(state_);
}

server_connection::~server_connection() {
  close();
  rt_.stats().server_enters(state_, -1);
}

void server_connection::set_state(server_state s) noexcept {
  if (s == state_) return;
  rt_.stats().server_moves(state_, s);
  state_ = s;
}

void server_connection::adopt(asio::io_context& io, unsigned worker) {
  if (worker == worker_ || !socket_ || !socket_->is_open()) {
    worker_ = worker;
    return;
  }
  const auto protocol = remote.protocol();
  rt_.stats().add(counter::server_moves);
  boost::system::error_code ec;
  const auto fd = socket_->release(ec);
  if (ec) {
    close();
    return;
  }
  socket_.emplace(io);
  socket_->assign(protocol, fd, ec);
  if (ec) {
    ::close(fd);
    close();
  }
  worker_ = worker;
}

bool server_connection::looks_alive() noexcept {
  if (!is_open()) return false;
  if (tls_ && tls_->has_pending()) return false;  // something arrived (an error, a close_notify)
  std::uint8_t b;
  const auto n = ::recv(socket_->native_handle(), &b, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

void server_connection::close() noexcept {
  if (auto p = owner.lock()) p->server_gone(id_);  // for WAIT_CLOSE and close_needed
  if (socket_ && socket_->is_open()) {
    boost::system::error_code ec;
    // Terminate lets the server end its session at once instead of noticing the EOF later.
    if (state_ == server_state::idle || state_ == server_state::active) {
      socket_->non_blocking(true, ec);
      if (tls_) {
        tls_->write_now(std::span<const std::uint8_t>(protocol::terminate_msg, sizeof protocol::terminate_msg));
      } else {
        ::send(socket_->native_handle(), protocol::terminate_msg, sizeof protocol::terminate_msg, MSG_DONTWAIT | MSG_NOSIGNAL);
      }
    }
    if (tls_) tls_->shutdown_now();
    socket_->shutdown(tcp::socket::shutdown_both, ec);
    socket_->close(ec);
  }
  tls_.reset();  // it names the descriptor, which the system may now give to another socket
  set_state(server_state::closed);
}

awaitable<std::optional<server_connection::message>> server_connection::read_message(boost::system::error_code& ec) {
  if (pending_consume_ > 0) {
    buf_.consume(pending_consume_);
    pending_consume_ = 0;
  }
  for (;;) {
    const auto r = protocol::next_frame(buf_.data(), protocol::default_max_message_size);
    if (r.is_frame()) {
      pending_consume_ = r.f.size;
      co_return message{r.f.tag, r.f.body, r.f.size};
    }
    if (r.is_invalid()) {
      ec = r.error;
      co_return std::nullopt;
    }
    const std::size_t want = std::max<std::size_t>(r.need > buf_.size() ? r.need - buf_.size() : 1, 4096);
    auto space = buf_.prepare(want);
    auto [rec, n] = tls_ ? co_await tls_read_some(*socket_, *tls_, space)
                         : co_await socket_->async_read_some(asio::buffer(space.data(), space.size()), nothrow_awaitable);
    if (rec) {
      ec = rec;
      co_return std::nullopt;
    }
    buf_.commit(n);
  }
}

awaitable<bool> server_connection::write_all(const std::vector<std::uint8_t>& bytes, boost::system::error_code& ec) {
  ec = co_await write(bytes);
  co_return !ec;
}

awaitable<boost::system::error_code> server_connection::write(std::span<const std::uint8_t> bytes) {
  if (tls_) co_return co_await tls_write_all(*socket_, *tls_, bytes);
  auto [ec, n] = co_await asio::async_write(*socket_, asio::buffer(bytes.data(), bytes.size()), nothrow_awaitable);
  (void)n;
  co_return ec;
}

std::size_t server_connection::tls_send_now_(const gather_list& g, boost::system::error_code& ec) {
  const std::size_t n = tls_send_now(*tls_, g, tls_scratch_, ec);
  if (tls_scratch_.capacity() > 256 * 1024) std::vector<std::uint8_t>().swap(tls_scratch_);
  return n;
}

awaitable<std::optional<server_error>> server_connection::login(const backend_target& target,
                                                                server_credentials& creds,
                                                                std::chrono::milliseconds timeout) {
  set_state(server_state::connecting);
  watchdog wd(socket_->get_executor(), timeout, [this] {
    boost::system::error_code ignored;
    if (socket_) socket_->cancel(ignored);
  });
  const auto tls = rt_.tls();
  // Over a Unix socket server_tls_mode does not apply (as libpq's sslmode): plaintext only.
  const conf::tls_mode mode =
      tls && !is_unix_socket_host(target.host) ? tls->server_mode() : conf::tls_mode::disable;
  auto err = co_await login_once(target, creds, wd, tls.get(), mode == conf::tls_mode::allow ? conf::tls_mode::disable : mode);
  if (err && mode == conf::tls_mode::allow && err->sqlstate == "28000" && !wd.fired()) {
    // allow, as libpq's sslmode: plaintext first, TLS when the server refuses that login.
    spdlog::info("{} retrying with TLS (server_tls_mode = allow) error=\"{}\"", name_, err->message);
    reported = parameter_set{};
    err = co_await login_once(target, creds, wd, tls.get(), conf::tls_mode::require);
  }
  co_return err;
}

awaitable<std::optional<server_error>> server_connection::login_once(const backend_target& target,
                                                                     server_credentials& creds, const watchdog& wd,
                                                                     const tls_contexts* tls, conf::tls_mode mode) {
  const auto ex = socket_->get_executor();
  tls_.reset();
  buf_.consume(buf_.size());
  pending_consume_ = 0;
  auto timed_out = [&] {
    return local_error("08006", "pgsluice: timed out connecting to the server " + describe_server(target) +
                                    " (server_connect_timeout)");
  };

  // Resolve (host names only; literal addresses and socket directories need no lookup).
  boost::system::error_code ec;
  std::vector<stream_endpoint> endpoints;
  const bool unix_socket = is_unix_socket_host(target.host);
  const auto addr = unix_socket ? asio::ip::address() : asio::ip::make_address(target.host, ec);
  if (unix_socket) {
    const std::string path = unix_socket_path(target);
    if (path.size() >= sizeof(sockaddr_un::sun_path)) {
      co_return local_error("08006", "pgsluice: the Unix socket path \"" + path + "\" is longer than " +
                                         std::to_string(sizeof(sockaddr_un::sun_path) - 1) + " bytes");
    }
    endpoints.emplace_back(asio::local::stream_protocol::endpoint(path));
  } else if (!ec) {
    endpoints.emplace_back(tcp::endpoint(addr, target.port));
  } else {
    tcp::resolver resolver(ex);
    auto [rec, results] = co_await resolver.async_resolve(target.host, std::to_string(target.port), nothrow_awaitable);
    if (rec) {
      if (wd.fired()) co_return timed_out();
      co_return local_error("08006", "pgsluice: could not resolve server host \"" + target.host + "\": " + rec.message());
    }
    for (const auto& r : results) endpoints.emplace_back(r.endpoint());
  }

  boost::system::error_code cec = asio::error::host_not_found;
  for (const auto& ep : endpoints) {
    if (socket_->is_open()) socket_->close(ec);
    auto [e] = co_await socket_->async_connect(ep, nothrow_awaitable);
    cec = e;
    if (!cec) {
      remote = ep;
      local = socket_->local_endpoint(ec);
      break;
    }
    if (wd.fired()) break;
  }
  if (cec) {
    if (wd.fired()) co_return timed_out();
    co_return local_error("08006", "pgsluice: could not connect to the server " + describe_server(target) + ": " +
                                       cec.message());
  }
  if (!unix_socket) socket_->set_option(tcp::no_delay(true), ec);

  if (!unix_socket && mode != conf::tls_mode::disable && tls != nullptr && tls->server_ctx() != nullptr) {
    if (auto err = co_await start_tls(target, *tls, mode)) co_return wd.fired() ? timed_out() : *err;
  }

  // StartupMessage: only user and database; client-specific settings are applied per client.
  // https://www.postgresql.org/docs/15/protocol-message-formats.html (StartupMessage)
  std::vector<std::uint8_t> out;
  protocol::startup_message sm;
  sm.params = {{"user", target.user}, {"database", target.dbname}};
  protocol::encode(sm, out);
  if (!co_await write_all(out, ec)) co_return wd.fired() ? timed_out() : local_error("08006", "pgsluice: server write failed: " + ec.message());

  bool authenticated = false;
  for (;;) {
    auto m = co_await read_message(ec);
    if (!m) {
      if (wd.fired()) co_return timed_out();
      co_return local_error("08006", "pgsluice: server closed the connection during login: " + ec.message());
    }
    if (m->tag == 'E') co_return to_server_error(m->body);
    if (!authenticated) {
      if (m->tag != 'R') co_return local_error("08P01", "pgsluice: unexpected message from the server during login");
      auto err = co_await authenticate(target, creds, *m, ec);
      if (err) co_return wd.fired() ? timed_out() : *err;
      authenticated = true;
      continue;
    }
    switch (m->tag) {
      case 'S':
        if (auto p = protocol::read_parameter_status(m->body)) reported.set(p->name, p->value);
        break;
      case 'K':
        if (const auto k = decode(m->tag, m->body, m->size)) {
          if (const auto* key = std::get_if<protocol::backend_key_data>(&*k)) {
            backend_pid = key->process_id;
            backend_secret = key->secret_key;
          }
        }
        break;
      case 'Z':
        if (const auto st = protocol::read_ready_for_query(m->body)) transaction_status = *st;
        if (pending_consume_ > 0) {
          buf_.consume(pending_consume_);
          pending_consume_ = 0;
        }
        rt_.stats().add(counter::servers_opened);
        co_return std::nullopt;
      default:
        break;  // NoticeResponse, NegotiateProtocolVersion: nothing to do
    }
  }
}

awaitable<std::optional<server_error>> server_connection::start_tls(const backend_target& target,
                                                                    const tls_contexts& tls, conf::tls_mode mode) {
  // https://www.postgresql.org/docs/15/protocol-flow.html#id-1.10.6.7.11: SSLRequest, one byte back.
  const std::string where = describe_server(target);
  std::vector<std::uint8_t> out;
  protocol::encode(protocol::ssl_request{}, out);
  boost::system::error_code ec;
  if (!co_await write_all(out, ec)) co_return local_error("08006", "pgsluice: server write failed: " + ec.message());
  std::uint8_t answer = 0;
  auto [rec, n] = co_await asio::async_read(*socket_, asio::buffer(&answer, 1), nothrow_awaitable);
  (void)n;
  if (rec) co_return local_error("08006", "pgsluice: the server " + where + " closed the connection after SSLRequest: " + rec.message());
  if (answer == 'N') {
    if (tls_required(mode)) {
      co_return local_error("08006", "pgsluice: the server " + where + " does not support TLS, but server_tls_mode = \"" +
                                         std::string(conf::to_string(mode)) + "\" requires it");
    }
    co_return std::nullopt;  // prefer: plaintext
  }
  if (answer != 'S') co_return local_error("08P01", "pgsluice: unexpected answer to SSLRequest from the server " + where);
  auto channel = tls_channel::connecting(tls.server_ctx(), *socket_, target.host, mode == conf::tls_mode::verify_full);
  if (!channel) co_return local_error("08006", "pgsluice: cannot set up TLS towards the server " + where);
  if (auto hec = co_await tls_handshake(*socket_, *channel)) {
    spdlog::warn("{} tls_handshake_failed server={} error=\"{}\"", name_, where, channel->describe(hec));
    co_return local_error("08006", "pgsluice: TLS with the server " + where + " failed: " + channel->describe(hec));
  }
  tls_ = std::move(channel);
  co_return std::nullopt;
}

awaitable<std::optional<server_error>> server_connection::authenticate(const backend_target& target,
                                                                       server_credentials& creds, const message& first,
                                                                       boost::system::error_code& ec) {
  auto decode = [](const message& m) { return pgsluice::proxy::decode(m.tag, m.body, m.size); };
  const std::string& user = target.user;
  auto no_secret = [&] {
    return local_error("28000", "pgsluice: no password configured to log in to the server as user \"" + user + "\"");
  };
  auto send = [&](auto&& msg) -> awaitable<bool> {
    std::vector<std::uint8_t> out;
    protocol::encode(msg, out);
    co_return co_await write_all(out, ec);
  };
  auto write_failed = [&] { return local_error("08006", "pgsluice: server write failed: " + ec.message()); };

  auto decoded = decode(first);
  if (!decoded) co_return local_error("08P01", "pgsluice: malformed authentication request from the server");
  const auto& msg = *decoded;

  if (std::holds_alternative<protocol::authentication_ok>(msg)) co_return std::nullopt;

  if (std::holds_alternative<protocol::authentication_cleartext_password>(msg)) {
    if (creds.kind != conf::secret_kind::plaintext) co_return no_secret();
    if (!co_await send(protocol::password_message{creds.secret})) co_return write_failed();
  } else if (const auto* md5 = std::get_if<protocol::authentication_md5_password>(&msg)) {
    boost::system::result<std::string> resp = boost::system::error_code(errc::auth_failed);
    if (creds.kind == conf::secret_kind::plaintext) {
      resp = protocol::md5_client_response(user, creds.secret, md5->salt);
    } else if (creds.kind == conf::secret_kind::md5) {
      resp = protocol::md5_salted_response(creds.secret, md5->salt);
    } else {
      co_return no_secret();
    }
    if (!resp) co_return local_error("28000", "pgsluice: cannot compute the MD5 response: " + resp.error().message());
    if (!co_await send(protocol::password_message{*resp})) co_return write_failed();
  } else if (const auto* sasl = std::get_if<protocol::authentication_sasl>(&msg)) {
    bool offered = false;
    bool plus = false;
    for (auto m : sasl->mechanisms) {
      offered = offered || m == protocol::scram_sha_256_name;
      plus = plus || m == protocol::scram_sha_256_plus_name;
    }
    // Over TLS: SCRAM-SHA-256-PLUS bound to the server's certificate when it offers it; else 'y'
    // (we could bind, the server cannot), as libpq does.
    protocol::scram_client_options options;
    if (tls_ && plus) {
      if (auto cb = protocol::server_end_point_data(tls_->peer_certificate())) {
        options.channel_binding = protocol::scram_channel_binding{std::string(protocol::tls_server_end_point), std::move(*cb)};
      }
    }
    if (tls_ && !plus) options.cbind_flag = 'y';
    if (!offered && !options.channel_binding)
      co_return local_error("28000", "pgsluice: the server offers no SASL mechanism pgsluice supports");
    boost::system::result<protocol::scram_client> client = boost::system::error_code(errc::auth_failed);
    if (creds.kind == conf::secret_kind::plaintext) {
      // The keys for the server's salt come from the process-wide cache (Hi() once per password
      // and salt): cheap, and right even when the server's verifier changed since the last login.
      options.key_cache = &rt_.scram_cache();
      client = protocol::scram_client::from_password(creds.secret, options);
    } else if (creds.scram_keys) {
      client = protocol::scram_client::from_keys(*creds.scram_keys, options);
    } else if (creds.kind == conf::secret_kind::scram_sha_256) {
      co_return local_error("28000", "pgsluice: cannot log in to the server as user \"" + user +
                                         "\" before a client has logged in with SCRAM (only a verifier is configured)");
    } else {
      co_return no_secret();
    }
    if (!client) co_return local_error("28000", "pgsluice: SCRAM setup failed: " + client.error().message());
    const std::string first_msg = client->client_first();
    if (!co_await send(protocol::sasl_initial_response{client->mechanism(), as_bytes(first_msg)}))
      co_return write_failed();

    auto m = co_await read_message(ec);
    if (!m) co_return local_error("08006", "pgsluice: server closed the connection during SCRAM");
    if (m->tag == 'E') co_return to_server_error(m->body);
    auto cont = decode(*m);
    if (!cont || !std::holds_alternative<protocol::authentication_sasl_continue>(*cont))
      co_return local_error("08P01", "pgsluice: unexpected message from the server during SCRAM");
    auto final_msg = client->on_server_first(as_text(std::get<protocol::authentication_sasl_continue>(*cont).data));
    if (!final_msg) {
      if (final_msg.error() == errc::scram_secret_mismatch) creds.scram_keys.reset();
      co_return local_error("28000", "pgsluice: SCRAM with the server failed: " + final_msg.error().message());
    }
    if (!co_await send(protocol::sasl_response{as_bytes(*final_msg)})) co_return write_failed();

    m = co_await read_message(ec);
    if (!m) co_return local_error("08006", "pgsluice: server closed the connection during SCRAM");
    if (m->tag == 'E') co_return to_server_error(m->body);
    auto fin = decode(*m);
    if (!fin || !std::holds_alternative<protocol::authentication_sasl_final>(*fin))
      co_return local_error("08P01", "pgsluice: unexpected message from the server during SCRAM");
    auto verified = client->on_server_final(as_text(std::get<protocol::authentication_sasl_final>(*fin).data));
    if (!verified) co_return local_error("28000", "pgsluice: the server's SCRAM signature is invalid");
    if (auto k = client->keys()) creds.scram_keys = std::move(*k);
  } else {
    co_return local_error("28000", "pgsluice: the server asks for an authentication method pgsluice does not support");
  }

  // AuthenticationOk (or an error) follows.
  auto m = co_await read_message(ec);
  if (!m) co_return local_error("08006", "pgsluice: server closed the connection during login");
  if (m->tag == 'E') co_return to_server_error(m->body);
  auto ok = decode(*m);
  if (!ok || !std::holds_alternative<protocol::authentication_ok>(*ok))
    co_return local_error("08P01", "pgsluice: unexpected message from the server after authentication");
  co_return std::nullopt;
}

awaitable<std::optional<server_error>> server_connection::run_internal(std::string_view sql,
                                                                       std::chrono::milliseconds timeout) {
  watchdog wd(socket_->get_executor(), timeout, [this] {
    boost::system::error_code ignored;
    if (socket_) socket_->cancel(ignored);
  });
  synced_settings = 0;  // whatever it runs may change settings
  boost::system::error_code ec;
  std::vector<std::uint8_t> out;
  protocol::append_query(out, sql);
  if (!co_await write_all(out, ec)) co_return local_error("08006", "pgsluice: server write failed: " + ec.message());
  std::optional<server_error> first_error;
  for (;;) {
    auto m = co_await read_message(ec);
    if (!m) co_return local_error("08006", wd.fired() ? "pgsluice: server did not answer in time" : "pgsluice: server closed the connection");
    if (m->tag == 'E' && !first_error) first_error = to_server_error(m->body);
    if (m->tag == 'S') {
      if (auto p = protocol::read_parameter_status(m->body)) reported.set(p->name, p->value);
    }
    if (m->tag == 'Z') {
      if (const auto st = protocol::read_ready_for_query(m->body)) transaction_status = *st;
      buf_.consume(pending_consume_);
      pending_consume_ = 0;
      co_return first_error;
    }
  }
}

awaitable<server_connection::rows_result> server_connection::query_rows(std::string_view sql,
                                                                        const std::vector<std::string>& params,
                                                                        std::chrono::milliseconds timeout) {
  watchdog wd(socket_->get_executor(), timeout, [this] {
    boost::system::error_code ignored;
    if (socket_) socket_->cancel(ignored);
  });
  rows_result out;
  boost::system::error_code ec;
  std::vector<std::uint8_t> bytes;
  protocol::append_parse(bytes, "", sql, {});
  protocol::bind b;
  for (const auto& p : params) b.params.emplace_back(as_bytes(p));
  protocol::encode(b, bytes);
  protocol::encode(protocol::execute{}, bytes);
  protocol::encode(protocol::sync{}, bytes);
  if (!co_await write_all(bytes, ec)) {
    out.error = local_error("08006", "pgsluice: server write failed: " + ec.message());
    co_return out;
  }
  for (;;) {
    auto m = co_await read_message(ec);
    if (!m) {
      out.error = local_error("08006", "pgsluice: server closed the connection during auth_query");
      co_return out;
    }
    if (m->tag == 'E' && !out.error) out.error = to_server_error(m->body);
    if (m->tag == 'D') {
      // DataRow, https://www.postgresql.org/docs/15/protocol-message-formats.html (not a hot path).
      std::vector<std::optional<std::string>> row;
      const auto decoded = decode(m->tag, m->body, m->size);
      if (!decoded) {
        if (!out.error) out.error = local_error("08P01", "pgsluice: malformed DataRow from the server during auth_query");
        continue;
      }
      if (const auto* dr = std::get_if<protocol::data_row>(&*decoded)) {
        for (const auto& col : dr->columns) {
          if (col) {
            row.emplace_back(std::string(as_text(*col)));
          } else {
            row.emplace_back(std::nullopt);
          }
        }
      }
      out.rows.push_back(std::move(row));
    }
    if (m->tag == 'Z') {
      if (const auto st = protocol::read_ready_for_query(m->body)) transaction_status = *st;
      buf_.consume(pending_consume_);
      pending_consume_ = 0;
      co_return out;
    }
  }
}

awaitable<std::optional<std::string>> send_cancel_request(asio::io_context& io, stream_endpoint server, std::int32_t pid,
                                                          std::int32_t secret) {
  stream_socket s(io);
  watchdog wd(s.get_executor(), std::chrono::seconds(5), [&s] {
    boost::system::error_code ignored;
    s.cancel(ignored);
  });
  auto [ec] = co_await s.async_connect(server, nothrow_awaitable);
  if (ec) co_return ec.message();
  std::vector<std::uint8_t> out;
  protocol::encode(protocol::cancel_request{pid, secret}, out);
  auto [wec, n] = co_await asio::async_write(s, asio::buffer(out), nothrow_awaitable);
  (void)n;
  if (wec) co_return wec.message();
  // Wait for the server to close the connection: it has then read the request.
  std::uint8_t b;
  co_await s.async_read_some(asio::buffer(&b, 1), nothrow_awaitable);
  co_return std::nullopt;
}

}  // namespace pgsluice::proxy

// The HTTP side of `pgsluice bench ui` (Boost.Beast, kept to this file): listener, token and Host checks, server-sent events.
//
// One thread runs the io_context: sessions are coroutines, and the live events, which
// come from the run's thread, are posted onto it before they reach any page. Every page
// that opens /api/events first gets the events of the current run so far (from its
// "started"), so a page opened mid-run, or reconnecting, draws the whole chart.
// https://html.spec.whatwg.org/multipage/server-sent-events.html
#include "bench/ui.hpp"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <sys/random.h>

#include <deque>
#include <iostream>
#include <set>

namespace pgsluice::bench {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using asio::awaitable;
using asio::use_awaitable;
constexpr auto no_throw = asio::as_tuple(use_awaitable);

constexpr const char* token_cookie = "pgsluice_bench_token";

// "HOST:PORT", "[V6]:PORT" or ":PORT" (loopback).
std::optional<tcp::endpoint> parse_listen(const std::string& text, std::string& error) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos) {
    error = "--listen: '" + text + "' is not HOST:PORT (e.g. 127.0.0.1:8089)";
    return std::nullopt;
  }
  std::string host = text.substr(0, colon);
  const std::string port_text = text.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host.empty()) host = "127.0.0.1";
  if (host == "localhost") host = "127.0.0.1";
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(host, ec);
  if (ec) {
    error = "--listen: '" + host + "' is not an IP address";
    return std::nullopt;
  }
  const bool digits = !port_text.empty() && port_text.size() <= 5 &&
                      std::all_of(port_text.begin(), port_text.end(), [](unsigned char c) { return std::isdigit(c); });
  if (!digits || std::stoul(port_text) > 65535) {
    error = "--listen: port '" + port_text + "' is not a number from 0 to 65535";
    return std::nullopt;
  }
  return tcp::endpoint(address, static_cast<std::uint16_t>(std::stoul(port_text)));
}

std::string random_token() {
  unsigned char bytes[16];
  if (getrandom(bytes, sizeof bytes, 0) != static_cast<ssize_t>(sizeof bytes))
    throw std::runtime_error("cannot read random bytes for the access token");
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char b : bytes) out += {hex[b >> 4], hex[b & 15]};
  return out;
}

bool same_secret(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

// The value of `key` in "a=1&key=2" or "a=1; key=2".
std::string field_value(std::string_view text, std::string_view key, char separator) {
  while (!text.empty()) {
    const auto end = text.find(separator);
    std::string_view item = text.substr(0, end);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    if (item.size() > key.size() && item.substr(0, key.size()) == key && item[key.size()] == '=')
      return std::string(item.substr(key.size() + 1));
    if (end == std::string_view::npos) break;
    text.remove_prefix(end + 1);
  }
  return {};
}

struct sse_client {
  explicit sse_client(const asio::any_io_executor& ex) : wake(ex, asio::steady_timer::time_point::max()) {}
  std::deque<std::shared_ptr<const std::string>> queue;
  asio::steady_timer wake;
};

class ui_server {
 public:
  ui_server(asio::io_context& io, tcp::acceptor acceptor, ui_settings settings, std::string token)
      : io_(io),
        acceptor_(std::move(acceptor)),
        token_(std::move(token)),
        port_(acceptor_.local_endpoint().port()),
        app_(std::move(settings), [this](const std::string& e, const std::string& d) { publish(e, d); }) {}

  void start() { asio::co_spawn(io_, accept_loop(), asio::detached); }
  void shutdown() {
    app_.shutdown();
    boost::system::error_code ec;
    acceptor_.close(ec);
  }

 private:
  // From any thread: onto the io thread, into the history, to every page listening.
  void publish(const std::string& event, const std::string& data) {
    auto message = std::make_shared<const std::string>("event: " + event + "\ndata: " + data + "\n\n");
    asio::post(io_, [this, event, message] {
      if (event == "started") history_.clear();
      history_.push_back(message);
      for (const auto& c : clients_) {
        c->queue.push_back(message);
        c->wake.cancel();
      }
    });
  }

  awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, socket] = co_await acceptor_.async_accept(no_throw);
      if (ec == asio::error::operation_aborted || !acceptor_.is_open()) co_return;
      if (ec) continue;  // e.g. EMFILE: the next accept may succeed
      asio::co_spawn(io_, session(std::move(socket)), asio::detached);
    }
  }

  // Loopback without a token: only pages of this origin (no DNS rebinding from a web site).
  bool host_allowed(std::string_view host) const {
    if (!token_.empty()) return true;
    const std::string port = ":" + std::to_string(port_);
    return host == "127.0.0.1" + port || host == "localhost" + port || host == "[::1]" + port;
  }

  // Token from ?token=, "Authorization: Bearer", or the cookie the page got with its first load.
  bool authorized(const http::request<http::string_body>& req, bool& from_query) const {
    from_query = false;
    if (token_.empty()) return true;
    const std::string_view target = req.target();
    const auto q = target.find('?');
    if (q != std::string_view::npos && same_secret(field_value(target.substr(q + 1), "token", '&'), token_))
      return from_query = true;
    const std::string_view auth = req[http::field::authorization];
    if (auth.starts_with("Bearer ") && same_secret(auth.substr(7), token_)) return true;
    return same_secret(field_value(req[http::field::cookie], token_cookie, ';'), token_);
  }

  http::response<http::string_body> respond(const http::request<http::string_body>& req, const ui_reply& reply,
                                            bool set_cookie) const {
    http::response<http::string_body> res{static_cast<http::status>(reply.status), req.version()};
    res.set(http::field::server, "pgsluice-bench-ui");
    res.set(http::field::content_type, reply.content_type);
    res.set(http::field::cache_control, "no-store");
    res.set("X-Content-Type-Options", "nosniff");
    res.set("Referrer-Policy", "no-referrer");
    // The page uses its own script and styles only; saved reports (inline CSS, no script) nothing else.
    const bool page = !std::string_view(req.target()).starts_with("/api/");
    res.set("Content-Security-Policy", page ? "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:"
                                            : "default-src 'none'; style-src 'unsafe-inline'; img-src data:");
    if (!reply.download_name.empty())
      res.set(http::field::content_disposition, "attachment; filename=\"" + reply.download_name + "\"");
    if (set_cookie)
      res.set(http::field::set_cookie, std::string(token_cookie) + "=" + token_ + "; Path=/; HttpOnly; SameSite=Strict");
    res.body() = reply.body;
    res.keep_alive(req.keep_alive());
    res.prepare_payload();
    return res;
  }

  awaitable<void> session(tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buffer;
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.header_limit(16 * 1024);
      parser.body_limit(1024 * 1024);
      stream.expires_after(std::chrono::minutes(2));
      auto [read_error, bytes] = co_await http::async_read(stream, buffer, parser, no_throw);
      (void)bytes;
      if (read_error) {
        if (read_error == http::error::body_limit || read_error == http::error::header_limit) {
          http::request<http::string_body> dummy;
          auto res = respond(dummy, ui_error(413, "request too large"), false);
          res.keep_alive(false);
          co_await http::async_write(stream, res, no_throw);
        }
        break;
      }
      const http::request<http::string_body> req = parser.release();
      const std::string_view target = req.target();
      const std::string path(target.substr(0, target.find('?')));
      bool from_query = false;
      ui_reply reply;
      if (!host_allowed(req[http::field::host])) {
        reply = ui_error(403, "Host '" + std::string(req[http::field::host]) + "' refused: this page is served at http://127.0.0.1:" +
                                  std::to_string(port_) + "/ only");
      } else if (!authorized(req, from_query)) {
        reply = ui_error(401, "this pgsluice bench ui needs its token: open the address printed when it started "
                              "(with ?token=...), or send Authorization: Bearer TOKEN");
      } else if (req.method() == http::verb::post &&
                 !std::string_view(req[http::field::content_type]).starts_with("application/json")) {
        // A form of another web site cannot send JSON without the browser asking first (CORS).
        reply = ui_error(415, "POST bodies are JSON (Content-Type: application/json)");
      } else if (req.method() == http::verb::get && path == "/api/events") {
        co_await events(stream);
        co_return;
      } else {
        reply = app_.handle({std::string(req.method_string()), path, req.body()});
      }
      auto res = respond(req, reply, from_query);
      stream.expires_after(std::chrono::seconds(30));
      auto [write_error, written] = co_await http::async_write(stream, res, no_throw);
      (void)written;
      if (write_error || !res.keep_alive()) break;
    }
    boost::system::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  }

  // text/event-stream until the page goes away; a comment every 15 s notices that it did.
  awaitable<void> events(beast::tcp_stream& stream) {
    stream.expires_never();
    const std::string header =
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n"
        "X-Accel-Buffering: no\r\nConnection: close\r\n\r\nretry: 1000\n\n";
    auto [ec, n] = co_await asio::async_write(stream.socket(), asio::buffer(header), no_throw);
    if (ec) co_return;
    auto client = std::make_shared<sse_client>(co_await asio::this_coro::executor);
    client->queue.assign(history_.begin(), history_.end());
    clients_.insert(client);
    for (;;) {
      if (client->queue.empty()) {
        client->wake.expires_after(std::chrono::seconds(15));
        auto [wait_error] = co_await client->wake.async_wait(no_throw);
        if (!wait_error) client->queue.push_back(std::make_shared<const std::string>(": ping\n\n"));
        if (!acceptor_.is_open()) break;
        continue;
      }
      const auto message = client->queue.front();
      client->queue.pop_front();
      auto [write_error, written] = co_await asio::async_write(stream.socket(), asio::buffer(*message), no_throw);
      (void)written;
      if (write_error) break;
    }
    clients_.erase(client);
  }

  asio::io_context& io_;
  tcp::acceptor acceptor_;
  std::string token_;
  std::uint16_t port_;
  std::vector<std::shared_ptr<const std::string>> history_;  // the current run's events, from its "started"
  std::set<std::shared_ptr<sse_client>> clients_;
  ui_app app_;  // last: destroyed (its run stopped) before what its events are posted to
};

}  // namespace

int serve_ui(const ui_serve_options& options, std::ostream& out) {
  std::string error;
  const auto endpoint = parse_listen(options.listen, error);
  if (!endpoint) {
    std::cerr << "pgsluice bench ui: " << error << '\n';
    return 2;
  }
  asio::io_context io;
  tcp::acceptor acceptor(io);
  boost::system::error_code ec;
  acceptor.open(endpoint->protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(*endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    std::cerr << "pgsluice bench ui: cannot listen on " << options.listen << ": " << ec.message() << '\n';
    return 1;
  }
  const tcp::endpoint bound = acceptor.local_endpoint();
  const bool loopback = bound.address().is_loopback();
  const std::string token = loopback && !options.require_token ? std::string() : random_token();
  const std::string host = bound.address().is_v6() ? "[" + bound.address().to_string() + "]" : bound.address().to_string();
  const std::string url = "http://" + host + ":" + std::to_string(bound.port()) + "/";

  ui_server server(io, std::move(acceptor), options.app, token);
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& e, int) {
    if (e) return;
    out << "pgsluice bench ui: stopping" << std::endl;
    server.shutdown();
    io.stop();
  });
  server.start();
  out << "pgsluice bench ui: " << (token.empty() ? url : url + "?token=" + token) << std::endl;
  if (!token.empty())
    out << "token: " << token << " (every request needs it, as ?token=, "
        << "Authorization: Bearer or the cookie the page sets)" << std::endl;
  out << "results: " << options.app.results_dir.string() << std::endl;
  io.run();
  return 0;
}

}  // namespace pgsluice::bench

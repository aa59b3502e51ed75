// The /metrics HTTP server (see metrics_http.hpp): Beast's parser and serializer on an Asio acceptor, a few connections at a time.
//
// Hostile or broken requests cost little: headers are capped at 8 KiB and a body at 4 KiB, a
// connection idle for 30 s is closed, and beyond 32 connections at once new ones are closed
// at accept. GET and HEAD of the configured path get the scrape; any other path 404, any other
// method 405, a malformed request 400 and the connection closed.
#include "proxy/metrics_http.hpp"

#include <atomic>
#include <stdexcept>

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <spdlog/spdlog.h>

#include "proxy/runtime.hpp"

namespace pgsluice::proxy {

namespace beast = boost::beast;
namespace http = beast::http;

namespace {
constexpr std::size_t max_connections = 32;
constexpr auto idle_timeout = std::chrono::seconds(30);
}  // namespace

struct metrics_endpoint::impl : std::enable_shared_from_this<impl> {
  impl(asio::io_context& io, runtime& r, conf::metrics_config c) : rt(r), cfg(std::move(c)), acceptor(io) {}

  runtime& rt;
  conf::metrics_config cfg;
  tcp::acceptor acceptor;
  std::atomic<std::size_t> connections{0};

  http::response<http::string_body> answer(const http::request<http::string_body>& req) {
    http::response<http::string_body> res;
    res.version(req.version());
    res.keep_alive(req.keep_alive());
    res.set(http::field::server, "pgsluice");
    std::string_view target(req.target().data(), req.target().size());
    if (const auto q = target.find('?'); q != std::string_view::npos) target = target.substr(0, q);
    const bool get = req.method() == http::verb::get || req.method() == http::verb::head;
    if (!get) {
      res.result(http::status::method_not_allowed);
      res.set(http::field::allow, "GET, HEAD");
      res.set(http::field::content_type, "text/plain; charset=utf-8");
      res.body() = "only GET and HEAD are served here\n";
    } else if (target != cfg.path) {
      res.result(http::status::not_found);
      res.set(http::field::content_type, "text/plain; charset=utf-8");
      res.body() = "not found; pgsluice serves its metrics at " + cfg.path + "\n";
    } else {
      res.result(http::status::ok);
      res.set(http::field::content_type, std::string(prom::content_type));
      res.body() = scrape_text(rt);
    }
    res.prepare_payload();
    if (req.method() == http::verb::head) {
      const auto length = res.body().size();
      res.body().clear();
      res.content_length(length);
    }
    return res;
  }

  awaitable<void> serve(tcp::socket socket) {
    auto self = shared_from_this();
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buffer;
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.header_limit(8 * 1024);
      parser.body_limit(4 * 1024);
      stream.expires_after(idle_timeout);
      auto [ec, n] = co_await http::async_read(stream, buffer, parser, nothrow_awaitable);
      (void)n;
      if (ec) {
        if (ec != http::error::end_of_stream && ec != beast::error::timeout && ec != asio::error::operation_aborted &&
            ec != asio::error::connection_reset && ec != asio::error::eof) {
          http::response<http::string_body> bad{http::status::bad_request, 11};
          bad.set(http::field::server, "pgsluice");
          bad.set(http::field::content_type, "text/plain; charset=utf-8");
          bad.keep_alive(false);
          bad.body() = "bad request: " + ec.message() + "\n";
          bad.prepare_payload();
          stream.expires_after(std::chrono::seconds(5));
          co_await http::async_write(stream, bad, nothrow_awaitable);
        }
        break;
      }
      auto res = answer(parser.get());
      stream.expires_after(idle_timeout);
      auto [wec, wn] = co_await http::async_write(stream, res, nothrow_awaitable);
      (void)wn;
      if (wec || !res.keep_alive()) break;
    }
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    connections.fetch_sub(1, std::memory_order_relaxed);
  }

  awaitable<void> accept_loop() {
    auto self = shared_from_this();
    for (;;) {
      auto [ec, socket] = co_await acceptor.async_accept(nothrow_awaitable);
      if (ec) {
        if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
        spdlog::warn("metrics accept failed: {}", ec.message());
        continue;
      }
      if (connections.load(std::memory_order_relaxed) >= max_connections) {
        boost::system::error_code ignored;
        socket.close(ignored);
        continue;
      }
      connections.fetch_add(1, std::memory_order_relaxed);
      asio::co_spawn(acceptor.get_executor(), serve(std::move(socket)), [](std::exception_ptr e) {
        if (!e) return;
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& ex) {
          spdlog::error("metrics connection failed with an exception: {}", ex.what());
        }
      });
    }
  }
};

metrics_endpoint::metrics_endpoint(asio::io_context& io, runtime& rt, const conf::metrics_config& cfg)
    : impl_(std::make_shared<impl>(io, rt, cfg)) {
  const std::string where = cfg.host + ":" + std::to_string(cfg.port);
  boost::system::error_code ec;
  tcp::resolver resolver(io);
  auto results = resolver.resolve(cfg.host, std::to_string(cfg.port), tcp::resolver::passive, ec);
  if (ec || results.empty()) {
    throw std::runtime_error("metrics address " + where + " cannot be resolved: " +
                             (ec ? ec.message() : std::string("no address")));
  }
  const tcp::endpoint ep = results.begin()->endpoint();
  auto& acc = impl_->acceptor;
  acc.open(ep.protocol(), ec);
  if (!ec) acc.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acc.bind(ep, ec);
  if (!ec) acc.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) throw std::runtime_error("cannot listen for metrics on " + where + ": " + ec.message());
}

metrics_endpoint::~metrics_endpoint() { stop(); }

void metrics_endpoint::start() {
  asio::co_spawn(impl_->acceptor.get_executor(), impl_->accept_loop(), [](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      spdlog::error("metrics endpoint failed with an exception: {}", ex.what());
    }
  });
  const auto ep = local_endpoint();
  spdlog::info("metrics listening on {}:{} path={}", ep.address().to_string(), ep.port(), impl_->cfg.path);
}

void metrics_endpoint::stop() {
  boost::system::error_code ignored;
  impl_->acceptor.close(ignored);
}

tcp::endpoint metrics_endpoint::local_endpoint() const {
  boost::system::error_code ec;
  return impl_->acceptor.local_endpoint(ec);
}

}  // namespace pgsluice::proxy

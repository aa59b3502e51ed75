// Internal to proxy/: the Prometheus endpoint — a small HTTP/1.1 server answering GET of [metrics] path with the scrape.
//
// It runs on the io_context of serve's main thread (signals, pool upkeep), so a scrape never
// takes time from a worker's event loop. Beast stays inside metrics_http.cpp.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "conf/config.hpp"
#include "proxy/asio.hpp"
#include "proxy/exposition.hpp"

namespace pgsluice::proxy {

class runtime;

// Every family a scrape reports (proxy/scrape.cpp), and their text.
std::vector<prom::family> gather_metrics(runtime& rt);
std::string scrape_text(runtime& rt);

class metrics_endpoint {
 public:
  // Resolves and binds [metrics] host:port; throws std::runtime_error saying which address
  // could not be used and why (in use, not resolvable, not allowed).
  metrics_endpoint(asio::io_context& io, runtime& rt, const conf::metrics_config& cfg);
  ~metrics_endpoint();
  metrics_endpoint(const metrics_endpoint&) = delete;
  metrics_endpoint& operator=(const metrics_endpoint&) = delete;

  void start();
  // Closes the listening socket; connections in progress end with the io_context.
  void stop();
  tcp::endpoint local_endpoint() const;

 private:
  struct impl;
  std::shared_ptr<impl> impl_;
};

}  // namespace pgsluice::proxy

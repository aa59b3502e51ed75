// Checks of the [metrics] section: an HTTP path Prometheus can ask for, a port apart from the proxy's own.
#include <string>
#include <string_view>

#include "conf/config.hpp"
#include "conf/loading.hpp"

namespace pgsluice::conf::detail {

namespace {

// Absolute, printable, without a query or fragment: the request's path is compared as it is.
bool is_http_path(std::string_view p) noexcept {
  if (p.empty() || p.front() != '/') return false;
  for (char ch : p) {
    const auto c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c >= 0x7f || c == '?' || c == '#') return false;
  }
  return true;
}

bool wildcard(std::string_view host) noexcept { return host == "0.0.0.0" || host == "::" || host == "*"; }

}  // namespace

void check_metrics(context& ctx, const config& c) {
  const metrics_config& m = c.metrics;
  if (!is_http_path(m.path)) {
    ctx.error_at("metrics.path", "must be an HTTP path starting with \"/\", such as \"/metrics\", without spaces, '?' "
                                 "or '#' (got \"" + m.path + "\")");
  }
  if (m.port == 0) return;
  for (const auto& l : c.listen) {
    if (l.port == m.port && (l.host == m.host || wildcard(l.host) || wildcard(m.host))) {
      ctx.error_at("metrics.port", "port " + std::to_string(m.port) + " is where pgsluice listens for clients (" +
                                       l.host + ":" + std::to_string(l.port) + "); give the metrics endpoint its own");
      break;
    }
  }
}

}  // namespace pgsluice::conf::detail

// Log output: the text convention's fields turned into one JSON object per line (see logging.hpp).
#include "proxy/logging.hpp"

#include "conf/schema.hpp"

#include <algorithm>
#include <ctime>
#include <memory>
#include <optional>
#include <vector>

#include <fmt/format.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace pgsluice::proxy {

namespace {

bool ident_start(char c) noexcept { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool ident_char(char c) noexcept { return ident_start(c) || (c >= '0' && c <= '9'); }

bool is_word(std::string_view w) noexcept {
  if (w.empty() || !ident_start(w[0])) return false;
  for (char c : w) {
    if (!ident_char(c)) return false;
  }
  return true;
}

// c42, s7: the names sessions and server connections give themselves.
bool is_connection_name(std::string_view w) noexcept {
  if (w.size() < 2 || (w[0] != 'c' && w[0] != 's')) return false;
  for (std::size_t i = 1; i < w.size(); ++i) {
    if (w[i] < '0' || w[i] > '9') return false;
  }
  return true;
}

// Length of the UTF-8 sequence starting at s[i] if it is well formed, else 0.
std::size_t utf8_length(std::string_view s, std::size_t i) noexcept {
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  std::size_t n = 0;
  std::uint32_t cp = 0;
  if (c < 0x80) return 1;
  if (c >= 0xc2 && c <= 0xdf) {
    n = 2;
    cp = c & 0x1f;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    cp = c & 0x0f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (std::size_t k = 1; k < n; ++k) {
    if ((b(i + k) & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (b(i + k) & 0x3f);
  }
  // Overlong forms, surrogates and beyond U+10FFFF are not UTF-8.
  if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return n;
}

// "1.5s", "250ms", "40us" as seconds.
std::optional<double> seconds_of(std::string_view v) {
  double scale = 1;
  if (v.ends_with("ms")) {
    scale = 1e-3;
    v.remove_suffix(2);
  } else if (v.ends_with("us")) {
    scale = 1e-6;
    v.remove_suffix(2);
  } else if (v.ends_with("s")) {
    v.remove_suffix(1);
  }
  if (v.empty()) return std::nullopt;
  std::size_t dots = 0;
  for (char c : v) {
    if (c == '.') {
      ++dots;
    } else if (c < '0' || c > '9') {
      return std::nullopt;
    }
  }
  if (dots > 1) return std::nullopt;
  return std::stod(std::string(v)) * scale;
}

std::string_view json_key(std::string_view k) noexcept {
  if (k == "db") return "database";
  if (k == "addr") return "client_addr";
  return k;
}

bool reserved(std::string_view k) noexcept {
  return k == "time" || k == "level" || k == "connection" || k == "event" || k == "message";
}

void append_string(std::string& out, std::string_view v) {
  out += '"';
  out += json_escape(v);
  out += '"';
}

class json_formatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const auto level = spdlog::level::to_string_view(msg.level);
    const std::string line = json_log_line(msg.time, std::string_view(level.data(), level.size()),
                                           std::string_view(msg.payload.data(), msg.payload.size()));
    dest.append(line.data(), line.data() + line.size());
    dest.push_back('\n');
  }
  std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<json_formatter>(); }
};

}  // namespace

// The same escapes as a TOML basic string's, which the config's messages use.
std::string log_quoted(std::string_view v) { return conf::detail::quote(v); }

std::string json_escape(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (std::size_t i = 0; i < v.size();) {
    const auto c = static_cast<unsigned char>(v[i]);
    switch (c) {
      case '"': out += "\\\""; ++i; continue;
      case '\\': out += "\\\\"; ++i; continue;
      case '\n': out += "\\n"; ++i; continue;
      case '\r': out += "\\r"; ++i; continue;
      case '\t': out += "\\t"; ++i; continue;
      default: break;
    }
    if (c < 0x20 || c == 0x7f) {
      out += fmt::format("\\u{:04x}", c);
      ++i;
      continue;
    }
    const std::size_t n = utf8_length(v, i);
    if (n == 0) {
      out += "\\ufffd";
      ++i;
      continue;
    }
    out.append(v.substr(i, n));
    i += n;
  }
  return out;
}

std::string json_log_line(std::chrono::system_clock::time_point time, std::string_view level, std::string_view text) {
  std::string out;
  out.reserve(text.size() * 2 + 96);
  // Time in UTC, with milliseconds (RFC 3339).
  const auto since = time.time_since_epoch();
  const auto secs = std::chrono::duration_cast<std::chrono::seconds>(since);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(since - secs).count();
  const std::time_t t = static_cast<std::time_t>(secs.count());
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  out += fmt::format("{{\"time\":\"{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z\",\"level\":", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
  append_string(out, level);

  // Tokens: words separated by spaces; a value opened by `="` runs to its closing quote.
  std::string_view rest = text;
  std::optional<std::string_view> connection;
  std::optional<std::string_view> event;
  std::vector<std::pair<std::string_view, std::string>> fields;
  bool first = true;
  while (!rest.empty()) {
    const auto start = rest.find_first_not_of(' ');
    if (start == std::string_view::npos) break;
    rest.remove_prefix(start);
    std::size_t eq = 0;
    while (eq < rest.size() && ident_char(rest[eq])) ++eq;
    const bool field = eq > 0 && ident_start(rest[0]) && eq < rest.size() && rest[eq] == '=';
    if (field && eq + 1 < rest.size() && rest[eq + 1] == '"') {
      // key="value with \" escaped"
      std::string value;
      std::size_t i = eq + 2;
      bool closed = false;
      for (; i < rest.size(); ++i) {
        if (rest[i] == '\\' && i + 1 < rest.size() && (rest[i + 1] == '"' || rest[i + 1] == '\\')) {
          value += rest[++i];
        } else if (rest[i] == '"' && (i + 1 == rest.size() || rest[i + 1] == ' ')) {
          closed = true;
          break;
        } else {
          value += rest[i];
        }
      }
      fields.emplace_back(rest.substr(0, eq), std::move(value));
      rest.remove_prefix(closed ? i + 1 : rest.size());
      first = false;
      continue;
    }
    const auto end = std::min(rest.find(' '), rest.size());
    const std::string_view token = rest.substr(0, end);
    rest.remove_prefix(end);
    if (first && is_connection_name(token)) {
      connection = token;
    } else if (field) {
      fields.emplace_back(token.substr(0, eq), std::string(token.substr(eq + 1)));
    } else if (!event && is_word(token)) {
      event = token;
    }
    first = false;
  }

  out += ",\"connection\":";
  if (connection) {
    append_string(out, *connection);
  } else {
    out += "null";
  }
  if (event) {
    out += ",\"event\":";
    append_string(out, *event);
  }
  std::vector<std::string> seen;
  for (const auto& [k, v] : fields) {
    std::string key(json_key(k));
    if (reserved(key)) key = "field_" + key;
    if (std::find(seen.begin(), seen.end(), key) != seen.end()) continue;
    seen.push_back(key);
    out += ',';
    append_string(out, key);
    out += ':';
    if (k == "duration") {
      if (const auto s = seconds_of(v)) {
        out += fmt::format("{}", *s);
        continue;
      }
    }
    append_string(out, v);
  }
  out += ",\"message\":";
  append_string(out, text);
  out += '}';
  return out;
}

void use_json_logs() {
  auto logger = spdlog::stderr_logger_mt("pgsluice");
  logger->set_formatter(std::make_unique<json_formatter>());
  spdlog::set_default_logger(logger);
}

}  // namespace pgsluice::proxy

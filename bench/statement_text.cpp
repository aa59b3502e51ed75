// Statement text and error words for the load generator: protocol mode names, simple-query rendering, connect-error classes.
#include <algorithm>
#include <cctype>

#include "bench/load_generator.hpp"
#include "bench/transaction.hpp"

namespace pgsluice::bench {

std::string_view to_string(protocol_mode m) noexcept {
  switch (m) {
    case protocol_mode::simple: return "simple";
    case protocol_mode::extended: return "extended";
    case protocol_mode::prepared: return "prepared";
  }
  return "?";
}

std::optional<protocol_mode> parse_protocol_mode(std::string_view s) noexcept {
  if (s == "simple") return protocol_mode::simple;
  if (s == "extended") return protocol_mode::extended;
  if (s == "prepared") return protocol_mode::prepared;
  return std::nullopt;
}

namespace {

bool contains_nocase(std::string_view haystack, std::string_view needle) noexcept {
  auto it = std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end(), [](char a, char b) {
    return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
  });
  return it != haystack.end();
}

}  // namespace

std::string_view classify_connect_error(std::string_view message) noexcept {
  // PostgreSQL: 'password authentication failed for user "x"' (28P01), 'no pg_hba.conf
  // entry' (28000); PgBouncer and Pgpool-II reuse PostgreSQL's wording.
  for (std::string_view s : {"authentication failed", "no pg_hba.conf entry", "password", "not permitted to log in",
                             "sasl", "scram"})
    if (contains_nocase(message, s)) return error_kind::auth_failed;
  // 'role "x" does not exist' (28000) is a rejected login too; a missing database is not.
  if (contains_nocase(message, "role \"") && contains_nocase(message, "does not exist")) return error_kind::auth_failed;
  // PostgreSQL: "sorry, too many clients already" / "remaining connection slots are
  // reserved" (53300); PgBouncer: "no more connections allowed (max_client_conn)".
  for (std::string_view s : {"too many clients", "too many connections", "remaining connection slots",
                             "no more connections allowed"})
    if (contains_nocase(message, s)) return error_kind::too_many_connections;
  return error_kind::connect_failed;
}

bool looks_numeric(const std::string& v) noexcept {
  std::size_t i = 0;
  const std::size_t n = v.size();
  if (i < n && (v[i] == '-' || v[i] == '+')) ++i;
  bool digits = false;
  while (i < n && std::isdigit(static_cast<unsigned char>(v[i]))) ++i, digits = true;
  if (i < n && v[i] == '.') {
    ++i;
    while (i < n && std::isdigit(static_cast<unsigned char>(v[i]))) ++i, digits = true;
  }
  if (!digits) return false;
  if (i < n && (v[i] == 'e' || v[i] == 'E')) {
    ++i;
    if (i < n && (v[i] == '-' || v[i] == '+')) ++i;
    bool exp_digits = false;
    while (i < n && std::isdigit(static_cast<unsigned char>(v[i]))) ++i, exp_digits = true;
    if (!exp_digits) return false;
  }
  return i == n;
}

void render_simple_query(const std::string& sql, const std::vector<std::string>& params, std::string& out) {
  out.clear();
  out.reserve(sql.size() + 16 * params.size());
  char quote = 0;  // inside '...' or "..."
  for (std::size_t i = 0; i < sql.size(); ++i) {
    const char ch = sql[i];
    if (quote) {
      out += ch;
      if (ch == quote) quote = 0;
      continue;
    }
    if (ch == '\'' || ch == '"') {
      quote = ch;
      out += ch;
      continue;
    }
    const bool prev_ident = i > 0 && (std::isalnum(static_cast<unsigned char>(sql[i - 1])) || sql[i - 1] == '_');
    if (ch == '$' && !prev_ident && i + 1 < sql.size() && std::isdigit(static_cast<unsigned char>(sql[i + 1]))) {
      std::size_t j = i + 1;
      std::size_t index = 0;
      while (j < sql.size() && std::isdigit(static_cast<unsigned char>(sql[j]))) index = index * 10 + static_cast<std::size_t>(sql[j++] - '0');
      if (index >= 1 && index <= params.size()) {
        const std::string& v = params[index - 1];
        if (looks_numeric(v)) {
          // "x-$1" with $1 = -5 must not become "x--5", a comment.
          if (v[0] == '-') out.append("(").append(v).append(")");
          else out += v;
        } else {
          out += '\'';
          for (char c : v) {
            if (c == '\'') out += '\'';
            out += c;
          }
          out += '\'';
        }
        i = j - 1;
        continue;
      }
    }
    out += ch;
  }
}

}  // namespace pgsluice::bench

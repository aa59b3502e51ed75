// The admin console's statement reader and result writer (see admin.hpp).
#include "proxy/admin.hpp"

#include <cctype>
#include <ctime>

#include "protocol/codec.hpp"

namespace pgsluice::proxy {

namespace {

// PgBouncer copies a command into 16 bytes and an argument into 64 (NUL included).
constexpr std::size_t max_cmd = 15;
constexpr std::size_t max_arg = 63;
constexpr std::size_t max_value = 255;

bool is_ws(char c) noexcept { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
bool is_word_char(char c) noexcept {
  const auto u = static_cast<unsigned char>(c);
  return std::isalnum(u) != 0 || c == '_';
}

// A cursor over the statement; every reader returns false without moving on a mismatch.
struct reader {
  std::string_view s;
  std::size_t at = 0;

  bool done() const noexcept { return at >= s.size(); }
  std::size_t skip_ws() noexcept {
    const std::size_t from = at;
    while (at < s.size() && is_ws(s[at])) ++at;
    return at - from;
  }
  // A run quoted by `q` (a doubled `q` is one), as PgBouncer's copy_arg unquotes it.
  bool quoted(char q, std::string& out, std::size_t& raw) {
    if (at >= s.size() || s[at] != q) return false;
    out.clear();
    std::size_t i = at + 1;
    for (;;) {
      if (i >= s.size()) return false;
      if (s[i] == q) {
        if (i + 1 < s.size() && s[i + 1] == q) {
          out += q;
          i += 2;
          continue;
        }
        break;
      }
      out += s[i++];
    }
    raw = i + 1 - at;
    at = i + 1;
    return true;
  }
  // WORD: "quoted" (not empty, as PgBouncer's pattern wants) or [0-9a-z_]+. `raw` is its length as written.
  bool word(std::string& out, std::size_t& raw) {
    const std::size_t from = at;
    if (quoted('"', out, raw)) {
      if (!out.empty()) return true;
      at = from;
      return false;
    }
    out.clear();
    while (at < s.size() && is_word_char(s[at])) out += s[at++];
    raw = at - from;
    return !out.empty();
  }
  // STRING: 'quoted' with '' for a quote.
  bool string(std::string& out, std::size_t& raw) { return quoted('\'', out, raw); }
  bool keyword(std::string_view k) noexcept {
    if (s.size() - at < k.size()) return false;
    for (std::size_t i = 0; i < k.size(); ++i) {
      if (std::tolower(static_cast<unsigned char>(s[at + i])) != k[i]) return false;
    }
    at += k.size();
    return true;
  }
  // WS0 (";" WS0)? $
  bool end() noexcept {
    skip_ws();
    if (at < s.size() && s[at] == ';') {
      ++at;
      skip_ws();
    }
    return done();
  }
};

admin_statement syntax_error() { return admin_statement{}; }
admin_statement bad_arguments() {
  admin_statement st;
  st.k = admin_statement::kind::bad_arguments;
  return st;
}

// SET key (=|to) value, value a word or a 'string'.
admin_statement parse_set(std::string_view q) {
  reader r{q};
  r.skip_ws();
  if (!r.keyword("set") || r.skip_ws() == 0) return syntax_error();
  admin_statement st;
  std::size_t raw = 0;
  if (!r.word(st.arg, raw)) return syntax_error();
  const std::size_t key_raw = raw;
  r.skip_ws();
  if (!r.keyword("=") && !r.keyword("to")) return syntax_error();
  r.skip_ws();
  const std::size_t before = r.at;
  if (!r.string(st.value, raw)) {
    r.at = before;
    if (!r.word(st.value, raw)) return syntax_error();
  }
  if (!r.end()) return syntax_error();
  if (key_raw > max_arg || raw > max_value) return bad_arguments();
  st.k = admin_statement::kind::set;
  return st;
}

}  // namespace

admin_statement parse_admin_statement(std::string_view q) {
  reader r{q};
  r.skip_ws();
  admin_statement st;
  std::size_t cmd_raw = 0;
  std::size_t arg_raw = 0;
  if (r.word(st.cmd, cmd_raw)) {
    const std::size_t after_cmd = r.at;
    bool ok = r.end();
    if (!ok) {
      r.at = after_cmd;
      ok = r.skip_ws() > 0 && r.word(st.arg, arg_raw) && r.end();
    }
    if (ok) {
      if (cmd_raw > max_cmd || arg_raw > max_arg) return bad_arguments();
      st.k = admin_statement::kind::command;
      return st;
    }
  }
  return parse_set(q);
}

// --- results -----------------------------------------------------------------------------------

namespace {
struct wire_type {
  std::uint32_t oid;
  std::int16_t size;
};
wire_type wire_of(admin_result::type t) noexcept {
  switch (t) {
    case admin_result::type::int4: return {23, 4};
    case admin_result::type::int8: return {20, 8};
    case admin_result::type::numeric: return {1700, -1};
    case admin_result::type::text:
    case admin_result::type::timestamp: return {25, -1};
  }
  return {25, -1};
}
}  // namespace

admin_result::admin_result(std::vector<std::uint8_t>& out, std::initializer_list<column> columns)
    : out_(out), columns_(columns.size()) {
  protocol::row_description rd;
  for (const auto& c : columns) {
    protocol::field_description f;
    f.name = c.name;
    const auto w = wire_of(c.t);
    f.type_oid = w.oid;
    f.type_size = w.size;
    f.type_modifier = -1;
    rd.fields.push_back(f);
  }
  protocol::encode(rd, out_);
}

void admin_result::row(const std::vector<cell>& values) {
  protocol::data_row dr;
  dr.columns.reserve(columns_);
  for (std::size_t i = 0; i < columns_; ++i) {
    if (i < values.size() && values[i]) {
      const auto& v = *values[i];
      dr.columns.emplace_back(protocol::bytes_view(reinterpret_cast<const std::uint8_t*>(v.data()), v.size()));
    } else {
      dr.columns.emplace_back(std::nullopt);
    }
  }
  protocol::encode(dr, out_);
  ++rows_;
}

void admin_result::row(std::initializer_list<cell> values) { row(std::vector<cell>(values)); }

void admin_complete(std::vector<std::uint8_t>& out, std::string_view tag) {
  protocol::encode(protocol::command_complete{tag}, out);
  protocol::encode_ready_for_query('I', out);
}

void admin_error(std::vector<std::uint8_t>& out, std::string_view message) {
  protocol::encode_error_response("ERROR", "08P01", message, out);
  protocol::encode_ready_for_query('I', out);
}

std::string invalid_command(std::string_view query) {
  return "invalid command '" + std::string(query) + "', use SHOW HELP;";
}

std::string format_timestamp(std::int64_t unix_seconds) {
  const std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  const std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return std::string(buf, n);
}

}  // namespace pgsluice::proxy

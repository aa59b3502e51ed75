// The SQL lexer (see lexer.hpp); its rules mirror src/backend/parser/scan.l of PostgreSQL 15.
#include "router/lexer.hpp"

#include <array>

namespace pgsluice::router {
namespace {

// Character classes of scan.l, ASCII only and locale-free: bytes >= 0x80 count as letters.
// A table, since the identifier loop is the lexer's hottest.
enum : std::uint8_t { ident_start_bit = 1, digit_bit = 2, dollar_bit = 4 };
constexpr auto char_classes = [] {
  std::array<std::uint8_t, 256> t{};
  for (int c = 0; c < 256; ++c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80) t[c] |= ident_start_bit;
    if (c >= '0' && c <= '9') t[c] |= digit_bit;
  }
  t['$'] |= dollar_bit;
  return t;
}();
std::uint8_t class_of(char c) noexcept { return char_classes[static_cast<unsigned char>(c)]; }
bool is_space(char c) noexcept { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
bool is_digit(char c) noexcept { return (class_of(c) & digit_bit) != 0; }
bool is_ident_start(char c) noexcept { return (class_of(c) & ident_start_bit) != 0; }
bool is_ident_char(char c) noexcept { return class_of(c) != 0; }
bool is_tag_char(char c) noexcept { return (class_of(c) & (ident_start_bit | digit_bit)) != 0; }
bool is_op_char(char c) noexcept {
  switch (c) {
    case '~': case '!': case '@': case '#': case '^': case '&': case '|': case '`': case '?':
    case '+': case '-': case '*': case '/': case '%': case '<': case '>': case '=':
      return true;
    default:
      return false;
  }
}
// An operator holding one of these may end in `+` or `-` (scan.l: so that `a=-1` still lexes
// as `a = -1` while `@-` stays one operator).
bool is_op_special(char c) noexcept {
  switch (c) {
    case '~': case '!': case '@': case '#': case '^': case '&': case '|': case '`': case '?': case '%':
      return true;
    default:
      return false;
  }
}
bool is_punctuation(char c) noexcept {
  switch (c) {
    case '(': case ')': case '[': case ']': case ',': case ';': case ':': case '.':
      return true;
    default:
      return false;
  }
}
char ascii_lower(char c) noexcept { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

}  // namespace

std::string_view to_string(token_kind k) noexcept {
  switch (k) {
    case token_kind::identifier: return "identifier";
    case token_kind::quoted_identifier: return "quoted_identifier";
    case token_kind::string: return "string";
    case token_kind::dollar_string: return "dollar_string";
    case token_kind::number: return "number";
    case token_kind::parameter: return "parameter";
    case token_kind::op: return "op";
    case token_kind::punctuation: return "punctuation";
    case token_kind::comment: return "comment";
    case token_kind::other: return "other";
    case token_kind::end: return "end";
  }
  return "?";
}

bool iequals_keyword(std::string_view word, std::string_view lower) noexcept {
  if (word.size() != lower.size()) return false;
  for (std::size_t i = 0; i < word.size(); ++i) {
    if (ascii_lower(word[i]) != lower[i]) return false;
  }
  return true;
}

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  }
  return true;
}

std::string_view token_body(const token& t) noexcept {
  std::string_view s = t.text;
  switch (t.kind) {
    case token_kind::string:
    case token_kind::quoted_identifier: {
      const char q = t.kind == token_kind::string ? '\'' : '"';
      const auto open = s.find(q);
      if (open == std::string_view::npos) return {};
      s.remove_prefix(open + 1);
      if (t.terminated && !s.empty()) s.remove_suffix(1);
      return s;
    }
    case token_kind::dollar_string: {
      const auto tag_end = s.find('$', 1);
      if (tag_end == std::string_view::npos) return {};
      const std::size_t tag = tag_end + 1;
      s.remove_prefix(tag);
      if (t.terminated && s.size() >= tag) s.remove_suffix(tag);
      return s;
    }
    case token_kind::comment:
      if (s.size() >= 2 && s[0] == '-') return s.substr(2);
      s.remove_prefix(s.size() >= 2 ? 2 : s.size());
      if (t.terminated && s.size() >= 2) s.remove_suffix(2);
      return s;
    default:
      return s;
  }
}

token lexer::make(token_kind k, std::size_t start, bool terminated) noexcept {
  return {k, s_.substr(start, i_ - start), terminated};
}

token lexer::next() noexcept {
  const std::size_t n = s_.size();
  while (i_ < n && is_space(s_[i_])) ++i_;
  if (i_ >= n) return {token_kind::end, s_.substr(n), true};
  const std::size_t start = i_;
  const char c = s_[i_];
  const char c1 = at(i_ + 1);

  if (c == '-' && c1 == '-') {
    while (i_ < n && s_[i_] != '\n' && s_[i_] != '\r') ++i_;
    return make(token_kind::comment, start);
  }
  if (c == '/' && c1 == '*') return block_comment(start);
  if (i_ < single_ops_end_) {  // the tail of a `+`/`-` run (see operator_run)
    ++i_;
    return make(token_kind::op, start);
  }
  if (c == '\'') return quoted(token_kind::string, start, '\'', !opts_.standard_conforming_strings, true);
  if (c == '"') return quoted(token_kind::quoted_identifier, start, '"', false, true);
  if (c == '$') return dollar_or_parameter(start);
  if (is_digit(c) || (c == '.' && is_digit(c1))) return number(start);
  if (is_ident_start(c)) {
    // Prefixed constants: E'..' (escapes), B'..'/X'..' (bit strings: no doubled quotes),
    // N'..' (national character), U&'..' and U&".." (Unicode escapes, resolved by the server).
    if (c1 == '\'') {
      switch (ascii_lower(c)) {
        case 'e':
          ++i_;
          return quoted(token_kind::string, start, '\'', true, true);
        case 'b':
        case 'x':
          ++i_;
          return quoted(token_kind::string, start, '\'', false, false);
        case 'n':
          ++i_;
          return quoted(token_kind::string, start, '\'', !opts_.standard_conforming_strings, true);
        default:
          break;
      }
    }
    if (ascii_lower(c) == 'u' && c1 == '&') {
      const char q = at(i_ + 2);
      if (q == '\'' || q == '"') {
        i_ += 2;
        return quoted(q == '\'' ? token_kind::string : token_kind::quoted_identifier, start, q, false, true);
      }
    }
    while (i_ < n && is_ident_char(s_[i_])) ++i_;
    return make(token_kind::identifier, start);
  }
  if (is_punctuation(c)) {
    i_ += ((c == ':' || c == '.') && c1 == c) ? 2 : 1;  // `::` (cast), `..` (plpgsql ranges)
    return make(token_kind::punctuation, start);
  }
  if (is_op_char(c)) return operator_run(start);
  ++i_;
  return make(token_kind::other, start);
}

token lexer::block_comment(std::size_t start) noexcept {
  // Block comments nest (unlike the SQL standard's, PostgreSQL's do).
  const std::size_t n = s_.size();
  std::size_t depth = 0;
  while (i_ < n) {
    if (s_[i_] == '/' && at(i_ + 1) == '*') {
      ++depth;
      i_ += 2;
    } else if (s_[i_] == '*' && at(i_ + 1) == '/') {
      i_ += 2;
      if (--depth == 0) return make(token_kind::comment, start);
    } else {
      ++i_;
    }
  }
  return make(token_kind::comment, start, false);
}

token lexer::quoted(token_kind k, std::size_t start, char quote, bool backslash, bool doubling) noexcept {
  const std::size_t n = s_.size();
  ++i_;  // the opening quote
  while (i_ < n) {
    const char c = s_[i_];
    if (backslash && c == '\\') {
      i_ = i_ + 2 < n ? i_ + 2 : n;
    } else if (c == quote) {
      if (doubling && at(i_ + 1) == quote) {
        i_ += 2;
      } else {
        ++i_;
        return make(k, start);
      }
    } else {
      ++i_;
    }
  }
  return make(k, start, false);
}

token lexer::dollar_or_parameter(std::size_t start) noexcept {
  const std::size_t n = s_.size();
  std::size_t j = i_ + 1;
  if (is_digit(at(j))) {
    while (j < n && is_digit(s_[j])) ++j;
    i_ = j;
    return make(token_kind::parameter, start);
  }
  // $tag$: the tag's characters are identifier characters other than `$`; a digit cannot be
  // the first (handled above as a parameter).
  while (j < n && is_tag_char(s_[j])) ++j;
  if (at(j) != '$') {  // a lone `$` (scan.l's dolqfailed): one byte the parser will reject
    ++i_;
    return make(token_kind::other, start);
  }
  const std::string_view delim = s_.substr(i_, j - i_ + 1);
  // Find the closing delimiter. Each candidate is a `$`; comparing it stops at the first byte
  // that differs, which is at the latest the next `$` (the tag holds none), so the whole search
  // reads each byte a bounded number of times.
  std::size_t p = j + 1;
  while (p < n) {
    const auto dollar = s_.find('$', p);
    if (dollar == std::string_view::npos) break;
    std::size_t k = 1;
    while (k < delim.size() && dollar + k < n && s_[dollar + k] == delim[k]) ++k;
    if (k == delim.size()) {
      i_ = dollar + k;
      return make(token_kind::dollar_string, start);
    }
    p = dollar + 1;
  }
  i_ = n;
  return make(token_kind::dollar_string, start, false);
}

token lexer::number(std::size_t start) noexcept {
  const std::size_t n = s_.size();
  while (i_ < n && is_digit(s_[i_])) ++i_;
  // `1..5` lexes as `1` then `..` (scan.l's decimalfail), so a second dot ends the number.
  if (at(i_) == '.' && at(i_ + 1) != '.') {
    ++i_;
    while (i_ < n && is_digit(s_[i_])) ++i_;
  }
  const char e = at(i_);
  if (e == 'e' || e == 'E') {
    const char s1 = at(i_ + 1);
    if (is_digit(s1) || ((s1 == '+' || s1 == '-') && is_digit(at(i_ + 2)))) {
      i_ += 2;
      while (i_ < n && is_digit(s_[i_])) ++i_;
    }
  }
  return make(token_kind::number, start);
}

token lexer::operator_run(std::size_t start) noexcept {
  const std::size_t n = s_.size();
  std::size_t end = start;
  bool special = false;
  while (end < n && is_op_char(s_[end])) {
    // A comment start inside the run ends the operator before it.
    if (end > start && ((s_[end - 1] == '/' && s_[end] == '*') || (s_[end - 1] == '-' && s_[end] == '-'))) {
      --end;
      break;
    }
    special = special || is_op_special(s_[end]);
    ++end;
  }
  std::size_t len = end - start;
  if (len > 1 && !special) {
    while (len > 1 && (s_[start + len - 1] == '+' || s_[start + len - 1] == '-')) --len;
    // What was cut is all `+`/`-` without a `--`: one-character operators, told to next() so
    // that it does not scan the run again for each of them.
    if (start + len < end) single_ops_end_ = end;
  }
  i_ = start + len;
  return make(token_kind::op, start);
}

}  // namespace pgsluice::router

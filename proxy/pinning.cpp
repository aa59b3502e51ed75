// Keyword-level classification of SQL text for session pinning in transaction mode (see pinning.hpp).
#include "proxy/pinning.hpp"

#include "router/classify.hpp"
#include "router/lexer.hpp"

#include <array>
#include <cctype>

namespace pgsluice::proxy {
namespace {

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  }
  return true;
}

bool is_ident_start(char c) noexcept {
  const auto u = static_cast<unsigned char>(c);
  return std::isalpha(u) || c == '_' || u >= 0x80;
}
bool is_ident_char(char c) noexcept { return is_ident_start(c) || std::isdigit(static_cast<unsigned char>(c)) || c == '$'; }

// One lexical token of interest: a bare word (keyword or unquoted identifier), a quoted
// identifier, or a statement separator. Literals, comments and punctuation are skipped.
struct token {
  enum class kind { word, quoted, semicolon, other, end } k = kind::end;
  std::string_view text;
};

class lexer {
 public:
  explicit lexer(std::string_view s) noexcept : s_(s) {}

  token next() noexcept {
    for (;;) {
      if (i_ >= s_.size()) return {token::kind::end, {}};
      const char c = s_[i_];
      if (std::isspace(static_cast<unsigned char>(c))) {
        ++i_;
      } else if (c == '-' && peek(1) == '-') {
        while (i_ < s_.size() && s_[i_] != '\n') ++i_;
      } else if (c == '/' && peek(1) == '*') {
        skip_block_comment();
      } else if (c == '\'') {
        skip_string(false);
      } else if ((c == 'E' || c == 'e') && peek(1) == '\'') {
        ++i_;
        skip_string(true);
      } else if (c == '"') {
        const std::size_t start = ++i_;
        while (i_ < s_.size()) {
          if (s_[i_] == '"') {
            if (peek(1) == '"') {
              i_ += 2;
              continue;
            }
            break;
          }
          ++i_;
        }
        const std::size_t end = i_;
        if (i_ < s_.size()) ++i_;
        return {token::kind::quoted, s_.substr(start, end - start)};
      } else if (c == '$' && try_skip_dollar_quote()) {
        // skipped a dollar-quoted body
      } else if (is_ident_start(c)) {
        const std::size_t start = i_;
        while (i_ < s_.size() && is_ident_char(s_[i_])) ++i_;
        return {token::kind::word, s_.substr(start, i_ - start)};
      } else if (c == ';') {
        ++i_;
        return {token::kind::semicolon, {}};
      } else {
        ++i_;
        return {token::kind::other, s_.substr(i_ - 1, 1)};
      }
    }
  }

 private:
  char peek(std::size_t off) const noexcept { return i_ + off < s_.size() ? s_[i_ + off] : '\0'; }

  void skip_block_comment() noexcept {
    // PostgreSQL block comments nest.
    int depth = 0;
    while (i_ < s_.size()) {
      if (s_[i_] == '/' && peek(1) == '*') {
        ++depth;
        i_ += 2;
      } else if (s_[i_] == '*' && peek(1) == '/') {
        i_ += 2;
        if (--depth == 0) return;
      } else {
        ++i_;
      }
    }
  }

  void skip_string(bool backslash_escapes) noexcept {
    ++i_;  // opening quote
    while (i_ < s_.size()) {
      const char c = s_[i_];
      if (backslash_escapes && c == '\\') {
        i_ += 2;
      } else if (c == '\'') {
        if (peek(1) == '\'') {
          i_ += 2;
        } else {
          ++i_;
          return;
        }
      } else {
        ++i_;
      }
    }
  }

  // $tag$ ... $tag$ (tag may be empty). Returns false when '$' does not open a dollar quote
  // (e.g. a positional parameter $1), leaving the position unchanged.
  bool try_skip_dollar_quote() noexcept {
    std::size_t j = i_ + 1;
    while (j < s_.size() && s_[j] != '$') {
      if (!is_ident_char(s_[j]) || s_[j] == '$' || (j == i_ + 1 && std::isdigit(static_cast<unsigned char>(s_[j]))))
        return false;
      ++j;
    }
    if (j >= s_.size()) return false;
    const std::string_view delim = s_.substr(i_, j - i_ + 1);
    const std::size_t close = s_.find(delim, j + 1);
    i_ = close == std::string_view::npos ? s_.size() : close + delim.size();
    return true;
  }

  std::string_view s_;
  std::size_t i_ = 0;
};

constexpr std::array<std::string_view, 6> tracked_parameters = {
    "client_encoding", "datestyle", "timezone", "intervalstyle", "standard_conforming_strings", "application_name"};

constexpr std::array<std::string_view, 5> pinning_functions = {
    "pg_advisory_lock", "pg_advisory_lock_shared", "pg_try_advisory_lock", "pg_try_advisory_lock_shared",
    "set_config"};

void merge(session_effects& into, const session_effects& e) noexcept {
  if (e.pins && !into.pins) {
    into.pins = true;
    into.reason = e.reason;
  }
  if (e.drops_prepared) into.drops_prepared = true;
  if (e.resets_settings) into.resets_settings = true;
  if (into.reason.empty()) into.reason = e.reason;
}

session_effects pin(std::string_view reason) noexcept { return {true, false, false, reason}; }

// Effects decided by the first words of one statement (up to four of them).
session_effects classify_statement(const std::array<std::string_view, 4>& w, std::size_t n) noexcept {
  auto is = [&](std::size_t i, std::string_view kw) { return i < n && iequals(w[i], kw); };
  if (n == 0) return {};

  if (is(0, "SET")) {
    if (is(1, "LOCAL") || is(1, "TRANSACTION") || (is(1, "CONSTRAINTS"))) return {};
    std::size_t p = 1;
    if (is(1, "SESSION")) {
      if (is(2, "CHARACTERISTICS")) return pin("SET SESSION CHARACTERISTICS");
      if (is(2, "AUTHORIZATION")) return pin("SET SESSION AUTHORIZATION");
      p = 2;
    }
    if (is(p, "ROLE")) return pin("SET ROLE");
    if (is(p, "TIME") && is(p + 1, "ZONE")) return {};
    if (is(p, "NAMES")) return {};
    if (p < n && is_tracked_parameter(w[p])) return {};
    return pin("SET");
  }
  if (is(0, "RESET")) {
    if (is(1, "ALL")) return {true, false, true, "RESET ALL"};
    if (n > 1 && is_tracked_parameter(w[1])) return {};
    if (is(1, "TIME") && is(2, "ZONE")) return {};
    return pin("RESET");
  }
  if (is(0, "PREPARE")) {
    if (is(1, "TRANSACTION")) return {};
    return pin("PREPARE");
  }
  if (is(0, "EXECUTE")) return pin("EXECUTE");
  if (is(0, "DEALLOCATE")) {
    if (is(1, "ALL") || (is(1, "PREPARE") && is(2, "ALL"))) return {true, true, false, "DEALLOCATE ALL"};
    return pin("DEALLOCATE");
  }
  if (is(0, "DISCARD")) {
    if (is(1, "ALL")) return {false, true, true, "DISCARD ALL"};
    return {};
  }
  if (is(0, "LISTEN")) return pin("LISTEN");
  if (is(0, "LOAD")) return pin("LOAD");
  if (is(0, "CREATE")) {
    for (std::size_t i = 1; i < n; ++i) {
      if (is(i, "TEMP") || is(i, "TEMPORARY")) return pin("temporary table");
    }
    return {};
  }
  return {};
}

bool ascii_lower_equal(char a, char b) noexcept {
  if (a >= 'A' && a <= 'Z') a = static_cast<char>(a - 'A' + 'a');
  return a == b;
}

// The common case, decided without tokenizing: one statement (a trailing ';' allowed) whose
// first keyword cannot change session state, with none of the words that could inside it.
// Anything else goes through the full lexer.
bool ascii_space(char c) noexcept { return c == ' ' || (c >= '\t' && c <= '\r'); }

bool obviously_harmless(std::string_view sql) noexcept {
  std::size_t i = 0;
  while (i < sql.size() && ascii_space(sql[i])) ++i;
  std::size_t j = i;
  while (j < sql.size() && std::isalpha(static_cast<unsigned char>(sql[j]))) ++j;
  const std::string_view first = sql.substr(i, j - i);
  static constexpr std::string_view safe[] = {"select", "insert", "update", "delete", "with",   "begin",
                                              "commit", "end",    "rollback", "start", "values", "savepoint",
                                              "release", "abort", "table",  "copy",   "explain"};
  bool known = false;
  for (auto kw : safe) {
    if (first.size() == kw.size()) {
      std::size_t k = 0;
      while (k < kw.size() && ascii_lower_equal(first[k], kw[k])) ++k;
      if (k == kw.size()) {
        known = true;
        break;
      }
    }
  }
  if (!known) return false;
  const auto semi = sql.find(';');
  if (semi != std::string_view::npos) {
    for (std::size_t k = semi + 1; k < sql.size(); ++k) {
      if (!ascii_space(sql[k])) return false;
    }
  }
  // One pass for the words that may matter anywhere in the text (a hit sends the statement
  // through the full lexer, which decides).
  auto at = [&](std::size_t i, std::string_view word) {
    if (i + word.size() > sql.size()) return false;
    for (std::size_t k = 0; k < word.size(); ++k) {
      if (!ascii_lower_equal(sql[i + k], word[k])) return false;
    }
    return true;
  };
  static constexpr std::string_view risky[] = {"advisory", "set_config", "temp", "hold"};
  for (std::size_t k = j; k < sql.size(); ++k) {
    for (const auto word : risky) {
      if ((sql[k] | 0x20) == word[0] && at(k, word)) return false;
    }
  }
  return true;
}

// Whether `word` occurs in `text` as a whole word (case-insensitive; `_` and letters around it
// make it part of another word).
bool contains_word(std::string_view text, std::string_view word) noexcept {
  for (std::size_t i = 0; i + word.size() <= text.size(); ++i) {
    std::size_t k = 0;
    while (k < word.size() && ascii_lower_equal(text[i + k], word[k])) ++k;
    if (k != word.size()) continue;
    const bool before = i > 0 && is_ident_char(text[i - 1]);
    const bool after = i + k < text.size() && is_ident_char(text[i + k]);
    if (!before && !after) return true;
  }
  return false;
}

}  // namespace

bool is_tracked_parameter(std::string_view name) noexcept {
  for (auto p : tracked_parameters) {
    if (iequals(p, name)) return true;
  }
  return false;
}

session_effects classify_session_effects(std::string_view sql) noexcept {
  session_effects out;
  if (obviously_harmless(sql)) return out;
  lexer lex(sql);
  std::array<std::string_view, 4> first{};
  std::size_t n = 0;
  bool leading = true;        // still collecting the statement's first words
  bool is_declare = false;    // DECLARE ... WITH HOLD
  bool has_do = false;        // a DO block: its body is a string the lexer skips
  std::string_view prev;      // previous bare word in this statement
  auto end_statement = [&] {
    merge(out, classify_statement(first, n));
    n = 0;
    leading = true;
    is_declare = false;
    prev = {};
  };
  for (;;) {
    const token t = lex.next();
    if (t.k == token::kind::end) {
      end_statement();
      break;
    }
    if (t.k == token::kind::semicolon) {
      end_statement();
      continue;
    }
    if (t.k == token::kind::other) {
      // "(" at the start of a statement ((SELECT ...)) is not a keyword boundary worth tracking.
      if (n > 0) leading = false;
      prev = {};
      continue;
    }
    if (t.k == token::kind::quoted) {
      if (leading && n < first.size()) first[n++] = t.text;
      prev = {};
      continue;
    }
    // A bare word.
    if (leading) {
      if (n < first.size()) {
        first[n++] = t.text;
        if (n == 1 && iequals(t.text, "DECLARE")) is_declare = true;
        if (n == 1 && iequals(t.text, "DO")) has_do = true;
      } else {
        leading = false;
      }
    }
    for (auto f : pinning_functions) {
      if (iequals(t.text, f)) merge(out, pin(f == "set_config" ? "set_config()" : "session advisory lock"));
    }
    if (is_declare && iequals(prev, "WITH") && iequals(t.text, "HOLD")) merge(out, pin("WITH HOLD cursor"));
    if (iequals(prev, "INTO") && (iequals(t.text, "TEMP") || iequals(t.text, "TEMPORARY")))
      merge(out, pin("temporary table"));
    prev = t.text;
  }
  // A DO block runs PL/pgSQL the lexer does not read: one that may SET, RESET or call
  // set_config() (looked for anywhere in the text, erring on the side of pinning) leaves its
  // settings on the server like a SET would.
  if (has_do && (contains_word(sql, "set") || contains_word(sql, "reset") || contains_word(sql, "set_config")))
    merge(out, pin("SET inside DO"));
  return out;
}

bool pipelinable(std::string_view sql) noexcept {
  router::lexer lex(sql);
  router::token first;
  do {
    first = lex.next();
    if (!first.terminated) return false;
  } while (first.kind == router::token_kind::comment);
  if (first.kind != router::token_kind::identifier) return false;
  bool known = false;
  for (std::string_view w : {"select", "insert", "update", "delete", "merge", "values", "table", "with", "show", "explain"}) {
    known = known || router::iequals_keyword(first.text, w);
  }
  if (!known) return false;
  for (router::token t = lex.next(); t.kind != router::token_kind::end; t = lex.next()) {
    if (!t.terminated) return false;
  }
  const router::statement_class c = router::classify(sql);
  if (c.statements != 1 || c.begins_transaction || c.ends_transaction || c.kind != router::statement_kind::ordinary ||
      c.set_mode != router::access_mode::unspecified)
    return false;
  const session_effects fx = classify_session_effects(sql);
  return !fx.pins && !fx.drops_prepared && !fx.resets_settings;
}

}  // namespace pgsluice::proxy

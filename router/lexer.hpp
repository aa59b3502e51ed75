// A PostgreSQL SQL lexer: the token stream of a Query or Parse text, as views into that text.
//
// It follows the lexical rules of https://www.postgresql.org/docs/15/sql-syntax-lexical.html
// (and scan.l where the page is silent), so that words inside string constants, quoted
// identifiers, dollar-quoted bodies and comments are never taken for keywords:
//  - comments: `-- ...` to the end of the line, `/* ... */` nesting;
//  - identifiers: a letter, `_` or a byte >= 0x80, then those, digits and `$`; keywords are
//    identifiers too (compare them with iequals_keyword, ASCII case-insensitive, no allocation);
//  - quoted identifiers `"..."` (`""` inside) and `U&"..."`;
//  - string constants `'...'` (`''` inside; backslash escapes too when
//    standard_conforming_strings is off), `E'...'` (backslash escapes), `U&'...'`, `N'...'`,
//    and `B'...'` / `X'...'` (which end at the first quote);
//  - dollar quoting `$tag$ ... $tag$`, the tag an identifier without `$` that does not start
//    with a digit (or empty); `$1` is a positional parameter;
//  - numbers (`42`, `3.5`, `.5`, `1e-3`), operators (scan.l's rule: a run of operator
//    characters, cut before `--` or `/*`, and not ending in `+` or `-` unless it holds one of
//    `~ ! @ # % ^ & | \` ?`), and one-character punctuation `( ) [ ] , ; : .` (`::` and `..`
//    as one).
// Never throws and never allocates. A quote or comment that is not closed runs to the end of
// the input and its token says so (`terminated == false`); every input is consumed in time
// linear in its length (a dollar-quote search is bounded by the next `$`).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace pgsluice::router {

enum class token_kind : std::uint8_t {
  identifier,         // unquoted name or keyword
  quoted_identifier,  // "..." or U&"..."
  string,             // '...', E'...', U&'...', N'...', B'...', X'...'
  dollar_string,      // $tag$ ... $tag$
  number,
  parameter,          // $1
  op,                 // operator
  punctuation,        // ( ) [ ] , ; : . :: ..
  comment,            // -- ... or /* ... */
  other,              // a byte no token starts with (a stray `$`, `\`, control characters)
  end,                // no more input
};

std::string_view to_string(token_kind k) noexcept;

struct token {
  token_kind kind = token_kind::end;
  std::string_view text;   // the token as written, prefix and quotes included
  bool terminated = true;  // false when a quote or block comment runs to the end of the input

  // One punctuation or operator character, e.g. is('(').
  bool is(char c) const noexcept {
    return (kind == token_kind::punctuation || kind == token_kind::op) && text.size() == 1 && text[0] == c;
  }
};

struct lexer_options {
  // When off, plain '...' strings take backslash escapes as E'...' does (the server's setting
  // of the same name; on by default since PostgreSQL 9.1).
  bool standard_conforming_strings = true;
};

class lexer {
 public:
  explicit lexer(std::string_view sql, lexer_options opts = {}) noexcept : s_(sql), opts_(opts) {}

  // The next token, comments included; kind end (and an empty text at the end of the input)
  // once everything is consumed.
  token next() noexcept;

  // Offset of the first byte not consumed yet.
  std::size_t position() const noexcept { return i_; }

 private:
  char at(std::size_t i) const noexcept { return i < s_.size() ? s_[i] : '\0'; }
  token make(token_kind k, std::size_t start, bool terminated = true) noexcept;
  token block_comment(std::size_t start) noexcept;
  token quoted(token_kind k, std::size_t start, char quote, bool backslash, bool doubling) noexcept;
  token dollar_or_parameter(std::size_t start) noexcept;
  token number(std::size_t start) noexcept;
  token operator_run(std::size_t start) noexcept;

  std::string_view s_;
  lexer_options opts_;
  std::size_t i_ = 0;
  // End of a run of `+`/`-` characters already known to lex one character at a time (see
  // operator_run): keeps a long `+-+-...` run linear instead of rescanning it per token.
  std::size_t single_ops_end_ = 0;
};

// ASCII case-insensitive equality of `word` with `lower`, which must be lowercase (a keyword
// or a lowercase name): SQL keywords and unquoted identifiers fold to lower case.
bool iequals_keyword(std::string_view word, std::string_view lower) noexcept;

// ASCII case-insensitive equality of any two texts.
bool iequals(std::string_view a, std::string_view b) noexcept;

// What a string, quoted identifier or dollar-quoted token holds between its quotes (prefix,
// quotes and dollar tags removed; doubled quotes and escapes left as written). Other tokens
// are returned as they are.
std::string_view token_body(const token& t) noexcept;

}  // namespace pgsluice::router

// Fuzz target: the SQL lexer and the read/write classification (router::classify) over arbitrary text.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "router/classify.hpp"
#include "router/lexer.hpp"
#include "tests/fuzz/protocol_roundtrip.hpp"

using namespace pgsluice;
using test::fuzz_check;

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// Tokens are non-empty views into the text, in order, with only whitespace between them, and
// the lexer ends exactly at the end of the text.
void check_tokens(std::string_view sql) {
  router::lexer lex(sql);
  std::size_t at = 0;
  for (std::size_t n = 0;; ++n) {
    fuzz_check(n <= sql.size(), "more tokens than bytes");
    const auto t = lex.next();
    const auto start = static_cast<std::size_t>(t.text.data() - sql.data());
    fuzz_check(start >= at && start + t.text.size() <= sql.size(), "token outside the text or out of order");
    for (std::size_t i = at; i < start; ++i) fuzz_check(is_space(sql[i]), "a byte skipped that is not whitespace");
    at = start + t.text.size();
    fuzz_check(lex.position() == at, "position is not the end of the last token");
    if (t.kind == router::token_kind::end) {
      fuzz_check(t.text.empty() && at == sql.size(), "end before the end of the text");
      break;
    }
    fuzz_check(!t.text.empty(), "empty token");
    fuzz_check(t.terminated || at == sql.size(), "an unterminated token that does not run to the end");
  }
}

bool same_class(const router::statement_class& a, const router::statement_class& b) {
  return a.access == b.access && a.kind == b.kind && a.hint == b.hint && a.begins_transaction == b.begins_transaction &&
         a.begin_mode == b.begin_mode && a.set_mode == b.set_mode && a.ends_transaction == b.ends_transaction &&
         a.route == b.route && a.local == b.local && a.value == b.value && a.statements == b.statements;
}

std::string with_case(std::string_view s, bool upper) {
  std::string out(s);
  for (auto& c : out) {
    if (upper && c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    if (!upper && c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

}  // namespace

// Input: the text of a Query or Parse (any bytes; the relay hands over whatever the client sent).
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view sql(reinterpret_cast<const char*>(data), size);
  check_tokens(sql);

  const auto c = router::classify(sql);
  fuzz_check(same_class(c, router::classify(sql)), "classification is not deterministic");
  fuzz_check(!c.is_read() || c.statements > 0, "a read without a statement");
  fuzz_check(c.value.empty() || (c.value.data() >= sql.data() && c.value.data() + c.value.size() <= sql.data() + size),
             "value outside the text");
  if (c.kind == router::statement_kind::pgsluice_in_batch) {
    fuzz_check(c.statements > 1 && !c.is_read(), "a batch of one, or one that reads");
  } else if (c.kind != router::statement_kind::ordinary) {
    fuzz_check(c.statements == 1, "a pgsluice statement that is not alone");
  }

  // An empty comment in front changes nothing (but the value's address).
  const std::string commented = "/**/ " + std::string(sql);
  auto d = router::classify(commented);
  fuzz_check(d.value.size() == c.value.size(), "a leading comment changed the value");
  d.value = c.value;
  fuzz_check(same_class(c, d), "a leading comment changed the classification");

  // Keywords, function names and the lexer's prefixes are case-insensitive; so is the answer
  // (dollar-quote tags are not: `$a$ $A$ $a$` is one string, and not once upper-cased).
  for (const bool upper : {true, false}) {
    if (sql.find('$') != std::string_view::npos) break;
    const auto e = router::classify(with_case(sql, upper));
    fuzz_check(e.access == c.access && e.kind == c.kind && e.statements == c.statements && e.hint == c.hint,
               "the classification depends on case");
  }

  // With write_functions configured, a read can only become a write, never the other way.
  router::classify_options opts;
  opts.write_functions = {"f", "s.g"};
  const auto w = router::classify(sql, opts);
  fuzz_check(c.is_read() || !w.is_read(), "a configured write function made a write a read");
  return 0;
}

// Read/write classification of SQL text over the lexer's tokens (see classify.hpp).
#include "router/classify.hpp"

#include <array>

#include "router/lexer.hpp"

namespace pgsluice::router {
namespace {

// The keywords the classification looks at.
enum class kw : std::uint8_t {
  none, abort, analyse, analyze, and_, begin, chain, characteristics, commit, default_, delete_, end,
  execute, explain, for_, insert, into, key, local, merge, no, only, prepare, prepared, read, release,
  reset, rollback, savepoint, select, session, set, share, show, start, table, to, transaction, update,
  values, verbose, with, work, write,
};

struct keyword_entry {
  std::string_view text;
  kw k;
};

// Sorted by length, so that a lookup only compares the words of the token's length.
constexpr keyword_entry keywords[] = {
    {"no", kw::no},         {"to", kw::to},
    {"and", kw::and_},      {"end", kw::end},         {"for", kw::for_},          {"key", kw::key},
    {"set", kw::set},
    {"into", kw::into},     {"only", kw::only},       {"read", kw::read},         {"show", kw::show},
    {"with", kw::with},     {"work", kw::work},
    {"abort", kw::abort},   {"begin", kw::begin},     {"chain", kw::chain},       {"local", kw::local},
    {"merge", kw::merge},   {"reset", kw::reset},     {"share", kw::share},       {"start", kw::start},
    {"table", kw::table},   {"write", kw::write},
    {"commit", kw::commit}, {"delete", kw::delete_},  {"insert", kw::insert},     {"select", kw::select},
    {"update", kw::update}, {"values", kw::values},
    {"analyse", kw::analyse}, {"analyze", kw::analyze}, {"default", kw::default_}, {"execute", kw::execute},
    {"explain", kw::explain}, {"prepare", kw::prepare}, {"release", kw::release}, {"session", kw::session},
    {"verbose", kw::verbose},
    {"prepared", kw::prepared}, {"rollback", kw::rollback},
    {"savepoint", kw::savepoint},
    {"transaction", kw::transaction},
    {"characteristics", kw::characteristics},
};
constexpr std::size_t max_keyword = 15;
static_assert([] {
  for (std::size_t i = 1; i < std::size(keywords); ++i) {
    if (keywords[i].text.size() < keywords[i - 1].text.size()) return false;
  }
  return keywords[std::size(keywords) - 1].text.size() == max_keyword;
}());

// first_of_length[n] is the index of the first keyword of length >= n.
constexpr auto first_of_length = [] {
  std::array<std::size_t, max_keyword + 2> first{};
  for (std::size_t n = 0; n < first.size(); ++n) {
    std::size_t i = 0;
    while (i < std::size(keywords) && keywords[i].text.size() < n) ++i;
    first[n] = i;
  }
  return first;
}();

kw keyword_of(const token& t) noexcept {
  const std::size_t n = t.text.size();
  if (t.kind != token_kind::identifier || n < 2 || n > max_keyword) return kw::none;
  const char* w = t.text.data();
  const char first = static_cast<char>(w[0] | 0x20);  // ASCII lower case (a non-letter will not match)
  for (std::size_t i = first_of_length[n]; i < first_of_length[n + 1]; ++i) {
    const std::string_view kwd = keywords[i].text;
    if (kwd[0] != first) continue;
    std::size_t j = 1;
    while (j < n && static_cast<char>(w[j] | 0x20) == kwd[j]) ++j;
    if (j == n) return keywords[i].k;
  }
  return kw::none;
}

bool istarts_with(std::string_view word, std::string_view lower_prefix) noexcept {
  return word.size() >= lower_prefix.size() && iequals_keyword(word.substr(0, lower_prefix.size()), lower_prefix);
}

constexpr std::string_view builtin_write_functions[] = {
    "nextval", "setval", "currval", "lastval", "lowrite", "txid_current", "pg_current_xact_id", "pg_notify",
    "set_config", "pg_switch_wal", "pg_create_restore_point", "pg_terminate_backend", "pg_cancel_backend",
    "pg_reload_conf", "pg_promote", "pg_logical_emit_message", "pg_create_physical_replication_slot",
    "pg_create_logical_replication_slot", "pg_drop_replication_slot", "pg_copy_physical_replication_slot",
    "pg_copy_logical_replication_slot", "pg_replication_slot_advance",
};
// Families: every large-object function, every advisory lock and unlock, every statistics reset.
constexpr std::string_view builtin_write_prefixes[] = {"lo_", "pg_advisory_", "pg_try_advisory_", "pg_stat_reset"};

bool is_name_token(const token& t) noexcept {
  return t.kind == token_kind::identifier || t.kind == token_kind::quoted_identifier;
}

// The name a token spells (a quoted identifier without its quotes).
std::string_view name_of(const token& t) noexcept {
  return t.kind == token_kind::quoted_identifier ? token_body(t) : t.text;
}

// `name(` called, `schema` its qualifier or null.
bool is_write_function(const token& name_token, const token* schema_token, const classify_options& opts) noexcept {
  // U&"..." only the server decodes: it may spell any of the names below.
  if (name_token.kind == token_kind::quoted_identifier && name_token.text[0] != '"') return true;
  const std::string_view name = name_of(name_token);
  for (const auto f : builtin_write_functions) {
    if (iequals_keyword(name, f)) return true;
  }
  for (const auto p : builtin_write_prefixes) {
    if (istarts_with(name, p)) return true;
  }
  const std::string_view schema = schema_token != nullptr ? name_of(*schema_token) : std::string_view{};
  for (const std::string& entry : opts.write_functions) {
    const std::string_view e = entry;
    const auto dot = e.rfind('.');
    if (dot == std::string_view::npos) {
      if (iequals(name, e)) return true;
    } else if (iequals(name, e.substr(dot + 1)) && (schema_token == nullptr || iequals(schema, e.substr(0, dot)))) {
      return true;
    }
  }
  return false;
}

// parse_bool of the server (src/backend/utils/adt/bool.c): true/false/yes/no and their
// prefixes, on/off, 1/0. unspecified when the value is none of these.
access_mode read_only_value(std::string_view v) noexcept {
  if (v.empty()) return access_mode::unspecified;
  auto prefix_of = [&](std::string_view word) { return v.size() <= word.size() && iequals_keyword(v, word.substr(0, v.size())); };
  if (v == "1" || prefix_of("true") || prefix_of("yes") || iequals_keyword(v, "on")) return access_mode::read_only;
  if (v == "0" || prefix_of("false") || prefix_of("no") || (v.size() >= 2 && prefix_of("off")))
    return access_mode::read_write;
  return access_mode::unspecified;
}

std::string_view trim(std::string_view s) noexcept {
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; };
  while (!s.empty() && space(s.front())) s.remove_prefix(1);
  while (!s.empty() && space(s.back())) s.remove_suffix(1);
  return s;
}

// `pgsluice: primary` or `pgsluice: replica` in a comment's body.
comment_hint hint_of(const token& comment) noexcept {
  if (!comment.terminated) return comment_hint::none;
  std::string_view s = trim(token_body(comment));
  if (!istarts_with(s, "pgsluice")) return comment_hint::none;
  s = trim(s.substr(8));
  if (s.empty() || s.front() != ':') return comment_hint::none;
  s = trim(s.substr(1));
  if (iequals_keyword(s, "primary")) return comment_hint::primary;
  if (iequals_keyword(s, "replica")) return comment_hint::replica;
  return comment_hint::none;
}

// A significant token (not a comment) and the keyword it is, if any. Filled in place from the
// token's fields (set) and never copied whole while fresh: the token was just stored by
// lexer::next, and a wide load of those narrower stores misses store-to-load forwarding and
// stalls, on every token.
struct sig {
  const char* p = nullptr;
  std::size_t n = 0;
  token_kind kind = token_kind::end;
  kw k = kw::none;

  void set(const token& t, kw keyword) noexcept {
    p = t.text.data();
    n = t.text.size();
    kind = t.kind;
    k = keyword;
  }
  token tok() const noexcept { return {kind, std::string_view(p, n), true}; }
  std::string_view text() const noexcept { return {p, n}; }
  bool is(char c) const noexcept { return tok().is(c); }
};

// What one statement is, before the statements of a text are combined.
struct statement_result {
  enum class effect : std::uint8_t { empty, read, write, neutral } access = effect::empty;
  statement_kind kind = statement_kind::ordinary;
  bool begins = false;
  access_mode begin_mode = access_mode::unspecified;
  access_mode set_mode = access_mode::unspecified;
  access_mode declared = access_mode::unspecified;  // BEGIN / SET TRANSACTION mode, which can decide a text
  bool ends = false;
  route_value route = route_value::automatic;
  bool local = false;
  std::string_view value;
};
using effect = statement_result::effect;

// Reads the tokens of one statement and decides what it is at its end. The first words (of
// the statement, or of the one EXPLAIN runs) are kept; beyond them only the flags a read could
// lose its status by are tracked, and nothing at all once the statement is known to be a write.
class statement_scan {
 public:
  explicit statement_scan(const classify_options& opts) noexcept : opts_(&opts) {}

  void feed(const token& t) noexcept {
    ++count_;
    last_end_ = t.text.data() + t.text.size();
    if (!relevant_) return;
    const kw k = t.kind == token_kind::identifier ? keyword_of(t) : kw::none;
    sig& s = last_[at_ % last_.size()];
    s.set(t, k);
    if (n_ == 0 && head_token(s)) {
      // a leading `(` or part of EXPLAIN's options: not a word of the statement proper
    } else if (n_ < head_.size()) {
      head_[n_++].set(t, k);
      if (n_ == 1) relevant_ = verb_matters(k);
    }
    track(s);
    ++at_;
  }

  statement_result finish() const noexcept;

 private:
  // Tokens before the statement's first word: leading parentheses, EXPLAIN and its options.
  // Returns true when `s` was one of them.
  bool head_token(const sig& s) noexcept {
    switch (explain_) {
      case explain_state::none:
        if (s.is('(')) return true;
        if (s.k == kw::explain) {
          explain_ = explain_state::after_explain;
          return true;
        }
        return false;
      case explain_state::after_explain:
        if (s.is('(')) {
          explain_ = explain_state::options;
          depth_ = 1;
          expect_option_ = true;
          return true;
        }
        if (s.k == kw::analyze || s.k == kw::analyse) {
          analyze_ = true;
          explain_ = explain_state::after_analyze;
          return true;
        }
        explain_ = explain_state::statement;
        return s.k == kw::verbose;
      case explain_state::after_analyze:
        explain_ = explain_state::statement;
        return s.k == kw::verbose;
      case explain_state::options:
        option(s);
        return true;
      case explain_state::statement:
        return s.is('(');
    }
    return false;
  }

  // One token of EXPLAIN ( option [value], ... ): ANALYZE is on unless its value is false.
  void option(const sig& s) noexcept {
    if (s.is('(')) {
      ++depth_;
    } else if (s.is(')')) {
      if (--depth_ == 0) explain_ = explain_state::statement;
    } else if (depth_ == 1 && s.is(',')) {
      expect_option_ = true;
      return;
    } else if (depth_ == 1 && expect_option_) {
      option_is_analyze_ = s.k == kw::analyze || s.k == kw::analyse;
      if (option_is_analyze_) analyze_ = true;
    } else if (depth_ == 1 && option_is_analyze_) {
      if (read_only_value(s.kind == token_kind::string ? token_body(s.tok()) : s.text()) == access_mode::read_write)
        analyze_ = false;
      option_is_analyze_ = false;
    }
    expect_option_ = false;
  }

  // Whether anything after the first word can change the answer; for INSERT, CREATE and
  // every other write it cannot.
  static bool verb_matters(kw k) noexcept {
    switch (k) {
      case kw::select: case kw::values: case kw::table: case kw::with: case kw::show:
      case kw::begin: case kw::start: case kw::commit: case kw::end: case kw::abort: case kw::rollback:
      case kw::savepoint: case kw::release: case kw::prepare: case kw::set: case kw::reset:
        return true;
      default:
        return false;
    }
  }

  // The token `back` places before the current one.
  const sig& prev(std::size_t back) const noexcept { return last_[(at_ - back) % last_.size()]; }

  void track(const sig& s) noexcept {
    const sig& prev_ = prev(1);
    const sig& prev2_ = prev(2);
    const sig& prev3_ = prev(3);
    if (s.is('(')) {
      if (is_name_token(prev_.tok())) {
        const token schema = prev3_.tok();
        const bool qualified = prev2_.is('.') && is_name_token(schema);
        if (is_write_function(prev_.tok(), qualified ? &schema : nullptr, *opts_)) writes_ = true;
      }
      return;
    }
    switch (s.k) {
      case kw::update:
        if (prev_.k == kw::for_ || (prev_.k == kw::key && prev2_.k == kw::no && prev3_.k == kw::for_)) writes_ = true;
        [[fallthrough]];
      case kw::insert: case kw::delete_: case kw::merge:
        // `AS (DELETE ...)` in a CTE, or the statement after a CTE list: `WITH ... ) INSERT`.
        if (prev_.is('(') || prev_.is(')')) writes_ = true;
        break;
      case kw::share:
        if (prev_.k == kw::for_ || (prev_.k == kw::key && prev2_.k == kw::for_)) writes_ = true;
        break;
      case kw::into: writes_ = true; break;
      case kw::only: if (prev_.k == kw::read) read_only_ = true; break;
      case kw::write: if (prev_.k == kw::read) read_write_ = true; break;
      case kw::chain: if (prev_.k == kw::and_) chain_ = true; break;
      default: break;
    }
  }

  // For SET / RESET / SHOW: a `pgsluice . name` at head_[p]; the name, or empty.
  std::string_view pgsluice_name(std::size_t p) const noexcept {
    if (p + 2 >= n_ || !is_name_token(head_[p].tok()) || !head_[p + 1].is('.') || !is_name_token(head_[p + 2].tok()))
      return {};
    if (!iequals_keyword(name_of(head_[p].tok()), "pgsluice")) return {};
    return name_of(head_[p + 2].tok());
  }

  statement_result read_class() const noexcept {
    statement_result r;
    r.access = writes_ ? effect::write : effect::read;
    return r;
  }
  statement_result set_statement() const noexcept;
  statement_result show_or_reset(bool show) const noexcept;
  statement_result transaction_end() const noexcept {
    statement_result r;
    r.access = effect::neutral;
    r.ends = true;
    r.begins = chain_;
    return r;
  }
  access_mode mode_given() const noexcept {
    return read_write_ ? access_mode::read_write : read_only_ ? access_mode::read_only : access_mode::unspecified;
  }

  enum class explain_state : std::uint8_t { none, after_explain, after_analyze, options, statement };

  const classify_options* opts_;
  std::array<sig, 8> head_{};
  std::size_t n_ = 0;       // words in head_
  std::size_t count_ = 0;   // significant tokens in the statement
  const char* last_end_ = nullptr;
  bool relevant_ = true;
  explain_state explain_ = explain_state::none;
  bool analyze_ = false;
  int depth_ = 0;
  bool expect_option_ = false;
  bool option_is_analyze_ = false;
  std::array<sig, 4> last_{};  // the last tokens, the current one at at_ (mod 4)
  std::size_t at_ = 0;
  bool writes_ = false;  // a lock clause, INTO, a data-modifying CTE or a writing function
  bool read_only_ = false, read_write_ = false, chain_ = false;
};

statement_result statement_scan::finish() const noexcept {
  statement_result r;
  if (count_ == 0) return r;
  r.access = effect::write;
  if (n_ == 0) return r;
  const kw verb = head_[0].k;
  auto word = [&](std::size_t i) { return i < n_ ? head_[i].k : kw::none; };

  if (explain_ != explain_state::none) {
    if (verb == kw::execute) return r;  // the prepared statement is on the client's server
    if (!analyze_) {
      r.access = effect::read;
      return r;
    }
    if (verb == kw::select || verb == kw::values || verb == kw::table || verb == kw::with) return read_class();
    return r;
  }
  switch (verb) {
    case kw::select: case kw::values: case kw::table: case kw::with:
      return read_class();
    case kw::show:
      return show_or_reset(true);
    case kw::set:
      return set_statement();
    case kw::reset:
      return show_or_reset(false);
    case kw::begin:
      r.access = effect::neutral;
      r.begins = true;
      r.begin_mode = r.declared = mode_given();
      return r;
    case kw::start:
      if (word(1) != kw::transaction) return r;
      r.access = effect::neutral;
      r.begins = true;
      r.begin_mode = r.declared = mode_given();
      return r;
    case kw::commit:
      if (word(1) == kw::prepared) {
        r.ends = true;  // two-phase commit: primary only
        return r;
      }
      return transaction_end();
    case kw::end: case kw::abort:
      return transaction_end();
    case kw::rollback: {
      if (word(1) == kw::prepared) {
        r.ends = true;
        return r;
      }
      const std::size_t to = (word(1) == kw::work || word(1) == kw::transaction) ? 2 : 1;
      if (word(to) == kw::to) {  // ROLLBACK TO SAVEPOINT: the transaction goes on
        r.access = effect::neutral;
        return r;
      }
      return transaction_end();
    }
    case kw::savepoint: case kw::release:
      r.access = effect::neutral;
      return r;
    case kw::prepare:
      r.ends = word(1) == kw::transaction;
      return r;
    default:
      return r;
  }
}

// What SHOW (show) or SET/RESET of pgsluice.<name> is; an unknown name is the value.
void own_setting(std::string_view name, bool show, statement_result& r) noexcept {
  if (show && iequals_keyword(name, "last_write_lsn")) {
    r.kind = statement_kind::show_last_write_lsn;
  } else if (!show && iequals_keyword(name, "route")) {
    r.kind = statement_kind::route_set;
  } else if (!show && iequals_keyword(name, "min_lsn")) {
    r.kind = statement_kind::set_min_lsn;
  } else {
    r.kind = statement_kind::unknown_pgsluice_name;
    r.value = name;
  }
}

// SHOW pgsluice.name and RESET pgsluice.name; anything after the name goes to the server, which
// reports the syntax error.
statement_result statement_scan::show_or_reset(bool show) const noexcept {
  statement_result r;
  r.access = show ? effect::read : effect::write;
  const std::string_view name = pgsluice_name(1);
  if (!name.empty() && count_ == 4) own_setting(name, show, r);
  return r;
}

// SET [LOCAL | SESSION] name {= | TO} value, SET TRANSACTION ..., SET SESSION CHARACTERISTICS ...
statement_result statement_scan::set_statement() const noexcept {
  statement_result r;
  r.access = effect::write;
  auto word = [&](std::size_t i) { return i < n_ ? head_[i].k : kw::none; };
  if (word(1) == kw::transaction) {
    r.access = effect::neutral;
    r.set_mode = r.declared = mode_given();
    return r;
  }
  if (word(1) == kw::session && word(2) == kw::characteristics) {
    r.set_mode = mode_given();
    return r;
  }
  std::size_t p = 1;
  if (word(1) == kw::local || word(1) == kw::session) {
    r.local = word(1) == kw::local;
    p = 2;
  }
  // The value: the tokens after `=` or TO; a malformed SET goes to the server, which reports it.
  auto value_at = [&](std::size_t i) -> const sig* {
    if (i >= n_ || !(head_[i - 1].is('=') || head_[i - 1].k == kw::to)) return nullptr;
    return &head_[i];
  };
  const std::string_view name = pgsluice_name(p);
  if (!name.empty()) {
    const sig* v = value_at(p + 4);
    if (v == nullptr) return r;
    const bool single = count_ == p + 5;
    own_setting(name, false, r);
    if (r.kind == statement_kind::route_set) {
      const std::string_view text = v->kind == token_kind::string ? token_body(v->tok()) : v->text();
      const bool word_or_string = v->kind == token_kind::identifier || v->kind == token_kind::string;
      if (!single || !word_or_string) {
        r.route = route_value::invalid;
      } else if (iequals_keyword(text, "primary")) {
        r.route = route_value::primary;
      } else if (iequals_keyword(text, "replica")) {
        r.route = route_value::replica;
      } else if (iequals_keyword(text, "auto") || v->k == kw::default_) {
        r.route = route_value::automatic;
      } else {
        r.route = route_value::invalid;
      }
    } else if (r.kind == statement_kind::set_min_lsn) {
      r.value = single && v->kind == token_kind::string ? token_body(v->tok())
                                                        : std::string_view(v->p, static_cast<std::size_t>(last_end_ - v->p));
    }
    return r;
  }
  if (p < n_ && is_name_token(head_[p].tok()) && iequals_keyword(name_of(head_[p].tok()), "default_transaction_read_only")) {
    if (const sig* v = value_at(p + 2); v != nullptr && count_ == p + 3) {
      r.set_mode = read_only_value(v->kind == token_kind::string ? token_body(v->tok()) : v->text());
    }
  }
  return r;
}

}  // namespace

std::string_view to_string(statement_access a) noexcept { return a == statement_access::read ? "read" : "write"; }

std::string_view to_string(statement_kind k) noexcept {
  switch (k) {
    case statement_kind::ordinary: return "ordinary";
    case statement_kind::route_set: return "route_set";
    case statement_kind::show_last_write_lsn: return "show_last_write_lsn";
    case statement_kind::set_min_lsn: return "set_min_lsn";
    case statement_kind::unknown_pgsluice_name: return "unknown_pgsluice_name";
    case statement_kind::pgsluice_in_batch: return "pgsluice_in_batch";
  }
  return "?";
}

std::string_view to_string(access_mode m) noexcept {
  switch (m) {
    case access_mode::unspecified: return "unspecified";
    case access_mode::read_only: return "read_only";
    case access_mode::read_write: return "read_write";
  }
  return "?";
}

std::string_view to_string(comment_hint h) noexcept {
  switch (h) {
    case comment_hint::none: return "none";
    case comment_hint::primary: return "primary";
    case comment_hint::replica: return "replica";
  }
  return "?";
}

std::string_view to_string(route_value v) noexcept {
  switch (v) {
    case route_value::automatic: return "auto";
    case route_value::primary: return "primary";
    case route_value::replica: return "replica";
    case route_value::invalid: return "invalid";
  }
  return "?";
}

statement_class classify(std::string_view sql) noexcept {
  static const classify_options defaults;
  return classify(sql, defaults);
}

statement_class classify(std::string_view sql, const classify_options& opts) noexcept {
  statement_class out;
  lexer lex(sql, lexer_options{opts.standard_conforming_strings});
  bool leading = true;  // before the first significant token: comments there may hold a hint
  bool unterminated = false;
  bool any_read = false, any_write = false;
  access_mode declared = access_mode::unspecified;
  std::size_t ours = 0;  // pgsluice's own statements
  statement_result special;

  auto add = [&](const statement_result& s) {
    if (s.access == effect::empty) return;
    ++out.statements;
    any_read = any_read || s.access == effect::read;
    any_write = any_write || s.access == effect::write;
    if (s.begins) {
      out.begins_transaction = true;
      out.begin_mode = s.begin_mode;
    }
    if (s.set_mode != access_mode::unspecified) out.set_mode = s.set_mode;
    if (s.declared != access_mode::unspecified) declared = s.declared;
    out.ends_transaction = out.ends_transaction || s.ends;
    if (s.kind != statement_kind::ordinary) {
      ++ours;
      special = s;
    }
  };

  statement_scan stmt(opts);
  for (;;) {
    const token t = lex.next();
    unterminated = unterminated || !t.terminated;
    if (t.kind == token_kind::end) break;
    if (t.kind == token_kind::comment) {
      if (leading && out.hint == comment_hint::none) out.hint = hint_of(t);
      continue;
    }
    leading = false;
    if (t.is(';')) {
      add(stmt.finish());
      stmt = statement_scan(opts);
      continue;
    }
    stmt.feed(t);
  }
  add(stmt.finish());

  if (any_write || unterminated || declared == access_mode::read_write) {
    out.access = statement_access::write;
  } else if (any_read || declared == access_mode::read_only) {
    out.access = statement_access::read;
  }
  if (ours > 0 && out.statements > 1) {
    out.kind = statement_kind::pgsluice_in_batch;
    out.access = statement_access::write;
  } else if (ours > 0) {
    out.kind = special.kind;
    out.route = special.route;
    out.local = special.local;
    out.value = special.value;
  }
  return out;
}

}  // namespace pgsluice::router

// pgbench-style script compiler and evaluator: expressions, \set, and :var parameters in SQL commands.
#include "bench/script.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <utility>

namespace pgsluice::bench {

std::string script_value::to_string() const {
  if (!is_double) return std::to_string(i);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", d);
  return buf;
}

namespace {

enum class node_kind : std::uint8_t { constant, variable, negate, add, sub, mul, div, mod, call };
enum class function_id : std::uint8_t { random, random_zipfian, random_exponential, abs, least, greatest, to_int, to_double };

struct node {
  node_kind kind = node_kind::constant;
  function_id function = function_id::random;
  script_value value;
  int slot = -1;                 // variable
  std::vector<int> children;
};

// Names of variables -> slots, shared by a script's expressions and SQL commands.
struct symbol_table {
  std::map<std::string, int> slots;
  std::vector<script_value> initial;
  int slot_of(const std::string& name) const {
    auto it = slots.find(name);
    return it == slots.end() ? -1 : it->second;
  }
  int define(const std::string& name) {
    auto [it, inserted] = slots.emplace(name, static_cast<int>(initial.size()));
    if (inserted) initial.emplace_back();
    return it->second;
  }
};

bool ident_start(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool ident_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// Recursive-descent parser for pgbench expressions.
class expression_parser {
 public:
  expression_parser(std::string_view text, const symbol_table& symbols, std::vector<node>& nodes,
                    std::string_view where)
      : text_(text), symbols_(symbols), nodes_(nodes), where_(where) {}

  int parse() {
    const int root = parse_sum();
    skip_space();
    if (pos_ != text_.size()) fail("unexpected '" + std::string(text_.substr(pos_, 10)) + "'");
    return root;
  }

 private:
  [[noreturn]] void fail(const std::string& message) const {
    throw script_error(std::string(where_) + ": " + message + " in expression \"" + std::string(text_) + "\"");
  }
  void skip_space() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
  }
  bool accept(char c) {
    skip_space();
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  int add_node(node n) {
    nodes_.push_back(std::move(n));
    return static_cast<int>(nodes_.size() - 1);
  }
  int binary(node_kind kind, int left, int right) {
    node n;
    n.kind = kind;
    n.children = {left, right};
    return add_node(std::move(n));
  }

  int parse_sum() {
    int left = parse_product();
    for (;;) {
      if (accept('+')) left = binary(node_kind::add, left, parse_product());
      else if (accept('-')) left = binary(node_kind::sub, left, parse_product());
      else return left;
    }
  }

  int parse_product() {
    int left = parse_unary();
    for (;;) {
      if (accept('*')) left = binary(node_kind::mul, left, parse_unary());
      else if (accept('/')) left = binary(node_kind::div, left, parse_unary());
      else if (accept('%')) left = binary(node_kind::mod, left, parse_unary());
      else return left;
    }
  }

  int parse_unary() {
    if (accept('-')) {
      node n;
      n.kind = node_kind::negate;
      n.children = {parse_unary()};
      return add_node(std::move(n));
    }
    if (accept('+')) return parse_unary();
    return parse_primary();
  }

  int parse_primary() {
    skip_space();
    if (pos_ >= text_.size()) fail("expression ends too early");
    const char c = text_[pos_];
    if (c == '(') {
      ++pos_;
      const int inner = parse_sum();
      if (!accept(')')) fail("missing ')'");
      return inner;
    }
    if (c == ':') {
      ++pos_;
      const std::string name = read_identifier();
      if (name.empty()) fail("':' not followed by a variable name");
      const int slot = symbols_.slot_of(name);
      if (slot < 0) fail("undefined variable :" + name);
      node n;
      n.kind = node_kind::variable;
      n.slot = slot;
      return add_node(std::move(n));
    }
    if (std::isdigit(static_cast<unsigned char>(c)) || c == '.') return parse_number();
    if (ident_start(c)) return parse_call();
    fail(std::string("unexpected '") + c + "'");
  }

  std::string read_identifier() {
    const std::size_t start = pos_;
    if (pos_ < text_.size() && ident_start(text_[pos_]))
      while (pos_ < text_.size() && ident_char(text_[pos_])) ++pos_;
    return std::string(text_.substr(start, pos_ - start));
  }

  int parse_number() {
    const std::size_t start = pos_;
    bool is_double = false;
    while (pos_ < text_.size() && (std::isdigit(static_cast<unsigned char>(text_[pos_])) || text_[pos_] == '.')) {
      is_double |= text_[pos_] == '.';
      ++pos_;
    }
    if (pos_ < text_.size() && (text_[pos_] == 'e' || text_[pos_] == 'E')) {
      is_double = true;
      ++pos_;
      if (pos_ < text_.size() && (text_[pos_] == '+' || text_[pos_] == '-')) ++pos_;
      while (pos_ < text_.size() && std::isdigit(static_cast<unsigned char>(text_[pos_]))) ++pos_;
    }
    const std::string literal(text_.substr(start, pos_ - start));
    node n;
    try {
      if (is_double) {
        n.value.is_double = true;
        n.value.d = std::stod(literal);
      } else {
        n.value.i = std::stoll(literal);
      }
    } catch (const std::exception&) {
      fail("bad number '" + literal + "'");
    }
    return add_node(std::move(n));
  }

  int parse_call() {
    const std::string name = read_identifier();
    struct fn {
      const char* name;
      function_id id;
      int min_args, max_args;
    };
    static constexpr fn functions[] = {
        {"random", function_id::random, 2, 2},
        {"random_zipfian", function_id::random_zipfian, 3, 3},
        {"random_exponential", function_id::random_exponential, 3, 3},
        {"abs", function_id::abs, 1, 1},
        {"least", function_id::least, 1, 64},
        {"greatest", function_id::greatest, 1, 64},
        {"int", function_id::to_int, 1, 1},
        {"double", function_id::to_double, 1, 1},
    };
    const fn* found = nullptr;
    for (const fn& f : functions)
      if (name == f.name) found = &f;
    if (!found) fail("unknown function " + name + "()");
    if (!accept('(')) fail("missing '(' after " + name);
    node n;
    n.kind = node_kind::call;
    n.function = found->id;
    if (!accept(')')) {
      do n.children.push_back(parse_sum());
      while (accept(','));
      if (!accept(')')) fail("missing ')' after the arguments of " + name + "()");
    }
    const int argc = static_cast<int>(n.children.size());
    if (argc < found->min_args || argc > found->max_args) fail("wrong number of arguments to " + name + "()");
    return add_node(std::move(n));
  }

  std::string_view text_;
  const symbol_table& symbols_;
  std::vector<node>& nodes_;
  std::string_view where_;
  std::size_t pos_ = 0;
};

script_value make_int(std::int64_t v) {
  script_value out;
  out.i = v;
  return out;
}
script_value make_double(double v) {
  script_value out;
  out.is_double = true;
  out.d = v;
  return out;
}

// Evaluation never throws: it runs on the load generator's threads. Division by
// zero yields 0 (pgbench would abort that client); ranges with hi < lo yield lo.
script_value evaluate(const std::vector<node>& nodes, int index, const std::vector<script_value>& slots, rng& r) {
  const node& n = nodes[static_cast<std::size_t>(index)];
  auto arg = [&](std::size_t k) { return evaluate(nodes, n.children[k], slots, r); };
  switch (n.kind) {
    case node_kind::constant: return n.value;
    case node_kind::variable: return slots[static_cast<std::size_t>(n.slot)];
    case node_kind::negate: {
      const script_value v = arg(0);
      return v.is_double ? make_double(-v.d) : make_int(-v.i);
    }
    case node_kind::add:
    case node_kind::sub:
    case node_kind::mul:
    case node_kind::div:
    case node_kind::mod: {
      const script_value a = arg(0), b = arg(1);
      if (n.kind != node_kind::mod && (a.is_double || b.is_double)) {
        const double x = a.as_double(), y = b.as_double();
        switch (n.kind) {
          case node_kind::add: return make_double(x + y);
          case node_kind::sub: return make_double(x - y);
          case node_kind::mul: return make_double(x * y);
          default: return make_double(y == 0 ? 0 : x / y);
        }
      }
      const std::int64_t x = a.as_int(), y = b.as_int();
      switch (n.kind) {
        case node_kind::add: return make_int(x + y);
        case node_kind::sub: return make_int(x - y);
        case node_kind::mul: return make_int(x * y);
        case node_kind::div: return make_int(y == 0 ? 0 : x / y);
        default: return make_int(y == 0 ? 0 : x % y);
      }
    }
    case node_kind::call: break;
  }
  switch (n.function) {
    case function_id::random: return make_int(r.uniform(arg(0).as_int(), arg(1).as_int()));
    case function_id::random_zipfian: {
      const std::int64_t lo = arg(0).as_int(), hi = arg(1).as_int();
      if (hi <= lo) return make_int(lo);
      const zipf_sampler z(static_cast<std::uint64_t>(hi - lo) + 1, arg(2).as_double());
      return make_int(lo + static_cast<std::int64_t>(z(r)) - 1);
    }
    case function_id::random_exponential: {
      // pgbench: lo + floor(-log(u) / p * (hi-lo+1)) truncated to the range.
      const std::int64_t lo = arg(0).as_int(), hi = arg(1).as_int();
      const double p = arg(2).as_double();
      if (hi <= lo || p <= 0) return make_int(lo);
      const double cut = std::exp(-p);
      const double u = 1.0 - r.unit();
      const double rand = -std::log(cut + (1.0 - cut) * u) / p;
      return make_int(lo + static_cast<std::int64_t>(static_cast<double>(hi - lo + 1) * rand));
    }
    case function_id::abs: {
      const script_value v = arg(0);
      return v.is_double ? make_double(std::fabs(v.d)) : make_int(v.i < 0 ? -v.i : v.i);
    }
    case function_id::least:
    case function_id::greatest: {
      script_value best = arg(0);
      for (std::size_t k = 1; k < n.children.size(); ++k) {
        const script_value v = arg(k);
        const bool better = n.function == function_id::least ? v.as_double() < best.as_double()
                                                             : v.as_double() > best.as_double();
        if (better) best = v;
      }
      return best;
    }
    case function_id::to_int: return make_int(arg(0).as_int());
    case function_id::to_double: return make_double(arg(0).as_double());
  }
  return make_int(0);
}

std::string trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return std::string(s);
}

}  // namespace

class compiled_script {
 public:
  struct step {
    bool is_set = false;
    int slot = -1;            // \set target
    int expression = -1;      // \set root node
    std::uint32_t statement = 0;
    std::vector<int> params;  // SQL: slots bound as $1..$n
  };

  std::vector<node> nodes;
  std::vector<step> steps;
  std::vector<script_value> initial;

  void run(rng& r, transaction& out) const {
    thread_local std::vector<script_value> slots;
    slots.assign(initial.begin(), initial.end());
    for (const step& s : steps) {
      if (s.is_set) {
        slots[static_cast<std::size_t>(s.slot)] = evaluate(nodes, s.expression, slots, r);
        continue;
      }
      command& c = out.add(s.statement, s.params.size());
      for (std::size_t k = 0; k < s.params.size(); ++k) c.params[k] = slots[static_cast<std::size_t>(s.params[k])].to_string();
    }
  }
};

script_workload::script_workload() = default;
script_workload::~script_workload() = default;
script_workload::script_workload(script_workload&&) noexcept = default;
script_workload& script_workload::operator=(script_workload&&) noexcept = default;

namespace {

// Rewrites :name references to $n (outside quotes, comments and :: casts).
std::string bind_variables(const std::string& sql, const symbol_table& symbols, std::vector<int>& params,
                           const std::string& where) {
  std::string out;
  out.reserve(sql.size());
  std::size_t i = 0;
  while (i < sql.size()) {
    const char c = sql[i];
    if (c == '\'' || c == '"') {
      const std::size_t end = sql.find(c, i + 1);
      const std::size_t stop = end == std::string::npos ? sql.size() : end + 1;
      out.append(sql, i, stop - i);
      i = stop;
      continue;
    }
    if (c == '-' && i + 1 < sql.size() && sql[i + 1] == '-') {
      const std::size_t end = sql.find('\n', i);
      const std::size_t stop = end == std::string::npos ? sql.size() : end;
      out.append(sql, i, stop - i);
      i = stop;
      continue;
    }
    if (c == ':' && i + 1 < sql.size() && sql[i + 1] == ':') {
      out += "::";
      i += 2;
      continue;
    }
    if (c == ':' && i + 1 < sql.size() && ident_start(sql[i + 1])) {
      std::size_t j = i + 1;
      while (j < sql.size() && ident_char(sql[j])) ++j;
      const std::string name = sql.substr(i + 1, j - i - 1);
      const int slot = symbols.slot_of(name);
      if (slot < 0) throw script_error(where + ": undefined variable :" + name + " in SQL command");
      auto it = std::find(params.begin(), params.end(), slot);
      if (it == params.end()) {
        params.push_back(slot);
        it = params.end() - 1;
      }
      out += '$';
      out += std::to_string(it - params.begin() + 1);
      i = j;
      continue;
    }
    out += c;
    ++i;
  }
  return out;
}

}  // namespace

void script_workload::add_script(std::string_view name, std::string_view text, std::uint32_t weight,
                                 const std::map<std::string, std::int64_t>& variables) {
  auto script = std::make_unique<compiled_script>();
  symbol_table symbols;
  for (const auto& [k, v] : variables) symbols.initial[static_cast<std::size_t>(symbols.define(k))] = make_int(v);

  std::string pending_sql;
  std::size_t sql_line = 0;
  std::size_t line_no = 0;
  std::size_t pos = 0;
  auto where = [&](std::size_t line) { return std::string(name) + ":" + std::to_string(line); };

  auto flush_sql = [&](std::string sql, std::size_t line) {
    sql = trim(sql);
    if (sql.empty()) return;
    compiled_script::step s;
    statement_def def;
    def.sql = bind_variables(sql, symbols, s.params, where(line));
    def.param_count = static_cast<std::uint32_t>(s.params.size());
    s.statement = static_cast<std::uint32_t>(statements_.size());
    statements_.push_back(std::move(def));
    script->steps.push_back(std::move(s));
  };

  while (pos <= text.size()) {
    std::size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos) eol = text.size();
    std::string line(text.substr(pos, eol - pos));
    pos = eol + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const std::string trimmed = trim(line);

    if (pending_sql.empty() && !trimmed.empty() && trimmed[0] == '\\') {
      // Meta-command; a trailing backslash continues it on the next line.
      std::string meta = trimmed;
      const std::size_t first_line = line_no;
      while (!meta.empty() && meta.back() == '\\' && pos <= text.size()) {
        meta.pop_back();
        std::size_t next_eol = text.find('\n', pos);
        if (next_eol == std::string_view::npos) next_eol = text.size();
        meta += ' ' + trim(text.substr(pos, next_eol - pos));
        pos = next_eol + 1;
        ++line_no;
      }
      std::size_t k = 1;
      while (k < meta.size() && ident_char(meta[k])) ++k;
      const std::string command = meta.substr(1, k - 1);
      if (command != "set")
        throw script_error(where(first_line) + ": unsupported meta-command \\" + command + " (only \\set is supported)");
      std::size_t v = k;
      while (v < meta.size() && std::isspace(static_cast<unsigned char>(meta[v]))) ++v;
      std::size_t v_end = v;
      while (v_end < meta.size() && ident_char(meta[v_end])) ++v_end;
      const std::string variable = meta.substr(v, v_end - v);
      if (variable.empty() || !ident_start(variable[0])) throw script_error(where(first_line) + ": \\set needs a variable name");
      const std::string expression = trim(std::string_view(meta).substr(v_end));
      if (expression.empty()) throw script_error(where(first_line) + ": \\set " + variable + " needs an expression");
      compiled_script::step s;
      s.is_set = true;
      s.expression = expression_parser(expression, symbols, script->nodes, where(first_line)).parse();
      s.slot = symbols.define(variable);  // defined after parsing: "\set x :x + 1" needs x first
      script->steps.push_back(std::move(s));
      continue;
    }
    if (pending_sql.empty() && (trimmed.empty() || trimmed.rfind("--", 0) == 0)) continue;

    // SQL: accumulate until a semicolon outside quotes and comments.
    if (pending_sql.empty()) sql_line = line_no;
    char quote = 0;
    std::size_t start = 0;
    for (std::size_t i = 0; i < line.size(); ++i) {
      const char c = line[i];
      if (quote) {
        if (c == quote) quote = 0;
        continue;
      }
      if (c == '\'' || c == '"') quote = c;
      else if (c == '-' && i + 1 < line.size() && line[i + 1] == '-') break;
      else if (c == ';') {
        pending_sql += line.substr(start, i - start);
        flush_sql(std::move(pending_sql), sql_line);
        pending_sql.clear();
        start = i + 1;
        sql_line = line_no;
      }
    }
    if (start < line.size()) {
      const std::string rest = line.substr(start);
      if (!trim(rest).empty() || !pending_sql.empty()) pending_sql += rest + "\n";
    }
  }
  if (!trim(pending_sql).empty()) flush_sql(std::move(pending_sql), sql_line);  // last command may omit ';'
  if (std::none_of(script->steps.begin(), script->steps.end(), [](const auto& s) { return !s.is_set; }))
    throw script_error(std::string(name) + ": the script has no SQL command");

  script->initial = symbols.initial;
  scripts_.push_back(std::move(script));
  const std::uint32_t previous = cumulative_weights_.empty() ? 0 : cumulative_weights_.back();
  cumulative_weights_.push_back(previous + std::max<std::uint32_t>(weight, 1));
}

void script_workload::next(rng& r, transaction& out) const {
  if (scripts_.empty()) return;
  std::size_t chosen = 0;
  if (scripts_.size() > 1) {
    const auto pick = static_cast<std::uint32_t>(r.below(cumulative_weights_.back()));
    chosen = static_cast<std::size_t>(std::upper_bound(cumulative_weights_.begin(), cumulative_weights_.end(), pick) -
                                      cumulative_weights_.begin());
  }
  out.set_kind(static_cast<std::uint32_t>(chosen));
  scripts_[chosen]->run(r, out);
}

script_value evaluate_expression(std::string_view expression, const std::map<std::string, std::int64_t>& variables,
                                 rng& r) {
  symbol_table symbols;
  for (const auto& [k, v] : variables) symbols.initial[static_cast<std::size_t>(symbols.define(k))] = make_int(v);
  std::vector<node> nodes;
  const int root = expression_parser(expression, symbols, nodes, "expression").parse();
  return evaluate(nodes, root, symbols.initial, r);
}

}  // namespace pgsluice::bench

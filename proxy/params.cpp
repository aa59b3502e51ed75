// Session-parameter bookkeeping and the SET/RESET statement that reconciles a server with a client.
#include "proxy/params.hpp"

#include <algorithm>
#include <cctype>

#include "proxy/pinning.hpp"
#include "router/lexer.hpp"

namespace pgsluice::proxy {
namespace {

bool iequals(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

}  // namespace

const std::string* parameter_set::find(std::string_view name) const noexcept {
  for (const auto& [k, v] : items_) {
    if (iequals(k, name)) return &v;
  }
  return nullptr;
}

bool parameter_set::set(std::string_view name, std::string_view value) {
  for (auto& [k, v] : items_) {
    if (iequals(k, name)) {
      if (v == value) return false;
      v.assign(value);
      return true;
    }
  }
  items_.emplace_back(std::string(name), std::string(value));
  return true;
}

bool parameter_set::erase(std::string_view name) {
  auto it = std::find_if(items_.begin(), items_.end(), [&](const value_type& p) { return iequals(p.first, name); });
  if (it == items_.end()) return false;
  items_.erase(it);
  return true;
}

bool is_valid_setting_name(std::string_view name) noexcept {
  if (name.empty() || name.size() > 63 || std::isdigit(static_cast<unsigned char>(name[0]))) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.';
  });
}

std::string quote_literal(std::string_view value) {
  std::string out = "E'";
  for (char c : value) {
    if (c == '\'' || c == '\\') out += c;
    out += c;
  }
  out += '\'';
  return out;
}

std::optional<parameter_set> parse_startup_options(std::string_view options) {
  // pg_split_opts(): whitespace separates words, a backslash makes the next character literal.
  std::vector<std::string> words;
  std::string cur;
  bool in_word = false;
  for (std::size_t i = 0; i < options.size(); ++i) {
    const char c = options[i];
    if (std::isspace(static_cast<unsigned char>(c))) {
      if (in_word) words.push_back(std::move(cur));
      cur.clear();
      in_word = false;
      continue;
    }
    if (c == '\\' && i + 1 < options.size()) {
      cur += options[++i];
    } else {
      cur += c;
    }
    in_word = true;
  }
  if (in_word) words.push_back(std::move(cur));

  parameter_set out;
  auto add = [&](std::string_view assignment) {
    const auto eq = assignment.find('=');
    if (eq == std::string_view::npos || eq == 0) return false;
    std::string name(assignment.substr(0, eq));
    std::replace(name.begin(), name.end(), '-', '_');  // --search-path=x is search_path, as in PostgreSQL
    if (!is_valid_setting_name(name)) return false;
    out.set(name, assignment.substr(eq + 1));
    return true;
  };
  for (std::size_t i = 0; i < words.size(); ++i) {
    std::string_view w = words[i];
    if (w == "-c") {
      if (i + 1 >= words.size() || !add(words[++i])) return std::nullopt;
    } else if (w.starts_with("-c")) {
      if (!add(w.substr(2))) return std::nullopt;
    } else if (w.starts_with("--")) {
      if (!add(w.substr(2))) return std::nullopt;
    } else {
      return std::nullopt;
    }
  }
  return out;
}

std::optional<startup_error> sort_startup_parameters(
    const std::vector<std::pair<std::string_view, std::string_view>>& params, client_startup& out) {
  for (const auto& [name, value] : params) {
    if (name == "user") {
      out.user.assign(value);
    } else if (name == "database") {
      out.database.assign(value);
    } else if (name == "replication") {
      // Physical/logical replication connections are not pooled.
      if (!iequals(value, "false") && !iequals(value, "off") && !iequals(value, "0") && !iequals(value, "no"))
        return startup_error{"08P01", "pgsluice does not support replication connections"};
    } else if (name == "options") {
      auto opts = parse_startup_options(value);
      if (!opts) return startup_error{"08P01", "invalid command-line argument in startup packet options"};
      for (const auto& [k, v] : *opts) {
        if (is_tracked_parameter(k)) {
          out.reported.set(k, v);
        } else {
          out.settings.set(k, v);
        }
      }
    } else if (name.starts_with("_pq_.")) {
      // Protocol options are answered with NegotiateProtocolVersion by the caller.
    } else {
      if (!is_valid_setting_name(name))
        return startup_error{"42704", "unrecognized configuration parameter \"" + std::string(name) + "\""};
      if (iequals(name, "application_name")) out.application_name.assign(value);
      if (is_tracked_parameter(name)) {
        out.reported.set(name, value);
      } else {
        out.settings.set(name, value);
      }
    }
  }
  // PostgreSQL: the database name defaults to the user name.
  if (out.database.empty()) out.database = out.user;
  return std::nullopt;
}

std::vector<std::string> reset_parameter_names(std::string_view sql) {
  std::vector<std::string> out;
  router::lexer lex(sql);
  std::vector<router::token> st;  // one statement's tokens, comments left out
  auto lower = [](std::string_view w) {
    std::string l(w);
    for (auto& ch : l) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    return l;
  };
  auto word = [&](std::size_t i, std::string_view kw) {
    return i < st.size() && st[i].kind == router::token_kind::identifier && router::iequals_keyword(st[i].text, kw);
  };
  // A setting name at `i` (a word or quoted identifier, possibly dotted); its end in `next`.
  auto name_at = [&](std::size_t i, std::size_t& next) -> std::string {
    if (i >= st.size() || (st[i].kind != router::token_kind::identifier && st[i].kind != router::token_kind::quoted_identifier))
      return {};
    std::string n = st[i].kind == router::token_kind::identifier ? lower(st[i].text) : std::string(router::token_body(st[i]));
    next = i + 1;
    while (next + 1 < st.size() && st[next].is('.') && st[next + 1].kind == router::token_kind::identifier) {
      n += '.' + lower(st[next + 1].text);
      next += 2;
    }
    return n;
  };
  auto finish = [&] {
    std::size_t next = 0;
    if (word(0, "reset") && word(1, "time") && word(2, "zone") && st.size() == 3) {
      out.emplace_back("timezone");
    } else if (word(0, "reset") && !word(1, "all")) {
      const std::string n = name_at(1, next);
      if (!n.empty() && next == st.size()) out.push_back(n);
    } else if (word(0, "set") && !word(1, "local")) {
      const std::size_t at = word(1, "session") ? 2 : 1;
      if (word(at, "time") && word(at + 1, "zone") && (word(at + 2, "default") || word(at + 2, "local")) &&
          at + 3 == st.size()) {
        out.emplace_back("timezone");
      } else {
        const std::string n = name_at(at, next);
        if (!n.empty() && (word(next, "to") || (next < st.size() && st[next].is('='))) && word(next + 1, "default") &&
            next + 2 == st.size())
          out.push_back(n);
      }
    }
    st.clear();
  };
  for (;;) {
    const auto t = lex.next();
    if (t.kind == router::token_kind::end) break;
    if (t.kind == router::token_kind::comment) continue;
    if (t.is(';')) {
      finish();
      continue;
    }
    st.push_back(t);
  }
  finish();
  return out;
}

std::string plan_settings_sync(const parameter_set& client_view, const parameter_set& client_settings,
                               const parameter_set& server_reported, const parameter_set& server_applied) {
  std::string sql;
  auto add_set = [&](std::string_view name, std::string_view value) {
    sql += "SET ";
    sql += name;
    sql += " TO ";
    sql += quote_literal(value);
    sql += ';';
  };
  for (const auto& [name, value] : client_view) {
    if (!is_tracked_parameter(name)) continue;
    const std::string* have = server_reported.find(name);
    if (have == nullptr || *have != value) add_set(name, value);
  }
  for (const auto& [name, value] : client_settings) {
    const std::string* have = server_applied.find(name);
    if (have == nullptr || *have != value) add_set(name, value);
  }
  for (const auto& [name, value] : server_applied) {
    if (client_settings.find(name) == nullptr) {
      sql += "RESET ";
      sql += name;
      sql += ';';
    }
  }
  return sql;
}

const parameter_set& shared_parameter_set::empty_set() noexcept {
  static const parameter_set empty;
  return empty;
}

bool shared_parameter_set::set(std::string_view name, std::string_view value) {
  if (const std::string* now = find(name); now != nullptr && *now == value) return false;
  if (values_ && values_.use_count() == 1) {
    // No one else holds it: changed in place (every set is made as a non-const parameter_set).
    return const_cast<parameter_set&>(*values_).set(name, value);
  }
  auto mine = std::make_shared<parameter_set>(get());
  mine->set(name, value);
  values_ = std::move(mine);
  return true;
}

}  // namespace pgsluice::proxy

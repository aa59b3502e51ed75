// Fuzz target: the client's startup parameters (parse_startup_options, sort_startup_parameters) and the SET/RESET built from them (plan_settings_sync).
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "proxy/params.hpp"
#include "proxy/pinning.hpp"
#include "tests/fuzz/protocol_roundtrip.hpp"

using namespace pgsluice;
using test::fuzz_check;

namespace {

// Reads back quote_literal's E'...' at the start of `s`; the value, and how many bytes it took.
std::optional<std::pair<std::string, std::size_t>> unquote(std::string_view s) {
  if (!s.starts_with("E'")) return std::nullopt;
  std::string value;
  for (std::size_t i = 2; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '\'' || c == '\\') {
      if (i + 1 < s.size() && s[i + 1] == c) {
        value += c;
        ++i;
        continue;
      }
      if (c == '\'') return std::pair{value, i + 1};
      return std::nullopt;  // a lone backslash would escape what follows
    }
    value += c;
  }
  return std::nullopt;
}

// The plan must be nothing but `SET name TO E'value';` and `RESET name;` statements, with valid
// names and literals that read back as the values: client bytes can never leave a literal.
void check_plan(std::string_view sql, const proxy::parameter_set& wanted, const proxy::parameter_set& applied) {
  while (!sql.empty()) {
    if (sql.starts_with("SET ")) {
      sql.remove_prefix(4);
      const auto to = sql.find(" TO ");
      fuzz_check(to != std::string_view::npos, "SET without TO");
      const std::string_view name = sql.substr(0, to);
      fuzz_check(proxy::is_valid_setting_name(name), "SET of an invalid name");
      sql.remove_prefix(to + 4);
      const auto lit = unquote(sql);
      fuzz_check(lit.has_value(), "SET value is not one closed literal");
      const std::string* want = wanted.find(name);
      fuzz_check(want != nullptr && *want == lit->first, "SET value differs from the wanted one");
      sql.remove_prefix(lit->second);
    } else if (sql.starts_with("RESET ")) {
      sql.remove_prefix(6);
      const auto semi = sql.find(';');
      fuzz_check(semi != std::string_view::npos, "RESET without ;");
      const std::string_view name = sql.substr(0, semi);
      fuzz_check(proxy::is_valid_setting_name(name) && applied.find(name) != nullptr, "RESET of a name never set");
      sql.remove_prefix(semi);
    } else {
      fuzz_check(false, "plan holds something other than SET and RESET");
    }
    fuzz_check(sql.starts_with(";"), "statement not closed by ;");
    sql.remove_prefix(1);
  }
}

}  // namespace

// Input: a StartupMessage body after the protocol version: NUL-separated strings taken as
// name/value pairs (a missing last value is empty).
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view all(reinterpret_cast<const char*>(data), size);
  std::vector<std::string_view> strings;
  for (std::size_t pos = 0; pos <= all.size();) {
    const auto nul = all.find('\0', pos);
    const auto end = nul == std::string_view::npos ? all.size() : nul;
    strings.push_back(all.substr(pos, end - pos));
    pos = end + 1;
  }
  std::vector<std::pair<std::string_view, std::string_view>> params;
  for (std::size_t i = 0; i < strings.size(); i += 2) {
    params.emplace_back(strings[i], i + 1 < strings.size() ? strings[i + 1] : std::string_view{});
  }

  // The `options` parser on its own, over the first string.
  if (const auto opts = proxy::parse_startup_options(strings.front())) {
    for (const auto& [k, v] : *opts) fuzz_check(proxy::is_valid_setting_name(k), "options gave an invalid name");
  }

  proxy::client_startup out;
  if (proxy::sort_startup_parameters(params, out)) return 0;
  for (const auto& [k, v] : out.reported) {
    fuzz_check(proxy::is_tracked_parameter(k), "a reported parameter that is not tracked");
  }
  for (const auto& [k, v] : out.settings) {
    fuzz_check(proxy::is_valid_setting_name(k) && !proxy::is_tracked_parameter(k), "a setting that cannot be SET");
  }
  fuzz_check(!out.database.empty() || out.user.empty(), "database does not default to the user");

  // From nothing applied: one SET per wanted value. Then against the settings as "applied": the
  // tracked ones only, and RESET of those the client no longer wants.
  proxy::parameter_set wanted = out.reported;
  for (const auto& [k, v] : out.settings) wanted.set(k, v);
  check_plan(proxy::plan_settings_sync(out.reported, out.settings, {}, {}), wanted, {});
  check_plan(proxy::plan_settings_sync(out.reported, {}, {}, out.settings), wanted, out.settings);
  for (const auto& [k, v] : wanted) {
    const std::string q = proxy::quote_literal(v);
    const auto back = unquote(q);
    fuzz_check(back && back->first == v && back->second == q.size(), "quote_literal does not read back");
  }
  return 0;
}

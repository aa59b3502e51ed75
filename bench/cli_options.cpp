// Argument parsers of `pgsluice bench`: client counts, durations, protocols, targets, defines.
#include "bench/cli_options.hpp"

#include <algorithm>
#include <cctype>

#include "bench/stack.hpp"
#include "conf/config.hpp"

namespace pgsluice::bench {

namespace {

bool all_digits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
}

std::string trim(const std::string& s) {
  std::size_t a = 0, b = s.size();
  while (a < b && std::isspace(static_cast<unsigned char>(s[a]))) ++a;
  while (b > a && std::isspace(static_cast<unsigned char>(s[b - 1]))) --b;
  return s.substr(a, b - a);
}

}  // namespace

parsed<std::vector<std::string>> parse_list(const std::string& option, const std::string& text) {
  std::vector<std::string> items;
  std::size_t start = 0;
  for (;;) {
    const std::size_t comma = text.find(',', start);
    const std::string item = trim(text.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (item.empty()) return option + ": empty item in '" + text + "'";
    if (std::find(items.begin(), items.end(), item) != items.end()) return option + ": '" + item + "' is listed twice";
    items.push_back(item);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return items;
}

parsed<std::vector<std::uint32_t>> parse_client_counts(const std::string& text) {
  const auto list = parse_list("--clients", text);
  if (auto e = parse_error(list)) return *e;
  std::vector<std::uint32_t> counts;
  for (const std::string& item : std::get<0>(list)) {
    const std::string problem =
        "--clients: '" + item + "' is not a whole number from 1 to " + std::to_string(max_clients);
    if (!all_digits(item) || item.size() > 6) return problem;
    const auto n = std::stoul(item);
    if (n < 1 || n > max_clients) return problem;
    counts.push_back(static_cast<std::uint32_t>(n));
  }
  return counts;
}

parsed<millis> parse_bench_duration(const std::string& option, const std::string& text, bool allow_zero) {
  std::optional<conf::duration> d;
  if (all_digits(text) && text.size() < 9) d = std::chrono::seconds(std::stoll(text));
  else d = conf::parse_duration(text);
  if (!d) return option + ": '" + text + "' is not a duration (e.g. 20s, 500ms, 2m, or a number of seconds)";
  if (!allow_zero && d->count() <= 0) return option + " must be longer than 0";
  if (*d > std::chrono::hours(24)) return option + ": '" + text + "' is longer than a day";
  return millis(d->count());
}

parsed<std::vector<protocol_mode>> parse_protocols(const std::string& text) {
  const auto list = parse_list("--protocol", text);
  if (auto e = parse_error(list)) return *e;
  std::vector<protocol_mode> modes;
  for (const std::string& item : std::get<0>(list)) {
    const auto m = parse_protocol_mode(item);
    if (!m) return "--protocol: '" + item + "' is not simple, extended or prepared";
    modes.push_back(*m);
  }
  return modes;
}

parsed<std::vector<target_spec>> parse_targets(const std::string& text) {
  const auto list = parse_list("--targets", text);
  if (auto e = parse_error(list)) return *e;
  std::vector<target_spec> targets;
  const auto& builtin = stack_target_names();
  auto is_url = [](const std::string& s) { return s.rfind("postgresql://", 0) == 0 || s.rfind("postgres://", 0) == 0; };
  for (const std::string& item : std::get<0>(list)) {
    target_spec t;
    const auto eq = item.find('=');
    if (is_url(item)) {
      // Name it host:port (the part after '@', before the path).
      std::string rest = item.substr(item.find("://") + 3);
      if (const auto at = rest.find('@'); at != std::string::npos) rest = rest.substr(at + 1);
      t.name = rest.substr(0, rest.find_first_of("/?"));
      if (t.name.empty()) t.name = "url";
      t.url = item;
    } else if (eq != std::string::npos) {
      t.name = trim(item.substr(0, eq));
      t.url = trim(item.substr(eq + 1));
      if (t.name.empty()) return "--targets: '" + item + "' has no name before '='";
      if (!is_url(t.url) && t.url.find('=') == std::string::npos)
        return "--targets: '" + item + "': after NAME= give a postgresql:// URL or a libpq key=value string";
    } else if (std::find(builtin.begin(), builtin.end(), item) != builtin.end()) {
      t.name = item;
    } else {
      std::string known;
      for (const auto& b : builtin) known += (known.empty() ? "" : ", ") + b;
      return "--targets: unknown target '" + item + "' (local stack: " + known + "; or NAME=postgresql://...)";
    }
    for (const auto& other : targets)
      if (other.name == t.name) return "--targets: two targets are named '" + t.name + "'";
    targets.push_back(std::move(t));
  }
  return targets;
}

parsed<std::uint32_t> parse_user_count(const std::string& text) {
  const std::string t = trim(text);
  const std::string problem = "--users: '" + text + "' is not a whole number from 1 to " + std::to_string(max_clients);
  if (!all_digits(t) || t.size() > 6) return problem;
  const auto n = std::stoul(t);
  if (n < 1 || n > max_clients) return problem;
  return static_cast<std::uint32_t>(n);
}

namespace {

// A plain decimal number (no sign, no exponent), or nullopt.
std::optional<double> plain_number(const std::string& t) {
  if (t.empty() || t.size() > 12) return std::nullopt;
  std::size_t dots = 0;
  for (char c : t) {
    if (c == '.') ++dots;
    else if (!std::isdigit(static_cast<unsigned char>(c))) return std::nullopt;
  }
  if (dots > 1 || t == ".") return std::nullopt;
  return std::stod(t);
}

}  // namespace

parsed<double> parse_spawn_rate(const std::string& text) {
  const auto v = plain_number(trim(text));
  if (!v || *v <= 0 || *v > max_clients)
    return "--spawn-rate: '" + text + "' is not a number of users started per second, greater than 0 and at most " +
           std::to_string(max_clients);
  return *v;
}

parsed<std::pair<millis, millis>> parse_wait(const std::string& text) {
  const std::string t = trim(text);
  const std::string form = "--wait: '" + text + "' is not MIN..MAX (e.g. 1s..2s, 500ms..1500ms, or 0 for no wait)";
  const auto dots = t.find("..");
  const std::string lo_text = trim(t.substr(0, dots));
  const std::string hi_text = dots == std::string::npos ? lo_text : trim(t.substr(dots + 2));
  if (lo_text.empty() || hi_text.empty() || hi_text.find("..") != std::string::npos) return form;
  const auto lo = parse_bench_duration("--wait", lo_text, true);
  const auto hi = parse_bench_duration("--wait", hi_text, true);
  if (parse_error(lo) || parse_error(hi)) return form;
  const millis a = std::get<0>(lo), b = std::get<0>(hi);
  if (a > b) return "--wait: '" + text + "': the minimum is longer than the maximum";
  if (b > std::chrono::hours(1)) return "--wait: '" + text + "': waits longer than an hour are not supported";
  return std::pair<millis, millis>{a, b};
}

parsed<double> parse_read_ratio(const std::string& text) {
  std::string t = trim(text);
  const bool percent = !t.empty() && t.back() == '%';
  if (percent) t = trim(t.substr(0, t.size() - 1));
  const auto v = plain_number(t);
  if (!v || *v > 100 || (percent && t.empty()))
    return "--read-ratio: '" + text + "' is not a share of reads (0..1, or a percentage such as 80)";
  return percent || *v > 1 ? *v / 100 : *v;
}

parsed<std::pair<std::string, std::int64_t>> parse_define(const std::string& text) {
  const auto eq = text.find('=');
  const std::string problem = "-D: '" + text + "' is not NAME=INTEGER";
  if (eq == std::string::npos || eq == 0) return problem;
  const std::string name = text.substr(0, eq), value = text.substr(eq + 1);
  if (!(std::isalpha(static_cast<unsigned char>(name[0])) || name[0] == '_')) return problem;
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return problem;
  std::size_t used = 0;
  try {
    const long long v = std::stoll(value, &used);
    if (used != value.size()) return problem;
    return std::pair<std::string, std::int64_t>{name, v};
  } catch (const std::exception&) {
    return problem;
  }
}

}  // namespace pgsluice::bench

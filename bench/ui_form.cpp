// Checks the run form of `pgsluice bench ui` field by field, with the messages the page shows next to it.
#include "bench/ui_form.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>

#include "bench/stack.hpp"

namespace pgsluice::bench {

namespace {

using json = nlohmann::json;

// The value as the user typed it, for messages.
std::string shown(const json& v) { return v.is_string() ? "'" + v.get<std::string>() + "'" : v.dump(); }

// A JSON number or a numeric string (HTML inputs send either).
std::optional<double> number_of(const json& v) {
  if (v.is_number()) return v.get<double>();
  if (!v.is_string()) return std::nullopt;
  const std::string s = v.get<std::string>();
  if (s.empty()) return std::nullopt;
  std::size_t used = 0;
  try {
    const double d = std::stod(s, &used);
    if (used != s.size()) return std::nullopt;
    return d;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

// "5s", "500ms", "2m", or a number of seconds.
parsed<millis> duration_field(const json& form, const char* field, const char* fallback, bool allow_zero) {
  const json v = form.value(field, json(fallback));
  if (v.is_number()) {
    const double seconds = v.get<double>();
    if (!std::isfinite(seconds) || seconds < 0 || (!allow_zero && seconds == 0))
      return std::string(field) + " must be " + (allow_zero ? "0 or more" : "longer than 0") + " (got " + v.dump() + ")";
    if (seconds > std::chrono::duration<double>(ui_max_run_time).count())
      return std::string(field) + ": " + v.dump() + " s is longer than a day";
    return millis(static_cast<std::int64_t>(seconds * 1000));
  }
  if (!v.is_string()) return std::string(field) + ": " + v.dump() + " is not a duration (e.g. 5s, 500ms, 2m)";
  return parse_bench_duration(field, v.get<std::string>(), allow_zero);
}

parsed<target_spec> target_field(const json& item, const std::vector<std::string>& known) {
  if (!item.is_string()) return "targets: " + item.dump() + " is not a target name";
  const std::string name = item.get<std::string>();
  if (std::find(known.begin(), known.end(), name) != known.end()) return target_spec{name, {}};
  const auto& builtin = stack_target_names();
  if (std::find(builtin.begin(), builtin.end(), name) != builtin.end())
    return "targets: " + name + " needs the local stack, which is not running: start it with `pgsluice bench stack up`";
  if (name.find("://") == std::string::npos && name.find('=') == std::string::npos) {
    std::string offered;
    for (const auto& k : known) offered += (offered.empty() ? "" : ", ") + k;
    return "targets: unknown target '" + name + "' (offered: " + (offered.empty() ? "none" : offered) +
           "; or NAME=postgresql://user:password@host:port/database)";
  }
  auto spec = parse_targets(name);
  if (auto e = parse_error(spec)) return "targets" + e->substr(e->find(':'));
  return std::get<0>(spec).front();
}

}  // namespace

parsed<ui_run_request> parse_run_form(const json& form, const std::vector<std::string>& known_targets) {
  if (!form.is_object()) return std::string("the run form must be a JSON object");
  ui_run_request r;

  const json targets = form.value("targets", json::array());
  if (!targets.is_array()) return "targets: " + targets.dump() + " is not a list";
  for (const auto& item : targets) {
    auto t = target_field(item, known_targets);
    if (auto e = parse_error(t)) return *e;
    target_spec spec = std::get<0>(std::move(t));
    for (const auto& other : r.targets)
      if (other.name == spec.name) return "targets: two targets are named '" + spec.name + "'";
    r.targets.push_back(std::move(spec));
  }
  if (r.targets.empty()) return std::string("targets: choose at least one target");

  const json workload = form.value("workload", json("select-only"));
  if (!workload.is_string()) return "workload: " + workload.dump() + " is not a workload name";
  r.workload.name = workload.get<std::string>();
  if (is_script_path(r.workload.name))
    return "workload: '" + r.workload.name + "' is a script path; the page runs built-in workloads only "
           "(scripts: pgsluice bench run -w FILE.sql)";
  const json ratio = form.value("read_ratio", json(r.workload.read_ratio));
  const auto read_ratio = number_of(ratio);
  if (!read_ratio || !(*read_ratio >= 0 && *read_ratio <= 1))
    return "read_ratio must be a number from 0 to 1 (got " + shown(ratio) + ")";
  r.workload.read_ratio = *read_ratio;
  if (const std::string problem = validate_workload_options(r.workload); !problem.empty()) return "workload: " + problem;

  const json protocol = form.value("protocol", json("simple"));
  const auto mode = protocol.is_string() ? parse_protocol_mode(protocol.get<std::string>()) : std::nullopt;
  if (!mode) return "protocol: " + shown(protocol) + " is not simple, extended or prepared";
  r.protocol = *mode;

  const json users = form.value("users", json(r.users));
  const auto n = number_of(users);
  if (!n || *n < 1 || *n > max_clients || std::floor(*n) != *n)
    return "users must be a whole number from 1 to " + std::to_string(max_clients) + " (got " + shown(users) + ")";
  r.users = static_cast<std::uint32_t>(*n);

  const json spawn = form.value("spawn_rate", json(0));
  const auto rate = number_of(spawn);
  if (!rate || !(*rate >= 0 && *rate <= 1e6))
    return "spawn_rate must be 0 (all users at once) or a number of users started per second (got " + shown(spawn) + ")";
  r.spawn_rate = *rate;

  auto run_time = duration_field(form, "run_time", "10s", false);
  if (auto e = parse_error(run_time)) return *e;
  r.run_time = std::get<0>(run_time);
  auto warmup = duration_field(form, "warmup", "0s", true);
  if (auto e = parse_error(warmup)) return *e;
  r.warmup = std::get<0>(warmup);
  auto wait_min = duration_field(form, "wait_min", "0s", true);
  if (auto e = parse_error(wait_min)) return *e;
  auto wait_max = duration_field(form, "wait_max", "0s", true);
  if (auto e = parse_error(wait_max)) return *e;
  r.wait_min = std::get<0>(wait_min);
  r.wait_max = std::max(r.wait_min, std::get<0>(wait_max));  // "1s" alone in wait_min: a fixed wait
  if (form.contains("wait_max") && std::get<0>(wait_max) != millis(0) && std::get<0>(wait_max) < r.wait_min)
    return std::string("wait_max must not be shorter than wait_min");
  return r;
}

}  // namespace pgsluice::bench

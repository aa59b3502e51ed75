// Past runs for the Results page of `pgsluice bench ui`: the listing, safe lookup of a run's directory, CSV.
#include "bench/ui_results.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>

namespace pgsluice::bench {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// One row of the listing, from the file's own summary (no histogram is rebuilt).
json listing_entry(const std::string& id, const json& j) {
  const json& c = j.value("config", json::object());
  json targets = json::array();
  for (const auto& t : c.value("targets", json::array())) targets.push_back(t.value("name", std::string()));
  json best = json::object();
  double failures = 0;
  for (const auto& s : j.value("summary", json::array())) {
    const std::string target = s.value("target", std::string());
    const double rps = s.value("requests_per_second", 0.0);
    failures += s.value("failures", 0.0);
    if (!best.contains(target) || best[target].value("rps", 0.0) < rps)
      best[target] = {{"rps", rps}, {"p99_ms", s.value("latency_ms", json::object()).value("p99", 0.0)}};
  }
  return {{"id", id},
          {"started_at", j.value("started_at", std::string())},
          {"workloads", c.value("workloads", json::array())},
          {"protocols", c.value("protocols", json::array())},
          {"users", c.value("clients", json::array())},
          {"targets", targets},
          {"run_time_s", c.value("duration_s", 0.0)},
          {"failures", failures},
          {"notes", j.value("notes", json::array())},
          {"best", best}};
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::string optional_number(const std::optional<double>& v) { return v ? fmt::format("{:.4f}", *v) : std::string(); }

}  // namespace

json list_results(const fs::path& dir) {
  json out = json::array();
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return out;
  std::vector<fs::path> dirs;
  for (const auto& entry : fs::directory_iterator(dir, ec))
    if (entry.is_directory(ec) && fs::is_regular_file(entry.path() / "results.json", ec)) dirs.push_back(entry.path());
  // Ids are UTC timestamps: the name orders them.
  std::sort(dirs.begin(), dirs.end(), [](const fs::path& a, const fs::path& b) { return a.filename() > b.filename(); });
  for (const auto& d : dirs) {
    const std::string id = d.filename().string();
    try {
      std::ifstream in(d / "results.json");
      const json j = json::parse(in);
      if (j.value("format", std::string()) != "pgsluice-bench-results") continue;
      out.push_back(listing_entry(id, j));
    } catch (const std::exception& e) {
      out.push_back({{"id", id}, {"error", std::string("results.json unreadable: ") + e.what()}});
    }
  }
  return out;
}

std::optional<fs::path> result_dir(const fs::path& dir, const std::string& id) {
  if (id.empty() || id == "." || id == ".." || id.size() > 200) return std::nullopt;
  const bool plain = std::all_of(id.begin(), id.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == ':';
  });
  if (!plain) return std::nullopt;
  const fs::path p = dir / id;
  std::error_code ec;
  if (!fs::is_directory(p, ec) || fs::is_symlink(p, ec)) return std::nullopt;
  return p;
}

std::string summary_csv(const bench_run& run) {
  std::string out =
      "workload,protocol,users,connect_per_transaction,target,repeats,requests,failures,requests_per_second,"
      "mean_ms,p50_ms,p95_ms,p99_ms,max_ms,vs_pgbouncer,vs_direct,errors\n";
  for (const auto& r : summarize(run)) {
    std::string errors;
    for (const auto& [kind, count] : r.errors) errors += (errors.empty() ? "" : " ") + kind + "=" + std::to_string(count);
    out += fmt::format("{},{},{},{},{},{},{:.0f},{:.0f},{:.2f},{:.4f},{:.4f},{:.4f},{:.4f},{:.4f},{},{},{}\n",
                       csv_field(r.group.workload), r.group.protocol, r.group.clients,
                       r.group.connect_per_transaction ? "true" : "false", csv_field(r.target), r.repeats, r.requests,
                       r.failures, r.rps, r.mean_ms, r.p50_ms, r.p95_ms, r.p99_ms, r.max_ms,
                       optional_number(r.vs_pgbouncer), optional_number(r.vs_direct), csv_field(errors));
  }
  return out;
}

}  // namespace pgsluice::bench

// `bench failover`'s report: the terminal table and timeline, results.json and a self-contained HTML page with SVG charts.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "bench/failover.hpp"

namespace pgsluice::bench {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

std::string ms_text(const std::optional<double>& ms) {
  if (!ms) return "-";
  return *ms >= 10000 ? fmt::format("{:.1f} s", *ms / 1000) : fmt::format("{:.0f} ms", *ms);
}

json opt(const std::optional<double>& v) { return v ? json(std::round(*v * 10) / 10) : json(nullptr); }

std::string html_escape(std::string_view s) {
  std::string out;
  for (char c : s) switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  return out;
}

// A table of aligned columns: the first left-aligned, the rest right-aligned.
std::string align(const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> width;
  for (const auto& row : rows)
    for (std::size_t i = 0; i < row.size(); ++i) {
      if (width.size() <= i) width.push_back(0);
      width[i] = std::max(width[i], row[i].size());
    }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t i = 0; i < row.size(); ++i) {
      const std::string pad(width[i] - row[i].size(), ' ');
      line += i == 0 ? row[i] + pad : "  " + pad + row[i];
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  return out;
}

std::string held_text(const failover_result& r) {
  if (!r.ran) return "-";
  return r.events.max_held_ms ? fmt::format("{} (max {})", r.events.writes_held, ms_text(r.events.max_held_ms))
                              : std::to_string(r.events.writes_held);
}

std::string detected_text(const failover_result& r) {
  if (!r.detected_ms) return "-";
  return ms_text(r.detected_ms) + (r.detection_source == "log" ? " (log)" : " (error)");
}

// Per second of the timeline: successes and errors, summed from the buckets.
struct second_totals {
  std::uint64_t reads = 0, writes = 0, errors = 0;
};
std::vector<second_totals> per_second(const failover_result& r) {
  std::vector<second_totals> out;
  for (const auto& b : r.events.timeline) {
    const std::size_t s = b.t_ms / 1000;
    if (out.size() <= s) out.resize(s + 1);
    out[s].reads += b.reads;
    out[s].writes += b.writes;
    out[s].errors += b.read_errors + b.write_errors;
  }
  return out;
}

}  // namespace

std::string format_failover_table(const failover_run& run) {
  const auto& o = run.options;
  std::ostringstream s;
  s << fmt::format("failover: the primary killed (kill -9, postmaster and children) at {:.1f} s of {:.1f} s; {} clients, "
                   "{:.0f}% reads\n\n",
                   std::chrono::duration<double>(o.kill_at).count(), std::chrono::duration<double>(o.duration).count(),
                   o.clients, o.read_ratio * 100);
  std::vector<std::vector<std::string>> rows{{"target", "reads ok", "writes ok", "read err", "write err", "writes held",
                                              "first write", "detected", "acked", "missing", "killed"}};
  for (const auto& r : run.results) {
    if (!r.ran) {
      rows.push_back({r.target, "-", "-", "-", "-", "-", "-", "-", "-", "-", "-"});
      continue;
    }
    rows.push_back({r.target, std::to_string(r.events.reads_ok), std::to_string(r.events.writes_ok),
                    std::to_string(r.events.read_errors), std::to_string(r.events.write_errors), held_text(r),
                    ms_text(r.events.first_write_after_kill_ms), detected_text(r), std::to_string(r.acknowledged_writes),
                    std::to_string(r.missing_writes),
                    std::to_string(r.processes_killed) + (r.processes_left ? " (" + std::to_string(r.processes_left) + " left)" : "")});
  }
  s << align(rows);
  s << "\nfirst write: from the kill to the first acknowledged write answered by another server; detected: from the "
       "kill to the target's first log line about it (log) or the first client error (error); held: a write answered "
       "after the kill that succeeded but took longer than 3 x the p99 before the kill (at least 100 ms); missing: acknowledged writes "
       "not found on the surviving primary.\n";
  for (const auto& r : run.results) {
    s << "\n" << r.target << ": " << (r.setup.empty() ? r.problem : r.setup) << "\n";
    if (!r.ran && !r.setup.empty()) s << "  did not run: " << r.problem << "\n";
    if (!r.checked_on.empty()) s << "  read back on " << r.checked_on;
    if (r.unacknowledged_found) s << "; " << r.unacknowledged_found << " writes the client saw fail were committed";
    if (!r.checked_on.empty()) s << "\n";
    if (!r.detection_line.empty()) s << "  first log line: " << r.detection_line.substr(0, 200) << "\n";
    std::vector<std::pair<std::string, std::uint64_t>> errors(r.error_messages.begin(), r.error_messages.end());
    std::sort(errors.begin(), errors.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
    for (std::size_t i = 0; i < errors.size() && i < 4; ++i)
      s << fmt::format("  {:>6} x {}\n", errors[i].second, errors[i].first.substr(0, 160));
    for (const auto& n : r.notes) s << "  note: " << n << "\n";
  }
  for (const auto& n : run.notes) s << "\nnote: " << n;
  s << "\n";
  return s.str();
}

std::string format_failover_timeline(const failover_run& run) {
  std::vector<std::vector<second_totals>> columns;
  std::vector<std::string> header{"second"};
  std::size_t seconds = 0;
  for (const auto& r : run.results) {
    if (!r.ran) continue;
    columns.push_back(per_second(r));
    header.push_back(r.target + " w/r/err");
    seconds = std::max(seconds, columns.back().size());
  }
  if (columns.empty()) return {};
  const auto kill_second = static_cast<std::size_t>(std::chrono::duration<double>(run.options.kill_at).count());
  std::vector<std::vector<std::string>> rows{header};
  for (std::size_t s = 0; s < seconds; ++s) {
    std::vector<std::string> row{std::to_string(s) + (s == kill_second ? " kill" : "")};
    for (const auto& c : columns)
      row.push_back(s < c.size() ? fmt::format("{}/{}/{}", c[s].writes, c[s].reads, c[s].errors) : "");
    rows.push_back(std::move(row));
  }
  return "operations per second (writes/reads/errors); the primary was killed during the second marked kill\n" +
         align(rows);
}

json failover_to_json(const failover_run& run) {
  const auto& o = run.options;
  json j{{"format", 1},
         {"kind", "pgsluice-bench-failover"},
         {"id", run.id},
         {"started_at", run.started_at},
         {"machine", {{"cores", run.machine.cores}, {"ram_bytes", run.machine.ram_bytes}, {"cpu", run.machine.cpu_model},
                      {"kernel", run.machine.kernel}, {"os", run.machine.os}, {"versions", run.machine.versions}}},
         {"config", {{"targets", o.targets}, {"duration_s", std::chrono::duration<double>(o.duration).count()},
                     {"kill_at_s", std::chrono::duration<double>(o.kill_at).count()}, {"clients", o.clients},
                     {"read_ratio", o.read_ratio}, {"request_timeout_s", std::chrono::duration<double>(o.request_timeout).count()},
                     {"bucket_ms", o.bucket.count()}}},
         {"notes", run.notes},
         {"results", json::array()}};
  for (const auto& r : run.results) {
    const auto& e = r.events;
    json timeline = json::array();
    for (const auto& b : e.timeline)
      timeline.push_back({{"t_ms", b.t_ms}, {"reads", b.reads}, {"writes", b.writes}, {"read_errors", b.read_errors},
                          {"write_errors", b.write_errors}});
    j["results"].push_back(
        {{"target", r.target}, {"setup", r.setup}, {"ran", r.ran}, {"problem", r.problem}, {"kill_at_s", r.kill_at_s},
         {"processes_killed", r.processes_killed}, {"processes_left", r.processes_left}, {"killed_pids", r.killed_pids},
         {"reads_ok", e.reads_ok}, {"writes_ok", e.writes_ok},
         {"errors", {{"reads", e.read_errors}, {"writes", e.write_errors}, {"reads_after_kill", e.read_errors_after_kill},
                     {"writes_after_kill", e.write_errors_after_kill}}},
         {"writes_held", e.writes_held}, {"held_threshold_ms", opt(e.held_threshold_ms)}, {"max_held_ms", opt(e.max_held_ms)},
         {"write_p50_before_ms", opt(e.write_p50_before_ms)}, {"write_p99_before_ms", opt(e.write_p99_before_ms)},
         {"first_write_after_kill_ms", opt(e.first_write_after_kill_ms)},
         {"first_error_after_kill_ms", opt(e.first_error_after_kill_ms)},
         {"detected_ms", opt(r.detected_ms)}, {"detection_source", r.detection_source}, {"detection_line", r.detection_line},
         {"acknowledged_writes", r.acknowledged_writes}, {"missing_writes", r.missing_writes},
         {"unacknowledged_found", r.unacknowledged_found}, {"checked_on", r.checked_on},
         {"promoted_by_target", r.promoted_by_target}, {"error_messages", r.error_messages}, {"notes", r.notes},
         {"timeline", timeline}});
  }
  return j;
}

namespace {

constexpr int chart_w = 760, chart_h = 220, left = 56, right = 16, top = 28, bottom = 34;

// One target's throughput (per second, from its buckets) with errors, the kill and the first write after it.
std::string timeline_svg(const failover_result& r, const failover_options& o) {
  const double per_second = 1000.0 / static_cast<double>(o.bucket.count());
  double max_y = 1;
  for (const auto& b : r.events.timeline)
    max_y = std::max({max_y, b.reads * per_second, b.writes * per_second, (b.read_errors + b.write_errors) * per_second});
  // A round top: 1, 2 or 5 times a power of ten.
  const double magnitude = std::pow(10, std::floor(std::log10(max_y)));
  max_y = magnitude * (max_y <= magnitude ? 1 : max_y <= 2 * magnitude ? 2 : max_y <= 5 * magnitude ? 5 : 10);
  const double span_ms = static_cast<double>(o.duration.count());
  const double pw = chart_w - left - right, ph = chart_h - top - bottom;
  auto x = [&](double ms) { return left + pw * ms / span_ms; };
  auto y = [&](double v) { return top + ph * (1 - v / max_y); };
  std::string svg = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\" role=\"img\">"
      "<title>{} throughput</title><text x=\"{}\" y=\"16\" font-weight=\"600\">{}</text>",
      chart_w, chart_h, chart_w, chart_h, html_escape(r.target), left, html_escape(r.target));
  for (int i = 0; i <= 4; ++i) {
    const double v = max_y * i / 4;
    svg += fmt::format("<line x1=\"{}\" x2=\"{}\" y1=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#ddd\"/>"
                       "<text x=\"{}\" y=\"{:.1f}\" font-size=\"11\" text-anchor=\"end\">{:.0f}</text>",
                       left, chart_w - right, y(v), y(v), left - 4, y(v) + 4, v);
  }
  for (int s = 0; s <= static_cast<int>(span_ms / 1000); s += std::max(1, static_cast<int>(span_ms / 1000 / 10)))
    svg += fmt::format("<text x=\"{:.1f}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\">{}s</text>", x(s * 1000.0),
                       chart_h - bottom + 14, s);
  svg += fmt::format("<text x=\"{}\" y=\"{}\" font-size=\"11\">operations/s per {} ms</text>", left, chart_h - 4,
                     o.bucket.count());
  const double bw = pw * static_cast<double>(o.bucket.count()) / span_ms;
  for (const auto& b : r.events.timeline)
    if (const auto err = b.read_errors + b.write_errors)
      svg += fmt::format("<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"#e45756\" "
                         "opacity=\"0.6\"><title>{} ms: {} errors</title></rect>",
                         x(b.t_ms), std::min(y(err * per_second), top + ph - 3), bw,
                         std::max(3.0, top + ph - y(err * per_second)), b.t_ms, err);
  auto line = [&](auto value, const char* color, const char* name) {
    std::string points;
    for (const auto& b : r.events.timeline)
      points += fmt::format("{:.1f},{:.1f} ", x(b.t_ms + o.bucket.count() / 2.0), y(value(b) * per_second));
    svg += fmt::format("<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\" points=\"{}\"><title>{}</title></polyline>",
                       color, points, name);
  };
  line([](const failover_bucket& b) { return static_cast<double>(b.writes); }, "#4c78a8", "writes");
  line([](const failover_bucket& b) { return static_cast<double>(b.reads); }, "#54a24b", "reads");
  const double kill_ms = r.kill_at_s * 1000;
  svg += fmt::format("<line x1=\"{0:.1f}\" x2=\"{0:.1f}\" y1=\"{1}\" y2=\"{2}\" stroke=\"#000\" stroke-dasharray=\"4 3\"/>"
                     "<text x=\"{3:.1f}\" y=\"{4}\" font-size=\"11\">primary killed</text>",
                     x(kill_ms), top, top + ph, x(kill_ms) + 4, top + 10);
  if (r.events.first_write_after_kill_ms) {
    const double at = kill_ms + *r.events.first_write_after_kill_ms;
    svg += fmt::format("<line x1=\"{0:.1f}\" x2=\"{0:.1f}\" y1=\"{1}\" y2=\"{2}\" stroke=\"#4c78a8\" stroke-dasharray=\"2 2\"/>"
                       "<text x=\"{3:.1f}\" y=\"{4}\" font-size=\"11\" fill=\"#4c78a8\">first write</text>",
                       x(at), top, top + ph, x(at) + 4, top + 24);
  }
  svg += fmt::format("<text x=\"{}\" y=\"{}\" font-size=\"11\"><tspan fill=\"#4c78a8\">writes</tspan> "
                     "<tspan fill=\"#54a24b\">reads</tspan> <tspan fill=\"#e45756\">errors</tspan></text>",
                     chart_w - right - 140, 16);
  return svg + "</svg>";
}

}  // namespace

std::string render_failover_html(const failover_run& run) {
  std::string h = "<!doctype html><html><head><meta charset=\"utf-8\"><title>pgsluice bench failover " +
                  html_escape(run.id) +
                  "</title><style>body{font-family:system-ui,sans-serif;margin:24px;max-width:1000px}"
                  "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}"
                  "td:first-child,th:first-child{text-align:left}pre{font-size:12px;background:#f6f6f6;padding:8px;"
                  "overflow-x:auto}svg{font-family:system-ui,sans-serif;display:block;margin:12px 0}</style></head><body>";
  h += "<h1>Failover: the primary killed under load</h1><p>" + html_escape(run.started_at) + "</p>";
  h += "<table><tr><th>target</th><th>reads ok</th><th>writes ok</th><th>read errors</th><th>write errors</th>"
       "<th>writes held</th><th>first write after kill</th><th>detected</th><th>acknowledged</th><th>missing</th></tr>";
  for (const auto& r : run.results) {
    if (!r.ran) {
      h += "<tr><td>" + html_escape(r.target) + "</td><td colspan=\"9\">did not run: " + html_escape(r.problem) + "</td></tr>";
      continue;
    }
    h += fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                     html_escape(r.target), r.events.reads_ok, r.events.writes_ok, r.events.read_errors,
                     r.events.write_errors, html_escape(held_text(r)), ms_text(r.events.first_write_after_kill_ms),
                     html_escape(detected_text(r)), r.acknowledged_writes, r.missing_writes);
  }
  h += "</table>";
  for (const auto& r : run.results)
    if (r.ran) h += timeline_svg(r, run.options);
  h += "<h2>Details</h2><pre>" + html_escape(format_failover_table(run)) + "</pre></body></html>\n";
  return h;
}

fs::path save_failover_run(const failover_run& run) {
  const fs::path dir = run.options.results_dir / run.id;
  fs::create_directories(dir);
  {
    std::ofstream out(dir / "results.json");
    out << failover_to_json(run).dump(2) << '\n';
    if (!out) throw std::runtime_error("cannot write " + (dir / "results.json").string());
  }
  if (run.options.html) std::ofstream(dir / "report.html") << render_failover_html(run);
  return dir;
}

}  // namespace pgsluice::bench

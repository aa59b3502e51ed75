// The HTML report of a run: per group the summary table, requests/s and latency bars, throughput and p99 over time.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "bench/report.hpp"
#include "bench/report_detail.hpp"

namespace pgsluice::bench {

using namespace detail;

// The repeat whose requests/s is closest to the median: the timeline shown for a target.
const run_result* detail::representative(const bench_run& run, const group_key& g, const std::string& target) {
  const auto mine = results_of(run, g, target);
  if (mine.empty()) return nullptr;
  std::vector<double> rates;
  for (const auto* r : mine) rates.push_back(r->rps());
  const double m = median(rates);
  return *std::min_element(mine.begin(), mine.end(),
                           [&](const run_result* a, const run_result* b) { return std::fabs(a->rps() - m) < std::fabs(b->rps() - m); });
}

namespace {

std::string summary_table_html(const std::vector<summary_row>& rows, const group_key& g) {
  const bool any_memory = std::any_of(rows.begin(), rows.end(), [&](const summary_row& r) { return r.group == g && r.memory; });
  std::string h = "<table><thead><tr><th>target</th><th>requests</th><th>failures</th>"
                  "<th title=\"reads that missed the row the same request had just written, summed over the repeats\">"
                  "stale</th><th>median ms</th><th>average ms</th>"
                  "<th>p95 ms</th><th>p99 ms</th><th>max ms</th><th>requests/s</th><th>vs pgbouncer</th><th>vs direct</th>";
  if (any_memory) h += "<th>memory MiB</th>";
  const int columns = any_memory ? 12 : 11;  // after the target's
  h += "</tr></thead><tbody>";
  for (const auto& r : rows) {
    if (!(r.group == g)) continue;
    h += fmt::format("<tr><td>{}</td><td>{:.0f}</td><td class=\"{}\">{:.0f}</td><td class=\"stale {}\">{}</td><td>{:.2f}</td>"
                     "<td>{:.2f}</td><td>{:.2f}</td><td>{:.2f}</td><td>{:.2f}</td><td>{:.1f}</td><td>{}</td><td>{}</td>",
                     esc(r.target), r.requests, r.failures > 0 ? "bad" : "", r.failures,
                     r.stale_reads.value_or(0) > 0 ? "bad" : "", stale_text(r.stale_reads), r.p50_ms, r.mean_ms, r.p95_ms,
                     r.p99_ms, r.max_ms, r.rps, ratio_text(r.vs_pgbouncer), ratio_text(r.vs_direct));
    if (any_memory) h += "<td>" + memory_text(r.memory) + "</td>";
    h += "</tr>";
    if (!r.errors.empty()) {
      std::string list;
      for (const auto& [k, v] : r.errors) list += fmt::format("{}{} × {}", list.empty() ? "" : ", ", esc(k), v);
      h += fmt::format("<tr class=\"errors\"><td></td><td colspan=\"{}\">failures: {}</td></tr>", columns, list);
    }
    if (!r.read_shares.empty()) {
      std::string list;
      for (const auto& sh : r.read_shares)
        list += fmt::format("{}<span title=\"{} table scans\">{} {:.1f}%</span>", list.empty() ? "" : " · ", sh.scans,
                            esc(sh.node), sh.share * 100);
      h += fmt::format("<tr class=\"shares\"><td></td><td colspan=\"{}\">reads served by: {}</td></tr>", columns, list);
    }
  }
  h += "</tbody></table>";
  return h;
}

}  // namespace

std::string render_html(const bench_run& run, const bench_run* baseline) {
  const auto rows = summarize(run);
  const auto order = target_order(run);
  std::string h = html_head("pgsluice bench " + run.id);
  h += "<h1>pgsluice bench — " + esc(run.id) + "</h1>\n";
  const machine_info& m = run.machine;
  h += fmt::format("<p class=\"meta\">{} cores · {:.1f} GiB RAM · {} · {} · {}</p>\n", m.cores,
                   static_cast<double>(m.ram_bytes) / (1024.0 * 1024 * 1024), esc(m.cpu_model), esc(m.os), esc(m.kernel));
  std::string versions;
  for (const auto& [k, v] : m.versions) versions += (versions.empty() ? "" : " · ") + esc(k) + ": " + esc(v);
  if (!versions.empty()) h += "<p class=\"meta\">" + versions + "</p>\n";
  const run_config& c = run.config;
  h += fmt::format("<p class=\"meta\">{:g} s measured after {:g} s warm-up, {} repeat{} per target, interleaved; "
                   "ramp {}; data scale {:g}. Started {}.</p>\n",
                   c.duration_s, c.warmup_s, c.repeat, c.repeat == 1 ? "" : "s",
                   c.ramp > 0 ? fmt::format("{:g} clients/s", c.ramp) : std::string("all clients at once"), c.scale,
                   esc(run.started_at));
  if (c.users > 0)
    h += fmt::format("<p class=\"meta\">{} users started at {}, each waiting {:g} to {:g} s after every request; "
                     "measured from the first second, spawning included.</p>\n",
                     c.users, c.spawn_rate > 0 ? fmt::format("{:g}/s", c.spawn_rate) : std::string("once"),
                     c.wait_min_s, c.wait_max_s);
  if (!run.complete)
    h += "<p class=\"meta\"><b>Incomplete:</b> the run was stopped before its end; the figures cover the time "
         "measured.</p>\n";
  if (!c.targets.empty()) {
    h += "<p class=\"meta\">targets: ";
    for (std::size_t i = 0; i < c.targets.size(); ++i)
      h += (i ? " · " : "") + esc(c.targets[i].name) + " = <code>" + esc(c.targets[i].url) + "</code>";
    h += "</p>\n";
  }
  for (const auto& note : run.notes) h += "<p class=\"meta\">note: " + esc(note) + "</p>\n";

  for (const group_key& g : groups_of(run)) {
    h += "<h2>" + esc(g.label()) + "</h2>\n" + summary_table_html(rows, g) + "\n<div class=\"charts\">";
    std::vector<std::string> names, colors;
    bar_series rps{"requests/s", "", {}}, p50{"p50", "#93c5fd", {}}, p95{"p95", "#3b82f6", {}}, p99{"p99", "#1e3a8a", {}};
    for (const auto& r : rows) {
      if (!(r.group == g)) continue;
      const auto idx = static_cast<std::size_t>(std::find(order.begin(), order.end(), r.target) - order.begin());
      names.push_back(r.target);
      colors.push_back(color_of(r.target, idx));
      rps.values.push_back(r.rps);
      p50.values.push_back(r.p50_ms);
      p95.values.push_back(r.p95_ms);
      p99.values.push_back(r.p99_ms);
    }
    h += bar_chart("Requests per second (median)", "requests/s", names, {rps}, colors, "{:.0f}");
    h += bar_chart("Latency percentiles (median of repeats)", "ms", names, {p50, p95, p99}, colors, "{:.2f}");
    std::vector<line_series> lines;
    double warmup = 0;
    for (std::size_t i = 0; i < names.size(); ++i) {
      const run_result* r = representative(run, g, names[i]);
      if (!r) continue;
      warmup = std::max(warmup, r->warmup_s);
      line_series l{names[i], colors[i], {}};
      for (const auto& p : r->timeline) l.points.emplace_back(static_cast<double>(p.second) + 1, static_cast<double>(p.requests));
      lines.push_back(std::move(l));
    }
    h += line_chart("Throughput over time (requests/s)", "requests/s", lines, warmup);
    std::vector<line_series> p99_lines;
    for (std::size_t i = 0; i < names.size(); ++i) {
      const run_result* r = representative(run, g, names[i]);
      if (!r) continue;
      line_series l{names[i], colors[i], {}};
      for (const auto& p : r->timeline)
        if (p.requests > 0) l.points.emplace_back(static_cast<double>(p.second) + 1, p.p99_ms);
      p99_lines.push_back(std::move(l));
    }
    h += line_chart("p99 latency over time (ms)", "ms", p99_lines, warmup);
    h += "</div>\n";
  }

  if (baseline) h += "<h2>Compared with run " + esc(baseline->id) + "</h2>\n" + comparison_html(*baseline, run);
  if (std::any_of(rows.begin(), rows.end(), [](const summary_row& r) { return r.stale_reads.has_value(); }))
    h += "<p class=\"meta\">stale: reads that missed the row the same request had just written, summed over the "
         "repeats; those requests count as completed, not as failures (- where the workload does not check).</p>\n";
  if (std::any_of(rows.begin(), rows.end(), [](const summary_row& r) { return !r.read_shares.empty(); }))
    h += "<p class=\"meta\">reads served by: each server's share of the table scans (seq_scan + idx_scan of "
         "pg_stat_user_tables, sampled on each server before and after the run). Approximate: PostgreSQL publishes a "
         "busy backend's counters once a second and an idle one's last second up to 10 s later, so about a second of "
         "the previous run's reads can land in the next run's shares.</p>\n";
  h += "<p class=\"meta\">Generated by pgsluice bench. Medians over repeats; compare runs only from the same machine.</p>\n";
  h += "</body></html>\n";
  return h;
}

}  // namespace pgsluice::bench
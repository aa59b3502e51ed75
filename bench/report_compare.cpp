// Two saved runs side by side: the terminal table of `pgsluice bench report A B` and its HTML page.
#include <fmt/format.h>

#include <algorithm>
#include <optional>

#include "bench/report.hpp"
#include "bench/report_detail.hpp"

namespace pgsluice::bench {

using namespace detail;

namespace {

// One (group, target) with its summary in each run, where it ran.
struct paired_row {
  group_key group;
  std::string target;
  std::optional<summary_row> a, b;
};

std::vector<paired_row> pair_rows(const bench_run& a, const bench_run& b) {
  std::vector<paired_row> out;
  auto find = [&](const group_key& g, const std::string& t) {
    return std::find_if(out.begin(), out.end(), [&](const paired_row& p) { return p.group == g && p.target == t; });
  };
  for (const auto& r : summarize(a)) out.push_back({r.group, r.target, r, std::nullopt});
  for (const auto& r : summarize(b)) {
    auto it = find(r.group, r.target);
    if (it == out.end()) out.push_back({r.group, r.target, std::nullopt, r});
    else it->b = r;
  }
  // Keep each group's rows together (b-only groups after a's).
  std::stable_sort(out.begin(), out.end(), [&](const paired_row& x, const paired_row& y) {
    auto first_of = [&](const group_key& g) {
      return std::find_if(out.begin(), out.end(), [&](const paired_row& p) { return p.group == g; }) - out.begin();
    };
    return first_of(x.group) < first_of(y.group);
  });
  return out;
}

// "1000 users at 50/s, wait 1s..2s, 60 s" / "10,100 clients, 10 s after 2 s warm-up"
std::string describe(const bench_run& run) {
  const run_config& c = run.config;
  std::string workloads;
  for (const auto& w : c.workloads) workloads += (workloads.empty() ? "" : ",") + w;
  std::string s;
  if (c.users > 0) {
    s = fmt::format("{} users at {}, wait {:g}..{:g} s, {:g} s", c.users,
                    c.spawn_rate > 0 ? fmt::format("{:g}/s", c.spawn_rate) : std::string("once"), c.wait_min_s,
                    c.wait_max_s, c.duration_s);
  } else {
    std::string clients;
    for (auto n : c.clients) clients += (clients.empty() ? "" : ",") + std::to_string(n);
    s = fmt::format("{} clients, {:g} s after {:g} s warm-up", clients, c.duration_s, c.warmup_s);
  }
  s += " · " + workloads;
  if (!run.complete) s += " · INCOMPLETE (stopped halfway)";
  return s;
}

std::string num(const std::optional<summary_row>& r, double summary_row::*field, const char* format) {
  return r ? fmt::format(fmt::runtime(format), (*r).*field) : std::string("-");
}

std::string change(const paired_row& p, double summary_row::*field) {
  return p.a && p.b ? change_text((*p.a).*field, (*p.b).*field) : std::string("-");
}

}  // namespace

std::string format_side_by_side(const bench_run& a, const bench_run& b) {
  std::string out = fmt::format("A: {}  ({})\nB: {}  ({})\n", a.id, describe(a), b.id, describe(b));
  const auto rows = pair_rows(a, b);
  std::size_t width = 6;
  for (const auto& r : rows) width = std::max(width, r.target.size());
  std::optional<group_key> current;
  for (const auto& r : rows) {
    if (!current || !(*current == r.group)) {
      current = r.group;
      out += fmt::format("\n{}\n{:<{}}  {:>10} {:>10} {:>8}  {:>8} {:>8}  {:>8} {:>8}  {:>8} {:>8} {:>8}  {:>8} {:>8}\n",
                         r.group.label(), "target", width, "req/s A", "req/s B", "change", "p50 A", "p50 B", "p95 A",
                         "p95 B", "p99 A", "p99 B", "change", "fails A", "fails B");
    }
    out += fmt::format("{:<{}}  {:>10} {:>10} {:>8}  {:>8} {:>8}  {:>8} {:>8}  {:>8} {:>8} {:>8}  {:>8} {:>8}\n",
                       r.target, width, num(r.a, &summary_row::rps, "{:.1f}"), num(r.b, &summary_row::rps, "{:.1f}"),
                       change(r, &summary_row::rps), num(r.a, &summary_row::p50_ms, "{:.2f}"),
                       num(r.b, &summary_row::p50_ms, "{:.2f}"), num(r.a, &summary_row::p95_ms, "{:.2f}"),
                       num(r.b, &summary_row::p95_ms, "{:.2f}"), num(r.a, &summary_row::p99_ms, "{:.2f}"),
                       num(r.b, &summary_row::p99_ms, "{:.2f}"), change(r, &summary_row::p99_ms),
                       num(r.a, &summary_row::failures, "{:.0f}"), num(r.b, &summary_row::failures, "{:.0f}"));
  }
  if (rows.empty()) out += "\n(no results in either run)\n";
  out += "\nlatencies in ms, medians over repeats; change: from A to B\n";
  return out;
}

std::string format_comparison(const bench_run& run, const bench_run& baseline) {
  return format_side_by_side(baseline, run);
}

std::string detail::comparison_html(const bench_run& a, const bench_run& b) {
  std::string h = fmt::format("<p class=\"meta\">A: {} ({})<br>B: {} ({})</p>\n", esc(a.id), esc(describe(a)), esc(b.id),
                              esc(describe(b)));
  const auto rows = pair_rows(a, b);
  std::optional<group_key> current;
  std::vector<std::string> names, colors;
  bar_series rps_a{"A " + a.id, "#9ca3af", {}}, rps_b{"B " + b.id, "#2563eb", {}};
  bar_series p99_a{"A " + a.id, "#9ca3af", {}}, p99_b{"B " + b.id, "#2563eb", {}};
  auto close_group = [&] {
    if (!current) return;
    h += "</tbody></table><div class=\"charts\">" +
         bar_chart("Requests per second: A and B", "requests/s", names, {rps_a, rps_b}, colors, "{:.0f}") +
         bar_chart("p99 latency: A and B", "ms", names, {p99_a, p99_b}, colors, "{:.2f}") + "</div>\n";
    names.clear();
    colors.clear();
    rps_a.values.clear();
    rps_b.values.clear();
    p99_a.values.clear();
    p99_b.values.clear();
  };
  // Higher requests/s is better, lower latency is better.
  auto cls = [](const paired_row& p, double summary_row::*field, bool higher_better) {
    if (!p.a || !p.b || (*p.a).*field <= 0) return "";
    const double d = ((*p.b).*field - (*p.a).*field) / ((*p.a).*field);
    if (d > 0.05) return higher_better ? "better" : "worse";
    if (d < -0.05) return higher_better ? "worse" : "better";
    return "";
  };
  for (const auto& r : rows) {
    if (!current || !(*current == r.group)) {
      close_group();
      current = r.group;
      h += "<h3>" + esc(r.group.label()) +
           "</h3><table><thead><tr><th>target</th><th>req/s A</th><th>req/s B</th><th>change</th><th>p50 A</th>"
           "<th>p50 B</th><th>p95 A</th><th>p95 B</th><th>p99 A</th><th>p99 B</th><th>change</th><th>failures A</th>"
           "<th>failures B</th></tr></thead><tbody>";
    }
    h += fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"{}\">{}</td><td>{}</td><td>{}</td><td>{}</td>"
                     "<td>{}</td><td>{}</td><td>{}</td><td class=\"{}\">{}</td><td>{}</td><td>{}</td></tr>",
                     esc(r.target), num(r.a, &summary_row::rps, "{:.1f}"), num(r.b, &summary_row::rps, "{:.1f}"),
                     cls(r, &summary_row::rps, true), change(r, &summary_row::rps),
                     num(r.a, &summary_row::p50_ms, "{:.2f}"), num(r.b, &summary_row::p50_ms, "{:.2f}"),
                     num(r.a, &summary_row::p95_ms, "{:.2f}"), num(r.b, &summary_row::p95_ms, "{:.2f}"),
                     num(r.a, &summary_row::p99_ms, "{:.2f}"), num(r.b, &summary_row::p99_ms, "{:.2f}"),
                     cls(r, &summary_row::p99_ms, false), change(r, &summary_row::p99_ms),
                     num(r.a, &summary_row::failures, "{:.0f}"), num(r.b, &summary_row::failures, "{:.0f}"));
    names.push_back(r.target);
    colors.push_back(color_of(r.target, names.size()));
    rps_a.values.push_back(r.a ? r.a->rps : 0);
    rps_b.values.push_back(r.b ? r.b->rps : 0);
    p99_a.values.push_back(r.a ? r.a->p99_ms : 0);
    p99_b.values.push_back(r.b ? r.b->p99_ms : 0);
  }
  close_group();
  if (rows.empty()) h += "<p>No results in either run.</p>\n";
  return h;
}

std::string render_comparison_html(const bench_run& a, const bench_run& b) {
  std::string h = html_head("pgsluice bench: " + a.id + " and " + b.id);
  h += "<h1>pgsluice bench — " + esc(a.id) + " (A) and " + esc(b.id) + " (B)</h1>\n";
  h += comparison_html(a, b);
  h += "<p class=\"meta\">Latencies in ms, medians over repeats; change: from A to B, green where B is better by "
       "more than 5%, red where worse. Compare runs only from the same machine.</p>\n</body></html>\n";
  return h;
}

}  // namespace pgsluice::bench

// Locust-style statistics of runs of users: the per-target table, the targets compared, and the _stats / _stats_history / _failures CSV files.
#include "bench/report_users.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>
#include <stdexcept>

#include "bench/report_detail.hpp"

namespace pgsluice::bench {

using namespace detail;

namespace {

// RFC 4180: quoted when it holds a comma, a quote or a line break (as Python's csv module does).
std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string csv_line(const std::vector<std::string>& fields) {
  std::string out;
  for (std::size_t i = 0; i < fields.size(); ++i) out += (i ? "," : "") + csv_field(fields[i]);
  return out + "\n";
}

std::string ms_text(double v) { return fmt::format("{:.3f}", v); }

std::vector<std::string> percentile_headers() {
  std::vector<std::string> out;
  for (double p : locust_percentiles) out.push_back(fmt::format("{:g}%", p));
  return out;
}

std::vector<std::string> percentile_fields(const latency_histogram& h) {
  std::vector<std::string> out;
  for (double p : locust_percentiles) out.push_back(h.empty() ? "N/A" : ms_text(ms(h.percentile(p))));
  return out;
}

std::string slug(const std::string& s) {
  std::string out;
  for (char c : s) {
    const bool keep = std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
    if (keep) out += c;
    else if (!out.empty() && out.back() != '-') out += '-';
  }
  while (!out.empty() && out.back() == '-') out.pop_back();
  return out.empty() ? "run" : out;
}

std::string fails_text(const request_row& r) {
  const double share = r.requests ? 100.0 * static_cast<double>(r.failures) / static_cast<double>(r.requests) : 0;
  return fmt::format("{}({:.2f}%)", r.failures, share);
}

}  // namespace

std::vector<request_row> request_rows(const bench_run& run, const group_key& g, const std::string& target) {
  std::vector<request_row> rows;
  request_row total;
  total.name = "Aggregated";
  for (const run_result* r : results_of(run, g, target)) {
    total.requests += r->requests + r->failures;
    total.failures += r->failures;
    total.latency.merge(r->latency);
    total.seconds += r->duration_s;
    for (const auto& [k, n] : r->errors) total.errors[k] += n;
    for (const request_stats& s : r->by_request) {
      auto it = std::find_if(rows.begin(), rows.end(),
                             [&](const request_row& x) { return x.type == s.kind.type && x.name == s.kind.name; });
      if (it == rows.end()) {
        it = rows.insert(rows.end(), request_row{});
        it->type = s.kind.type;
        it->name = s.kind.name;
      }
      it->requests += s.requests + s.failures;
      it->failures += s.failures;
      it->latency.merge(s.latency);
      for (const auto& [k, n] : s.errors) it->errors[k] += n;
    }
  }
  // Kinds the workload has but that never ran are left out; every row covers the same time.
  std::erase_if(rows, [](const request_row& r) { return r.requests == 0; });
  for (auto& r : rows) r.seconds = total.seconds;
  rows.push_back(std::move(total));
  return rows;
}

std::string format_users_table(const bench_run& run) {
  const run_config& c = run.config;
  std::string out;
  for (const group_key& g : groups_of(run)) {
    const auto summary = summarize(run);
    std::vector<const summary_row*> group_rows;
    for (const auto& s : summary)
      if (s.group == g) group_rows.push_back(&s);
    for (const summary_row* s : group_rows) {
      const auto rows = request_rows(run, g, s->target);
      std::size_t name_width = 10;
      for (const auto& r : rows) name_width = std::max(name_width, r.name.size());
      out += fmt::format("\n== {} · {}", g.label(), s->target);
      if (g.users)
        out += fmt::format("  (spawn {}, wait {:g}..{:g} s, {:g} s{})",
                           c.spawn_rate > 0 ? fmt::format("{:g}/s", c.spawn_rate) : std::string("all at once"),
                           c.wait_min_s, c.wait_max_s, c.duration_s,
                           s->repeats > 1 ? fmt::format(", {} runs summed", s->repeats) : std::string());
      out += '\n';
      const std::string header = fmt::format(
          "{:<8} {:<{}} {:>10} {:>14} | {:>9} {:>9} {:>9} {:>9} | {:>9} {:>10} | {:>9} {:>9}\n", "Type", "Name",
          name_width, "# requests", "# fails", "Median", "Average", "Min", "Max", "req/s", "failures/s", "p95", "p99");
      const std::string rule = std::string(8, '-') + ' ' + std::string(name_width, '-') + ' ' + std::string(10, '-') +
                               ' ' + std::string(14, '-') + " | " + std::string(39, '-') + " | " + std::string(20, '-') +
                               " | " + std::string(19, '-') + '\n';
      out += header + rule;
      for (const auto& r : rows) {
        if (r.name == "Aggregated" && &r == &rows.back()) out += rule;
        out += fmt::format("{:<8} {:<{}} {:>10} {:>14} | {:>9.2f} {:>9.2f} {:>9.2f} {:>9.2f} | {:>9.1f} {:>10.2f} | {:>9.2f} {:>9.2f}\n",
                           r.type, r.name, name_width, r.requests, fails_text(r), ms(r.latency.percentile(50)),
                           r.latency.mean() / 1e6, ms(r.latency.min()), ms(r.latency.max()), r.rps(),
                           r.failures_per_second(), ms(r.latency.percentile(95)), ms(r.latency.percentile(99)));
      }
      for (const auto& [kind, n] : rows.back().errors) out += fmt::format("   failure {}: {}\n", kind, n);
    }
    if (group_rows.size() > 1) {
      std::size_t width = 6;
      for (const auto* s : group_rows) width = std::max(width, s->target.size());
      out += fmt::format("\n{}: targets compared (successful requests/s; ratio = the row's over the column's)\n", g.label());
      out += fmt::format("{:<{}}  {:>10}  {:>8}  {:>8}  {:>8}  {:>9}", "target", width, "req/s", "p50 ms", "p95 ms",
                         "p99 ms", "failures");
      for (const auto* other : group_rows) out += fmt::format("  {:>{}}", "vs " + other->target, other->target.size() + 3);
      out += '\n';
      for (const auto* s : group_rows) {
        out += fmt::format("{:<{}}  {:>10.1f}  {:>8.2f}  {:>8.2f}  {:>8.2f}  {:>9.0f}", s->target, width, s->rps,
                           s->p50_ms, s->p95_ms, s->p99_ms, s->failures);
        for (const auto* other : group_rows) {
          const std::optional<double> ratio =
              other->rps > 0 ? std::optional<double>(s->rps / other->rps) : std::nullopt;
          out += fmt::format("  {:>{}}", other == s ? std::string("-") : ratio_text(ratio), other->target.size() + 3);
        }
        out += '\n';
      }
    }
  }
  if (!run.complete) out += "\nINCOMPLETE: the run was stopped before its end; the figures cover the time measured\n";
  out += "\n# requests counts failed requests too (as Locust does); times in ms, of the successful requests\n";
  return out;
}

std::string format_users_live_line(const std::string& target, std::uint32_t users, const live_sample& s) {
  const timeline_point& p = s.point;
  return fmt::format("[{:>4}s] {:<16} users {:>5}/{:<5} req/s {:>7}  p50 {:>7.2f}  p95 {:>7.2f}  p99 {:>7.2f} ms  fails {:>5}{}",
                     p.second + 1, target, p.users, users, p.requests, p.p50_ms, p.p95_ms, p.p99_ms, p.errors,
                     s.warmup ? "  (warm-up)" : "");
}

std::string locust_stats_csv(const std::vector<request_row>& rows) {
  std::vector<std::string> header{"Type",
                                  "Name",
                                  "Request Count",
                                  "Failure Count",
                                  "Median Response Time",
                                  "Average Response Time",
                                  "Min Response Time",
                                  "Max Response Time",
                                  "Average Content Size",
                                  "Requests/s",
                                  "Failures/s"};
  for (auto& p : percentile_headers()) header.push_back(std::move(p));
  std::string out = csv_line(header);
  for (const auto& r : rows) {
    std::vector<std::string> f{r.type,
                               r.name,
                               std::to_string(r.requests),
                               std::to_string(r.failures),
                               ms_text(ms(r.latency.percentile(50))),
                               ms_text(r.latency.mean() / 1e6),
                               ms_text(ms(r.latency.min())),
                               ms_text(ms(r.latency.max())),
                               "0",
                               fmt::format("{:.6f}", r.rps()),
                               fmt::format("{:.6f}", r.failures_per_second())};
    for (auto& p : percentile_fields(r.latency)) f.push_back(std::move(p));
    out += csv_line(f);
  }
  return out;
}

std::string locust_history_csv(const run_result& r) {
  std::vector<std::string> header{"Timestamp", "User Count", "Type", "Name", "Requests/s", "Failures/s"};
  for (auto& p : percentile_headers()) header.push_back(std::move(p));
  for (const char* h : {"Total Request Count", "Total Failure Count", "Total Median Response Time",
                        "Total Average Response Time", "Total Min Response Time", "Total Max Response Time",
                        "Total Average Content Size"})
    header.emplace_back(h);
  std::string out = csv_line(header);
  for (const timeline_point& p : r.timeline) {
    const auto when = static_cast<std::int64_t>(std::floor(r.started_unix)) + p.second + 1;
    std::vector<std::string> f{std::to_string(when),
                               std::to_string(p.users ? p.users : p.connected),
                               "",
                               "Aggregated",
                               fmt::format("{:.6f}", static_cast<double>(p.requests)),
                               fmt::format("{:.6f}", static_cast<double>(p.errors))};
    for (std::size_t i = 0; i < locust_percentiles.size(); ++i)
      f.push_back(p.requests ? ms_text(p.percentiles_ms[i]) : "N/A");
    const bool any = p.total_requests > 0;
    f.insert(f.end(), {std::to_string(p.total_requests + p.total_errors), std::to_string(p.total_errors),
                       any ? ms_text(p.total_p50_ms) : "0", any ? ms_text(p.total_mean_ms) : "0",
                       any ? ms_text(p.total_min_ms) : "0", any ? ms_text(p.total_max_ms) : "0", "0"});
    out += csv_line(f);
  }
  return out;
}

std::string locust_failures_csv(const std::vector<request_row>& rows, const run_result* sample_source) {
  std::string out = csv_line({"Method", "Name", "Error", "Occurrences"});
  for (const auto& r : rows) {
    if (r.name == "Aggregated" && r.type.empty()) continue;
    for (const auto& [kind, n] : r.errors) {
      std::string error = kind;
      if (sample_source)
        if (auto it = sample_source->error_samples.find(kind); it != sample_source->error_samples.end())
          error += ": " + it->second;
      out += csv_line({r.type, r.name, error, std::to_string(n)});
    }
  }
  return out;
}

std::vector<std::filesystem::path> write_locust_csv(const bench_run& run, const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  const auto groups = groups_of(run);
  std::vector<std::filesystem::path> files;
  auto write = [&](const std::filesystem::path& file, const std::string& text) {
    std::ofstream out(file);
    out << text;
    if (!out) throw std::runtime_error("cannot write " + file.string());
    files.push_back(file);
  };
  for (const group_key& g : groups) {
    for (const std::string& target : target_order(run)) {
      const run_result* shown = representative(run, g, target);
      if (!shown) continue;
      std::string prefix = slug(target);
      if (groups.size() > 1)
        prefix = slug(g.workload) + "_" + g.protocol + "_" + std::to_string(g.clients) + (g.users ? "users" : "clients") +
                 (g.connect_per_transaction ? "_connect" : "") + "_" + prefix;
      const auto rows = request_rows(run, g, target);
      write(dir / (prefix + "_stats.csv"), locust_stats_csv(rows));
      write(dir / (prefix + "_stats_history.csv"), locust_history_csv(*shown));
      write(dir / (prefix + "_failures.csv"), locust_failures_csv(rows, shown));
    }
  }
  return files;
}

}  // namespace pgsluice::bench

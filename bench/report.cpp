// Bench results: the data model's helpers, medians and ratios, the terminal table and the live lines.
#include "bench/report.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <stdexcept>

#include "bench/report_detail.hpp"

namespace pgsluice::bench {

using detail::groups_of;
using detail::ms;
using detail::ratio_text;
using detail::target_order;

namespace detail {

std::vector<std::string> target_order(const bench_run& run) {
  std::vector<std::string> order;
  for (const auto& t : run.config.targets) order.push_back(t.name);
  for (const auto& r : run.results)
    if (std::find(order.begin(), order.end(), r.target) == order.end()) order.push_back(r.target);
  return order;
}

std::vector<group_key> groups_of(const bench_run& run) {
  std::vector<group_key> groups;
  for (const auto& r : run.results)
    if (std::find(groups.begin(), groups.end(), r.group) == groups.end()) groups.push_back(r.group);
  return groups;
}

std::vector<const run_result*> results_of(const bench_run& run, const group_key& g, const std::string& target) {
  std::vector<const run_result*> mine;
  for (const auto& r : run.results)
    if (r.group == g && r.target == target) mine.push_back(&r);
  return mine;
}

std::string ratio_text(const std::optional<double>& r) { return r ? fmt::format("{:.2f}x", *r) : std::string("-"); }

std::string change_text(double before, double after) {
  return before > 0 ? fmt::format("{:+.1f}%", (after - before) / before * 100) : std::string("-");
}

std::string stale_text(const std::optional<std::uint64_t>& n) { return n ? std::to_string(*n) : std::string("-"); }

std::string memory_text(const std::optional<memory_usage>& m) {
  if (!m) return "-";
  const std::uint64_t kb = m->pss_kb ? m->pss_kb : m->rss_kb;
  return fmt::format("{:.1f}", static_cast<double>(kb) / 1024.0);
}

}  // namespace detail

using detail::memory_text;
using detail::stale_text;

std::string group_key::label() const {
  const char* noun = users ? (clients == 1 ? " user" : " users") : (clients == 1 ? " client" : " clients");
  std::string s = workload + " · " + protocol + " · " + std::to_string(clients) + noun;
  if (connect_per_transaction) s += " · connect per transaction";
  return s;
}

std::vector<node_activity> activity_between(const std::vector<node_activity>& before,
                                            const std::vector<node_activity>& after) {
  std::vector<node_activity> out;
  for (const auto& a : after) {
    const auto b = std::find_if(before.begin(), before.end(), [&](const node_activity& n) { return n.node == a.node; });
    if (b == before.end()) continue;
    out.push_back({a.node, a.scans > b->scans ? a.scans - b->scans : 0, a.xacts > b->xacts ? a.xacts - b->xacts : 0});
  }
  return out;
}

std::vector<read_share> read_shares(const std::vector<const std::vector<node_activity>*>& repeats) {
  std::vector<read_share> out;
  std::uint64_t total = 0;
  for (const auto* nodes : repeats)
    for (const auto& n : *nodes) {
      auto it = std::find_if(out.begin(), out.end(), [&](const read_share& s) { return s.node == n.node; });
      if (it == out.end()) it = out.insert(out.end(), read_share{n.node, 0, 0});
      it->scans += n.scans;
      total += n.scans;
    }
  for (auto& s : out) s.share = total ? static_cast<double>(s.scans) / static_cast<double>(total) : 0;
  return out;
}

std::string format_read_shares(const std::vector<read_share>& shares) {
  std::string out;
  for (const auto& s : shares) out += fmt::format("{}{} {:.0f}%", out.empty() ? "" : " · ", s.node, s.share * 100);
  return out;
}

run_result run_result::from(const std::string& target, const group_key& group, std::uint32_t repeat,
                            const load_result& r) {
  run_result out;
  out.target = target;
  out.group = group;
  out.repeat = repeat;
  out.requests = r.requests;
  out.failures = r.failures;
  out.stale_reads = r.stale_reads;
  out.errors = r.errors;
  out.error_samples = r.error_samples;
  out.duration_s = r.measured_seconds;
  out.warmup_s = r.warmup_seconds;
  out.connections_opened = r.connections_opened;
  out.latency = r.latency;
  out.connect_latency = r.connect_latency;
  out.timeline = r.timeline;
  out.by_request = r.by_request;
  for (auto& row : out.by_request)
    if (row.kind.name.empty()) row.kind = {"sql", group.workload};  // a workload with one kind of request
  return out;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

std::vector<summary_row> summarize(const bench_run& run) {
  std::vector<summary_row> rows;
  const auto order = target_order(run);
  for (const group_key& g : groups_of(run)) {
    const std::size_t first = rows.size();
    for (const std::string& target : order) {
      std::vector<const run_result*> mine;
      for (const auto& r : run.results)
        if (r.group == g && r.target == target) mine.push_back(&r);
      if (mine.empty()) continue;
      auto med = [&](auto&& metric) {
        std::vector<double> values;
        for (const auto* r : mine) values.push_back(metric(*r));
        return median(std::move(values));
      };
      summary_row row;
      row.group = g;
      row.target = target;
      row.repeats = static_cast<std::uint32_t>(mine.size());
      row.requests = med([](const run_result& r) { return static_cast<double>(r.requests); });
      row.failures = med([](const run_result& r) { return static_cast<double>(r.failures); });
      row.rps = med([](const run_result& r) { return r.rps(); });
      row.mean_ms = med([](const run_result& r) { return r.latency.mean() / 1e6; });
      row.p50_ms = med([](const run_result& r) { return ms(r.latency.percentile(50)); });
      row.p95_ms = med([](const run_result& r) { return ms(r.latency.percentile(95)); });
      row.p99_ms = med([](const run_result& r) { return ms(r.latency.percentile(99)); });
      row.max_ms = med([](const run_result& r) { return ms(r.latency.max()); });
      std::vector<const std::vector<node_activity>*> activity;
      for (const auto* r : mine) {
        if (r->reads_checked) row.stale_reads = row.stale_reads.value_or(0) + r->stale_reads;
        if (!r->backend_activity.empty()) activity.push_back(&r->backend_activity);
      }
      if (!activity.empty()) row.read_shares = read_shares(activity);
      for (const auto* r : mine) {
        for (const auto& [k, v] : r->errors) row.errors[k] += v;
        if (r->memory && (!row.memory || r->memory->rss_kb > row.memory->rss_kb)) row.memory = r->memory;
      }
      rows.push_back(std::move(row));
    }
    auto rps_of = [&](const char* name) -> std::optional<double> {
      for (std::size_t i = first; i < rows.size(); ++i)
        if (rows[i].target == name && rows[i].rps > 0) return rows[i].rps;
      return std::nullopt;
    };
    const auto bouncer = rps_of("pgbouncer"), direct = rps_of("direct");
    for (std::size_t i = first; i < rows.size(); ++i) {
      if (bouncer) rows[i].vs_pgbouncer = rows[i].rps / *bouncer;
      if (direct) rows[i].vs_direct = rows[i].rps / *direct;
    }
  }
  return rows;
}

std::string format_table(const bench_run& run) {
  const auto rows = summarize(run);
  const bool any_memory = std::any_of(rows.begin(), rows.end(), [](const summary_row& r) { return r.memory.has_value(); });
  const bool any_stale_check =
      std::any_of(rows.begin(), rows.end(), [](const summary_row& r) { return r.stale_reads.has_value(); });
  const bool any_shares = std::any_of(rows.begin(), rows.end(), [](const summary_row& r) { return !r.read_shares.empty(); });
  std::string out;
  std::size_t name_width = 6;
  for (const auto& r : rows) name_width = std::max(name_width, r.target.size());
  std::optional<group_key> current;
  for (const auto& r : rows) {
    if (!current || !(*current == r.group)) {
      current = r.group;
      if (!out.empty()) out += '\n';
      out += fmt::format("{}  (median of {} run{}, {:g} s each)\n", r.group.label(), r.repeats,
                         r.repeats == 1 ? "" : "s", run.config.duration_s);
      out += fmt::format("{:<{}}  {:>10}  {:>8}  {:>6}  {:>9}  {:>10}  {:>8}  {:>8}  {:>9}  {:>10}  {:>12}  {:>9}",
                         "target", name_width, "requests", "failures", "stale", "median ms", "average ms", "p95 ms",
                         "p99 ms", "max ms", "requests/s", "vs pgbouncer", "vs direct");
      if (any_memory) out += fmt::format("  {:>8}", "mem MiB");
      out += '\n';
    }
    out += fmt::format("{:<{}}  {:>10.0f}  {:>8.0f}  {:>6}  {:>9.2f}  {:>10.2f}  {:>8.2f}  {:>8.2f}  {:>9.2f}  {:>10.1f}  {:>12}  {:>9}",
                       r.target, name_width, r.requests, r.failures, stale_text(r.stale_reads), r.p50_ms, r.mean_ms,
                       r.p95_ms, r.p99_ms, r.max_ms, r.rps, ratio_text(r.vs_pgbouncer), ratio_text(r.vs_direct));
    if (any_memory) out += fmt::format("  {:>8}", memory_text(r.memory));
    out += '\n';
    if (!r.errors.empty()) {
      std::string list;
      for (const auto& [k, v] : r.errors) list += fmt::format("{}{} {}", list.empty() ? "" : ", ", k, v);
      out += fmt::format("{:<{}}    failures: {}\n", "", name_width, list);
    }
    if (!r.read_shares.empty())
      out += fmt::format("{:<{}}    reads served by: {}\n", "", name_width, format_read_shares(r.read_shares));
  }
  if (any_stale_check)
    out += "\nstale: reads that missed the row the same request had just written, summed over the repeats "
           "(those requests are counted as completed, not as failures); - where the workload does not check\n";
  if (any_shares)
    out += "\nreads served by: each server's share of the table scans (seq_scan + idx_scan of pg_stat_user_tables, "
           "sampled on each server before and after the run); approximate: PostgreSQL publishes a busy backend's "
           "counters once a second and an idle one's last second up to 10 s later, so about a second of the "
           "previous run's reads can land in the next run's shares\n";
  if (any_memory)
    out += "\nmem MiB: peak proportional set size (PSS) of each target's own processes during the run; "
           "results.json has RSS too\n";
  return out;
}

std::string format_live_line(const std::string& target, std::uint32_t clients, const live_sample& s) {
  return fmt::format("[{:>4}s] {:<16} c={:<5} tps {:>8}  p50 {:>8.2f} ms  p99 {:>8.2f} ms  err {:>6}  conn {:>5}{}{}",
                     s.point.second + 1, target, clients, s.point.requests, s.point.p50_ms, s.point.p99_ms,
                     s.point.errors, s.point.connected,
                     s.point.stale_reads ? fmt::format("  stale {}", s.point.stale_reads) : std::string(),
                     s.warmup ? "  (warm-up)" : "");
}

std::string format_result_line(const run_result& r) {
  std::string line = fmt::format("   -> {} requests ({:.1f}/s), {} failures, p50 {:.2f} ms, p99 {:.2f} ms, max {:.2f} ms",
                                 r.requests, r.rps(), r.failures, ms(r.latency.percentile(50)),
                                 ms(r.latency.percentile(99)), ms(r.latency.max()));
  if (r.reads_checked) line += fmt::format(", {} stale reads", r.stale_reads);
  if (!r.backend_activity.empty()) {
    const std::vector<const std::vector<node_activity>*> one{&r.backend_activity};
    line += ", reads served by " + format_read_shares(read_shares(one));
  }
  if (r.memory) line += fmt::format(", memory {} MiB", memory_text(r.memory));
  return line;
}
std::string timestamp_id(std::string* iso) {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char id[32], full[32];
  std::strftime(id, sizeof id, "%Y-%m-%dT%H-%M-%S", &tm);
  std::strftime(full, sizeof full, "%Y-%m-%dT%H:%M:%SZ", &tm);
  if (iso) *iso = full;
  return id;
}

std::string redact_conninfo(const std::string& conninfo) {
  std::string s = conninfo;
  const auto scheme = s.find("://");
  if (scheme != std::string::npos) {
    const auto at = s.find('@', scheme + 3);
    const auto slash = s.find('/', scheme + 3);
    if (at != std::string::npos && (slash == std::string::npos || at < slash)) {
      const auto colon = s.find(':', scheme + 3);
      if (colon != std::string::npos && colon < at) s.erase(colon, at - colon);
    }
    // ...?password=x&...
    for (std::size_t p; (p = s.find("password=", scheme)) != std::string::npos;) {
      const auto end = s.find('&', p);
      s.erase(p, end == std::string::npos ? std::string::npos : end - p + 1);
    }
    if (!s.empty() && (s.back() == '?' || s.back() == '&')) s.pop_back();
    return s;
  }
  // key=value form: drop password='...' or password=...
  for (std::size_t p; (p = s.find("password=")) != std::string::npos;) {
    std::size_t end = p + 9;
    if (end < s.size() && s[end] == '\'') {
      ++end;
      while (end < s.size() && s[end] != '\'') end += s[end] == '\\' ? 2 : 1;
      ++end;
    } else {
      while (end < s.size() && s[end] != ' ') ++end;
    }
    while (end < s.size() && s[end] == ' ') ++end;
    s.erase(p, end - p);
  }
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

}  // namespace pgsluice::bench

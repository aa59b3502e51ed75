// Bench results: medians and ratios, the terminal table, JSON persistence and the HTML report with inline SVG charts.
#include "bench/report.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>

namespace pgsluice::bench {

using json = nlohmann::json;

namespace {

double ms(std::uint64_t ns) { return static_cast<double>(ns) / 1e6; }

// The order targets appear in: as configured, then anything else in first-seen order.
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

std::string ratio_text(const std::optional<double>& r) { return r ? fmt::format("{:.2f}x", *r) : std::string("-"); }

std::string stale_text(const std::optional<std::uint64_t>& n) { return n ? std::to_string(*n) : std::string("-"); }

std::string memory_text(const std::optional<memory_usage>& m) {
  if (!m) return "-";
  const std::uint64_t kb = m->pss_kb ? m->pss_kb : m->rss_kb;
  return fmt::format("{:.1f}", static_cast<double>(kb) / 1024.0);
}

}  // namespace

std::string group_key::label() const {
  std::string s = workload + " · " + protocol + " · " + std::to_string(clients) + (clients == 1 ? " client" : " clients");
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

std::string format_comparison(const bench_run& run, const bench_run& baseline) {
  const auto now = summarize(run);
  const auto before = summarize(baseline);
  std::string out = fmt::format("{} compared with {}\n", run.id, baseline.id);
  std::optional<group_key> current;
  for (const auto& r : now) {
    const auto it = std::find_if(before.begin(), before.end(),
                                 [&](const summary_row& b) { return b.group == r.group && b.target == r.target; });
    if (it == before.end()) continue;
    if (!current || !(*current == r.group)) {
      current = r.group;
      out += fmt::format("\n{}\n{:<18}  {:>12}  {:>12}  {:>8}  {:>10}  {:>10}  {:>8}\n", r.group.label(), "target",
                         "req/s before", "req/s now", "change", "p99 before", "p99 now", "change");
    }
    auto change = [](double a, double b) { return a > 0 ? fmt::format("{:+.1f}%", (b - a) / a * 100) : std::string("-"); };
    out += fmt::format("{:<18}  {:>12.1f}  {:>12.1f}  {:>8}  {:>10.2f}  {:>10.2f}  {:>8}\n", r.target, it->rps, r.rps,
                       change(it->rps, r.rps), it->p99_ms, r.p99_ms, change(it->p99_ms, r.p99_ms));
  }
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

// ---- JSON ------------------------------------------------------------------------------------

namespace {

json histogram_json(const latency_histogram& h) {
  json buckets = json::array();
  for (const auto& [lower, count] : h.nonzero_buckets()) buckets.push_back({lower, count});
  return json{{"count", h.count()},
              {"min_ns", h.min()},
              {"max_ns", h.max()},
              {"sum_ns", h.sum()},
              {"percentiles_ms",
               {{"mean", h.mean() / 1e6},
                {"p50", ms(h.percentile(50))},
                {"p90", ms(h.percentile(90))},
                {"p95", ms(h.percentile(95))},
                {"p99", ms(h.percentile(99))},
                {"p99.9", ms(h.percentile(99.9))},
                {"max", ms(h.max())}}},
              {"buckets", buckets}};
}

latency_histogram histogram_from_json(const json& j) {
  std::vector<std::pair<std::uint64_t, std::uint64_t>> buckets;
  for (const auto& b : j.at("buckets")) buckets.emplace_back(b.at(0).get<std::uint64_t>(), b.at(1).get<std::uint64_t>());
  return latency_histogram::from_buckets(buckets, j.at("min_ns").get<std::uint64_t>(), j.at("max_ns").get<std::uint64_t>(),
                                         j.at("sum_ns").get<double>());
}

json memory_json(const std::optional<memory_usage>& m) {
  if (!m) return nullptr;
  return json{{"rss_kb", m->rss_kb}, {"pss_kb", m->pss_kb}, {"processes", m->processes}};
}

std::optional<memory_usage> memory_from_json(const json& j) {
  if (j.is_null()) return std::nullopt;
  memory_usage m;
  m.rss_kb = j.at("rss_kb").get<std::uint64_t>();
  m.pss_kb = j.value("pss_kb", std::uint64_t{0});
  m.processes = j.value("processes", std::uint32_t{0});
  return m;
}

json group_json(const group_key& g) {
  return json{{"workload", g.workload},
              {"protocol", g.protocol},
              {"clients", g.clients},
              {"connect_per_transaction", g.connect_per_transaction}};
}

group_key group_from_json(const json& j) {
  group_key g;
  g.workload = j.at("workload").get<std::string>();
  g.protocol = j.at("protocol").get<std::string>();
  g.clients = j.at("clients").get<std::uint32_t>();
  g.connect_per_transaction = j.value("connect_per_transaction", false);
  return g;
}

json optional_json(const std::optional<double>& v) { return v ? json(*v) : json(nullptr); }

json activity_json(const std::vector<node_activity>& nodes) {
  json out = json::array();
  for (const auto& n : nodes) out.push_back({{"node", n.node}, {"scans", n.scans}, {"xacts", n.xacts}});
  return out;
}

json shares_json(const std::vector<read_share>& shares) {
  json out = json::array();
  for (const auto& s : shares) out.push_back({{"node", s.node}, {"scans", s.scans}, {"share", s.share}});
  return out;
}

}  // namespace

json to_json(const bench_run& run) {
  json machine{{"cores", run.machine.cores},
               {"ram_bytes", run.machine.ram_bytes},
               {"cpu_model", run.machine.cpu_model},
               {"kernel", run.machine.kernel},
               {"os", run.machine.os},
               {"versions", run.machine.versions}};
  json targets = json::array();
  for (const auto& t : run.config.targets) targets.push_back({{"name", t.name}, {"url", t.url}});
  const run_config& c = run.config;
  json config{{"workloads", c.workloads},
              {"protocols", c.protocols},
              {"clients", c.clients},
              {"targets", targets},
              {"duration_s", c.duration_s},
              {"warmup_s", c.warmup_s},
              {"ramp", c.ramp},
              {"repeat", c.repeat},
              {"threads", c.threads},
              {"connect_per_transaction", c.connect_per_transaction},
              {"read_ratio", c.read_ratio},
              {"distribution", c.distribution},
              {"region", c.region},
              {"scale", c.scale}};
  json results = json::array();
  for (const auto& r : run.results) {
    json timeline = json::array();
    for (const auto& p : r.timeline)
      timeline.push_back({{"second", p.second},
                          {"requests", p.requests},
                          {"errors", p.errors},
                          {"stale_reads", p.stale_reads},
                          {"p50_ms", p.p50_ms},
                          {"p95_ms", p.p95_ms},
                          {"p99_ms", p.p99_ms},
                          {"connected", p.connected}});
    results.push_back({{"target", r.target},
                       {"group", group_json(r.group)},
                       {"repeat", r.repeat},
                       {"requests", r.requests},
                       {"failures", r.failures},
                       {"stale_reads", r.stale_reads},
                       {"reads_checked", r.reads_checked},
                       {"backend_activity", activity_json(r.backend_activity)},
                       {"requests_per_second", r.rps()},
                       {"errors", r.errors},
                       {"error_samples", r.error_samples},
                       {"duration_s", r.duration_s},
                       {"warmup_s", r.warmup_s},
                       {"connections_opened", r.connections_opened},
                       {"latency", histogram_json(r.latency)},
                       {"connect_latency", histogram_json(r.connect_latency)},
                       {"timeline", timeline},
                       {"memory", memory_json(r.memory)},
                       {"memory_scope", r.memory_scope}});
  }
  json summary = json::array();
  for (const auto& s : summarize(run))
    summary.push_back({{"group", group_json(s.group)},
                       {"target", s.target},
                       {"repeats", s.repeats},
                       {"requests", s.requests},
                       {"failures", s.failures},
                       {"stale_reads", s.stale_reads ? json(*s.stale_reads) : json(nullptr)},
                       {"read_shares", shares_json(s.read_shares)},
                       {"requests_per_second", s.rps},
                       {"latency_ms", {{"mean", s.mean_ms}, {"p50", s.p50_ms}, {"p95", s.p95_ms}, {"p99", s.p99_ms}, {"max", s.max_ms}}},
                       {"vs_pgbouncer", optional_json(s.vs_pgbouncer)},
                       {"vs_direct", optional_json(s.vs_direct)},
                       {"memory", memory_json(s.memory)},
                       {"errors", s.errors}});
  return json{{"format", "pgsluice-bench-results"},
              {"version", 1},
              {"id", run.id},
              {"started_at", run.started_at},
              {"machine", machine},
              {"config", config},
              {"notes", run.notes},
              {"results", results},
              {"summary", summary}};
}

bench_run bench_run_from_json(const json& j) {
  if (j.value("format", std::string()) != "pgsluice-bench-results")
    throw std::runtime_error("not a pgsluice bench results file (no \"format\": \"pgsluice-bench-results\")");
  bench_run run;
  run.id = j.at("id").get<std::string>();
  run.started_at = j.value("started_at", std::string());
  const json& m = j.at("machine");
  run.machine.cores = m.value("cores", 0u);
  run.machine.ram_bytes = m.value("ram_bytes", std::uint64_t{0});
  run.machine.cpu_model = m.value("cpu_model", std::string());
  run.machine.kernel = m.value("kernel", std::string());
  run.machine.os = m.value("os", std::string());
  run.machine.versions = m.value("versions", std::map<std::string, std::string>());
  const json& c = j.at("config");
  run_config& rc = run.config;
  rc.workloads = c.value("workloads", std::vector<std::string>());
  rc.protocols = c.value("protocols", std::vector<std::string>());
  rc.clients = c.value("clients", std::vector<std::uint32_t>());
  for (const auto& t : c.value("targets", json::array()))
    rc.targets.push_back({t.at("name").get<std::string>(), t.value("url", std::string())});
  rc.duration_s = c.value("duration_s", 0.0);
  rc.warmup_s = c.value("warmup_s", 0.0);
  rc.ramp = c.value("ramp", 0.0);
  rc.repeat = c.value("repeat", 1u);
  rc.threads = c.value("threads", 0u);
  rc.connect_per_transaction = c.value("connect_per_transaction", false);
  rc.read_ratio = c.value("read_ratio", 0.0);
  rc.distribution = c.value("distribution", std::string());
  rc.region = c.value("region", std::string());
  rc.scale = c.value("scale", 0.0);
  run.notes = j.value("notes", std::vector<std::string>());
  for (const auto& r : j.at("results")) {
    run_result out;
    out.target = r.at("target").get<std::string>();
    out.group = group_from_json(r.at("group"));
    out.repeat = r.value("repeat", 0u);
    out.requests = r.at("requests").get<std::uint64_t>();
    out.failures = r.at("failures").get<std::uint64_t>();
    out.stale_reads = r.value("stale_reads", std::uint64_t{0});
    out.reads_checked = r.value("reads_checked", false);
    for (const auto& n : r.value("backend_activity", json::array()))
      out.backend_activity.push_back({n.at("node").get<std::string>(), n.value("scans", std::uint64_t{0}),
                                      n.value("xacts", std::uint64_t{0})});
    out.errors = r.value("errors", std::map<std::string, std::uint64_t>());
    out.error_samples = r.value("error_samples", std::map<std::string, std::string>());
    out.duration_s = r.at("duration_s").get<double>();
    out.warmup_s = r.value("warmup_s", 0.0);
    out.connections_opened = r.value("connections_opened", std::uint64_t{0});
    out.latency = histogram_from_json(r.at("latency"));
    if (r.contains("connect_latency")) out.connect_latency = histogram_from_json(r.at("connect_latency"));
    for (const auto& p : r.value("timeline", json::array())) {
      timeline_point t;
      t.second = p.at("second").get<std::uint32_t>();
      t.requests = p.at("requests").get<std::uint64_t>();
      t.errors = p.at("errors").get<std::uint64_t>();
      t.stale_reads = p.value("stale_reads", std::uint64_t{0});
      t.p50_ms = p.at("p50_ms").get<double>();
      t.p95_ms = p.value("p95_ms", 0.0);  // absent from results written before it was recorded
      t.p99_ms = p.at("p99_ms").get<double>();
      t.connected = p.value("connected", 0u);
      out.timeline.push_back(t);
    }
    out.memory = memory_from_json(r.value("memory", json(nullptr)));
    out.memory_scope = r.value("memory_scope", std::string());
    run.results.push_back(std::move(out));
  }
  return run;
}

std::filesystem::path save_run(const bench_run& run, const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  const auto file = dir / "results.json";
  const auto tmp = dir / "results.json.tmp";
  {
    std::ofstream out(tmp);
    out << to_json(run).dump(1) << '\n';
    if (!out) throw std::runtime_error("cannot write " + tmp.string());
  }
  std::filesystem::rename(tmp, file);
  return file;
}

bench_run load_run(const std::filesystem::path& path) {
  const auto file = std::filesystem::is_directory(path) ? path / "results.json" : path;
  std::ifstream in(file);
  if (!in) throw std::runtime_error("cannot read " + file.string());
  try {
    return bench_run_from_json(json::parse(in));
  } catch (const json::exception& e) {
    throw std::runtime_error(file.string() + ": " + e.what());
  }
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

// ---- HTML ------------------------------------------------------------------------------------

namespace {

std::string esc(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string color_of(const std::string& target, std::size_t index) {
  static const std::map<std::string, std::string> known{{"direct", "#6b7280"},
                                                        {"pgbouncer", "#2563eb"},
                                                        {"pgpool", "#ea580c"},
                                                        {"pgbouncer-pgpool", "#9333ea"},
                                                        {"pgsluice", "#16a34a"},
                                                        {"pgsluice-routed", "#0d9488"}};
  static const char* palette[] = {"#0891b2", "#db2777", "#ca8a04", "#4f46e5", "#65a30d", "#dc2626"};
  if (auto it = known.find(target); it != known.end()) return it->second;
  return palette[index % (sizeof palette / sizeof *palette)];
}

// A tick step of 1, 2 or 5 times a power of ten giving about five ticks.
double nice_step(double max) {
  if (max <= 0) return 1;
  const double raw = max / 5;
  const double power = std::pow(10, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (raw <= m * power) return m * power;
  return 10 * power;
}

std::string tick_label(double v) {
  if (v >= 1e6) return fmt::format("{:g}M", v / 1e6);
  if (v >= 1e4) return fmt::format("{:g}k", v / 1e3);
  return fmt::format("{:g}", v);
}

constexpr int chart_w = 560, chart_h = 280, margin_l = 60, margin_r = 16, margin_t = 32, margin_b = 56;

// Frame, title, horizontal grid lines and y labels; returns the y-axis maximum used.
double chart_frame(std::string& svg, const std::string& title, const std::string& y_label, double max_value) {
  const double step = nice_step(max_value);
  const double top = std::max(step, std::ceil(max_value / step) * step);
  const int plot_h = chart_h - margin_t - margin_b;
  svg += fmt::format("<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\" role=\"img\">",
                     chart_w, chart_h, chart_w, chart_h);
  // Styles inside each chart, so a chart copied out of the page still renders the same.
  svg += "<style>text{font-family:system-ui,-apple-system,Segoe UI,sans-serif}.title{font-size:13px;font-weight:600}"
         ".tick{font-size:11px;fill:#4b5563}.axis{font-size:11px;fill:#374151}.value{font-size:10px;fill:#111827}"
         ".grid{stroke:#e5e7eb}.warmup{fill:#f3f4f6}</style>";
  svg += fmt::format("<title>{}</title><text x=\"{}\" y=\"18\" class=\"title\">{}</text>", esc(title), margin_l, esc(title));
  for (double v = 0; v <= top + step / 2; v += step) {
    const double y = margin_t + plot_h - v / top * plot_h;
    svg += fmt::format("<line x1=\"{}\" y1=\"{:.1f}\" x2=\"{}\" y2=\"{:.1f}\" class=\"grid\"/>", margin_l, y,
                       chart_w - margin_r, y);
    svg += fmt::format("<text x=\"{}\" y=\"{:.1f}\" class=\"tick\" text-anchor=\"end\">{}</text>", margin_l - 6, y + 4,
                       tick_label(v));
  }
  svg += fmt::format("<text transform=\"translate(14 {}) rotate(-90)\" class=\"axis\" text-anchor=\"middle\">{}</text>",
                     margin_t + plot_h / 2, esc(y_label));
  return top;
}

struct bar_series {
  std::string name;
  std::string color;            // empty: color each bar by its category (target)
  std::vector<double> values;   // one per category
};

std::string bar_chart(const std::string& title, const std::string& y_label, const std::vector<std::string>& categories,
                      const std::vector<bar_series>& series, const std::vector<std::string>& category_colors,
                      const char* value_format) {
  double max_value = 0;
  for (const auto& s : series)
    for (double v : s.values) max_value = std::max(max_value, v);
  std::string svg;
  const double top = chart_frame(svg, title, y_label, max_value);
  const int plot_w = chart_w - margin_l - margin_r, plot_h = chart_h - margin_t - margin_b;
  const double slot = static_cast<double>(plot_w) / static_cast<double>(std::max<std::size_t>(1, categories.size()));
  const double bar_w = slot * 0.8 / static_cast<double>(std::max<std::size_t>(1, series.size()));
  for (std::size_t c = 0; c < categories.size(); ++c) {
    const double x0 = margin_l + slot * static_cast<double>(c) + slot * 0.1;
    for (std::size_t s = 0; s < series.size(); ++s) {
      const double v = c < series[s].values.size() ? series[s].values[c] : 0;
      const double h = top > 0 ? v / top * plot_h : 0;
      const double x = x0 + bar_w * static_cast<double>(s);
      const std::string& color = series[s].color.empty() ? category_colors[c] : series[s].color;
      svg += fmt::format("<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"{}\"><title>{} {}: {}</title></rect>",
                         x, margin_t + plot_h - h, bar_w - 2, h, color, esc(categories[c]), esc(series[s].name),
                         fmt::format(fmt::runtime(value_format), v));
      if (series.size() == 1)
        svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" class=\"value\" text-anchor=\"middle\">{}</text>",
                           x + (bar_w - 2) / 2, margin_t + plot_h - h - 4, fmt::format(fmt::runtime(value_format), v));
    }
    svg += fmt::format("<text x=\"{:.1f}\" y=\"{}\" class=\"tick\" text-anchor=\"middle\">{}</text>", x0 + slot * 0.4,
                       chart_h - margin_b + 16, esc(categories[c]));
  }
  if (series.size() > 1) {
    double lx = margin_l;
    for (const auto& s : series) {
      svg += fmt::format("<rect x=\"{:.1f}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{}\"/><text x=\"{:.1f}\" y=\"{}\" class=\"tick\">{}</text>",
                         lx, chart_h - 20, s.color, lx + 14, chart_h - 11, esc(s.name));
      lx += 24 + 7.0 * static_cast<double>(s.name.size());
    }
  }
  svg += "</svg>";
  return svg;
}

struct line_series {
  std::string name;
  std::string color;
  std::vector<std::pair<double, double>> points;
};

std::string line_chart(const std::string& title, const std::string& y_label, const std::vector<line_series>& lines,
                       double shade_until) {
  double max_x = 1, max_y = 0;
  for (const auto& l : lines)
    for (const auto& [x, y] : l.points) {
      max_x = std::max(max_x, x);
      max_y = std::max(max_y, y);
    }
  std::string svg;
  const double top = chart_frame(svg, title, y_label, max_y);
  const int plot_w = chart_w - margin_l - margin_r, plot_h = chart_h - margin_t - margin_b;
  auto px = [&](double x) { return margin_l + x / max_x * plot_w; };
  auto py = [&](double y) { return margin_t + plot_h - (top > 0 ? y / top * plot_h : 0); };
  if (shade_until > 0)
    svg += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{:.1f}\" height=\"{}\" class=\"warmup\"><title>warm-up (not counted)</title></rect>",
                       margin_l, margin_t, px(std::min(shade_until, max_x)) - margin_l, plot_h);
  const double xstep = nice_step(max_x);
  for (double x = 0; x <= max_x + xstep / 2; x += xstep)
    svg += fmt::format("<text x=\"{:.1f}\" y=\"{}\" class=\"tick\" text-anchor=\"middle\">{}s</text>", px(x),
                       chart_h - margin_b + 16, tick_label(x));
  double lx = margin_l;
  for (const auto& l : lines) {
    std::string pts;
    for (const auto& [x, y] : l.points) pts += fmt::format("{:.1f},{:.1f} ", px(x), py(y));
    svg += fmt::format("<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\" points=\"{}\"><title>{}</title></polyline>",
                       l.color, pts, esc(l.name));
    svg += fmt::format("<rect x=\"{:.1f}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{}\"/><text x=\"{:.1f}\" y=\"{}\" class=\"tick\">{}</text>",
                       lx, chart_h - 20, l.color, lx + 14, chart_h - 11, esc(l.name));
    lx += 24 + 7.0 * static_cast<double>(l.name.size());
  }
  svg += "</svg>";
  return svg;
}

// The repeat whose requests/s is closest to the median: the timeline shown for a target.
const run_result* representative(const bench_run& run, const group_key& g, const std::string& target) {
  std::vector<const run_result*> mine;
  for (const auto& r : run.results)
    if (r.group == g && r.target == target) mine.push_back(&r);
  if (mine.empty()) return nullptr;
  std::vector<double> rates;
  for (const auto* r : mine) rates.push_back(r->rps());
  const double m = median(rates);
  return *std::min_element(mine.begin(), mine.end(),
                           [&](const run_result* a, const run_result* b) { return std::fabs(a->rps() - m) < std::fabs(b->rps() - m); });
}

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
  std::string h;
  h += "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">";
  h += "<title>pgsluice bench " + esc(run.id) + "</title><style>"
       "body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2em;color:#111827;max-width:1200px}"
       "h1{font-size:1.6em}h2{font-size:1.25em;margin-top:2em;border-bottom:1px solid #e5e7eb}"
       "table{border-collapse:collapse;margin:1em 0;font-size:.9em}th,td{padding:.3em .7em;text-align:right;"
       "border-bottom:1px solid #e5e7eb}th:first-child,td:first-child{text-align:left}td.bad{color:#b91c1c;font-weight:600}"
       "tr.errors td{color:#b91c1c;font-size:.85em;text-align:left}tr.shares td{color:#374151;font-size:.85em;text-align:left}.meta{color:#4b5563;font-size:.9em}"
       ".charts{display:flex;flex-wrap:wrap;gap:1em}.chart{background:#fafafa;border:1px solid #e5e7eb}"
       "</style></head><body>\n";
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

  if (baseline) {
    const auto before = summarize(*baseline);
    h += "<h2>Compared with run " + esc(baseline->id) + "</h2>\n";
    for (const group_key& g : groups_of(run)) {
      std::vector<std::string> names, colors;
      bar_series was{baseline->id, "#9ca3af", {}}, now{run.id, "#2563eb", {}};
      std::string table = "<table><thead><tr><th>target</th><th>req/s before</th><th>req/s now</th><th>change</th>"
                          "<th>p99 before</th><th>p99 now</th><th>change</th></tr></thead><tbody>";
      for (const auto& r : rows) {
        if (!(r.group == g)) continue;
        const auto it = std::find_if(before.begin(), before.end(),
                                     [&](const summary_row& b) { return b.group == g && b.target == r.target; });
        if (it == before.end()) continue;
        auto change = [](double a, double b) { return a > 0 ? fmt::format("{:+.1f}%", (b - a) / a * 100) : std::string("-"); };
        table += fmt::format("<tr><td>{}</td><td>{:.1f}</td><td>{:.1f}</td><td>{}</td><td>{:.2f}</td><td>{:.2f}</td><td>{}</td></tr>",
                             esc(r.target), it->rps, r.rps, change(it->rps, r.rps), it->p99_ms, r.p99_ms,
                             change(it->p99_ms, r.p99_ms));
        names.push_back(r.target);
        colors.push_back(color_of(r.target, names.size()));
        was.values.push_back(it->rps);
        now.values.push_back(r.rps);
      }
      if (names.empty()) continue;
      h += "<h3>" + esc(g.label()) + "</h3>" + table + "</tbody></table><div class=\"charts\">" +
           bar_chart("Requests per second: before and now", "requests/s", names, {was, now}, colors, "{:.0f}") + "</div>\n";
    }
  }
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

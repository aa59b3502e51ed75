// Bench results as JSON: results.json written atomically and read back (older files without the newer fields load too).
#include <nlohmann/json.hpp>

#include <fstream>
#include <stdexcept>

#include "bench/report.hpp"
#include "bench/report_detail.hpp"

namespace pgsluice::bench {

using json = nlohmann::json;
using detail::ms;

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
              {"connect_per_transaction", g.connect_per_transaction},
              {"users", g.users}};
}

json requests_json(const std::vector<request_stats>& rows) {
  json out = json::array();
  for (const auto& r : rows)
    out.push_back({{"type", r.kind.type},
                   {"name", r.kind.name},
                   {"requests", r.requests},
                   {"failures", r.failures},
                   {"errors", r.errors},
                   {"latency", histogram_json(r.latency)}});
  return out;
}

group_key group_from_json(const json& j) {
  group_key g;
  g.workload = j.at("workload").get<std::string>();
  g.protocol = j.at("protocol").get<std::string>();
  g.clients = j.at("clients").get<std::uint32_t>();
  g.connect_per_transaction = j.value("connect_per_transaction", false);
  g.users = j.value("users", false);
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
              {"scale", c.scale},
              {"users", c.users},
              {"spawn_rate", c.spawn_rate},
              {"wait_min_s", c.wait_min_s},
              {"wait_max_s", c.wait_max_s},
              {"sql_file", c.sql_file}};
  json results = json::array();
  for (const auto& r : run.results) {
    json timeline = json::array();
    for (const auto& p : r.timeline)
      timeline.push_back({{"second", p.second},
                          {"requests", p.requests},
                          {"errors", p.errors},
                          {"stale_reads", p.stale_reads},
                          {"p50_ms", p.p50_ms},
                          {"p99_ms", p.p99_ms},
                          {"connected", p.connected},
                          {"users", p.users},
                          {"p95_ms", p.p95_ms},
                          {"percentiles_ms", p.percentiles_ms},
                          {"total_requests", p.total_requests},
                          {"total_errors", p.total_errors},
                          {"total_p50_ms", p.total_p50_ms},
                          {"total_mean_ms", p.total_mean_ms},
                          {"total_min_ms", p.total_min_ms},
                          {"total_max_ms", p.total_max_ms}});
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
                       {"memory_scope", r.memory_scope},
                       {"requests_by_kind", requests_json(r.by_request)},
                       {"started_unix", r.started_unix},
                       {"interrupted", r.interrupted}});
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
              {"complete", run.complete},
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
  rc.users = c.value("users", 0u);
  rc.spawn_rate = c.value("spawn_rate", 0.0);
  rc.wait_min_s = c.value("wait_min_s", 0.0);
  rc.wait_max_s = c.value("wait_max_s", 0.0);
  rc.sql_file = c.value("sql_file", std::string());
  run.complete = j.value("complete", true);
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
      t.p99_ms = p.at("p99_ms").get<double>();
      t.connected = p.value("connected", 0u);
      t.users = p.value("users", 0u);
      t.p95_ms = p.value("p95_ms", 0.0);
      if (p.contains("percentiles_ms")) t.percentiles_ms = p.at("percentiles_ms").get<std::array<double, 11>>();
      t.total_requests = p.value("total_requests", std::uint64_t{0});
      t.total_errors = p.value("total_errors", std::uint64_t{0});
      t.total_p50_ms = p.value("total_p50_ms", 0.0);
      t.total_mean_ms = p.value("total_mean_ms", 0.0);
      t.total_min_ms = p.value("total_min_ms", 0.0);
      t.total_max_ms = p.value("total_max_ms", 0.0);
      out.timeline.push_back(t);
    }
    out.memory = memory_from_json(r.value("memory", json(nullptr)));
    out.memory_scope = r.value("memory_scope", std::string());
    for (const auto& k : r.value("requests_by_kind", json::array())) {
      request_stats row;
      row.kind = {k.value("type", std::string()), k.value("name", std::string())};
      row.requests = k.value("requests", std::uint64_t{0});
      row.failures = k.value("failures", std::uint64_t{0});
      row.errors = k.value("errors", std::map<std::string, std::uint64_t>());
      if (k.contains("latency")) row.latency = histogram_from_json(k.at("latency"));
      out.by_request.push_back(std::move(row));
    }
    out.started_unix = r.value("started_unix", 0.0);
    out.interrupted = r.value("interrupted", false);
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


}  // namespace pgsluice::bench

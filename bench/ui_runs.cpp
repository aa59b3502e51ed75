// Runs started from the page of `pgsluice bench ui`: validation against the live targets, the run's thread, its events, its files.
#include "bench/ui_runs.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <map>
#include <streambuf>
#include <ostream>

#include "bench/dataset.hpp"
#include "bench/pq.hpp"
#include "bench/report.hpp"
#include "bench/runner.hpp"
#include "bench/stack.hpp"
#include "bench/sysinfo.hpp"
#include "bench/ui_form.hpp"
#include "bench/ui_results.hpp"
#include "bench/workloads.hpp"

namespace pgsluice::bench {

namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

// How long a target may take to accept a login before a start is refused with "is down".
constexpr std::chrono::seconds target_check_timeout{3};

ui_reply json_reply(unsigned status, const json& body) { return {status, "application/json", body.dump(), {}}; }

// `message` with `url` (which may hold a password) replaced by its redacted form.
std::string without_url(std::string message, const std::string& url) {
  const std::string redacted = redact_conninfo(url);
  for (std::size_t at; !url.empty() && (at = message.find(url)) != std::string::npos;)
    message.replace(at, url.size(), redacted);
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
  return message;
}

// The runner's lines (notes, results) as "log" events, one per line.
class line_events : public std::streambuf {
 public:
  explicit line_events(std::function<void(const std::string&)> on_line) : on_line_(std::move(on_line)) {}

 protected:
  int_type overflow(int_type ch) override {
    if (ch == traits_type::eof()) return traits_type::not_eof(ch);
    if (ch == '\n') {
      on_line_(line_);
      line_.clear();
    } else {
      line_ += static_cast<char>(ch);
    }
    return ch;
  }

 private:
  std::function<void(const std::string&)> on_line_;
  std::string line_;
};

json request_json(const ui_run_request& r) {
  json targets = json::array();
  for (const auto& t : r.targets) targets.push_back(t.name);
  return {{"targets", targets},
          {"workload", r.workload.name},
          {"protocol", std::string(to_string(r.protocol))},
          {"users", r.users},
          {"spawn_rate", r.spawn_rate},
          {"run_time_s", std::chrono::duration<double>(r.run_time).count()},
          {"warmup_s", std::chrono::duration<double>(r.warmup).count()},
          {"wait_s", {std::chrono::duration<double>(r.wait_min).count(), std::chrono::duration<double>(r.wait_max).count()}},
          {"read_ratio", r.workload.read_ratio}};
}

// Per target: totals and every kind of failure with the first message seen.
json outcome_json(const bench_run& run) {
  json out = json::array();
  for (const auto& r : run.results) {
    json errors = json::array();
    for (const auto& [kind, count] : r.errors) {
      const auto sample = r.error_samples.find(kind);
      errors.push_back({{"kind", kind}, {"count", count},
                        {"message", sample == r.error_samples.end() ? std::string() : sample->second}});
    }
    // Errors seen only during the warm-up are not counted but still explain an empty run.
    for (const auto& [kind, message] : r.error_samples)
      if (!r.errors.contains(kind)) errors.push_back({{"kind", kind}, {"count", 0}, {"message", message}});
    out.push_back({{"target", r.target},
                   {"requests", r.requests},
                   {"failures", r.failures},
                   {"rps", r.rps()},
                   {"p50_ms", static_cast<double>(r.latency.percentile(50)) / 1e6},
                   {"p95_ms", static_cast<double>(r.latency.percentile(95)) / 1e6},
                   {"p99_ms", static_cast<double>(r.latency.percentile(99)) / 1e6},
                   {"errors", errors}});
  }
  return out;
}

}  // namespace

// What the page shows of the run in progress (or of the last one).
struct ui_run_manager::run_state {
  std::string id;
  std::string started_at;
  std::string state = "running";             // running, stopping, finished, failed
  json request;
  json points = json::array();
  json log = json::array();
  json outcome = json::array();
  std::string error;
  std::string result_id;                     // the directory under the results dir, once saved
  std::uint32_t tick = 0;                    // points so far, over every target
  std::map<std::string, std::uint64_t> failures;  // per target, so far

  json summary() const {
    json j{{"id", id}, {"started_at", started_at}, {"state", state}, {"request", request}};
    if (!error.empty()) j["error"] = error;
    if (!result_id.empty()) j["result_id"] = result_id;
    if (state == "finished" || state == "failed") j["outcome"] = outcome;
    return j;
  }
};

ui_run_manager::ui_run_manager(ui_settings settings, ui_app::event_sink sink)
    : settings_(std::move(settings)), sink_(std::move(sink)) {}

ui_run_manager::~ui_run_manager() { shutdown(); }

void ui_run_manager::shutdown() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
}

void ui_run_manager::emit(const std::string& event, const std::string& data) {
  if (sink_) sink_(event, data);
}

ui_reply ui_run_manager::options() {
  json targets = json::array();
  if (auto stack = local_stack::attach(settings_.work_dir))
    for (const auto& t : stack->targets())
      targets.push_back({{"name", t.name}, {"url", redact_conninfo(t.url)}, {"running", t.running},
                         {"problem", t.problem}, {"source", "local stack"}});
  for (const auto& t : settings_.extra_targets)
    targets.push_back({{"name", t.name}, {"url", redact_conninfo(t.url)}, {"running", true}, {"source", "--target"}});
  json workloads = json::array();
  for (const auto& w : builtin_workloads())
    workloads.push_back({{"name", w.name}, {"dataset", w.dataset}, {"description", w.description}});
  return json_reply(200, {{"targets", targets},
                          {"workloads", workloads},
                          {"protocols", {"simple", "extended", "prepared"}},
                          {"max_users", max_clients},
                          {"results_dir", settings_.results_dir.string()},
                          {"defaults", {{"workload", "select-only"}, {"protocol", "simple"}, {"users", 10},
                                        {"spawn_rate", 0}, {"run_time", "10s"}, {"warmup", "0s"}, {"wait_min", "0s"}, {"wait_max", "0s"},
                                        {"read_ratio", 0.9}}}});
}

ui_reply ui_run_manager::start(const std::string& body) {
  std::unique_lock lock(mutex_);
  if (current_ && (current_->state == "running" || current_->state == "stopping")) {
    const json& r = current_->request;
    return ui_error(409, "a run is already in progress (" + r.value("workload", std::string()) + ", " +
                             std::to_string(r.value("users", 0u)) + " users, started " + current_->started_at +
                             "): stop it or wait for it to finish");
  }
  if (thread_.joinable()) thread_.join();  // the last run has finished; its thread is ending

  json form;
  try {
    form = json::parse(body);
  } catch (const json::exception& e) {
    return ui_error(400, std::string("the run form is not valid JSON: ") + e.what());
  }
  auto stack = local_stack::attach(settings_.work_dir);
  std::vector<std::string> known;
  if (stack)
    for (const auto& t : stack->targets()) known.push_back(t.name);
  for (const auto& t : settings_.extra_targets) known.push_back(t.name);
  auto parsed_form = parse_run_form(form, known);
  if (auto e = parse_error(parsed_form)) return ui_error(400, *e);
  ui_run_request request = std::get<0>(std::move(parsed_form));

  // Every target must answer now: a run against a server that is down would be a blank page of errors.
  std::vector<bench_target> targets;
  for (const auto& spec : request.targets) {
    bench_target t;
    t.name = spec.name;
    t.url = spec.url;
    const auto extra = std::find_if(settings_.extra_targets.begin(), settings_.extra_targets.end(),
                                    [&](const target_spec& x) { return x.name == spec.name; });
    if (t.url.empty() && extra != settings_.extra_targets.end()) t.url = extra->url;
    if (t.url.empty()) {
      const auto st = stack ? stack->target(spec.name) : std::nullopt;
      if (!st) return ui_error(400, "targets: " + spec.name + " is not a target of the local stack");
      if (!st->running) return ui_error(400, "target " + spec.name + " is down: " + st->problem);
      t.url = st->url;
      t.pids = st->pids;
      t.memory_scope = st->memory_scope;
      for (const auto& n : st->nodes) t.nodes.push_back({n.name, n.url});
    }
    const connect_result login = try_connect(t.url, target_check_timeout);
    if (!login.ok())
      return ui_error(400, "target " + t.name + " (" + redact_conninfo(t.url) + ") is down: " +
                               without_url(login.raw_error.empty() ? login.message : login.raw_error, t.url));
    targets.push_back(std::move(t));
  }
  // The workload must find its data through the first target (as `bench run` probes it).
  dataset_info data;
  try {
    data = probe_dataset(targets.front().url);
    make_workload(request.workload, data);
    if (request.workload.name == "read-after-write") ensure_read_after_write_table(targets.front().url);
  } catch (const std::exception& e) {
    return ui_error(400, "workload " + request.workload.name + ": " + without_url(e.what(), targets.front().url));
  }

  auto run = std::make_shared<run_state>();
  run->id = timestamp_id(&run->started_at);
  run->request = request_json(request);
  current_ = run;
  stop_.store(false);
  emit("started", run->summary().dump());

  std::vector<std::string> notes;
  if (stack)
    for (const auto& n : stack->notes()) notes.push_back(n);
  thread_ = std::thread([this, run, request = std::move(request), targets = std::move(targets), data,
                         notes = std::move(notes)] {
    auto locked = [this](auto&& f) {
      std::lock_guard guard(mutex_);
      f();
    };
    line_events lines([&](const std::string& line) {
      locked([&] {
        run->log.push_back(line);
        emit("log", json{{"id", run->id}, {"line", line}}.dump());
      });
    });
    std::ostream out(&lines);
    try {
      bench_run result;
      result.id = run->id;
      result.started_at = run->started_at;
      result.machine = collect_machine_info();
      result.machine.versions["pgsluice"] = PGSLUICE_BENCH_VERSION;
      result.notes = notes;
      run_config& c = result.config;
      c.workloads = {request.workload.name};
      c.protocols = {std::string(to_string(request.protocol))};
      c.clients = {request.users};
      for (const auto& t : targets) c.targets.push_back({t.name, redact_conninfo(t.url)});
      c.duration_s = std::chrono::duration<double>(request.run_time).count();
      c.warmup_s = std::chrono::duration<double>(request.warmup).count();
      c.ramp = request.spawn_rate;
      c.read_ratio = request.workload.read_ratio;
      c.distribution = std::string(to_string(request.workload.distribution));
      c.region = request.workload.region;
      c.scale = data.sizes.scale;

      runner_options ro;
      ro.load.duration = request.run_time;
      ro.load.warmup = request.warmup;
      ro.load.ramp = request.spawn_rate;
      ro.load.think_min = request.wait_min;
      ro.load.think_max = request.wait_max;
      ro.pause = millis(500);
      ro.live = false;
      ro.out = &out;
      ro.stop = &stop_;
      ro.on_second = [&](const std::string& target, const group_key&, const live_sample& s) {
        locked([&] {
          auto& failed = run->failures[target];
          failed += s.point.errors;
          json p{{"t", ++run->tick},
                 {"target", target},
                 {"second", s.point.second + 1},
                 {"warmup", s.warmup},
                 {"rps", s.point.requests},
                 {"errors", s.point.errors},
                 {"failures", failed},
                 {"p50_ms", s.point.p50_ms},
                 {"p95_ms", s.point.p95_ms},
                 {"p99_ms", s.point.p99_ms},
                 {"users", s.point.users ? s.point.users : s.point.connected},
                 {"connected", s.point.connected},
                 {"stale_reads", s.point.stale_reads}};
          run->points.push_back(p);
          emit("point", json{{"id", run->id}, {"point", p}}.dump());
        });
      };
      const run_plan plan{request.workload, request.protocol, request.users, false, {}};
      execute_plans(result, targets, {plan}, data, ro);
      if (stop_.load()) result.notes.push_back("stopped from the page: the last target ran less than the full run time");
      const fs::path dir = settings_.results_dir / result.id;
      save_run(result, dir);
      std::ofstream(dir / "report.html") << render_html(result);
      std::ofstream(dir / "results.csv") << summary_csv(result);
      locked([&] {
        run->state = "finished";
        run->result_id = result.id;
        run->outcome = outcome_json(result);
        emit("finished", run->summary().dump());
      });
    } catch (const std::exception& e) {
      std::string message = e.what();
      for (const auto& t : targets) message = without_url(message, t.url);
      locked([&] {
        run->state = "failed";
        run->error = message;
        emit("failed", run->summary().dump());
      });
    }
  });
  return json_reply(202, run->summary());
}

ui_reply ui_run_manager::stop() {
  std::lock_guard lock(mutex_);
  if (!current_ || current_->state != "running") return ui_error(409, "no run is in progress");
  stop_.store(true);
  current_->state = "stopping";
  emit("stopping", current_->summary().dump());
  return json_reply(202, current_->summary());
}

ui_reply ui_run_manager::status() {
  std::lock_guard lock(mutex_);
  if (!current_) return json_reply(200, {{"state", "idle"}});
  json j = current_->summary();
  j["points"] = current_->points;
  j["log"] = current_->log;
  return json_reply(200, j);
}

}  // namespace pgsluice::bench

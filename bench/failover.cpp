// `bench failover`'s run: per target a fresh synchronous cluster, the load, the kill of the primary's whole process tree, the read-back.
#include <dirent.h>
#include <signal.h>

#include <algorithm>
#include <fstream>
#include <iomanip>
#include <limits>
#include <ostream>
#include <set>
#include <sstream>
#include <thread>
#include <unordered_set>

#include "bench/failover_detail.hpp"
#include "bench/report.hpp"

namespace pgsluice::bench {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using namespace failover_detail;

namespace {

// Parent pid of `pid` from /proc/<pid>/stat (0 when it is gone).
pid_t parent_of(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!std::getline(in, stat)) return 0;
  const auto close = stat.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream fields(stat.substr(close + 2));
  std::string state;
  pid_t ppid = 0;
  fields >> state >> ppid;
  return ppid;
}

// Every live descendant of `root` (PostgreSQL's backends are children of the postmaster,
// each in a session of its own, so the process group does not reach them).
std::vector<pid_t> descendants(pid_t root) {
  std::vector<std::pair<pid_t, pid_t>> all;  // pid, ppid
  if (DIR* d = ::opendir("/proc")) {
    while (const dirent* e = ::readdir(d)) {
      char* end = nullptr;
      const long pid = std::strtol(e->d_name, &end, 10);
      if (pid > 0 && end && *end == '\0') all.emplace_back(static_cast<pid_t>(pid), parent_of(static_cast<pid_t>(pid)));
    }
    ::closedir(d);
  }
  std::vector<pid_t> out;
  std::unordered_set<pid_t> tree{root};
  for (bool grew = true; grew;) {
    grew = false;
    for (const auto& [pid, ppid] : all)
      if (tree.count(ppid) && !tree.count(pid)) {
        tree.insert(pid);
        out.push_back(pid);
        grew = true;
      }
  }
  return out;
}

struct kill_outcome {
  std::vector<int> pids;
  std::int64_t at_us = 0;
  std::uint32_t killed = 0;
  std::uint32_t left = 0;
};

// kill -9 of the postmaster and of every process it started. The postmaster is stopped
// first so it forks nothing new (nor reacts to a child's death) while its children are
// listed and killed.
kill_outcome kill_primary_tree(pg_cluster& cluster, steady::time_point start) {
  kill_outcome k;
  const std::size_t primary = cluster.primary_index();
  const pid_t postmaster = cluster.node(primary).process ? cluster.node(primary).process->pid : 0;
  if (postmaster <= 0) throw stack_error("the primary is not running: nothing to kill");
  ::kill(postmaster, SIGSTOP);
  std::vector<pid_t> victims{postmaster};
  for (const pid_t p : descendants(postmaster)) victims.push_back(p);
  std::vector<process_identity> ids;
  for (const pid_t p : victims)
    if (auto id = identify_process(p)) {
      ids.push_back(*id);
      k.pids.push_back(p);
    }
  k.at_us = std::chrono::duration_cast<std::chrono::microseconds>(steady::now() - start).count();
  // Children first, the (stopped) postmaster last: no backend outlives it to tell its
  // client "terminating connection due to unexpected postmaster exit".
  for (auto it = victims.rbegin(); it != victims.rend(); ++it) ::kill(*it, SIGKILL);
  cluster.kill_node(primary);  // reaps the postmaster (our child), forgets its pid
  k.killed = static_cast<std::uint32_t>(ids.size());
  // Reparented children are reaped by init; a zombie counts as gone.
  poll_until(5s, 10ms, [&] {
    return std::none_of(ids.begin(), ids.end(), [](const process_identity& id) { return is_alive(id); });
  });
  k.left = static_cast<std::uint32_t>(std::count_if(ids.begin(), ids.end(), [](const process_identity& id) { return is_alive(id); }));
  return k;
}

// Follows a log file from an offset: new complete lines only.
class log_follower {
 public:
  log_follower(fs::path file, std::uintmax_t offset) : file_(std::move(file)), offset_(offset) {}
  static std::uintmax_t size_of(const fs::path& f) {
    std::error_code ec;
    const auto s = fs::file_size(f, ec);
    return ec ? 0 : s;
  }
  std::string read_new() {
    std::ifstream in(file_, std::ios::binary);
    if (!in) return {};
    in.seekg(static_cast<std::streamoff>(offset_));
    std::string chunk((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto nl = chunk.rfind('\n');
    if (nl == std::string::npos) return {};
    chunk.resize(nl + 1);
    offset_ += chunk.size();
    return chunk;
  }

 private:
  fs::path file_;
  std::uintmax_t offset_;
};

void copy_logs(const std::vector<fs::path>& files, const fs::path& into) {
  std::error_code ec;
  fs::create_directories(into, ec);
  for (const auto& f : files)
    if (fs::exists(f, ec)) fs::copy_file(f, into / f.filename(), fs::copy_options::overwrite_existing, ec);
}

// Synchronous replication (docs: 27.2.8): a commit is acknowledged once the standby has
// flushed it. Set once the standby streams, then wait until the primary counts it.
void make_synchronous(pg_cluster& c) {
  std::string names;
  for (const auto i : c.replica_indexes()) names += (names.empty() ? "" : ", ") + sql_identifier(c.node(i).name);
  const std::size_t p = c.primary_index();
  c.exec_sql(p, "ALTER SYSTEM SET synchronous_standby_names = " + sql_literal("ANY 1 (" + names + ")"));
  c.exec_sql(p, "SELECT pg_reload_conf()");
  const bool ok = poll_until(30s, 20ms, [&] {
    return c.exec_sql(p, "SELECT count(*) FROM pg_stat_replication WHERE sync_state IN ('sync', 'quorum')")
               .at(0).at(0).value_or("0") != "0";
  });
  if (!ok) throw stack_error("the standby never became synchronous");
}

std::string live_line(const std::string& target, int second, const client_load& load, std::uint64_t& last_r,
                      std::uint64_t& last_w, std::uint64_t& last_f, bool killed) {
  const std::uint64_t r = load.reads.load(), w = load.writes.load(), f = load.failures.load();
  std::ostringstream s;
  s << "[" << std::setw(3) << second << "s] " << std::left << std::setw(10) << target << std::right << " reads "
    << std::setw(6) << r - last_r << "  writes " << std::setw(6) << w - last_w << "  errors " << std::setw(5)
    << f - last_f << (killed ? "  (primary killed)" : "");
  last_r = r;
  last_w = w;
  last_f = f;
  return s.str();
}

failover_result run_target(const std::string& name, const failover_options& options, const fs::path& run_dir) {
  std::ostream* out = options.out;
  failover_result r;
  r.target = name;
  r.kill_at_s = std::chrono::duration<double>(options.kill_at).count();
  cluster_spec spec;
  spec.replicas = 1;
  spec.max_connections = 300;
  // synchronous_commit back on (the test cluster turns it off): acknowledged means on the standby.
  spec.settings = {{"synchronous_commit", "on"}, {"log_min_messages", "warning"}};
  if (out) *out << "== " << name << ": building a primary + synchronous standby" << std::endl;
  auto cluster = pg_cluster::up(spec);
  make_synchronous(*cluster);
  const std::size_t old_primary = cluster->primary_index();
  const std::uint16_t old_port = cluster->port(old_primary);
  cluster->exec_sql(old_primary,
                    "CREATE TABLE " + std::string(table) +
                        " (k bigint PRIMARY KEY, client int NOT NULL, written_at timestamptz NOT NULL DEFAULT clock_timestamp())",
                    cluster->database());
  std::vector<fs::path> logs;
  for (std::size_t i = 0; i < cluster->node_count(); ++i) logs.push_back(cluster->node(i).log_file);
  started_target target;
  try {
    target = start_target(name, *cluster, cluster->work_dir() / name, options);
  } catch (const std::exception& e) {
    r.problem = e.what();
    if (const auto nl = r.problem.find('\n'); nl != std::string::npos) r.problem.resize(nl);
    if (out) *out << "   " << name << " did not start: " << r.problem << std::endl;
    std::error_code ec;
    for (const auto& f : fs::directory_iterator(cluster->work_dir() / name, ec))
      if (f.path().extension() == ".log") logs.push_back(f.path());
    copy_logs(logs, run_dir / "logs" / name);
    return r;
  }
  r.setup = target.setup;
  r.notes = target.notes;
  logs.push_back(target.log_file);
  for (const auto& l : target.extra_logs) logs.push_back(l);
  if (out) *out << "   " << target.setup << std::endl;

  const auto start = steady::now();
  client_load load(target.conninfo, options, start);
  std::optional<kill_outcome> kill;
  std::optional<log_follower> follower;
  std::optional<double> log_detected_ms;
  std::uint64_t lr = 0, lw = 0, lf = 0;
  int next_second = 1;
  auto stopped = [&] { return options.stop && options.stop->load(); };
  while (steady::now() - start < options.duration && !stopped()) {
    std::this_thread::sleep_for(10ms);  // the loop's pace: kill time, log lines, live lines
    const auto now = steady::now();
    if (!kill && now - start >= options.kill_at) {
      follower.emplace(target.log_file, log_follower::size_of(target.log_file));
      kill = kill_primary_tree(*cluster, start);
      if (out)
        *out << "   primary killed (kill -9 of the postmaster and its " << kill->killed - 1 << " children; "
             << kill->left << " left)" << std::endl;
    }
    if (follower && !log_detected_ms)
      if (auto line = first_detection_line(name, follower->read_new())) {
        log_detected_ms = std::chrono::duration<double, std::milli>(steady::now() - start).count() - kill->at_us / 1000.0;
        r.detection_line = *line;
      }
    if (now - start >= std::chrono::seconds(next_second)) {
      if (out && options.live) *out << live_line(name, next_second, load, lr, lw, lf, kill.has_value()) << std::endl;
      ++next_second;
    }
  }
  load.stop();
  const auto events = load.events();
  r.error_messages = load.errors();
  const std::int64_t kill_us = kill ? kill->at_us : std::numeric_limits<std::int64_t>::max();
  r.events = summarize_events(events, kill_us, old_port, options.bucket, options.duration);
  if (kill) {
    r.ran = true;
    r.processes_killed = kill->killed;
    r.processes_left = kill->left;
    r.killed_pids = kill->pids;
    if (follower && !log_detected_ms)  // lines written in the last loop turn
      if (auto line = first_detection_line(name, follower->read_new())) {
        log_detected_ms = std::chrono::duration<double, std::milli>(steady::now() - start).count() - kill_us / 1000.0;
        r.detection_line = *line;
      }
  } else {
    r.problem = "interrupted before the kill";
  }
  if (log_detected_ms && (!r.events.first_error_after_kill_ms || *log_detected_ms <= *r.events.first_error_after_kill_ms)) {
    r.detected_ms = log_detected_ms;
    r.detection_source = "log";
  } else if (r.events.first_error_after_kill_ms) {
    r.detected_ms = r.events.first_error_after_kill_ms;
    r.detection_source = "first client error";
  }
  target.server->stop();

  // Read back every acknowledged write from the surviving primary.
  std::set<std::int64_t> acknowledged;
  for (const auto& e : events)
    if (e.kind == op_kind::write && e.ok) acknowledged.insert(e.key);
  r.acknowledged_writes = acknowledged.size();
  if (kill) {
    std::optional<std::size_t> survivor;
    for (const auto i : cluster->replica_indexes()) {
      try {
        if (cluster->exec_sql(i, "SELECT pg_is_in_recovery()").at(0).at(0) == "f") survivor = i;
      } catch (const stack_error&) {
      }
    }
    if (survivor) {
      r.promoted_by_target = true;
      r.checked_on = cluster->node(*survivor).name + " (promoted during the run)";
    } else {
      survivor = cluster->replica_indexes().at(0);
      cluster->promote(*survivor);
      r.checked_on = cluster->node(*survivor).name + " (nothing promoted it: promoted by the bench after the run)";
    }
    std::set<std::int64_t> found;
    for (const auto& row : cluster->exec_sql(*survivor, "SELECT k FROM " + std::string(table), cluster->database()))
      if (row.at(0)) found.insert(std::stoll(*row.at(0)));
    for (const auto k : acknowledged) r.missing_writes += !found.count(k);
    for (const auto k : found) r.unacknowledged_found += !acknowledged.count(k);
  }
  copy_logs(logs, run_dir / "logs" / name);
  if (out) *out << "   " << name << ": done" << std::endl;
  return r;
}

}  // namespace

failover_run run_failover(const failover_options& options) {
  failover_run run;
  run.id = "failover-" + timestamp_id(&run.started_at);
  run.machine = collect_machine_info();
  if (const std::string v = program_version("haproxy"); !v.empty()) run.machine.versions["haproxy"] = v;
  run.options = options;
  if (run.options.targets.empty()) run.options.targets = failover_target_names();
  const fs::path run_dir = options.results_dir / run.id;
  run.notes.push_back("each target gets a fresh primary + 1 standby with synchronous_standby_names = 'ANY 1 (replica_1)' "
                      "and synchronous_commit = on (fsync off: a process kill loses nothing the OS holds)");
  for (const auto& name : run.options.targets) {
    if (options.stop && options.stop->load()) break;
    try {
      run.results.push_back(run_target(name, run.options, run_dir));
    } catch (const stack_error& e) {
      failover_result r;
      r.target = name;
      r.problem = e.what();
      if (const auto nl = r.problem.find('\n'); nl != std::string::npos) r.problem.resize(nl);
      if (options.out) *options.out << "   " << name << ": " << r.problem << std::endl;
      run.results.push_back(std::move(r));
    }
  }
  if (options.stop && options.stop->load()) run.notes.push_back("interrupted: later targets did not run");
  return run;
}

}  // namespace pgsluice::bench

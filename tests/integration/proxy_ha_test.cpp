// High availability through pgsluice over a real primary and streaming replicas of its own per test: the primary crashed under load (promote mode, synchronous replication), a promotion done by others followed, backends that hang, refuse logins or are not there, a replica killed under reads.
#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <atomic>
#include <csignal>
#include <dirent.h>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/proxy_fixture.hpp"

namespace pgsluice::test::proxy {
namespace {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

// A cluster of this test's own (failover tests leave it changed), with synchronous_commit on.
std::unique_ptr<b::pg_cluster> own_cluster() {
  b::cluster_spec spec;
  spec.replicas = 2;
  spec.settings = {{"synchronous_commit", "on"}};
  return b::pg_cluster::up(spec);
}

// Every process `pid` started (PostgreSQL's backends, checkpointer, walsender...).
std::vector<pid_t> children_of(pid_t pid) {
  std::vector<pid_t> out;
  DIR* d = ::opendir("/proc");
  if (d == nullptr) return out;
  while (auto* e = ::readdir(d)) {
    const pid_t p = static_cast<pid_t>(std::atoi(e->d_name));
    if (p <= 0) continue;
    std::ifstream in("/proc/" + std::string(e->d_name) + "/stat");
    std::string stat;
    std::getline(in, stat);
    const auto close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(stat.substr(close + 2));
    char state;
    pid_t ppid = 0;
    rest >> state >> ppid;
    if (ppid == pid) out.push_back(p);
  }
  ::closedir(d);
  return out;
}

// kill -9 of the postmaster AND everything it started: a postmaster killed alone leaves its
// backends running (and committing).
void crash_node(b::pg_cluster& c, std::size_t i) {
  const pid_t pm = c.node(i).process->pid;
  const auto kids = children_of(pm);
  c.kill_node(i);
  for (auto k : kids) ::kill(k, SIGKILL);
}

std::string log_of(const pgsluice_process& p) { return b::read_file_text(p.log_file()); }

// Waits (bounded) until pgsluice's log has a line containing every one of `parts`, after `from`.
bool log_has(const pgsluice_process& p, const std::vector<std::string>& parts, std::size_t from = 0,
             std::chrono::milliseconds within = 30s) {
  return b::poll_until(within, 50ms, [&] {
    std::istringstream in(log_of(p).substr(std::min(from, log_of(p).size())));
    std::string line;
    while (std::getline(in, line)) {
      bool all = true;
      for (const auto& part : parts) all = all && line.find(part) != std::string::npos;
      if (all) return true;
    }
    return false;
  });
}

std::string backend_key(b::pg_cluster& c, std::size_t i) { return "backend=127.0.0.1:" + std::to_string(c.port(i)); }

std::string backends_toml(b::pg_cluster& c, const std::vector<std::pair<std::uint16_t, std::string>>& extra = {}) {
  std::string t;
  for (std::size_t i = 0; i < c.node_count(); ++i) {
    t += "[[databases." + c.database() + ".backends]]\nhost = \"127.0.0.1\"\nport = " + std::to_string(c.port(i)) +
         "\nrole = \"auto\"\n";
  }
  for (const auto& [port, role] : extra) {
    t += "[[databases." + c.database() + ".backends]]\nhost = \"127.0.0.1\"\nport = " + std::to_string(port) +
         "\nrole = \"" + role + "\"\n";
  }
  return t;
}

std::unique_ptr<pgsluice_process> start_ha(b::pg_cluster& c, const std::string& globals, const std::string& backends) {
  pgsluice_process::options o;
  o.probe = {c.admin().name, c.admin().password, c.database()};
  o.config = [=, &c](std::uint16_t port) {
    std::string t = "workers = 2\npool_mode = \"transaction\"\ndefault_pool_size = 8\n" + globals;
    t += "[listen]\nhost = \"127.0.0.1\"\nport = " + std::to_string(port) + "\n";
    t += "[users]\n" + toml_string(c.admin().name) + " = " + toml_string(c.admin().password) + "\n";
    t += "[databases." + c.database() + "]\n" + backends;
    return t;
  };
  return std::make_unique<pgsluice_process>(std::move(o));
}

std::string conninfo_of(const pgsluice_process& p, b::pg_cluster& c) {
  return p.conninfo(c.admin().name, c.admin().password, c.database()) + " connect_timeout=10";
}

// The node that is not in recovery, asked directly.
std::optional<std::size_t> writable_node(b::pg_cluster& c, const std::set<std::size_t>& skip = {}) {
  for (std::size_t i = 0; i < c.node_count(); ++i) {
    if (skip.count(i) != 0) continue;
    try {
      if (c.exec_sql(i, "SELECT pg_is_in_recovery()").at(0).at(0) == "f") return i;
    } catch (const std::exception&) {
    }
  }
  return std::nullopt;
}

// The port of the server a write transaction runs on, through pgsluice.
std::string write_port(b::pq_connection& conn) {
  conn.query("BEGIN");
  const auto port = conn.scalar("SELECT inet_server_port()").value_or("?");
  conn.query("COMMIT");
  return port;
}

TEST(ha, primary_crash_under_load_promotes_loses_no_acknowledged_write_and_fences_the_old_primary) {
  auto c = own_cluster();
  const std::size_t old_primary = c->primary_index();
  c->exec_sql(old_primary, "CREATE TABLE ha_keys (k bigint PRIMARY KEY, w int)", c->database());
  // Synchronous replication once the standbys stream (before that every commit would wait).
  c->exec_sql(old_primary, "ALTER SYSTEM SET synchronous_standby_names = 'ANY 1 (replica_1, replica_2)'");
  c->exec_sql(old_primary, "SELECT pg_reload_conf()");
  auto p = start_ha(*c,
                    "failover = \"promote\"\nfailover_after = \"500ms\"\nhealth_check_interval = \"200ms\"\n"
                    "health_check_timeout = \"1s\"\nhealth_check_fall = 2\nhealth_check_rise = 1\n"
                    "lag_check_interval = \"100ms\"\nfailover_hold_timeout = \"40s\"\n",
                    backends_toml(*c));
  const std::string info = conninfo_of(*p, *c);
  ASSERT_TRUE(log_has(*p, {"health database=" + c->database() + " primary=127.0.0.1:" + std::to_string(c->port(old_primary))}));

  std::atomic<bool> stop{false};
  std::atomic<long> read_errors{0}, reads{0};
  std::atomic<clock_type::rep> crash_at{0}, first_write_after{0};
  std::mutex mu;
  std::vector<long long> acked;
  std::vector<std::string> read_error_text;
  std::vector<std::thread> threads;
  for (int w = 0; w < 3; ++w) {
    threads.emplace_back([&, w] {
      long long next = static_cast<long long>(w) << 40;
      std::optional<b::pq_connection> conn;
      while (!stop) {
        try {
          if (!conn) conn.emplace(connect(info));
          const long long k = next++;
          const auto started = clock_type::now().time_since_epoch().count();
          conn->query("INSERT INTO ha_keys VALUES (" + std::to_string(k) + ", " + std::to_string(w) + ")");
          const auto now = clock_type::now().time_since_epoch().count();
          std::lock_guard lk(mu);
          acked.push_back(k);
          // Begun after the crash: it cannot have reached the old primary.
          if (crash_at != 0 && first_write_after == 0 && started > crash_at) first_write_after = now;
        } catch (const std::exception&) {
          conn.reset();  // the transaction in flight on the crashed primary got its error: nothing acknowledged
        }
      }
    });
  }
  for (int r = 0; r < 2; ++r) {
    threads.emplace_back([&] {
      std::optional<b::pq_connection> conn;
      while (!stop) {
        try {
          if (!conn) conn.emplace(connect(info));
          conn->query("SELECT count(*) FROM pg_class");
          ++reads;
        } catch (const std::exception& e) {
          ++read_errors;
          std::lock_guard lk(mu);
          read_error_text.push_back(e.what());
          conn.reset();
        }
      }
    });
  }
  auto acked_count = [&] {
    std::lock_guard lk(mu);
    return acked.size();
  };
  ASSERT_TRUE(b::poll_until(20s, 20ms, [&] { return acked_count() > 200 && reads > 200; }));
  const std::size_t log_mark = log_of(*p).size();
  crash_at = clock_type::now().time_since_epoch().count();
  crash_node(*c, old_primary);
  const bool resumed = b::poll_until(60s, 20ms, [&] { return first_write_after != 0; });
  const bool more_reads = b::poll_until(10s, 20ms, [&, r0 = reads.load()] { return reads > r0 + 50; });
  stop = true;
  for (auto& t : threads) t.join();
  ASSERT_TRUE(resumed) << "writes did not resume; log:\n" << log_of(*p).substr(log_mark);
  EXPECT_TRUE(more_reads);
  std::printf("writes resumed %lld ms after the crash\n",
              static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                         clock_type::duration(first_write_after - crash_at))
                                         .count()));
  auto suspicious = [&] {
    std::istringstream in(log_of(*p).substr(log_mark));
    std::string line, out;
    while (std::getline(in, line)) {
      if (line.find("health") == std::string::npos && line.find("failover") == std::string::npos &&
          line.find("held") == std::string::npos && line.find("released") == std::string::npos &&
          line.find("login") == std::string::npos && line.find("disconnect") == std::string::npos)
        out += line + "\n";
    }
    return out;
  };
  EXPECT_EQ(read_errors, 0) << (read_error_text.empty() ? "" : read_error_text.front()) << suspicious();
  EXPECT_TRUE(log_has(*p, {"failover database=" + c->database(), "promoting="}, log_mark, 1s));

  // Every acknowledged key is on the promoted primary.
  const auto np = writable_node(*c, {old_primary});
  ASSERT_TRUE(np);
  std::size_t missing = 0;
  {
    auto conn = connect(c->conninfo(*np, c->admin().name, std::nullopt, c->database()));
    conn.query("CREATE TEMP TABLE acked (k bigint)");
    for (std::size_t i = 0; i < acked.size(); i += 1000) {
      std::string v;
      for (std::size_t j = i; j < std::min(acked.size(), i + 1000); ++j) v += (v.empty() ? "(" : ",(") + std::to_string(acked[j]) + ")";
      conn.query("INSERT INTO acked VALUES " + v);
    }
    missing = std::stoul(conn.scalar("SELECT count(*) FROM acked a WHERE NOT EXISTS (SELECT 1 FROM ha_keys h WHERE h.k = a.k)")
                             .value_or("-1"));
  }
  EXPECT_EQ(missing, 0u) << "of " << acked.size() << " acknowledged writes";

  // The old primary restarted as it was (writable, its own timeline): fenced, no traffic.
  {
    b::spawn_options o;
    o.argv = {"/usr/lib/postgresql/15/bin/postgres", "-D", c->node(old_primary).data_dir.string()};
    o.log_file = c->node(old_primary).log_file;
    o.user = &c->os_user();
    o.parent_death_signal = SIGKILL;
    auto restarted = b::child_process::spawn(o, SIGINT);
    ASSERT_TRUE(b::poll_until(30s, 50ms, [&] {
      try {
        return c->exec_sql(old_primary, "SELECT pg_is_in_recovery()").at(0).at(0) == "f";
      } catch (const std::exception&) {
        return false;
      }
    }));
    EXPECT_TRUE(log_has(*p, {backend_key(*c, old_primary), "status=fenced"}, log_mark));
    const auto before = c->exec_sql(old_primary, "SELECT count(*) FROM ha_keys", c->database()).at(0).at(0);
    auto conn = connect(info);
    for (int i = 0; i < 20; ++i) {
      EXPECT_EQ(write_port(conn), std::to_string(c->port(*np)));
      conn.query("INSERT INTO ha_keys VALUES (" + std::to_string(-1 - i) + ", -1)");
      conn.query("SELECT 1");
    }
    EXPECT_EQ(c->exec_sql(old_primary, "SELECT count(*) FROM ha_keys", c->database()).at(0).at(0), before);
    restarted.stop(10s);
  }
}

TEST(ha, a_promotion_done_by_others_is_followed) {
  auto c = own_cluster();
  const std::size_t old_primary = c->primary_index();
  auto p = start_ha(*c,
                    "failover = \"follow\"\nhealth_check_interval = \"200ms\"\nhealth_check_timeout = \"1s\"\n"
                    "health_check_fall = 1\nhealth_check_rise = 1\n",
                    backends_toml(*c));
  auto conn = connect(conninfo_of(*p, *c));
  conn.query("CREATE TABLE follow_rows (k int)");
  EXPECT_EQ(write_port(conn), std::to_string(c->port(old_primary)));
  const std::size_t mark = log_of(*p).size();
  const std::size_t next = c->replica_indexes().front();
  crash_node(*c, old_primary);
  b::spawn_options o;
  o.argv = {"/usr/lib/postgresql/15/bin/pg_ctl", "promote", "-w", "-D", c->node(next).data_dir.string()};
  o.log_file = c->work_dir() / "log" / "pg_ctl_promote.log";
  o.user = &c->os_user();
  b::run_to_completion(o, 60s);
  // Writes go to the new primary, with no change of configuration.
  std::string port;
  ASSERT_TRUE(b::poll_until(30s, 50ms, [&] {
    try {
      auto w = connect(conninfo_of(*p, *c));
      w.query("INSERT INTO follow_rows VALUES (1)");
      port = write_port(w);
      return true;
    } catch (const std::exception&) {
      return false;
    }
  })) << log_of(*p).substr(mark);
  EXPECT_EQ(port, std::to_string(c->port(next)));
  EXPECT_TRUE(log_has(*p, {"primary=127.0.0.1:" + std::to_string(c->port(next))}, mark, 1s));
  EXPECT_FALSE(log_has(*p, {"promoting="}, mark, 10ms)) << "follow mode promotes nothing itself";
}

TEST(ha, backends_that_hang_refuse_logins_or_are_not_there_are_marked_down_and_come_back) {
  auto c = own_cluster();
  const auto replicas = c->replica_indexes();
  const std::size_t hung = replicas.at(0), refusing = replicas.at(1);
  const std::uint16_t closed = b::pick_free_port();
  auto p = start_ha(*c,
                    "health_check_interval = \"100ms\"\nhealth_check_timeout = \"500ms\"\nhealth_check_fall = 2\n"
                    "health_check_rise = 2\n",
                    backends_toml(*c, {{closed, "replica"}}));
  const std::string info = conninfo_of(*p, *c);
  auto conn = connect(info);
  EXPECT_TRUE(log_has(*p, {"backend=127.0.0.1:" + std::to_string(closed), "status=down"}));

  // Logins refused (pg_hba.conf "reject", reloaded): down, with the server's words.
  const auto hba = c->node(refusing).data_dir / "pg_hba.conf";
  const std::string hba_text = b::read_file_text(hba);
  b::write_service_file(hba, "host all all 127.0.0.1/32 reject\n" + hba_text, c->os_user());
  c->exec_sql(refusing, "SELECT pg_reload_conf()");
  EXPECT_TRUE(log_has(*p, {backend_key(*c, refusing), "status=down", "pg_hba.conf"}));

  // Accepts TCP, never answers a login (postmaster stopped): down after the timeouts.
  const pid_t pm = c->node(hung).process->pid;
  ::kill(pm, SIGSTOP);
  std::size_t mark = log_of(*p).size();
  EXPECT_TRUE(log_has(*p, {backend_key(*c, hung), "status=down"}));
  // Clients are served by the others, reads and writes, nothing hangs.
  for (int i = 0; i < 50; ++i) {
    auto fresh = connect(info);
    EXPECT_EQ(fresh.scalar("SELECT inet_server_port()").value_or("?"), std::to_string(c->port(c->primary_index())));
    fresh.query("CREATE TABLE IF NOT EXISTS down_rows (k int); INSERT INTO down_rows VALUES (1)");
  }
  ::kill(pm, SIGCONT);
  EXPECT_TRUE(log_has(*p, {backend_key(*c, hung), "status=up", "2 health checks in a row"}, mark));
  mark = log_of(*p).size();
  b::write_service_file(hba, hba_text, c->os_user());
  c->exec_sql(refusing, "SELECT pg_reload_conf()");
  EXPECT_TRUE(log_has(*p, {backend_key(*c, refusing), "status=up"}, mark));
  // The replicas serve reads again.
  std::set<std::string> seen;
  ASSERT_TRUE(b::poll_until(10s, 10ms, [&] {
    seen.insert(connect(info).scalar("SELECT inet_server_port()").value_or("?"));
    return seen.count(std::to_string(c->port(hung))) && seen.count(std::to_string(c->port(refusing)));
  }));
}

TEST(ha, a_replica_killed_under_a_read_load_costs_no_read_error) {
  auto c = own_cluster();
  const auto replicas = c->replica_indexes();
  const std::size_t victim = replicas.at(0);
  // Health checks far apart: the reads in flight on the killed replica (and those handed its
  // pooled connections before the checks notice) are what the retry has to save.
  auto p = start_ha(*c, "health_check_interval = \"3s\"\nhealth_check_timeout = \"1s\"\nhealth_check_fall = 3\n",
                    backends_toml(*c));
  const std::string info = conninfo_of(*p, *c);
  ASSERT_TRUE(log_has(*p, {"health database=" + c->database() + " primary="}));

  std::atomic<bool> stop{false};
  std::atomic<long> reads{0}, read_errors{0}, on_victim{0};
  std::mutex mu;
  std::vector<std::string> errors;
  std::vector<std::thread> threads;
  auto note_error = [&](const std::exception& e) {
    ++read_errors;
    std::lock_guard lk(mu);
    errors.push_back(e.what());
  };
  const std::string victim_port = std::to_string(c->port(victim));
  for (int r = 0; r < 7; ++r) {
    threads.emplace_back([&, r] {
      std::optional<b::pq_connection> conn;
      while (!stop) {
        if (r == 6) {
          // A read-only transaction: its first statement is retried like an autocommit read;
          // its COMMIT, after the client had the statement's rows, may fail as PostgreSQL's would.
          try {
            if (!conn) conn.emplace(connect(info));
            conn->query("BEGIN READ ONLY");
            if (conn->query("SELECT inet_server_port(), pg_sleep(0.05)").at(0).at(0) == victim_port) ++on_victim;
            ++reads;
          } catch (const std::exception& e) {
            note_error(e);
            conn.reset();
            continue;
          }
          try {
            conn->query("COMMIT");
          } catch (const std::exception&) {
            conn.reset();
          }
          continue;
        }
        try {
          if (!conn) conn.emplace(connect(info));
          // Half simple Query, half the extended protocol; each long enough to be caught running.
          const auto rows = r % 2 == 0 ? conn->query("SELECT inet_server_port(), pg_sleep(0.05)")
                                       : conn->query("SELECT inet_server_port(), pg_sleep($1::float8)", {"0.05"});
          if (rows.at(0).at(0) == victim_port) ++on_victim;
          ++reads;
        } catch (const std::exception& e) {
          note_error(e);
          conn.reset();
        }
      }
    });
  }
  // Both replicas serve reads before the kill.
  ASSERT_TRUE(b::poll_until(20s, 20ms, [&] { return reads > 100 && on_victim > 30; }));
  const std::size_t mark = log_of(*p).size();
  // The backends first, all at once, so that the reads running on them die mid-statement (a
  // postmaster killed first leaves them time to finish), then the postmaster.
  const auto kids = children_of(c->node(victim).process->pid);
  for (auto k : kids) ::kill(k, SIGKILL);
  c->kill_node(victim);
  const long r0 = reads;
  const bool went_on = b::poll_until(30s, 20ms, [&] { return reads > r0 + 300; });
  stop = true;
  for (auto& t : threads) t.join();
  EXPECT_TRUE(went_on);
  EXPECT_EQ(read_errors, 0) << (errors.empty() ? "" : errors.front()) << log_of(*p).substr(mark);
  // The reads that were running on the replica (or sent over its dead pooled connections) were
  // run again elsewhere: the retry did happen, it is not that none was in flight.
  EXPECT_TRUE(log_has(*p, {"read_retry", backend_key(*c, victim)}, mark, 1s)) << log_of(*p).substr(mark);
  // The other replica and the primary serve on.
  auto conn = connect(info);
  for (int i = 0; i < 20; ++i) EXPECT_NE(conn.scalar("SELECT inet_server_port()").value_or("?"), victim_port);
}

}  // namespace
}  // namespace pgsluice::test::proxy

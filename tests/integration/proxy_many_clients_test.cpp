// 10,000 clients connected to pgsluice at once (or as many as the open-files limit allows): all log in, all are served, twice, with no error.
//
// Idle clients keep no read buffer in pgsluice (they wait for readability with none, see
// client_session::park_client_input): the second round of queries is served only if every one
// of those parked clients wakes up again when its next query arrives.
#include <poll.h>
#include <sys/resource.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "tests/integration/proxy_fixture.hpp"

namespace pgsluice::test::proxy {
namespace {

using clock_type = std::chrono::steady_clock;

struct clients {
  std::vector<PGconn*> conns;
  ~clients() {
    for (PGconn* c : conns) PQfinish(c);
  }
};

// Clients this process may hold: the open-files limit raised to its hard limit, with room
// for the test's own files and libpq's.
std::size_t client_budget(std::size_t wanted) {
  rlimit rl{};
  ::getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &rl);
  ::getrlimit(RLIMIT_NOFILE, &rl);
  const std::size_t room = rl.rlim_cur > 300 ? static_cast<std::size_t>(rl.rlim_cur) - 300 : 0;
  return std::min(wanted, room);
}

// Logs in `n` clients, `wave` attempts under way at a time (non-blocking libpq). Returns the
// number that failed; the connected ones are appended to `out`.
std::size_t connect_all(const std::string& conninfo, std::size_t n, std::size_t wave, clients& out,
                        clock_type::time_point deadline) {
  std::size_t failed = 0;
  std::size_t started = 0;
  std::vector<PGconn*> pending;
  std::vector<PostgresPollingStatusType> want;
  while ((started < n || !pending.empty()) && clock_type::now() < deadline) {
    while (started < n && pending.size() < wave) {
      PGconn* c = PQconnectStart(conninfo.c_str());
      ++started;
      if (c == nullptr || PQstatus(c) == CONNECTION_BAD) {
        if (failed++ < 3) std::cerr << "connect: " << (c ? PQerrorMessage(c) : "out of memory") << "\n";
        PQfinish(c);
        continue;
      }
      pending.push_back(c);
      want.push_back(PGRES_POLLING_WRITING);
    }
    std::vector<pollfd> fds(pending.size());
    for (std::size_t i = 0; i < pending.size(); ++i) {
      fds[i] = {PQsocket(pending[i]), static_cast<short>(want[i] == PGRES_POLLING_READING ? POLLIN : POLLOUT), 0};
    }
    if (::poll(fds.data(), fds.size(), 100) < 0) break;
    for (std::size_t i = pending.size(); i-- > 0;) {
      if (fds[i].revents == 0) continue;
      want[i] = PQconnectPoll(pending[i]);
      if (want[i] != PGRES_POLLING_OK && want[i] != PGRES_POLLING_FAILED) continue;
      if (want[i] == PGRES_POLLING_OK) {
        out.conns.push_back(pending[i]);
      } else {
        if (failed++ < 3) std::cerr << "connect: " << PQerrorMessage(pending[i]) << "\n";
        PQfinish(pending[i]);
      }
      pending[i] = pending.back();
      pending.pop_back();
      want[i] = want.back();
      want.pop_back();
    }
  }
  failed += pending.size() + (n - started);
  for (PGconn* c : pending) PQfinish(c);
  return failed;
}

// Every client sends `SELECT n` at once; returns how many did not get exactly their answer.
std::size_t query_all(clients& cs, clock_type::time_point deadline) {
  std::size_t errors = 0;
  std::vector<std::size_t> open;
  for (std::size_t i = 0; i < cs.conns.size(); ++i) {
    if (PQsendQuery(cs.conns[i], ("SELECT " + std::to_string(i)).c_str()) == 1) {
      open.push_back(i);
    } else if (errors++ < 3) {
      std::cerr << "send: " << PQerrorMessage(cs.conns[i]) << "\n";
    }
  }
  std::vector<bool> answered(cs.conns.size(), false);
  while (!open.empty() && clock_type::now() < deadline) {
    std::vector<pollfd> fds(open.size());
    for (std::size_t k = 0; k < open.size(); ++k) fds[k] = {PQsocket(cs.conns[open[k]]), POLLIN, 0};
    if (::poll(fds.data(), fds.size(), 100) < 0) break;
    for (std::size_t k = open.size(); k-- > 0;) {
      if (fds[k].revents == 0) continue;
      const std::size_t i = open[k];
      PGconn* c = cs.conns[i];
      bool finished = PQconsumeInput(c) == 0;
      while (!finished && PQisBusy(c) == 0) {
        PGresult* r = PQgetResult(c);
        if (r == nullptr) {
          finished = true;
          break;
        }
        const bool right = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
                           std::string(PQgetvalue(r, 0, 0)) == std::to_string(i);
        if (right) {
          answered[i] = true;
        } else if (errors++ < 3) {
          std::cerr << "query: " << PQresultErrorMessage(r) << "\n";
        }
        PQclear(r);
      }
      if (!finished) continue;
      if (!answered[i]) ++errors;
      open[k] = open.back();
      open.pop_back();
    }
  }
  return errors + open.size();
}

std::size_t open_files(pid_t pid) {
  std::error_code ec;
  std::size_t n = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
    ++n;
  return n;
}

std::uint64_t rss_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6));
  }
  return 0;
}

TEST(many_clients, ten_thousand_connected_at_once_are_all_served) {
  const std::size_t n = client_budget(10000);
  ASSERT_GE(n, 1000u) << "the open-files limit leaves too little room";
  auto s = admin_setup("transaction", 20);
  s.auth_type = "trust";  // what is under test is holding the clients, not PBKDF2 on 2 cores
  s.globals = "max_client_conn = " + std::to_string(n + 100) + "\n";
  s.log_level = "warning";
  auto p = start_proxy(s);
  const pid_t pid = p->pid();
  ASSERT_GT(pid, 0);
  const std::uint64_t rss_before = rss_kib(pid);

  const auto deadline = clock_type::now() + std::chrono::seconds(50);
  clients cs;
  cs.conns.reserve(n);
  const std::size_t failed = connect_all(admin_conninfo(*p) + " connect_timeout=30", n, 200, cs, deadline);
  EXPECT_EQ(failed, 0u);
  ASSERT_EQ(cs.conns.size(), n);
  // Every one of them is connected to pgsluice at the same time.
  EXPECT_GE(open_files(pid), n);

  EXPECT_EQ(query_all(cs, deadline), 0u) << "first round";
  // All idle now; each is served again (every parked client wakes for its query).
  EXPECT_EQ(query_all(cs, deadline), 0u) << "second round";
  EXPECT_GE(open_files(pid), n);
  const std::uint64_t rss_held = rss_kib(pid);
  // Reported, not asserted (the bench's figure: scripts/idle_clients_rss.py).
  std::cout << "pgsluice RSS: " << rss_before << " KiB before, " << rss_held << " KiB with " << n
            << " clients held: " << static_cast<double>(rss_held - std::min(rss_held, rss_before)) / static_cast<double>(n)
            << " KiB per client\n";
  EXPECT_TRUE(p->running());
}

}  // namespace
}  // namespace pgsluice::test::proxy

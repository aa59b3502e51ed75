// Pooling behaviour through pgsluice against real PostgreSQL: cancel, COPY, LISTEN/NOTIFY, prepared statements
// across server connections, pipelines with errors, session pinning and reset, parameter sync, waits and dirty servers.
#include <sys/select.h>

#include <set>
#include <thread>

#include "tests/integration/proxy_fixture.hpp"

namespace pgsluice::test::proxy {
namespace {

pgsluice_process& proxy(const std::string& mode, int pool_size = 2) {
  static std::map<std::string, std::unique_ptr<pgsluice_process>> procs;
  auto& slot = procs[mode + std::to_string(pool_size)];
  if (!slot) {
    auto s = admin_setup(mode, pool_size);
    s.globals = "query_wait_timeout = \"60s\"\n";
    slot = start_proxy(s);
  }
  return *slot;
}

std::string ci(const std::string& mode, int pool_size = 2) { return admin_conninfo(proxy(mode, pool_size)); }

std::string exec_ok(PGconn* c, const std::string& sql) {
  PGresult* r = PQexec(c, sql.c_str());
  const auto st = PQresultStatus(r);
  std::string out;
  if (st == PGRES_TUPLES_OK && PQntuples(r) > 0) out = PQgetvalue(r, 0, 0);
  const bool ok = st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK;
  const std::string err = PQresultErrorMessage(r);
  PQclear(r);
  EXPECT_TRUE(ok) << sql << ": " << err;
  return out;
}


class both_modes : public ::testing::TestWithParam<std::string> {};

// --- cancel -------------------------------------------------------------------------------------

// The result of the statement sent on `c`: its status, or its SQLSTATE when it failed.
std::string outcome_of_sent(PGconn* c) {
  PGresult* r = PQgetResult(c);
  std::string out = r == nullptr ? "no result" : PQresultStatus(r) == PGRES_TUPLES_OK ? "ok" : "error " + sqlstate_of(r);
  PQclear(r);
  while ((r = PQgetResult(c)) != nullptr) PQclear(r);
  return out;
}

// Two clients run long statements at once, each on its own server connection. The cancel
// sent with the first client's key (libpq's PQcancel, through pgsluice) must stop the first
// client's statement — a 60 s sleep ending in 57014 "due to user request", not a timeout —
// and nothing else: the second client's statement is still running afterwards and then
// completes normally.
TEST_P(both_modes, cancel_reaches_the_running_query_and_the_server_is_reused) {
  const std::string mode = GetParam();
  const std::string cancel_marker = "cancel me " + mode, keep_marker = "keep me " + mode;
  pg_raw a(ci(mode)), other(ci(mode));
  ASSERT_TRUE(a.ok()) << a.error();
  ASSERT_TRUE(other.ok()) << other.error();
  // The other client's statement is still running when the cancel arrives and ends only
  // when this test releases the lock.
  held_lock lock(mode == "transaction" ? 5701401 : 5701402);
  ASSERT_EQ(PQsendQuery(other.conn, lock.waiting_statement(keep_marker).c_str()), 1);
  ASSERT_EQ(PQsendQuery(a.conn, ("SELECT pg_sleep(60) /* " + cancel_marker + " */").c_str()), 1);
  // Readiness: both statements run on the server, each on its own backend.
  std::string cancelled_pid, kept_pid;
  ASSERT_TRUE(b::poll_until(std::chrono::seconds(10), std::chrono::milliseconds(20), [&] {
    cancelled_pid = active_backend_running(cancel_marker);
    kept_pid = active_backend_running(keep_marker);
    return !cancelled_pid.empty() && !kept_pid.empty();
  })) << "the two statements never ran at once";
  ASSERT_NE(cancelled_pid, kept_pid);

  PGcancel* cancel = PQgetCancel(a.conn);
  ASSERT_NE(cancel, nullptr);
  char errbuf[256];
  ASSERT_EQ(PQcancel(cancel, errbuf, sizeof errbuf), 1) << errbuf;
  PQfreeCancel(cancel);
  PGresult* r = PQgetResult(a.conn);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(sqlstate_of(r), "57014") << PQresultErrorMessage(r);
  // A cancel, not statement_timeout (also 57014): the 60 s sleep was stopped by the request.
  const char* primary = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
  EXPECT_STREQ(primary ? primary : "", "canceling statement due to user request");
  PQclear(r);
  while ((r = PQgetResult(a.conn)) != nullptr) PQclear(r);
  EXPECT_EQ(active_backend_running(cancel_marker), "") << "the cancelled statement still runs";

  // The other client's statement was not touched: still running on its backend, and once the
  // lock is released it completes without error.
  EXPECT_EQ(active_backend_running(keep_marker), kept_pid) << "the cancel reached the other client's server";
  lock.release();
  EXPECT_EQ(outcome_of_sent(other.conn), "ok");

  // Same client, and the other one: both served (the cancelled server connection was reusable).
  EXPECT_EQ(exec_ok(a.conn, "SELECT 41 + 1"), "42");
  EXPECT_EQ(exec_ok(other.conn, "SELECT 'ok'"), "ok");
}

// A cancel sent with the key of a client that runs nothing stops nothing: not the statement
// another client is running at that moment, not the idle client's next one.
TEST_P(both_modes, cancel_with_no_query_running_cancels_nothing) {
  const std::string mode = GetParam();
  const std::string marker = "busy while idle cancel " + mode;
  pg_raw a(ci(mode));
  pg_raw busy(ci(mode));
  ASSERT_TRUE(a.ok() && busy.ok());
  exec_ok(a.conn, "SELECT 1");  // in session mode `a` now holds its own (idle) server
  held_lock lock(mode == "transaction" ? 5701403 : 5701404);
  ASSERT_EQ(PQsendQuery(busy.conn, lock.waiting_statement(marker).c_str()), 1);
  std::string busy_pid;
  ASSERT_TRUE(b::poll_until(std::chrono::seconds(10), std::chrono::milliseconds(20), [&] {
    busy_pid = active_backend_running(marker);
    return !busy_pid.empty();
  }));
  PGcancel* cancel = PQgetCancel(a.conn);
  ASSERT_NE(cancel, nullptr);
  char errbuf[256];
  // libpq returns once the other end has closed the cancel connection, i.e. dealt with it.
  ASSERT_EQ(PQcancel(cancel, errbuf, sizeof errbuf), 1) << errbuf;
  PQfreeCancel(cancel);
  EXPECT_EQ(exec_ok(a.conn, "SELECT 1"), "1");
  EXPECT_EQ(active_backend_running(marker), busy_pid) << "the busy client's statement was stopped";
  lock.release();
  EXPECT_EQ(outcome_of_sent(busy.conn), "ok");
}

// --- COPY ----------------------------------------------------------------------------------------

TEST_P(both_modes, copy_in_and_out_including_a_row_larger_than_the_stream_threshold) {
  const std::string table = "copy_" + GetParam();
  pg_raw a(ci(GetParam()));
  ASSERT_TRUE(a.ok());
  exec_ok(a.conn, "DROP TABLE IF EXISTS " + table + "; CREATE TABLE " + table + " (id int, payload text)");
  PGresult* r = PQexec(a.conn, ("COPY " + table + " FROM STDIN").c_str());
  ASSERT_EQ(PQresultStatus(r), PGRES_COPY_IN);
  PQclear(r);
  std::string expected_bytes;
  for (int i = 0; i < 5000; ++i) {
    const std::string line = std::to_string(i) + "\trow-" + std::to_string(i) + "\n";
    ASSERT_EQ(PQputCopyData(a.conn, line.data(), static_cast<int>(line.size())), 1);
  }
  const std::string big = "5000\t" + std::string(600 * 1024, 'x') + "\n";
  ASSERT_EQ(PQputCopyData(a.conn, big.data(), static_cast<int>(big.size())), 1);
  ASSERT_EQ(PQputCopyEnd(a.conn, nullptr), 1);
  r = PQgetResult(a.conn);
  EXPECT_EQ(PQresultStatus(r), PGRES_COMMAND_OK) << PQresultErrorMessage(r);
  EXPECT_STREQ(PQcmdTuples(r), "5001");
  PQclear(r);
  while ((r = PQgetResult(a.conn)) != nullptr) PQclear(r);

  r = PQexec(a.conn, ("COPY (SELECT * FROM " + table + " ORDER BY id) TO STDOUT").c_str());
  ASSERT_EQ(PQresultStatus(r), PGRES_COPY_OUT);
  PQclear(r);
  std::size_t rows = 0, bytes = 0;
  char* buf = nullptr;
  int n;
  while ((n = PQgetCopyData(a.conn, &buf, 0)) > 0) {
    ++rows;
    bytes += static_cast<std::size_t>(n);
    PQfreemem(buf);
  }
  r = PQgetResult(a.conn);
  EXPECT_EQ(PQresultStatus(r), PGRES_COMMAND_OK);
  PQclear(r);
  while ((r = PQgetResult(a.conn)) != nullptr) PQclear(r);
  EXPECT_EQ(rows, 5001u);
  EXPECT_GT(bytes, 600u * 1024);
  // A large value read back through the relay (a DataRow streamed in pieces).
  EXPECT_EQ(exec_ok(a.conn, "SELECT length(payload) FROM " + table + " WHERE id = 5000"), std::to_string(600 * 1024));
  // A failing COPY IN: the error reaches the client and the connection stays usable.
  r = PQexec(a.conn, ("COPY " + table + " FROM STDIN").c_str());
  ASSERT_EQ(PQresultStatus(r), PGRES_COPY_IN);
  PQclear(r);
  const std::string bad = "not-a-number\tx\n";
  PQputCopyData(a.conn, bad.data(), static_cast<int>(bad.size()));
  PQputCopyEnd(a.conn, nullptr);
  r = PQgetResult(a.conn);
  EXPECT_EQ(sqlstate_of(r), "22P02");
  PQclear(r);
  while ((r = PQgetResult(a.conn)) != nullptr) PQclear(r);
  EXPECT_EQ(exec_ok(a.conn, "SELECT count(*) FROM " + table), "5001");
}

// --- LISTEN / NOTIFY -------------------------------------------------------------------------

TEST_P(both_modes, notifications_are_delivered_to_a_listener) {
  pg_raw listener(ci(GetParam()));
  pg_raw sender(ci(GetParam()));
  ASSERT_TRUE(listener.ok() && sender.ok());
  exec_ok(listener.conn, "LISTEN pgsluice_jobs");
  exec_ok(sender.conn, "NOTIFY pgsluice_jobs, 'hello'");
  PGnotify* note = nullptr;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (note == nullptr && std::chrono::steady_clock::now() < deadline) {
    const int sock = PQsocket(listener.conn);
    fd_set fds;
    FD_ZERO(&fds);
    FD_SET(sock, &fds);
    timeval tv{0, 200000};
    ::select(sock + 1, &fds, nullptr, nullptr, &tv);
    PQconsumeInput(listener.conn);
    note = PQnotifies(listener.conn);
  }
  ASSERT_NE(note, nullptr);
  EXPECT_STREQ(note->relname, "pgsluice_jobs");
  EXPECT_STREQ(note->extra, "hello");
  PQfreemem(note);
}

INSTANTIATE_TEST_SUITE_P(modes, both_modes, ::testing::Values("transaction", "session"));

// --- prepared statements in transaction mode --------------------------------------------------

TEST(prepared_statements, named_statements_work_on_whichever_server_runs_the_transaction) {
  pg_raw a(ci("transaction"));
  pg_raw holder(ci("transaction"));
  ASSERT_TRUE(a.ok() && holder.ok());
  PGresult* r = PQprepare(a.conn, "s1", "SELECT $1::int + 1, pg_backend_pid()", 1, nullptr);
  ASSERT_EQ(PQresultStatus(r), PGRES_COMMAND_OK) << PQresultErrorMessage(r);
  PQclear(r);
  std::set<std::string> pids;
  auto& c = cluster();
  for (int i = 0; i < 6; ++i) {
    // Even rounds: the holder keeps a server inside a transaction while `a` runs. Odd rounds:
    // every server connection is terminated, so `a` gets a new server connection that has
    // never seen the statement and pgsluice must prepare it there first.
    const bool hold = i % 2 == 0;
    if (hold) {
      exec_ok(holder.conn, "BEGIN");
      exec_ok(holder.conn, "SELECT 1");
    } else {
      // Every server connection of this user goes: `a` then runs on a brand-new one.
      const std::string mine = "FROM pg_stat_activity WHERE usename = '" + c.admin().name + "' AND datname = '" +
                               c.database() + "' AND backend_type = 'client backend'";
      c.exec_sql(c.primary_index(), "SELECT pg_terminate_backend(pid) " + mine);
      ASSERT_TRUE(b::poll_until(std::chrono::seconds(10), std::chrono::milliseconds(20),
                                [&] { return c.exec_sql(c.primary_index(), "SELECT 1 " + mine).empty(); }));
    }
    const std::string v = std::to_string(i);
    const char* params[] = {v.c_str()};
    r = PQexecPrepared(a.conn, "s1", 1, params, nullptr, nullptr, 0);
    ASSERT_EQ(PQresultStatus(r), PGRES_TUPLES_OK) << PQresultErrorMessage(r);
    EXPECT_EQ(std::string(PQgetvalue(r, 0, 0)), std::to_string(i + 1));
    const std::string pid = PQgetvalue(r, 0, 1);
    if (!hold) {
      EXPECT_EQ(pids.count(pid), 0u) << "a new server connection cannot have run it before";
    }
    pids.insert(pid);
    PQclear(r);
    if (hold) exec_ok(holder.conn, "COMMIT");
  }
  EXPECT_GE(pids.size(), 4u) << "the statement should have run on several server connections";

  // Describe of the statement through the renaming.
  r = PQdescribePrepared(a.conn, "s1");
  ASSERT_EQ(PQresultStatus(r), PGRES_COMMAND_OK) << PQresultErrorMessage(r);
  EXPECT_EQ(PQnparams(r), 1);
  EXPECT_EQ(PQnfields(r), 2);
  PQclear(r);

  // A duplicate name is refused as PostgreSQL does, and the connection stays usable.
  r = PQprepare(a.conn, "s1", "SELECT 2", 0, nullptr);
  EXPECT_EQ(sqlstate_of(r), "42P05") << PQresultErrorMessage(r);
  PQclear(r);

}

// Close of a named statement (libpq 15 has no call for it: raw protocol), through a proxy
// with trust so a raw client can log in.
TEST(prepared_statements, close_forgets_the_name_for_this_client_only) {
  auto setup = admin_setup("transaction", 1);
  setup.auth_type = "trust";
  auto p = start_proxy(setup);
  auto& c = cluster();
  auto login = [&] {
    auto r = std::make_unique<raw_client>(p->port());
    r->send(startup_packet({{"user", c.admin().name}, {"database", c.database()}}));
    EXPECT_EQ(r->read_until_ready(std::chrono::seconds(10)).back(), 'Z');
    return r;
  };
  auto parse = [](const std::string& name, const std::string& sql) {
    return message('P', name + '\0' + sql + '\0' + std::string(2, '\0'));
  };
  auto bind_execute_sync = [](const std::string& name) {
    auto out = message('B', std::string(1, '\0') + name + '\0' + std::string(6, '\0'));
    auto e = message('E', std::string(5, '\0'));
    auto s = message('S', "");
    out.insert(out.end(), e.begin(), e.end());
    out.insert(out.end(), s.begin(), s.end());
    return out;
  };
  auto tags_until_ready = [](raw_client& r, std::string* sqlstate = nullptr) {
    std::string tags;
    while (auto m = r.read_message(std::chrono::seconds(10))) {
      tags += m->first;
      if (m->first == 'E' && sqlstate) *sqlstate = error_field(m->second, 'C');
      if (m->first == 'Z') break;
    }
    return tags;
  };
  auto a = login();
  auto other = login();
  auto sync = message('S', "");
  for (auto* r : {a.get(), other.get()}) {
    auto msg = parse("s1", "SELECT 1");
    msg.insert(msg.end(), sync.begin(), sync.end());
    r->send(msg);
    EXPECT_EQ(tags_until_ready(*r), "1Z");
  }
  a->send(bind_execute_sync("s1"));
  EXPECT_EQ(tags_until_ready(*a), "2DCZ");
  auto close = message('C', std::string("Ss1") + '\0');
  close.insert(close.end(), sync.begin(), sync.end());
  a->send(close);
  EXPECT_EQ(tags_until_ready(*a), "3Z");
  std::string state;
  a->send(bind_execute_sync("s1"));
  EXPECT_EQ(tags_until_ready(*a, &state), "EZ");
  EXPECT_EQ(state, "26000");
  // The other client's s1 is untouched (same text: same statement on the server).
  other->send(bind_execute_sync("s1"));
  EXPECT_EQ(tags_until_ready(*other), "2DCZ");
  // The name is free again for `a`, with another text.
  auto again = parse("s1", "SELECT 2");
  auto bes = bind_execute_sync("s1");
  again.insert(again.end(), bes.begin(), bes.end());
  a->send(again);
  EXPECT_EQ(tags_until_ready(*a), "12DCZ");
}

TEST(prepared_statements, many_clients_many_statements_small_cache) {
  // max_prepared_statements = 3 per server connection: statements are evicted and re-prepared.
  auto s = admin_setup("transaction", 2);
  s.globals = "max_prepared_statements = 3\n";
  auto p = start_proxy(s);
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      pg_raw conn(admin_conninfo(*p));
      if (!conn.ok()) {
        ++failures;
        return;
      }
      for (int k = 0; k < 8; ++k) {
        const std::string name = "q" + std::to_string(k);
        PGresult* r = PQprepare(conn.conn, name.c_str(), ("SELECT $1::int * " + std::to_string(k)).c_str(), 1, nullptr);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) ++failures;
        PQclear(r);
      }
      for (int i = 0; i < 40; ++i) {
        const int k = (i * 5 + t) % 8;
        const std::string name = "q" + std::to_string(k);
        const std::string v = std::to_string(i);
        const char* params[] = {v.c_str()};
        PGresult* r = PQexecPrepared(conn.conn, name.c_str(), 1, params, nullptr, nullptr, 0);
        if (PQresultStatus(r) != PGRES_TUPLES_OK || std::string(PQgetvalue(r, 0, 0)) != std::to_string(i * k)) ++failures;
        PQclear(r);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  // Eight statement texts went through each of the two servers; each keeps at most three.
  pg_raw x(admin_conninfo(*p)), y(admin_conninfo(*p));
  exec_ok(x.conn, "BEGIN");
  exec_ok(y.conn, "BEGIN");
  for (auto* conn : {x.conn, y.conn}) {
    const int kept = std::stoi(exec_ok(conn, "SELECT count(*) FROM pg_prepared_statements WHERE name LIKE 'pgsluice%'"));
    EXPECT_GT(kept, 0) << "no statement of pgsluice prepared on this server";
    EXPECT_LE(kept, 3) << "more statements prepared than max_prepared_statements";
  }
  exec_ok(x.conn, "COMMIT");
  exec_ok(y.conn, "COMMIT");
}

// --- pipelines ---------------------------------------------------------------------------------

TEST(pipeline, an_error_skips_the_rest_until_sync_as_postgresql_does) {
  pg_raw a(ci("transaction"));
  ASSERT_TRUE(a.ok());
  PGresult* r = PQprepare(a.conn, "pp", "SELECT $1::int", 1, nullptr);
  PQclear(r);
  ASSERT_EQ(PQenterPipelineMode(a.conn), 1);
  const char* one[] = {"1"};
  ASSERT_EQ(PQsendQueryPrepared(a.conn, "pp", 1, one, nullptr, nullptr, 0), 1);
  ASSERT_EQ(PQsendQueryParams(a.conn, "SELECT 1/0", 0, nullptr, nullptr, nullptr, nullptr, 0), 1);
  ASSERT_EQ(PQsendQueryPrepared(a.conn, "pp", 1, one, nullptr, nullptr, 0), 1);
  ASSERT_EQ(PQpipelineSync(a.conn), 1);
  const char* two[] = {"2"};
  ASSERT_EQ(PQsendQueryPrepared(a.conn, "pp", 1, two, nullptr, nullptr, 0), 1);
  ASSERT_EQ(PQpipelineSync(a.conn), 1);

  std::vector<std::string> seen;
  int syncs = 0;
  while (syncs < 2) {
    r = PQgetResult(a.conn);
    if (r == nullptr) continue;  // end of one query's results
    const auto st = PQresultStatus(r);
    if (st == PGRES_PIPELINE_SYNC) {
      ++syncs;
      seen.push_back("sync");
    } else if (st == PGRES_TUPLES_OK) {
      seen.push_back(std::string("row:") + PQgetvalue(r, 0, 0));
    } else if (st == PGRES_PIPELINE_ABORTED) {
      seen.push_back("aborted");
    } else {
      seen.push_back("error:" + sqlstate_of(r));
    }
    PQclear(r);
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"row:1", "error:22012", "aborted", "sync", "row:2", "sync"}));
  ASSERT_EQ(PQexitPipelineMode(a.conn), 1);
  EXPECT_EQ(exec_ok(a.conn, "SELECT 3"), "3");
}

// --- pinning and reset -------------------------------------------------------------------------

TEST(pinning, session_state_stays_with_its_client_and_is_reset_before_reuse) {
  std::string other_pid;
  {
    pg_raw a(ci("transaction"));
    ASSERT_TRUE(a.ok());
    exec_ok(a.conn, "SET statement_timeout = '12345ms'");  // session state: pins `a` to its server
    exec_ok(a.conn, "CREATE TEMP TABLE pinned_tmp (x int)");
    const std::string pid = exec_ok(a.conn, "SELECT pg_backend_pid()");
    for (int i = 0; i < 5; ++i) {
      EXPECT_EQ(exec_ok(a.conn, "SELECT pg_backend_pid()"), pid);
      EXPECT_EQ(exec_ok(a.conn, "SHOW statement_timeout"), "12345ms");
      exec_ok(a.conn, "INSERT INTO pinned_tmp VALUES (1)");
    }
    // Meanwhile other clients never see that setting.
    pg_raw b2(ci("transaction"));
    EXPECT_EQ(exec_ok(b2.conn, "SHOW statement_timeout"), "0");
    other_pid = exec_ok(b2.conn, "SELECT pg_backend_pid()");
    EXPECT_NE(other_pid, pid);
  }
  // `a` left: its server was reset (DISCARD ALL) before going back. Hold both servers at
  // once and look at each.
  pg_raw x(ci("transaction")), y(ci("transaction"));
  exec_ok(x.conn, "BEGIN");
  exec_ok(y.conn, "BEGIN");
  for (auto* c : {x.conn, y.conn}) {
    EXPECT_EQ(exec_ok(c, "SHOW statement_timeout"), "0");
    EXPECT_EQ(exec_ok(c, "SELECT count(*) FROM pg_class WHERE relname = 'pinned_tmp' AND relpersistence = 't'"), "0");
  }
  exec_ok(x.conn, "COMMIT");
  exec_ok(y.conn, "COMMIT");
}

TEST(pinning, set_local_does_not_leak) {
  pg_raw a(ci("transaction", 1)), b2(ci("transaction", 1));
  exec_ok(a.conn, "BEGIN");
  exec_ok(a.conn, "SET LOCAL work_mem = '7MB'");
  EXPECT_EQ(exec_ok(a.conn, "SHOW work_mem"), "7MB");
  exec_ok(a.conn, "COMMIT");
  EXPECT_NE(exec_ok(b2.conn, "SHOW work_mem"), "7MB");
}

// --- parameters --------------------------------------------------------------------------------

TEST(parameters, each_client_keeps_its_settings_on_a_shared_server) {
  const std::string base = ci("transaction", 1);  // one server: every transaction shares it
  pg_raw tokyo(base + " options='-c TimeZone=Asia/Tokyo -c search_path=tokyo_path' application_name=alpha");
  pg_raw utc(base + " options='-c TimeZone=UTC' application_name=beta");
  ASSERT_TRUE(tokyo.ok()) << tokyo.error();
  ASSERT_TRUE(utc.ok()) << utc.error();
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(exec_ok(tokyo.conn, "SHOW TimeZone"), "Asia/Tokyo");
    EXPECT_EQ(exec_ok(tokyo.conn, "SHOW search_path"), "tokyo_path");
    EXPECT_EQ(exec_ok(tokyo.conn, "SELECT current_setting('application_name')"), "alpha");
    EXPECT_EQ(exec_ok(utc.conn, "SHOW TimeZone"), "UTC");
    EXPECT_EQ(exec_ok(utc.conn, "SHOW search_path"), "\"$user\", public");
    EXPECT_EQ(exec_ok(utc.conn, "SELECT current_setting('application_name')"), "beta");
  }
  // What libpq was told (ParameterStatus) matches.
  EXPECT_STREQ(PQparameterStatus(tokyo.conn, "TimeZone"), "Asia/Tokyo");
  EXPECT_STREQ(PQparameterStatus(utc.conn, "TimeZone"), "UTC");
  // A tracked parameter changed with SET follows the client without pinning it.
  exec_ok(utc.conn, "SET TimeZone = 'Europe/Paris'");
  EXPECT_STREQ(PQparameterStatus(utc.conn, "TimeZone"), "Europe/Paris");
  EXPECT_EQ(exec_ok(tokyo.conn, "SHOW TimeZone"), "Asia/Tokyo");
  EXPECT_EQ(exec_ok(utc.conn, "SHOW TimeZone"), "Europe/Paris");
}

// --- waiting, dirty and broken servers -------------------------------------------------------

TEST(waiting, query_wait_timeout_is_reported_clearly) {
  auto s = admin_setup("transaction", 1);
  s.globals = "query_wait_timeout = \"1s\"\n";
  auto p = start_proxy(s);
  pg_raw holder(admin_conninfo(*p)), waiter(admin_conninfo(*p));
  exec_ok(holder.conn, "BEGIN");
  exec_ok(holder.conn, "SELECT 1");
  PGresult* r = PQexec(waiter.conn, "SELECT 1");
  EXPECT_EQ(PQresultStatus(r), PGRES_FATAL_ERROR);
  EXPECT_NE(std::string(PQerrorMessage(waiter.conn)).find("query_wait_timeout"), std::string::npos)
      << PQerrorMessage(waiter.conn);
  PQclear(r);
  exec_ok(holder.conn, "COMMIT");
}

// Transaction pooling holds a bare BEGIN until the transaction's first statement, which takes
// it to the server: the pool's one server stays free for others meanwhile, a transaction with
// nothing in it needs none, and inside it everything is as on PostgreSQL.
TEST(held_begin, a_bare_begin_takes_no_server_until_its_first_statement) {
  auto s = admin_setup("transaction", 1);
  s.globals = "query_wait_timeout = \"2s\"\n";
  auto p = start_proxy(s);
  pg_raw a(admin_conninfo(*p)), other(admin_conninfo(*p));
  ASSERT_TRUE(a.ok() && other.ok()) << a.error();
  exec_ok(a.conn, "DROP TABLE IF EXISTS held_t; CREATE TABLE held_t (x int)");
  exec_ok(a.conn, "BEGIN");
  EXPECT_EQ(PQtransactionStatus(a.conn), PQTRANS_INTRANS);
  // Served at once: had the BEGIN taken the one server, this would wait out query_wait_timeout.
  EXPECT_EQ(exec_ok(other.conn, "SELECT 'other'"), "other");
  exec_ok(a.conn, "INSERT INTO held_t VALUES (1)");
  EXPECT_EQ(exec_ok(a.conn, "SELECT count(*) FROM held_t"), "1");
  exec_ok(a.conn, "ROLLBACK");
  EXPECT_EQ(PQtransactionStatus(a.conn), PQTRANS_IDLE);
  EXPECT_EQ(exec_ok(other.conn, "SELECT count(*) FROM held_t"), "0") << "the rollback did not reach the server";

  // An empty transaction while another client holds the one server.
  exec_ok(other.conn, "BEGIN");
  exec_ok(other.conn, "SELECT 1");
  PGresult* r = PQexec(a.conn, "BEGIN");
  EXPECT_STREQ(PQcmdStatus(r), "BEGIN");
  PQclear(r);
  exec_ok(a.conn, "COMMIT");
  EXPECT_EQ(PQtransactionStatus(a.conn), PQTRANS_IDLE);
  exec_ok(other.conn, "COMMIT");

  // An error aborts the transaction, as PostgreSQL's would; READ ONLY holds.
  r = PQexec(a.conn, "begin; work");  // two statements, not BEGIN WORK: PostgreSQL's syntax error
  EXPECT_EQ(sqlstate_of(r), "42601");
  PQclear(r);
  EXPECT_EQ(PQtransactionStatus(a.conn), PQTRANS_IDLE);  // the whole text is parsed first: nothing ran
  exec_ok(a.conn, "begin work;");
  r = PQexec(a.conn, "SELECT 1/0");
  EXPECT_EQ(sqlstate_of(r), "22012");
  PQclear(r);
  r = PQexec(a.conn, "SELECT 1");
  EXPECT_EQ(sqlstate_of(r), "25P02");
  PQclear(r);
  exec_ok(a.conn, "ROLLBACK");
  r = PQexec(a.conn, "START TRANSACTION READ ONLY");
  EXPECT_STREQ(PQcmdStatus(r), "START TRANSACTION");  // PostgreSQL's tag, not BEGIN's
  PQclear(r);
  r = PQexec(a.conn, "INSERT INTO held_t VALUES (2)");
  EXPECT_EQ(sqlstate_of(r), "25006");
  PQclear(r);
  exec_ok(a.conn, "ROLLBACK");
  exec_ok(a.conn, "BEGIN");
  exec_ok(a.conn, "INSERT INTO held_t VALUES (3)");
  exec_ok(a.conn, "END");
  EXPECT_EQ(exec_ok(other.conn, "SELECT sum(x) FROM held_t"), "3");
}

TEST(dirty_servers, a_client_leaving_mid_transaction_leaves_nothing_behind) {
  const std::string conn1 = ci("transaction", 1);
  {
    pg_raw setup(conn1);
    exec_ok(setup.conn, "DROP TABLE IF EXISTS dirty_t; CREATE TABLE dirty_t (x int)");
  }
  {
    pg_raw a(conn1);
    exec_ok(a.conn, "BEGIN");
    exec_ok(a.conn, "INSERT INTO dirty_t VALUES (1)");
  }  // gone without COMMIT
  pg_raw b2(conn1);
  EXPECT_EQ(exec_ok(b2.conn, "SELECT count(*) FROM dirty_t"), "0");
  // Not inside someone else's transaction: now() is this statement's start.
  EXPECT_EQ(exec_ok(b2.conn, "SELECT now() = statement_timestamp()"), "t");
  EXPECT_EQ(PQtransactionStatus(b2.conn), PQTRANS_IDLE);
}

TEST(broken_servers, a_server_terminated_while_idle_is_replaced) {
  auto& c = cluster();
  pg_raw a(ci("transaction", 1));
  const std::string pid = exec_ok(a.conn, "SELECT pg_backend_pid()");
  c.exec_sql(c.primary_index(), "SELECT pg_terminate_backend(" + pid + ")");
  ASSERT_TRUE(b::poll_until(std::chrono::seconds(10), std::chrono::milliseconds(20), [&] {
    return c.exec_sql(c.primary_index(), "SELECT 1 FROM pg_stat_activity WHERE pid = " + pid).empty();
  }));
  const std::string pid2 = exec_ok(a.conn, "SELECT pg_backend_pid()");
  EXPECT_NE(pid2, pid);
}

}  // namespace
}  // namespace pgsluice::test::proxy

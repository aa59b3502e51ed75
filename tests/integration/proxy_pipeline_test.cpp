// pipeline_depth against real PostgreSQL: other clients' statements queued on one server connection, each answered as on its own connection — results, errors, order, cancel and session state.
#include <atomic>
#include <thread>

#include "tests/integration/proxy_fixture.hpp"

namespace pgsluice::test::proxy {
namespace {

using namespace std::chrono_literals;

// One worker (its lanes are shared by every client), two server connections, lanes of 8.
metered_proxy& proxy() {
  static metered_proxy p = [] {
    auto s = admin_setup("transaction", 2);
    s.workers = 1;
    s.globals = "pipeline_depth = 8\nquery_wait_timeout = \"60s\"\nmax_client_conn = 200\n";
    return start_metered_proxy(s);
  }();
  return p;
}

std::string ci() { return admin_conninfo(*proxy().process); }

// pgsluice_pipelined_statements_total from /metrics.
long pipelined() { return proxy().metric("pgsluice_pipelined_statements_total"); }

// Waits until `n` more statements than `base` went to lanes.
bool wait_pipelined(long base, long n) {
  return b::poll_until(10s, 10ms, [&] { return pipelined() >= base + n; });
}

// Statements of four clients queue behind a statement that waits on the server: all of them
// on its server connection (the same backend), each answered with its own result or error.
TEST(pipeline, statements_of_other_clients_queue_on_one_server_and_get_their_own_answers) {
  pg_raw a(ci()), b(ci()), c(ci()), d(ci());
  ASSERT_TRUE(a.ok() && b.ok() && c.ok() && d.ok()) << a.error();
  held_lock lock(5702001);
  const long base = pipelined();
  ASSERT_GE(base, 0);
  ASSERT_EQ(PQsendQuery(a.conn, lock.waiting_statement("queue head").c_str()), 1);
  ASSERT_TRUE(wait_pipelined(base, 1));
  std::string head_pid;
  ASSERT_TRUE(b::poll_until(10s, 10ms, [&] { return !(head_pid = active_backend_running("queue head")).empty(); }));
  ASSERT_EQ(PQsendQuery(b.conn, "SELECT 1/0"), 1);
  ASSERT_EQ(PQsendQuery(c.conn, "SELECT pg_backend_pid()"), 1);
  const char* values[] = {"41"};
  ASSERT_EQ(PQsendQueryParams(d.conn, "SELECT $1::int + 1", 1, nullptr, values, nullptr, nullptr, 0), 1);
  // Readiness: the three are queued in pgsluice's lane (not waiting for a server of their own).
  ASSERT_TRUE(wait_pipelined(base, 4)) << "statements were not pipelined";
  lock.release();
  EXPECT_EQ(answer(a.conn), "");  // pg_advisory_xact_lock returns void
  EXPECT_EQ(answer(b.conn), "error 22012");
  EXPECT_EQ(answer(c.conn), head_pid) << "not run on the server of the statement ahead";
  EXPECT_EQ(answer(d.conn), "42");
  // Each connection goes on as usual.
  EXPECT_EQ(exec(b.conn, "SELECT 'b'"), "b");
  EXPECT_EQ(exec(a.conn, "SELECT 'a'"), "a");
}

// Many clients at once, simple, extended and prepared, with errors among them, and one client
// pipelining its own statements (libpq pipeline mode): every answer right and in order.
TEST(pipeline, many_clients_each_get_their_answers_in_order) {
  const long base = pipelined();
  constexpr int clients = 12;
  constexpr int rounds = 150;
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < clients; ++t) {
    threads.emplace_back([&, t] {
      pg_raw conn(ci());
      if (!conn.ok()) {
        ++wrong;
        return;
      }
      PGresult* prep = PQprepare(conn.conn, "add", "SELECT $1::int + 1000", 1, nullptr);
      if (PQresultStatus(prep) != PGRES_COMMAND_OK) ++wrong;
      PQclear(prep);
      for (int i = 0; i < rounds; ++i) {
        const std::string n = std::to_string(t * 100000 + i);
        const char* v[] = {n.c_str()};
        std::string got, want;
        switch (i % 4) {
          case 0:
            got = exec(conn.conn, "SELECT " + n);
            want = n;
            break;
          case 1:
            if (PQsendQueryParams(conn.conn, "SELECT $1::int * 2", 1, nullptr, v, nullptr, nullptr, 0) != 1) ++wrong;
            got = answer(conn.conn);
            want = std::to_string((t * 100000 + i) * 2);
            break;
          case 2:
            if (PQsendQueryPrepared(conn.conn, "add", 1, v, nullptr, nullptr, 0) != 1) ++wrong;
            got = answer(conn.conn);
            want = std::to_string(t * 100000 + i + 1000);
            break;
          default:
            got = exec(conn.conn, "SELECT 1/0 AS n" + n);
            want = "error 22012";
        }
        if (got != want) ++wrong;
      }
    });
  }
  // One client sends 40 statements before reading any answer, each closed by its own Sync.
  pg_raw p(ci());
  ASSERT_TRUE(p.ok());
  ASSERT_EQ(PQenterPipelineMode(p.conn), 1);
  for (int i = 0; i < 40; ++i) {
    const std::string sql = i == 7 ? "SELECT 1/0" : "SELECT " + std::to_string(i);
    ASSERT_EQ(PQsendQueryParams(p.conn, sql.c_str(), 0, nullptr, nullptr, nullptr, nullptr, 0), 1);
    ASSERT_EQ(PQpipelineSync(p.conn), 1);
  }
  for (int i = 0; i < 40; ++i) {
    PGresult* r = PQgetResult(p.conn);
    ASSERT_NE(r, nullptr);
    if (i == 7) {
      EXPECT_EQ(sqlstate_of(r), "22012");
    } else {
      ASSERT_EQ(PQresultStatus(r), PGRES_TUPLES_OK) << PQresultErrorMessage(r);
      EXPECT_EQ(std::string(PQgetvalue(r, 0, 0)), std::to_string(i));
    }
    PQclear(r);
    EXPECT_EQ(PQgetResult(p.conn), nullptr);
    r = PQgetResult(p.conn);
    ASSERT_NE(r, nullptr);
    EXPECT_EQ(PQresultStatus(r), PGRES_PIPELINE_SYNC);
    PQclear(r);
  }
  PQexitPipelineMode(p.conn);
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_GT(pipelined(), base + clients * rounds / 2) << "the load did not go through lanes";
}

// Replies larger than a read (rows of 6 KB and more, many per statement) reach every client
// whole, whatever the read boundaries in the lane.
TEST(pipeline, large_replies_arrive_whole) {
  const long base = pipelined();
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      pg_raw conn(ci());
      if (!conn.ok()) {
        ++wrong;
        return;
      }
      for (int i = 0; i < 25; ++i) {
        const int width = 6000 + 97 * i + t;
        const std::string sql = "SELECT repeat(chr(65 + n % 26), " + std::to_string(width) + ") || n FROM generate_series(1, 20) n";
        PGresult* r = PQexec(conn.conn, sql.c_str());
        bool ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 20;
        for (int row = 0; ok && row < 20; ++row) {
          const std::string v = PQgetvalue(r, row, 0);
          const int n = row + 1;
          ok = v == std::string(static_cast<std::size_t>(width), static_cast<char>('A' + n % 26)) + std::to_string(n);
        }
        PQclear(r);
        if (!ok) ++wrong;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_GE(pipelined(), base + 100) << "the statements did not go through lanes";
}

// A cancel reaches only the statement it was meant for: sent once that statement runs (not
// while the one ahead of it does), while statements queued behind it are answered normally.
TEST(pipeline, cancel_hits_only_its_own_statement) {
  pg_raw a(ci()), b(ci()), c(ci()), d(ci());
  ASSERT_TRUE(a.ok() && b.ok() && c.ok() && d.ok());
  held_lock first(5702002), second(5702003);
  const long base = pipelined();
  ASSERT_EQ(PQsendQuery(a.conn, first.waiting_statement("ahead of the cancelled").c_str()), 1);
  ASSERT_TRUE(wait_pipelined(base, 1));
  std::string pid;
  ASSERT_TRUE(b::poll_until(10s, 10ms, [&] { return !(pid = active_backend_running("ahead of the cancelled")).empty(); }));
  ASSERT_EQ(PQsendQuery(b.conn, "SELECT 'b'"), 1);
  ASSERT_EQ(PQsendQuery(c.conn, second.waiting_statement("to be cancelled").c_str()), 1);
  ASSERT_EQ(PQsendQuery(d.conn, "SELECT 'd'"), 1);
  ASSERT_TRUE(wait_pipelined(base, 4));
  // C's statement is queued behind A's: the cancel must wait for it to run.
  PGcancel* cancel = PQgetCancel(c.conn);
  ASSERT_NE(cancel, nullptr);
  char errbuf[256];
  ASSERT_EQ(PQcancel(cancel, errbuf, sizeof errbuf), 1) << errbuf;
  PQfreeCancel(cancel);
  // A's statement is not the one cancelled: still running on the server.
  EXPECT_EQ(active_backend_running("ahead of the cancelled"), pid);
  first.release();
  EXPECT_EQ(answer(a.conn), "");
  EXPECT_EQ(answer(b.conn), "b");
  PGresult* r = PQgetResult(c.conn);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(sqlstate_of(r), "57014") << PQresultErrorMessage(r);
  const char* primary = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
  EXPECT_STREQ(primary ? primary : "", "canceling statement due to user request");
  PQclear(r);
  while ((r = PQgetResult(c.conn)) != nullptr) PQclear(r);
  EXPECT_EQ(answer(d.conn), "d");
  second.release();
  // Everyone goes on, the cancelled client too.
  EXPECT_EQ(exec(c.conn, "SELECT 'c'"), "c");
  EXPECT_EQ(exec(d.conn, "SELECT 'd2'"), "d2");
}

// What one client does to its session never reaches another's statements: a client in a
// transaction or with a session setting keeps its own server (the ordinary way), and the
// pipelined statements of others see neither its uncommitted rows nor its settings.
TEST(pipeline, no_state_crosses_clients) {
  pg_raw a(ci()), b(ci());
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_EQ(exec(a.conn, "DROP TABLE IF EXISTS pipeline_state; CREATE TABLE pipeline_state (n int)"), "ok");
  const std::string default_path = exec(b.conn, "SHOW search_path");
  const long base = pipelined();
  ASSERT_EQ(exec(a.conn, "SET search_path = nowhere_at_all"), "ok");
  ASSERT_EQ(exec(a.conn, "BEGIN"), "ok");
  ASSERT_EQ(exec(a.conn, "INSERT INTO public.pipeline_state VALUES (1)"), "ok");
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(exec(b.conn, "SELECT count(*) FROM pipeline_state"), "0");
    EXPECT_EQ(exec(b.conn, "SHOW search_path"), default_path);
  }
  EXPECT_GE(pipelined(), base + 40) << "b's statements did not go through a lane";
  ASSERT_EQ(exec(a.conn, "COMMIT"), "ok");
  EXPECT_EQ(exec(a.conn, "SHOW search_path"), "nowhere_at_all");
  EXPECT_EQ(exec(b.conn, "SELECT count(*) FROM pipeline_state"), "1");
  EXPECT_EQ(exec(b.conn, "SHOW search_path"), default_path);
  ASSERT_EQ(exec(b.conn, "DROP TABLE pipeline_state"), "ok");
}

}  // namespace
}  // namespace pgsluice::test::proxy

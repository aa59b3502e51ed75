// Idle clients parked (their relay coroutines put away after a second without a message) against real PostgreSQL: the session comes back whole, a transaction is never parked, a parked client that leaves is gone, one that is parked at shutdown is told.
#include <signal.h>

#include "tests/integration/proxy_fixture.hpp"

namespace pgsluice::test::proxy {
namespace {

using namespace std::chrono_literals;

// One worker (one janitor for every client), transaction pooling, two server connections.
metered_proxy start() {
  auto s = admin_setup("transaction", 2);
  s.workers = 1;
  return start_metered_proxy(s);
}

long parks(const metered_proxy& p) { return p.metric("pgsluice_client_parks_total"); }

// Readiness: `n` more parks than `base` (each at least a second after the client's last message).
bool wait_parks(const metered_proxy& p, long base, long n) {
  return b::poll_until(20s, 20ms, [&] { return parks(p) >= base + n; });
}

// What a client set up before it was parked is there after (its prepared statement, its
// settings); a client idle inside a transaction is never parked: it keeps its server and
// commits after the other client was parked and woken twice.
TEST(park, a_parked_client_keeps_its_session_and_a_transaction_is_never_parked) {
  auto p = start();
  pg_raw a(admin_conninfo(*p.process)), t(admin_conninfo(*p.process));
  ASSERT_TRUE(a.ok() && t.ok()) << a.error();
  ASSERT_EQ(exec(t.conn, "DROP TABLE IF EXISTS park_t; CREATE TABLE park_t (x int)"), "ok");
  PGresult* prep = PQprepare(a.conn, "add", "SELECT $1::int + 1", 1, nullptr);
  ASSERT_EQ(PQresultStatus(prep), PGRES_COMMAND_OK) << PQresultErrorMessage(prep);
  PQclear(prep);
  ASSERT_EQ(exec(a.conn, "SET application_name = 'parked_a'"), "ok");
  ASSERT_EQ(exec(t.conn, "BEGIN"), "ok");
  ASSERT_EQ(exec(t.conn, "INSERT INTO park_t VALUES (1)"), "ok");
  const long base = parks(p);
  ASSERT_GE(base, 0);
  ASSERT_TRUE(wait_parks(p, base, 1)) << "the idle client was never parked";
  EXPECT_EQ(metric_value(p.metrics_port, "pgsluice_clients{state=\"active\"}"), 1) << "the transaction's client";

  const char* v[] = {"41"};
  ASSERT_EQ(PQsendQueryPrepared(a.conn, "add", 1, v, nullptr, nullptr, 0), 1);
  EXPECT_EQ(answer(a.conn), "42");
  EXPECT_EQ(exec(a.conn, "SHOW application_name"), "parked_a");
  // Parked again after this, and woken again by a simple query.
  const long again = parks(p);
  ASSERT_TRUE(wait_parks(p, again, 1));
  EXPECT_EQ(exec(a.conn, "SELECT 'a again'"), "a again");

  ASSERT_EQ(exec(t.conn, "INSERT INTO park_t VALUES (2)"), "ok");
  ASSERT_EQ(exec(t.conn, "COMMIT"), "ok");
  EXPECT_EQ(exec(a.conn, "SELECT count(*) FROM park_t"), "2");
}

// A parked client that closes its connection (or just goes away) leaves nothing behind.
TEST(park, a_parked_client_that_leaves_is_gone) {
  auto p = start();
  const long base = parks(p);
  {
    pg_raw gone(admin_conninfo(*p.process));
    ASSERT_TRUE(gone.ok()) << gone.error();
    ASSERT_EQ(exec(gone.conn, "SELECT 1"), "1");
    ASSERT_TRUE(wait_parks(p, base, 1));
    EXPECT_EQ(metric_value(p.metrics_port, "pgsluice_clients{state=\"idle\"}"), 1);
  }
  EXPECT_TRUE(b::poll_until(10s, 20ms, [&] { return metric_value(p.metrics_port, "pgsluice_clients{state=\"idle\"}") == 0; }))
      << "the parked client's session outlived its connection";
  pg_raw next(admin_conninfo(*p.process));
  EXPECT_EQ(exec(next.conn, "SELECT 'next'"), "next");
}

// SIGTERM with a parked client: the client is told (57P01) and pgsluice exits.
TEST(park, a_parked_client_is_told_at_shutdown) {
  auto p = start();
  const long base = parks(p);
  pg_raw a(admin_conninfo(*p.process));
  ASSERT_TRUE(a.ok()) << a.error();
  ASSERT_EQ(exec(a.conn, "SELECT 1"), "1");
  ASSERT_TRUE(wait_parks(p, base, 1));
  const pid_t pid = p.process->pid();
  ASSERT_GT(pid, 0);
  ASSERT_EQ(::kill(pid, SIGTERM), 0);
  EXPECT_TRUE(b::poll_until(20s, 20ms, [&] { return !p.process->running(); })) << "pgsluice did not exit";
  // What pgsluice sent before it closed: a FATAL while idle, which libpq hands to the notice
  // processor.
  std::string told;
  PQsetNoticeProcessor(
      a.conn, [](void* out, const char* m) { *static_cast<std::string*>(out) += m; }, &told);
  EXPECT_TRUE(b::poll_until(10s, 20ms, [&] {
    const bool open = PQconsumeInput(a.conn) == 1;
    PQisBusy(a.conn);  // parses what was read
    return !open || !told.empty();
  }));
  EXPECT_NE(told.find("terminating connection due to administrator command"), std::string::npos) << told;
}

}  // namespace
}  // namespace pgsluice::test::proxy

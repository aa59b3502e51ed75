// pgsluice's own lifecycle against real PostgreSQL: SIGHUP reload, graceful SIGTERM, clients that leave while queued.
#include <signal.h>

#include "tests/integration/proxy_fixture.hpp"

namespace pgsluice::test::proxy {
namespace {

std::string exec1(PGconn* c, const std::string& sql) {
  PGresult* r = PQexec(c, sql.c_str());
  std::string out;
  if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0) out = PQgetvalue(r, 0, 0);
  EXPECT_TRUE(PQresultStatus(r) == PGRES_TUPLES_OK || PQresultStatus(r) == PGRES_COMMAND_OK)
      << sql << ": " << PQresultErrorMessage(r);
  PQclear(r);
  return out;
}

TEST(reload, sighup_swaps_the_config_for_new_logins) {
  auto& c = cluster();
  const auto& u = c.user("sluice_scram");
  auto s = admin_setup("transaction", 2);
  s.users.emplace_back(u.name, "not-the-password");
  auto p = start_proxy(s);
  const auto before = try_connect(p->conninfo(u.name, u.password, c.database()));
  ASSERT_FALSE(before.ok());
  EXPECT_EQ(before.sqlstate, "28P01");

  // Same file, the right password now; a client logged in before the reload is unaffected.
  auto admin = connect(admin_conninfo(*p));
  s.users.back().second = u.password;
  b::write_service_file(p->config_file(), proxy_toml(s, p->port()), b::service_user{});
  const pid_t pid = p->pid();
  ASSERT_GT(pid, 0);
  ASSERT_EQ(::kill(pid, SIGHUP), 0);
  EXPECT_TRUE(b::poll_until(std::chrono::seconds(10), std::chrono::milliseconds(50), [&] {
    return try_connect(p->conninfo(u.name, u.password, c.database())).ok();
  }));
  EXPECT_EQ(admin.scalar("SELECT 1").value_or(""), "1");
  EXPECT_TRUE(p->running());
}

TEST(shutdown, sigterm_lets_open_transactions_finish_then_exits) {
  auto& c = cluster();
  auto s = admin_setup("transaction", 2);
  s.workers = 1;  // one janitor: the idle client's end below shows it has seen every client
  auto p = start_proxy(s);
  pg_raw a(admin_conninfo(*p)), idle(admin_conninfo(*p));
  ASSERT_TRUE(a.ok() && idle.ok());
  exec1(idle.conn, "SELECT 1");
  exec1(a.conn, "DROP TABLE IF EXISTS shutdown_t; CREATE TABLE shutdown_t (x int)");
  exec1(a.conn, "BEGIN");
  exec1(a.conn, "INSERT INTO shutdown_t VALUES (42)");
  // A transaction with nothing in it yet: its BEGIN is held in pgsluice, no server taken.
  pg_raw held(admin_conninfo(*p));
  ASSERT_TRUE(held.ok());
  exec1(held.conn, "BEGIN");
  const pid_t pid = p->pid();
  ASSERT_GT(pid, 0);
  ASSERT_EQ(::kill(pid, SIGTERM), 0);
  // No new clients once the signal is handled.
  EXPECT_TRUE(b::poll_until(std::chrono::seconds(10), std::chrono::milliseconds(20),
                            [&] { return !try_connect(admin_conninfo(*p)).ok(); }));
  // The idle client is told at once (57P01, then the close): the janitor has been round.
  EXPECT_TRUE(b::poll_until(std::chrono::seconds(10), std::chrono::milliseconds(20), [&] {
    const bool open = PQconsumeInput(idle.conn) == 1;
    PQisBusy(idle.conn);
    return !open;
  }));
  // The transactions in progress still commit, the held one included.
  exec1(a.conn, "COMMIT");
  exec1(held.conn, "INSERT INTO shutdown_t VALUES (43)");
  exec1(held.conn, "COMMIT");
  EXPECT_EQ(c.exec_sql(c.primary_index(), "SELECT sum(x) FROM shutdown_t", c.database()).at(0).at(0).value_or(""), "85");
  // Then the idle client is told and pgsluice exits.
  EXPECT_TRUE(b::poll_until(std::chrono::seconds(20), std::chrono::milliseconds(50), [&] { return !p->running(); }));
  PGresult* r = PQexec(a.conn, "SELECT 1");
  EXPECT_NE(PQresultStatus(r), PGRES_TUPLES_OK);
  PQclear(r);
}

// How many backends of the test database are running, or last ran, a statement containing
// `sql_fragment` (this look itself runs in another database).
int backends_that_ran(const std::string& sql_fragment) {
  auto& c = cluster();
  const auto rows = c.exec_sql(c.primary_index(), "SELECT count(*) FROM pg_stat_activity WHERE datname = '" +
                                                      c.database() + "' AND position('" + sql_fragment +
                                                      "' in query) > 0");
  return std::stoi(rows.at(0).at(0).value_or("0"));
}

TEST(waiting, a_client_that_leaves_while_queued_does_not_have_its_query_run) {
  auto& c = cluster();
  auto p = start_proxy(admin_setup("transaction", 1));
  pg_raw holder(admin_conninfo(*p));
  exec1(holder.conn, "DROP TABLE IF EXISTS gone_t; CREATE TABLE gone_t (x int)");
  exec1(holder.conn, "BEGIN");
  exec1(holder.conn, "SELECT 1");
  // The pool's one server connection is the holder's, inside its transaction.
  ASSERT_EQ(server_connections_of(p->pid(), c.primary_index()), 1);
  {
    pg_raw quitter(admin_conninfo(*p));
    ASSERT_TRUE(quitter.ok());
    ASSERT_EQ(PQsendQuery(quitter.conn, "INSERT INTO gone_t VALUES (1) /* quitter */"), 1);
    ASSERT_EQ(PQflush(quitter.conn), 0);
    // Readiness: pgsluice has read the INSERT, and with its one server taken it can only
    // queue it: PostgreSQL has not seen it.
    ASSERT_TRUE(b::poll_until(std::chrono::seconds(10), std::chrono::milliseconds(10),
                              [&] { return peer_has_read_all(PQsocket(quitter.conn)); }))
        << "pgsluice never read the query";
    EXPECT_EQ(backends_that_ran("/* quitter */"), 0);
    EXPECT_EQ(server_connections_of(p->pid(), c.primary_index()), 1);
  }  // the client disconnects while queued
  exec1(holder.conn, "COMMIT");
  // FIFO: this client is served after the quitter's turn has been dealt with.
  pg_raw next(admin_conninfo(*p));
  EXPECT_EQ(exec1(next.conn, "SELECT count(*) FROM gone_t"), "0");
  EXPECT_EQ(backends_that_ran("/* quitter */"), 0);
}

TEST(pool_upkeep, min_pool_size_is_kept_and_idle_servers_expire) {
  auto& c = cluster();
  auto s = admin_setup("transaction", 5);
  s.globals = "min_pool_size = 2\nserver_idle_timeout = \"1s\"\n";
  auto p = start_proxy(s);  // its login probe creates the pool
  // Counted by PostgreSQL: the server connections coming from this pgsluice.
  const auto servers = [&] { return server_connections_of(p->pid(), c.primary_index()); };
  EXPECT_TRUE(b::poll_until(std::chrono::seconds(20), std::chrono::milliseconds(50), [&] { return servers() == 2; }))
      << servers();
  {
    // Four clients in a transaction at once: four servers.
    std::vector<std::unique_ptr<pg_raw>> clients;
    for (int i = 0; i < 4; ++i) {
      clients.push_back(std::make_unique<pg_raw>(admin_conninfo(*p)));
      exec1(clients.back()->conn, "BEGIN");
      exec1(clients.back()->conn, "SELECT 1");
    }
    EXPECT_EQ(servers(), 4);
    for (auto& cl : clients) exec1(cl->conn, "COMMIT");
  }
  // Idle for more than server_idle_timeout: back down to min_pool_size, not below.
  EXPECT_TRUE(b::poll_until(std::chrono::seconds(20), std::chrono::milliseconds(50), [&] { return servers() == 2; }))
      << servers();
  EXPECT_EQ(servers(), 2);
}

// Two users, so two pools of up to five: the database's budget of two still bounds them
// together. One client of each holds a server; a third client, of either user, waits and
// gets query_wait_timeout; PostgreSQL never sees more than two server connections.
TEST(pool_upkeep, max_db_connections_bounds_all_pools_of_a_database) {
  auto& c = cluster();
  const auto& other_user = c.user("sluice_scram");
  auto s = admin_setup("transaction", 5);
  s.users.emplace_back(other_user.name, other_user.password);
  s.globals = "max_db_connections = 2\nquery_wait_timeout = \"1s\"\n";
  auto p = start_proxy(s);
  server_connection_sampler sampler(p->pid(), c.primary_index());
  const std::string as_other = p->conninfo(other_user.name, other_user.password, c.database());
  pg_raw a(admin_conninfo(*p)), b2(as_other), c3(admin_conninfo(*p)), d4(as_other);
  exec1(a.conn, "BEGIN");
  exec1(a.conn, "SELECT 1");
  exec1(b2.conn, "BEGIN");
  exec1(b2.conn, "SELECT 1");
  // Each pool could open another connection, the database budget cannot.
  for (PGconn* waiter : {c3.conn, d4.conn}) {
    PGresult* r = PQexec(waiter, "SELECT 1");
    EXPECT_NE(PQresultStatus(r), PGRES_TUPLES_OK);
    EXPECT_NE(std::string(PQerrorMessage(waiter)).find("query_wait_timeout"), std::string::npos)
        << PQerrorMessage(waiter);
    PQclear(r);
  }
  const auto seen = sampler.finish();
  EXPECT_EQ(seen.error, "");
  EXPECT_GT(seen.samples, 0);
  EXPECT_EQ(seen.most, 2) << "server connections of the database at the peak";
  exec1(a.conn, "COMMIT");
  exec1(b2.conn, "COMMIT");
}

}  // namespace
}  // namespace pgsluice::test::proxy

// pgsluice's own lifecycle against real PostgreSQL: SIGHUP reload, graceful SIGTERM, clients that leave while queued.
#include <signal.h>

#include <algorithm>
#include <fstream>

#include "tests/integration/proxy_fixture.hpp"

namespace pgsluice::test::proxy {
namespace {

namespace fs = std::filesystem;

// The pid of the pgsluice we started for `p` (the process whose command line names its config file).
pid_t pid_of(const pgsluice_process& p) {
  const std::string needle = p.config_file().string();
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(entry.path() / "cmdline", std::ios::binary);
    std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
    if (cmdline.find("serve") != std::string::npos && cmdline.find(needle) != std::string::npos)
      return static_cast<pid_t>(std::stol(name));
  }
  return 0;
}

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
  const pid_t pid = pid_of(*p);
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
  auto p = start_proxy(admin_setup("transaction", 2));
  pg_raw a(admin_conninfo(*p));
  ASSERT_TRUE(a.ok());
  exec1(a.conn, "DROP TABLE IF EXISTS shutdown_t; CREATE TABLE shutdown_t (x int)");
  exec1(a.conn, "BEGIN");
  exec1(a.conn, "INSERT INTO shutdown_t VALUES (42)");
  const pid_t pid = pid_of(*p);
  ASSERT_GT(pid, 0);
  ASSERT_EQ(::kill(pid, SIGTERM), 0);
  // No new clients once the signal is handled.
  EXPECT_TRUE(b::poll_until(std::chrono::seconds(10), std::chrono::milliseconds(20),
                            [&] { return !try_connect(admin_conninfo(*p)).ok(); }));
  // The transaction in progress still commits.
  exec1(a.conn, "COMMIT");
  EXPECT_EQ(c.exec_sql(c.primary_index(), "SELECT x FROM shutdown_t", c.database()).at(0).at(0).value_or(""), "42");
  // Then the idle client is told and pgsluice exits.
  EXPECT_TRUE(b::poll_until(std::chrono::seconds(20), std::chrono::milliseconds(50), [&] { return !p->running(); }));
  PGresult* r = PQexec(a.conn, "SELECT 1");
  EXPECT_NE(PQresultStatus(r), PGRES_TUPLES_OK);
  PQclear(r);
}

TEST(waiting, a_client_that_leaves_while_queued_does_not_have_its_query_run) {
  auto& c = cluster();
  auto setup = admin_setup("transaction", 1);
  setup.log_level = "debug";  // the log then says when a client is queued
  auto p = start_proxy(setup);
  pg_raw holder(admin_conninfo(*p));
  exec1(holder.conn, "DROP TABLE IF EXISTS gone_t; CREATE TABLE gone_t (x int)");
  exec1(holder.conn, "BEGIN");
  exec1(holder.conn, "SELECT 1");
  {
    pg_raw quitter(admin_conninfo(*p));
    ASSERT_TRUE(quitter.ok());
    ASSERT_EQ(PQsendQuery(quitter.conn, "INSERT INTO gone_t VALUES (1)"), 1);
    ASSERT_EQ(PQflush(quitter.conn), 0);
    // Wait until it is queued behind the holder, then leave.
    ASSERT_TRUE(b::poll_until(std::chrono::seconds(10), std::chrono::milliseconds(20), [&] {
      return b::read_file_text(p->log_file()).find(" waiting pool=") != std::string::npos;
    }));
  }  // the client disconnects while queued
  exec1(holder.conn, "COMMIT");
  // FIFO: this client is served after the quitter's turn has been dealt with.
  pg_raw next(admin_conninfo(*p));
  EXPECT_EQ(exec1(next.conn, "SELECT count(*) FROM gone_t"), "0");
  (void)c;
}

// Server connections of the admin user to the test database, as PostgreSQL counts them.
int server_connections() {
  auto& c = cluster();
  const auto rows = c.exec_sql(c.primary_index(), "SELECT count(*) FROM pg_stat_activity WHERE usename = '" +
                                                      c.admin().name + "' AND datname = '" + c.database() +
                                                      "' AND backend_type = 'client backend'");
  return std::stoi(rows.at(0).at(0).value_or("0"));
}

TEST(pool_upkeep, min_pool_size_is_kept_and_idle_servers_expire) {
  // Nothing else of this executable holds admin connections at this point.
  ASSERT_TRUE(b::poll_until(std::chrono::seconds(20), std::chrono::milliseconds(50), [] { return server_connections() == 0; }));
  auto s = admin_setup("transaction", 5);
  s.globals = "min_pool_size = 2\nserver_idle_timeout = \"1s\"\n";
  auto p = start_proxy(s);  // its login probe creates the pool
  EXPECT_TRUE(b::poll_until(std::chrono::seconds(20), std::chrono::milliseconds(50), [] { return server_connections() == 2; }));
  {
    // Four clients in a transaction at once: four servers.
    std::vector<std::unique_ptr<pg_raw>> clients;
    for (int i = 0; i < 4; ++i) {
      clients.push_back(std::make_unique<pg_raw>(admin_conninfo(*p)));
      exec1(clients.back()->conn, "BEGIN");
      exec1(clients.back()->conn, "SELECT 1");
    }
    EXPECT_EQ(server_connections(), 4);
    for (auto& c : clients) exec1(c->conn, "COMMIT");
  }
  // Idle for more than server_idle_timeout: back down to min_pool_size, not below.
  EXPECT_TRUE(b::poll_until(std::chrono::seconds(20), std::chrono::milliseconds(50), [] { return server_connections() == 2; }));
}

TEST(pool_upkeep, max_db_connections_bounds_all_pools_of_a_database) {
  auto s = admin_setup("transaction", 5);
  s.globals = "max_db_connections = 2\nquery_wait_timeout = \"1s\"\n";
  auto p = start_proxy(s);
  pg_raw a(admin_conninfo(*p)), b2(admin_conninfo(*p)), c3(admin_conninfo(*p));
  exec1(a.conn, "BEGIN");
  exec1(a.conn, "SELECT 1");
  exec1(b2.conn, "BEGIN");
  exec1(b2.conn, "SELECT 1");
  // The pool could open a third connection, the database budget cannot.
  PGresult* r = PQexec(c3.conn, "SELECT 1");
  EXPECT_NE(PQresultStatus(r), PGRES_TUPLES_OK);
  EXPECT_NE(std::string(PQerrorMessage(c3.conn)).find("query_wait_timeout"), std::string::npos) << PQerrorMessage(c3.conn);
  PQclear(r);
  exec1(a.conn, "COMMIT");
  exec1(b2.conn, "COMMIT");
}

}  // namespace
}  // namespace pgsluice::test::proxy

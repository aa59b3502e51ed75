// What a client sets up for its session holds on whatever server connection serves it: startup parameters (new and reused servers, after DISCARD ALL), its own statement names in errors, its unnamed statement across transactions.
#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <string>
#include <vector>

#include "tests/integration/proxy_fixture.hpp"

namespace pgsluice::test::proxy {
namespace {

// Rows of `sql` on an open connection (the test fails on an error).
std::vector<std::vector<std::string>> rows_of(PGconn* conn, const std::string& sql) {
  PGresult* r = PQexec(conn, sql.c_str());
  std::vector<std::vector<std::string>> out;
  EXPECT_EQ(PQresultStatus(r), PGRES_TUPLES_OK) << sql << ": " << PQresultErrorMessage(r);
  for (int i = 0; i < PQntuples(r); ++i) {
    std::vector<std::string> row;
    for (int j = 0; j < PQnfields(r); ++j) row.emplace_back(PQgetvalue(r, i, j));
    out.push_back(std::move(row));
  }
  PQclear(r);
  return out;
}

void exec_ok(PGconn* conn, const std::string& sql) {
  PGresult* r = PQexec(conn, sql.c_str());
  EXPECT_EQ(PQresultStatus(r), PGRES_COMMAND_OK) << sql << ": " << PQresultErrorMessage(r);
  PQclear(r);
}

const std::string settings_query =
    "SELECT current_setting('timezone'), current_setting('datestyle'), current_setting('search_path'), "
    "current_setting('work_mem')";

class startup_parameters : public ::testing::TestWithParam<const char*> {};

// psql with PGTZ / PGDATESTYLE (libpq sends them as startup parameters): the first connection,
// through a server connection pgsluice opens for it, and every later one.
TEST_P(startup_parameters, psql_environment_on_first_and_later_connections) {
  const std::string mode = GetParam();
  auto p = start_proxy(admin_setup(mode, 2));
  const std::vector<std::pair<std::string, std::string>> env{{"PGTZ", "PST8PDT"}, {"PGDATESTYLE", "Postgres, MDY"}};
  for (int i = 0; i < 4; ++i) {
    const auto r = run_program({"psql", "-X", "-At", "-d", admin_conninfo(*p), "-c",
                                "SELECT current_setting('timezone') || '|' || current_setting('datestyle')"},
                               env, std::chrono::minutes(1));
    ASSERT_EQ(r.status, 0) << r.output;
    EXPECT_NE(r.output.find("PST8PDT|Postgres, MDY"), std::string::npos) << "connection " << i << ": " << r.output;
  }
  // After DISCARD ALL the values are the startup packet's again, as on a direct connection.
  const auto r = run_program({"psql", "-X", "-At", "-d", admin_conninfo(*p), "-c", "SET TIME ZONE 'Asia/Tokyo'", "-c",
                              "DISCARD ALL", "-c", "SELECT current_setting('timezone') || '|' || current_setting('datestyle')"},
                             env, std::chrono::minutes(1));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("PST8PDT|Postgres, MDY"), std::string::npos) << "after DISCARD ALL: " << r.output;
  // RESET of one of them, and SET ... TO DEFAULT, likewise.
  const auto one = run_program({"psql", "-X", "-At", "-d", admin_conninfo(*p), "-c", "SET datestyle TO ISO", "-c",
                                "SET TIME ZONE 'Asia/Tokyo'", "-c", "RESET datestyle", "-c", "SET TIME ZONE DEFAULT", "-c",
                                "SELECT current_setting('timezone') || '|' || current_setting('datestyle')"},
                               env, std::chrono::minutes(1));
  ASSERT_EQ(one.status, 0) << one.output;
  EXPECT_NE(one.output.find("PST8PDT|Postgres, MDY"), std::string::npos) << "after RESET datestyle: " << one.output;
}

// A DO block that SETs something leaves it on the server like a SET: its client is pinned, and
// the next client of that server does not inherit the setting.
TEST(session_state, a_set_inside_do_does_not_reach_the_next_client) {
  auto p = start_proxy(admin_setup("transaction", 1));
  {
    pg_raw a(admin_conninfo(*p));
    ASSERT_TRUE(a.ok()) << a.error();
    exec_ok(a.conn, "DO $x$ BEGIN SET enable_bitmapscan = 0; END $x$");
    EXPECT_EQ(rows_of(a.conn, "SHOW enable_bitmapscan")[0][0], "off") << "the client keeps its own setting";
  }
  pg_raw b(admin_conninfo(*p));
  ASSERT_TRUE(b.ok()) << b.error();
  EXPECT_EQ(rows_of(b.conn, "SHOW enable_bitmapscan")[0][0], "on");
}

// `options=-c ...` in the connection string, and the parameters libpq sends itself, with
// clients of different settings sharing one server connection in turn.
TEST_P(startup_parameters, options_hold_for_clients_sharing_servers) {
  const std::string mode = GetParam();
  auto p = start_proxy(admin_setup(mode, 1));
  const std::string a_info =
      admin_conninfo(*p) + " options='-c TimeZone=PST8PDT -c DateStyle=Postgres,MDY -c search_path=pg_catalog -c work_mem=5MB'";
  const std::string b_info = admin_conninfo(*p) + " options='-c TimeZone=UTC -c work_mem=7MB'";
  for (int round = 0; round < 3; ++round) {
    {
      pg_raw a(a_info);
      ASSERT_TRUE(a.ok()) << a.error();
      const auto rows = rows_of(a.conn, settings_query);
      ASSERT_EQ(rows.size(), 1u);
      EXPECT_EQ(rows[0], (std::vector<std::string>{"PST8PDT", "Postgres, MDY", "pg_catalog", "5MB"})) << "round " << round;
      // What the client was told at login agrees with what it gets.
      EXPECT_STREQ(PQparameterStatus(a.conn, "TimeZone"), "PST8PDT");
      EXPECT_STREQ(PQparameterStatus(a.conn, "DateStyle"), "Postgres, MDY");
      exec_ok(a.conn, "DISCARD ALL");
      const auto after = rows_of(a.conn, settings_query);
      ASSERT_EQ(after.size(), 1u);
      EXPECT_EQ(after[0], (std::vector<std::string>{"PST8PDT", "Postgres, MDY", "pg_catalog", "5MB"}))
          << "after DISCARD ALL, round " << round;
      EXPECT_STREQ(PQparameterStatus(a.conn, "TimeZone"), "PST8PDT");
    }
    pg_raw b(b_info);
    ASSERT_TRUE(b.ok()) << b.error();
    const auto rows = rows_of(b.conn, settings_query);
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0][0], "UTC") << "round " << round;
    EXPECT_EQ(rows[0][1], "ISO, MDY") << "another client's DateStyle must not stay on the server";
    EXPECT_EQ(rows[0][2], "\"$user\", public") << "another client's search_path must not stay on the server";
    EXPECT_EQ(rows[0][3], "7MB");
  }
}

INSTANTIATE_TEST_SUITE_P(modes, startup_parameters, ::testing::Values("session", "transaction"));

// Transaction pooling renames prepared statements on the server; errors must quote the client's name.
TEST(statement_names, server_errors_name_the_clients_statement) {
  auto p = start_proxy(admin_setup("transaction", 2));
  pg_raw c(admin_conninfo(*p));
  ASSERT_TRUE(c.ok()) << c.error();
  PGresult* r = PQprepare(c.conn, "my_stmt", "SELECT $1::int + 1", 1, nullptr);
  ASSERT_EQ(PQresultStatus(r), PGRES_COMMAND_OK) << PQresultErrorMessage(r);
  PQclear(r);
  // Two parameters for a statement that takes one: PostgreSQL names the statement.
  const char* values[2] = {"1", "2"};
  r = PQexecPrepared(c.conn, "my_stmt", 2, values, nullptr, nullptr, 0);
  EXPECT_EQ(PQresultStatus(r), PGRES_FATAL_ERROR);
  EXPECT_EQ(sqlstate_of(r), "08P01");
  const std::string msg = PQresultErrorMessage(r);
  PQclear(r);
  EXPECT_NE(msg.find("\"my_stmt\""), std::string::npos) << msg;
  EXPECT_EQ(msg.find("pgsluice_"), std::string::npos) << msg;
  // The session goes on as on a direct connection.
  const char* one[1] = {"41"};
  r = PQexecPrepared(c.conn, "my_stmt", 1, one, nullptr, nullptr, 0);
  ASSERT_EQ(PQresultStatus(r), PGRES_TUPLES_OK) << PQresultErrorMessage(r);
  EXPECT_STREQ(PQgetvalue(r, 0, 0), "42");
  PQclear(r);
}

// The unnamed statement lives until the client's next unnamed Parse or simple Query, as on a
// direct connection, even when another client used the same server connection in between.
TEST(unnamed_statement, survives_across_transactions_on_a_shared_server) {
  auto p = start_proxy(admin_setup("transaction", 1));
  pg_raw a(admin_conninfo(*p));
  pg_raw b(admin_conninfo(*p));
  ASSERT_TRUE(a.ok()) << a.error();
  ASSERT_TRUE(b.ok()) << b.error();
  auto prepare_unnamed = [](PGconn* conn, const char* sql) {
    PGresult* r = PQprepare(conn, "", sql, 1, nullptr);
    EXPECT_EQ(PQresultStatus(r), PGRES_COMMAND_OK) << PQresultErrorMessage(r);
    PQclear(r);
  };
  auto exec_unnamed = [](PGconn* conn, const char* value) {
    const char* values[1] = {value};
    PGresult* r = PQexecPrepared(conn, "", 1, values, nullptr, nullptr, 0);
    std::string out = PQresultStatus(r) == PGRES_TUPLES_OK ? PQgetvalue(r, 0, 0) : "error " + sqlstate_of(r);
    PQclear(r);
    return out;
  };
  prepare_unnamed(a.conn, "SELECT 'a:' || $1::text");
  prepare_unnamed(b.conn, "SELECT 'b:' || $1::text");  // same server (pool of one): replaces a's there
  EXPECT_EQ(exec_unnamed(a.conn, "1"), "a:1");
  EXPECT_EQ(exec_unnamed(b.conn, "2"), "b:2");
  EXPECT_EQ(exec_unnamed(a.conn, "3"), "a:3");
  // A simple Query drops the client's unnamed statement, as PostgreSQL does.
  exec_ok(b.conn, "DO $$BEGIN END$$");
  EXPECT_EQ(exec_unnamed(b.conn, "4"), "error 26000");
  EXPECT_EQ(exec_unnamed(a.conn, "5"), "a:5");
}

}  // namespace
}  // namespace pgsluice::test::proxy

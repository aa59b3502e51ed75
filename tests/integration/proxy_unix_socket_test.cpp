// Backends over Unix-domain sockets (host = the test cluster's socket directory): queries, transaction pooling with prepared statements, cancel, auth_query, health checks with role auto, SHOW SERVERS, server_tls_mode not applied, a socket that is not there.
#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <chrono>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/proxy_fixture.hpp"

namespace pgsluice::test::proxy {
namespace {

using namespace std::chrono_literals;

std::string socket_dir() { return cluster().socket_dir().string(); }
std::string primary_port() { return std::to_string(cluster().port(cluster().primary_index())); }

// The test database reached through the primary's Unix socket, plus `more` TOML after it.
std::unique_ptr<pgsluice_process> start_unix_proxy(const std::string& globals, const std::string& more = {}) {
  auto& c = cluster();
  pgsluice_process::options o;
  o.probe = {c.admin().name, c.admin().password, c.database()};
  o.config = [=, &c](std::uint16_t port) {
    std::string t = "workers = 2\npool_mode = \"transaction\"\ndefault_pool_size = 1\n" + globals;
    t += "[listen]\nhost = \"127.0.0.1\"\nport = " + std::to_string(port) + "\n";
    t += "[admin]\nadmin_users = [" + toml_string(c.admin().name) + "]\n";
    t += "[users]\n" + toml_string(c.admin().name) + " = " + toml_string(c.admin().password) + "\n";
    t += "[databases." + c.database() + "]\nhost = " + toml_string(socket_dir()) + "\nport = " + primary_port() + "\n";
    return t + more;
  };
  return std::make_unique<pgsluice_process>(std::move(o));
}

pgsluice_process& shared_proxy() {
  static auto p = start_unix_proxy("");
  return *p;
}

std::string conninfo_of(const pgsluice_process& p, const std::string& dbname = cluster().database()) {
  auto& c = cluster();
  return p.conninfo(c.admin().name, c.admin().password, dbname) + " connect_timeout=10";
}

std::string log_of(const pgsluice_process& p) { return b::read_file_text(p.log_file()); }

TEST(unix_socket, queries_reach_the_server_over_its_unix_socket) {
  auto conn = connect(conninfo_of(shared_proxy()));
  // inet_server_addr() is NULL exactly when the server's end is a Unix socket (docs 9.26).
  const auto rows = conn.query("SELECT inet_server_addr() IS NULL, current_setting('port'), current_user");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0][0].value_or(""), "t");
  EXPECT_EQ(rows[0][1].value_or(""), primary_port());
  EXPECT_EQ(rows[0][2].value_or(""), cluster().admin().name);
  // And the server lists that session without a client address.
  const auto local = conn.query(
      "SELECT count(*) FROM pg_stat_activity WHERE pid = pg_backend_pid() AND client_addr IS NULL AND client_port = -1");
  EXPECT_EQ(local.at(0).at(0).value_or(""), "1");
}

TEST(unix_socket, transaction_pooling_shares_one_server_between_clients_with_prepared_statements) {
  // Pool of one: both clients' transactions run on the same server connection, each with its
  // own statement named "q" (different text), prepared through the extended protocol.
  pg_raw a(conninfo_of(shared_proxy()));
  pg_raw b(conninfo_of(shared_proxy()));
  ASSERT_TRUE(a.ok()) << a.error();
  ASSERT_TRUE(b.ok()) << b.error();
  auto prepare = [](PGconn* c, const char* sql) {
    PGresult* r = PQprepare(c, "q", sql, 1, nullptr);
    const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    std::string err = ok ? "" : PQresultErrorMessage(r);
    PQclear(r);
    return err;
  };
  ASSERT_EQ(prepare(a.conn, "SELECT 'a:' || $1::text, pg_backend_pid(), inet_server_addr() IS NULL"), "");
  ASSERT_EQ(prepare(b.conn, "SELECT 'b:' || $1::text, pg_backend_pid(), inet_server_addr() IS NULL"), "");
  std::set<std::string> pids;
  for (int i = 0; i < 20; ++i) {
    for (PGconn* c : {a.conn, b.conn}) {
      const std::string v = std::to_string(i);
      const char* params[] = {v.c_str()};
      PGresult* r = PQexecPrepared(c, "q", 1, params, nullptr, nullptr, 0);
      ASSERT_EQ(PQresultStatus(r), PGRES_TUPLES_OK) << PQresultErrorMessage(r);
      const std::string expected = std::string(c == a.conn ? "a:" : "b:") + v;
      EXPECT_EQ(PQgetvalue(r, 0, 0), expected);
      EXPECT_STREQ(PQgetvalue(r, 0, 2), "t");
      pids.insert(PQgetvalue(r, 0, 1));
      PQclear(r);
    }
  }
  EXPECT_EQ(pids.size(), 1u) << "a pool of one serves both clients from one server connection";
}

TEST(unix_socket, a_cancel_request_is_forwarded_to_the_servers_socket) {
  pg_raw conn(conninfo_of(shared_proxy()));
  ASSERT_TRUE(conn.ok()) << conn.error();
  ASSERT_EQ(PQsendQuery(conn.conn, "SELECT pg_sleep(60)"), 1);
  // Cancel once the server runs it (pg_stat_activity shows it), so the request has a target.
  auto& c = cluster();
  ASSERT_TRUE(b::poll_until(20s, 20ms, [&] {
    return c.exec_sql(c.primary_index(),
                      "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(60)' AND state = 'active'")
               .at(0)
               .at(0) == "1";
  }));
  PGcancel* cancel = PQgetCancel(conn.conn);
  char err[256];
  ASSERT_EQ(PQcancel(cancel, err, sizeof err), 1) << err;
  PQfreeCancel(cancel);
  PGresult* r = PQgetResult(conn.conn);
  EXPECT_EQ(sqlstate_of(r), "57014") << PQresultErrorMessage(r);  // query_canceled
  PQclear(r);
  while ((r = PQgetResult(conn.conn)) != nullptr) PQclear(r);
  EXPECT_NE(log_of(shared_proxy()).find("cancel_request"), std::string::npos);
}

TEST(unix_socket, show_servers_lists_unix_and_the_port) {
  auto& c = cluster();
  auto app = connect(conninfo_of(shared_proxy()));
  app.query("BEGIN");
  app.query("SELECT 1");
  pg_raw console(shared_proxy().conninfo(c.admin().name, c.admin().password, "pgsluice") + " connect_timeout=10");
  ASSERT_TRUE(console.ok()) << console.error();
  PGresult* r = PQexec(console.conn, "SHOW SERVERS");
  ASSERT_EQ(PQresultStatus(r), PGRES_TUPLES_OK) << PQresultErrorMessage(r);
  ASSERT_GE(PQntuples(r), 1);
  const int addr = PQfnumber(r, "addr");
  const int port = PQfnumber(r, "port");
  EXPECT_STREQ(PQgetvalue(r, 0, addr), "unix");
  EXPECT_EQ(PQgetvalue(r, 0, port), primary_port());
  PQclear(r);
  app.query("COMMIT");
}

TEST(unix_socket, server_tls_mode_does_not_apply_to_a_unix_socket) {
  // The test servers have no TLS: over TCP, require would refuse every login. Over the socket
  // pgsluice logs in in plaintext, as libpq ignores sslmode there.
  auto p = start_unix_proxy("[tls]\nserver_tls_mode = \"require\"\n");
  auto conn = connect(conninfo_of(*p));
  EXPECT_EQ(conn.scalar("SELECT inet_server_addr() IS NULL").value_or(""), "t");
  EXPECT_EQ(conn.scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").value_or(""), "f");
}

TEST(unix_socket, a_socket_that_is_not_there_fails_the_login_naming_it) {
  auto& c = cluster();
  // An existing directory without PostgreSQL's socket in it (the config check passes).
  const auto empty = b::make_temp_dir("pgsluice-nosock-", b::service_user{});
  const std::string path = empty.string() + "/.s.PGSQL." + primary_port();
  auto p = start_unix_proxy("", "[databases.nosock]\ndbname = " + toml_string(c.database()) + "\nhost = " +
                                    toml_string(empty.string()) + "\nport = " + primary_port() + "\n");
  const auto r = try_connect(conninfo_of(*p, "nosock"));
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.raw_error.find("could not connect to the server on socket \"" + path + "\""), std::string::npos)
      << r.raw_error;
  EXPECT_NE(r.raw_error.find("No such file or directory"), std::string::npos) << r.raw_error;
  // Everyone else is served as before.
  auto ok = connect(conninfo_of(*p));
  EXPECT_EQ(ok.scalar("SELECT 1").value_or(""), "1");
  std::error_code ec;
  std::filesystem::remove_all(empty, ec);
}

TEST(unix_socket, auth_query_looks_users_up_over_the_socket) {
  // sluice_scram is not in [users]: pgsluice asks the server (auth_user, over the socket) for
  // its verifier, then logs in as it there with the keys the client proved (pass-through).
  auto& c = cluster();
  auto p = start_unix_proxy("auth_user = " + toml_string(c.admin().name) + "\n");
  const auto& u = c.user("sluice_scram");
  auto conn = connect(p->conninfo(u.name, u.password, c.database()) + " connect_timeout=10");
  EXPECT_EQ(conn.scalar("SELECT current_user").value_or(""), u.name);
  EXPECT_EQ(conn.scalar("SELECT inet_server_addr() IS NULL").value_or(""), "t");
  const auto r = try_connect(p->conninfo(u.name, u.password + "-no", c.database()));
  EXPECT_EQ(r.sqlstate, "28P01") << r.raw_error;
}

TEST(unix_socket, health_checks_find_the_primary_and_the_replicas_over_their_sockets) {
  auto& c = cluster();
  ASSERT_FALSE(c.replica_indexes().empty());
  // Every node by its socket, role left to the health checks (pg_is_in_recovery()); one more
  // backend whose socket is not there, which the checks must mark down.
  const auto empty = b::make_temp_dir("pgsluice-nosock-", b::service_user{});
  std::string backends = "[databases.routed]\ndbname = " + toml_string(c.database()) + "\n";
  for (std::size_t i = 0; i < c.node_count(); ++i) {
    backends += "[[databases.routed.backends]]\nhost = " + toml_string(socket_dir()) + "\nport = " +
                std::to_string(c.port(i)) + "\nrole = \"auto\"\n";
  }
  backends += "[[databases.routed.backends]]\nhost = " + toml_string(empty.string()) + "\nport = 1\nrole = \"replica\"\n";
  auto p = start_unix_proxy("health_check_interval = \"200ms\"\nlag_check_interval = \"50ms\"\n", backends);
  auto conn = connect(conninfo_of(*p, "routed"));

  // Writes find the primary the checks recognised.
  conn.query("BEGIN");
  EXPECT_EQ(conn.scalar("SELECT current_setting('port')").value_or(""), primary_port());
  EXPECT_EQ(conn.scalar("SELECT pg_is_in_recovery()").value_or(""), "f");
  conn.query("COMMIT");
  // Reads reach a replica once the checks have seen them up (polled with a deadline).
  std::set<std::string> replicas;
  for (auto i : c.replica_indexes()) replicas.insert(std::to_string(c.port(i)));
  EXPECT_TRUE(b::poll_until(20s, 25ms, [&] {
    return replicas.count(conn.scalar("SELECT current_setting('port')").value_or("")) != 0;
  })) << log_of(*p);
  // The backend without a socket is down, its reason naming the socket.
  const std::string missing = "backend=" + empty.string() + ":1";
  EXPECT_TRUE(b::poll_until(20s, 50ms, [&] {
    std::istringstream in(log_of(*p));
    std::string line;
    while (std::getline(in, line)) {
      if (line.find(missing) != std::string::npos && line.find("status=down") != std::string::npos &&
          line.find(".s.PGSQL.1") != std::string::npos)
        return true;
    }
    return false;
  })) << log_of(*p);
  std::error_code ec;
  std::filesystem::remove_all(empty, ec);
}

}  // namespace
}  // namespace pgsluice::test::proxy

// Read/write routing over the test cluster's primary and two streaming replicas: where each kind of statement lands, read-your-writes under replica delay, lag limits, hints, target_session_attrs.
#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/proxy_fixture.hpp"

namespace pgsluice::test::proxy {
namespace {

using namespace std::chrono_literals;

// pgsluice over all three nodes; `extra` goes into [databases.<db>].
std::unique_ptr<pgsluice_process> start_router(const std::string& pool_mode, const std::string& extra = "") {
  auto& c = cluster();
  pgsluice_process::options o;
  o.probe = {c.admin().name, c.admin().password, c.database()};
  o.config = [=, &c](std::uint16_t port) {
    std::string t = "workers = 2\npool_mode = \"" + pool_mode + "\"\ndefault_pool_size = 4\nlag_check_interval = \"50ms\"\n";
    t += "[listen]\nhost = \"127.0.0.1\"\nport = " + std::to_string(port) + "\n";
    t += "[users]\n" + toml_string(c.admin().name) + " = " + toml_string(c.admin().password) + "\n";
    t += "[databases." + c.database() + "]\n" + extra + "\n";
    t += "[[databases." + c.database() + ".backends]]\nhost = \"127.0.0.1\"\nport = " +
         std::to_string(c.port(c.primary_index())) + "\nrole = \"primary\"\n";
    for (auto i : c.replica_indexes()) {
      t += "[[databases." + c.database() + ".backends]]\nhost = \"127.0.0.1\"\nport = " + std::to_string(c.port(i)) +
           "\nrole = \"replica\"\n";
    }
    return t;
  };
  return std::make_unique<pgsluice_process>(std::move(o));
}

std::string primary_port() { return std::to_string(cluster().port(cluster().primary_index())); }
std::set<std::string> replica_ports() {
  std::set<std::string> out;
  for (auto i : cluster().replica_indexes()) out.insert(std::to_string(cluster().port(i)));
  return out;
}

// The port of the server that ran `sql` (which must return inet_server_port() in its first column).
std::string port_of(bench::pq_connection& conn, const std::string& sql = "SELECT inet_server_port()") {
  return conn.scalar(sql).value_or("?");
}

// Waits (bounded) until a read through `conn` lands on a replica: the monitor has sampled them.
void wait_for_replica_reads(bench::pq_connection& conn) {
  const auto replicas = replica_ports();
  for (int i = 0; i < 400; ++i) {
    if (replicas.count(port_of(conn)) != 0) return;
    std::this_thread::sleep_for(25ms);  // polling a readiness condition, not a fixed wait
  }
  FAIL() << "no read reached a replica";
}

class routing : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto& c = cluster();
    c.exec_sql(c.primary_index(),
               "CREATE SEQUENCE IF NOT EXISTS routing_seq; "
               "CREATE TABLE IF NOT EXISTS routing_rows (id bigint PRIMARY KEY, v text)",
               c.database());
  }
};

TEST_F(routing, reads_go_to_the_replicas_and_writes_to_the_primary) {
  auto p = start_router("transaction");
  auto conn = connect(admin_conninfo(*p));
  wait_for_replica_reads(conn);
  std::map<std::string, int> seen;
  for (int i = 0; i < 60; ++i) ++seen[port_of(conn)];
  const auto replicas = replica_ports();
  EXPECT_EQ(seen.count(primary_port()), 0u) << "a plain read went to the primary";
  for (const auto& r : replicas) EXPECT_GT(seen[r], 10) << "reads are balanced over both replicas, port " << r;
  // Writes, and reads that lock or write, land on the primary: a replica would refuse them (25006).
  conn.query("INSERT INTO routing_rows VALUES (-1, 'w') ON CONFLICT (id) DO NOTHING");
  const std::vector<std::string> primary_only = {
      "SELECT inet_server_port() FROM routing_rows WHERE id = -1 FOR UPDATE",
      "SELECT inet_server_port() FROM (SELECT nextval('routing_seq')) s",
      "WITH d AS (DELETE FROM routing_rows WHERE id < 0 RETURNING id) SELECT inet_server_port() FROM (SELECT count(*) FROM d) x",
      "SELECT inet_server_port() FROM (SELECT pg_advisory_xact_lock(42)) l",
      "/* pgsluice: primary */ SELECT inet_server_port()",
  };
  for (const auto& sql : primary_only) EXPECT_EQ(port_of(conn, sql), primary_port()) << sql;
  // A read-only transaction runs on a replica, all of it (a client that has not written: the
  // one above reads its own writes from the primary until the replicas have them).
  conn = connect(admin_conninfo(*p));
  conn.query("BEGIN READ ONLY");
  const auto in_txn = port_of(conn);
  EXPECT_EQ(replicas.count(in_txn), 1u) << in_txn;
  EXPECT_EQ(port_of(conn), in_txn) << "a transaction stays on one server";
  conn.query("COMMIT");
  // A plain BEGIN may write later: the primary, whatever comes first (the ORM pattern).
  conn.query("BEGIN");
  EXPECT_EQ(port_of(conn), primary_port());
  conn.query("UPDATE routing_rows SET v = 'x' WHERE id = -1");
  conn.query("COMMIT");
  {
    auto reader = connect(admin_conninfo(*p));  // has written nothing: no position to wait for
    reader.query("BEGIN");
    reader.query("SET LOCAL pgsluice.route = replica");
    EXPECT_EQ(replicas.count(port_of(reader)), 1u) << "asked for a replica";
    reader.query("COMMIT");
  }
  conn.query("BEGIN ISOLATION LEVEL SERIALIZABLE");
  EXPECT_EQ(port_of(conn), primary_port());
  conn.query("COMMIT");
  // An empty transaction needs no server; BEGIN; COMMIT answers as PostgreSQL would.
  conn.query("BEGIN");
  conn.query("COMMIT");
}

// COPY FROM STDIN through a database with replicas (a write whose position is read after it).
TEST_F(routing, copy_in_and_reads_after_it) {
  auto p = start_router("transaction");
  pg_raw raw(admin_conninfo(*p));
  ASSERT_TRUE(raw.ok()) << raw.error();
  PGresult* r = PQexec(raw.conn, "COPY routing_rows (id, v) FROM STDIN");
  ASSERT_EQ(PQresultStatus(r), PGRES_COPY_IN) << PQresultErrorMessage(r);
  PQclear(r);
  const std::string rows = "3000001\tcopied\n3000002\tcopied\n";
  ASSERT_EQ(PQputCopyData(raw.conn, rows.data(), static_cast<int>(rows.size())), 1);
  ASSERT_EQ(PQputCopyEnd(raw.conn, nullptr), 1);
  r = PQgetResult(raw.conn);
  EXPECT_EQ(PQresultStatus(r), PGRES_COMMAND_OK) << PQresultErrorMessage(r);
  PQclear(r);
  while ((r = PQgetResult(raw.conn)) != nullptr) PQclear(r);
  r = PQexec(raw.conn, "SELECT count(*) FROM routing_rows WHERE id IN (3000001, 3000002)");
  ASSERT_EQ(PQresultStatus(r), PGRES_TUPLES_OK) << PQresultErrorMessage(r);
  EXPECT_STREQ(PQgetvalue(r, 0, 0), "2") << "the client reads what it copied";
  PQclear(r);
}

TEST_F(routing, hints_choose_the_backend) {
  auto p = start_router("transaction");
  auto conn = connect(admin_conninfo(*p));
  wait_for_replica_reads(conn);
  conn.query("SET pgsluice.route = primary");
  EXPECT_EQ(port_of(conn), primary_port());
  EXPECT_EQ(port_of(conn), primary_port());
  conn.query("SET pgsluice.route = auto");
  EXPECT_EQ(replica_ports().count(port_of(conn)), 1u);
  conn.query("BEGIN");
  conn.query("SET LOCAL pgsluice.route = primary");
  EXPECT_EQ(port_of(conn), primary_port());
  conn.query("COMMIT");
  EXPECT_EQ(replica_ports().count(port_of(conn)), 1u) << "SET LOCAL ends with its transaction";
  const auto bad = try_connect(admin_conninfo(*p) + " options='-c pgsluice.route=sideways'");
  EXPECT_FALSE(bad.ok());
  auto startup = connect(admin_conninfo(*p) + " options='-c pgsluice.route=primary'");
  EXPECT_EQ(port_of(startup), primary_port());
  EXPECT_THROW(conn.query("SET pgsluice.route = sideways"), sql_error);
  // Inside a transaction such an error aborts it, as PostgreSQL's own would.
  conn.query("BEGIN");
  conn.query("INSERT INTO routing_rows VALUES (-2, 'aborted') ON CONFLICT DO NOTHING");
  EXPECT_THROW(conn.query("SET pgsluice.route = 'side$pgsluice$ways'"), sql_error);
  EXPECT_THROW(conn.query("SELECT 1"), sql_error) << "the transaction is aborted";
  conn.query("ROLLBACK");
  EXPECT_EQ(conn.scalar("SELECT count(*) FROM routing_rows WHERE id = -2").value_or("?"), "0");
  EXPECT_THROW(conn.query("SHOW pgsluice.no_such_setting"), sql_error);
}

TEST_F(routing, session_mode_picks_a_backend_by_target_session_attrs) {
  auto p = start_router("session");
  auto rw = connect(admin_conninfo(*p) + " options='-c target_session_attrs=read-write'");
  EXPECT_EQ(port_of(rw), primary_port());
  auto ro = connect(admin_conninfo(*p) + " options='-c target_session_attrs=read-only'");
  for (int i = 0; i < 400 && replica_ports().count(port_of(ro)) == 0; ++i) {
    ro = connect(admin_conninfo(*p) + " options='-c target_session_attrs=read-only'");
    std::this_thread::sleep_for(25ms);
  }
  EXPECT_EQ(replica_ports().count(port_of(ro)), 1u);
  auto any = connect(admin_conninfo(*p));
  EXPECT_EQ(port_of(any), primary_port()) << "the default session goes to the primary";
}

// Every read after a client's own write sees it, with the replicas replaying late: 1,000 write-then-read pairs.
TEST_F(routing, every_client_reads_its_own_writes) {
  auto& c = cluster();
  for (auto i : c.replica_indexes()) {
    c.exec_sql(i, "ALTER SYSTEM SET recovery_min_apply_delay = '300ms'");
    c.exec_sql(i, "SELECT pg_reload_conf()");
  }
  auto p = start_router("transaction");
  auto conn = connect(admin_conninfo(*p));
  wait_for_replica_reads(conn);
  int stale = 0, on_replica = 0;
  const auto replicas = replica_ports();
  auto check = [&](bench::pq_connection& k, long id) {
    const auto rows = k.query("SELECT v, inet_server_port() FROM routing_rows WHERE id = " + std::to_string(id));
    if (rows.empty()) ++stale;
    if (!rows.empty() && rows[0].size() > 1 && rows[0][1] && replicas.count(*rows[0][1]) != 0) ++on_replica;
  };
  long id = 1000000;
  for (int i = 0; i < 400; ++i, ++id) {  // autocommit
    conn.query("INSERT INTO routing_rows VALUES (" + std::to_string(id) + ", 'a')");
    check(conn, id);
  }
  for (int i = 0; i < 300; ++i, ++id) {  // explicit transactions
    conn.query("BEGIN");
    conn.query("INSERT INTO routing_rows VALUES (" + std::to_string(id) + ", 'b')");
    conn.query("COMMIT");
    check(conn, id);
  }
  for (int i = 0; i < 250; ++i, ++id) {  // extended protocol
    conn.query("INSERT INTO routing_rows VALUES ($1, 'c')", {std::to_string(id)});
    const auto rows = conn.query("SELECT v FROM routing_rows WHERE id = $1", {std::to_string(id)});
    if (rows.empty()) ++stale;
  }
  // A new connection that is handed the position of the last write (an application pool).
  const auto lsn = conn.scalar("SHOW pgsluice.last_write_lsn").value_or("0/0");
  EXPECT_NE(lsn, "0/0");
  for (int i = 0; i < 50; ++i, ++id) {
    conn.query("INSERT INTO routing_rows VALUES (" + std::to_string(id) + ", 'd')");
    const auto at = conn.scalar("SHOW pgsluice.last_write_lsn").value_or("0/0");
    auto fresh = connect(admin_conninfo(*p));
    fresh.query("SET pgsluice.min_lsn = '" + at + "'");
    check(fresh, id);
  }
  EXPECT_EQ(stale, 0) << "reads that missed their own write";
  // Reads of rows written long enough ago do go to the replicas once they have replayed them.
  for (int i = 0; i < 400 && on_replica == 0; ++i) {
    check(conn, 1000000);
    std::this_thread::sleep_for(25ms);
  }
  EXPECT_GT(on_replica, 0) << "replicas that caught up serve reads again";
  for (auto i : c.replica_indexes()) {
    c.exec_sql(i, "ALTER SYSTEM RESET recovery_min_apply_delay");
    c.exec_sql(i, "SELECT pg_reload_conf()");
  }
}

TEST_F(routing, a_replica_over_max_replica_lag_gets_no_reads_until_it_catches_up) {
  auto& c = cluster();
  const auto held = c.replica_indexes().front();
  const std::string held_port = std::to_string(c.port(held));
  auto p = start_router("transaction", "max_replica_lag = \"64kB\"");
  auto conn = connect(admin_conninfo(*p));
  wait_for_replica_reads(conn);
  c.exec_sql(held, "SELECT pg_wal_replay_pause()");
  // WAL the held replica does not replay: well over the limit.
  c.exec_sql(c.primary_index(), "INSERT INTO routing_rows SELECT g, repeat('x', 200) FROM generate_series(2000000, 2002000) g ON CONFLICT DO NOTHING", c.database());
  // Once the monitor has seen it, no read goes there.
  bool avoided = false;
  for (int i = 0; i < 400 && !avoided; ++i) {
    std::map<std::string, int> seen;
    for (int k = 0; k < 20; ++k) ++seen[port_of(conn)];
    avoided = seen.count(held_port) == 0;
    if (!avoided) std::this_thread::sleep_for(25ms);
  }
  ASSERT_TRUE(avoided) << "the lagging replica kept getting reads";
  std::map<std::string, int> seen;
  for (int k = 0; k < 100; ++k) ++seen[port_of(conn)];
  EXPECT_EQ(seen.count(held_port), 0u) << "a lagging replica got reads";
  EXPECT_GT(seen.size(), 0u);
  c.exec_sql(held, "SELECT pg_wal_replay_resume()");
  bool back = false;
  for (int i = 0; i < 400 && !back; ++i) {
    back = port_of(conn) == held_port;
    if (!back) std::this_thread::sleep_for(25ms);
  }
  EXPECT_TRUE(back) << "the replica caught up and still gets no reads";
}

}  // namespace
}  // namespace pgsluice::test::proxy

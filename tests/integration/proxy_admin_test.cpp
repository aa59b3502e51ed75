// The admin console against real PostgreSQL and real PgBouncer 1.18: every SHOW's columns (names, order, type OIDs) and the error wording compared with PgBouncer's, PAUSE/RESUME, KILL, stats users, RELOAD without loss, odd input.
#include <poll.h>
#include <signal.h>

#include <random>

#include "bench/poolers.hpp"
#include "tests/integration/proxy_fixture.hpp"

namespace pgsluice::test::proxy {
namespace {

using namespace std::chrono_literals;

const char* const stats_user = "sluice_scram";  // stats_users on both consoles
const char* const other_user = "sluice_md5";    // neither

// pgsluice with the console: the admin user is an admin user, sluice_scram a stats user.
proxy_setup console_setup(int pool_size = 4) {
  auto& c = cluster();
  auto s = admin_setup("transaction", pool_size);
  for (const char* name : {stats_user, other_user}) s.users.emplace_back(name, c.user(name).password);
  s.globals = "";
  s.database_extra = "";
  return s;
}
std::string admin_section() {
  return std::string("\n[admin]\nadmin_users = [") + toml_string(cluster().admin().name) + "]\nstats_users = [" +
         toml_string(stats_user) + "]\nstats_period = \"1s\"\n";
}
std::unique_ptr<pgsluice_process> start_console_proxy(proxy_setup s) {
  pgsluice_process::options o;
  o.probe = s.probe;
  o.config = [s](std::uint16_t port) { return proxy_toml(s, port) + admin_section(); };
  return std::make_unique<pgsluice_process>(std::move(o));
}

pgsluice_process& shared_proxy() {
  static auto p = start_console_proxy(console_setup());
  return *p;
}

// A PgBouncer 1.18 with the same admin and stats users.
b::config_server& reference_pgbouncer() {
  static std::unique_ptr<b::config_server> server = [] {
    auto& c = cluster();
    auto spec = b::pgbouncer_for(c, c.work_dir() / "pgbouncer-admin");
    spec.admin_user.clear();
    spec.settings = {{"admin_users", c.admin().name}, {"stats_users", stats_user}};
    return b::start_pgbouncer(spec);
  }();
  return *server;
}

std::string console_conninfo(std::uint16_t port, const std::string& user, const std::string& db = "pgbouncer") {
  return "host=127.0.0.1 port=" + std::to_string(port) + " user=" + user + " password=" +
         cluster().user(user).password + " dbname=" + db + " sslmode=disable connect_timeout=10";
}

struct result {
  ExecStatusType status = PGRES_FATAL_ERROR;
  std::string tag;
  std::string sqlstate;
  std::string message;
  std::vector<std::pair<std::string, Oid>> columns;
  std::vector<std::vector<std::optional<std::string>>> rows;
};
result run(PGconn* c, const std::string& sql) {
  PGresult* r = PQexec(c, sql.c_str());
  result out;
  if (r == nullptr) {  // the connection is gone
    out.message = PQerrorMessage(c);
    return out;
  }
  out.status = PQresultStatus(r);
  out.tag = PQcmdStatus(r);
  out.sqlstate = sqlstate_of(r);
  if (const char* m = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY)) out.message = m;
  for (int i = 0; i < PQnfields(r); ++i) out.columns.emplace_back(PQfname(r, i), PQftype(r, i));
  for (int t = 0; t < PQntuples(r); ++t) {
    std::vector<std::optional<std::string>> row;
    for (int i = 0; i < PQnfields(r); ++i) {
      row.push_back(PQgetisnull(r, t, i) ? std::nullopt : std::optional<std::string>(PQgetvalue(r, t, i)));
    }
    out.rows.push_back(std::move(row));
  }
  PQclear(r);
  return out;
}
// The value of column `col` in the row whose first columns equal `key` (nullopt: no such row).
std::optional<std::string> cell_of(const result& r, const std::vector<std::string>& key, const std::string& col) {
  int at = -1;
  for (std::size_t i = 0; i < r.columns.size(); ++i) {
    if (r.columns[i].first == col) at = static_cast<int>(i);
  }
  if (at < 0) return std::nullopt;
  for (const auto& row : r.rows) {
    bool match = true;
    for (std::size_t k = 0; k < key.size(); ++k) match = match && row[k] == key[k];
    if (match) return row[at];
  }
  return std::nullopt;
}

// Waits for the result of a query sent with PQsendQuery; nullopt when none came in time.
std::optional<result> await_result(PGconn* c, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (PQisBusy(c)) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    pollfd p{PQsocket(c), POLLIN, 0};
    ::poll(&p, 1, static_cast<int>(left.count()));
    if (!PQconsumeInput(c)) break;
  }
  result out;
  bool any = false;
  while (PGresult* r = PQgetResult(c)) {
    any = true;
    out.status = PQresultStatus(r);
    out.tag = PQcmdStatus(r);
    out.sqlstate = sqlstate_of(r);
    if (const char* m = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY)) out.message = m;
    if (PQntuples(r) > 0 && PQnfields(r) > 0) out.rows.push_back({std::string(PQgetvalue(r, 0, 0))});
    PQclear(r);
  }
  if (!any) out.message = PQerrorMessage(c);
  return out;
}
// Still running: nothing arrived that completes it (checked now, without waiting).
bool still_busy(PGconn* c) { return PQconsumeInput(c) && PQisBusy(c); }

// --- the columns of every SHOW, against PgBouncer ------------------------------------------------

TEST(console, every_show_has_pgbouncer_columns_and_types) {
  auto& c = cluster();
  auto& mine = shared_proxy();
  auto& theirs = reference_pgbouncer();
  // The same situation on both: a client of the database holding a transaction open, so
  // there are clients, servers, pools and counters to show.
  pg_raw app_mine(admin_conninfo(mine));
  pg_raw app_theirs(theirs.conninfo(c.admin().name, c.admin().password, c.database()));
  ASSERT_TRUE(app_mine.ok()) << app_mine.error();
  ASSERT_TRUE(app_theirs.ok()) << app_theirs.error();
  for (PGconn* a : {app_mine.conn, app_theirs.conn}) {
    ASSERT_EQ(run(a, "SELECT 1").status, PGRES_TUPLES_OK);
    ASSERT_EQ(run(a, "BEGIN").status, PGRES_COMMAND_OK);
    ASSERT_EQ(run(a, "SELECT 2").status, PGRES_TUPLES_OK);
  }
  pg_raw con_mine(console_conninfo(mine.port(), c.admin().name));
  pg_raw con_theirs(console_conninfo(theirs.port(), c.admin().name));
  ASSERT_TRUE(con_mine.ok()) << con_mine.error();
  ASSERT_TRUE(con_theirs.ok()) << con_theirs.error();
  for (const char* show : {"POOLS", "STATS", "STATS_TOTALS", "STATS_AVERAGES", "SERVERS", "CLIENTS", "DATABASES",
                           "USERS", "CONFIG", "LISTS", "MEM", "VERSION", "TOTALS"}) {
    SCOPED_TRACE(show);
    const auto a = run(con_mine.conn, std::string("SHOW ") + show);
    const auto b = run(con_theirs.conn, std::string("SHOW ") + show);
    ASSERT_EQ(b.status, PGRES_TUPLES_OK) << b.message;
    ASSERT_EQ(a.status, PGRES_TUPLES_OK) << a.message;
    EXPECT_EQ(a.tag, b.tag);
    // Column by column; pgsluice's own columns could only follow PgBouncer's.
    ASSERT_GE(a.columns.size(), b.columns.size());
    for (std::size_t i = 0; i < b.columns.size(); ++i) {
      EXPECT_EQ(a.columns[i].first, b.columns[i].first) << "column " << i;
      EXPECT_EQ(a.columns[i].second, b.columns[i].second) << "type of column " << b.columns[i].first;
    }
  }
  // Rows tell the same story where both know it.
  const auto pools = run(con_mine.conn, "SHOW POOLS");
  EXPECT_EQ(cell_of(pools, {c.database(), c.admin().name}, "sv_active").value_or(""), "1");
  EXPECT_EQ(cell_of(pools, {c.database(), c.admin().name}, "pool_mode").value_or(""), "transaction");
  const auto servers = run(con_mine.conn, "SHOW SERVERS");
  ASSERT_FALSE(servers.rows.empty());
  EXPECT_EQ(servers.rows[0][0].value_or(""), "S");
  EXPECT_EQ(servers.rows[0][3].value_or(""), "active");
  EXPECT_EQ(servers.rows[0][5].value_or(""), std::to_string(c.port(c.primary_index())));
  const auto clients = run(con_mine.conn, "SHOW CLIENTS");
  EXPECT_GE(clients.rows.size(), 2u);  // the application's and this console session
  const auto version = run(con_mine.conn, "SHOW VERSION");
  ASSERT_EQ(version.rows.size(), 1u);
  EXPECT_TRUE(version.rows[0][0].value_or("").starts_with("pgsluice ")) << version.rows[0][0].value_or("");

  // SHOW HELP: a notice and the SHOW tag, no rows, on both.
  const auto help_a = run(con_mine.conn, "SHOW HELP");
  const auto help_b = run(con_theirs.conn, "SHOW HELP");
  EXPECT_EQ(help_a.status, help_b.status);
  EXPECT_EQ(help_a.tag, help_b.tag);
  // SHOW STATE arrived in PgBouncer 1.19 (1.18 says invalid command): its key/value columns.
  const auto state = run(con_mine.conn, "SHOW STATE");
  ASSERT_EQ(state.status, PGRES_TUPLES_OK);
  ASSERT_EQ(state.columns.size(), 2u);
  EXPECT_EQ(state.columns[0], (std::pair<std::string, Oid>{"key", 25}));
  EXPECT_EQ(cell_of(state, {"paused"}, "value").value_or(""), "no");
  const auto backends = run(con_mine.conn, "SHOW BACKENDS");
  ASSERT_EQ(backends.status, PGRES_TUPLES_OK) << backends.message;
  EXPECT_EQ(cell_of(backends, {c.database()}, "role").value_or(""), "primary");
  EXPECT_EQ(cell_of(backends, {c.database()}, "status").value_or(""), "up");
  EXPECT_TRUE(cell_of(backends, {c.database()}, "last_status_change").value_or("").ends_with(" UTC"));

  for (PGconn* a : {app_mine.conn, app_theirs.conn}) EXPECT_EQ(run(a, "COMMIT").status, PGRES_COMMAND_OK);
}

// Errors in PgBouncer's words, SQLSTATE included.
TEST(console, errors_are_worded_as_pgbouncer) {
  auto& c = cluster();
  pg_raw mine(console_conninfo(shared_proxy().port(), c.admin().name, "pgsluice"));
  pg_raw theirs(console_conninfo(reference_pgbouncer().port(), c.admin().name));
  ASSERT_TRUE(mine.ok()) << mine.error();
  ASSERT_TRUE(theirs.ok()) << theirs.error();
  for (const std::string& q : std::vector<std::string>{"frobnicate", "", ";", "show pools; show stats", "SHOW frob", "show", "select 1",
                        "pause postgres extra", "show 'pools'", "resume", "kill", "disable", "reload now",
                        "abcdefghijklmnopqrstuvwxyz", "SHOW " + std::string(300, 'x')}) {
    SCOPED_TRACE(q);
    const auto a = run(mine.conn, q);
    const auto b = run(theirs.conn, q);
    EXPECT_EQ(b.status, PGRES_FATAL_ERROR);
    EXPECT_EQ(a.status, b.status);
    EXPECT_EQ(a.sqlstate, b.sqlstate);
    EXPECT_EQ(a.message, b.message);
  }
  // The reference PgBouncer has a "*" database (any name exists there); pgsluice here has none.
  EXPECT_EQ(run(mine.conn, "PAUSE nosuchdb").message, "no such database: nosuchdb");
  EXPECT_EQ(run(mine.conn, "ENABLE nosuchdb").message, "no such database: nosuchdb");
  EXPECT_EQ(PQstatus(mine.conn), CONNECTION_OK);
}

TEST(console, stats_users_may_only_show_and_others_are_not_allowed) {
  auto& c = cluster();
  for (std::uint16_t port : {shared_proxy().port(), reference_pgbouncer().port()}) {
    SCOPED_TRACE(port);
    pg_raw st(console_conninfo(port, stats_user));
    ASSERT_TRUE(st.ok()) << st.error();
    EXPECT_EQ(run(st.conn, "SHOW POOLS").status, PGRES_TUPLES_OK);
    EXPECT_EQ(run(st.conn, "SHOW STATS").status, PGRES_TUPLES_OK);
    for (const char* q : {"PAUSE", "RESUME", "RELOAD", "KILL " /* db */, "SHUTDOWN", "DISABLE x", "RECONNECT",
                          "WAIT_CLOSE", "SET verbose = 1"}) {
      std::string sql = q;
      if (sql == "KILL ") sql += c.database();
      const auto r = run(st.conn, sql);
      EXPECT_EQ(r.status, PGRES_FATAL_ERROR) << sql;
      EXPECT_EQ(r.message, "admin access needed") << sql;
      EXPECT_EQ(r.sqlstate, "08P01") << sql;
    }
    const auto refused = try_connect(console_conninfo(port, other_user));
    EXPECT_FALSE(refused.ok());
    EXPECT_EQ(refused.message, "not allowed");
  }
}

// --- commands -------------------------------------------------------------------------------------

TEST(console, pause_waits_for_running_transactions_and_holds_new_ones_until_resume) {
  auto& c = cluster();
  auto& p = shared_proxy();
  pg_raw running(admin_conninfo(p));
  pg_raw later(admin_conninfo(p));
  pg_raw console(console_conninfo(p.port(), c.admin().name));
  pg_raw watcher(console_conninfo(p.port(), c.admin().name));
  ASSERT_TRUE(running.ok() && later.ok() && console.ok() && watcher.ok());
  ASSERT_EQ(run(later.conn, "SELECT 1").status, PGRES_TUPLES_OK);
  ASSERT_EQ(run(running.conn, "BEGIN").status, PGRES_COMMAND_OK);
  ASSERT_EQ(run(running.conn, "SELECT 1").status, PGRES_TUPLES_OK);

  // PAUSE does not answer while a transaction runs...
  ASSERT_EQ(PQsendQuery(console.conn, ("PAUSE " + c.database()).c_str()), 1);
  ASSERT_TRUE(b::poll_until(10s, 10ms, [&] {
    return cell_of(run(watcher.conn, "SHOW DATABASES"), {c.database()}, "paused").value_or("") == "1";
  }));
  EXPECT_TRUE(still_busy(console.conn));
  // ...which goes on and commits, and then PAUSE answers.
  EXPECT_EQ(run(running.conn, "SELECT 2").status, PGRES_TUPLES_OK);
  EXPECT_EQ(run(running.conn, "COMMIT").status, PGRES_COMMAND_OK);
  const auto paused = await_result(console.conn, 10s);
  ASSERT_TRUE(paused);
  EXPECT_EQ(paused->tag, "PAUSE") << paused->message;

  // A new transaction waits, counted as waiting...
  ASSERT_EQ(PQsendQuery(later.conn, "SELECT 42"), 1);
  EXPECT_TRUE(b::poll_until(10s, 10ms, [&] {
    return cell_of(run(watcher.conn, "SHOW POOLS"), {c.database(), c.admin().name}, "cl_waiting").value_or("") == "1";
  }));
  EXPECT_TRUE(still_busy(later.conn));
  // ...until RESUME releases it.
  EXPECT_EQ(run(console.conn, "RESUME " + c.database()).tag, "RESUME");
  const auto released = await_result(later.conn, 10s);
  ASSERT_TRUE(released);
  ASSERT_EQ(released->rows.size(), 1u) << released->message;
  EXPECT_EQ(released->rows[0][0].value_or(""), "42");
  EXPECT_EQ(run(console.conn, "RESUME " + c.database()).message, "database " + c.database() + " is not paused");

  // The whole pooler the same way.
  EXPECT_EQ(run(console.conn, "PAUSE").tag, "PAUSE");
  EXPECT_EQ(run(console.conn, "PAUSE").message, "already suspended/paused");
  EXPECT_EQ(cell_of(run(console.conn, "SHOW STATE"), {"paused"}, "value").value_or(""), "yes");
  ASSERT_EQ(PQsendQuery(later.conn, "SELECT 43"), 1);
  EXPECT_TRUE(b::poll_until(10s, 10ms, [&] {
    return cell_of(run(watcher.conn, "SHOW POOLS"), {c.database(), c.admin().name}, "cl_waiting").value_or("") == "1";
  }));
  EXPECT_EQ(run(console.conn, "RESUME").tag, "RESUME");
  const auto again = await_result(later.conn, 10s);
  ASSERT_TRUE(again);
  ASSERT_EQ(again->rows.size(), 1u) << again->message;
  EXPECT_EQ(again->rows[0][0].value_or(""), "43");
}

TEST(console, kill_drops_the_databases_clients_and_disable_refuses_new_ones) {
  auto& c = cluster();
  auto& p = shared_proxy();
  pg_raw victim(admin_conninfo(p));
  pg_raw console(console_conninfo(p.port(), c.admin().name));
  ASSERT_TRUE(victim.ok() && console.ok());
  ASSERT_EQ(run(victim.conn, "SELECT 1").status, PGRES_TUPLES_OK);
  EXPECT_EQ(run(console.conn, "KILL " + c.database()).tag, "KILL");
  // The client is told and dropped; the console survives.
  EXPECT_TRUE(b::poll_until(10s, 10ms, [&] {
    const auto r = run(victim.conn, "SELECT 1");
    return PQstatus(victim.conn) == CONNECTION_BAD || r.message == "database removed";
  }));
  EXPECT_NE(run(victim.conn, "SELECT 1").status, PGRES_TUPLES_OK);
  EXPECT_EQ(cell_of(run(console.conn, "SHOW DATABASES"), {c.database()}, "paused").value_or(""), "1");
  EXPECT_EQ(run(console.conn, "RESUME " + c.database()).tag, "RESUME");
  EXPECT_EQ(connect(admin_conninfo(p)).scalar("SELECT 7").value_or(""), "7");

  EXPECT_EQ(run(console.conn, "DISABLE " + c.database()).tag, "DISABLE");
  const auto refused = try_connect(admin_conninfo(p));
  EXPECT_FALSE(refused.ok());
  EXPECT_EQ(refused.message, "database \"" + c.database() + "\" is disabled");
  EXPECT_EQ(run(console.conn, "ENABLE " + c.database()).tag, "ENABLE");
  EXPECT_TRUE(try_connect(admin_conninfo(p)).ok());
  // Backends: FENCE / DRAIN take a backend out of service, UNFENCE puts it back; SHOW BACKENDS says so.
  const std::string backend = "127.0.0.1:" + std::to_string(c.port(c.primary_index()));
  auto status_of = [&] {
    return cell_of(run(console.conn, "SHOW BACKENDS"), {c.database(), backend}, "status").value_or("");
  };
  EXPECT_EQ(run(console.conn, "FENCE \"" + backend + "\"").tag, "FENCE");
  EXPECT_EQ(status_of(), "fenced");
  EXPECT_EQ(run(console.conn, "UNFENCE \"" + backend + "\"").tag, "UNFENCE");
  EXPECT_NE(status_of(), "fenced");
  EXPECT_EQ(run(console.conn, "DRAIN \"" + backend + "\"").tag, "DRAIN");
  EXPECT_EQ(status_of(), "draining");
  EXPECT_EQ(run(console.conn, "UNFENCE \"" + backend + "\"").tag, "UNFENCE");
  EXPECT_NE(status_of(), "draining");
  EXPECT_TRUE(try_connect(admin_conninfo(p)).ok());
  const auto unknown = run(console.conn, "FENCE \"127.0.0.1:1\"");
  EXPECT_EQ(unknown.status, PGRES_FATAL_ERROR);
  EXPECT_EQ(unknown.message, "no such backend: 127.0.0.1:1");
  const auto malformed = run(console.conn, "DRAIN \"nohost\"");
  EXPECT_EQ(malformed.status, PGRES_FATAL_ERROR);
}

TEST(console, show_stats_counts_the_databases_traffic) {
  auto& c = cluster();
  auto& p = shared_proxy();
  pg_raw console(console_conninfo(p.port(), c.admin().name));
  ASSERT_TRUE(console.ok());
  auto totals = [&] {
    const auto s = run(console.conn, "SHOW STATS");
    return std::make_pair(std::stoull(cell_of(s, {c.database()}, "total_query_count").value_or("0")),
                          std::stoull(cell_of(s, {c.database()}, "total_xact_count").value_or("0")));
  };
  const auto before = totals();
  {
    auto app = connect(admin_conninfo(p));
    for (int i = 0; i < 20; ++i) app.query("SELECT " + std::to_string(i));
    app.query("BEGIN; SELECT 1; COMMIT");
  }
  const auto after = totals();
  EXPECT_GE(after.first - before.first, 21u);
  EXPECT_GE(after.second - before.second, 21u);
  // The averages follow within a stats_period or two (1s here).
  EXPECT_TRUE(b::poll_until(10s, 50ms, [&] {
    const auto s = run(console.conn, "SHOW STATS_AVERAGES");
    return std::stoull(cell_of(s, {c.database()}, "query_count").value_or("0")) > 0 &&
           std::stoull(cell_of(s, {c.database()}, "bytes_received").value_or("0")) > 0;
  }));
}

// --- odd input ------------------------------------------------------------------------------------

TEST(console, odd_input_never_breaks_it) {
  auto& c = cluster();
  auto& p = shared_proxy();
  pg_raw console(console_conninfo(p.port(), c.admin().name));
  ASSERT_TRUE(console.ok());
  std::mt19937 rng(7);
  const std::string alphabet = "ashowpOOLS_ \t\n;\"'=\\()*,\x01\xff\xc3\xa9";
  for (int i = 0; i < 300; ++i) {
    std::string q(rng() % 60, ' ');
    for (auto& ch : q) ch = alphabet[rng() % alphabet.size()];
    const auto r = run(console.conn, q);
    ASSERT_TRUE(r.status == PGRES_FATAL_ERROR || r.status == PGRES_TUPLES_OK || r.status == PGRES_COMMAND_OK) << q;
    ASSERT_EQ(PQstatus(console.conn), CONNECTION_OK) << q;
  }
  // A long statement is an invalid command, answered; one above the console's limit ends only
  // that connection.
  EXPECT_EQ(run(console.conn, "SHOW " + std::string(30000, 'x')).status, PGRES_FATAL_ERROR);
  EXPECT_EQ(PQstatus(console.conn), CONNECTION_OK);
  run(console.conn, "SHOW " + std::string(200000, 'x'));
  EXPECT_EQ(PQstatus(console.conn), CONNECTION_BAD);

  // The extended protocol: PgBouncer's error, then the connection is closed.
  pg_raw ext(console_conninfo(p.port(), c.admin().name));
  ASSERT_TRUE(ext.ok());
  PGresult* r = PQprepare(ext.conn, "", "SHOW POOLS", 0, nullptr);
  EXPECT_EQ(PQresultStatus(r), PGRES_FATAL_ERROR);
  EXPECT_STREQ(PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY), "extended query protocol not supported by admin console");
  PQclear(r);
  run(ext.conn, "SHOW POOLS");
  EXPECT_EQ(PQstatus(ext.conn), CONNECTION_BAD);

  // Raw bytes on a logged-in console: a Query without its terminator, an unknown message.
  for (const auto& bytes : {message('Q', "SHOW POOLS"), message('H', ""), message('\x7f', "garbage")}) {
    pg_raw raw(console_conninfo(p.port(), c.admin().name));
    ASSERT_TRUE(raw.ok());
    const int fd = PQsocket(raw.conn);
    ASSERT_EQ(::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL), static_cast<ssize_t>(bytes.size()));
    std::string seen;
    for (;;) {
      pollfd pfd{fd, POLLIN, 0};
      if (::poll(&pfd, 1, 10000) <= 0) break;
      char buf[4096];
      const auto n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      seen.append(buf, static_cast<std::size_t>(n));
    }
    // An ErrorResponse came first, then the close.
    ASSERT_FALSE(seen.empty());
    EXPECT_EQ(seen[0], 'E');
  }
  // Still serving.
  pg_raw after(console_conninfo(p.port(), c.admin().name));
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(run(after.conn, "SHOW VERSION").status, PGRES_TUPLES_OK);
}

// --- RELOAD ----------------------------------------------------------------------------------------

TEST(console, reload_applies_backends_pools_and_users_without_cutting_transactions) {
  auto& c = cluster();
  auto s = console_setup(3);
  s.users.erase(std::remove_if(s.users.begin(), s.users.end(), [](const auto& u) { return u.first == other_user; }),
                s.users.end());
  auto p = start_console_proxy(s);
  pg_raw client(admin_conninfo(*p));
  pg_raw console(console_conninfo(p->port(), c.admin().name));
  ASSERT_TRUE(client.ok() && console.ok());
  ASSERT_EQ(run(client.conn, "BEGIN").status, PGRES_COMMAND_OK);
  auto in_txn = run(client.conn, "SELECT current_database()");
  ASSERT_EQ(in_txn.rows.at(0).at(0).value_or(""), c.database());

  // The database now points at another server-side database, with a bigger pool, a new user,
  // and a setting that needs a restart.
  auto next = s;
  next.pool_size = 5;
  next.users.emplace_back(other_user, c.user(other_user).password);
  next.database_extra = "dbname = \"postgres\"\n";
  next.globals = "listen_backlog = 77\n";
  b::write_service_file(p->config_file(), proxy_toml(next, p->port()) + admin_section(), b::service_user{});
  EXPECT_EQ(run(console.conn, "RELOAD").tag, "RELOAD");

  // The transaction under way goes on, on its server, and commits.
  EXPECT_EQ(run(client.conn, "SELECT current_database()").rows.at(0).at(0).value_or(""), c.database());
  EXPECT_EQ(run(client.conn, "COMMIT").status, PGRES_COMMAND_OK);
  // Its next transaction goes where the new config says, as do new logins and the new user.
  EXPECT_EQ(run(client.conn, "SELECT current_database()").rows.at(0).at(0).value_or(""), "postgres");
  auto newcomer = try_connect(p->conninfo(other_user, c.user(other_user).password, c.database()));
  ASSERT_TRUE(newcomer.ok()) << newcomer.raw_error;
  EXPECT_EQ(newcomer.conn.scalar("SELECT current_database()").value_or(""), "postgres");
  const auto dbs = run(console.conn, "SHOW DATABASES");
  EXPECT_EQ(cell_of(dbs, {c.database()}, "pool_size").value_or(""), "5");
  EXPECT_EQ(cell_of(dbs, {c.database()}, "database").value_or(""), "postgres");
  // The old servers are gone once released; what cannot change online is in the log.
  EXPECT_EQ(run(console.conn, "WAIT_CLOSE").tag, "WAIT_CLOSE");
  EXPECT_TRUE(b::poll_until(10s, 20ms, [&] {
    return b::read_file_text(p->log_file()).find("listen_backlog") != std::string::npos;
  }));
  EXPECT_NE(b::read_file_text(p->log_file()).find("needs a restart"), std::string::npos);

  // SIGHUP does the same.
  next.pool_size = 6;
  b::write_service_file(p->config_file(), proxy_toml(next, p->port()) + admin_section(), b::service_user{});
  ASSERT_EQ(::kill(p->pid(), SIGHUP), 0);
  EXPECT_TRUE(b::poll_until(10s, 20ms, [&] {
    return cell_of(run(console.conn, "SHOW DATABASES"), {c.database()}, "pool_size").value_or("") == "6";
  }));
  EXPECT_EQ(run(client.conn, "SELECT 1").rows.size(), 1u);
}

TEST(console, shutdown_stops_pgsluice_gracefully) {
  auto& c = cluster();
  auto p = start_console_proxy(console_setup(2));
  pg_raw console(console_conninfo(p->port(), c.admin().name));
  ASSERT_TRUE(console.ok());
  run(console.conn, "SHUTDOWN");
  EXPECT_TRUE(b::poll_until(30s, 50ms, [&] { return !p->running(); }));
}

}  // namespace
}  // namespace pgsluice::test::proxy

// TLS through pgsluice with libpq and psql: verify-full both ways, wrong CA, SCRAM-SHA-256-PLUS, client certificates, reload, hostile TLS input.
//
// One PostgreSQL 15 primary with ssl = on, its certificate from a CA the test makes with the
// openssl command (bench/tls_files.hpp), like every certificate here; pgsluice in front with
// [tls] set per test group. pg_stat_ssl shows whether pgsluice's server connections use TLS.
#include <signal.h>

#include <fstream>
#include <thread>

#include "bench/tls_files.hpp"
#include "tests/integration/proxy_fixture.hpp"

namespace pgsluice::test::proxy {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

struct tls_env {
  fs::path dir;
  b::tls_files ca, server, other_ca, other_server, admin_client, stranger_client;
  std::unique_ptr<b::pg_cluster> cluster;
  ~tls_env() {
    cluster.reset();
    std::error_code ec;
    if (!dir.empty()) fs::remove_all(dir, ec);
  }
};

tls_env& env() {
  static std::unique_ptr<tls_env> e;
  if (!e) {
    e = std::make_unique<tls_env>();
    const auto postgres = b::resolve_service_user();
    const b::service_user me{};  // libpq wants client keys owned by whoever runs it
    e->dir = b::make_temp_dir("pgsluice-tls-", postgres);
    e->ca = b::make_test_ca(e->dir, "test-ca", postgres);
    e->server = b::make_test_certificate(e->ca, e->dir, "server", "localhost", true, postgres);
    e->other_ca = b::make_test_ca(e->dir, "other-ca", postgres);
    e->other_server = b::make_test_certificate(e->other_ca, e->dir, "other-server", "localhost", true, postgres);
    b::cluster_spec spec;
    spec.replicas = 0;
    e->admin_client = b::make_test_certificate(e->ca, e->dir, "admin-client", spec.admin.name, false, me);
    e->stranger_client = b::make_test_certificate(e->ca, e->dir, "stranger-client", "stranger", false, me);
    spec.settings = {{"ssl", "on"},
                     {"ssl_cert_file", "'" + e->server.cert.string() + "'"},
                     {"ssl_key_file", "'" + e->server.key.string() + "'"}};
    e->cluster = b::pg_cluster::up(spec);
  }
  return *e;
}

struct tls_setup {
  std::string client_mode = "require";
  std::string client_ca;                  // client_tls_ca_file
  fs::path cert;                          // client_tls_cert_file (default: the server certificate)
  fs::path key;
  std::string server_mode = "verify-full";
  std::string server_ca;                  // server_tls_ca_file (default: the test CA)
  std::string probe_extra = "sslmode=require";
};

std::string tls_toml(const tls_setup& s, std::uint16_t port) {
  auto& e = env();
  auto& c = *e.cluster;
  std::string t = "workers = 2\npool_mode = \"transaction\"\ndefault_pool_size = 4\nauth_type = \"scram-sha-256\"\n";
  t += "\n[listen]\nhost = \"127.0.0.1\"\nport = " + std::to_string(port) + "\n";
  t += "\n[log]\nlevel = \"info\"\n";
  t += "\n[tls]\nclient_tls_mode = " + toml_string(s.client_mode) + "\n";
  t += "client_tls_cert_file = " + toml_string((s.cert.empty() ? e.server.cert : s.cert).string()) + "\n";
  t += "client_tls_key_file = " + toml_string((s.key.empty() ? e.server.key : s.key).string()) + "\n";
  if (!s.client_ca.empty()) t += "client_tls_ca_file = " + toml_string(s.client_ca) + "\n";
  t += "client_tls_handshake_timeout = \"1s\"\n";
  t += "server_tls_mode = " + toml_string(s.server_mode) + "\n";
  if (s.server_mode == "verify-ca" || s.server_mode == "verify-full") {
    t += "server_tls_ca_file = " + toml_string(s.server_ca.empty() ? e.ca.cert.string() : s.server_ca) + "\n";
  }
  t += "\n[users]\n" + toml_string(c.admin().name) + " = " + toml_string(c.admin().password) + "\n";
  const std::string port_text = std::to_string(c.port(c.primary_index()));
  t += "\n[databases." + c.database() + "]\nhost = \"127.0.0.1\"\nport = " + port_text + "\n";
  // Any other database name: a pool of its own, so its first client makes new server logins.
  t += "\n[databases.\"*\"]\nhost = \"127.0.0.1\"\nport = " + port_text + "\n";
  return t;
}

std::unique_ptr<pgsluice_process> start_tls_proxy(const tls_setup& s) {
  auto& c = *env().cluster;
  pgsluice_process::options o;
  o.probe = {c.admin().name, c.admin().password, c.database(), s.probe_extra};
  o.config = [s](std::uint16_t port) { return tls_toml(s, port); };
  return std::make_unique<pgsluice_process>(std::move(o));
}

// pgsluice with TLS required from clients, verify-full towards the server.
pgsluice_process& proxy() {
  static std::unique_ptr<pgsluice_process> p;
  if (!p) p = start_tls_proxy({});
  return *p;
}

// libpq settings to the proxy as the admin user, over TLS verified against `ca`.
std::string tls_conninfo(pgsluice_process& p, const fs::path& ca, const std::string& more = {},
                         const std::string& host = "127.0.0.1") {
  auto& c = *env().cluster;
  return "host=" + host + " port=" + std::to_string(p.port()) + " user=" + c.admin().name + " password=" +
         c.admin().password + " dbname=" + c.database() + " sslmode=verify-full sslrootcert=" + ca.string() +
         " gssencmode=disable connect_timeout=10 " + more;
}

TEST(tls_clients, verify_full_works_by_address_and_by_name) {
  for (const char* host : {"127.0.0.1", "localhost"}) {
    auto conn = connect(tls_conninfo(proxy(), env().ca.cert, "", host));
    EXPECT_EQ(PQsslInUse(conn.get()), 1) << host;
    EXPECT_EQ(conn.scalar("SELECT 'over tls'").value_or(""), "over tls") << host;
  }
}

TEST(tls_clients, a_certificate_from_another_ca_is_refused) {
  const auto r = try_connect(tls_conninfo(proxy(), env().other_ca.cert));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.raw_error.find("certificate verify failed"), std::string::npos) << r.raw_error;
}

TEST(tls_clients, plaintext_is_refused_as_postgresql_words_it) {
  auto& c = *env().cluster;
  const auto r = try_connect(proxy().conninfo(c.admin().name, c.admin().password, c.database()));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.sqlstate, "28000") << r.raw_error;
  EXPECT_EQ(r.message, "no pg_hba.conf entry for host \"127.0.0.1\", user \"" + c.admin().name + "\", database \"" +
                           c.database() + "\", no encryption");
}

// SCRAM-SHA-256-PLUS: libpq insists on channel binding and checks the server's signature over
// the hash of the certificate it received; plain SCRAM-SHA-256 is still there for clients
// that do not bind.
TEST(tls_clients, channel_binding_require_logs_in_with_psql_and_libpq) {
  auto conn = connect(tls_conninfo(proxy(), env().ca.cert, "channel_binding=require"));
  EXPECT_EQ(conn.scalar("SELECT 1").value_or(""), "1");
  auto plain = connect(tls_conninfo(proxy(), env().ca.cert, "channel_binding=disable"));
  EXPECT_EQ(plain.scalar("SELECT 2").value_or(""), "2");

  const auto psql = b::find_program("psql", "postgresql-client");
  const auto out = run_program({psql.string(), "-X", "-At", "-c", "SELECT 'bound'",
                                tls_conninfo(proxy(), env().ca.cert, "channel_binding=require")},
                               {}, 30s);
  EXPECT_EQ(out.status, 0) << out.output;
  EXPECT_EQ(out.output, "bound\n");
}

// Large messages both ways, more than a socket buffer holds: TLS writes that stop half way
// (OpenSSL's retry rule) and the relay's streaming of large messages, on both connections.
TEST(tls_clients, large_messages_both_ways) {
  auto conn = connect(tls_conninfo(proxy(), env().ca.cert));
  const std::string big(3 << 20, 'q');
  EXPECT_EQ(conn.scalar("SELECT length('" + big + "')").value_or(""), std::to_string(big.size()));
  const auto rows = conn.query("SELECT repeat(chr(65 + i % 26), 1000000) FROM generate_series(0, 19) i");
  ASSERT_EQ(rows.size(), 20u);
  for (std::size_t i = 0; i < rows.size(); ++i) {
    EXPECT_EQ(rows[i][0].value_or(""), std::string(1000000, static_cast<char>('A' + i % 26))) << i;
  }
  EXPECT_EQ(conn.scalar("SELECT 'after'").value_or(""), "after");
}

// Server side: every connection pgsluice opened to the server is TLS (verify-full against the
// test CA), as the server itself reports.
TEST(tls_servers, pg_stat_ssl_shows_tls_for_pgsluice_connections) {
  auto conn = connect(tls_conninfo(proxy(), env().ca.cert));
  const auto mine = conn.query("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()");
  ASSERT_EQ(mine.size(), 1u);
  EXPECT_EQ(mine[0][0].value_or(""), "t");
  EXPECT_TRUE(mine[0][1].value_or("").starts_with("TLSv1.")) << mine[0][1].value_or("");
  auto& c = *env().cluster;
  const auto counts = c.exec_sql(c.primary_index(),
                                 "SELECT count(*) FILTER (WHERE s.ssl), count(*) FILTER (WHERE NOT s.ssl) "
                                 "FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) "
                                 "WHERE a.usename = '" + c.admin().name + "' AND a.backend_type = 'client backend'");
  ASSERT_EQ(counts.size(), 1u);
  EXPECT_GE(std::stoi(counts[0][0].value_or("0")), 1);
  EXPECT_EQ(counts[0][1].value_or(""), "0");
}

// --- client certificates -----------------------------------------------------------------------

TEST(tls_client_certificates, verify_full_wants_a_certificate_of_the_user) {
  auto& e = env();
  const std::string admin_cert = "sslcert=" + e.admin_client.cert.string() + " sslkey=" + e.admin_client.key.string();
  tls_setup s;
  s.client_mode = "verify-full";
  s.client_ca = e.ca.cert.string();
  s.server_mode = "prefer";
  s.probe_extra = "sslmode=require " + admin_cert;
  auto p = start_tls_proxy(s);

  auto ok = connect(tls_conninfo(*p, e.ca.cert, admin_cert));
  EXPECT_EQ(ok.scalar("SELECT 'certified'").value_or(""), "certified");

  const auto none = try_connect(tls_conninfo(*p, e.ca.cert));
  EXPECT_FALSE(none.ok());

  const auto stranger = try_connect(tls_conninfo(
      *p, e.ca.cert, "sslcert=" + e.stranger_client.cert.string() + " sslkey=" + e.stranger_client.key.string()));
  ASSERT_FALSE(stranger.ok());
  EXPECT_EQ(stranger.sqlstate, "28000") << stranger.raw_error;
  EXPECT_EQ(stranger.message, "certificate authentication failed for user \"" + e.cluster->admin().name + "\"");
}

// --- reload -----------------------------------------------------------------------------------

TEST(tls_reload, sighup_brings_a_new_certificate_for_new_connections) {
  auto& e = env();
  auto p = start_tls_proxy({});
  auto before = connect(tls_conninfo(*p, e.ca.cert));
  tls_setup next;
  next.cert = e.other_server.cert;
  next.key = e.other_server.key;
  {
    std::ofstream out(p->config_file());
    out << tls_toml(next, p->port());
  }
  ::kill(p->pid(), SIGHUP);
  ASSERT_TRUE(b::poll_until(15s, 50ms, [&] { return try_connect(tls_conninfo(*p, e.other_ca.cert)).ok(); }))
      << "the new certificate never came";
  EXPECT_FALSE(try_connect(tls_conninfo(*p, e.ca.cert)).ok());
  // The session that started before is untouched.
  EXPECT_EQ(before.scalar("SELECT 'still here'").value_or(""), "still here");
}

// Server side, the other way: once the server's certificate is checked against a CA that did
// not sign it, new server logins fail (pgsluice says why) and no plaintext is tried instead.
TEST(tls_reload, a_server_certificate_from_another_ca_is_refused) {
  auto& e = env();
  auto p = start_tls_proxy({});
  tls_setup next;
  next.server_ca = e.other_ca.cert.string();
  {
    std::ofstream out(p->config_file());
    out << tls_toml(next, p->port());
  }
  ::kill(p->pid(), SIGHUP);
  // The pool opened under the old [tls] is retired: its idle connections are not handed out.
  auto& c = *e.cluster;
  const std::string same_db = tls_conninfo(*p, e.ca.cert);
  // A database of its own (the "*" entry): new server logins from the start.
  const std::string other_db = "host=127.0.0.1 port=" + std::to_string(p->port()) + " user=" + c.admin().name +
                               " password=" + c.admin().password + " dbname=postgres sslmode=verify-full sslrootcert=" +
                               e.ca.cert.string() + " gssencmode=disable connect_timeout=10";
  std::string last;
  for (const auto* info : {&same_db, &other_db}) {
    ASSERT_TRUE(b::poll_until(15s, 100ms, [&] {
      const auto r = try_connect(*info);
      last = r.raw_error;
      return !r.ok() && r.message.find("certificate verify failed") != std::string::npos;
    })) << last;
    EXPECT_EQ(try_connect(*info).sqlstate, "08006");
  }
}

// --- hostile input: each bad client is closed, a healthy one is served meanwhile ------------------

std::vector<std::uint8_t> ssl_request() {
  std::vector<std::uint8_t> v;
  put32(v, 8);
  put32(v, 80877103);
  return v;
}

void expect_healthy(pg_raw& kept) {
  ASSERT_TRUE(kept.ok()) << kept.error();
  PGresult* r = PQexec(kept.conn, "SELECT 'healthy'");
  EXPECT_EQ(PQresultStatus(r), PGRES_TUPLES_OK) << PQerrorMessage(kept.conn);
  PQclear(r);
  auto fresh = connect(tls_conninfo(proxy(), env().ca.cert));
  EXPECT_EQ(fresh.scalar("SELECT 'new'").value_or(""), "new");
}

TEST(tls_hostile, a_stalled_handshake_is_closed_after_the_handshake_timeout) {
  pg_raw kept(tls_conninfo(proxy(), env().ca.cert));
  raw_client c(proxy().port());
  ASSERT_TRUE(c.ok());
  c.send(ssl_request());
  const auto answer = c.read_some(1, 10s);
  ASSERT_EQ(answer.size(), 1u);
  EXPECT_EQ(answer[0], 'S');
  c.buffered().clear();
  // While it stalls, others come and go.
  expect_healthy(kept);
  EXPECT_TRUE(c.closed_within(15s)) << "a client that never sent its ClientHello was kept";
  expect_healthy(kept);
}

TEST(tls_hostile, garbage_instead_of_a_client_hello_is_closed) {
  pg_raw kept(tls_conninfo(proxy(), env().ca.cert));
  for (const bool startup_instead : {false, true}) {
    raw_client c(proxy().port());
    ASSERT_TRUE(c.ok());
    c.send(ssl_request());
    ASSERT_EQ(c.read_some(1, 10s).size(), 1u);
    c.buffered().clear();
    c.send(startup_instead ? startup_packet({{"user", env().cluster->admin().name}})
                           : std::vector<std::uint8_t>(300, 0x42));
    EXPECT_TRUE(c.closed_within(15s)) << (startup_instead ? "plaintext startup" : "garbage");
  }
  expect_healthy(kept);
}

TEST(tls_hostile, plaintext_right_behind_the_ssl_request_is_refused) {
  pg_raw kept(tls_conninfo(proxy(), env().ca.cert));
  raw_client c(proxy().port());
  ASSERT_TRUE(c.ok());
  auto bytes = ssl_request();
  const auto startup = startup_packet({{"user", env().cluster->admin().name}, {"database", env().cluster->database()}});
  bytes.insert(bytes.end(), startup.begin(), startup.end());
  c.send(bytes);  // one segment: both are there when pgsluice reads the request
  const auto m = c.read_message(10s);
  ASSERT_TRUE(m) << "no answer";
  EXPECT_EQ(m->first, 'E');
  EXPECT_EQ(error_field(m->second, 'C'), "08P01");
  EXPECT_EQ(error_field(m->second, 'M'), "received unencrypted data after SSL request");
  EXPECT_TRUE(c.closed_within(10s));
  expect_healthy(kept);
}

TEST(tls_hostile, gssenc_is_refused_and_asked_once) {
  raw_client c(proxy().port());
  ASSERT_TRUE(c.ok());
  std::vector<std::uint8_t> gss;
  put32(gss, 8);
  put32(gss, 80877104);
  c.send(gss);
  const auto answer = c.read_some(1, 10s);
  ASSERT_EQ(answer.size(), 1u);
  EXPECT_EQ(answer[0], 'N');
  c.buffered().clear();
  c.send(gss);
  const auto m = c.read_message(10s);
  ASSERT_TRUE(m);
  EXPECT_EQ(error_field(m->second, 'C'), "0A000");
  EXPECT_TRUE(c.closed_within(10s));
}

}  // namespace
}  // namespace pgsluice::test::proxy

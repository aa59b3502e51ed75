// Authentication through pgsluice: client {trust, md5, scram} x server {trust, md5, scram}, pass-through, auth_query, refusals.
//
// Right passwords log in (and run as the right user on the server); wrong ones are refused with
// PostgreSQL's exact FATAL 28P01 wording. With client-side trust pgsluice checks nothing, so the
// "wrong password" case is a wrong password configured for the server: the server's own 28P01
// must reach the client.
#include <map>

#include "tests/integration/proxy_fixture.hpp"

namespace pgsluice::test::proxy {
namespace {

const std::string trust_user = "sluice_trust_auth";

// A server-side user that logs in with trust (pg_hba line ahead of the scram catch-all).
void ensure_trust_user() {
  static bool done = false;
  if (done) return;
  auto& c = cluster();
  const auto primary = c.primary_index();
  c.exec_sql(primary, "DO $$BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '" + trust_user +
                          "') THEN CREATE ROLE " + trust_user + " LOGIN; END IF; END$$");
  const auto hba = c.node(primary).data_dir / "pg_hba.conf";
  const std::string old = b::read_file_text(hba);
  if (old.find(trust_user) == std::string::npos) {
    b::write_service_file(hba, "host all " + trust_user + " 127.0.0.1/32 trust\n" + old, c.os_user());
    c.exec_sql(primary, "SELECT pg_reload_conf()");
    // pg_hba.conf is re-read by the postmaster on SIGHUP: wait until a trust login works.
    ASSERT_TRUE(b::poll_until(std::chrono::seconds(10), std::chrono::milliseconds(50), [&] {
      return try_connect(c.conninfo(primary, trust_user, std::string("x"))).ok();
    }));
  }
  done = true;
}

struct server_user {
  std::string name;
  std::string password;
};

std::vector<server_user> server_users() {
  auto& c = cluster();
  return {{trust_user, "trust-secret"},
          {c.user("sluice_md5").name, c.user("sluice_md5").password},
          {c.user("sluice_scram").name, c.user("sluice_scram").password}};
}

// One pgsluice per client auth type, all with plaintext passwords for every user.
pgsluice_process& proxy_with_auth(const std::string& auth_type) {
  static std::map<std::string, std::unique_ptr<pgsluice_process>> procs;
  auto& slot = procs[auth_type];
  if (!slot) {
    ensure_trust_user();
    auto s = admin_setup("transaction", 2);
    s.auth_type = auth_type;
    for (const auto& u : server_users()) s.users.emplace_back(u.name, u.password);
    slot = start_proxy(s);
  }
  return *slot;
}

struct auth_case {
  std::string client_auth;
  int server_user;  // index into server_users()
};

std::string auth_case_name(const ::testing::TestParamInfo<auth_case>& info) {
  static const char* const server[] = {"server_trust", "server_md5", "server_scram"};
  const std::string client = info.param.client_auth == "scram-sha-256" ? "scram" : info.param.client_auth;
  return "client_" + client + "_" + server[info.param.server_user];
}

class auth_matrix : public ::testing::TestWithParam<auth_case> {};

TEST_P(auth_matrix, right_password_logs_in_as_that_user) {
  const auto& p = GetParam();
  auto& proxy = proxy_with_auth(p.client_auth);
  const auto u = server_users()[p.server_user];
  auto conn = connect(proxy.conninfo(u.name, u.password, cluster().database()));
  EXPECT_EQ(conn.scalar("SELECT current_user").value_or(""), u.name);
}

TEST_P(auth_matrix, wrong_password_is_refused_with_28P01) {
  const auto& p = GetParam();
  const auto u = server_users()[p.server_user];
  auto& c = cluster();
  if (p.client_auth == "trust") {
    if (u.name == trust_user) {
      // Trust on both sides: nothing checks a password, so a wrong one logs in too.
      auto conn = connect(proxy_with_auth("trust").conninfo(u.name, u.password + "-wrong", c.database()));
      EXPECT_EQ(conn.scalar("SELECT current_user").value_or(""), u.name);
      return;
    }
    // pgsluice trusts the client; the password it holds for the server is the wrong one.
    static std::unique_ptr<pgsluice_process> wrong;
    if (!wrong) {
      ensure_trust_user();
      auto s = admin_setup("transaction", 2);
      s.auth_type = "trust";
      for (const auto& x : server_users()) s.users.emplace_back(x.name, x.password + "-wrong");
      wrong = start_proxy(s);
    }
    const auto r = try_connect(wrong->conninfo(u.name, u.password, c.database()));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.sqlstate, "28P01") << r.raw_error;
    EXPECT_EQ(r.message, "password authentication failed for user \"" + u.name + "\"") << r.raw_error;
    return;
  }
  auto& proxy = proxy_with_auth(p.client_auth);
  const auto r = try_connect(proxy.conninfo(u.name, u.password + "x", c.database()));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.severity, "FATAL");
  EXPECT_EQ(r.sqlstate, "28P01") << r.raw_error;
  EXPECT_EQ(r.message, "password authentication failed for user \"" + u.name + "\"") << r.raw_error;
}

INSTANTIATE_TEST_SUITE_P(client_x_server, auth_matrix,
                         ::testing::Values(auth_case{"trust", 0}, auth_case{"trust", 1}, auth_case{"trust", 2},
                                           auth_case{"md5", 0}, auth_case{"md5", 1}, auth_case{"md5", 2},
                                           auth_case{"scram-sha-256", 0}, auth_case{"scram-sha-256", 1},
                                           auth_case{"scram-sha-256", 2}),
                         auth_case_name);

// Only the stored secrets are configured: a SCRAM verifier (pass-through with the client's
// ClientKey) and an MD5 hash (usable as is for the server's md5 challenge).
TEST(auth_secrets, scram_pass_through_and_md5_hash) {
  auto& c = cluster();
  const auto& scram = c.user("sluice_scram");
  const auto& md5 = c.user("sluice_md5");
  // The loader accepts a SCRAM verifier only with auth_type scram-sha-256 and an MD5 hash only
  // with md5 (neither could check the other kind of login).
  for (const auto& [auth, u] : {std::pair{std::string("scram-sha-256"), &scram}, std::pair{std::string("md5"), &md5}}) {
    auto s = admin_setup("transaction", 2);
    s.auth_type = auth;
    s.users.emplace_back(u->name, c.password_secret(u->name));
    auto proxy = start_proxy(s);
    auto conn = connect(proxy->conninfo(u->name, u->password, c.database()));
    EXPECT_EQ(conn.scalar("SELECT current_user").value_or(""), u->name) << auth;
    // A second, concurrent client needs a second server connection: logged in with cached keys.
    auto conn2 = connect(proxy->conninfo(u->name, u->password, c.database()));
    auto tx = conn.query("BEGIN");
    EXPECT_EQ(conn2.scalar("SELECT 1").value_or(""), "1");
    const auto r = try_connect(proxy->conninfo(u->name, "not-" + u->password, c.database()));
    EXPECT_EQ(r.sqlstate, "28P01") << auth << " " << u->name << ": " << r.raw_error;
  }
}

// Users missing from [users] are looked up on the server through auth_user (PgBouncer's auth_query).
TEST(auth_query, users_not_in_the_config_are_found_on_the_server) {
  auto& c = cluster();
  auto s = admin_setup("transaction", 2);
  s.auth_type = "md5";
  s.globals = "auth_user = " + toml_string(c.admin().name) + "\n";
  auto proxy = start_proxy(s);
  for (const char* name : {"sluice_scram", "sluice_md5"}) {
    const auto& u = c.user(name);
    auto conn = connect(proxy->conninfo(u.name, u.password, c.database()));
    EXPECT_EQ(conn.scalar("SELECT current_user").value_or(""), u.name);
    const auto r = try_connect(proxy->conninfo(u.name, u.password + "-no", c.database()));
    EXPECT_EQ(r.sqlstate, "28P01") << r.raw_error;
  }
  const auto r = try_connect(proxy->conninfo("nobody_here", "pw", c.database()));
  EXPECT_EQ(r.sqlstate, "28P01") << r.raw_error;
  EXPECT_EQ(r.message, "password authentication failed for user \"nobody_here\"");
}

TEST(auth_refusals, unknown_user_and_database_as_postgresql_words_them) {
  auto& proxy = proxy_with_auth("scram-sha-256");
  auto& c = cluster();
  auto r = try_connect(proxy.conninfo("no_such_user", "whatever", c.database()));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.sqlstate, "28P01");
  EXPECT_EQ(r.message, "password authentication failed for user \"no_such_user\"");

  const auto& u = c.user("sluice_scram");
  r = try_connect(proxy.conninfo(u.name, u.password, "no_such_db"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.sqlstate, "3D000");
  EXPECT_EQ(r.message, "database \"no_such_db\" does not exist");

  // Wrong password and unknown database: the password is what PostgreSQL reports.
  r = try_connect(proxy.conninfo(u.name, "bad", "no_such_db"));
  EXPECT_EQ(r.sqlstate, "28P01");
}

TEST(auth_refusals, too_many_clients) {
  auto& c = cluster();
  auto s = admin_setup("transaction", 2);
  s.globals = "max_client_conn = 2\n";
  auto proxy = start_proxy(s);
  const auto ci = admin_conninfo(*proxy);
  auto a = connect(ci);
  auto b2 = connect(ci);
  const auto r = try_connect(ci);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.sqlstate, "53300");
  EXPECT_EQ(r.message, "sorry, too many clients already");
  // The two logged-in clients are unaffected; once one leaves, a new one gets in.
  EXPECT_EQ(a.scalar("SELECT 1").value_or(""), "1");
  { auto gone = std::move(b2); }
  EXPECT_TRUE(b::poll_until(std::chrono::seconds(10), std::chrono::milliseconds(50), [&] { return try_connect(ci).ok(); }));
  (void)c;
}

}  // namespace
}  // namespace pgsluice::test::proxy

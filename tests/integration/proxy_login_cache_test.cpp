// Logins that reuse earlier work: SCRAM keys derived once per password (plaintext [users]), auth_query results kept for auth_query_cache_ttl.
//
// What the caches change is seen from outside: the SCRAM salt pgsluice offers a user is the same
// at every login (one derivation) and changes with the password; auth_query runs once per
// lifetime (counted by a sequence the query itself advances). What they must not change: right
// passwords log in, wrong ones get PostgreSQL's 28P01, a password changed by a reload or on the
// server takes effect.
#include <csignal>
#include <string>

#include "tests/integration/proxy_fixture.hpp"

namespace pgsluice::test::proxy {
namespace {

using namespace std::chrono_literals;

const std::string role = "sluice_login_cache";

// A SCRAM role of its own, so that its password can change without disturbing other tests.
void set_role_password(const std::string& password) {
  auto& c = cluster();
  c.exec_sql(c.primary_index(), "DO $$BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '" + role +
                                    "') THEN CREATE ROLE " + role + " LOGIN; END IF; END$$");
  c.exec_sql(c.primary_index(), "SET password_encryption = 'scram-sha-256'; ALTER ROLE " + role + " PASSWORD '" +
                                    password + "'");
}

void expect_refused(const pgsluice_process& p, const std::string& password) {
  const auto r = try_connect(p.conninfo(role, password, cluster().database()));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.sqlstate, "28P01") << r.raw_error;
  EXPECT_EQ(r.message, "password authentication failed for user \"" + role + "\"") << r.raw_error;
}

bool logs_in(const pgsluice_process& p, const std::string& password) {
  auto r = try_connect(p.conninfo(role, password, cluster().database()));
  return r.ok() && r.conn.scalar("SELECT current_user").value_or("") == role;
}

// The salt of the server-first-message pgsluice sends `user` (the exchange is then dropped).
std::string offered_salt(std::uint16_t port, const std::string& user) {
  raw_client cl(port);
  // StartupMessage: length, protocol 3.0, user and database.
  std::string params = std::string("\0\3\0\0", 4) + "user" + '\0' + user + '\0' + "database" + '\0' +
                       cluster().database() + '\0' + '\0';
  std::string startup;
  for (int shift = 24; shift >= 0; shift -= 8) startup.push_back(static_cast<char>(((params.size() + 4) >> shift) & 0xff));
  startup += params;
  if (!cl.ok() || !cl.send(std::vector<std::uint8_t>(startup.begin(), startup.end()))) return "no connection";
  auto sasl = cl.read_message(10s);  // AuthenticationSASL
  if (!sasl || sasl->first != 'R') return "no AuthenticationSASL";
  const std::string first = "n,,n=,r=abcdefghijklmnopqrstuvwx";
  std::string body = "SCRAM-SHA-256";
  body.push_back('\0');
  for (int shift = 24; shift >= 0; shift -= 8) body.push_back(static_cast<char>((first.size() >> shift) & 0xff));
  body += first;
  if (!cl.send(message('p', body))) return "send failed";
  auto cont = cl.read_message(10s);  // AuthenticationSASLContinue: int32 11, then the text
  if (!cont || cont->first != 'R' || cont->second.size() < 4) return "no AuthenticationSASLContinue";
  const std::string text(cont->second.begin() + 4, cont->second.end());
  const auto s = text.find(",s=");
  const auto i = text.find(",i=");
  if (s == std::string::npos || i == std::string::npos) return "no salt in " + text;
  return text.substr(s + 3, i - s - 3);
}

TEST(scram_key_cache, plaintext_password_salt_is_stable_and_changes_with_the_password_on_reload) {
  auto& c = cluster();
  set_role_password("first-secret");
  auto s = admin_setup("transaction", 2);
  s.users.emplace_back(role, "first-secret");
  auto p = start_proxy(s);

  // One derivation for every login: the same salt each time (a fresh one per login before).
  const std::string salt = offered_salt(p->port(), role);
  ASSERT_EQ(salt.size(), 24u) << salt;  // 16 bytes in base64
  EXPECT_EQ(offered_salt(p->port(), role), salt);
  // Another user has a salt of its own.
  EXPECT_NE(offered_salt(p->port(), c.admin().name), salt);

  // The cache never lets a wrong password in, before or after a right one.
  expect_refused(*p, "first-secret-not");
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(logs_in(*p, "first-secret"));
  expect_refused(*p, "first-secret-not");

  // The password changes on the server and in the config; a reload makes the new one the only one.
  set_role_password("second-secret");
  auto next = s;
  next.users.back().second = "second-secret";
  b::write_service_file(p->config_file(), proxy_toml(next, p->port()), b::service_user{});
  ASSERT_EQ(::kill(p->pid(), SIGHUP), 0);
  ASSERT_TRUE(b::poll_until(10s, 20ms, [&] { return logs_in(*p, "second-secret"); }));
  expect_refused(*p, "first-secret");
  const std::string new_salt = offered_salt(p->port(), role);
  EXPECT_NE(new_salt, salt);
  EXPECT_EQ(offered_salt(p->port(), role), new_salt);
  // The servers logged in to with the new password too (a new pool after the reload).
  auto conn = connect(p->conninfo(role, "second-secret", c.database()));
  EXPECT_EQ(conn.scalar("SELECT current_user").value_or(""), role);
}

// auth_query counting its own runs: the FROM subquery is evaluated once per execution.
std::string counting_auth_query() {
  return "SELECT usename, passwd FROM pg_catalog.pg_shadow, (SELECT pg_catalog.nextval('sluice_auth_query_runs')) AS n "
         "WHERE usename = $1";
}

std::int64_t auth_query_runs() {
  auto& c = cluster();
  const auto rows = c.exec_sql(c.primary_index(), "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM sluice_auth_query_runs", c.database());
  return std::stoll(rows.at(0).at(0).value_or("0"));
}

std::unique_ptr<pgsluice_process> auth_query_proxy(const std::string& ttl) {
  auto& c = cluster();
  c.exec_sql(c.primary_index(), "CREATE SEQUENCE IF NOT EXISTS sluice_auth_query_runs", c.database());
  auto s = admin_setup("transaction", 2);
  s.globals = "auth_user = " + toml_string(c.admin().name) + "\nauth_query = " + toml_string(counting_auth_query()) +
              "\nauth_query_cache_ttl = " + toml_string(ttl) + "\n";
  return start_proxy(s);
}

TEST(auth_query_cache, secret_is_reused_within_its_lifetime_and_forgotten_after_a_failed_login) {
  set_role_password("aq-one");
  auto p = auth_query_proxy("1h");
  const auto before = auth_query_runs();
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(logs_in(*p, "aq-one"));
  EXPECT_EQ(auth_query_runs() - before, 1);

  // A wrong password is refused with the reused secret, and the secret is forgotten.
  expect_refused(*p, "aq-wrong");
  EXPECT_TRUE(logs_in(*p, "aq-one"));
  EXPECT_EQ(auth_query_runs() - before, 2);

  // Changed on the server: the first try with the new password fails on the old secret, which
  // then goes; the next try asks the server and gets in. The old password no longer works.
  set_role_password("aq-two");
  expect_refused(*p, "aq-two");
  EXPECT_TRUE(logs_in(*p, "aq-two"));
  expect_refused(*p, "aq-one");
  // Users auth_query does not find are asked for every time (a new role can log in at once).
  const auto r = try_connect(p->conninfo("sluice_nobody_at_all", "x", cluster().database()));
  EXPECT_EQ(r.sqlstate, "28P01") << r.raw_error;
}

TEST(auth_query_cache, new_password_works_once_the_lifetime_is_over) {
  set_role_password("ttl-one");
  auto p = auth_query_proxy("1s");
  ASSERT_TRUE(logs_in(*p, "ttl-one"));
  const auto after_first = auth_query_runs();
  set_role_password("ttl-two");
  // No failed login forgets the secret here: the next query runs once the lifetime is over, and
  // from then on the new password logs in.
  ASSERT_TRUE(b::poll_until(20s, 100ms, [&] {
    (void)try_connect(p->conninfo(role, "ttl-one", cluster().database()));
    return auth_query_runs() > after_first;
  }));
  EXPECT_TRUE(logs_in(*p, "ttl-two"));
  expect_refused(*p, "ttl-one");
}

TEST(auth_query_cache, zero_lifetime_runs_auth_query_at_every_login) {
  set_role_password("zero-one");
  auto p = auth_query_proxy("0s");
  const auto before = auth_query_runs();
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(logs_in(*p, "zero-one"));
  EXPECT_EQ(auth_query_runs() - before, 3);
}

}  // namespace
}  // namespace pgsluice::test::proxy

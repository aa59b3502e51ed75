// Unit tests of conf/: defaults, example configs, value parsing, override resolution, reload restrictions, check output.
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "conf/check.hpp"
#include "conf/config.hpp"
#include "conf/loading.hpp"
#include "conf/schema.hpp"

namespace pgsluice::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using conf::load_config_from_string;

const fs::path source_dir = PGSLUICE_SOURCE_DIR;
const fs::path examples_dir = source_dir / "conf/examples";

// The least a valid config needs.
constexpr std::string_view minimal = R"(
[users]
app = "app-secret"
[databases.app]
host = "127.0.0.1"
)";

std::string with(std::string_view head, std::string_view tail = "") {
  return std::string(head) + "\n" + std::string(minimal) + std::string(tail);
}

// The problems of a config that must fail, as text.
std::string problems_of(const std::string& text) {
  try {
    load_config_from_string(text, "t.toml");
  } catch (const conf::config_error& e) {
    return e.what();
  }
  return "(loaded)";
}

// --- defaults -------------------------------------------------------------------

TEST(conf_defaults, match_pgbouncer_where_documented) {
  const auto c = load_config_from_string(minimal, "t.toml");
  ASSERT_EQ(c->listen.size(), 1u);
  EXPECT_EQ(c->listen[0].host, "127.0.0.1");
  EXPECT_EQ(c->listen[0].port, 6432);
  EXPECT_EQ(c->workers, 0u);
  // Automatic: half the cores, at least one; an explicit count is taken as it is.
  EXPECT_EQ(c->effective_workers(), std::max(1u, std::thread::hardware_concurrency() / 2));
  auto three = *c;
  three.workers = 3;
  EXPECT_EQ(three.effective_workers(), 3u);
  EXPECT_EQ(c->pool_mode, conf::pool_mode::session);
  EXPECT_EQ(c->default_pool_size, 20u);
  EXPECT_EQ(c->min_pool_size, 0u);
  EXPECT_EQ(c->reserve_pool_size, 0u);
  EXPECT_EQ(c->max_client_conn, 100u);
  EXPECT_EQ(c->max_db_connections, 0u);
  EXPECT_EQ(c->query_wait_timeout, 120s);
  EXPECT_EQ(c->server_idle_timeout, 600s);
  EXPECT_EQ(c->server_lifetime, 3600s);
  EXPECT_EQ(c->client_login_timeout, 60s);
  EXPECT_EQ(c->server_connect_timeout, 15s);
  EXPECT_EQ(c->client_idle_timeout, 0s);
  EXPECT_EQ(c->max_message_size, 64u << 20);
  EXPECT_EQ(c->auth_type, conf::auth_type::scram_sha_256);
  EXPECT_EQ(c->server_reset_query, "DISCARD ALL");
  EXPECT_FALSE(c->server_reset_query_always);
  EXPECT_EQ(c->max_prepared_statements, 200u);
  EXPECT_EQ(c->metrics.port, 0);
  EXPECT_EQ(c->tls.client_tls_mode, conf::tls_mode::disable);
  EXPECT_EQ(c->log.level, conf::log_level::info);
  EXPECT_TRUE(c->warnings.empty());
}

TEST(conf_defaults, loaded_values_equal_the_struct_defaults) {
  const auto c = load_config_from_string(minimal, "t.toml");
  for (const auto& s : conf::current_settings(*c)) EXPECT_EQ(s.value, s.default_value) << s.key;
}

TEST(conf_defaults, database_shorthand_is_one_primary_on_5432) {
  const auto c = load_config_from_string(minimal, "t.toml");
  ASSERT_EQ(c->databases.size(), 1u);
  const auto& db = c->databases[0];
  EXPECT_EQ(db.name, "app");
  EXPECT_EQ(db.dbname, "app");
  ASSERT_EQ(db.backends.size(), 1u);
  EXPECT_EQ(db.backends[0].host, "127.0.0.1");
  EXPECT_EQ(db.backends[0].port, 5432);
  EXPECT_EQ(db.backends[0].role, conf::backend_role::primary);
  EXPECT_EQ(db.primary(), &db.backends[0]);
  EXPECT_FALSE(db.user.has_value());
  EXPECT_FALSE(db.pool_size.has_value());
}

// --- example configs ---------------------------------------------------------------

TEST(conf_examples, every_example_loads_without_warnings) {
  std::size_t count = 0;
  for (const auto& entry : fs::directory_iterator(examples_dir)) {
    if (entry.path().extension() != ".toml") continue;
    ++count;
    try {
      const auto c = conf::load_config(entry.path());
      EXPECT_FALSE(c->databases.empty()) << entry.path();
      EXPECT_TRUE(c->warnings.empty()) << entry.path();
      EXPECT_EQ(c->source, entry.path());
    } catch (const conf::config_error& e) {
      ADD_FAILURE() << entry.path() << ":\n" << e.what();
    }
  }
  EXPECT_GE(count, 2u);
}

TEST(conf_examples, reference_example_sets_every_global_to_its_default) {
  const auto c = conf::load_config(examples_dir / "pgsluice.toml");
  for (const auto& s : conf::current_settings(*c)) EXPECT_EQ(s.value, s.default_value) << s.key;
}

TEST(conf_examples, reference_example_mentions_every_key) {
  std::ifstream in(examples_dir / "pgsluice.toml");
  std::stringstream text;
  text << in.rdbuf();
  const std::string body = text.str();
  for (const auto& s : conf::describe_settings()) {
    // Only the last part of the key is written in the file ("pool_size" under [databases.app]).
    const std::string leaf = s.key.substr(s.key.find_last_of('.') + 1);
    EXPECT_NE(body.find(leaf + " ="), std::string::npos) << s.key << " is not in pgsluice.toml";
  }
}

TEST(conf_examples, transaction_pooling_resolves_overrides) {
  const auto c = conf::load_config(examples_dir / "transaction-pooling.toml");
  const auto* shop = c->find_database("shop");
  const auto* batch = c->find_user("batch");
  ASSERT_NE(shop, nullptr);
  ASSERT_NE(batch, nullptr);
  EXPECT_EQ(c->effective_pool_mode(*shop, c->find_user("shop")), conf::pool_mode::transaction);
  EXPECT_EQ(c->effective_pool_mode(*shop, batch), conf::pool_mode::session);
  EXPECT_EQ(c->effective_pool(*shop, batch).pool_size, 4u);
}

// --- durations and sizes --------------------------------------------------------------

TEST(conf_values, durations) {
  EXPECT_EQ(conf::parse_duration("30s"), 30s);
  EXPECT_EQ(conf::parse_duration("500ms"), 500ms);
  EXPECT_EQ(conf::parse_duration("5m"), 5min);
  EXPECT_EQ(conf::parse_duration("5min"), 5min);
  EXPECT_EQ(conf::parse_duration("2h"), 2h);
  EXPECT_EQ(conf::parse_duration("1d"), 24h);
  EXPECT_EQ(conf::parse_duration("1500"), 1500ms);
  EXPECT_EQ(conf::parse_duration("10 s"), 10s);
  EXPECT_EQ(conf::parse_duration("0"), 0ms);
  for (std::string_view bad : {"", "s", "-5s", "1.5s", "10 sec", "5M", "10s ", "99999999999999999999s",
                               "9223372036854775807d"}) {
    EXPECT_FALSE(conf::parse_duration(bad).has_value()) << bad;
  }
}

TEST(conf_values, durations_format_round_trip) {
  EXPECT_EQ(conf::format_duration(0ms), "0");
  EXPECT_EQ(conf::format_duration(90s), "90s");
  EXPECT_EQ(conf::format_duration(120s), "2min");
  EXPECT_EQ(conf::format_duration(1500ms), "1500ms");
  EXPECT_EQ(conf::format_duration(48h), "2d");
  for (conf::duration d : {1ms, 999ms, 1000ms, 1000ms * 61, 3'600'000ms, 86'400'000ms}) {
    EXPECT_EQ(conf::parse_duration(conf::format_duration(d)), d);
  }
}

TEST(conf_values, durations_in_config_accept_integers_as_milliseconds) {
  const auto c = load_config_from_string(with("query_wait_timeout = 2500\nserver_lifetime = \"5m\""), "t.toml");
  EXPECT_EQ(c->query_wait_timeout, 2500ms);
  EXPECT_EQ(c->server_lifetime, 5min);
}

TEST(conf_values, sizes) {
  EXPECT_EQ(conf::parse_size("64MiB"), 64u << 20);
  EXPECT_EQ(conf::parse_size("64MB"), 64u << 20);
  EXPECT_EQ(conf::parse_size("512kB"), 512u << 10);
  EXPECT_EQ(conf::parse_size("1GB"), 1u << 30);
  EXPECT_EQ(conf::parse_size("100"), 100u);
  EXPECT_FALSE(conf::parse_size("64 megs").has_value());
  EXPECT_FALSE(conf::parse_size("-1MB").has_value());
  EXPECT_EQ(conf::format_size(64u << 20), "64MiB");
  EXPECT_EQ(conf::format_size(1000), "1000B");
  const auto c = load_config_from_string(with("max_message_size = \"1GB\""), "t.toml");
  EXPECT_EQ(c->max_message_size, 1u << 30);
}

// --- passwords -------------------------------------------------------------------------

// pg_authid-style verifier for "report-secret", salt "pgsluice-example", 4096 iterations.
constexpr std::string_view scram_verifier =
    "SCRAM-SHA-256$4096:cGdzbHVpY2UtZXhhbXBsZQ==$CzfrNZeVE99R1ESz5k/Xc0SOYGw33XCAXkLU2/JjBDk=:"
    "MB08/F4+FxfHmXb8HtGFuF7LVz8d7umSXUV01Rjpgv8=";

TEST(conf_secrets, kinds_detected_as_postgresql_does) {
  using conf::secret_kind;
  EXPECT_EQ(conf::detect_secret_kind(""), secret_kind::none);
  EXPECT_EQ(conf::detect_secret_kind("secret"), secret_kind::plaintext);
  EXPECT_EQ(conf::detect_secret_kind("md5571c0c2fe9ae5e2c5f2a88d6bc0d98e3"), secret_kind::md5);
  // Upper-case hex or a wrong length is not an md5 hash for PostgreSQL either.
  EXPECT_EQ(conf::detect_secret_kind("md5571C0C2FE9AE5E2C5F2A88D6BC0D98E3"), secret_kind::plaintext);
  EXPECT_EQ(conf::detect_secret_kind("md5571c0c2fe9ae5e2c5f2a88d6bc0d98e"), secret_kind::plaintext);
  EXPECT_EQ(conf::detect_secret_kind(scram_verifier), secret_kind::scram_sha_256);
  EXPECT_EQ(conf::detect_secret_kind("SCRAM-SHA-256$0:c2FsdA==$CzfrNZeVE99R1ESz5k/Xc0SOYGw33XCAXkLU2/JjBDk=:"
                                     "MB08/F4+FxfHmXb8HtGFuF7LVz8d7umSXUV01Rjpgv8="),
            secret_kind::plaintext);
  EXPECT_EQ(conf::detect_secret_kind("SCRAM-SHA-256$4096:c2FsdA==$c3RvcmVk:c2VydmVy"), secret_kind::plaintext);
}

TEST(conf_secrets, auth_type_must_suit_every_password) {
  const std::string users = std::string("[users]\nplain = \"secret\"\nverifier = \"") + std::string(scram_verifier) +
                            "\"\nhashed = \"md5571c0c2fe9ae5e2c5f2a88d6bc0d98e3\"\n[databases.app]\nhost = \"h\"\n";
  const std::string scram = problems_of("auth_type = \"scram-sha-256\"\n" + users);
  EXPECT_NE(scram.find("user 'hashed' has only an md5 hash"), std::string::npos) << scram;
  EXPECT_EQ(scram.find("'verifier'"), std::string::npos) << scram;
  const std::string md5 = problems_of("auth_type = \"md5\"\n" + users);
  EXPECT_NE(md5.find("user 'verifier' has only a SCRAM verifier"), std::string::npos) << md5;
  EXPECT_EQ(md5.find("'hashed'"), std::string::npos) << md5;
  const auto trust = load_config_from_string("auth_type = \"trust\"\n" + users, "t.toml");
  EXPECT_EQ(trust->find_user("plain")->password_kind, conf::secret_kind::plaintext);
  EXPECT_EQ(trust->find_user("hashed")->password_kind, conf::secret_kind::md5);
  EXPECT_EQ(trust->find_user("verifier")->password_kind, conf::secret_kind::scram_sha_256);
  EXPECT_EQ(trust->find_user("verifier")->password, scram_verifier);
}

TEST(conf_secrets, users_without_password_allowed_with_auth_query_or_trust) {
  const std::string db = "[databases.app]\nhost = \"h\"\n";
  EXPECT_NO_THROW(load_config_from_string("auth_type = \"trust\"\n[users.app]\npool_size = 3\n" + db, "t.toml"));
  EXPECT_NO_THROW(load_config_from_string(
      "auth_user = \"auth\"\n[users.app]\npool_size = 3\n[users.auth]\npassword = \"x\"\n" + db, "t.toml"));
}

// --- lookups and overrides ---------------------------------------------------------------

constexpr std::string_view overrides = R"(
pool_mode = "session"
default_pool_size = 20
min_pool_size = 1
reserve_pool_size = 2
max_db_connections = 100
max_user_connections = 50
[users]
plain = "x"
[users.tx]
password = "x"
pool_mode = "transaction"
pool_size = 7
max_user_connections = 9
[databases.a]
host = "h"
[databases.b]
host = "h"
dbname = "bee"
pool_mode = "transaction"
pool_size = 30
min_pool_size = 3
reserve_pool_size = 4
max_db_connections = 0
[databases.c]
host = "h"
pool_mode = "session"
)";

TEST(conf_overrides, user_wins_over_database_wins_over_global) {
  const auto c = load_config_from_string(overrides, "t.toml");
  const auto* a = c->find_database("a");
  const auto* b = c->find_database("b");
  const auto* cc = c->find_database("c");
  const auto* plain = c->find_user("plain");
  const auto* tx = c->find_user("tx");
  ASSERT_TRUE(a && b && cc && plain && tx);

  auto s = c->effective_pool(*a, plain);
  EXPECT_EQ(s.pool_mode, conf::pool_mode::session);
  EXPECT_EQ(s.pool_size, 20u);
  EXPECT_EQ(s.min_pool_size, 1u);
  EXPECT_EQ(s.reserve_pool_size, 2u);
  EXPECT_EQ(s.max_db_connections, 100u);
  EXPECT_EQ(s.max_user_connections, 50u);

  s = c->effective_pool(*b, plain);
  EXPECT_EQ(s.pool_mode, conf::pool_mode::transaction);
  EXPECT_EQ(s.pool_size, 30u);
  EXPECT_EQ(s.min_pool_size, 3u);
  EXPECT_EQ(s.reserve_pool_size, 4u);
  EXPECT_EQ(s.max_db_connections, 0u);

  s = c->effective_pool(*cc, tx);
  EXPECT_EQ(s.pool_mode, conf::pool_mode::transaction);  // user over database "session"
  EXPECT_EQ(s.pool_size, 7u);
  EXPECT_EQ(s.max_user_connections, 9u);

  s = c->effective_pool(*a, nullptr);  // a user known only through auth_query
  EXPECT_EQ(s.pool_mode, conf::pool_mode::session);
  EXPECT_EQ(s.pool_size, 20u);
}

TEST(conf_overrides, find_database_exact_then_wildcard) {
  const auto c = load_config_from_string(overrides, "t.toml");
  EXPECT_EQ(c->find_database("b")->backend_dbname("b"), "bee");
  EXPECT_EQ(c->find_database("zzz"), nullptr);
  EXPECT_EQ(c->find_user("nobody"), nullptr);

  const auto w = load_config_from_string(with("", "[databases.\"*\"]\nhost = \"other\"\n"), "t.toml");
  ASSERT_NE(w->find_database("app"), nullptr);
  EXPECT_EQ(w->find_database("app")->name, "app");
  const auto* any = w->find_database("reports");
  ASSERT_NE(any, nullptr);
  EXPECT_EQ(any->name, "*");
  EXPECT_EQ(any->backend_dbname("reports"), "reports");
  EXPECT_EQ(any->backends[0].host, "other");
}

// --- errors ------------------------------------------------------------------------------

TEST(conf_errors, every_problem_is_reported_at_once_in_file_order) {
  const std::string text = R"(default_pool_size = -3
pool_mode = "statement"
[users]
app = "x"
[databases.app]
host = "h"
pool_sise = 4
)";
  try {
    load_config_from_string(text, "bad.toml");
    FAIL() << "loaded";
  } catch (const conf::config_error& e) {
    ASSERT_EQ(e.problems().size(), 3u) << e.what();
    EXPECT_EQ(e.problems()[0].to_string(), "bad.toml:1: key 'default_pool_size': must be between 1 and 100000 (got -3)");
    EXPECT_EQ(e.problems()[1].line, 2u);
    EXPECT_EQ(e.problems()[1].key, "pool_mode");
    EXPECT_EQ(e.problems()[2].line, 7u);
    EXPECT_EQ(e.problems()[2].key, "databases.app.pool_sise");
    EXPECT_EQ(std::string(e.what()),
              e.problems()[0].to_string() + "\n" + e.problems()[1].to_string() + "\n" + e.problems()[2].to_string());
  }
}

TEST(conf_errors, syntax_error_has_line_and_column) {
  try {
    load_config_from_string("[users]\napp = \"x\"\n[databases.app\nhost = \"h\"\n", "s.toml");
    FAIL() << "loaded";
  } catch (const conf::config_error& e) {
    ASSERT_EQ(e.problems().size(), 1u);
    const auto& p = e.problems()[0];
    EXPECT_EQ(p.line, 3u);
    EXPECT_GT(p.column, 0u);
    EXPECT_TRUE(p.key.empty());
    EXPECT_TRUE(p.to_string().starts_with("s.toml:3:" + std::to_string(p.column) + ": TOML syntax error")) << p.to_string();
  }
}

TEST(conf_errors, missing_file_and_directory) {
  try {
    conf::load_config("/nonexistent/pgsluice.toml");
    FAIL() << "loaded";
  } catch (const conf::config_error& e) {
    EXPECT_EQ(std::string(e.what()), "/nonexistent/pgsluice.toml: config file not found");
  }
  EXPECT_THROW(conf::load_config(examples_dir), conf::config_error);
}

// --- keys not supported yet ----------------------------------------------------------

// Written at their defaults they ask for nothing, so they load (a generated or copied
// reference config keeps working).
TEST(conf_unsupported, defaults_written_out_are_accepted) {
  const auto c = load_config_from_string(with("query_timeout = 0",
                                              "[log]\nformat = \"text\"\n"
                                              "[admin]\nadmin_users = []\nstats_users = []\n"
                                              "[metrics]\nhost = \"127.0.0.1\"\nport = 0\npath = \"/metrics\"\n"
                                              "[tls]\nclient_tls_mode = \"disable\"\nserver_tls_mode = \"disable\"\n"
                                              "client_tls_cert_file = \"\"\n"
                                              "[databases.one]\nbackends = [{ host = \"h\", role = \"primary\", weight = 1 }]\n"),
                                         "t.toml");
  EXPECT_TRUE(c->warnings.empty());
  const auto* one = c->find_database("one");
  ASSERT_NE(one, nullptr);
  ASSERT_EQ(one->backends.size(), 1u);
  EXPECT_EQ(one->primary(), &one->backends[0]);
}

// The problems of `text`, which must fail with exactly `want` (line, key), in order, each
// refused as not supported yet.
std::vector<conf::config_problem> refusals_of(const std::string& text,
                                              const std::vector<std::pair<std::uint32_t, std::string>>& want) {
  try {
    load_config_from_string(text, "u.toml");
  } catch (const conf::config_error& e) {
    const auto& p = e.problems();
    EXPECT_EQ(p.size(), want.size()) << e.what();
    for (std::size_t i = 0; i < p.size() && i < want.size(); ++i) {
      EXPECT_EQ(p[i].line, want[i].first) << p[i].to_string();
      EXPECT_EQ(p[i].key, want[i].second) << p[i].to_string();
      EXPECT_TRUE(p[i].message.starts_with("not supported yet: ")) << p[i].to_string();
    }
    return p;
  }
  ADD_FAILURE() << "loaded";
  return {};
}

// Anything else is refused, every key on its own line, all in one run; nothing is
// accepted and ignored.
TEST(conf_unsupported, other_values_are_refused_naming_key_and_line) {
  const std::string text = R"(query_timeout = "30s"
[log]
format = "json"
[admin]
admin_users = ["app"]
[metrics]
port = 9127
[users]
app = "x"
[databases.app]
host = "h"
)";
  const auto p = refusals_of(text, {{1, "query_timeout"},
                                    {3, "log.format"},
                                    {5, "admin.admin_users"},
                                    {7, "metrics.port"}});
  ASSERT_EQ(p.size(), 4u);
  EXPECT_EQ(p[3].to_string(), "u.toml:7: key 'metrics.port': not supported yet: pgsluice has no /metrics endpoint in this version");
}

// The keys of read/write routing, refused together while conf::detail::routing_supported is false.
const std::set<std::string> routing_keys = {
    "read_write_split", "load_balance", "primary_reads", "max_replica_lag", "consistency", "primary_after_write_for",
    "read_your_writes_wait", "write_functions", "target_session_attrs", "lag_check_interval",
    "databases.<name>.read_write_split", "databases.<name>.load_balance", "databases.<name>.primary_reads",
    "databases.<name>.max_replica_lag", "databases.<name>.consistency", "databases.<name>.primary_after_write_for",
    "databases.<name>.read_your_writes_wait", "databases.<name>.write_functions",
    "databases.<name>.target_session_attrs", "users.<name>.target_session_attrs",
    "databases.<name>.backends[].role", "databases.<name>.backends[].weight"};

TEST(conf_unsupported, docs_mark_them) {
  for (const auto& d : conf::describe_settings()) {
    const bool marked = d.description.find("(not supported yet") != std::string::npos;
    const bool unsupported = d.key == "query_timeout" || d.key == "log.format" || d.key.starts_with("admin.") ||
                             d.key.starts_with("metrics.") ||
                             (!conf::detail::routing_supported && routing_keys.count(d.key) != 0);
    EXPECT_EQ(marked, unsupported) << d.key << ": " << d.description;
  }
  for (const auto& k : routing_keys) {
    const auto docs = conf::describe_settings();
    EXPECT_TRUE(std::any_of(docs.begin(), docs.end(), [&](const auto& d) { return d.key == k; })) << k;
  }
}

// --- read/write routing: the keys as they load once the switch is on -----------------------

std::shared_ptr<const conf::config> load_routed(const std::string& text) {
  return conf::detail::load_config_from_string(text, "r.toml", conf::detail::load_options{true});
}

std::string routed_problems_of(const std::string& text) {
  try {
    load_routed(text);
  } catch (const conf::config_error& e) {
    return e.what();
  }
  return "(loaded)";
}

constexpr std::string_view replicated = R"(
[users]
app = "x"
[databases.app]
backends = [{ host = "p" },
            { host = "r1", role = "replica", weight = 2 },
            { host = "r2", role = "replica", port = 5433, weight = 0 }]
)";

std::string routed(std::string_view head, std::string_view tail = "") {
  return std::string(head) + "\n" + std::string(replicated) + std::string(tail);
}

TEST(conf_routing, defaults) {
  const auto c = load_routed(routed("", "[databases.single]\nhost = \"h\"\n"));
  EXPECT_FALSE(c->read_write_split.has_value());
  EXPECT_EQ(c->load_balance, conf::load_balance::round_robin);
  EXPECT_EQ(c->primary_reads, conf::primary_reads::fallback);
  EXPECT_EQ(c->max_replica_lag, (conf::replica_lag{0, 0ms}));
  EXPECT_EQ(c->consistency, conf::consistency::read_your_writes);
  EXPECT_EQ(c->primary_after_write_for, 1s);
  EXPECT_EQ(c->read_your_writes_wait, 0ms);
  EXPECT_TRUE(c->write_functions.empty());
  EXPECT_EQ(c->target_session_attrs, conf::target_session_attrs::any);
  EXPECT_EQ(c->lag_check_interval, 500ms);

  const auto* app = c->find_database("app");
  ASSERT_NE(app, nullptr);
  ASSERT_EQ(app->backends.size(), 3u);
  EXPECT_EQ(app->backends[0].role, conf::backend_role::primary);
  EXPECT_EQ(app->backends[1].role, conf::backend_role::replica);
  EXPECT_EQ(app->backends[1].weight, 2u);
  EXPECT_EQ(app->backends[2].port, 5433);
  EXPECT_EQ(app->backends[2].weight, 0u);
  EXPECT_EQ(app->primary(), &app->backends[0]);
  EXPECT_TRUE(app->has_replicas());

  const auto r = c->effective_routing(*app, c->find_user("app"));
  EXPECT_TRUE(r.read_write_split);  // the database lists replicas
  EXPECT_EQ(r.load_balance, conf::load_balance::round_robin);
  EXPECT_EQ(r.primary_reads, conf::primary_reads::fallback);
  EXPECT_EQ(r.max_replica_lag, (conf::replica_lag{0, 0ms}));
  EXPECT_EQ(r.consistency, conf::consistency::read_your_writes);
  EXPECT_EQ(r.primary_after_write_for, 1s);
  EXPECT_EQ(r.read_your_writes_wait, 0ms);
  EXPECT_EQ(r.target_session_attrs, conf::target_session_attrs::any);
  EXPECT_EQ(r.lag_check_interval, 500ms);
  EXPECT_FALSE(c->effective_routing(*c->find_database("single"), nullptr).read_write_split);
}

TEST(conf_routing, database_wins_over_global_and_user_over_database) {
  const auto c = load_routed(routed(R"(read_write_split = false
load_balance = "least_connections"
primary_reads = "always"
max_replica_lag = ["16MB", "2s"]
consistency = "primary_after_write"
primary_after_write_for = "3s"
read_your_writes_wait = "200ms"
write_functions = ["audit_insert", "app.next_ticket"]
target_session_attrs = "prefer-standby"
lag_check_interval = "1s"
[users.ro]
password = "x"
target_session_attrs = "read-only"
)",
                                    R"(read_write_split = true
load_balance = "random"
max_replica_lag = "1MB"
consistency = "eventual"
write_functions = ["only_here"]
target_session_attrs = "standby"
[databases.plain]
backends = [{ host = "p2" }, { host = "r3", role = "replica" }]
)"));
  const auto* app = c->find_database("app");
  const auto* plain = c->find_database("plain");
  ASSERT_TRUE(app && plain);

  auto r = c->effective_routing(*plain, nullptr);  // everything from the globals
  EXPECT_FALSE(r.read_write_split);                // explicitly off, replicas or not
  EXPECT_EQ(r.load_balance, conf::load_balance::least_connections);
  EXPECT_EQ(r.primary_reads, conf::primary_reads::always);
  EXPECT_EQ(r.max_replica_lag, (conf::replica_lag{16u << 20, 2s}));
  EXPECT_EQ(r.consistency, conf::consistency::primary_after_write);
  EXPECT_EQ(r.primary_after_write_for, 3s);
  EXPECT_EQ(r.read_your_writes_wait, 200ms);
  EXPECT_EQ(r.write_functions, (std::vector<std::string>{"audit_insert", "app.next_ticket"}));
  EXPECT_EQ(r.target_session_attrs, conf::target_session_attrs::prefer_standby);
  EXPECT_EQ(r.lag_check_interval, 1s);

  r = c->effective_routing(*app, c->find_user("app"));  // the database's own, else the globals
  EXPECT_TRUE(r.read_write_split);
  EXPECT_EQ(r.load_balance, conf::load_balance::random);
  EXPECT_EQ(r.primary_reads, conf::primary_reads::always);
  EXPECT_EQ(r.max_replica_lag, (conf::replica_lag{1u << 20, 0ms}));  // replaces both limits
  EXPECT_EQ(r.consistency, conf::consistency::eventual);
  EXPECT_EQ(r.primary_after_write_for, 3s);
  EXPECT_EQ(r.write_functions, (std::vector<std::string>{"only_here"}));
  EXPECT_EQ(r.target_session_attrs, conf::target_session_attrs::standby);

  r = c->effective_routing(*app, c->find_user("ro"));
  EXPECT_EQ(r.target_session_attrs, conf::target_session_attrs::read_only);
}

TEST(conf_routing, max_replica_lag_forms) {
  const std::pair<std::string, conf::replica_lag> forms[] = {
      {"0", {0, 0ms}},
      {"\"0\"", {0, 0ms}},
      {"\"16MB\"", {16u << 20, 0ms}},
      {"\"512kB\"", {512u << 10, 0ms}},
      {"\"2s\"", {0, 2s}},
      {"\"250ms\"", {0, 250ms}},
      {"[\"16MB\", \"2s\"]", {16u << 20, 2s}},
      {"[\"2s\", \"1GB\"]", {1u << 30, 2s}},
      {"[\"2s\"]", {0, 2s}},
  };
  for (const auto& [text, want] : forms) {
    const auto c = load_routed(routed("max_replica_lag = " + text));
    EXPECT_EQ(c->max_replica_lag, want) << text;
    EXPECT_EQ(c->effective_routing(c->databases[0], nullptr).max_replica_lag, want) << text;
  }
  // Rendered back in the same forms (SHOW CONFIG, --defaults).
  const auto c = load_routed(routed("max_replica_lag = [\"16MB\", \"2s\"]"));
  for (const auto& s : conf::current_settings(*c)) {
    if (s.key == "max_replica_lag") {
      EXPECT_EQ(s.value, "[\"16MiB\", \"2s\"]");
      EXPECT_EQ(s.default_value, "0");
    }
  }
}

TEST(conf_routing, bad_values_name_key_and_line) {
  const std::pair<std::string, std::string> cases[] = {
      {"max_replica_lag = 100", "r.toml:1: key 'max_replica_lag': must be a size of WAL such as \"16MB\""},
      {"max_replica_lag = \"100\"", "r.toml:1: key 'max_replica_lag': needs a unit"},
      {"max_replica_lag = \"2 weeks\"", "r.toml:1: key 'max_replica_lag': must be a size of WAL"},
      {"max_replica_lag = [\"1MB\", \"2MB\"]", "r.toml:1: key 'max_replica_lag[1]': gives the WAL size twice"},
      {"max_replica_lag = [\"1s\", \"2s\"]", "r.toml:1: key 'max_replica_lag[1]': gives the replay delay twice"},
      {"max_replica_lag = []", "r.toml:1: key 'max_replica_lag': must be a size of WAL"},
      {"max_replica_lag = \"2d\"", "r.toml:1: key 'max_replica_lag': must be at most 1d of replay delay"},
      {"load_balance = \"round-robin\"", "r.toml:1: key 'load_balance': must be one of \"round_robin\", "
                                        "\"least_connections\", \"random\" (got \"round-robin\"); did you mean "
                                        "\"round_robin\"?"},
      {"primary_reads = \"sometimes\"", "r.toml:1: key 'primary_reads': must be one of \"never\", \"fallback\", \"always\""},
      {"consistency = \"strong\"", "r.toml:1: key 'consistency': must be one of \"read_your_writes\""},
      {"target_session_attrs = \"read_write\"", "did you mean \"read-write\"?"},
      {"read_write_split = \"yes\"", "r.toml:1: key 'read_write_split': must be true or false (got a string)"},
      {"primary_after_write_for = \"-1s\"", "r.toml:1: key 'primary_after_write_for': must be a duration"},
      {"lag_check_interval = \"5ms\"", "r.toml:1: key 'lag_check_interval': must be between 10ms and 1d"},
      {"write_functions = [\"nextval()\"]", "r.toml:1: key 'write_functions[0]': must be a function name"},
      {"write_functions = [\"ok\", \"\\\"Quoted\\\"\"]", "r.toml:1: key 'write_functions[1]': must be a function name"},
      {"write_functions = [\"app..f\"]", "r.toml:1: key 'write_functions[0]': must be a function name"},
      {"write_functions = \"audit\"", "r.toml:1: key 'write_functions': must be an array of strings"},
  };
  for (const auto& [line, want] : cases) {
    const std::string got = routed_problems_of(routed(line));
    EXPECT_NE(got.find(want), std::string::npos) << line << "\n" << got;
    EXPECT_EQ(std::count(got.begin(), got.end(), '\n'), 0) << line << "\n" << got;  // one problem each
  }
}

TEST(conf_routing, backends_must_make_one_cluster) {
  const std::string head = "[users]\napp = \"x\"\n[databases.app]\n";
  // role = "auto": the health checks ask each server; every backend may be "auto".
  EXPECT_NO_THROW(load_routed(head + "backends = [{ host = \"p\" }, { host = \"r\", role = \"auto\" }]\n"));
  EXPECT_NO_THROW(load_routed(head + "backends = [{ host = \"p\", role = \"auto\" }, { host = \"r\", role = \"auto\" }]\n"));
  EXPECT_EQ(routed_problems_of(head + "backends = [{ host = \"p\" }, { host = \"q\", role = \"primary\" }]\n"),
            "r.toml:4: key 'databases.app.backends[1].role': a second primary: a database has exactly one (never "
            "two writable primaries)");
  EXPECT_EQ(routed_problems_of(head + "backends = [{ host = \"r\", role = \"replica\" }]\n"),
            "r.toml:4: key 'databases.app.backends': needs a backend with role = \"primary\" (writes go there)");
  EXPECT_EQ(routed_problems_of(head + "backends = [{ host = \"p\" }, { host = \"p\", port = 5432, role = \"replica\" }]\n"),
            "r.toml:4: key 'databases.app.backends[1]': the same server as backends[0] (p:5432)");
  // The same host on another port is another server.
  EXPECT_NO_THROW(load_routed(head + "backends = [{ host = \"p\" }, { host = \"p\", port = 5433, role = \"replica\" }]\n"));
}

TEST(conf_routing, contradictions_are_refused) {
  // never without a replica: reads would have no backend at all.
  EXPECT_EQ(routed_problems_of(with("primary_reads = \"never\"\nread_write_split = true")),
            "r.toml:1: key 'primary_reads': \"never\" leaves database 'app' no backend for reads: it lists no replica");
  // Without the split there are no reads to route: never says nothing then.
  EXPECT_NO_THROW(load_routed(with("primary_reads = \"never\"")));
  EXPECT_EQ(routed_problems_of(routed("consistency = \"primary_after_write\"", "primary_reads = \"never\"\n")),
            "r.toml:9: key 'databases.app.primary_reads': \"never\" contradicts consistency = "
            "\"primary_after_write\" for database 'app' (which sends reads after a write to the primary)");
  EXPECT_NO_THROW(load_routed(routed("primary_reads = \"never\"")));
}

// --- reload ------------------------------------------------------------------------------

TEST(conf_reload, restrictions_name_settings_that_need_a_restart) {
  const auto old = load_config_from_string(with("workers = 2"), "a.toml");
  EXPECT_TRUE(conf::reload_restrictions(*old, *old).empty());

  const auto same_socket = load_config_from_string(with("workers = 2\ndefault_pool_size = 5"), "b.toml");
  EXPECT_TRUE(conf::reload_restrictions(*old, *same_socket).empty());

  const auto moved = load_config_from_string(with("workers = 4", "[listen]\nhost = \"0.0.0.0\"\nport = 7000\n"), "c.toml");
  const auto r = conf::reload_restrictions(*old, *moved);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0], "listen: 127.0.0.1:6432 -> 0.0.0.0:7000 needs a restart; keeping 127.0.0.1:6432");
  EXPECT_EQ(r[1], "workers: 2 -> 4 needs a restart; keeping 2");
}

// --- check ---------------------------------------------------------------------------------

TEST(conf_check, ok_and_failure_output) {
  std::ostringstream out, err;
  EXPECT_EQ(conf::run_check(examples_dir / "transaction-pooling.toml", out, err), 0);
  EXPECT_EQ(out.str(), "config OK: 3 databases, 3 users\n");
  EXPECT_EQ(err.str(), "");

  std::ostringstream out2, err2;
  const fs::path bad = source_dir / "tests/unit/conf_invalid/pool_size_negative.toml";
  EXPECT_EQ(conf::run_check(bad, out2, err2), 1);
  EXPECT_EQ(out2.str(), "");
  EXPECT_NE(err2.str().find(bad.string() + ":"), std::string::npos);
  EXPECT_NE(err2.str().find("key 'databases.app.pool_size': must be between 1 and 100000 (got -3)"), std::string::npos)
      << err2.str();
}

TEST(conf_check, defaults_listing_covers_every_key_once) {
  const auto docs = conf::describe_settings();
  std::set<std::string> keys;
  for (const auto& d : docs) {
    EXPECT_TRUE(keys.insert(d.key).second) << d.key;
    EXPECT_FALSE(d.description.empty()) << d.key;
    EXPECT_FALSE(d.default_value.empty()) << d.key;
  }
  for (const char* key : {"pool_mode", "default_pool_size", "query_wait_timeout", "listen.port", "tls.client_tls_mode",
                          "databases.<name>.pool_size", "databases.<name>.backends[].role", "users.<name>.password"}) {
    EXPECT_EQ(keys.count(key), 1u) << key;
  }
  std::ostringstream out;
  conf::print_defaults(out);
  EXPECT_NE(out.str().find("# query_wait_timeout = \"2min\"\n"), std::string::npos) << out.str();
}

}  // namespace
}  // namespace pgsluice::test

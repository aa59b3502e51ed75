// Unit tests for session-parameter bookkeeping (proxy/params.hpp): startup sorting, options parsing, the sync statement.
#include <gtest/gtest.h>

#include <memory>

#include "proxy/params.hpp"

namespace pgsluice::proxy {
namespace {

TEST(parameter_set, names_compare_case_insensitively) {
  parameter_set p;
  EXPECT_TRUE(p.set("DateStyle", "ISO, MDY"));
  EXPECT_FALSE(p.set("datestyle", "ISO, MDY"));
  EXPECT_TRUE(p.set("DATESTYLE", "ISO, DMY"));
  ASSERT_NE(p.find("datestyle"), nullptr);
  EXPECT_EQ(*p.find("datestyle"), "ISO, DMY");
  EXPECT_EQ(p.size(), 1u);
  EXPECT_TRUE(p.erase("DateStyle"));
  EXPECT_TRUE(p.empty());
}

TEST(shared_parameter_set, sessions_share_the_values_until_one_changes) {
  auto first = std::make_shared<parameter_set>();
  first->set("TimeZone", "UTC");
  first->set("DateStyle", "ISO, MDY");
  shared_parameter_set a;
  shared_parameter_set b;
  EXPECT_EQ(a.find("TimeZone"), nullptr);  // nothing assigned yet: empty
  a.assign(first);
  b.assign(first);
  EXPECT_FALSE(a.set("timezone", "UTC"));  // the same value: still shared
  EXPECT_EQ(&a.get(), first.get());
  EXPECT_TRUE(a.set("TimeZone", "Europe/Paris"));  // a's own copy now
  EXPECT_NE(&a.get(), first.get());
  EXPECT_EQ(*a.find("TimeZone"), "Europe/Paris");
  EXPECT_EQ(*b.find("TimeZone"), "UTC");
  EXPECT_EQ(*first->find("TimeZone"), "UTC");
  EXPECT_TRUE(a.set("application_name", "x"));
  EXPECT_EQ(a.get().size(), 3u);
  const parameter_set& view = b;  // read as a plain parameter_set
  EXPECT_EQ(view, *first);
}

TEST(quote_literal, escapes_quotes_and_backslashes) {
  EXPECT_EQ(quote_literal("UTC"), "E'UTC'");
  EXPECT_EQ(quote_literal("it's"), "E'it''s'");
  EXPECT_EQ(quote_literal("a\\b"), "E'a\\\\b'");
  EXPECT_EQ(quote_literal(""), "E''");
}

TEST(setting_names, only_identifier_like_names_are_accepted) {
  EXPECT_TRUE(is_valid_setting_name("search_path"));
  EXPECT_TRUE(is_valid_setting_name("myapp.tenant"));
  EXPECT_FALSE(is_valid_setting_name(""));
  EXPECT_FALSE(is_valid_setting_name("x TO 'y'; DROP TABLE t; --"));
  EXPECT_FALSE(is_valid_setting_name("1abc"));
}

TEST(startup_options, dash_c_and_double_dash_forms) {
  auto p = parse_startup_options("-c search_path=app -cwork_mem=64MB --statement-timeout=5s");
  ASSERT_TRUE(p);
  EXPECT_EQ(*p->find("search_path"), "app");
  EXPECT_EQ(*p->find("work_mem"), "64MB");
  EXPECT_EQ(*p->find("statement_timeout"), "5s");
}

TEST(startup_options, backslash_escapes_a_space) {
  auto p = parse_startup_options("-c application_name=my\\ app");
  ASSERT_TRUE(p);
  EXPECT_EQ(*p->find("application_name"), "my app");
}

TEST(startup_options, other_switches_are_refused) {
  EXPECT_FALSE(parse_startup_options("-d 5"));
  EXPECT_FALSE(parse_startup_options("-c"));
  EXPECT_FALSE(parse_startup_options("-c =x"));
}

TEST(startup_parameters, sorted_into_reported_and_settings) {
  client_startup s;
  std::vector<std::pair<std::string_view, std::string_view>> params = {
      {"user", "alice"},          {"application_name", "pgbench"}, {"client_encoding", "UTF8"},
      {"search_path", "app"},     {"options", "-c TimeZone=UTC -c work_mem=8MB"}};
  ASSERT_FALSE(sort_startup_parameters(params, s));
  EXPECT_EQ(s.user, "alice");
  EXPECT_EQ(s.database, "alice");  // defaults to the user name, as in PostgreSQL
  EXPECT_EQ(s.application_name, "pgbench");
  EXPECT_EQ(*s.reported.find("client_encoding"), "UTF8");
  EXPECT_EQ(*s.reported.find("TimeZone"), "UTC");
  EXPECT_EQ(*s.settings.find("search_path"), "app");
  EXPECT_EQ(*s.settings.find("work_mem"), "8MB");
  EXPECT_EQ(s.settings.find("client_encoding"), nullptr);
}

TEST(startup_parameters, replication_and_bad_names_are_refused) {
  client_startup s;
  std::vector<std::pair<std::string_view, std::string_view>> repl = {{"user", "a"}, {"replication", "database"}};
  auto e = sort_startup_parameters(repl, s);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->sqlstate, "08P01");
  std::vector<std::pair<std::string_view, std::string_view>> bad = {{"user", "a"}, {"x;DROP", "1"}};
  e = sort_startup_parameters(bad, s);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->sqlstate, "42704");
}

TEST(settings_sync, nothing_to_do_when_equal) {
  parameter_set view, settings, reported, applied;
  view.set("TimeZone", "UTC");
  view.set("server_version", "15.1");
  reported.set("TimeZone", "UTC");
  reported.set("server_version", "15.1");
  EXPECT_EQ(plan_settings_sync(view, settings, reported, applied), "");
}

TEST(settings_sync, tracked_differences_and_settings_are_set_untracked_reported_ignored) {
  parameter_set view, settings, reported, applied;
  view.set("TimeZone", "Europe/Paris");
  view.set("application_name", "it's");
  view.set("is_superuser", "on");  // reported but not settable: never SET
  reported.set("TimeZone", "UTC");
  reported.set("application_name", "other");
  reported.set("is_superuser", "off");
  settings.set("search_path", "app");
  EXPECT_EQ(plan_settings_sync(view, settings, reported, applied),
            "SET TimeZone TO E'Europe/Paris';SET application_name TO E'it''s';SET search_path TO E'app';");
}

TEST(settings_sync, settings_left_by_another_client_are_reset) {
  parameter_set view, settings, reported, applied;
  applied.set("search_path", "other");
  applied.set("work_mem", "1MB");
  settings.set("work_mem", "1MB");
  EXPECT_EQ(plan_settings_sync(view, settings, reported, applied), "RESET search_path;");
}

}  // namespace
}  // namespace pgsluice::proxy

namespace pgsluice::proxy {
namespace {

TEST(reset_parameter_names, finds_each_parameter_put_back_to_its_default) {
  using v = std::vector<std::string>;
  EXPECT_EQ(reset_parameter_names("RESET datestyle"), v{"datestyle"});
  EXPECT_EQ(reset_parameter_names("reset TimeZone;"), v{"timezone"});
  EXPECT_EQ(reset_parameter_names("SET search_path TO DEFAULT"), v{"search_path"});
  EXPECT_EQ(reset_parameter_names("SET SESSION work_mem = default; RESET my.custom"), (v{"work_mem", "my.custom"}));
  EXPECT_EQ(reset_parameter_names("SET TIME ZONE LOCAL"), v{"timezone"});
  EXPECT_EQ(reset_parameter_names("RESET TIME ZONE"), v{"timezone"});
  EXPECT_EQ(reset_parameter_names("/* c */ RESET \"DateStyle\""), v{"DateStyle"});
  EXPECT_TRUE(reset_parameter_names("RESET ALL").empty());
  EXPECT_TRUE(reset_parameter_names("SET LOCAL work_mem TO DEFAULT").empty());
  EXPECT_TRUE(reset_parameter_names("SET work_mem TO '1MB'").empty());
  EXPECT_TRUE(reset_parameter_names("SELECT 'RESET datestyle'").empty());
  EXPECT_TRUE(reset_parameter_names("UPDATE t SET x = DEFAULT").empty());
  EXPECT_TRUE(reset_parameter_names("RESET").empty());
}

}  // namespace
}  // namespace pgsluice::proxy

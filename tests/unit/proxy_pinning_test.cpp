// Unit tests for the session-pinning classifier (proxy/pinning.hpp): which SQL pins a transaction-mode client.
#include <gtest/gtest.h>

#include <string>

#include "proxy/pinning.hpp"

namespace pgsluice::proxy {
namespace {

struct pin_case {
  const char* name;
  std::string sql;
  bool pins;
  bool drops_prepared;
};

class pinning : public ::testing::TestWithParam<pin_case> {};

TEST_P(pinning, classifies) {
  const auto& c = GetParam();
  const auto e = classify_session_effects(c.sql);
  EXPECT_EQ(e.pins, c.pins) << c.sql << " reason=" << e.reason;
  EXPECT_EQ(e.drops_prepared, c.drops_prepared) << c.sql;
}

INSTANTIATE_TEST_SUITE_P(
    table, pinning,
    ::testing::Values(
        pin_case{"plain_select", "SELECT 1", false, false},
        pin_case{"do_with_set", "DO $x$ BEGIN SET enable_bitmapscan = 0; END $x$", true, false},
        pin_case{"do_with_set_config", "DO $$BEGIN PERFORM set_config('work_mem', '1MB', false); END$$", true, false},
        pin_case{"do_with_reset", "do language plpgsql $$begin reset work_mem; end$$", true, false},
        pin_case{"do_without_settings", "DO $$BEGIN INSERT INTO t VALUES (1); END$$", false, false},
        pin_case{"do_word_offset_is_not_set", "DO $$BEGIN PERFORM x FROM t OFFSET 1; END$$", false, false},
        pin_case{"update_set", "UPDATE t SET x = 1 WHERE id = 2", false, false},
        pin_case{"set_session_param", "SET search_path = app, public", true, false},
        pin_case{"set_lowercase", "set work_mem to '64MB'", true, false},
        pin_case{"set_local", "SET LOCAL work_mem = '64MB'", false, false},
        pin_case{"set_transaction", "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", false, false},
        pin_case{"set_constraints", "SET CONSTRAINTS ALL DEFERRED", false, false},
        pin_case{"set_tracked_timezone", "SET TimeZone = 'UTC'", false, false},
        pin_case{"set_time_zone", "SET TIME ZONE 'Europe/Paris'", false, false},
        pin_case{"set_names", "SET NAMES 'LATIN1'", false, false},
        pin_case{"set_application_name", "SET application_name TO 'x'", false, false},
        pin_case{"set_session_tracked", "SET SESSION client_encoding TO 'UTF8'", false, false},
        pin_case{"set_role", "SET ROLE postgres", true, false},
        pin_case{"set_session_authorization", "SET SESSION AUTHORIZATION bob", true, false},
        pin_case{"set_session_characteristics", "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY", true, false},
        pin_case{"reset_param", "RESET search_path", true, false},
        pin_case{"reset_tracked", "RESET timezone", false, false},
        pin_case{"sql_prepare", "PREPARE q(int) AS SELECT $1", true, false},
        pin_case{"prepare_transaction", "PREPARE TRANSACTION 'gid'", false, false},
        pin_case{"sql_execute", "EXECUTE q(1)", true, false},
        pin_case{"deallocate_one", "DEALLOCATE q", true, false},
        pin_case{"deallocate_all", "DEALLOCATE ALL", true, true},
        pin_case{"deallocate_prepare_all", "deallocate prepare all", true, true},
        pin_case{"discard_all", "DISCARD ALL", false, true},
        pin_case{"discard_plans", "DISCARD PLANS", false, false},
        pin_case{"listen", "LISTEN jobs", true, false},
        pin_case{"unlisten", "UNLISTEN *", false, false},
        pin_case{"notify", "NOTIFY jobs, 'x'", false, false},
        pin_case{"create_temp", "CREATE TEMP TABLE t (x int)", true, false},
        pin_case{"create_global_temporary", "create global temporary table t (x int)", true, false},
        pin_case{"create_table", "CREATE TABLE t (x int)", false, false},
        pin_case{"select_into_temp", "SELECT 1 AS x INTO TEMP t", true, false},
        pin_case{"advisory_lock", "SELECT pg_advisory_lock(42)", true, false},
        pin_case{"qualified_advisory_lock", "select pg_catalog.pg_try_advisory_lock(1, 2)", true, false},
        pin_case{"xact_advisory_lock", "SELECT pg_advisory_xact_lock(42)", false, false},
        pin_case{"set_config", "SELECT set_config('search_path', 'x', false)", true, false},
        pin_case{"declare_with_hold", "DECLARE c CURSOR WITH HOLD FOR SELECT 1", true, false},
        pin_case{"declare_plain", "DECLARE c CURSOR FOR SELECT 1", false, false},
        pin_case{"load", "LOAD 'auto_explain'", true, false},
        pin_case{"second_statement", "BEGIN; SET search_path = x; COMMIT", true, false},
        pin_case{"keyword_in_string", "SELECT 'SET ROLE x; LISTEN y'", false, false},
        pin_case{"keyword_in_e_string", "SELECT E'it\\'s; LISTEN y'", false, false},
        pin_case{"keyword_in_comment", "/* LISTEN x; */ SELECT 1 -- ; SET x = 1", false, false},
        pin_case{"nested_comment", "/* a /* b */ LISTEN */ SELECT 1", false, false},
        pin_case{"keyword_in_dollar_quote", "SELECT $f$ ; LISTEN x; $f$", false, false},
        pin_case{"function_in_quoted_ident", "SELECT \"pg_advisory_lock\" FROM t", false, false},
        pin_case{"positional_param", "SELECT $1::int; LISTEN x", true, false},
        pin_case{"leading_comment", "-- hello\nLISTEN x", true, false},
        pin_case{"empty", "", false, false},
        pin_case{"unterminated_string", "SELECT 'abc", false, false}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(pinning_tracked, tracked_parameter_names_are_case_insensitive) {
  EXPECT_TRUE(is_tracked_parameter("DateStyle"));
  EXPECT_TRUE(is_tracked_parameter("TIMEZONE"));
  EXPECT_TRUE(is_tracked_parameter("client_encoding"));
  EXPECT_FALSE(is_tracked_parameter("search_path"));
  EXPECT_FALSE(is_tracked_parameter("work_mem"));
}

// pipeline_depth: only texts that leave a connection idle and clean may queue behind others.
TEST(pipelinable, one_autocommit_statement_without_session_state) {
  for (const char* yes : {"SELECT 1", "  select abalance from pgbench_accounts where aid = $1;",
                          "/* hint */ -- c\nINSERT INTO t VALUES (1)", "UPDATE t SET a = 1", "DELETE FROM t",
                          "WITH x AS (SELECT 1) SELECT * FROM x", "VALUES (1)", "TABLE t", "SHOW work_mem",
                          "EXPLAIN SELECT 1", "SELECT pg_advisory_xact_lock(1)", "SELECT 1 FROM t FOR UPDATE",
                          "SELECT ';' AS semi"}) {
    EXPECT_TRUE(pipelinable(yes)) << yes;
  }
  for (const char* no : {"BEGIN", "START TRANSACTION", "COMMIT", "SELECT 1; SELECT 2", "BEGIN; SELECT 1",
                         "SET search_path = x", "SET application_name = 'a'", "SELECT set_config('a.b', 'c', false)",
                         "SELECT pg_advisory_lock(1)", "LISTEN x", "COPY t FROM STDIN", "COPY t TO STDOUT",
                         "CREATE TEMP TABLE x (a int)", "SELECT 1 INTO TEMP x", "PREPARE p AS SELECT 1",
                         "EXECUTE p", "DISCARD ALL", "DEALLOCATE ALL", "DECLARE c CURSOR WITH HOLD FOR SELECT 1",
                         "CALL p()", "DO $$ BEGIN END $$", "VACUUM", "", "   ", "-- only a comment",
                         "SELECT 'unterminated", "/* unterminated"}) {
    EXPECT_FALSE(pipelinable(no)) << no;
  }
}

}  // namespace
}  // namespace pgsluice::proxy

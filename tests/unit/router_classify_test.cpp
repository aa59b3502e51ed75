// Statement classification and the SQL lexer: table-driven SQL texts and what each one is.
#include <gtest/gtest.h>

#include <cctype>
#include <string>
#include <string_view>
#include <vector>

#include "router/classify.hpp"
#include "router/lexer.hpp"

namespace r = pgsluice::router;

namespace {

using r::access_mode;
using r::comment_hint;
using r::route_value;
using r::statement_kind;
constexpr auto R = r::statement_access::read;
constexpr auto W = r::statement_access::write;

enum class opts_kind { defaults, custom_functions, backslash_strings };

struct expect {
  r::statement_access access = W;
  statement_kind kind = statement_kind::ordinary;
  bool begins = false;
  access_mode begin_mode = access_mode::unspecified;
  access_mode set_mode = access_mode::unspecified;
  bool ends = false;
  comment_hint hint = comment_hint::none;
  route_value route = route_value::automatic;
  bool local = false;
  std::string_view value = {};
  std::size_t statements = 1;
  opts_kind opts = opts_kind::defaults;
};

struct classify_case {
  const char* name;
  std::string_view sql;
  expect want;
};

constexpr auto ro = access_mode::read_only;
constexpr auto rw = access_mode::read_write;

const classify_case cases[] = {
    // Reads.
    {"select", "SELECT 1", {.access = R}},
    {"pgbench select", "SELECT abalance FROM pgbench_accounts WHERE aid = $1", {.access = R}},
    {"lower case", "select * from t where a = 'x'", {.access = R}},
    {"trailing semicolon", "SELECT 1;", {.access = R}},
    {"values", "VALUES (1, 'a'), (2, 'b')", {.access = R}},
    {"table", "TABLE t", {.access = R}},
    {"show", "SHOW search_path", {.access = R}},
    {"show all", "show all", {.access = R}},
    {"with select", "WITH x AS (SELECT 1) SELECT * FROM x", {.access = R}},
    {"with recursive", "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5) SELECT * FROM n",
     {.access = R}},
    {"parenthesised union", "(SELECT 1) UNION (SELECT 2)", {.access = R}},
    {"read-only functions", "SELECT now(), count(*), coalesce(a, 0) FROM t GROUP BY a", {.access = R}},
    {"substring for", "SELECT substring('abc' FROM 1 FOR 2)", {.access = R}},
    {"join and subquery", "SELECT * FROM a JOIN (SELECT id FROM b) s USING (id) WHERE a.x IN (SELECT 1)", {.access = R}},

    // EXPLAIN.
    {"explain select", "EXPLAIN SELECT 1", {.access = R}},
    {"explain of a write only plans it", "EXPLAIN DELETE FROM t", {.access = R}},
    {"explain verbose select", "EXPLAIN VERBOSE SELECT 1", {.access = R}},
    {"explain analyze select", "EXPLAIN ANALYZE SELECT * FROM t", {.access = R}},
    {"explain analyze delete", "EXPLAIN ANALYZE DELETE FROM t", {.access = W}},
    {"explain analyse verbose insert", "explain analyse verbose insert into t values (1)", {.access = W}},
    {"explain options analyze", "EXPLAIN (ANALYZE) DELETE FROM t", {.access = W}},
    {"explain options analyze true", "EXPLAIN (ANALYZE true, BUFFERS) UPDATE t SET a = 1", {.access = W}},
    {"explain options analyze later", "EXPLAIN (COSTS off, FORMAT json, ANALYZE) INSERT INTO t VALUES (1)",
     {.access = W}},
    {"explain options analyze off", "EXPLAIN (ANALYZE off) DELETE FROM t", {.access = R}},
    {"explain options analyze false", "EXPLAIN (ANALYZE false, VERBOSE) DELETE FROM t", {.access = R}},
    {"explain options without analyze", "EXPLAIN (FORMAT JSON) DELETE FROM t", {.access = R}},
    {"explain analyze select nextval", "EXPLAIN ANALYZE SELECT nextval('s')", {.access = W}},
    {"explain options analyze for update", "EXPLAIN (ANALYZE) SELECT * FROM t FOR UPDATE", {.access = W}},
    {"explain execute", "EXPLAIN EXECUTE p(1)", {.access = W}},
    {"explain analyze create table as", "EXPLAIN ANALYZE CREATE TABLE t AS SELECT 1", {.access = W}},

    // Locking clauses.
    {"for update", "SELECT * FROM t WHERE id = 1 FOR UPDATE", {.access = W}},
    {"for no key update", "SELECT * FROM t FOR NO KEY UPDATE", {.access = W}},
    {"for share", "SELECT * FROM t FOR SHARE", {.access = W}},
    {"for key share", "select * from t for key share", {.access = W}},
    {"for update of nowait", "SELECT * FROM t FOR UPDATE OF t NOWAIT", {.access = W}},
    {"for update in a subquery", "SELECT * FROM (SELECT * FROM t FOR UPDATE) s", {.access = W}},
    {"for share in a cte", "WITH x AS (SELECT * FROM t FOR SHARE) SELECT * FROM x", {.access = W}},
    {"for update in a string", "SELECT 'FOR UPDATE'", {.access = R}},
    {"for update in a line comment", "SELECT 1 -- FOR UPDATE", {.access = R}},
    {"for update in a block comment", "SELECT 1 /* FOR UPDATE */", {.access = R}},
    {"for update in a quoted identifier", "SELECT \"FOR UPDATE\" FROM t", {.access = R}},

    // SELECT INTO.
    {"select into", "SELECT * INTO new_t FROM t", {.access = W}},
    {"select into temp", "select a into temporary t2 from t", {.access = W}},
    {"into in a string", "SELECT 'INTO'", {.access = R}},
    {"into as a quoted column", "SELECT \"into\" FROM t", {.access = R}},

    // Data-modifying CTEs.
    {"cte delete", "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", {.access = W}},
    {"cte insert", "WITH i AS (INSERT INTO t VALUES (1) RETURNING id) SELECT id FROM i", {.access = W}},
    {"cte update materialized", "WITH u AS MATERIALIZED (UPDATE t SET a = 1 RETURNING *) SELECT * FROM u",
     {.access = W}},
    {"cte merge", "WITH m AS (MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE) SELECT 1", {.access = W}},
    {"second cte deletes", "WITH a AS (SELECT 1), b AS (DELETE FROM t RETURNING *) SELECT * FROM a, b", {.access = W}},
    {"insert after a cte list", "WITH x AS (SELECT 1 AS a) INSERT INTO t SELECT a FROM x", {.access = W}},
    {"update after a cte list", "with x as (select 1) update t set a = 2", {.access = W}},

    // Functions.
    {"nextval", "SELECT nextval('s')", {.access = W}},
    {"nextval upper case", "SELECT NEXTVAL('s')", {.access = W}},
    {"nextval schema qualified", "SELECT pg_catalog.nextval('s')", {.access = W}},
    {"nextval quoted call", "SELECT \"nextval\"('s')", {.access = W}},
    {"nextval as a quoted column", "SELECT \"nextval\" FROM t", {.access = R}},
    {"nextval as a column", "SELECT nextval FROM t", {.access = R}},
    {"nextval in a string", "SELECT 'nextval(1)'", {.access = R}},
    {"nextval with a comment before the paren", "SELECT nextval /* why */ ('s')", {.access = W}},
    {"nextval in where", "SELECT * FROM t WHERE id = nextval('s')", {.access = W}},
    {"nextval in values", "VALUES (nextval('s'))", {.access = W}},
    {"unicode-escaped name", "SELECT U&\"\\006Eextval\"('s')", {.access = W}},
    {"setval", "SELECT setval('s', 10)", {.access = W}},
    {"currval is session-bound", "SELECT currval('s')", {.access = W}},
    {"lastval", "SELECT lastval()", {.access = W}},
    {"advisory lock", "SELECT pg_advisory_lock(1)", {.access = W}},
    {"advisory xact lock shared", "SELECT pg_advisory_xact_lock_shared(1, 2)", {.access = W}},
    {"try advisory", "SELECT pg_try_advisory_xact_lock(1)", {.access = W}},
    {"advisory unlock all", "SELECT pg_advisory_unlock_all()", {.access = W}},
    {"lo_import", "SELECT lo_import('/tmp/x')", {.access = W}},
    {"lo_create", "SELECT lo_create(0)", {.access = W}},
    {"lo_from_bytea", "select lo_from_bytea(0, 'x')", {.access = W}},
    {"txid_current", "SELECT txid_current()", {.access = W}},
    {"pg_current_xact_id", "SELECT pg_current_xact_id()", {.access = W}},
    {"pg_notify", "SELECT pg_notify('ch', 'payload')", {.access = W}},
    {"set_config", "SELECT set_config('search_path', 'x', false)", {.access = W}},
    {"pg_switch_wal", "SELECT pg_switch_wal()", {.access = W}},
    {"pg_create_restore_point", "SELECT pg_create_restore_point('x')", {.access = W}},
    {"pg_terminate_backend", "SELECT pg_terminate_backend(pid) FROM pg_stat_activity", {.access = W}},
    {"pg_cancel_backend", "SELECT pg_cancel_backend(42)", {.access = W}},
    {"pg_reload_conf", "SELECT pg_reload_conf()", {.access = W}},
    {"pg_promote", "SELECT pg_promote()", {.access = W}},
    {"configured function", "SELECT audit_log('x')", {.access = W, .opts = opts_kind::custom_functions}},
    {"configured function not configured", "SELECT audit_log('x')", {.access = R}},
    {"configured function in a schema", "SELECT x.audit_log('x')", {.access = W, .opts = opts_kind::custom_functions}},
    {"configured qualified function", "SELECT app.bump(1)", {.access = W, .opts = opts_kind::custom_functions}},
    {"configured qualified function unqualified", "SELECT bump(1)",
     {.access = W, .opts = opts_kind::custom_functions}},
    {"configured qualified function other schema", "SELECT other.bump(1)",
     {.access = R, .opts = opts_kind::custom_functions}},
    {"configured function case", "SELECT APP.\"BUMP\"(1)", {.access = W, .opts = opts_kind::custom_functions}},

    // Lexing.
    {"dollar quote", "SELECT $$ DELETE $$", {.access = R}},
    {"tagged dollar quote", "SELECT $fn$ nextval('s') $fn$", {.access = R}},
    {"dollar quotes nest by tag", "SELECT $a$ $b$ FOR UPDATE $b$ $a$", {.access = R}},
    {"dollar quote keeps a semicolon", "SELECT $$ ; DELETE FROM t; $$", {.access = R}},
    {"parameter is not a dollar quote", "SELECT $1, $2 FROM t FOR UPDATE", {.access = W}},
    {"dollar inside an identifier", "SELECT a$b$ FROM t FOR UPDATE", {.access = W}},
    {"nested block comment", "/* a /* b */ DELETE */ SELECT 1", {.access = R}},
    {"escape string", "SELECT E'\\' FOR UPDATE'", {.access = R}},
    {"standard string ends at the quote", "SELECT '\\' FOR UPDATE; SELECT 1", {.access = W, .statements = 2}},
    {"backslash strings when not standard", "SELECT '\\' FOR UPDATE'",
     {.access = R, .opts = opts_kind::backslash_strings}},
    {"doubled quote", "SELECT 'it''s FOR UPDATE'", {.access = R}},
    {"doubled quote in an identifier", "SELECT \"a\"\" FOR UPDATE\" FROM t", {.access = R}},
    {"bit and hex strings", "SELECT B'0101', X'FF', N'x'", {.access = R}},
    {"unicode string", "SELECT U&'d\\0061t\\+000061'", {.access = R}},
    {"semicolon in a string", "SELECT ';DELETE FROM t'", {.access = R}},
    {"semicolon in a block comment", "SELECT 1 /* ; DELETE FROM t */", {.access = R}},
    {"line comment ends at newline", "SELECT 1 -- x\n; DELETE FROM t", {.access = W, .statements = 2}},
    {"quote in a line comment", "SELECT 1 -- it's\nFROM t", {.access = R}},
    {"operator next to a comment", "SELECT 1 +/* DELETE */ 2", {.access = R}},

    // Several statements.
    {"two reads", "SELECT 1; SELECT 2", {.access = R, .statements = 2}},
    {"a read and a write", "SELECT 1; DELETE FROM t", {.access = W, .statements = 2}},
    {"empty statements", ";;SELECT 1;;", {.access = R}},
    {"read transaction", "BEGIN; SELECT 1; COMMIT", {.access = R, .begins = true, .ends = true, .statements = 3}},
    {"write transaction", "BEGIN; INSERT INTO t VALUES (1); COMMIT;",
     {.access = W, .begins = true, .ends = true, .statements = 3}},
    {"savepoints around a read", "SAVEPOINT a; SELECT 1; RELEASE a", {.access = R, .statements = 3}},
    {"read only transaction set inside", "BEGIN; SET TRANSACTION READ ONLY; SELECT 1; COMMIT",
     {.access = R, .begins = true, .set_mode = ro, .ends = true, .statements = 4}},

    // Transaction control.
    {"begin", "BEGIN", {.access = W, .begins = true}},
    {"begin work", "begin work", {.access = W, .begins = true}},
    {"begin read only", "BEGIN READ ONLY", {.access = R, .begins = true, .begin_mode = ro}},
    {"begin isolation then read only", "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY",
     {.access = R, .begins = true, .begin_mode = ro}},
    {"begin repeatable read is no mode", "BEGIN ISOLATION LEVEL REPEATABLE READ", {.access = W, .begins = true}},
    {"start transaction read write", "START TRANSACTION READ WRITE", {.access = W, .begins = true, .begin_mode = rw}},
    {"start transaction read only deferrable", "START TRANSACTION ISOLATION LEVEL SERIALIZABLE READ ONLY DEFERRABLE",
     {.access = R, .begins = true, .begin_mode = ro}},
    {"begin read write then a read", "BEGIN READ WRITE; SELECT 1",
     {.access = W, .begins = true, .begin_mode = rw, .statements = 2}},
    {"start without transaction", "START x", {.access = W}},
    {"commit", "COMMIT", {.access = W, .ends = true}},
    {"end", "END", {.access = W, .ends = true}},
    {"rollback", "ROLLBACK", {.access = W, .ends = true}},
    {"abort", "ABORT", {.access = W, .ends = true}},
    {"rollback to savepoint", "ROLLBACK TO SAVEPOINT a", {.access = W}},
    {"rollback work to", "ROLLBACK WORK TO a", {.access = W}},
    {"commit and chain", "COMMIT AND CHAIN", {.access = W, .begins = true, .ends = true}},
    {"commit and no chain", "COMMIT AND NO CHAIN", {.access = W, .ends = true}},
    {"prepare transaction", "PREPARE TRANSACTION 'tx1'", {.access = W, .ends = true}},
    {"commit prepared", "COMMIT PREPARED 'tx1'", {.access = W, .ends = true}},
    {"rollback prepared", "ROLLBACK PREPARED 'tx1'", {.access = W, .ends = true}},
    {"set transaction read only", "SET TRANSACTION READ ONLY", {.access = R, .set_mode = ro}},
    {"set transaction read write", "SET TRANSACTION READ WRITE", {.access = W, .set_mode = rw}},
    {"set session characteristics", "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY",
     {.access = W, .set_mode = ro}},
    {"default read only on", "SET default_transaction_read_only = on", {.access = W, .set_mode = ro}},
    {"default read only true", "set session default_transaction_read_only to true", {.access = W, .set_mode = ro}},
    {"default read only quoted", "SET default_transaction_read_only = 'on'", {.access = W, .set_mode = ro}},
    {"default read only off", "SET default_transaction_read_only = off", {.access = W, .set_mode = rw}},
    {"default read only default", "SET default_transaction_read_only TO DEFAULT", {.access = W}},

    // Routing hints.
    {"hint primary", "/* pgsluice: primary */ SELECT 1", {.access = R, .hint = comment_hint::primary}},
    {"hint replica squeezed", "/*PGSLUICE:Replica*/SELECT 1", {.access = R, .hint = comment_hint::replica}},
    {"hint in a line comment", "-- pgsluice: replica\nSELECT 1", {.access = R, .hint = comment_hint::replica}},
    {"hint spaced", "/*  pgsluice :  primary  */ INSERT INTO t VALUES (1)", {.access = W, .hint = comment_hint::primary}},
    {"hint after another comment", "/* app=web */ -- pgsluice: replica\nSELECT 1",
     {.access = R, .hint = comment_hint::replica}},
    {"hint after the statement does not count", "SELECT 1 /* pgsluice: replica */", {.access = R}},
    {"hint with an unknown value", "/* pgsluice: secondary */ SELECT 1", {.access = R}},
    {"hint unterminated", "/* pgsluice: replica", {.access = W, .statements = 0}},

    // pgsluice's own statements.
    {"route replica", "SET pgsluice.route = replica", {.kind = statement_kind::route_set, .route = route_value::replica}},
    {"route local primary", "SET LOCAL pgsluice.route TO primary",
     {.kind = statement_kind::route_set, .route = route_value::primary, .local = true}},
    {"route session quoted auto", "SET SESSION pgsluice.route = 'auto';",
     {.kind = statement_kind::route_set, .route = route_value::automatic}},
    {"route default", "SET pgsluice.route TO DEFAULT", {.kind = statement_kind::route_set}},
    {"route reset", "RESET pgsluice.route", {.kind = statement_kind::route_set}},
    {"route upper case", "set PGSLUICE.ROUTE = REPLICA",
     {.kind = statement_kind::route_set, .route = route_value::replica}},
    {"route invalid", "SET pgsluice.route = sideways", {.kind = statement_kind::route_set, .route = route_value::invalid}},
    {"route two words", "SET pgsluice.route = replica primary",
     {.kind = statement_kind::route_set, .route = route_value::invalid}},
    {"route without a value", "SET pgsluice.route", {.access = W}},
    {"show last write lsn", "SHOW pgsluice.last_write_lsn", {.access = R, .kind = statement_kind::show_last_write_lsn}},
    {"min lsn", "SET pgsluice.min_lsn = '0/1234ABCD'", {.kind = statement_kind::set_min_lsn, .value = "0/1234ABCD"}},
    {"min lsn to", "set pgsluice.min_lsn to '16/B374D848';",
     {.kind = statement_kind::set_min_lsn, .value = "16/B374D848"}},
    {"min lsn unquoted", "SET pgsluice.min_lsn = 0/1", {.kind = statement_kind::set_min_lsn, .value = "0/1"}},
    {"min lsn reset", "RESET pgsluice.min_lsn", {.kind = statement_kind::set_min_lsn}},
    {"unknown pgsluice name", "SHOW pgsluice.nope", {.access = R, .kind = statement_kind::unknown_pgsluice_name,
                                                      .value = "nope"}},
    {"unknown pgsluice set", "SET pgsluice.routing = replica",
     {.kind = statement_kind::unknown_pgsluice_name, .value = "routing"}},
    {"pgsluice statement in a batch", "SET pgsluice.route = replica; SELECT 1",
     {.kind = statement_kind::pgsluice_in_batch, .statements = 2}},
    {"pgsluice statement in a string", "SELECT 'SET pgsluice.route = replica'", {.access = R}},
    {"other setting with a dot", "SET app.user_id = 42", {.access = W}},

    // Writes.
    {"insert", "INSERT INTO t VALUES (1)", {.access = W}},
    {"update", "UPDATE t SET a = 1", {.access = W}},
    {"delete", "DELETE FROM t", {.access = W}},
    {"merge", "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE", {.access = W}},
    {"copy", "COPY t FROM STDIN", {.access = W}},
    {"copy to", "COPY (SELECT 1) TO STDOUT", {.access = W}},
    {"create table", "CREATE TABLE t (a int)", {.access = W}},
    {"create table as", "CREATE TABLE t AS SELECT 1", {.access = W}},
    {"call", "CALL p(1)", {.access = W}},
    {"do", "DO $$ BEGIN PERFORM 1; END $$", {.access = W}},
    {"lock", "LOCK TABLE t IN ACCESS EXCLUSIVE MODE", {.access = W}},
    {"vacuum", "VACUUM t", {.access = W}},
    {"set", "SET search_path = app", {.access = W}},
    {"declare cursor", "DECLARE c CURSOR FOR SELECT 1", {.access = W}},
    {"execute", "EXECUTE p(1)", {.access = W}},
    {"listen", "LISTEN ch", {.access = W}},
    {"unknown word", "hello world", {.access = W}},
    {"quoted identifier first", "\"select\" 1", {.access = W}},
    {"empty", "", {.access = W, .statements = 0}},
    {"whitespace", " \n\t ", {.access = W, .statements = 0}},
    {"only a comment", "-- SELECT 1", {.access = W, .statements = 0}},
    {"only semicolons", ";;", {.access = W, .statements = 0}},
    {"binary garbage", "\x01\xff(\x7f", {.access = W}},

    // Unterminated input.
    {"unterminated string", "SELECT 'abc", {.access = W}},
    {"unterminated identifier", "SELECT \"abc", {.access = W}},
    {"unterminated dollar quote", "SELECT $$abc", {.access = W}},
    {"unterminated tagged dollar quote", "SELECT $x$abc$x", {.access = W}},
    {"unterminated block comment", "SELECT 1 /* x", {.access = W}},
    {"unterminated nested block comment", "SELECT 1 /* /* */", {.access = W}},
    {"unterminated escape string", "SELECT E'\\", {.access = W}},
    {"lone dollar", "SELECT $ FROM t", {.access = R}},
};

// A test's name from its case's description.
const auto case_name = [](const auto& info) {
  std::string n;
  for (const char* p = info.param.name; *p != 0; ++p) n += std::isalnum(static_cast<unsigned char>(*p)) ? *p : '_';
  return n;
};

class classify_test : public ::testing::TestWithParam<classify_case> {};

TEST_P(classify_test, classifies) {
  const auto& c = GetParam();
  r::classify_options opts;
  if (c.want.opts == opts_kind::custom_functions) opts.write_functions = {"audit_log", "App.Bump"};
  if (c.want.opts == opts_kind::backslash_strings) opts.standard_conforming_strings = false;
  const auto got = r::classify(c.sql, opts);
  const auto& w = c.want;
  EXPECT_EQ(r::to_string(got.access), r::to_string(w.access));
  EXPECT_EQ(r::to_string(got.kind), r::to_string(w.kind));
  EXPECT_EQ(got.begins_transaction, w.begins);
  EXPECT_EQ(r::to_string(got.begin_mode), r::to_string(w.begin_mode));
  EXPECT_EQ(r::to_string(got.set_mode), r::to_string(w.set_mode));
  EXPECT_EQ(got.sets_read_only(), w.set_mode == ro);
  EXPECT_EQ(got.ends_transaction, w.ends);
  EXPECT_EQ(r::to_string(got.hint), r::to_string(w.hint));
  EXPECT_EQ(r::to_string(got.route), r::to_string(w.route));
  EXPECT_EQ(got.local, w.local);
  EXPECT_EQ(got.value, w.value);
  EXPECT_EQ(got.statements, w.statements);
}

INSTANTIATE_TEST_SUITE_P(cases, classify_test, ::testing::ValuesIn(cases), case_name);

// Large texts: each must be read in one linear pass (a quadratic scan of 1 MB would not end
// within the test's time limit).
constexpr std::size_t one_mb = std::size_t{1} << 20;

TEST(classify_large, one_megabyte_select) {
  std::string sql = "SELECT a FROM t WHERE a IN (";
  while (sql.size() < one_mb) sql += "'value', 12345, \"col\", $$x$$, ";
  sql += "1)";
  EXPECT_TRUE(r::classify(sql).is_read());
  EXPECT_FALSE(r::classify(sql + " FOR UPDATE").is_read());
}

TEST(classify_large, one_megabyte_insert) {
  std::string sql = "INSERT INTO t VALUES ";
  while (sql.size() < one_mb) sql += "(1, 'abc', nextval('s')), ";
  sql += "(2, 'x', 3)";
  EXPECT_FALSE(r::classify(sql).is_read());
}

TEST(classify_large, adversarial_shapes) {
  // Runs of operator characters that lex one character at a time.
  EXPECT_TRUE(r::classify("SELECT 1 " + std::string(one_mb, '+')).is_read());
  std::string alternating = "SELECT 1 ";
  while (alternating.size() < one_mb) alternating += "+-";
  EXPECT_TRUE(r::classify(alternating).is_read());
  // A dollar quote whose tag almost recurs everywhere in its body.
  const std::string tag = "$" + std::string(1000, 'a') + "$";
  std::string dollar = "SELECT " + tag;
  while (dollar.size() < one_mb) dollar += "$" + std::string(999, 'a') + "b";
  EXPECT_FALSE(r::classify(dollar).is_read());  // unterminated
  EXPECT_TRUE(r::classify(dollar + tag).is_read());
  // Deep comment nesting, never closed.
  std::string nested;
  while (nested.size() < one_mb) nested += "/*";
  EXPECT_FALSE(r::classify(nested).is_read());
  // Many statements.
  std::string many;
  while (many.size() < one_mb) many += "SELECT 1;";
  const auto c = r::classify(many);
  EXPECT_TRUE(c.is_read());
  EXPECT_EQ(c.statements, many.size() / 9);
  // An unterminated string taking nearly all of it.
  EXPECT_FALSE(r::classify("SELECT '" + std::string(one_mb, 'x')).is_read());
}

TEST(classify_names, every_value_has_a_name) {
  EXPECT_EQ(r::to_string(statement_kind::pgsluice_in_batch), "pgsluice_in_batch");
  EXPECT_EQ(r::to_string(route_value::automatic), "auto");
  EXPECT_EQ(r::to_string(access_mode::read_only), "read_only");
  EXPECT_EQ(r::to_string(comment_hint::replica), "replica");
  EXPECT_EQ(r::to_string(r::token_kind::dollar_string), "dollar_string");
}

// The lexer on its own: the tokens (kind and text) of tricky inputs.
struct lex_case {
  const char* name;
  std::string_view sql;
  std::vector<std::string> tokens;  // "kind text"
};

const lex_case lex_cases[] = {
    {"keywords and numbers", "SELECT 1, 2.5, .5, 1e-3, 1..2",
     {"identifier SELECT", "number 1", "punctuation ,", "number 2.5", "punctuation ,", "number .5", "punctuation ,",
      "number 1e-3", "punctuation ,", "number 1", "punctuation ..", "number 2"}},
    {"minus after equals", "a=-1", {"identifier a", "op =", "op -", "number 1"}},
    {"operator with special char keeps its minus", "a @- b", {"identifier a", "op @-", "identifier b"}},
    {"operator cut before a comment", "1 +/*x*/ 2", {"number 1", "op +", "comment /*x*/", "number 2"}},
    {"operator cut before a line comment", "1 *--x\n", {"number 1", "op *", "comment --x"}},
    {"cast", "x::int", {"identifier x", "punctuation ::", "identifier int"}},
    {"strings", "'a''b' E'\\'' B'01' X'1f' U&'x' N'y'",
     {"string 'a''b'", "string E'\\''", "string B'01'", "string X'1f'", "string U&'x'", "string N'y'"}},
    {"bit string ends at the first quote", "B'01''10'", {"string B'01'", "string '10'"}},
    {"identifiers", "\"a\"\"b\" U&\"c\" x$1 _y", {"quoted_identifier \"a\"\"b\"", "quoted_identifier U&\"c\"",
                                                   "identifier x$1", "identifier _y"}},
    {"dollar quotes and parameters", "$1 $$a$$ $t$b$t$ $t1$c$t1$ $",
     {"parameter $1", "dollar_string $$a$$", "dollar_string $t$b$t$", "dollar_string $t1$c$t1$", "other $"}},
    {"dollar tag cannot start with a digit", "$1a$", {"parameter $1", "identifier a$"}},
    {"nested comment", "/* a /* b */ c */ d", {"comment /* a /* b */ c */", "identifier d"}},
    {"unterminated", "'abc", {"string 'abc (unterminated)"}},
};

class lexer_test : public ::testing::TestWithParam<lex_case> {};

TEST_P(lexer_test, tokens) {
  const auto& c = GetParam();
  r::lexer lex(c.sql);
  std::vector<std::string> got;
  for (auto t = lex.next(); t.kind != r::token_kind::end; t = lex.next()) {
    got.push_back(std::string(r::to_string(t.kind)) + " " + std::string(t.text) + (t.terminated ? "" : " (unterminated)"));
  }
  EXPECT_EQ(got, c.tokens);
  EXPECT_EQ(lex.position(), c.sql.size());
}

INSTANTIATE_TEST_SUITE_P(cases, lexer_test, ::testing::ValuesIn(lex_cases), case_name);

TEST(lexer_body, strips_quotes_and_tags) {
  auto first = [](std::string_view s) { return r::lexer(s).next(); };
  EXPECT_EQ(r::token_body(first("'a''b'")), "a''b");
  EXPECT_EQ(r::token_body(first("E'x'")), "x");
  EXPECT_EQ(r::token_body(first("\"Col\"")), "Col");
  EXPECT_EQ(r::token_body(first("$tag$body$tag$")), "body");
  EXPECT_EQ(r::token_body(first("$$")), "");
  EXPECT_EQ(r::token_body(first("'open")), "open");
  EXPECT_EQ(r::token_body(first("/* c */")), " c ");
  EXPECT_EQ(r::token_body(first("-- c")), " c");
  EXPECT_TRUE(r::iequals_keyword("SeLeCt", "select"));
  EXPECT_FALSE(r::iequals_keyword("selects", "select"));
}

}  // namespace

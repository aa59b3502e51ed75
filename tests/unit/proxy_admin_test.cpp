// Unit tests of the admin console's statement reader (PgBouncer's grammar), its result writer and the SHOW STATS averages.
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "protocol/codec.hpp"
#include "protocol/framing.hpp"
#include "proxy/admin.hpp"
#include "proxy/pool_stats.hpp"

namespace {

using pgsluice::proxy::admin_statement;
using pgsluice::proxy::parse_admin_statement;
using kind = admin_statement::kind;

struct parse_case {
  const char* name;
  std::string query;
  kind k;
  std::string cmd;
  std::string arg;
  std::string value;
};

// Each case was checked against PgBouncer 1.18's console (accepted or "invalid command").
const parse_case parse_cases[] = {
    {"bare", "SHOW POOLS", kind::command, "SHOW", "POOLS", ""},
    {"lower", "show pools", kind::command, "show", "pools", ""},
    {"spaces_and_semicolon", "  SHOW   POOLS ;  ", kind::command, "SHOW", "POOLS", ""},
    {"newlines", "\n\tshow\r\nstats\n;\n", kind::command, "show", "stats", ""},
    {"no_arg", "RELOAD;", kind::command, "RELOAD", "", ""},
    {"quoted_arg", "SHOW \"pools\"", kind::command, "SHOW", "pools", ""},
    {"quoted_with_quote", "PAUSE \"my\"\"db\"", kind::command, "PAUSE", "my\"db", ""},
    {"quoted_keeps_case_and_spaces", "PAUSE \"My Db\"", kind::command, "PAUSE", "My Db", ""},
    {"empty", "", kind::syntax_error, "", "", ""},
    {"only_semicolon", ";", kind::syntax_error, "", "", ""},
    {"two_statements", "show pools; show stats", kind::syntax_error, "", "", ""},
    {"three_words", "pause postgres extra", kind::syntax_error, "", "", ""},
    {"single_quoted_arg", "show 'pools'", kind::syntax_error, "", "", ""},
    {"empty_quotes", "SHOW \"\"", kind::syntax_error, "", "", ""},
    {"unterminated_quote", "SHOW \"pools", kind::syntax_error, "", "", ""},
    {"punctuation", "select 1+1", kind::syntax_error, "", "", ""},
    {"two_semicolons", "show pools;;", kind::syntax_error, "", "", ""},
    {"set_word", "SET verbose = 1", kind::set, "", "verbose", "1"},
    {"set_to_string", "set server_reset_query to 'DISCARD ''ALL'''", kind::set, "", "server_reset_query", "DISCARD 'ALL'"},
    {"set_without_value", "SET verbose =", kind::syntax_error, "", "", ""},
    {"long_command", "abcdefghijklmnopq", kind::bad_arguments, "", "", ""},
    {"long_argument", "pause " + std::string(64, 'x'), kind::bad_arguments, "", "", ""},
    {"longest_argument", "pause " + std::string(63, 'x'), kind::command, "pause", std::string(63, 'x'), ""},
};

class admin_parse : public ::testing::TestWithParam<parse_case> {};

TEST_P(admin_parse, reads_as_pgbouncer) {
  const auto& c = GetParam();
  const auto st = parse_admin_statement(c.query);
  EXPECT_EQ(st.k, c.k);
  if (c.k == kind::command) {
    EXPECT_EQ(st.cmd, c.cmd);
    EXPECT_EQ(st.arg, c.arg);
  }
  if (c.k == kind::set) {
    EXPECT_EQ(st.arg, c.arg);
    EXPECT_EQ(st.value, c.value);
  }
}

INSTANTIATE_TEST_SUITE_P(cases, admin_parse, ::testing::ValuesIn(parse_cases),
                         [](const auto& info) { return std::string(info.param.name); });

// Whatever the bytes, the reader answers with one of its kinds and never reads out of bounds.
TEST(admin_parse_fuzz, random_input_never_breaks_it) {
  std::mt19937 rng(42);
  const std::string alphabet = "aZ09_ \t\n\r;\"'=,()*\\\x01\xff\xc3\xa9";
  for (int i = 0; i < 20000; ++i) {
    std::string q(rng() % 40, ' ');
    for (auto& ch : q) ch = alphabet[rng() % alphabet.size()];
    const auto st = parse_admin_statement(q);
    EXPECT_LE(static_cast<int>(st.k), static_cast<int>(kind::bad_arguments));
  }
}

TEST(admin_result, row_description_has_pgbouncer_types) {
  using T = pgsluice::proxy::admin_result::type;
  std::vector<std::uint8_t> out;
  pgsluice::proxy::admin_result r(out, {{"database", T::text}, {"cl_active", T::int4}, {"total_xact_count", T::numeric},
                                        {"connect_time", T::timestamp}, {"lag_bytes", T::int8}});
  r.row({pgsluice::proxy::text("db"), pgsluice::proxy::num(1), std::nullopt, pgsluice::proxy::text("t"),
         pgsluice::proxy::num(std::uint64_t{5})});
  const auto f = pgsluice::protocol::next_frame(out);
  ASSERT_TRUE(f.is_frame());
  const auto m = pgsluice::protocol::decode_backend(f.f);
  ASSERT_TRUE(m);
  const auto& rd = std::get<pgsluice::protocol::row_description>(*m);
  ASSERT_EQ(rd.fields.size(), 5u);
  EXPECT_EQ(rd.fields[0].type_oid, 25u);
  EXPECT_EQ(rd.fields[1].type_oid, 23u);
  EXPECT_EQ(rd.fields[2].type_oid, 1700u);
  EXPECT_EQ(rd.fields[3].type_oid, 25u);
  EXPECT_EQ(rd.fields[4].type_oid, 20u);
  const auto d = pgsluice::protocol::next_frame(std::span<const std::uint8_t>(out).subspan(f.f.size));
  ASSERT_TRUE(d.is_frame());
  const auto row = pgsluice::protocol::decode_backend(d.f);
  ASSERT_TRUE(row);
  const auto& dr = std::get<pgsluice::protocol::data_row>(*row);
  ASSERT_EQ(dr.columns.size(), 5u);
  EXPECT_FALSE(dr.columns[2].has_value());
}

// PgBouncer's calc_average: per second for counts, bytes and wait; per query / transaction for times.
TEST(pool_stats, averages_as_pgbouncer) {
  pgsluice::proxy::stats_totals old;
  old.query_count = 100;
  old.xact_count = 10;
  old.query_time_us = 1000;
  old.xact_time_us = 500;
  pgsluice::proxy::stats_totals cur = old;
  cur.query_count += 300;
  cur.xact_count += 30;
  cur.bytes_received = 6000;
  cur.bytes_sent = 12000;
  cur.query_time_us += 3000;  // 10 us per query
  cur.xact_time_us += 600;    // 20 us per transaction
  cur.wait_time_us = 1500;
  const auto a = pgsluice::proxy::average_of(cur, old, std::chrono::seconds(3));
  EXPECT_EQ(a.query_count, 100u);
  EXPECT_EQ(a.xact_count, 10u);
  EXPECT_EQ(a.bytes_received, 2000u);
  EXPECT_EQ(a.bytes_sent, 4000u);
  EXPECT_EQ(a.query_time_us, 10u);
  EXPECT_EQ(a.xact_time_us, 20u);
  EXPECT_EQ(a.wait_time_us, 500u);
  EXPECT_EQ(pgsluice::proxy::average_of(cur, old, std::chrono::microseconds(0)), pgsluice::proxy::stats_totals{});
}

// Counters are summed over the threads' shards; the window moves every period.
TEST(pool_stats, registry_sums_shards_and_rolls_the_window) {
  using clock = std::chrono::steady_clock;
  pgsluice::proxy::stats_registry reg(3);
  auto s = reg.get("db");
  EXPECT_EQ(reg.get("db"), s);
  s->add(pgsluice::proxy::database_stats::field::query_count, 2);
  std::thread([&] {
    pgsluice::proxy::database_stats::set_thread_shard(1);
    s->add(pgsluice::proxy::database_stats::field::query_count, 3);
  }).join();
  EXPECT_EQ(s->totals().query_count, 5u);
  const auto t0 = clock::now();
  reg.tick(t0 + std::chrono::seconds(2), std::chrono::seconds(1));
  reg.tick(t0 + std::chrono::seconds(4), std::chrono::seconds(1));
  const auto rows = reg.snapshot(t0 + std::chrono::seconds(4));
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].database, "db");
  EXPECT_EQ(rows[0].total.query_count, 5u);
  // The window starts at the tick before last, whose snapshot already held all 5.
  EXPECT_EQ(rows[0].average.query_count, 0u);
}

}  // namespace

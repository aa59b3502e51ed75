// Unit tests for weighted SQL files (--sql-file) and the read / write / mixed workloads over the seed data sets (no network).
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "bench/script.hpp"
#include "bench/sql_file.hpp"
#include "bench/workloads.hpp"

namespace pgsluice::bench {
namespace {

std::string error_of(std::string_view text) {
  try {
    parse_sql_file("f.sql", text);
  } catch (const script_error& e) {
    return e.what();
  }
  return {};
}

TEST(bench_sql_file, headers_make_weighted_named_typed_requests) {
  const auto requests = parse_sql_file("f.sql",
                                       "-- a comment about the file\n"
                                       "\n"
                                       "-- weight: 3\n"
                                       "-- name: recent purchases\n"
                                       "SELECT * FROM purchases\n"
                                       "  ORDER BY purchase_time DESC LIMIT 5;\n"
                                       "-- weight: 1\n"
                                       "-- type: read\n"
                                       "\\set id random(1, 10)\n"
                                       "BEGIN;\n"
                                       "UPDATE customers SET name = name WHERE customer_id = :id;\n"
                                       "COMMIT;\n"
                                       "-- name: a write\n"
                                       "INSERT INTO t VALUES (1);\n");
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[0].weight, 3u);
  EXPECT_EQ(requests[0].name, "recent purchases");
  EXPECT_EQ(requests[0].type, "read");
  EXPECT_EQ(requests[0].line, 3u);
  EXPECT_NE(requests[0].text.find("LIMIT 5;"), std::string::npos);
  EXPECT_EQ(requests[0].text.find("UPDATE"), std::string::npos);
  EXPECT_EQ(requests[1].type, "read");  // as the header says, whatever the SQL
  EXPECT_EQ(requests[1].weight, 1u);
  EXPECT_NE(requests[1].text.find("COMMIT;"), std::string::npos);
  EXPECT_EQ(requests[2].name, "a write");
  EXPECT_EQ(requests[2].type, "write");
  EXPECT_EQ(requests[2].weight, 1u);
}

TEST(bench_sql_file, statements_without_headers_are_requests_of_weight_one) {
  const auto requests = parse_sql_file("f.sql",
                                       "SELECT 1;\n"
                                       "SELECT count(*)\n"
                                       "  FROM weather;\n"
                                       "-- trailing comment\n"
                                       "DELETE FROM t WHERE false\n");
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[1].line, 2u);
  EXPECT_EQ(requests[1].type, "read");
  EXPECT_EQ(requests[2].type, "write");
  for (const auto& r : requests) EXPECT_EQ(r.weight, 1u);
  // Unnamed requests that begin with the same words are told apart by their line.
  EXPECT_EQ(requests[0].name, "select");
  EXPECT_NE(requests[1].name, requests[0].name);
}

TEST(bench_sql_file, classifies_reads_and_writes) {
  EXPECT_EQ(classify_sql_request("SELECT 1"), "read");
  EXPECT_EQ(classify_sql_request("  with x as (select 1) select * from x"), "read");
  EXPECT_EQ(classify_sql_request("WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x"), "write");
  EXPECT_EQ(classify_sql_request("BEGIN; SELECT 1; COMMIT;"), "read");
  EXPECT_EQ(classify_sql_request("BEGIN ISOLATION LEVEL SERIALIZABLE; UPDATE t SET a = 1; COMMIT;"), "write");
  EXPECT_EQ(classify_sql_request("SELECT * FROM t FOR UPDATE"), "write");
  EXPECT_EQ(classify_sql_request("SELECT 'insert into' FROM t"), "read");
  EXPECT_EQ(classify_sql_request("INSERT INTO t VALUES (1)"), "write");
}

TEST(bench_sql_file, bad_files_name_the_line) {
  EXPECT_EQ(error_of("-- weight: 3\nSELECT 1;\n-- weight: x\nSELECT 2;\n"),
            "f.sql:3: -- weight: 'x' is not a whole number from 1 to 1000000");
  EXPECT_EQ(error_of("-- weight: 0\nSELECT 1;\n"), "f.sql:1: -- weight: '0' is not a whole number from 1 to 1000000");
  EXPECT_EQ(error_of("-- weight: 99999999\nSELECT 1;\n"),
            "f.sql:1: -- weight: '99999999' is not a whole number from 1 to 1000000");
  EXPECT_EQ(error_of("SELECT 1;\n-- weight 3\nSELECT 2;\n"),
            "f.sql:2: malformed header '-- weight 3' (write '-- weight: VALUE')");
  EXPECT_EQ(error_of("-- type: maybe\nSELECT 1;\n"), "f.sql:1: -- type: 'maybe' is not read or write");
  EXPECT_EQ(error_of("-- weight: 2\n-- weight: 3\nSELECT 1;\n"),
            "f.sql:2: a second '-- weight:' in the request starting at line 1");
  EXPECT_EQ(error_of("SELECT 1;\n-- weight: 2\n\\set x 1\n-- weight: 3\nSELECT 2;\n"),
            "f.sql:2: the request starting here has no SQL statement before line 4");
  EXPECT_EQ(error_of("\\set x 1\n-- weight: 3\nSELECT 2;\n"), "f.sql:1: these \\set lines are followed by no SQL statement");
  EXPECT_EQ(error_of("-- weight: 2\nSELECT 1;\n-- weight: 5\n"),
            "f.sql:3: the request starting here has no SQL statement before the end of the file");
  EXPECT_EQ(error_of("-- name: a\nSELECT 1;\n-- name: a\nSELECT 2;\n"),
            "f.sql:3: the name 'a' is used by the request at line 1 too");
  EXPECT_EQ(error_of("SELECT 1;\nSELECT 'oops;\nSELECT 2;\n"), "f.sql:2: unterminated quoted string starting here");
  EXPECT_EQ(error_of("-- name:\nSELECT 1;\n"), "f.sql:1: '-- name:' needs a value");
  EXPECT_EQ(error_of(""), "f.sql: no SQL statement in the file");
  EXPECT_EQ(error_of("-- only a comment\n\n"), "f.sql: no SQL statement in the file");
  // Prose in a comment is not a header.
  EXPECT_EQ(error_of("-- name the columns explicitly\nSELECT 1;\n"), "");
}

TEST(bench_sql_file, workload_picks_requests_by_weight_and_reports_their_kinds) {
  const auto w = make_sql_file_workload("f.sql",
                                        "-- weight: 3\n-- name: often\nSELECT 1;\n"
                                        "-- weight: 1\n-- name: seldom\n\\set n random(5, 5)\nINSERT INTO t VALUES (:n);\n",
                                        {});
  ASSERT_EQ(w->request_kinds().size(), 2u);
  EXPECT_EQ(w->request_kinds()[0].name, "often");
  EXPECT_EQ(w->request_kinds()[1].type, "write");
  rng r(3);
  transaction tx;
  std::map<std::uint32_t, int> seen;
  for (int i = 0; i < 8000; ++i) {
    tx.clear();
    w->next(r, tx);
    ++seen[tx.kind()];
    if (tx.kind() == 1) {
      ASSERT_EQ(tx.size(), 1u);
      EXPECT_EQ(tx[0].params.at(0), "5");
    }
  }
  EXPECT_NEAR(seen[0] / 8000.0, 0.75, 0.03);
}

TEST(bench_sql_file, script_errors_name_the_line_of_the_file) {
  try {
    make_sql_file_workload("f.sql", "SELECT 1;\n\n-- weight: 2\nSELECT :nope;\n", {});
    FAIL() << "expected an error";
  } catch (const script_error& e) {
    EXPECT_EQ(std::string(e.what()), "f.sql:4: undefined variable :nope in SQL command");
  }
}

dataset_info with(bool purchases, bool weather, bool vehicles) {
  dataset_info d;
  d.has_purchases = purchases;
  d.has_weather = weather;
  d.has_vehicles = vehicles;
  d.sizes = dataset_sizes::for_scale(1);
  return d;
}

// Kind index -> count over many requests.
std::map<std::string, int> kinds_drawn(const transaction_source& w, int n = 6000) {
  rng r(11);
  transaction tx;
  std::map<std::string, int> out;
  for (int i = 0; i < n; ++i) {
    tx.clear();
    w.next(r, tx);
    const request_kind& k = w.request_kinds().at(tx.kind());
    ++out[k.type + " " + k.name];
    for (const auto& c : std::vector<command>{tx[0]}) EXPECT_EQ(c.params.size(), w.statements()[c.statement].param_count);
  }
  return out;
}

TEST(bench_workloads_users, read_write_and_mixed_cover_every_data_set_loaded) {
  workload_options o;
  o.name = "read";
  const auto reads = kinds_drawn(*make_workload(o, with(true, true, true)));
  EXPECT_EQ(reads.size(), 5u);
  for (const auto& [k, n] : reads) EXPECT_EQ(k.rfind("read ", 0), 0u) << k;
  EXPECT_TRUE(reads.count("read vehicles-within") && reads.count("read vehicles-in-box") && reads.count("read weather-avg"));
  o.name = "write";
  const auto writes = kinds_drawn(*make_workload(o, with(true, true, true)));
  EXPECT_EQ(writes.size(), 3u);
  EXPECT_TRUE(writes.count("write insert-weather") && writes.count("write insert-vehicle-position"));
  // Only what is loaded: without vehicles, no spatial request.
  o.name = "read";
  EXPECT_EQ(kinds_drawn(*make_workload(o, with(true, true, false))).count("read vehicles-within"), 0u);
  o.name = "mixed";
  o.read_ratio = 0.8;
  int read = 0, total = 0;
  for (const auto& [k, n] : kinds_drawn(*make_workload(o, with(true, true, true)), 10000)) {
    total += n;
    if (k.rfind("read ", 0) == 0) read += n;
  }
  EXPECT_NEAR(read / static_cast<double>(total), 0.8, 0.02);
}

TEST(bench_workloads_users, read_without_any_seed_data_set_says_how_to_load_one) {
  workload_options o;
  o.name = "mixed";
  try {
    make_workload(o, with(false, false, false));
    FAIL() << "expected an error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("bench init"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace pgsluice::bench

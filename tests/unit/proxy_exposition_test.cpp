// The Prometheus text exposition writer: HELP/TYPE lines, escaping, cumulative histogram buckets with +Inf, _sum and _count.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "proxy/exposition.hpp"

namespace pgsluice::test {
namespace {

using namespace pgsluice::proxy::prom;

TEST(exposition, counter_and_gauge_with_help_type_and_labels) {
  std::vector<family> f(2);
  f[0].name = "pgsluice_transactions_total";
  f[0].help = "Transactions completed.";
  f[0].type = metric_type::counter;
  f[0].samples.push_back({{}, 42});
  f[1].name = "pgsluice_clients";
  f[1].help = "Clients by state.";
  f[1].type = metric_type::gauge;
  f[1].samples.push_back({{{"state", "idle"}}, 3});
  f[1].samples.push_back({{{"state", "active"}, {"pool", "a/b"}}, 0.5});
  EXPECT_EQ(write_text(f),
            "# HELP pgsluice_transactions_total Transactions completed.\n"
            "# TYPE pgsluice_transactions_total counter\n"
            "pgsluice_transactions_total 42\n"
            "# HELP pgsluice_clients Clients by state.\n"
            "# TYPE pgsluice_clients gauge\n"
            "pgsluice_clients{state=\"idle\"} 3\n"
            "pgsluice_clients{state=\"active\",pool=\"a/b\"} 0.5\n");
}

TEST(exposition, label_values_escape_backslash_quote_and_newline) {
  EXPECT_EQ(escape_label_value(R"(a\b"c)" "\n" "d"), R"(a\\b\"c\nd)");
  EXPECT_EQ(escape_label_value("plain ünïcode"), "plain ünïcode");
  std::vector<family> f(1);
  f[0].name = "m";
  f[0].help = "line one\nline \\two \"quoted\"";
  f[0].samples.push_back({{{"database", "we\"ird\\db\n"}}, 1});
  // HELP escapes backslash and newline only; label values also the double quote.
  EXPECT_EQ(write_text(f),
            "# HELP m line one\\nline \\\\two \"quoted\"\n"
            "# TYPE m gauge\n"
            "m{database=\"we\\\"ird\\\\db\\n\"} 1\n");
}

TEST(exposition, histogram_buckets_are_cumulative_and_end_with_inf) {
  std::vector<family> f(1);
  f[0].name = "pgsluice_pool_wait_seconds";
  f[0].help = "Waits.";
  f[0].type = metric_type::histogram;
  histogram_sample h;
  h.label_set = {{"pool", "p"}};
  h.bounds = {0.01, 0.1, 1};
  h.counts = {2, 0, 3, 4};  // 4 above the largest bound
  h.sum = 12.5;
  f[0].histograms.push_back(h);
  EXPECT_EQ(write_text(f),
            "# HELP pgsluice_pool_wait_seconds Waits.\n"
            "# TYPE pgsluice_pool_wait_seconds histogram\n"
            "pgsluice_pool_wait_seconds_bucket{pool=\"p\",le=\"0.01\"} 2\n"
            "pgsluice_pool_wait_seconds_bucket{pool=\"p\",le=\"0.1\"} 2\n"
            "pgsluice_pool_wait_seconds_bucket{pool=\"p\",le=\"1\"} 5\n"
            "pgsluice_pool_wait_seconds_bucket{pool=\"p\",le=\"+Inf\"} 9\n"
            "pgsluice_pool_wait_seconds_sum{pool=\"p\"} 12.5\n"
            "pgsluice_pool_wait_seconds_count{pool=\"p\"} 9\n");
}

TEST(exposition, histogram_without_labels_and_without_observations) {
  std::vector<family> f(1);
  f[0].name = "h";
  f[0].help = "h";
  f[0].type = metric_type::histogram;
  f[0].histograms.push_back({{}, {0.5}, {0, 0}, 0});
  EXPECT_EQ(write_text(f),
            "# HELP h h\n# TYPE h histogram\n"
            "h_bucket{le=\"0.5\"} 0\nh_bucket{le=\"+Inf\"} 0\nh_sum 0\nh_count 0\n");
}

TEST(exposition, families_without_samples_are_left_out) {
  std::vector<family> f(2);
  f[0].name = "empty";
  f[0].help = "nothing yet";
  f[1].name = "one";
  f[1].help = "x";
  f[1].samples.push_back({{}, 1});
  EXPECT_EQ(write_text(f), "# HELP one x\n# TYPE one gauge\none 1\n");
}

TEST(exposition, values_are_exact_and_special_values_spelled_as_prometheus_reads_them) {
  EXPECT_EQ(format_value(0), "0");
  EXPECT_EQ(format_value(123456789012), "123456789012");
  EXPECT_EQ(format_value(0.25), "0.25");
  EXPECT_EQ(format_value(1e20), "1e+20");
  EXPECT_EQ(format_value(-3), "-3");
  EXPECT_EQ(format_value(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(format_value(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(format_value(std::nan("")), "NaN");
}

TEST(exposition, names) {
  EXPECT_TRUE(valid_metric_name("pgsluice_client_received_bytes_total"));
  EXPECT_TRUE(valid_metric_name("job:rate5m"));
  EXPECT_FALSE(valid_metric_name("1abc"));
  EXPECT_FALSE(valid_metric_name("a-b"));
  EXPECT_FALSE(valid_metric_name(""));
  EXPECT_TRUE(valid_label_name("sqlstate_class"));
  EXPECT_FALSE(valid_label_name("__name__"));
  EXPECT_FALSE(valid_label_name("a:b"));
}

}  // namespace
}  // namespace pgsluice::test

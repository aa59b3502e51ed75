// What the report files share among themselves: target and group order, number texts, HTML escaping and the SVG charts.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bench/report.hpp"

namespace pgsluice::bench::detail {

inline double ms(std::uint64_t ns) { return static_cast<double>(ns) / 1e6; }

// The order targets appear in: as configured, then anything else in first-seen order.
std::vector<std::string> target_order(const bench_run& run);
// Groups in the order of their first result.
std::vector<group_key> groups_of(const bench_run& run);
// The results of one target in one group (its repeats).
std::vector<const run_result*> results_of(const bench_run& run, const group_key& g, const std::string& target);

std::string ratio_text(const std::optional<double>& r);   // "1.23x" or "-"
std::string change_text(double before, double after);      // "+12.3%" or "-"
std::string stale_text(const std::optional<std::uint64_t>& n);   // the count or "-"
std::string memory_text(const std::optional<memory_usage>& m);   // MiB (PSS, else RSS) or "-"
std::string esc(std::string_view s);                       // HTML text and attribute values
std::string color_of(const std::string& target, std::size_t index);

// The page's <head> with its styles, up to and including <body>.
std::string html_head(const std::string& title);

struct bar_series {
  std::string name;
  std::string color;            // empty: color each bar by its category (target)
  std::vector<double> values;   // one per category
};
std::string bar_chart(const std::string& title, const std::string& y_label, const std::vector<std::string>& categories,
                      const std::vector<bar_series>& series, const std::vector<std::string>& category_colors,
                      const char* value_format);

struct line_series {
  std::string name;
  std::string color;
  std::vector<std::pair<double, double>> points;
};
// `shade_until` > 0 greys the warm-up.
std::string line_chart(const std::string& title, const std::string& y_label, const std::vector<line_series>& lines,
                       double shade_until);

// Side by side, per group and target: run `a`, run `b` and the change from a to b (tables and bars).
std::string comparison_html(const bench_run& a, const bench_run& b);

// The repeat whose requests/s is closest to the median: the timeline shown for a target.
const run_result* representative(const bench_run& run, const group_key& g, const std::string& target);

}  // namespace pgsluice::bench::detail

// The Prometheus text exposition format 0.0.4: metric families in, the scrape's body out (pure, no I/O).
//
// https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format
// One HELP and one TYPE line per family, then its samples; label values escape backslash,
// double quote and newline, HELP text backslash and newline. A histogram is given per bucket
// (not cumulative) with one more count for the observations above its largest bound: the
// writer makes the buckets cumulative, adds le="+Inf" (equal to _count) and writes _sum and
// _count. Families without samples are left out, as the client libraries do.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pgsluice::proxy::prom {

enum class metric_type : std::uint8_t { counter, gauge, histogram };

using labels = std::vector<std::pair<std::string, std::string>>;

struct sample {
  labels label_set;
  double value = 0;
};

struct histogram_sample {
  labels label_set;
  std::vector<double> bounds;         // upper bounds, increasing
  std::vector<std::uint64_t> counts;  // bounds.size() + 1 entries: per bucket, the last above every bound
  double sum = 0;
};

struct family {
  std::string name;  // with its unit and _total for counters: pgsluice_client_received_bytes_total
  std::string help;
  metric_type type = metric_type::gauge;
  std::vector<sample> samples;
  std::vector<histogram_sample> histograms;  // metric_type::histogram only
};

// The Content-Type of what write_text() produces.
inline constexpr std::string_view content_type = "text/plain; version=0.0.4; charset=utf-8";

std::string write_text(std::span<const family> families);

// Pieces, exposed for the tests.
std::string escape_label_value(std::string_view v);
std::string escape_help(std::string_view v);
std::string format_value(double v);  // shortest exact form; +Inf, -Inf, NaN
bool valid_metric_name(std::string_view n) noexcept;  // [a-zA-Z_:][a-zA-Z0-9_:]*
bool valid_label_name(std::string_view n) noexcept;   // [a-zA-Z_][a-zA-Z0-9_]*, not starting with __

}  // namespace pgsluice::proxy::prom

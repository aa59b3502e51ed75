// The HTML report's building blocks: escaping, target colors, the page head and self-contained SVG bar and line charts.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "bench/report_detail.hpp"

namespace pgsluice::bench::detail {

namespace {

// A tick step of 1, 2 or 5 times a power of ten giving about five ticks.
double nice_step(double max) {
  if (max <= 0) return 1;
  const double raw = max / 5;
  const double power = std::pow(10, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (raw <= m * power) return m * power;
  return 10 * power;
}

std::string tick_label(double v) {
  if (v >= 1e6) return fmt::format("{:g}M", v / 1e6);
  if (v >= 1e4) return fmt::format("{:g}k", v / 1e3);
  return fmt::format("{:g}", v);
}

constexpr int chart_w = 560, chart_h = 280, margin_l = 60, margin_r = 16, margin_t = 32, margin_b = 56;

// Frame, title, horizontal grid lines and y labels; returns the y-axis maximum used.
double chart_frame(std::string& svg, const std::string& title, const std::string& y_label, double max_value) {
  const double step = nice_step(max_value);
  const double top = std::max(step, std::ceil(max_value / step) * step);
  const int plot_h = chart_h - margin_t - margin_b;
  svg += fmt::format("<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\" role=\"img\">",
                     chart_w, chart_h, chart_w, chart_h);
  // Styles inside each chart, so a chart copied out of the page still renders the same.
  svg += "<style>text{font-family:system-ui,-apple-system,Segoe UI,sans-serif}.title{font-size:13px;font-weight:600}"
         ".tick{font-size:11px;fill:#4b5563}.axis{font-size:11px;fill:#374151}.value{font-size:10px;fill:#111827}"
         ".grid{stroke:#e5e7eb}.warmup{fill:#f3f4f6}</style>";
  svg += fmt::format("<title>{}</title><text x=\"{}\" y=\"18\" class=\"title\">{}</text>", esc(title), margin_l, esc(title));
  for (double v = 0; v <= top + step / 2; v += step) {
    const double y = margin_t + plot_h - v / top * plot_h;
    svg += fmt::format("<line x1=\"{}\" y1=\"{:.1f}\" x2=\"{}\" y2=\"{:.1f}\" class=\"grid\"/>", margin_l, y,
                       chart_w - margin_r, y);
    svg += fmt::format("<text x=\"{}\" y=\"{:.1f}\" class=\"tick\" text-anchor=\"end\">{}</text>", margin_l - 6, y + 4,
                       tick_label(v));
  }
  svg += fmt::format("<text transform=\"translate(14 {}) rotate(-90)\" class=\"axis\" text-anchor=\"middle\">{}</text>",
                     margin_t + plot_h / 2, esc(y_label));
  return top;
}

}  // namespace

std::string html_head(const std::string& title) {
  return "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>" + esc(title) +
         "</title><style>"
         "body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2em;color:#111827;max-width:1200px}"
         "h1{font-size:1.6em}h2{font-size:1.25em;margin-top:2em;border-bottom:1px solid #e5e7eb}"
         "table{border-collapse:collapse;margin:1em 0;font-size:.9em}th,td{padding:.3em .7em;text-align:right;"
         "border-bottom:1px solid #e5e7eb}th:first-child,td:first-child{text-align:left}td.bad{color:#b91c1c;font-weight:600}"
         "td.better{color:#15803d}td.worse{color:#b91c1c}"
         "tr.errors td{color:#b91c1c;font-size:.85em;text-align:left}tr.shares td{color:#374151;font-size:.85em;text-align:left}.meta{color:#4b5563;font-size:.9em}"
         ".charts{display:flex;flex-wrap:wrap;gap:1em}.chart{background:#fafafa;border:1px solid #e5e7eb}"
         "</style></head><body>\n";
}

std::string esc(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string color_of(const std::string& target, std::size_t index) {
  static const std::map<std::string, std::string> known{{"direct", "#6b7280"},
                                                        {"pgbouncer", "#2563eb"},
                                                        {"pgpool", "#ea580c"},
                                                        {"pgbouncer-pgpool", "#9333ea"},
                                                        {"pgsluice", "#16a34a"},
                                                        {"pgsluice-routed", "#0d9488"}};
  static const char* palette[] = {"#0891b2", "#db2777", "#ca8a04", "#4f46e5", "#65a30d", "#dc2626"};
  if (auto it = known.find(target); it != known.end()) return it->second;
  return palette[index % (sizeof palette / sizeof *palette)];
}

std::string bar_chart(const std::string& title, const std::string& y_label, const std::vector<std::string>& categories,
                      const std::vector<bar_series>& series, const std::vector<std::string>& category_colors,
                      const char* value_format) {
  double max_value = 0;
  for (const auto& s : series)
    for (double v : s.values) max_value = std::max(max_value, v);
  std::string svg;
  const double top = chart_frame(svg, title, y_label, max_value);
  const int plot_w = chart_w - margin_l - margin_r, plot_h = chart_h - margin_t - margin_b;
  const double slot = static_cast<double>(plot_w) / static_cast<double>(std::max<std::size_t>(1, categories.size()));
  const double bar_w = slot * 0.8 / static_cast<double>(std::max<std::size_t>(1, series.size()));
  for (std::size_t c = 0; c < categories.size(); ++c) {
    const double x0 = margin_l + slot * static_cast<double>(c) + slot * 0.1;
    for (std::size_t s = 0; s < series.size(); ++s) {
      const double v = c < series[s].values.size() ? series[s].values[c] : 0;
      const double h = top > 0 ? v / top * plot_h : 0;
      const double x = x0 + bar_w * static_cast<double>(s);
      const std::string& color = series[s].color.empty() ? category_colors[c] : series[s].color;
      svg += fmt::format("<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"{}\"><title>{} {}: {}</title></rect>",
                         x, margin_t + plot_h - h, bar_w - 2, h, color, esc(categories[c]), esc(series[s].name),
                         fmt::format(fmt::runtime(value_format), v));
      if (series.size() == 1)
        svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" class=\"value\" text-anchor=\"middle\">{}</text>",
                           x + (bar_w - 2) / 2, margin_t + plot_h - h - 4, fmt::format(fmt::runtime(value_format), v));
    }
    svg += fmt::format("<text x=\"{:.1f}\" y=\"{}\" class=\"tick\" text-anchor=\"middle\">{}</text>", x0 + slot * 0.4,
                       chart_h - margin_b + 16, esc(categories[c]));
  }
  if (series.size() > 1) {
    double lx = margin_l;
    for (const auto& s : series) {
      svg += fmt::format("<rect x=\"{:.1f}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{}\"/><text x=\"{:.1f}\" y=\"{}\" class=\"tick\">{}</text>",
                         lx, chart_h - 20, s.color, lx + 14, chart_h - 11, esc(s.name));
      lx += 24 + 7.0 * static_cast<double>(s.name.size());
    }
  }
  svg += "</svg>";
  return svg;
}

std::string line_chart(const std::string& title, const std::string& y_label, const std::vector<line_series>& lines,
                       double shade_until) {
  double max_x = 1, max_y = 0;
  for (const auto& l : lines)
    for (const auto& [x, y] : l.points) {
      max_x = std::max(max_x, x);
      max_y = std::max(max_y, y);
    }
  std::string svg;
  const double top = chart_frame(svg, title, y_label, max_y);
  const int plot_w = chart_w - margin_l - margin_r, plot_h = chart_h - margin_t - margin_b;
  auto px = [&](double x) { return margin_l + x / max_x * plot_w; };
  auto py = [&](double y) { return margin_t + plot_h - (top > 0 ? y / top * plot_h : 0); };
  if (shade_until > 0)
    svg += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{:.1f}\" height=\"{}\" class=\"warmup\"><title>warm-up (not counted)</title></rect>",
                       margin_l, margin_t, px(std::min(shade_until, max_x)) - margin_l, plot_h);
  const double xstep = nice_step(max_x);
  for (double x = 0; x <= max_x + xstep / 2; x += xstep)
    svg += fmt::format("<text x=\"{:.1f}\" y=\"{}\" class=\"tick\" text-anchor=\"middle\">{}s</text>", px(x),
                       chart_h - margin_b + 16, tick_label(x));
  double lx = margin_l;
  for (const auto& l : lines) {
    std::string pts;
    for (const auto& [x, y] : l.points) pts += fmt::format("{:.1f},{:.1f} ", px(x), py(y));
    svg += fmt::format("<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\" points=\"{}\"><title>{}</title></polyline>",
                       l.color, pts, esc(l.name));
    svg += fmt::format("<rect x=\"{:.1f}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{}\"/><text x=\"{:.1f}\" y=\"{}\" class=\"tick\">{}</text>",
                       lx, chart_h - 20, l.color, lx + 14, chart_h - 11, esc(l.name));
    lx += 24 + 7.0 * static_cast<double>(l.name.size());
  }
  svg += "</svg>";
  return svg;
}

}  // namespace pgsluice::bench::detail

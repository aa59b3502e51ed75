// The Prometheus text exposition writer (see exposition.hpp).
#include "proxy/exposition.hpp"

#include <cmath>

#include <fmt/format.h>

namespace pgsluice::proxy::prom {

namespace {

bool name_char(char c, bool first, bool colon) noexcept {
  const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':');
  return letter || (!first && c >= '0' && c <= '9');
}

// {a="x",b="y"} with `extra` (le="0.5") last; nothing when there are no labels at all.
void write_labels(std::string& out, const labels& ls, std::string_view extra_name = {}, std::string_view extra_value = {}) {
  if (ls.empty() && extra_name.empty()) return;
  out += '{';
  bool first = true;
  for (const auto& [k, v] : ls) {
    if (!first) out += ',';
    first = false;
    out += k;
    out += "=\"";
    out += escape_label_value(v);
    out += '"';
  }
  if (!extra_name.empty()) {
    if (!first) out += ',';
    out += extra_name;
    out += "=\"";
    out += extra_value;
    out += '"';
  }
  out += '}';
}

void write_line(std::string& out, std::string_view name, std::string_view suffix, const labels& ls, double value,
                std::string_view extra_name = {}, std::string_view extra_value = {}) {
  out += name;
  out += suffix;
  write_labels(out, ls, extra_name, extra_value);
  out += ' ';
  out += format_value(value);
  out += '\n';
}

std::string_view type_name(metric_type t) noexcept {
  switch (t) {
    case metric_type::counter: return "counter";
    case metric_type::gauge: return "gauge";
    case metric_type::histogram: return "histogram";
  }
  return "untyped";
}

}  // namespace

bool valid_metric_name(std::string_view n) noexcept {
  if (n.empty()) return false;
  for (std::size_t i = 0; i < n.size(); ++i) {
    if (!name_char(n[i], i == 0, true)) return false;
  }
  return true;
}

bool valid_label_name(std::string_view n) noexcept {
  if (n.empty() || n.starts_with("__")) return false;
  for (std::size_t i = 0; i < n.size(); ++i) {
    if (!name_char(n[i], i == 0, false)) return false;
  }
  return true;
}

namespace {
// Backslash and newline always; the double quote only inside a label value.
std::string escape(std::string_view v, bool quote) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (quote && c == '"') {
      out += "\\\"";
    } else {
      out += c;
    }
  }
  return out;
}
}  // namespace

std::string escape_label_value(std::string_view v) { return escape(v, true); }
std::string escape_help(std::string_view v) { return escape(v, false); }

std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  // fmt's shortest representation that reads back exactly: 42, 0.25, 1e+20.
  return fmt::format("{}", v);
}

std::string write_text(std::span<const family> families) {
  std::string out;
  for (const auto& f : families) {
    if (f.samples.empty() && f.histograms.empty()) continue;
    out += "# HELP ";
    out += f.name;
    out += ' ';
    out += escape_help(f.help);
    out += "\n# TYPE ";
    out += f.name;
    out += ' ';
    out += type_name(f.type);
    out += '\n';
    for (const auto& s : f.samples) write_line(out, f.name, "", s.label_set, s.value);
    for (const auto& h : f.histograms) {
      std::uint64_t cumulative = 0;
      for (std::size_t i = 0; i < h.bounds.size(); ++i) {
        if (i < h.counts.size()) cumulative += h.counts[i];
        write_line(out, f.name, "_bucket", h.label_set, static_cast<double>(cumulative), "le", format_value(h.bounds[i]));
      }
      for (std::size_t i = h.bounds.size(); i < h.counts.size(); ++i) cumulative += h.counts[i];
      write_line(out, f.name, "_bucket", h.label_set, static_cast<double>(cumulative), "le", "+Inf");
      write_line(out, f.name, "_sum", h.label_set, h.sum);
      write_line(out, f.name, "_count", h.label_set, static_cast<double>(cumulative));
    }
  }
  return out;
}

}  // namespace pgsluice::proxy::prom

// What a failover run's client events and the targets' logs say: counts, held writes, recovery, timeline, detection lines.
#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>

#include "bench/failover.hpp"

namespace pgsluice::bench {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Nearest-rank percentile of sorted values (0 when empty).
double percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  const auto rank = static_cast<std::size_t>(std::ceil(p * static_cast<double>(sorted.size())));
  return sorted[std::min(sorted.size() - 1, rank == 0 ? 0 : rank - 1)];
}

// Words each target's log uses when a server goes away. pgsluice logs at info level in
// the bench with connections not logged, so any line about a backend failing counts;
// PgBouncer logs logins too, hence its narrower list.
struct detection_words {
  std::string_view target;
  std::array<std::string_view, 8> words;
};
constexpr detection_words detection_table[] = {
    {"pgsluice", {"down", "fail", "unreachable", "promot", "refused", "lost", "closed", "fenc"}},
    {"pgpool", {"degenerat", "failover", "health check", "failed to connect", "unable to read", "is down",
                "connection refused", "failed to make persistent"}},
    {"haproxy", {"is down", "no server available", "", "", "", "", "", ""}},
    {"pgbouncer", {"closing because", "connect failed", "crashed", "connection refused", "server_login_retry",
                   "", "", ""}},
};

}  // namespace

const std::vector<std::string>& failover_target_names() {
  static const std::vector<std::string> names{"pgsluice", "pgpool", "haproxy", "pgbouncer"};
  return names;
}

double held_write_threshold_ms(double p99_before_ms) { return std::max(100.0, 3 * p99_before_ms); }

event_summary summarize_events(const std::vector<op_event>& events, std::int64_t kill_us,
                               std::uint16_t old_primary_port, std::chrono::milliseconds bucket,
                               std::chrono::milliseconds duration) {
  event_summary s;
  std::vector<double> before;
  for (const auto& e : events)
    if (e.kind == op_kind::write && e.ok && e.end_us < kill_us)
      before.push_back(static_cast<double>(e.end_us - e.start_us) / 1000.0);
  std::sort(before.begin(), before.end());
  s.write_p50_before_ms = percentile(before, 0.50);
  s.write_p99_before_ms = percentile(before, 0.99);
  s.held_threshold_ms = held_write_threshold_ms(s.write_p99_before_ms);

  const std::int64_t bucket_us = std::max<std::int64_t>(1, std::chrono::duration_cast<std::chrono::microseconds>(bucket).count());
  const std::int64_t span_us = std::chrono::duration_cast<std::chrono::microseconds>(duration).count();
  const auto buckets = static_cast<std::size_t>((span_us + bucket_us - 1) / bucket_us);
  s.timeline.resize(buckets);
  for (std::size_t i = 0; i < buckets; ++i) s.timeline[i].t_ms = static_cast<std::uint32_t>(i * bucket_us / 1000);

  auto since_kill_ms = [&](std::int64_t t) { return static_cast<double>(t - kill_us) / 1000.0; };
  for (const auto& e : events) {
    const bool write = e.kind == op_kind::write;
    if (e.ok) {
      ++(write ? s.writes_ok : s.reads_ok);
    } else {
      ++(write ? s.write_errors : s.read_errors);
      if (e.end_us >= kill_us) {
        ++(write ? s.write_errors_after_kill : s.read_errors_after_kill);
        const double at = since_kill_ms(e.end_us);
        if (!s.first_error_after_kill_ms || at < *s.first_error_after_kill_ms) s.first_error_after_kill_ms = at;
      }
    }
    if (write && e.ok) {
      const double took = static_cast<double>(e.end_us - e.start_us) / 1000.0;
      // Held: slow, and answered after the kill (slow writes before it are the machine's noise).
      if (took > s.held_threshold_ms && e.end_us >= kill_us) {
        ++s.writes_held;
        s.max_held_ms = std::max(s.max_held_ms.value_or(0), took);
      }
      if (e.end_us >= kill_us && e.server_port != old_primary_port) {
        const double at = since_kill_ms(e.end_us);
        if (!s.first_write_after_kill_ms || at < *s.first_write_after_kill_ms) s.first_write_after_kill_ms = at;
      }
    }
    if (e.end_us < 0 || e.end_us >= span_us || buckets == 0) continue;
    failover_bucket& b = s.timeline[static_cast<std::size_t>(e.end_us / bucket_us)];
    if (write) ++(e.ok ? b.writes : b.write_errors);
    else ++(e.ok ? b.reads : b.read_errors);
  }
  return s;
}

bool is_detection_line(std::string_view target, std::string_view line) {
  const std::string l = lower(line);
  for (const auto& entry : detection_table) {
    if (entry.target != target) continue;
    for (const auto word : entry.words)
      if (!word.empty() && l.find(word) != std::string::npos) return true;
  }
  return false;
}

std::optional<std::string> first_detection_line(std::string_view target, std::string_view text) {
  std::size_t at = 0;
  while (at < text.size()) {
    const std::size_t nl = text.find('\n', at);
    const std::string_view line = text.substr(at, nl == std::string_view::npos ? std::string_view::npos : nl - at);
    if (is_detection_line(target, line)) return std::string(line);
    if (nl == std::string_view::npos) break;
    at = nl + 1;
  }
  return std::nullopt;
}

}  // namespace pgsluice::bench

// Internal to proxy/: the process figures of /metrics (CPU time, memory, descriptors, start time), read from /proc.
//
// Named as the Prometheus client libraries name them (process_cpu_seconds_total,
// process_resident_memory_bytes, ...), so dashboards made for any exporter work. The parsers
// are pure and unit-tested; read_process_stats() does the reading.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace pgsluice::proxy {

// Fields of /proc/self/stat (proc(5)), in clock ticks and pages as the kernel gives them.
struct proc_stat {
  std::uint64_t utime_ticks = 0;
  std::uint64_t stime_ticks = 0;
  std::uint64_t start_ticks = 0;  // after boot
  std::uint64_t vsize_bytes = 0;
  std::int64_t rss_pages = 0;
};
std::optional<proc_stat> parse_proc_stat(std::string_view text) noexcept;
// The "btime" line of /proc/stat: boot time, Unix seconds.
std::optional<std::int64_t> parse_boot_time(std::string_view text) noexcept;

struct process_stats {
  double cpu_seconds = 0;
  double resident_bytes = 0;
  double virtual_bytes = 0;
  double start_time_seconds = 0;  // Unix time
  double open_fds = 0;
  double max_fds = 0;
  bool ok = false;  // /proc/self/stat could be read
};
process_stats read_process_stats();

}  // namespace pgsluice::proxy

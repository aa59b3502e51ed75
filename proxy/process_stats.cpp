// The process figures of /metrics from /proc (see process_stats.hpp).
#include "proxy/process_stats.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <charconv>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace pgsluice::proxy {

namespace {

template <class T>
bool number(std::string_view s, T& out) noexcept {
  const auto r = std::from_chars(s.data(), s.data() + s.size(), out);
  return r.ec == std::errc{} && r.ptr == s.data() + s.size();
}

std::string slurp(const char* path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

std::optional<proc_stat> parse_proc_stat(std::string_view text) noexcept {
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so fields count from
  // the last ')'. Field 3 (state) is the first after it.
  const auto close = text.rfind(')');
  if (close == std::string_view::npos) return std::nullopt;
  std::string_view rest = text.substr(close + 1);
  std::string_view fields[22];
  std::size_t n = 0;
  while (n < 22) {
    const auto start = rest.find_first_not_of(" \n");
    if (start == std::string_view::npos) break;
    rest = rest.substr(start);
    const auto end = rest.find_first_of(" \n");
    fields[n++] = rest.substr(0, end);
    if (end == std::string_view::npos) break;
    rest = rest.substr(end);
  }
  if (n < 22) return std::nullopt;
  proc_stat s;
  // proc(5): utime (14), stime (15), starttime (22), vsize (23), rss (24); index = field - 3.
  if (!number(fields[11], s.utime_ticks) || !number(fields[12], s.stime_ticks) || !number(fields[19], s.start_ticks) ||
      !number(fields[20], s.vsize_bytes) || !number(fields[21], s.rss_pages))
    return std::nullopt;
  return s;
}

std::optional<std::int64_t> parse_boot_time(std::string_view text) noexcept {
  for (std::size_t at = 0; at < text.size();) {
    const auto end = std::min(text.find('\n', at), text.size());
    const std::string_view line = text.substr(at, end - at);
    if (line.starts_with("btime ")) {
      std::int64_t v = 0;
      if (number(line.substr(6), v)) return v;
      return std::nullopt;
    }
    at = end + 1;
  }
  return std::nullopt;
}

process_stats read_process_stats() {
  process_stats out;
  const long ticks = ::sysconf(_SC_CLK_TCK);
  const long page = ::sysconf(_SC_PAGESIZE);
  if (const auto st = parse_proc_stat(slurp("/proc/self/stat")); st && ticks > 0) {
    out.ok = true;
    out.cpu_seconds = static_cast<double>(st->utime_ticks + st->stime_ticks) / static_cast<double>(ticks);
    out.resident_bytes = static_cast<double>(st->rss_pages) * static_cast<double>(page);
    out.virtual_bytes = static_cast<double>(st->vsize_bytes);
    if (const auto boot = parse_boot_time(slurp("/proc/stat"))) {
      out.start_time_seconds = static_cast<double>(*boot) + static_cast<double>(st->start_ticks) / static_cast<double>(ticks);
    }
  }
  std::error_code ec;
  std::size_t fds = 0;
  for (std::filesystem::directory_iterator it("/proc/self/fd", ec), end; !ec && it != end; it.increment(ec)) ++fds;
  // The iterator's own descriptor is among those listed.
  out.open_fds = static_cast<double>(fds > 0 ? fds - 1 : 0);
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0) out.max_fds = static_cast<double>(rl.rlim_cur);
  return out;
}

}  // namespace pgsluice::proxy

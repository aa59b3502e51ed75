// What the reports say about the machine and the servers: cores, RAM, versions, and process-tree memory from /proc.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace pgsluice::bench {

struct machine_info {
  unsigned cores = 0;
  std::uint64_t ram_bytes = 0;
  std::string cpu_model;
  std::string kernel;
  std::string os;
  std::map<std::string, std::string> versions;  // "postgresql", "pgbouncer", "pgpool", "pgsluice", "libpq"
};

// Cores, RAM, CPU, kernel, OS and the versions of libpq and of the pgbouncer /
// pgpool / PostgreSQL binaries found on this machine (absent ones are left out).
machine_info collect_machine_info();

// Memory of a server: the process and all its descendants (PostgreSQL and
// Pgpool-II fork one process per connection).
struct memory_usage {
  std::uint64_t rss_kb = 0;      // sum of VmRSS (/proc/<pid>/status); counts shared pages once per process
  std::uint64_t pss_kb = 0;      // sum of Pss (/proc/<pid>/smaps_rollup): shared pages split fairly; 0 if unreadable
  std::uint32_t processes = 0;
};

// nullopt when `pid` does not exist. `with_pss` reads smaps_rollup too (slower).
std::optional<memory_usage> process_tree_memory(pid_t pid, bool with_pss);

// First line of `program --version` (empty when it cannot run).
std::string program_version(const std::string& program);

}  // namespace pgsluice::bench

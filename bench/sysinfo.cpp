// Machine facts and process-tree memory read from /proc, for the bench reports.
#include "bench/sysinfo.hpp"

#include <libpq-fe.h>
#include <sys/utsname.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <dirent.h>
#include <sstream>
#include <thread>
#include <unordered_map>
#include <vector>

#include "bench/process.hpp"

namespace pgsluice::bench {

namespace {

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ' || s.back() == '\t')) s.pop_back();
  std::size_t i = 0;
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
  return s.substr(i);
}

// A whole /proc file with read(2): the process may exit mid-read (ESRCH), which
// std::ifstream reports by throwing from inside getline.
std::string read_proc(const std::string& file) {
  std::string text;
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return text;
  char buf[4096];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) text.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  return text;
}

// Value of "Key:   value" in a /proc file, without the key.
std::optional<std::string> proc_field(const std::string& file, const std::string& key) {
  std::istringstream in(read_proc(file));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) != 0) continue;
    std::size_t i = key.size();
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;  // /proc/cpuinfo: "model name\t: ..."
    if (i < line.size() && line[i] == ':') return trim(line.substr(i + 1));
  }
  return std::nullopt;
}

std::uint64_t kb_value(const std::optional<std::string>& v) {
  return v ? std::strtoull(v->c_str(), nullptr, 10) : 0;  // "1234 kB"
}

// Parent pid from /proc/<pid>/stat: the field after the parenthesised command name.
std::optional<pid_t> parent_of(pid_t pid) {
  const std::string text = read_proc("/proc/" + std::to_string(pid) + "/stat");
  const auto close = text.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream rest(text.substr(close + 1));
  std::string state;
  long ppid = 0;
  if (!(rest >> state >> ppid)) return std::nullopt;
  return static_cast<pid_t>(ppid);
}

}  // namespace

std::string program_version(const std::string& program) {
  std::string path;
  try {
    path = find_program(program, program).string();
  } catch (const std::exception&) {
    return {};
  }
  const std::string command = "'" + path + "' --version 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) return {};
  char buf[256] = {};
  std::string first = std::fgets(buf, sizeof buf, pipe) ? buf : "";
  while (std::fgets(buf, sizeof buf, pipe)) {
  }
  ::pclose(pipe);
  return trim(first);
}

machine_info collect_machine_info() {
  machine_info m;
  m.cores = std::thread::hardware_concurrency();
  m.ram_bytes = kb_value(proc_field("/proc/meminfo", "MemTotal")) * 1024;
  m.cpu_model = proc_field("/proc/cpuinfo", "model name").value_or("");
  utsname u{};
  if (::uname(&u) == 0) m.kernel = std::string(u.sysname) + " " + u.release + " " + u.machine;
  if (auto pretty = proc_field("/etc/os-release", "PRETTY_NAME")) {
    m.os = *pretty;
  } else {
    std::istringstream in(read_proc("/etc/os-release"));
    std::string line;
    while (std::getline(in, line))
      if (line.rfind("PRETTY_NAME=", 0) == 0) m.os = line.substr(12);
  }
  if (m.os.size() >= 2 && m.os.front() == '"') m.os = m.os.substr(1, m.os.size() - 2);
  m.versions["libpq"] = std::to_string(PQlibVersion() / 10000) + "." + std::to_string(PQlibVersion() % 100);
  for (const auto& [key, program] : {std::pair<const char*, const char*>{"postgresql", "/usr/lib/postgresql/15/bin/postgres"},
                                     {"pgbouncer", "pgbouncer"},
                                     {"pgpool", "pgpool"}}) {
    const std::string v = program_version(program);
    if (!v.empty()) m.versions[key] = v;
  }
  return m;
}

std::optional<memory_usage> process_tree_memory(pid_t root, bool with_pss) {
  if (::access(("/proc/" + std::to_string(root)).c_str(), F_OK) != 0) return std::nullopt;
  std::vector<pid_t> tree{root};
  if (::access(("/proc/" + std::to_string(root) + "/task/" + std::to_string(root) + "/children").c_str(), R_OK) == 0) {
    // /proc/<pid>/task/<tid>/children (CONFIG_PROC_CHILDREN): only the tree itself is read,
    // which matters while 10,000 client connections sit in /proc next to it.
    for (std::size_t i = 0; i < tree.size(); ++i) {
      const std::string task_dir = "/proc/" + std::to_string(tree[i]) + "/task";
      DIR* d = ::opendir(task_dir.c_str());
      if (!d) continue;
      while (dirent* e = ::readdir(d)) {
        if (e->d_name[0] == '.') continue;
        std::istringstream kids(read_proc(task_dir + "/" + e->d_name + "/children"));
        for (long kid; kids >> kid;) tree.push_back(static_cast<pid_t>(kid));
      }
      ::closedir(d);
    }
  } else {
    // Otherwise one pass over /proc collecting (pid, ppid), then a walk from the root.
    std::unordered_map<pid_t, std::vector<pid_t>> children;
    if (DIR* d = ::opendir("/proc")) {
      while (dirent* e = ::readdir(d)) {
        char* end = nullptr;
        const long pid = std::strtol(e->d_name, &end, 10);
        if (!end || *end != '\0' || pid <= 0) continue;
        if (auto ppid = parent_of(static_cast<pid_t>(pid))) children[*ppid].push_back(static_cast<pid_t>(pid));
      }
      ::closedir(d);
    }
    for (std::size_t i = 0; i < tree.size(); ++i)
      if (auto it = children.find(tree[i]); it != children.end()) tree.insert(tree.end(), it->second.begin(), it->second.end());
  }
  memory_usage usage;
  for (pid_t pid : tree) {
    const std::string base = "/proc/" + std::to_string(pid);
    const auto rss = proc_field(base + "/status", "VmRSS");
    if (!rss) continue;  // exited meanwhile, or a kernel thread
    usage.rss_kb += kb_value(rss);
    ++usage.processes;
    if (with_pss) usage.pss_kb += kb_value(proc_field(base + "/smaps_rollup", "Pss"));
  }
  return usage;
}

}  // namespace pgsluice::bench

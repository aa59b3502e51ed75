// The parts of `bench failover` shared by its source files: the client load and the targets in front of a cluster.
#pragma once

#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bench/cluster.hpp"
#include "bench/failover.hpp"

namespace pgsluice::bench::failover_detail {

// The table every write goes to; created on the primary before the target starts.
inline constexpr const char* table = "failover_bench";

using steady = std::chrono::steady_clock;

// Clients, one thread each, with blocking libpq calls bounded by poll() deadlines: a few
// dozen clients at most, and a thread per client keeps every operation's timing honest.
// Each operation is a read (by key, of one of the client's acknowledged rows) or a write
// (INSERT of a new key); both return inet_server_port() so the server that answered is known.
class client_load {
 public:
  client_load(std::string conninfo, const failover_options& options, steady::time_point start);
  ~client_load();
  client_load(const client_load&) = delete;
  client_load& operator=(const client_load&) = delete;

  void stop();                                          // ends every client and joins
  std::vector<op_event> events() const;                 // after stop()
  std::map<std::string, std::uint64_t> errors() const;  // first line of each error -> count

  // Running totals for the live line.
  std::atomic<std::uint64_t> reads{0}, writes{0}, failures{0};

 private:
  void run_client(std::uint32_t id);
  void record(std::uint32_t id, const op_event& e, const std::string& error);

  std::string conninfo_;
  failover_options options_;
  steady::time_point start_;
  std::atomic<bool> stopping_{false};
  std::vector<std::vector<op_event>> events_;  // per client, written only by its thread
  mutable std::mutex errors_mutex_;
  std::map<std::string, std::uint64_t> errors_;
  std::vector<std::thread> threads_;
};

// A target started in front of the cluster.
struct started_target {
  std::string setup;                             // one sentence for the report
  std::unique_ptr<config_server> server;
  std::filesystem::path log_file;                // where its detection lines appear
  std::vector<std::string> notes;
  std::string conninfo;                          // what the clients connect to
  std::vector<std::filesystem::path> extra_logs; // e.g. Pgpool-II's failover script log
};

// Starts `name` (one of failover_target_names()) with its files under `dir`.
// Throws stack_error / missing_dependency.
started_target start_target(const std::string& name, const pg_cluster& cluster, const std::filesystem::path& dir,
                            const failover_options& options);

}  // namespace pgsluice::bench::failover_detail

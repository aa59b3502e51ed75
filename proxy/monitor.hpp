// Internal to proxy/: the lag monitor of a cluster — off the relay's hot path, it samples each backend's WAL position and publishes it for the router.
//
// One coroutine per cluster with replicas, on the first worker's event loop, with one
// connection of its own per backend (logged in as the cluster's server user, like a pool
// connection, but outside the pool's limit). Every interval it asks each backend for its
// recovery state and position — pg_current_wal_lsn() on the primary; pg_last_wal_replay_lsn()
// and the replay timestamp on a replica — and stores in the cluster's backend records, as
// plain atomics the router's snapshot reads without a lock:
//  - position: bytes since 0/0 (what read-your-writes compares a client's last write with);
//  - lag_bytes: how far the replica's replay is behind the primary's position;
//  - lag_ms: 0 when the replica has replayed up to the primary's position, else the age of
//    the last transaction it replayed (pg_last_xact_replay_timestamp() grows while an idle
//    primary writes nothing, so it is only counted while there is something left to replay).
// A replica that cannot be reached is marked down until a sample succeeds again.
// https://www.postgresql.org/docs/15/functions-admin.html#FUNCTIONS-RECOVERY-INFO-TABLE
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "proxy/asio.hpp"

namespace pgsluice::proxy {

class cluster;
class runtime;
class server_connection;

// One sample as the server answered it (parsed from text; pure, unit-tested).
struct wal_sample {
  bool in_recovery = false;
  std::optional<std::uint64_t> position;      // replay (replica) or current (primary) LSN, bytes
  std::optional<std::int64_t> replay_age_ms;  // replica: now - last replayed transaction's commit time
};
std::optional<wal_sample> parse_wal_sample(const std::vector<std::optional<std::string>>& row);
// "16/B374D848" -> bytes since 0/0.
std::optional<std::uint64_t> parse_lsn(std::string_view text) noexcept;
std::string format_lsn(std::uint64_t lsn);

class cluster_monitor : public std::enable_shared_from_this<cluster_monitor> {
 public:
  cluster_monitor(runtime& rt, std::shared_ptr<cluster> c, std::chrono::milliseconds interval);
  void start();
  void stop();

 private:
  awaitable<void> run();
  awaitable<std::optional<wal_sample>> sample(std::size_t i);

  runtime& rt_;
  std::weak_ptr<cluster> cluster_;
  std::chrono::milliseconds interval_;
  std::atomic<bool> stopped_{false};
  std::vector<std::shared_ptr<server_connection>> conns_;
  std::optional<asio::steady_timer> timer_;
};

}  // namespace pgsluice::proxy

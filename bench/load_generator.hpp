// The libpq load generator: thousands of non-blocking connections multiplexed per thread with epoll.
//
// Each worker thread owns an epoll instance and a slice of the clients; a client
// is a small state machine (connect -> [prepare] -> execute commands -> next
// transaction) driven by PQconnectPoll / PQsendQuery* / PQconsumeInput. Nothing
// blocks, so 10,000 clients need 10,000 sockets, not 10,000 threads. Latency is
// measured per transaction (one "request") from the first byte sent to the last
// result, and recorded into log-linear histograms; failures are counted by kind
// and never stop the run: a dead target shows up as errors, bounded by the
// connect and request timeouts.
// https://www.postgresql.org/docs/15/libpq-async.html
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <optional>
#include <vector>

#include "bench/histogram.hpp"
#include "bench/transaction.hpp"

namespace pgsluice::bench {

// pgbench -M: simple = Query messages; extended = unnamed Parse/Bind/Execute per
// command; prepared = Parse once per connection, then Bind/Execute by name.
enum class protocol_mode { simple, extended, prepared };
std::string_view to_string(protocol_mode) noexcept;
std::optional<protocol_mode> parse_protocol_mode(std::string_view) noexcept;

using millis = std::chrono::milliseconds;

struct load_options {
  std::string conninfo;            // postgresql:// URL or key=value string
  std::uint32_t clients = 10;
  std::uint32_t threads = 0;       // 0 = one per core
  double ramp = 0;                 // clients started per second; 0 = all at once
  millis warmup{2000};             // from the start of the run; excluded from the totals
  // With persistent connections the warm-up goes on until every client is connected,
  // by at most this much more (then the measurement starts anyway).
  millis connect_phase_limit{180000};
  millis duration{10000};          // measured window, after the warm-up
  protocol_mode protocol = protocol_mode::simple;
  bool connect_per_transaction = false;
  millis connect_timeout{15000};
  millis request_timeout{10000};
  millis retry_delay{100};         // pause after a failed connect before the next attempt
  // Connection attempts in flight at once (over all threads). A login costs both
  // sides real CPU (SCRAM: 4096 PBKDF2 rounds each); 10,000 simultaneous attempts
  // would mostly time out and retry, so clients queue here for a slot instead.
  std::uint32_t max_connecting = 64;
  std::uint64_t seed = 1;
  std::string application_name = "pgsluice-bench";
  // Users (Locust's model): after each request a client waits a random time in
  // [think_min, think_max] before its next one (Locust's `between(min, max)`); 0 = none,
  // the closed loop of pgbench. Waiting clients keep their connection and cost no thread.
  millis think_min{0};
  millis think_max{0};
  // Measure from the first second, spawning included, as Locust does: no waiting for
  // every client to be connected before the measured window starts.
  bool measure_from_start = false;
};

// Error kinds, the keys of load_result::errors.
namespace error_kind {
inline constexpr std::string_view connect_failed = "connect_failed";   // refused, reset, unreachable, bad conninfo
inline constexpr std::string_view auth_failed = "auth_failed";         // bad password, unknown role, pg_hba (28P01, 28000)
inline constexpr std::string_view too_many_connections = "too_many_connections";  // 53300 and poolers' equivalents
inline constexpr std::string_view connect_timeout = "connect_timeout";
inline constexpr std::string_view request_timeout = "request_timeout";
inline constexpr std::string_view connection_lost = "connection_lost";  // closed or reset while a request was in flight
inline constexpr std::string_view query_error_prefix = "query_error:";  // followed by the SQLSTATE
inline constexpr std::string_view stalled = "stalled";                 // unanswered at the end for over max(1 s, 2 x p99)
}  // namespace error_kind

// Classifies a libpq connection-failure message (libpq exposes no SQLSTATE for
// those) into one of the connect error kinds above.
std::string_view classify_connect_error(std::string_view message) noexcept;

// The response-time percentiles Locust's CSV files carry, in its column order ("50%" ... "100%").
inline constexpr std::array<double, 11> locust_percentiles{50, 66, 75, 80, 90, 95, 98, 99, 99.9, 99.99, 100};

struct timeline_point {
  std::uint32_t second = 0;        // since the start of the run (warm-up included)
  std::uint64_t requests = 0;      // completed successfully in that second
  std::uint64_t errors = 0;
  double p50_ms = 0;
  double p99_ms = 0;
  std::uint32_t connected = 0;     // clients holding a connection at the end of that second
  std::uint64_t stale_reads = 0;   // reads that missed their own write (statement_def::reads_own_write)
  std::uint32_t users = 0;         // clients (users) started by the end of that second
  double p95_ms = 0;
  std::array<double, 11> percentiles_ms{};  // that second's, at locust_percentiles
  // From the start of the run to the end of that second (Locust's "Total ..." columns).
  std::uint64_t total_requests = 0;
  std::uint64_t total_errors = 0;
  double total_p50_ms = 0, total_mean_ms = 0, total_min_ms = 0, total_max_ms = 0;
};

// Builds timeline points second by second, keeping the running totals.
class timeline_builder {
 public:
  timeline_point add(std::uint32_t second, const latency_histogram& latency, std::uint64_t requests,
                     std::uint64_t errors);

 private:
  latency_histogram total_;
  std::uint64_t total_requests_ = 0;
  std::uint64_t total_errors_ = 0;
};

// One kind of request (transaction_source::request_kinds) over the measured window.
struct request_stats {
  request_kind kind;
  std::uint64_t requests = 0;      // successful
  std::uint64_t failures = 0;
  latency_histogram latency;       // of the successful ones
  std::map<std::string, std::uint64_t> errors;  // error kind -> count
};

// What the live report gets once per second.
struct live_sample {
  timeline_point point;
  bool warmup = false;
};

struct load_result {
  latency_histogram latency;               // successful transactions in the measured window
  latency_histogram connect_latency;       // successful connection set-ups in the measured window
  std::uint64_t requests = 0;              // successful transactions in the measured window
  std::uint64_t failures = 0;              // sum of errors
  // Reads of a row written earlier in the same transaction that found nothing (measured
  // window). Those transactions are counted in `requests` too: a stale read is a wrong
  // answer from the target, not a failed request.
  std::uint64_t stale_reads = 0;
  std::map<std::string, std::uint64_t> errors;         // kind -> count (measured window)
  std::map<std::string, std::string> error_samples;    // kind -> first message seen (whole run)
  std::uint64_t connections_opened = 0;    // whole run
  double warmup_seconds = 0;
  double measured_seconds = 0;
  std::uint32_t peak_connected = 0;
  std::vector<timeline_point> timeline;    // whole run
  // Per request kind, in request_kinds() order; failures outside any request (logins,
  // connection set-up) in a last row of type "connect" when there were any.
  std::vector<request_stats> by_request;

  double requests_per_second() const noexcept {
    return measured_seconds > 0 ? static_cast<double>(requests) / measured_seconds : 0.0;
  }
};

class load_generator {
 public:
  load_generator(load_options options, std::shared_ptr<const transaction_source> source);
  ~load_generator();
  load_generator(const load_generator&) = delete;
  load_generator& operator=(const load_generator&) = delete;

  // Runs warm-up + duration and returns the merged results. `on_second` (may be
  // empty) is called on the calling thread once per elapsed second. Setting
  // `*stop` (e.g. from a SIGINT handler) ends the run early; the result then
  // covers the time actually measured.
  load_result run(const std::function<void(const live_sample&)>& on_second = {},
                  const std::atomic<bool>* stop = nullptr);

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

// Raises RLIMIT_NOFILE's soft limit to the hard limit; returns the new soft limit.
std::uint64_t raise_open_files_limit() noexcept;

}  // namespace pgsluice::bench

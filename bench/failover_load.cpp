// The failover bench's clients: reads and writes through a target, each timed, its outcome and answering server kept.
#include <libpq-fe.h>
#include <poll.h>

#include <algorithm>
#include <random>

#include "bench/failover_detail.hpp"

namespace pgsluice::bench::failover_detail {

namespace {

std::int64_t micros_since(steady::time_point start) {
  return std::chrono::duration_cast<std::chrono::microseconds>(steady::now() - start).count();
}

std::string first_line(const char* text) {
  std::string s = text ? text : "";
  if (const auto nl = s.find('\n'); nl != std::string::npos) s.resize(nl);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\r')) s.pop_back();
  return s.empty() ? "unknown error" : s;
}

struct conn_deleter {
  void operator()(PGconn* c) const { PQfinish(c); }
};
using conn_ptr = std::unique_ptr<PGconn, conn_deleter>;

struct result_deleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using result_ptr = std::unique_ptr<PGresult, result_deleter>;

// Server notices (and a FATAL arriving between statements) are counted through the
// statement that fails next, not printed.
extern "C" void quiet_notices(void*, const char*) {}

// Outcome of one statement sent on a connection.
struct exec_outcome {
  bool ok = false;
  bool connection_usable = true;
  bool abandoned = false;          // the run ended while it was in flight
  std::uint16_t port = 0;
  std::string error;
};

// Sends `sql` and waits for its result until `timeout`, watching `stopping`.
exec_outcome execute(PGconn* conn, const std::string& sql, std::chrono::milliseconds timeout,
                     const std::atomic<bool>& stopping) {
  exec_outcome out;
  if (!PQsendQuery(conn, sql.c_str())) {
    out.connection_usable = false;
    out.error = first_line(PQerrorMessage(conn));
    return out;
  }
  const auto deadline = steady::now() + timeout;
  while (PQisBusy(conn)) {
    if (stopping.load()) {
      out.abandoned = true;
      out.connection_usable = false;
      return out;
    }
    if (steady::now() >= deadline) {
      out.connection_usable = false;
      out.error = "no answer within the request timeout (" + std::to_string(timeout.count()) + " ms)";
      return out;
    }
    pollfd p{PQsocket(conn), POLLIN, 0};
    ::poll(&p, 1, 50);
    if (!PQconsumeInput(conn)) {
      out.connection_usable = false;
      out.error = first_line(PQerrorMessage(conn));
      return out;
    }
  }
  bool got_error = false;
  while (PGresult* raw = PQgetResult(conn)) {
    result_ptr r(raw);
    const auto status = PQresultStatus(r.get());
    if (status == PGRES_TUPLES_OK && PQntuples(r.get()) > 0 && !PQgetisnull(r.get(), 0, 0)) {
      out.port = static_cast<std::uint16_t>(std::atoi(PQgetvalue(r.get(), 0, 0)));
    } else if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
      got_error = true;
      if (out.error.empty()) out.error = first_line(PQresultErrorMessage(r.get()));
    }
  }
  if (PQstatus(conn) != CONNECTION_OK) {
    out.connection_usable = false;
    if (!got_error) {
      got_error = true;
      out.error = first_line(PQerrorMessage(conn));
    }
  }
  out.ok = !got_error;
  return out;
}

}  // namespace

client_load::client_load(std::string conninfo, const failover_options& options, steady::time_point start)
    : conninfo_(std::move(conninfo)), options_(options), start_(start) {
  events_.resize(options_.clients);
  for (std::uint32_t id = 0; id < options_.clients; ++id) threads_.emplace_back([this, id] { run_client(id); });
}

client_load::~client_load() { stop(); }

void client_load::stop() {
  stopping_.store(true);
  for (auto& t : threads_)
    if (t.joinable()) t.join();
}

std::vector<op_event> client_load::events() const {
  std::vector<op_event> all;
  for (const auto& per_client : events_) all.insert(all.end(), per_client.begin(), per_client.end());
  std::sort(all.begin(), all.end(), [](const op_event& a, const op_event& b) { return a.end_us < b.end_us; });
  return all;
}

std::map<std::string, std::uint64_t> client_load::errors() const {
  std::lock_guard lock(errors_mutex_);
  return errors_;
}

void client_load::record(std::uint32_t id, const op_event& e, const std::string& error) {
  events_[id].push_back(e);
  if (e.ok) {
    ++(e.kind == op_kind::write ? writes : reads);
    return;
  }
  ++failures;
  std::lock_guard lock(errors_mutex_);
  // Bounded: a flood of distinct messages (ports, pids in them) keeps the first kinds.
  if (errors_.size() < 20 || errors_.count(error)) ++errors_[error];
}

void client_load::run_client(std::uint32_t id) {
  std::mt19937_64 rng(0x5eed + id);
  std::uniform_real_distribution<double> coin(0, 1);
  std::vector<std::int64_t> acknowledged;   // this client's rows, for its reads
  std::int64_t next_seq = 1;
  conn_ptr conn;
  const std::string info = conninfo_ + " connect_timeout=" +
                           std::to_string(std::max<long>(1, static_cast<long>(options_.connect_timeout.count() / 1000))) +
                           " application_name=pgsluice-bench-failover";
  while (!stopping_.load()) {
    op_event e;
    e.kind = coin(rng) < options_.read_ratio ? op_kind::read : op_kind::write;
    e.start_us = micros_since(start_);
    std::string sql;
    if (e.kind == op_kind::write) {
      e.key = static_cast<std::int64_t>(id + 1) * 1'000'000'000LL + next_seq++;
      sql = "INSERT INTO " + std::string(table) + " (k, client) VALUES (" + std::to_string(e.key) + ", " +
            std::to_string(id) + ") RETURNING inet_server_port()";
    } else {
      const std::int64_t key = acknowledged.empty()
                                   ? 0
                                   : acknowledged[std::uniform_int_distribution<std::size_t>(0, acknowledged.size() - 1)(rng)];
      sql = "SELECT inet_server_port() FROM (SELECT count(*) FROM " + std::string(table) + " WHERE k = " +
            std::to_string(key) + ") AS c";
    }
    std::string error;
    if (!conn) {
      conn.reset(PQconnectdb(info.c_str()));
      PQsetNoticeProcessor(conn.get(), quiet_notices, nullptr);
      if (PQstatus(conn.get()) != CONNECTION_OK) {
        error = first_line(PQerrorMessage(conn.get()));
        conn.reset();
      }
    }
    if (conn) {
      const exec_outcome r = execute(conn.get(), sql, options_.request_timeout, stopping_);
      if (r.abandoned) break;  // unknown outcome, outside the measured time
      e.ok = r.ok;
      e.server_port = r.port;
      error = r.error;
      if (!r.connection_usable) conn.reset();
    }
    if (stopping_.load() && !e.ok) break;
    e.end_us = micros_since(start_);
    record(id, e, error);
    if (e.ok && e.kind == op_kind::write) acknowledged.push_back(e.key);
    if (!e.ok) {
      // Bounded retry pace; a refused connection otherwise spins thousands of times a second.
      const auto until = steady::now() + options_.retry_delay;
      while (!stopping_.load() && steady::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
}

}  // namespace pgsluice::bench::failover_detail

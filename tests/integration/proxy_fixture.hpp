// Shared helpers of the proxy integration tests: a pgsluice in front of the test cluster's primary, raw libpq, pgbench.
#pragma once

#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "bench/process.hpp"
#include "tests/harness/harness.hpp"

namespace pgsluice::test::proxy {

namespace b = pgsluice::bench;

// What the test wants from the pgsluice it starts; everything else is the loader's default.
struct proxy_setup {
  std::string pool_mode = "transaction";
  int pool_size = 5;
  std::string auth_type = "scram-sha-256";
  int workers = 2;
  std::vector<std::pair<std::string, std::string>> users;  // [users]: name = secret
  std::string globals;                                      // more top-level TOML lines
  std::string database_extra;                               // more lines in [databases.<db>]
  std::string log_level = "info";
  // The login used to decide the proxy is up.
  b::login_probe probe;
};

inline std::string toml_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

inline std::string proxy_toml(const proxy_setup& s, std::uint16_t listen_port) {
  auto& c = cluster();
  std::string t = "# written by a pgsluice integration test\n";
  t += "workers = " + std::to_string(s.workers) + "\n";
  t += "pool_mode = " + toml_string(s.pool_mode) + "\n";
  t += "default_pool_size = " + std::to_string(s.pool_size) + "\n";
  t += "auth_type = " + toml_string(s.auth_type) + "\n";
  t += s.globals;
  t += "\n[listen]\nhost = \"127.0.0.1\"\nport = " + std::to_string(listen_port) + "\n";
  t += "\n[log]\nlevel = " + toml_string(s.log_level) + "\n";
  t += "\n[users]\n";
  for (const auto& [name, secret] : s.users) t += toml_string(name) + " = " + toml_string(secret) + "\n";
  t += "\n[databases." + c.database() + "]\nhost = \"127.0.0.1\"\nport = " + std::to_string(c.port(c.primary_index())) + "\n";
  t += s.database_extra;
  return t;
}

// pgsluice serving the cluster's database, started and probed; stopped when destroyed.
inline std::unique_ptr<pgsluice_process> start_proxy(const proxy_setup& setup) {
  pgsluice_process::options o;
  o.probe = setup.probe;
  o.config = [setup](std::uint16_t port) { return proxy_toml(setup, port); };
  return std::make_unique<pgsluice_process>(std::move(o));
}

// The admin user (superuser, SCRAM) as a proxy setup user and probe.
inline proxy_setup admin_setup(const std::string& pool_mode, int pool_size) {
  auto& c = cluster();
  proxy_setup s;
  s.pool_mode = pool_mode;
  s.pool_size = pool_size;
  s.users = {{c.admin().name, c.admin().password}};
  s.probe = {c.admin().name, c.admin().password, c.database()};
  return s;
}

// libpq connection string to the proxy as the admin user.
inline std::string admin_conninfo(const pgsluice_process& p) {
  auto& c = cluster();
  return p.conninfo(c.admin().name, c.admin().password, c.database());
}

// A raw libpq connection, for the asynchronous API (cancel, pipeline, notifications).
struct pg_raw {
  PGconn* conn = nullptr;
  explicit pg_raw(const std::string& conninfo) : conn(PQconnectdb(conninfo.c_str())) {}
  ~pg_raw() {
    if (conn != nullptr) PQfinish(conn);
  }
  pg_raw(const pg_raw&) = delete;
  pg_raw& operator=(const pg_raw&) = delete;
  bool ok() const { return conn != nullptr && PQstatus(conn) == CONNECTION_OK; }
  std::string error() const { return conn ? PQerrorMessage(conn) : "no connection"; }
};

// SQLSTATE of a result ("" for success).
inline std::string sqlstate_of(const PGresult* r) {
  const char* s = PQresultErrorField(r, PG_DIAG_SQLSTATE);
  return s ? s : "";
}

// Runs a program (pgbench) to completion with `env`, returns its exit status and output.
struct run_result {
  int status = -1;
  std::string output;
};
inline run_result run_program(const std::vector<std::string>& argv,
                              const std::vector<std::pair<std::string, std::string>>& env,
                              std::chrono::milliseconds timeout) {
  const auto dir = b::make_temp_dir("pgsluice-run-", b::service_user{});
  b::spawn_options o;
  o.argv = argv;
  o.log_file = dir / "output.log";
  o.working_dir = dir;
  o.env = env;
  o.parent_death_signal = SIGKILL;
  auto child = b::child_process::spawn(o, SIGTERM);
  run_result r;
  if (!child.wait_exit(timeout)) {
    child.stop(std::chrono::seconds(5));
    r.output = "(timed out)\n";
  }
  r.status = child.exit_status().value_or(-1);
  r.output += b::read_file_text(o.log_file);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return r;
}

}  // namespace pgsluice::test::proxy

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace pgsluice::test::proxy {

// A plain TCP client speaking raw protocol bytes, for malformed and partial input.
class raw_client {
 public:
  explicit raw_client(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  ~raw_client() {
    if (fd_ >= 0) ::close(fd_);
  }
  raw_client(const raw_client&) = delete;
  raw_client& operator=(const raw_client&) = delete;
  bool ok() const { return fd_ >= 0; }
  int fd() const { return fd_; }

  bool send(const std::vector<std::uint8_t>& bytes) {
    std::size_t off = 0;
    while (off < bytes.size()) {
      const auto n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return false;
      off += static_cast<std::size_t>(n);
    }
    return true;
  }

  // Reads until `n` bytes are buffered, EOF, or the timeout. Returns what was read.
  std::vector<std::uint8_t> read_some(std::size_t n, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (buf_.size() < n && !eof_) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
      std::uint8_t tmp[65536];
      const auto r = ::recv(fd_, tmp, sizeof tmp, 0);
      if (r <= 0) {
        eof_ = true;
        break;
      }
      buf_.insert(buf_.end(), tmp, tmp + r);
    }
    return buf_;
  }

  // One complete server message (tag, body), or nullopt on EOF/timeout.
  std::optional<std::pair<char, std::vector<std::uint8_t>>> read_message(std::chrono::milliseconds timeout) {
    read_some(5, timeout);
    if (buf_.size() < 5) return std::nullopt;
    const std::uint32_t len = (std::uint32_t{buf_[1]} << 24) | (std::uint32_t{buf_[2]} << 16) |
                              (std::uint32_t{buf_[3]} << 8) | buf_[4];
    read_some(1 + len, timeout);
    if (buf_.size() < 1 + len) return std::nullopt;
    std::pair<char, std::vector<std::uint8_t>> m{static_cast<char>(buf_[0]),
                                                  std::vector<std::uint8_t>(buf_.begin() + 5, buf_.begin() + 1 + len)};
    buf_.erase(buf_.begin(), buf_.begin() + 1 + len);
    return m;
  }

  // True once the peer has closed (reads EOF within the timeout, discarding data).
  bool closed_within(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!eof_ && std::chrono::steady_clock::now() < deadline) {
      read_some(buf_.size() + 1, std::chrono::milliseconds(100));
      buf_.clear();
    }
    return eof_;
  }

  // Everything the peer sends from now until it closes, or nullopt when it has not closed
  // within the timeout.
  std::optional<std::vector<std::uint8_t>> rest_until_closed(std::chrono::milliseconds timeout) {
    read_some(SIZE_MAX, timeout);
    if (!eof_) return std::nullopt;
    auto rest = std::move(buf_);
    buf_.clear();
    return rest;
  }

  // Reads messages until ReadyForQuery (login) or an ErrorResponse; returns the tags seen.
  std::string read_until_ready(std::chrono::milliseconds timeout) {
    std::string tags;
    while (auto m = read_message(timeout)) {
      tags += m->first;
      if (m->first == 'Z' || m->first == 'E') break;
    }
    return tags;
  }

  std::vector<std::uint8_t>& buffered() { return buf_; }

 private:
  int fd_ = -1;
  std::vector<std::uint8_t> buf_;
  bool eof_ = false;
};

inline void put32(std::vector<std::uint8_t>& v, std::uint32_t x) {
  v.push_back(static_cast<std::uint8_t>(x >> 24));
  v.push_back(static_cast<std::uint8_t>(x >> 16));
  v.push_back(static_cast<std::uint8_t>(x >> 8));
  v.push_back(static_cast<std::uint8_t>(x));
}

// A StartupMessage for protocol `version` with the given parameters.
inline std::vector<std::uint8_t> startup_packet(const std::vector<std::pair<std::string, std::string>>& params,
                                                std::uint32_t version = 196608) {
  std::vector<std::uint8_t> body;
  put32(body, version);
  for (const auto& [k, v] : params) {
    body.insert(body.end(), k.begin(), k.end());
    body.push_back(0);
    body.insert(body.end(), v.begin(), v.end());
    body.push_back(0);
  }
  body.push_back(0);
  std::vector<std::uint8_t> out;
  put32(out, static_cast<std::uint32_t>(body.size() + 4));
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

// A tagged message.
inline std::vector<std::uint8_t> message(char tag, const std::string& body) {
  std::vector<std::uint8_t> out{static_cast<std::uint8_t>(tag)};
  put32(out, static_cast<std::uint32_t>(body.size() + 4));
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

// The value of one field ('C' SQLSTATE, 'M' message, 'S' severity) of an ErrorResponse body.
inline std::string error_field(const std::vector<std::uint8_t>& body, char field) {
  std::size_t i = 0;
  while (i < body.size() && body[i] != 0) {
    const char type = static_cast<char>(body[i++]);
    std::string value;
    while (i < body.size() && body[i] != 0) value += static_cast<char>(body[i++]);
    ++i;
    if (type == field) return value;
  }
  return {};
}

// The pid of the one active server backend running a statement that contains `marker`, or "".
inline std::string active_backend_running(const std::string& marker) {
  auto& c = cluster();
  const auto rows = c.exec_sql(c.primary_index(),
                               "SELECT pid FROM pg_stat_activity WHERE state = 'active' AND backend_type = 'client "
                               "backend' AND position('" + marker + "' in query) > 0 AND pid <> pg_backend_pid()");
  return rows.size() == 1 ? rows[0].at(0).value_or("") : "";
}

// A statement that runs until the test lets it finish: it waits for an advisory lock held here
// on a connection straight to PostgreSQL (pg_advisory_xact_lock leaves no session state).
class held_lock {
 public:
  explicit held_lock(std::int64_t key)
      : key_(std::to_string(key)), conn_(connect(cluster().conninfo(cluster().primary_index(), cluster().admin().name))) {
    conn_.query("SELECT pg_advisory_lock(" + key_ + ")");
  }
  std::string waiting_statement(const std::string& marker) const {
    return "SELECT pg_advisory_xact_lock(" + key_ + ") /* " + marker + " */";
  }
  void release() { conn_.query("SELECT pg_advisory_unlock(" + key_ + ")"); }

 private:
  std::string key_;
  pq_connection conn_;
};

// One sample of pgsluice's /metrics on `port`: `sample` is its name with labels as exposed
// (pgsluice_clients{state="idle"}); -1 when absent or unreachable.
inline long metric_value(std::uint16_t port, const std::string& sample) {
  raw_client http(port);
  if (!http.ok()) return -1;
  const std::string req = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  http.send(std::vector<std::uint8_t>(req.begin(), req.end()));
  const auto bytes = http.read_some(1 << 22, std::chrono::seconds(10));
  const std::string text(bytes.begin(), bytes.end());
  const std::string name = "\n" + sample + " ";
  const auto at = text.find(name);
  if (at == std::string::npos) return -1;
  return std::stol(text.substr(at + name.size()));
}

// pgsluice as start_proxy() starts it, with /metrics on a port of its own.
struct metered_proxy {
  std::uint16_t metrics_port = 0;
  std::unique_ptr<pgsluice_process> process;
  long metric(const std::string& sample) const { return metric_value(metrics_port, sample); }
};

inline metered_proxy start_metered_proxy(const proxy_setup& s) {
  metered_proxy out;
  out.metrics_port = b::pick_free_port();
  pgsluice_process::options o;
  o.probe = s.probe;
  o.config = [s, port = out.metrics_port](std::uint16_t listen) {
    return proxy_toml(s, listen) + "\n[metrics]\nhost = \"127.0.0.1\"\nport = " + std::to_string(port) + "\n";
  };
  out.process = std::make_unique<pgsluice_process>(std::move(o));
  return out;
}

// The first value of the result of what was sent on `c`, or "error SQLSTATE"; the rest drained.
inline std::string answer(PGconn* c) {
  PGresult* r = PQgetResult(c);
  std::string out = "no result";
  if (r != nullptr) {
    const auto st = PQresultStatus(r);
    out = st == PGRES_TUPLES_OK ? (PQntuples(r) > 0 ? PQgetvalue(r, 0, 0) : "no rows")
          : st == PGRES_COMMAND_OK ? "ok"
                                   : "error " + sqlstate_of(r);
    PQclear(r);
  }
  while ((r = PQgetResult(c)) != nullptr) PQclear(r);
  return out;
}

inline std::string exec(PGconn* c, const std::string& sql) {
  if (PQsendQuery(c, sql.c_str()) != 1) return "send failed";
  return answer(c);
}

}  // namespace pgsluice::test::proxy

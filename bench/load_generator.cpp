// The libpq load generator: per-thread epoll loops driving non-blocking client state machines.
#include "bench/load_generator.hpp"

#include <libpq-fe.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <thread>
#include <utility>

namespace pgsluice::bench {

std::string_view to_string(protocol_mode m) noexcept {
  switch (m) {
    case protocol_mode::simple: return "simple";
    case protocol_mode::extended: return "extended";
    case protocol_mode::prepared: return "prepared";
  }
  return "?";
}

std::optional<protocol_mode> parse_protocol_mode(std::string_view s) noexcept {
  if (s == "simple") return protocol_mode::simple;
  if (s == "extended") return protocol_mode::extended;
  if (s == "prepared") return protocol_mode::prepared;
  return std::nullopt;
}

namespace {

bool contains_nocase(std::string_view haystack, std::string_view needle) noexcept {
  auto it = std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end(), [](char a, char b) {
    return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
  });
  return it != haystack.end();
}

}  // namespace

std::string_view classify_connect_error(std::string_view message) noexcept {
  // PostgreSQL: 'password authentication failed for user "x"' (28P01), 'no pg_hba.conf
  // entry' (28000); PgBouncer and Pgpool-II reuse PostgreSQL's wording.
  for (std::string_view s : {"authentication failed", "no pg_hba.conf entry", "password", "not permitted to log in",
                             "sasl", "scram"})
    if (contains_nocase(message, s)) return error_kind::auth_failed;
  // 'role "x" does not exist' (28000) is a rejected login too; a missing database is not.
  if (contains_nocase(message, "role \"") && contains_nocase(message, "does not exist")) return error_kind::auth_failed;
  // PostgreSQL: "sorry, too many clients already" / "remaining connection slots are
  // reserved" (53300); PgBouncer: "no more connections allowed (max_client_conn)".
  for (std::string_view s : {"too many clients", "too many connections", "remaining connection slots",
                             "no more connections allowed"})
    if (contains_nocase(message, s)) return error_kind::too_many_connections;
  return error_kind::connect_failed;
}

bool looks_numeric(const std::string& v) noexcept {
  std::size_t i = 0;
  const std::size_t n = v.size();
  if (i < n && (v[i] == '-' || v[i] == '+')) ++i;
  bool digits = false;
  while (i < n && std::isdigit(static_cast<unsigned char>(v[i]))) ++i, digits = true;
  if (i < n && v[i] == '.') {
    ++i;
    while (i < n && std::isdigit(static_cast<unsigned char>(v[i]))) ++i, digits = true;
  }
  if (!digits) return false;
  if (i < n && (v[i] == 'e' || v[i] == 'E')) {
    ++i;
    if (i < n && (v[i] == '-' || v[i] == '+')) ++i;
    bool exp_digits = false;
    while (i < n && std::isdigit(static_cast<unsigned char>(v[i]))) ++i, exp_digits = true;
    if (!exp_digits) return false;
  }
  return i == n;
}

void render_simple_query(const std::string& sql, const std::vector<std::string>& params, std::string& out) {
  out.clear();
  out.reserve(sql.size() + 16 * params.size());
  char quote = 0;  // inside '...' or "..."
  for (std::size_t i = 0; i < sql.size(); ++i) {
    const char ch = sql[i];
    if (quote) {
      out += ch;
      if (ch == quote) quote = 0;
      continue;
    }
    if (ch == '\'' || ch == '"') {
      quote = ch;
      out += ch;
      continue;
    }
    const bool prev_ident = i > 0 && (std::isalnum(static_cast<unsigned char>(sql[i - 1])) || sql[i - 1] == '_');
    if (ch == '$' && !prev_ident && i + 1 < sql.size() && std::isdigit(static_cast<unsigned char>(sql[i + 1]))) {
      std::size_t j = i + 1;
      std::size_t index = 0;
      while (j < sql.size() && std::isdigit(static_cast<unsigned char>(sql[j]))) index = index * 10 + static_cast<std::size_t>(sql[j++] - '0');
      if (index >= 1 && index <= params.size()) {
        const std::string& v = params[index - 1];
        if (looks_numeric(v)) {
          // "x-$1" with $1 = -5 must not become "x--5", a comment.
          if (v[0] == '-') out.append("(").append(v).append(")");
          else out += v;
        } else {
          out += '\'';
          for (char c : v) {
            if (c == '\'') out += '\'';
            out += c;
          }
          out += '\'';
        }
        i = j - 1;
        continue;
      }
    }
    out += ch;
  }
}

std::uint64_t raise_open_files_limit() noexcept {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return 0;
  if (lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
    getrlimit(RLIMIT_NOFILE, &lim);
  }
  return lim.rlim_cur;
}

namespace {

using steady = std::chrono::steady_clock;
using time_point = steady::time_point;

std::uint64_t ns_between(time_point a, time_point b) noexcept {
  return b > a ? static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(b - a).count()) : 0;
}

std::string first_line(std::string_view message) {
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.remove_suffix(1);
  std::string out(message);
  std::replace(out.begin(), out.end(), '\n', ' ');
  return out;
}

struct second_slot {
  latency_histogram latency;
  std::uint64_t requests = 0;
  std::uint64_t errors = 0;
  std::uint64_t stale_reads = 0;
  std::uint32_t connected = 0;
};

// Everything the workers share read-only.
struct run_context {
  const load_options* options = nullptr;
  const transaction_source* source = nullptr;
  std::vector<std::string> prepared_names;
  std::vector<const char*> keywords;
  std::vector<const char*> values;
  time_point start;
  // The measured window, in ns since start. The warm-up may end late (when every
  // client is connected), so both move once, from the main thread.
  std::atomic<std::int64_t> warmup_end_ns{0};
  std::atomic<std::int64_t> end_ns{0};
  const std::atomic<bool>* stop = nullptr;

  time_point warmup_end() const noexcept {
    return start + std::chrono::nanoseconds(warmup_end_ns.load(std::memory_order_relaxed));
  }
  time_point end() const noexcept { return start + std::chrono::nanoseconds(end_ns.load(std::memory_order_relaxed)); }
  void set_window(time_point warmup_until, millis duration) noexcept {
    const auto w = std::chrono::duration_cast<std::chrono::nanoseconds>(warmup_until - start).count();
    warmup_end_ns.store(w, std::memory_order_relaxed);
    end_ns.store(w + std::chrono::duration_cast<std::chrono::nanoseconds>(duration).count(), std::memory_order_relaxed);
  }
};

enum class phase : std::uint8_t { pending, connecting, preparing, executing, rolling_back, backoff, finished };

struct client {
  std::uint32_t id = 0;
  rng random;
  PGconn* conn = nullptr;
  int fd = -1;
  std::uint32_t events = 0;       // what fd is registered for in epoll (0 = not registered)
  phase state = phase::pending;
  time_point wake;                // pending / backoff: when to (re)connect
  time_point deadline;            // connecting / request: when to give up
  time_point connect_started;
  time_point tx_start;
  time_point sent_at;
  bool tx_timing = false;         // tx_start is set (connect-per-transaction starts it at connect)
  bool flushing = false;
  bool cmd_error = false;
  bool cmd_stale = false;         // the current command read no row where its own write should be
  bool counted_connected = false;
  std::string error_kind;
  std::string error_message;
  transaction tx;
  std::size_t cmd = 0;
  std::vector<std::uint8_t> prepared;   // per statement, on the current connection
};

class worker {
 public:
  worker(const run_context& ctx, std::vector<std::uint32_t> ids, std::uint32_t connect_slots)
      : ctx_(ctx), opts_(*ctx.options), connect_slots_(std::max(1u, connect_slots)) {
    clients_.resize(ids.size());
    for (std::size_t i = 0; i < ids.size(); ++i) {
      client& c = clients_[i];
      c.id = ids[i];
      c.random.reseed(mix64(opts_.seed, ids[i]));
      c.wake = opts_.ramp > 0 ? ctx_.start + std::chrono::duration_cast<steady::duration>(
                                                 std::chrono::duration<double>(static_cast<double>(ids[i]) / opts_.ramp))
                              : ctx_.start;
    }
    param_ptrs_.reserve(16);
  }

  ~worker() {
    for (client& c : clients_) close_connection(c);
    if (epfd_ >= 0) ::close(epfd_);
  }

  void run() {
    epfd_ = epoll_create1(EPOLL_CLOEXEC);
    if (epfd_ < 0) {
      record_error(error_kind::connect_failed, std::string("epoll_create1: ") + std::strerror(errno), steady::now());
      finish_all(steady::now());
      return;
    }
    std::vector<epoll_event> events(1024);
    time_point last_scan{};
    for (;;) {
      const time_point now = steady::now();
      roll_seconds(now);
      connected_now.store(connected_, std::memory_order_relaxed);
      if (now >= end_time() || (ctx_.stop && ctx_.stop->load(std::memory_order_relaxed))) {
        finish_all(now);
        return;
      }
      if (now - last_scan >= std::chrono::milliseconds(10)) {
        scan_timers(now);
        last_scan = now;
      }
      const int n = epoll_wait(epfd_, events.data(), static_cast<int>(events.size()), 10);
      for (int i = 0; i < n; ++i) {
        client& c = clients_[events[i].data.u32];
        on_ready(c, events[i].events);
      }
    }
  }

  // Read after join().
  latency_histogram latency, connect_latency;
  std::uint64_t requests = 0;
  std::uint64_t stale_reads = 0;
  std::uint64_t connections_opened = 0;
  std::uint32_t peak_connected = 0;
  std::map<std::string, std::uint64_t> errors;
  std::map<std::string, std::string> samples;
  time_point finished_at;

  // Seconds published so far (complete), shared with the live reporter.
  std::mutex seconds_mutex;
  std::vector<second_slot> seconds;
  std::atomic<std::int64_t> published{-1};
  std::atomic<std::uint32_t> connected_now{0};

 private:
  time_point end_time() const noexcept { return ctx_.end(); }
  bool measuring(time_point t) const noexcept { return t >= ctx_.warmup_end() && t < ctx_.end(); }

  // ---- per-second timeline -------------------------------------------------
  std::int64_t second_of(time_point t) const noexcept {
    return std::chrono::duration_cast<std::chrono::seconds>(t - ctx_.start).count();
  }

  void roll_seconds(time_point now) {
    const std::int64_t sec = second_of(now);
    while (current_second_ < sec) publish_current();
  }

  void publish_current() {
    current_.connected = connected_;
    {
      std::lock_guard lock(seconds_mutex);
      seconds.push_back(std::move(current_));
    }
    published.store(current_second_, std::memory_order_release);
    current_ = second_slot{};
    ++current_second_;
  }

  // ---- recording --------------------------------------------------------------
  void record_error(std::string_view kind, std::string_view message, time_point now) {
    ++current_.errors;
    if (measuring(now)) ++errors[std::string(kind)];
    if (samples.find(std::string(kind)) == samples.end()) samples.emplace(std::string(kind), first_line(message));
  }

  void record_stale_read(time_point now) {
    ++current_.stale_reads;
    if (measuring(now)) ++stale_reads;
  }

  void record_success(client& c, time_point now) {
    const std::uint64_t ns = ns_between(c.tx_start, now);
    current_.latency.record(ns);
    ++current_.requests;
    if (measuring(now)) {
      latency.record(ns);
      ++requests;
    }
  }

  // ---- epoll ---------------------------------------------------------------
  void watch(client& c, std::uint32_t want) {
    const int fd = PQsocket(c.conn);
    if (fd < 0) return;
    epoll_event ev{};
    ev.events = want;
    ev.data.u32 = static_cast<std::uint32_t>(&c - clients_.data());
    if (fd == c.fd && c.events == want) return;
    if (fd == c.fd && c.events != 0) {
      if (epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, &ev) == 0) {
        c.events = want;
        return;
      }
      // ENOENT: libpq closed the socket and got the same number back; add it anew.
    } else if (c.fd >= 0 && c.fd != fd && c.events != 0) {
      epoll_ctl(epfd_, EPOLL_CTL_DEL, c.fd, nullptr);  // usually already gone with the close
    }
    c.fd = fd;
    if (epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) != 0 && errno == EEXIST) epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, &ev);
    c.events = want;
  }

  void close_connection(client& c) {
    if (c.state == phase::connecting) {
      --connecting_;
      c.state = phase::pending;
    }
    if (c.conn) {
      if (c.fd >= 0 && c.events != 0) epoll_ctl(epfd_, EPOLL_CTL_DEL, c.fd, nullptr);
      PQfinish(c.conn);
      c.conn = nullptr;
    }
    c.fd = -1;
    c.events = 0;
    c.flushing = false;
    c.cmd_error = false;
    c.cmd_stale = false;
    if (c.counted_connected) {
      c.counted_connected = false;
      --connected_;
    }
  }

  // ---- state machine --------------------------------------------------------
  void start_connect(client& c, time_point now) {
    close_connection(c);
    if (connecting_ >= connect_slots_) {
      c.state = phase::pending;   // picked up by scan_timers when a slot frees
      c.wake = now;
      return;
    }
    c.connect_started = now;
    if (opts_.connect_per_transaction && !c.tx_timing) {
      c.tx_start = now;   // the connection is part of what the transaction costs
      c.tx_timing = true;
    }
    c.conn = PQconnectStartParams(ctx_.keywords.data(), ctx_.values.data(), 1);
    if (!c.conn) return connect_failed(c, error_kind::connect_failed, "out of memory allocating a connection", now);
    if (PQstatus(c.conn) == CONNECTION_BAD || PQsocket(c.conn) < 0) {
      const std::string message = PQerrorMessage(c.conn);
      return connect_failed(c, classify_connect_error(message), message, now);
    }
    c.state = phase::connecting;
    ++connecting_;
    c.deadline = now + opts_.connect_timeout;
    watch(c, EPOLLOUT);  // "behave as if PQconnectPoll last returned PGRES_POLLING_WRITING"
  }

  void connect_failed(client& c, std::string_view kind, std::string_view message, time_point now) {
    record_error(kind, message, now);
    close_connection(c);
    c.tx_timing = false;
    c.state = phase::backoff;
    c.wake = now + opts_.retry_delay;
  }

  void on_connecting(client& c) {
    switch (PQconnectPoll(c.conn)) {
      case PGRES_POLLING_READING: watch(c, EPOLLIN); return;
      case PGRES_POLLING_WRITING: watch(c, EPOLLOUT); return;
      case PGRES_POLLING_FAILED: {
        const std::string message = PQerrorMessage(c.conn);
        return connect_failed(c, classify_connect_error(message), message, steady::now());
      }
      case PGRES_POLLING_OK: break;
      default: return;
    }
    const time_point now = steady::now();
    --connecting_;
    c.state = phase::pending;  // set properly by begin_transaction
    PQsetnonblocking(c.conn, 1);
    ++connections_opened;
    c.counted_connected = true;
    peak_connected = std::max(peak_connected, ++connected_);
    if (measuring(now)) connect_latency.record(ns_between(c.connect_started, now));
    c.prepared.assign(ctx_.source->statements().size(), 0);
    begin_transaction(c, now);
  }

  void begin_transaction(client& c, time_point now) {
    if (now >= end_time()) return finish(c);
    if (!c.conn) return start_connect(c, now);
    if (!c.tx_timing) {
      c.tx_start = now;
      c.tx_timing = true;
    }
    c.tx.clear();
    ctx_.source->next(c.random, c.tx);
    c.cmd = 0;
    if (c.tx.empty()) {
      record_error("empty_transaction", "the workload produced no statement", now);
      return finish(c);
    }
    send_current(c, now);
  }

  void send_current(client& c, time_point now) {
    const command& cmd = c.tx[c.cmd];
    const auto& stmts = ctx_.source->statements();
    const statement_def& def = stmts[cmd.statement];
    int ok = 0;
    if (opts_.protocol == protocol_mode::prepared && !c.prepared[cmd.statement]) {
      c.state = phase::preparing;
      ok = PQsendPrepare(c.conn, ctx_.prepared_names[cmd.statement].c_str(), def.sql.c_str(),
                         static_cast<int>(def.param_count), nullptr);
    } else {
      c.state = phase::executing;
      switch (opts_.protocol) {
        case protocol_mode::simple:
          render_simple_query(def.sql, cmd.params, query_buffer_);
          ok = PQsendQuery(c.conn, query_buffer_.c_str());
          break;
        case protocol_mode::extended:
          fill_params(cmd);
          ok = PQsendQueryParams(c.conn, def.sql.c_str(), static_cast<int>(cmd.params.size()), nullptr,
                                 param_ptrs_.data(), nullptr, nullptr, 0);
          break;
        case protocol_mode::prepared:
          fill_params(cmd);
          ok = PQsendQueryPrepared(c.conn, ctx_.prepared_names[cmd.statement].c_str(),
                                   static_cast<int>(cmd.params.size()), param_ptrs_.data(), nullptr, nullptr, 0);
          break;
      }
    }
    if (!ok) return connection_lost(c, PQerrorMessage(c.conn), now);
    c.sent_at = now;
    c.deadline = now + opts_.request_timeout;
    flush(c, now);
  }

  void fill_params(const command& cmd) {
    param_ptrs_.clear();
    for (const std::string& p : cmd.params) param_ptrs_.push_back(p.c_str());
  }

  // Returns false if the connection was lost.
  bool flush(client& c, time_point now) {
    const int r = PQflush(c.conn);
    if (r < 0) {
      connection_lost(c, PQerrorMessage(c.conn), now);
      return false;
    }
    c.flushing = r == 1;
    watch(c, c.flushing ? (EPOLLIN | EPOLLOUT) : EPOLLIN);
    return true;
  }

  void connection_lost(client& c, std::string_view message, time_point now) {
    record_error(error_kind::connection_lost, message.empty() ? "connection lost" : message, now);
    close_connection(c);
    c.tx_timing = false;
    // The server or pooler may still be up (a terminated backend): reconnect at
    // once; if it is down, the connect fails and backs off.
    begin_transaction(c, now);
  }

  void on_ready(client& c, std::uint32_t events) {
    switch (c.state) {
      case phase::connecting: return on_connecting(c);
      case phase::preparing:
      case phase::executing:
      case phase::rolling_back: return on_request_io(c, events);
      default: return;   // stale event for a closed connection
    }
  }

  void on_request_io(client& c, std::uint32_t events) {
    const time_point now = steady::now();
    if ((events & EPOLLOUT) && c.flushing && !flush(c, now)) return;
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
      if (!PQconsumeInput(c.conn)) return connection_lost(c, PQerrorMessage(c.conn), now);
      if (c.flushing && !flush(c, now)) return;
    }
    while (!PQisBusy(c.conn)) {
      PGresult* res = PQgetResult(c.conn);
      if (!res) return command_done(c);
      const ExecStatusType st = PQresultStatus(res);
      if (st == PGRES_FATAL_ERROR && !c.cmd_error) {
        c.cmd_error = true;
        const char* state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        c.error_kind = std::string(error_kind::query_error_prefix) + (state ? state : "unknown");
        c.error_message = PQresultErrorMessage(res);
      } else if (st == PGRES_TUPLES_OK && c.state == phase::executing && PQntuples(res) == 0 &&
                 ctx_.source->statements()[c.tx[c.cmd].statement].reads_own_write) {
        c.cmd_stale = true;
      } else if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH) {
        PQclear(res);
        return connection_lost(c, "COPY is not supported in bench scripts", now);
      }
      PQclear(res);
    }
  }

  void command_done(client& c) {
    const time_point now = steady::now();
    if (c.cmd_stale) {
      c.cmd_stale = false;
      if (!c.cmd_error) record_stale_read(now);
    }
    if (c.state == phase::rolling_back) {
      c.cmd_error = false;
      return end_transaction(c, false, now);
    }
    if (c.cmd_error) {
      c.cmd_error = false;
      if (PQstatus(c.conn) == CONNECTION_BAD) return connection_lost(c, c.error_message, now);
      record_error(c.error_kind, c.error_message, now);
      // 42P05: the statement exists on this server connection already (a pooler
      // handed us a server another client prepared on); executing it may work.
      if (c.state == phase::preparing && c.error_kind.ends_with("42P05")) c.prepared[c.tx[c.cmd].statement] = 1;
      const PGTransactionStatusType ts = PQtransactionStatus(c.conn);
      if (ts == PQTRANS_INERROR || ts == PQTRANS_INTRANS) {
        c.state = phase::rolling_back;
        if (!PQsendQuery(c.conn, "ROLLBACK")) return connection_lost(c, PQerrorMessage(c.conn), now);
        c.deadline = now + opts_.request_timeout;
        flush(c, now);
        return;
      }
      return end_transaction(c, false, now);
    }
    if (c.state == phase::preparing) {
      c.prepared[c.tx[c.cmd].statement] = 1;
      return send_current(c, now);
    }
    if (++c.cmd < c.tx.size()) return send_current(c, now);
    end_transaction(c, true, now);
  }

  void end_transaction(client& c, bool ok, time_point now) {
    if (ok) record_success(c, now);
    c.tx_timing = false;
    if (opts_.connect_per_transaction) close_connection(c);
    begin_transaction(c, now);
  }

  void finish(client& c) {
    close_connection(c);
    c.state = phase::finished;
  }

  void scan_timers(time_point now) {
    for (client& c : clients_) {
      switch (c.state) {
        case phase::pending:
        case phase::backoff:
          if (now >= c.wake) start_connect(c, now);
          break;
        case phase::connecting:
          if (now >= c.deadline)
            connect_failed(c, error_kind::connect_timeout,
                           "no connection within " + std::to_string(opts_.connect_timeout.count()) + " ms", now);
          break;
        case phase::preparing:
        case phase::executing:
        case phase::rolling_back:
          if (now >= c.deadline) {
            record_error(error_kind::request_timeout,
                         "no answer within " + std::to_string(opts_.request_timeout.count()) + " ms", now);
            close_connection(c);
            c.tx_timing = false;
            c.state = phase::backoff;
            c.wake = now + opts_.retry_delay;
          }
          break;
        case phase::finished: break;
      }
    }
  }

  // End of the run: a request (or login) still unanswered after far longer than
  // this thread's own p99 (and at least 1 s) counts as stalled, so that a target
  // hanging in the last seconds does not look like an idle one, while requests
  // merely queued behind thousands of others (p99 of seconds) do not.
  void finish_all(time_point now) {
    const auto threshold = [](const latency_histogram& h) {
      return std::max<std::chrono::nanoseconds>(std::chrono::seconds(1),
                                                std::chrono::nanoseconds(2 * h.percentile(99)));
    };
    const time_point request_cutoff = now - threshold(latency);
    const time_point connect_cutoff = now - threshold(connect_latency);
    const bool stopped_early = now < ctx_.end();
    for (client& c : clients_) {
      const bool waiting = c.state == phase::preparing || c.state == phase::executing ||
                           c.state == phase::rolling_back;
      const bool waiting_connect = c.state == phase::connecting;
      if ((waiting && c.sent_at < request_cutoff) || (waiting_connect && c.connect_started < connect_cutoff)) {
        ++current_.errors;
        if (now >= ctx_.warmup_end()) ++errors[std::string(error_kind::stalled)];
        if (!samples.count(std::string(error_kind::stalled)))
          samples.emplace(std::string(error_kind::stalled), "still waiting for the server when the run ended");
      }
      finish(c);
    }
    (void)stopped_early;
    finished_at = now;
    publish_current();
  }

  const run_context& ctx_;
  const load_options& opts_;
  std::vector<client> clients_;
  int epfd_ = -1;
  std::uint32_t connected_ = 0;
  std::uint32_t connecting_ = 0;
  std::uint32_t connect_slots_ = 1;
  std::int64_t current_second_ = 0;
  second_slot current_;
  std::string query_buffer_;
  std::vector<const char*> param_ptrs_;
};

}  // namespace

struct load_generator::impl {
  load_options options;
  std::shared_ptr<const transaction_source> source;
};

load_generator::load_generator(load_options options, std::shared_ptr<const transaction_source> source)
    : impl_(std::make_unique<impl>(impl{std::move(options), std::move(source)})) {}

load_generator::~load_generator() = default;

load_result load_generator::run(const std::function<void(const live_sample&)>& on_second,
                                const std::atomic<bool>* stop) {
  const load_options& opts = impl_->options;
  raise_open_files_limit();

  run_context ctx;
  ctx.options = &opts;
  ctx.source = impl_->source.get();
  for (std::size_t i = 0; i < ctx.source->statements().size(); ++i) ctx.prepared_names.push_back("P_" + std::to_string(i));
  // Earlier keywords are overridden by what the expanded dbname (the URL) sets.
  ctx.keywords = {"application_name", "dbname", nullptr};
  ctx.values = {opts.application_name.c_str(), opts.conninfo.c_str(), nullptr};
  ctx.stop = stop;

  std::uint32_t threads = opts.threads ? opts.threads : std::max(1u, std::thread::hardware_concurrency());
  threads = std::max(1u, std::min(threads, std::max(1u, opts.clients)));
  std::vector<std::vector<std::uint32_t>> slices(threads);
  for (std::uint32_t i = 0; i < opts.clients; ++i) slices[i % threads].push_back(i);

  ctx.start = steady::now();
  // Persistent connections: the warm-up lasts until every client is connected (at
  // most connect_phase_limit longer), so the measured window never includes the
  // login storm of thousands of clients. Connect-per-transaction runs reconnect all
  // the time: their warm-up is the fixed one.
  const bool wait_for_connections = !opts.connect_per_transaction;
  bool window_fixed = !wait_for_connections;
  ctx.set_window(ctx.start + opts.warmup + (wait_for_connections ? opts.connect_phase_limit : millis(0)), opts.duration);

  std::vector<std::unique_ptr<worker>> workers;
  const std::uint32_t slots = std::max(1u, opts.max_connecting / threads);
  for (auto& slice : slices) workers.push_back(std::make_unique<worker>(ctx, std::move(slice), slots));
  std::vector<std::thread> running;
  for (auto& w : workers) running.emplace_back([&w] { w->run(); });

  // Merges second `s` of every worker (all must have published it).
  auto merge_second = [&](std::int64_t s) {
    timeline_point p;
    p.second = static_cast<std::uint32_t>(s);
    latency_histogram h;
    for (auto& w : workers) {
      std::lock_guard lock(w->seconds_mutex);
      if (s < static_cast<std::int64_t>(w->seconds.size())) {
        const second_slot& slot = w->seconds[static_cast<std::size_t>(s)];
        h.merge(slot.latency);
        p.requests += slot.requests;
        p.errors += slot.errors;
        p.stale_reads += slot.stale_reads;
        p.connected += slot.connected;
      }
    }
    p.p50_ms = static_cast<double>(h.percentile(50)) / 1e6;
    p.p95_ms = static_cast<double>(h.percentile(95)) / 1e6;
    p.p99_ms = static_cast<double>(h.percentile(99)) / 1e6;
    return p;
  };
  auto total_seconds = [&] {
    return static_cast<std::int64_t>(std::ceil(std::chrono::duration<double>(ctx.end() - ctx.start).count() - 1e-9));
  };
  auto all_published = [&](std::int64_t s) {
    return std::all_of(workers.begin(), workers.end(),
                       [&](const auto& w) { return w->published.load(std::memory_order_acquire) >= s; });
  };

  // Main thread: fixes the measured window, and reports second s once every worker has moved past it.
  std::int64_t reported = 0;
  std::uint64_t most_connected = 0;
  time_point last_progress = ctx.start;
  for (;;) {
    const time_point now = steady::now();
    if (stop && stop->load()) break;
    if (!window_fixed) {
      std::uint64_t connected = 0;
      for (const auto& w : workers) connected += w->connected_now.load(std::memory_order_relaxed);
      if (connected > most_connected) {
        most_connected = connected;
        last_progress = now;
      }
      // A target that refuses or stalls logins must not stretch the warm-up: measure
      // once no new client got in for 5 s.
      const bool stuck = now - last_progress >= std::chrono::seconds(5);
      if (now >= ctx.start + opts.warmup &&
          (connected >= opts.clients || stuck || now >= ctx.start + opts.warmup + opts.connect_phase_limit)) {
        ctx.set_window(now, opts.duration);
        window_fixed = true;
      }
    }
    if (reported < total_seconds() && now >= ctx.start + std::chrono::seconds(reported + 1) + std::chrono::milliseconds(30)) {
      const time_point give_up = now + std::chrono::milliseconds(500);
      while (!all_published(reported) && steady::now() < give_up && !(stop && stop->load()))
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      if (on_second) {
        live_sample sample;
        sample.point = merge_second(reported);
        sample.warmup = ctx.start + std::chrono::seconds(reported + 1) <= ctx.warmup_end();
        on_second(sample);
      }
      ++reported;
      continue;
    }
    if (window_fixed && reported >= total_seconds()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  for (auto& t : running) t.join();

  load_result result;
  time_point finished = ctx.start;
  std::size_t seconds = 0;
  for (auto& w : workers) {
    result.latency.merge(w->latency);
    result.connect_latency.merge(w->connect_latency);
    result.requests += w->requests;
    result.stale_reads += w->stale_reads;
    result.connections_opened += w->connections_opened;
    result.peak_connected += w->peak_connected;
    for (const auto& [k, v] : w->errors) result.errors[k] += v;
    for (const auto& [k, v] : w->samples) result.error_samples.emplace(k, v);
    finished = std::max(finished, w->finished_at);
    seconds = std::max(seconds, w->seconds.size());
  }
  for (const auto& [k, v] : result.errors) result.failures += v;
  // The seconds of the run proper; the sliver after the end (closing connections) is left out.
  // Whole seconds only: a last sliver of a second would plot as a sudden drop.
  const auto whole_seconds = static_cast<std::size_t>(std::max(0.0, std::floor(std::chrono::duration<double>(ctx.end() - ctx.start).count())));
  seconds = std::min(seconds, std::max<std::size_t>(1, whole_seconds));
  for (std::size_t s = 0; s < seconds; ++s) result.timeline.push_back(merge_second(static_cast<std::int64_t>(s)));
  result.warmup_seconds = std::chrono::duration<double>(ctx.warmup_end() - ctx.start).count();
  const time_point measured_end = std::min(finished, ctx.end());
  result.measured_seconds = measured_end > ctx.warmup_end()
                                ? std::chrono::duration<double>(measured_end - ctx.warmup_end()).count()
                                : 0.0;
  return result;
}

}  // namespace pgsluice::bench

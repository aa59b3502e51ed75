// One load-generator thread: non-blocking libpq clients (connect, prepare, execute, roll back, think) on one epoll loop.
#include "bench/load_worker.hpp"

#include <libpq-fe.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <utility>

namespace pgsluice::bench::detail {

namespace {

std::uint64_t ns_between(time_point a, time_point b) noexcept {
  return b > a ? static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(b - a).count()) : 0;
}

std::string first_line(std::string_view message) {
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.remove_suffix(1);
  std::string out(message);
  std::replace(out.begin(), out.end(), '\n', ' ');
  return out;
}

enum class phase : std::uint8_t { pending, connecting, preparing, executing, rolling_back, backoff, thinking, finished };

struct client {
  std::uint32_t id = 0;
  rng random;
  PGconn* conn = nullptr;
  int fd = -1;
  std::uint32_t events = 0;       // what fd is registered for in epoll (0 = not registered)
  phase state = phase::pending;
  time_point wake;                // pending / backoff: when to (re)connect; thinking: when to send the next request
  time_point deadline;            // connecting / request: when to give up
  time_point connect_started;
  time_point tx_start;
  time_point sent_at;
  bool tx_timing = false;         // tx_start is set (connect-per-transaction starts it at connect)
  bool flushing = false;
  bool cmd_error = false;
  bool cmd_stale = false;         // the current command read no row where its own write should be
  bool counted_connected = false;
  bool spawned = false;           // started once (a user of Locust's model)
  std::string error_kind;
  std::string error_message;
  transaction tx;
  std::size_t cmd = 0;
  std::vector<std::uint8_t> prepared;   // per statement, on the current connection
};

}  // namespace

struct worker::engine : worker_output {
  engine(const run_context& ctx, std::vector<std::uint32_t> ids, std::uint32_t connect_slots)
      : ctx_(ctx), opts_(*ctx.options), connect_slots_(std::max(1u, connect_slots)) {
    by_request.resize(ctx.request_kinds + 1);
    if (const auto& kinds = ctx.source->request_kinds(); !kinds.empty())
      for (std::size_t i = 0; i < kinds.size() && i < ctx.request_kinds; ++i) by_request[i].kind = kinds[i];
    by_request.back().kind = {"connect", "connection set-up"};
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

  ~engine() {
    for (client& c : clients_) close_connection(c);
    if (epfd_ >= 0) ::close(epfd_);
  }

  void run() {
    epfd_ = epoll_create1(EPOLL_CLOEXEC);
    if (epfd_ < 0) {
      record_error(error_kind::connect_failed, std::string("epoll_create1: ") + std::strerror(errno), steady::now(), connect_row());
      finish_all(steady::now());
      return;
    }
    std::vector<epoll_event> events(1024);
    time_point last_scan{};
    for (;;) {
      const time_point now = steady::now();
      roll_seconds(now);
      connected_now.store(connected_, std::memory_order_relaxed);
      users_now.store(spawned_, std::memory_order_relaxed);
      if (now >= end_time() || (ctx_.stop && ctx_.stop->load(std::memory_order_relaxed))) {
        finish_all(now);
        return;
      }
      if (now - last_scan >= std::chrono::milliseconds(10)) {
        scan_timers(now);
        last_scan = now;
      }
      wake_thinkers(now);
      const int n = epoll_wait(epfd_, events.data(), static_cast<int>(events.size()), wait_ms(now));
      for (int i = 0; i < n; ++i) {
        client& c = clients_[events[i].data.u32];
        on_ready(c, events[i].events);
      }
    }
  }

 private:
  time_point end_time() const noexcept { return ctx_.end(); }
  std::uint32_t connect_row() const noexcept { return ctx_.request_kinds; }
  bool measuring(time_point t) const noexcept { return t >= ctx_.warmup_end() && t < ctx_.end(); }

  // ---- think time (users) ------------------------------------------------------
  // Thinking clients wait in a heap by wake time: 10,000 users need no timer each, and
  // the loop sleeps in epoll_wait no longer than until the next one is due.
  using wake_entry = std::pair<time_point, std::uint32_t>;

  void think(client& c, time_point now) {
    const auto lo = std::chrono::duration_cast<steady::duration>(opts_.think_min);
    const auto hi = std::chrono::duration_cast<steady::duration>(opts_.think_max);
    const auto pause = lo + steady::duration(static_cast<steady::duration::rep>(
                                c.random.unit() * static_cast<double>((hi - lo).count())));
    c.state = phase::thinking;
    c.wake = now + pause;
    thinking_.push_back({c.wake, static_cast<std::uint32_t>(&c - clients_.data())});
    std::push_heap(thinking_.begin(), thinking_.end(), std::greater<>());
  }

  void wake_thinkers(time_point now) {
    while (!thinking_.empty() && thinking_.front().first <= now) {
      std::pop_heap(thinking_.begin(), thinking_.end(), std::greater<>());
      const auto [when, index] = thinking_.back();
      thinking_.pop_back();
      client& c = clients_[index];
      if (c.state == phase::thinking && c.wake == when) begin_transaction(c, now);
    }
  }

  int wait_ms(time_point now) const {
    if (thinking_.empty()) return 10;
    const auto due = std::chrono::duration_cast<std::chrono::milliseconds>(thinking_.front().first - now).count();
    return static_cast<int>(std::clamp<std::int64_t>(due, 0, 10));
  }

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
    current_.users = spawned_;
    {
      std::lock_guard lock(seconds_mutex);
      seconds.push_back(std::move(current_));
    }
    published.store(current_second_, std::memory_order_release);
    current_ = second_slot{};
    ++current_second_;
  }

  // ---- recording --------------------------------------------------------------
  // `request`: the kind of the request that failed (a row of by_request); the "connect"
  // row when no request was under way.
  void record_error(std::string_view kind, std::string_view message, time_point now, std::uint32_t request) {
    ++current_.errors;
    if (measuring(now)) {
      ++errors[std::string(kind)];
      request_stats& row = by_request[std::min<std::size_t>(request, by_request.size() - 1)];
      ++row.failures;
      ++row.errors[std::string(kind)];
    }
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
      request_stats& row = by_request[std::min<std::size_t>(c.tx.kind(), by_request.size() - 2)];
      row.latency.record(ns);
      ++row.requests;
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
    record_error(kind, message, now, connect_row());
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
      record_error("empty_transaction", "the workload produced no statement", now, c.tx.kind());
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
    record_error(error_kind::connection_lost, message.empty() ? "connection lost" : message, now, c.tx.kind());
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
      case phase::thinking: return on_idle_io(c);
      default: return;   // stale event for a closed connection
    }
  }

  // A thinking client's connection became readable: a notice, or the server (or pooler)
  // closing it. Closed, it is reopened when the next request is due; the loss is a
  // failure outside any request.
  void on_idle_io(client& c) {
    if (PQconsumeInput(c.conn) && PQstatus(c.conn) != CONNECTION_BAD) {
      while (PGnotify* n = PQnotifies(c.conn)) PQfreemem(n);
      return;
    }
    record_error(error_kind::connection_lost, PQerrorMessage(c.conn), steady::now(), connect_row());
    close_connection(c);
    c.state = phase::thinking;  // close_connection leaves it; wake_thinkers reconnects at c.wake
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
      record_error(c.error_kind, c.error_message, now, c.tx.kind());
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
    if (opts_.think_max.count() > 0) return think(c, now);
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
          if (now >= c.wake) {
            if (!c.spawned) {
              c.spawned = true;
              ++spawned_;
            }
            start_connect(c, now);
          }
          break;
        case phase::connecting:
          if (now >= c.deadline)
            connect_failed(c, error_kind::connect_timeout,
                           "no connection within " + std::to_string(opts_.connect_timeout.count()) + " ms", now);
          break;
        case phase::thinking: break;  // woken from the heap
        case phase::preparing:
        case phase::executing:
        case phase::rolling_back:
          if (now >= c.deadline) {
            record_error(error_kind::request_timeout,
                         "no answer within " + std::to_string(opts_.request_timeout.count()) + " ms", now, c.tx.kind());
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
    for (client& c : clients_) {
      const bool waiting = c.state == phase::preparing || c.state == phase::executing ||
                           c.state == phase::rolling_back;
      const bool waiting_connect = c.state == phase::connecting;
      if ((waiting && c.sent_at < request_cutoff) || (waiting_connect && c.connect_started < connect_cutoff)) {
        record_error(error_kind::stalled, "still waiting for the server when the run ended",
                     std::min(now, ctx_.end() - std::chrono::nanoseconds(1)), waiting ? c.tx.kind() : connect_row());
      }
      finish(c);
    }
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
  std::vector<wake_entry> thinking_;   // a min-heap on the wake time
  std::uint32_t spawned_ = 0;
};

worker::worker(const run_context& ctx, std::vector<std::uint32_t> ids, std::uint32_t connect_slots)
    : engine_(std::make_unique<engine>(ctx, std::move(ids), connect_slots)) {}

worker::~worker() = default;

void worker::run() { engine_->run(); }

worker_output& worker::output() noexcept { return *engine_; }

}  // namespace pgsluice::bench::detail

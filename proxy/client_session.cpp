// Client sessions, lifecycle: start and run, timeouts, ending, handing the server back, and the one writer to the client socket.
#include "proxy/client_session.hpp"

#include <sys/socket.h>

#include <cerrno>

#include <spdlog/spdlog.h>

#include "protocol/codec.hpp"
#include "proxy/cluster.hpp"
#include "proxy/logging.hpp"
#include "proxy/pinning.hpp"
#include "proxy/pool.hpp"
#include "proxy/runtime.hpp"
#include "proxy/server_connection.hpp"
#include "proxy/tls.hpp"

namespace pgsluice::proxy {

client_session::client_session(worker& w, tcp::socket socket)
    : worker_(w),
      rt_(w.rt()),
      id_(rt_.next_client_id()),
      name_("c" + std::to_string(id_)),
      socket_(std::move(socket)),
      signal_(w.io()),
      done_signal_(w.io()),
      write_done_(w.io()) {
  boost::system::error_code ec;
  const auto peer = socket_.remote_endpoint(ec);
  peer_ = ec ? std::string("?") : peer.address().to_string() + ":" + std::to_string(peer.port());
  rt_.stats().client_enters(state());
  rt_.stats().add(counter::clients_accepted);
  worker_.add_session(this);
}

client_session::~client_session() { rt_.stats().client_enters(state(), -1); }

void client_session::state_changed(relay_state from, relay_state to) noexcept {
  if (to == relay_state::waiting) wait_since_ = clock::now();
  const client_state a = gauge_of(from);
  const client_state b = gauge_of(to);
  if (a != b) rt_.stats().client_moves(a, b);
}

void client_session::start() { spawn(&client_session::run); }

void client_session::spawn(awaitable<void> (client_session::*fn)()) {
  auto self = shared_from_this();
  asio::co_spawn(worker_.io(), [self, fn]() { return ((*self).*fn)(); }, [self](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      spdlog::error("{} session failed with an exception: {}", self->name_, ex.what());
    }
    // The session coroutine died on a bug: make sure the connection does not linger.
    boost::system::error_code ec;
    self->socket_.close(ec);
    if (self->counted_) {
      self->rt_.client_count().fetch_sub(1, std::memory_order_relaxed);
      self->counted_ = false;
    }
    self->worker_.remove_session(self.get());
  });
}

awaitable<void> client_session::run() {
  auto cfg = rt_.config();
  cfg_ = cfg;
  tls_ctx_ = rt_.tls();
  if (cfg->client_login_timeout.count() > 0) login_deadline_ = clock::now() + cfg->client_login_timeout;
  boost::system::error_code ec;
  socket_.set_option(tcp::no_delay(true), ec);

  const bool logged_in = co_await login();
  if (logged_in && console_ && !machine_.ending()) {
    machine_.logged_in();
    last_activity_ = clock::now();
    co_await console_loop();
  } else if (logged_in && !machine_.ending()) {
    machine_.logged_in();
    last_activity_ = clock::now();
    if (server_) start_server_pump();  // a server kept from login (session pooling)
    spawn(&client_session::relay_session);
    co_return;
  }
  co_await finish();
}

awaitable<void> client_session::relay_session() {
  co_await client_pump();
  if (std::exchange(parked_, false)) {
    park();
    co_return;
  }
  end(machine_.reason());
  while (server_pump_running_) {
    done_signal_.expires_at(clock::time_point::max());
    co_await done_signal_.async_wait(nothrow_awaitable);
  }
  co_await finish();
}

bool client_session::may_park(clock::time_point now) const noexcept {
  return !tls_ && !console_ && machine_.state() == relay_state::idle && client_reading_ && !park_due_ && !server_ &&
         !server_pump_running_ && lane_ == nullptr && !client_writing_ && cbuf_.empty() && held_begin_.empty() &&
         machine_.streams_idle() && now - last_activity_ >= std::chrono::seconds(1);
}

void client_session::park() {
  auto self = shared_from_this();
  // Bytes, or the client's close, that came after the cancelled read: relay them now. From here
  // to the wait below the event loop does not run, so anything later wakes the wait.
  std::uint8_t byte = 0;
  const ssize_t n = ::recv(socket_.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
    asio::post(worker_.io(), [self] { self->spawn(&client_session::relay_session); });
    return;
  }
  rt_.stats().add(counter::client_parks);
  // end() cancels the wait: relay_session then finds the session ending and finishes it.
  socket_.async_wait(tcp::socket::wait_read, [self](const boost::system::error_code&) {
    self->spawn(&client_session::relay_session);
  });
}

void client_session::start_server_pump() {
  server_pump_retire_ = false;
  if (server_pump_running_) {
    signal();
    return;
  }
  const auto now = clock::now();
  server_pump_hot_ = server_pump_started_ != clock::time_point{} && now - server_pump_started_ < std::chrono::milliseconds(100);
  server_pump_started_ = now;
  // Cleared by the pump itself when it returns (server_pump), so a server attached right after
  // starts a new one.
  server_pump_running_ = true;
  auto self = shared_from_this();
  asio::co_spawn(worker_.io(), [self]() { return self->server_pump(); }, [self](std::exception_ptr e) {
    self->done_signal_.cancel();
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      spdlog::error("{} server relay failed with an exception: {}", self->name_, ex.what());
    }
    self->end(end_reason::server_protocol_error);
  });
}

std::optional<client_session::cancel_target> client_session::current_cancel_target() {
  std::lock_guard lk(cancel_mu_);
  if (!cancel_target_) return std::nullopt;
  return cancel_target{cancel_target_->server, cancel_target_->pid, cancel_target_->secret};
}

void client_session::set_cancel_target(server_connection* s) {
  std::shared_ptr<const server_connection::cancel_key> next;
  if (s != nullptr) next = s->cancel_info();
  std::lock_guard lk(cancel_mu_);
  cancel_target_.swap(next);  // the old one is let go after the lock
}

// --- the client socket -----------------------------------------------------------------------

int client_session::write_client_now(gather_list& g) {
  rt_.stats().add(counter::client_sent_bytes, static_cast<std::int64_t>(g.bytes()));
  if (client_writing_) {
    // A write is under way: queue a copy behind it (flush_client sends the queue before it stops).
    g.for_each([&](std::span<const std::uint8_t> s) { client_pending_.insert(client_pending_.end(), s.begin(), s.end()); });
    return 1;
  }
  if (tls_) return write_client_tls_now(g);
  int err = 0;
  const std::size_t sent = g.send_now(socket_.native_handle(), err);
  if (err != 0) return -1;
  if (sent == g.bytes()) return 1;
  client_writing_ = true;
  client_flushing_.clear();
  g.copy_tail(sent, client_flushing_);
  return 0;
}

awaitable<bool> client_session::flush_client() {
  boost::system::error_code ec;
  for (;;) {
    if (tls_) {
      ec = co_await tls_write_all(socket_, *tls_, client_flushing_);
    } else {
      auto [ec2, n2] = co_await asio::async_write(socket_, asio::buffer(client_flushing_.data(), client_flushing_.size()),
                                                  nothrow_awaitable);
      (void)n2;
      ec = ec2;
    }
    client_flushing_.clear();
    if (ec || client_pending_.empty()) break;
    client_flushing_.swap(client_pending_);
  }
  client_pending_.clear();
  client_writing_ = false;
  co_return !ec;
}

awaitable<bool> client_session::write_client(gather_list& g) {
  int w = write_client_now(g);
  g.clear();
  if (w == 0) w = co_await flush_client() ? 1 : -1;
  if (w < 0) {
    end(end_reason::client_closed);
    co_return false;
  }
  co_return true;
}

awaitable<bool> client_session::send_bytes(const std::vector<std::uint8_t>& bytes) {
  gather_list g;
  g.add_input(bytes.data(), bytes.size());
  co_return co_await write_client(g);
}

// --- ending ----------------------------------------------------------------------------------

void client_session::end(end_reason r) noexcept {
  if (!machine_.end(r)) return;
  wait_.cancel();
  write_done_.cancel();
  boost::system::error_code ec;
  socket_.cancel(ec);
  if (server_ && server_->is_open()) server_->socket().cancel(ec);
  signal();
}

void client_session::fail(end_reason r, std::string_view sqlstate, std::string_view message, std::string_view severity) {
  if (machine_.ending()) return;
  final_message_.clear();
  protocol::encode_error_response(severity, sqlstate, message, final_message_);
  rt_.stats().error_sent(sqlstate);
  final_sqlstate_ = sqlstate;
  end(r);
}

void client_session::fail_with(end_reason r, const server_error& e) {
  if (machine_.ending()) return;
  final_message_.clear();
  protocol::encode_error_response("FATAL", e.sqlstate, e.message, e.detail, {}, final_message_);
  rt_.stats().error_sent(e.sqlstate);
  final_sqlstate_ = e.sqlstate;
  end(r);
}

void client_session::check_timeouts(clock::time_point now, const conf::config& cfg, bool shutting_down) {
  if (machine_.ending()) return;
  const relay_state st = machine_.state();
  if (st == relay_state::login) {
    if (login_deadline_ != clock::time_point{} && now >= login_deadline_) {
      spdlog::info("{} timeout kind=client_login_timeout", name_);
      fail(end_reason::client_login_timeout, "08P01", "pgsluice: client_login_timeout (login not completed in time)");
    }
    return;
  }
  const bool server_idle = server_ && tracker_.idle() && machine_.streams_idle();
  if (lane_ != nullptr) return;  // a pipelined statement runs: its reply comes first
  // Idle between transactions; a transaction held at its BEGIN (no server yet) is not.
  const bool between = st == relay_state::idle && held_begin_.empty();
  if (shutting_down && (between || (server_idle && server_->transaction_status == 'I'))) {
    fail(end_reason::shutdown, "57P01", "terminating connection due to administrator command");
    return;
  }
  if (between && cfg.client_idle_timeout.count() > 0 && now - last_activity_ >= cfg.client_idle_timeout) {
    spdlog::info("{} timeout kind=client_idle_timeout", name_);
    fail(end_reason::client_idle_timeout, "08P01", "pgsluice: client_idle_timeout");
    return;
  }
  // Inside a transaction: on a server, or held at its BEGIN with none yet.
  const bool in_transaction = (server_idle && server_->transaction_status != 'I') || (!server_ && !held_begin_.empty());
  if (in_transaction && cfg.idle_transaction_timeout.count() > 0 && now - last_activity_ >= cfg.idle_transaction_timeout) {
    spdlog::info("{} timeout kind=idle_transaction_timeout", name_);
    fail(end_reason::idle_transaction_timeout, "25P03", "terminating connection due to idle-in-transaction timeout");
    return;
  }
  // A second without a query: the server pump's coroutine goes (the next attach starts one).
  if (server_pump_parked_ && !server_ && now - last_activity_ >= std::chrono::seconds(1)) {
    server_pump_retire_ = true;
    if (tracker_.idle()) tracker_.clear();  // and the ring kept for it (idle: nothing in it)
    signal();
  }
  // Then the client pump's read: cancelled, it parks the session (park()).
  if (may_park(now)) {
    park_due_ = true;
    boost::system::error_code ec;
    socket_.cancel(ec);
  }
}

void client_session::terminate() {
  fail(end_reason::shutdown, "57P01", "terminating connection due to administrator command");
}

awaitable<void> client_session::finish() {
  const end_reason reason = machine_.reason();
  machine_.finishing();
  if (server_) {
    server_condition c;
    c.replies_outstanding = !tracker_.idle() || !sbuf_.empty() || !machine_.streams_idle();
    c.transaction_status = server_->transaction_status;
    c.needs_reset = !transaction_mode_ || machine_.pinned() || (cfg_ && cfg_->server_reset_query_always);
    const auto d = decide_server_disposition(reason, c);
    auto s = std::move(server_);
    set_cancel_target(nullptr);
    tracker_.clear();
    if (counted_backend_ != nullptr) counted_backend_->active.fetch_sub(1, std::memory_order_relaxed);
    counted_backend_ = nullptr;
    bool reusable = d != server_disposition::close && s->is_open();
    if (reusable && d == server_disposition::reset) {
      s->set_state(server_state::resetting);
      const auto timeout = cfg_ ? cfg_->server_connect_timeout : std::chrono::milliseconds(15000);
      if (s->transaction_status != 'I') {
        if (auto err = co_await s->run_internal("ROLLBACK", timeout)) reusable = false;
      }
      const std::string& reset = pool_->cfg().reset_query;
      if (reusable && c.needs_reset && !reset.empty()) {
        if (auto err = co_await s->run_internal(reset, timeout)) {
          spdlog::warn("{} reset_failed sqlstate={} error=\"{}\"", s->name(), err->sqlstate, err->message);
          reusable = false;
        }
        const auto effects = classify_session_effects(reset);
        if (effects.drops_prepared) s->statements.clear();
        if (effects.resets_settings) s->applied.clear();
        s->synced_settings = 0;
      }
      reusable = reusable && s->transaction_status == 'I';
      s->unnamed_owner = 0;  // the simple Query of a reset drops the unnamed statement
    }
    if (!reusable) spdlog::info("{} closing pool={} reason={} client={}", s->name(), pool_->name(), to_string(reason), name_);
    pool_->release(std::move(s), reusable);
  }
  boost::system::error_code ec;
  if (!final_message_.empty() && socket_.is_open() && !client_writing_) {
    // Best effort and never blocking: the client may not be reading any more.
    gather_list g;
    g.add_input(final_message_.data(), final_message_.size());
    write_client_now(g);
  }
  if (tls_ && !client_writing_) tls_->shutdown_now();
  socket_.shutdown(tcp::socket::shutdown_both, ec);
  socket_.close(ec);
  if (cancel_pid_ != 0 || cancel_secret_ != 0) rt_.cancels().remove(cancel_pid_, cancel_secret_);
  if (counted_) {
    rt_.client_count().fetch_sub(1, std::memory_order_relaxed);
    counted_ = false;
  }
  if (cluster_) cluster_->clients().fetch_sub(1, std::memory_order_relaxed);
  // Every client that asked to log in, in or refused (a port probe or a cancel request is not one).
  if (!startup_.user.empty() && cfg_ && cfg_->log.log_disconnections) {
    const double seconds = std::chrono::duration<double>(clock::now() - accepted_).count();
    spdlog::info("{} disconnect reason={} user={} db={} addr={} duration={:.3f}s{}", name_, to_string(reason),
                 log_quoted(startup_.user), log_quoted(startup_.database), peer_, seconds,
                 final_sqlstate_.empty() ? std::string() : " sqlstate=" + final_sqlstate_);
  }
  worker_.remove_session(this);
  machine_.closed();
}

}  // namespace pgsluice::proxy

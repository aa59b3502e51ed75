// Pipelined statements: the lanes, server connections carrying several clients' autocommit statements at once (lanes.hpp).
#include "proxy/lanes.hpp"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "protocol/codec.hpp"
#include "protocol/fields.hpp"
#include "proxy/client_session.hpp"
#include "proxy/pool.hpp"
#include "proxy/ready_read.hpp"
#include "proxy/runtime.hpp"
#include "proxy/server_connection.hpp"
#include "proxy/tls.hpp"

namespace pgsluice::proxy {

namespace {

// Replies of a statement queued behind a cancel are kept until complete, up to this much.
constexpr std::size_t kept_limit = 1 << 20;

std::uint32_t length_at(const std::uint8_t* p) noexcept {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
}

// The error a CancelRequest causes (PostgreSQL's ProcessInterrupts): 57014. statement_timeout's
// has the same code; the message would tell them apart, but it may be translated
// (lc_messages): while a cancel is out, any 57014 is taken for it (at worst a statement that
// timed out runs again once, and times out again).
bool is_query_canceled(std::span<const std::uint8_t> body) { return protocol::read_error_fields(body).sqlstate == "57014"; }

}  // namespace

lane::lane(worker& w, lane_set& set, std::shared_ptr<pool> p, std::size_t settings, std::shared_ptr<server_connection> s)
    : worker_(w), set_(set), pool_(std::move(p)), settings_(settings), server_(std::move(s)) {}

lane::~lane() = default;

void lane::start() {
  server_->unnamed_owner = 0;  // statements of many clients: the unnamed one is nobody's
  spdlog::debug("{} lane opened pool={}", server_->name(), pool_->name());
  asio::co_spawn(worker_.io(), [self = shared_from_this()]() -> awaitable<void> { co_await self->read_loop(); },
                 [](std::exception_ptr e) {
                   if (!e) return;
                   try {
                     std::rethrow_exception(e);
                   } catch (const std::exception& ex) {
                     spdlog::error("lane reader failed: {}", ex.what());
                   }
                 });
}

void lane::push(lane_entry e) {
  if (closed_ && !e.rerun) e.held = true;
  e.rerun = false;
  entries_.push_back(std::move(e));
  used_since_tick_ = true;
  if (flush_posted_ || writing_) return;
  flush_posted_ = true;
  // After the other reads the event loop has ready: their statements go in the same send.
  asio::post(worker_.io(), [self = shared_from_this()] {
    self->flush_posted_ = false;
    self->flush();
  });
}

void lane::flush() {
  if (writing_ || out_.empty() || broken_) return;
  boost::system::error_code ec;
  const std::size_t sent = server_->send_now(out_, ec);
  if (ec) {
    out_.clear();
    fail_all("server write failed");
    return;
  }
  if (sent == out_.bytes()) {
    out_.clear();
    return;
  }
  tail_.clear();
  out_.copy_tail(sent, tail_);
  out_.clear();
  writing_ = true;
  asio::co_spawn(worker_.io(), [self = shared_from_this()]() -> awaitable<void> { co_await self->write_rest(); },
                 asio::detached);
}

awaitable<void> lane::write_rest() {
  const auto ec = co_await server_->write(tail_);
  tail_.clear();
  writing_ = false;
  if (ec) fail_all("server write failed");
  if (finish_after_write_) {
    finish();
    co_return;
  }
  if (!ec) flush();
}

awaitable<void> lane::read_loop() {
  try {
    for (;;) {
      if (broken_ || (retiring_ && entries_.empty())) break;
      reading_ = true;
      const std::size_t room = std::max<std::size_t>(4096, need_);
      auto [ec, n] = server_->tls() != nullptr
                         ? co_await tls_read_some(server_->socket(), *server_->tls(), rbuf_.prepare(room))
                         : co_await async_read_into(server_->socket(), rbuf_, room, &ends_with_ready_for_query, nothrow_awaitable);
      reading_ = false;
      if (ec) {
        if (retiring_ && entries_.empty() && ec == asio::error::operation_aborted) break;
        spdlog::info("{} lane server_closed error=\"{}\" queued={}", server_->name(), ec.message(), entries_.size());
        fail_all("server closed the connection unexpectedly");
        break;
      }
      rbuf_.commit(n);
      const std::size_t used = dispatch(rbuf_.data());
      rbuf_.consume(used);  // after dispatch(): replies pointed into the buffer until delivered
      rbuf_.shrink_if_empty(64 * 1024);
      // Backpressure: a client whose socket is full takes its replies before the lane reads on.
      while (!flushing_.empty()) {
        auto c = std::move(flushing_.back());
        flushing_.pop_back();
        if (!co_await c->flush_client()) c->end(end_reason::client_closed);
      }
    }
  } catch (const std::exception& ex) {
    spdlog::error("{} lane reader failed: {}", server_->name(), ex.what());
    fail_all("internal error");
  }
  if (writing_) {
    finish_after_write_ = true;  // the write under way still uses the server
    co_return;
  }
  finish();
}

std::size_t lane::dispatch(std::span<const std::uint8_t> data) {
  std::size_t off = 0;
  while (off + 5 <= data.size() && !broken_) {
    const std::uint8_t* raw = data.data() + off;
    const char tag = static_cast<char>(raw[0]);
    const std::uint32_t len = length_at(raw + 1);
    if (len < 4) {
      fail_all("invalid message from the server");
      break;
    }
    if (off + 1 + len > data.size()) {
      need_ = 1 + len;  // room for the whole message at the next read (the buffer may move then)
      break;
    }
    need_ = 0;
    const std::size_t size = 1 + len;
    const std::span<const std::uint8_t> body(raw + 5, len - 4);
    off += size;
    if (entries_.empty()) {
      // Nothing asked for: only an asynchronous message may come (a notice before a shutdown).
      if (tag == 'E') {
        fail_all("server error outside a statement");
        break;
      }
      if (tag == 'S') {
        if (const auto p = protocol::read_parameter_status(body)) server_->reported.set(p->name, p->value);
      }
      continue;
    }
    lane_entry& e = entries_.front();
    if (tag == 'S') {
      if (const auto p = protocol::read_parameter_status(body)) server_->reported.set(p->name, p->value);
    }
    if (e.swallow > 0 && (tag == '1' || tag == '3')) {
      --e.swallow;
      continue;
    }
    if (tag == 'E') {
      if (e.swallow > 0) {
        // The Parse pgsluice put ahead of the client's Bind failed: the statement is not there.
        e.swallow = 0;
        if (e.injected) server_->statements.erase(e.stmt->digest);
      }
      if (cancels_out_ > 0 && is_query_canceled(body)) {
        --cancels_out_;
        if (!e.cancel_wanted && e.client && e.held) e.rerun = true;
      }
      if (!e.client) e.failed_internal = true;
    }
    if (tag == 'Z') {
      const char status = body.empty() ? 'I' : static_cast<char>(body[0]);
      server_->transaction_status = status;
      if (e.client && !e.rerun) {
        if (e.held) {
          e.kept.insert(e.kept.end(), raw, raw + size);
        } else {
          to_client_.add_input(raw, size);
        }
      }
      finish_head(status);
      continue;
    }
    if (!e.client || e.rerun) continue;
    if (e.held && tag == 'E') {
      gather_list g;
      e.client->lane_error(raw, size, body, g);
      g.for_each([&](std::span<const std::uint8_t> p) { e.kept.insert(e.kept.end(), p.begin(), p.end()); });
    } else if (e.held) {
      e.kept.insert(e.kept.end(), raw, raw + size);
      if (e.kept.size() > kept_limit) {
        // Too much to keep: the client has it now, and it can no longer run again unseen.
        to_client_.add_owned(e.kept);
        e.kept.clear();
        e.held = false;
      }
    } else if (tag == 'E') {
      e.client->lane_error(raw, size, body, to_client_);
    } else {
      to_client_.add_input(raw, size);
    }
  }
  deliver_head();
  return off;
}

void lane::deliver_head() {
  if (to_client_.empty()) return;
  if (!entries_.empty() && entries_.front().client) send_to(entries_.front().client);
  to_client_.clear();
}

void lane::send_to(const std::shared_ptr<client_session>& c) {
  if (!c->lane_reply(to_client_)) return;
  if (std::find(flushing_.begin(), flushing_.end(), c) == flushing_.end()) flushing_.push_back(c);
}

void lane::finish_head(char status) {
  lane_entry e = std::move(entries_.front());
  entries_.pop_front();
  if (e.client) {
    if (e.rerun) {
      // Hit by the cancel meant for another statement: nothing of it reached its client and
      // an aborted autocommit statement left nothing behind; it runs again, last in line.
      spdlog::info("{} lane rerun client={} reason=\"cancel meant for another statement\"", server_->name(),
                   e.client->name());
      e.injected = false;
      e.swallow = 0;
      if (e.stmt && !server_->statements.touch(e.stmt->digest)) {
        // Evicted (or its Parse failed) since: prepared again ahead of it.
        std::vector<statement_ptr> evicted;
        server_->statements.insert(e.stmt, evicted);
        auto& o = out_.begin_owned();
        for (const auto& old : evicted) protocol::append_target(o, protocol::frontend_tag::close, 'S', old->server_name);
        o.insert(o.end(), e.stmt->parse_message.begin(), e.stmt->parse_message.end());
        out_.end_owned();
        e.swallow = static_cast<std::uint16_t>(evicted.size() + 1);
        e.injected = true;
      }
      out_.add_owned(e.request);
      e.kept.clear();
      e.held = false;
      e.rerun = true;  // push() keeps it out of the held set
      to_client_.clear();
      push(std::move(e));
    } else {
      if (!e.kept.empty()) {
        to_client_.clear();
        to_client_.add_input(e.kept.data(), e.kept.size());
      }
      if (!to_client_.empty()) send_to(e.client);
      to_client_.clear();
      e.client->lane_done();
      if (accepting()) set_.wake(pool_.get(), settings_, false);  // room for a client waiting for it
    }
  } else if (e.failed_internal) {
    fail_all("settings could not be applied");
    return;
  }
  if (status != 'I') {
    // An autocommit statement left a transaction open: nothing queued behind it may run in it.
    spdlog::warn("{} lane left_transaction status={}", server_->name(), status);
    fail_all("statement left a transaction open");
    return;
  }
  maybe_send_cancel();
  // Clients queued for a server of this pool (their transactions go the ordinary way): the
  // lane takes nothing more and gives its server back once what it has is done.
  if (!closed_ && pool_->counts().waiting > pool_->lane_waiters()) {
    closed_ = true;
    set_.wake(pool_.get(), settings_, true);  // those waiting for room here look elsewhere
  }
  if (closed_ && entries_.empty()) retiring_ = true;  // the read loop ends before its next read
}

void lane::request_cancel(const client_session* c) {
  auto it = std::find_if(entries_.begin(), entries_.end(), [&](const lane_entry& e) { return e.client.get() == c; });
  if (it == entries_.end() || it->cancel_wanted) return;  // its statement is done: nothing to cancel
  it->cancel_wanted = true;
  closed_ = true;
  set_.wake(pool_.get(), settings_, true);  // those waiting for room here look elsewhere
  maybe_send_cancel();
}

void lane::maybe_send_cancel() {
  if (entries_.empty() || !entries_.front().cancel_wanted || entries_.front().cancel_sent || broken_) return;
  entries_.front().cancel_sent = true;
  ++cancels_out_;
  // What follows may be hit instead when the statement ends before the signal lands: kept
  // until complete, so it can run again unseen.
  for (auto it = std::next(entries_.begin()); it != entries_.end(); ++it) it->held = true;
  const auto key = server_->cancel_info();
  auto& rt = worker_.rt();
  const std::string name = server_->name();
  asio::co_spawn(
      worker_.io(),
      [key, &rt, &io = worker_.io(), name]() -> awaitable<void> {
        if (const auto err = co_await send_cancel_request(io, key->server, key->pid, key->secret)) {
          spdlog::warn("{} lane cancel_request failed error=\"{}\"", name, *err);
          co_return;
        }
        rt.stats().add(counter::cancels_forwarded);
        spdlog::info("{} lane cancel_request backend_pid={} forwarded", name, key->pid);
      },
      asio::detached);
}

void lane::fail_all(const char* why) {
  if (broken_) return;
  broken_ = true;
  spdlog::info("{} lane failed reason=\"{}\" queued={}", server_->name(), why, entries_.size());
  auto entries = std::move(entries_);
  entries_.clear();
  to_client_.clear();
  for (auto& e : entries) {
    if (e.client) e.client->lane_failed();
  }
  boost::system::error_code ignored;
  server_->socket().cancel(ignored);
  set_.wake(pool_.get(), settings_, true);
}

bool lane::tick(bool shutting_down) {
  if (done_) return true;
  if (!entries_.empty() || writing_) {
    used_since_tick_ = false;
    return false;
  }
  if (!shutting_down && used_since_tick_ && accepting() && !pool_->retired()) {
    used_since_tick_ = false;
    return false;
  }
  retiring_ = true;
  closed_ = true;
  if (reading_) {
    boost::system::error_code ignored;
    server_->socket().cancel(ignored);
  }
  return false;
}

void lane::finish() {
  if (done_) return;
  done_ = true;
  closed_ = true;
  // A cancel that hit nothing may still be pending in the server: its connection goes.
  const bool clean = !broken_ && entries_.empty() && cancels_out_ == 0 &&
                     server_->transaction_status == 'I' && rbuf_.empty();
  spdlog::debug("{} lane closed pool={} reusable={}", server_->name(), pool_->name(), clean);
  set_.wake(pool_.get(), settings_, true);
  server_->unnamed_owner = 0;
  pool_->release(std::move(server_), clean);
}

lane_set::~lane_set() = default;

lane* lane_set::pick(const std::shared_ptr<pool>& p, std::size_t settings, std::uint32_t depth) {
  lane* best = nullptr;
  for (const auto& l : lanes_) {
    if (l->owner() != p.get() || l->settings() != settings || !l->accepting() || l->queued() >= depth) continue;
    if (best == nullptr || l->queued() < best->queued()) best = l.get();
  }
  if (best != nullptr) return best;
  auto s = p->try_acquire(worker_);
  if (!s) return nullptr;
  return adopt(p, settings, std::move(s));
}

lane* lane_set::adopt(const std::shared_ptr<pool>& p, std::size_t settings, std::shared_ptr<server_connection> s) {
  auto l = std::make_shared<lane>(worker_, *this, p, settings, std::move(s));
  l->start();
  lanes_.push_back(l);
  return l.get();
}

bool lane_set::has_open_lane(const pool* p, std::size_t settings) const {
  return std::any_of(lanes_.begin(), lanes_.end(),
                     [&](const auto& l) { return l->owner() == p && l->settings() == settings && l->accepting(); });
}

bool lane_set::has_waiters(const pool* p, std::size_t settings) const {
  return std::any_of(waiters_.begin(), waiters_.end(), [&](const waiter& w) { return w.p == p && w.settings == settings; });
}

void lane_set::remove_waiter(asio::steady_timer* t) {
  std::erase_if(waiters_, [&](const waiter& w) { return w.timer == t; });
}

void lane_set::wake(const pool* p, std::size_t settings, bool all) {
  for (auto it = waiters_.begin(); it != waiters_.end();) {
    if (it->p != p || (!all && it->settings != settings)) {
      ++it;
      continue;
    }
    it->timer->cancel();
    it = waiters_.erase(it);
    if (!all) return;
  }
}

void lane_set::tick(bool shutting_down) {
  std::erase_if(lanes_, [&](const std::shared_ptr<lane>& l) { return l->tick(shutting_down); });
}

}  // namespace pgsluice::proxy

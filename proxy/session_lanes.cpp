// Client sessions, pipelined statements: a batch that is one autocommit statement joins a lane (lanes.hpp) instead of taking a server.
#include <spdlog/spdlog.h>

#include "protocol/codec.hpp"
#include "protocol/fields.hpp"
#include "proxy/client_session.hpp"
#include "proxy/lanes.hpp"
#include "proxy/pinning.hpp"
#include "proxy/pool.hpp"
#include "proxy/relay_detail.hpp"
#include "proxy/runtime.hpp"

namespace pgsluice::proxy {

using namespace relay_detail;

namespace {

// Whether the pool can give a server without waiting for one to be released: one is idle, or
// fewer than its limit are open.
bool pool_can_grow(const pool& p) {
  const auto c = p.counts();
  return c.waiting == 0 && (c.idle > 0 || c.total() < p.active_limit());
}

bool cached_pipelinable(const prepared_statement& s) {
  if (s.pipelinable < 0) s.pipelinable = pipelinable(s.query) ? 1 : 0;
  return s.pipelinable == 1;
}

}  // namespace

std::optional<client_session::pipeline_batch> client_session::pipeline_shape(std::span<const std::uint8_t> data) {
  if (server_ || !tracker_.idle() || machine_.pinned() || routing_ || !transaction_mode_ || !held_begin_.empty() ||
      settings_due_ != settings_due::none || rt_.control().any_paused() || cluster_->retired())
    return std::nullopt;
  // The batch's shape: Query; or [Parse] Bind [Describe] Execute Sync of one statement.
  pipeline_batch pb;
  std::size_t i = 0;
  auto body = [&](const client_frame* f) { return body_of(data, f->offset, f->size); };
  if (frames_.size() == 1 && frames_[0].tag == 'Q') {
    const auto sql = protocol::read_query(body(&frames_[0]));
    if (!sql || !pipelinable(*sql)) return std::nullopt;
  } else {
    if (i < frames_.size() && frames_[i].tag == 'P') pb.parse = &frames_[i++];
    if (i < frames_.size() && frames_[i].tag == 'B') pb.bind = &frames_[i++];
    if (i < frames_.size() && frames_[i].tag == 'D') pb.describe = &frames_[i++];
    if (pb.bind == nullptr || i + 2 != frames_.size() || frames_[i].tag != 'E' || frames_[i + 1].tag != 'S')
      return std::nullopt;
    const auto b = protocol::read_bind(body(pb.bind));
    if (!b || !b->portal.empty()) return std::nullopt;
    if (pb.parse != nullptr) {
      const auto p = protocol::read_parse(body(pb.parse));
      if (!p || !p->name.empty() || !b->statement.empty() || !pipelinable(p->query)) return std::nullopt;
    } else {
      if (b->statement.empty() || !rewrite_statements_) return std::nullopt;
      const statement_ptr* st = statements_.find(b->statement);
      if (st == nullptr || !cached_pipelinable(**st)) return std::nullopt;
      pb.named = *st;
    }
    if (pb.describe != nullptr) {
      const auto t = protocol::read_target(body(pb.describe));
      if (!t || (t->kind == 'P' && !t->name.empty()) || (t->kind == 'S' && t->name != b->statement)) return std::nullopt;
    }
    const auto e = body(&frames_[i]);
    if (e.empty() || e[0] != 0) return std::nullopt;  // the unnamed portal
  }
  bool wait = false;
  if (!pool_ && !choose_pool(&wait)) return std::nullopt;  // the first statement of a session
  return pb;
}

int client_session::try_pipeline(std::span<const std::uint8_t> data, lane* into) {
  const auto pb = pipeline_shape(data);
  if (!pb) return 0;
  // Statements already waiting for room go first.
  if (into == nullptr && worker_.lanes().has_waiters(pool_.get(), settings_hash_)) return 2;
  lane* l = into != nullptr ? into : pick_lane();
  if (l == nullptr) return 2;
  enqueue_in_lane(*l, data, *pb);
  return 1;
}

lane* client_session::pick_lane() { return worker_.lanes().pick(pool_, settings_hash_, pipeline_depth_); }

awaitable<lane*> client_session::wait_for_lane() {
  // Every lane is full and no server is idle: queued for one like any transaction, but as a
  // statement a lane can take (such waiters do not make lanes give their servers back).
  const auto wait = cfg_->query_wait_timeout.count() > 0 ? cfg_->query_wait_timeout : std::chrono::hours(24 * 365);
  const auto asked = clock::now();
  auto p = pool_;
  // The pool at its limit while a lane of it takes statements: room in one comes with its next
  // reply; waiting for that, not for a server of its own (lanes under load keep theirs). In
  // turn: one woken that finds the room taken waits first in line again.
  for (bool first = false; worker_.lanes().has_open_lane(p.get(), settings_hash_) && !pool_can_grow(*p); first = true) {
    asio::steady_timer t(worker_.io(), asked + wait);
    wait_.timer = &t;
    worker_.lanes().add_waiter(p.get(), settings_hash_, &t, first);
    if (!wait_.cancelled) co_await t.async_wait(nothrow_awaitable);
    worker_.lanes().remove_waiter(&t);
    wait_.timer = nullptr;
    if (machine_.ending()) co_return nullptr;
    if (lane* l = pick_lane()) co_return l;
    if (clock::now() >= asked + wait) {
      rt_.stats().add(counter::wait_timeouts);
      fail(end_reason::query_wait_timeout, "08P01", "query_wait_timeout: no server connection became free within query_wait_timeout");
      co_return nullptr;
    }
  }
  p->lane_waiting(1);
  auto r = co_await p->acquire(worker_, id_, asked + wait, &wait_);
  p->lane_waiting(-1);
  dbstats_->add(database_stats::field::wait_time,
                static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(clock::now() - asked).count()));
  if (machine_.ending() || r.cancelled) {
    if (r.server) p->release(std::move(r.server), r.server->transaction_status == 'I');
    co_return nullptr;
  }
  if (r.timed_out) {
    rt_.stats().add(counter::wait_timeouts);
    spdlog::info("{} refused reason=query_wait_timeout pool={}", name_, p->name());
    fail(end_reason::query_wait_timeout, "08P01", "query_wait_timeout: no server connection became free within query_wait_timeout");
    co_return nullptr;
  }
  if (r.error) {
    fail_with(end_reason::server_unavailable, *r.error);
    co_return nullptr;
  }
  co_return worker_.lanes().adopt(p, settings_hash_, std::move(r.server));
}

void client_session::enqueue_in_lane(lane& ln, std::span<const std::uint8_t> data, const pipeline_batch& pb) {
  auto body = [&](const client_frame* f) { return body_of(data, f->offset, f->size); };
  lane* l = &ln;
  const statement_ptr& named = pb.named;
  const client_frame* parse = pb.parse;
  const client_frame* bind = pb.bind;
  const client_frame* describe = pb.describe;
  server_connection& s = l->server();
  gather_list& out = l->out();
  if (s.synced_settings != settings_hash_) {
    // A server new to the lane: the client's settings first, as the lane's own query.
    const std::string sql = plan_settings_sync(view_, startup_.settings, s.reported, s.applied);
    s.synced_settings = settings_hash_;
    if (!sql.empty()) {
      auto& o = out.begin_owned();
      protocol::append_query(o, sql);
      out.end_owned();
      s.applied = startup_.settings;
      l->push(lane_entry{});
    }
  }
  lane_entry e;
  e.client = shared_from_this();
  e.stmt = named;
  if (named && !s.statements.touch(named->digest)) {
    std::vector<statement_ptr> evicted;
    s.statements.insert(named, evicted);
    auto& o = out.begin_owned();
    for (const auto& old : evicted) protocol::append_target(o, protocol::frontend_tag::close, 'S', old->server_name);
    o.insert(o.end(), named->parse_message.begin(), named->parse_message.end());
    out.end_owned();
    e.swallow = static_cast<std::uint16_t>(evicted.size() + 1);
    e.injected = true;
    rt_.stats().add(counter::statements_prepared);
  }
  if (named) {
    // The client's statement name becomes the server's for it.
    const auto b = protocol::read_bind(body(bind));
    protocol::append_bind(e.request, b->portal, named->server_name, b->rest);
    if (describe != nullptr) {
      const auto t = protocol::read_target(body(describe));
      if (t->kind == 'S') {
        protocol::append_target(e.request, protocol::frontend_tag::describe, 'S', named->server_name);
      } else {
        e.request.insert(e.request.end(), data.begin() + describe->offset, data.begin() + describe->offset + describe->size);
      }
    }
    const auto& ex = frames_[frames_.size() - 2];
    e.request.insert(e.request.end(), data.begin() + ex.offset, data.end());
  } else {
    e.request.assign(data.begin(), data.end());
  }
  out.add_owned(e.request);
  if (frames_[0].tag == 'Q') {
    has_unnamed_ = false;  // a simple Query drops the unnamed statement, as on a direct connection
  } else if (parse != nullptr) {
    unnamed_parse_.assign(data.begin() + parse->offset, data.begin() + parse->offset + parse->size);
    has_unnamed_ = true;
    unnamed_flags_ = 0;
  }
  s.unnamed_owner = 0;
  rt_.stats().add(counter::queries);
  rt_.stats().add(counter::pipelined_statements);
  note_query();
  lane_ = l;
  in_lane_.store(true, std::memory_order_release);
  l->push(std::move(e));
}

awaitable<void> client_session::wait_lane() {
  while (lane_ != nullptr && !machine_.ending()) {
    write_done_.expires_at(clock::time_point::max());
    co_await write_done_.async_wait(nothrow_awaitable);
  }
}

bool client_session::lane_reply(gather_list& g) {
  if (machine_.ending()) return false;
  dbstats_->add(database_stats::field::bytes_sent, g.bytes());
  const int w = write_client_now(g);
  if (w < 0) end(end_reason::client_closed);
  return w == 0;
}

void client_session::lane_error(const std::uint8_t* raw, std::size_t size, std::span<const std::uint8_t> body,
                                gather_list& to) {
  rt_.stats().error_sent(protocol::read_error_fields(body).sqlstate);
  forward_error(raw, size, body, to);
}

void client_session::lane_done() {
  lane_ = nullptr;
  in_lane_.store(false, std::memory_order_release);
  note_ready(true);
  rt_.stats().add(counter::transactions);
  write_done_.cancel();
}

void client_session::lane_failed() {
  lane_ = nullptr;
  in_lane_.store(false, std::memory_order_release);
  fail(end_reason::server_closed, "08006", "server closed the connection unexpectedly");
}

bool client_session::cancel_in_lane() {
  if (!in_lane_.load(std::memory_order_acquire)) return false;
  asio::post(worker_.io(), [self = shared_from_this()] {
    if (self->lane_ != nullptr) self->lane_->request_cancel(self.get());
  });
  return true;
}

}  // namespace pgsluice::proxy

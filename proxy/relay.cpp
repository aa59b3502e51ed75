// Client sessions, the relay: the client pump and the server pump between a client and its pooled server connection.
//
// Messages are framed by their 5-byte header, once per batch, and forwarded untouched unless
// pooling needs to act on them (DESIGN.md convention 4): Query and Parse text is classified for
// session pinning, named statements are renamed and prepared where missing, the unnamed
// statement follows its client, ReadyForQuery decides when a transaction-mode server goes back
// to the pool, ParameterStatus keeps the client's view of the session consistent, and server
// errors name the client's statements. Each read becomes at most one gather write to the other
// side.
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstring>

#include <spdlog/spdlog.h>

#include "protocol/codec.hpp"
#include "protocol/fields.hpp"
#include "protocol/framing.hpp"
#include "proxy/client_session.hpp"
#include "proxy/cluster.hpp"
#include "proxy/monitor.hpp"
#include "proxy/pinning.hpp"
#include "proxy/relay_detail.hpp"
#include "proxy/pool.hpp"
#include "proxy/ready_read.hpp"
#include "proxy/runtime.hpp"
#include "proxy/server_connection.hpp"
#include "proxy/tls.hpp"

namespace pgsluice::proxy {

namespace {

// Messages at least this large are streamed through as they arrive (CopyData from the client,
// DataRow / CopyData from the server) instead of being buffered whole.
constexpr std::size_t stream_threshold = 256 * 1024;
constexpr std::size_t server_message_limit = protocol::default_max_message_size;

// Message types a client may send once logged in (postgres.c, SocketBackend).
bool is_client_message_type(std::uint8_t tag) noexcept {
  switch (tag) {
    case 'Q': case 'P': case 'B': case 'D': case 'E': case 'S': case 'H': case 'C':
    case 'd': case 'c': case 'f': case 'F': case 'X':
      return true;
    default:
      return false;
  }
}

bool needs_no_server(char tag) noexcept {
  // CopyData/CopyDone/CopyFail outside COPY are ignored by PostgreSQL; Flush with nothing
  // pending has no effect; Terminate ends the session.
  return tag == 'd' || tag == 'c' || tag == 'f' || tag == 'H' || tag == 'X';
}

// The first column of a DataRow as text (the proxy's own one-value queries).
std::optional<std::string_view> first_column(std::span<const std::uint8_t> body) noexcept {
  if (body.size() < 6 || ((body[0] << 8) | body[1]) < 1) return std::nullopt;
  const std::int32_t len = static_cast<std::int32_t>((std::uint32_t{body[2]} << 24) | (std::uint32_t{body[3]} << 16) |
                                                     (std::uint32_t{body[4]} << 8) | body[5]);
  if (len < 0 || static_cast<std::size_t>(len) > body.size() - 6) return std::nullopt;
  return std::string_view(reinterpret_cast<const char*>(body.data() + 6), static_cast<std::size_t>(len));
}


}  // namespace

using namespace relay_detail;

void client_session::signal() noexcept { signal_.cancel(); }

awaitable<void> client_session::wait_signal() {
  signal_.expires_at(clock::time_point::max());
  co_await signal_.async_wait(nothrow_awaitable);
}

void client_session::update_settings_hash() {
  std::size_t h = 0x9e3779b97f4a7c15ull;
  auto mix = [&](std::string_view v) { h ^= std::hash<std::string_view>{}(v) + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2); };
  for (const auto& [k, v] : view_) {
    if (!is_tracked_parameter(k)) continue;
    mix(k);
    mix(v);
  }
  mix("\n");
  for (const auto& [k, v] : startup_.settings) {
    mix(k);
    mix(v);
  }
  settings_hash_ = h == 0 ? 1 : h;
}

// SHOW STATS bookkeeping (pool_stats.hpp): a query starts when it arrives (the time of the read
// that brought it), ends at its ReadyForQuery; a transaction spans from its first query to the
// ReadyForQuery 'I' that ends it.
void client_session::note_query() noexcept {
  dbstats_->add(database_stats::field::query_count, 1);
  if (query_start_ == clock::time_point{}) query_start_ = last_activity_;
  if (xact_start_ == clock::time_point{}) xact_start_ = last_activity_;
}

void client_session::note_ready(bool transaction_ended) noexcept {
  if (query_start_ == clock::time_point{} && !transaction_ended) return;
  const auto now = clock::now();
  auto us = [&](clock::time_point since) {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(now - since).count());
  };
  if (query_start_ != clock::time_point{}) {
    dbstats_->add(database_stats::field::query_time, us(query_start_));
    // Pipelined queries still due: the next one's time runs from here.
    query_start_ = tracker_.size() > 1 ? now : clock::time_point{};
  }
  if (transaction_ended && xact_start_ != clock::time_point{}) {
    dbstats_->add(database_stats::field::xact_count, 1);
    dbstats_->add(database_stats::field::xact_time, us(xact_start_));
    xact_start_ = clock::time_point{};
  }
}

void client_session::pin(std::string_view why) {
  if (!transaction_mode_ || !machine_.pin()) return;
  rt_.stats().add(counter::pinned_sessions);
  spdlog::info("{} pinned server={} reason=\"{}\"", name_, server_ ? server_->name() : std::string("-"), why);
}

bool client_session::releasable() const noexcept {
  return server_ &&
         may_release_at_ready(transaction_mode_, machine_.pinned(), !tracker_.idle(), server_->transaction_status) &&
         machine_.streams_idle();
}

void client_session::release_server() {
  spdlog::debug("{} released server={} status={}", name_, server_->name(), server_->transaction_status);
  auto s = std::move(server_);
  set_cancel_target(nullptr);
  tracker_.clear(server_pump_hot_);  // a busy client keeps its ring for the next transaction
  disarm_read_retry();
  machine_.detached();
  if (counted_backend_ != nullptr) counted_backend_->active.fetch_sub(1, std::memory_order_relaxed);
  counted_backend_ = nullptr;
  pool_->release(std::move(s), true);
}

// --- client -> server ------------------------------------------------------------------------

bool client_session::process_client(std::span<const std::uint8_t> data) {
  // What a statement does to the session: pin it, or forget what the server is known to hold.
  auto apply_effects = [&](const session_effects& fx) {
    if (fx.pins) pin(fx.reason);
    if (fx.drops_prepared) server_->statements.clear();
    if (fx.resets_settings) {
      server_->applied.clear();
      server_->synced_settings = 0;
      settings_due_ = settings_due::restore;
    }
  };
  // After a statement that reset the session's settings, the client's startup values are put
  // back right behind it (after the Query, or the Sync closing the batch).
  auto restore_after = [&] {
    if (settings_due_ == settings_due::restore && server_) {
      settings_due_ = settings_due::none;
      sync_settings(true);
    }
  };
  // A transaction held at its BEGIN starts now, on the server its first statement chose.
  if (server_ && !held_begin_.empty()) {
    to_server_.add_owned(held_begin_);
    tracker_.push(expect::internal_query);
    server_->unnamed_owner = 0;
    held_begin_.clear();
  }
  // A statement that writes: once its transaction ends (ReadyForQuery 'I'), the WAL position
  // is read behind it (process_server) for the client's later reads.
  auto note = [&](bool wrote) {
    if (wrote) txn_wrote_ = true;
  };
  const router::classify_options* opts = routing_ ? &cluster_->route_settings().classify : nullptr;
  for (const auto& f : frames_) {
    if (machine_.ending()) break;
    const char tag = f.tag;
    const std::uint8_t* raw = data.data() + f.offset;
    const std::size_t size = f.size;
    const auto body = body_of(data, f.offset, f.size);

    if (machine_.skipping() && tag != 'S' && tag != 'X') continue;
    // Sent on untouched; the server's reply is expected in this order.
    auto forward = [&](expect e) {
      to_server_.add_input(raw, size);
      tracker_.push(e);
    };

    switch (tag) {
      case 'Q': {
        rt_.stats().add(counter::queries);
        note_query();
        const std::string_view sql = protocol::read_query(body).value_or(std::string_view());
        apply_effects(classify_session_effects(sql));
        if (opts != nullptr) {
          note(writes(class_of(data, static_cast<std::size_t>(&f - frames_.data()), sql)));
        }
        forward(expect::query);
        // A simple Query drops the unnamed statement, on the server as on a direct connection.
        has_unnamed_ = false;
        server_->unnamed_owner = id_;
        restore_after();
        restore_reset_parameters(sql);
        break;
      }
      case 'P': {
        const auto p = protocol::read_parse(body);
        if (!p) {
          forward(expect::parse);  // malformed: the server answers with the proper error
          break;
        }
        apply_effects(classify_session_effects(p->query));
        const std::uint8_t flags = opts != nullptr ? flags_of(router::classify(p->query, *opts)) : 0;
        if (p->name.empty() && transaction_mode_) {
          unnamed_parse_.assign(raw, raw + size);
          has_unnamed_ = true;
          unnamed_flags_ = flags;
          server_->unnamed_owner = id_;
        }
        if (!rewrite_statements_ || p->name.empty()) {
          to_server_.add_input(raw, size);
          // A named statement the server accepts becomes known to the pool (see try_answer_locally).
          tracker_.push(expectation{expect::parse,
                                    p->name.empty() ? nullptr : make_statement(p->query, p->param_types, flags), {}, {}});
          break;
        }
        if (statements_.find(p->name) != nullptr) {
          // PostgreSQL: 42P05, and the rest of the batch is skipped until Sync.
          expectation e;
          e.kind = expect::error_synthetic;
          protocol::encode_error_response("ERROR", "42P05",
                                          "prepared statement \"" + std::string(p->name) + "\" already exists",
                                          e.payload);
          tracker_.push(std::move(e));
          machine_.skip_to_sync();
          break;
        }
        auto stmt = make_statement(p->query, p->param_types, flags);
        statements_.add(p->name, stmt);
        if (server_->statements.touch(stmt->digest)) {
          tracker_.push(expectation{expect::parse_synthetic, stmt, std::string(p->name), {}});
          break;
        }
        send_parse(stmt, expectation{expect::parse, stmt, std::string(p->name), {}});
        break;
      }
      case 'B': {
        const auto b = protocol::read_bind(body);
        if (b && b->statement.empty()) ensure_unnamed();
        const statement_ptr* stmt = (b && rewrite_statements_ && !b->statement.empty()) ? statements_.find(b->statement) : nullptr;
        if (opts != nullptr) {
          const std::uint8_t flags = b && b->statement.empty() ? unnamed_flags_ : stmt != nullptr ? (*stmt)->route_flags : 0;
          note((flags & statement_flags::read) == 0 && (flags & (statement_flags::begins | statement_flags::ends)) == 0);
        }
        if (stmt == nullptr) {
          // Unnamed statement, session mode, or a name the client never prepared (the
          // server then reports it does not exist, with the client's own name).
          to_server_.add_input(raw, size);
        } else {
          const statement_ptr keep = *stmt;
          ensure_prepared(keep);
          auto& out = to_server_.begin_owned();
          protocol::append_bind(out, b->portal, keep->server_name, b->rest);
          to_server_.end_owned();
        }
        tracker_.push(expect::bind);
        break;
      }
      case 'D': {
        const auto t = protocol::read_target(body);
        if (t && t->kind == 'S' && t->name.empty()) ensure_unnamed();
        const statement_ptr* stmt =
            (t && t->kind == 'S' && rewrite_statements_ && !t->name.empty()) ? statements_.find(t->name) : nullptr;
        if (stmt == nullptr) {
          to_server_.add_input(raw, size);
        } else {
          const statement_ptr keep = *stmt;
          ensure_prepared(keep);
          auto& out = to_server_.begin_owned();
          protocol::append_target(out, protocol::frontend_tag::describe, 'S', keep->server_name);
          to_server_.end_owned();
        }
        tracker_.push(t && t->kind == 'P' ? expect::describe_portal : expect::describe_statement);
        break;
      }
      case 'C': {
        const auto t = protocol::read_target(body);
        if (t && t->kind == 'S' && rewrite_statements_ && !t->name.empty()) {
          // The server-side statement may serve other clients: only this client's name goes.
          auto stmt = statements_.remove(t->name);
          tracker_.push(expectation{expect::close_synthetic, std::move(stmt), std::string(t->name), {}});
        } else {
          if (t && t->kind == 'S' && t->name.empty()) {
            has_unnamed_ = false;
            server_->unnamed_owner = id_;
          }
          forward(expect::close);
        }
        break;
      }
      case 'E':
        forward(expect::execute);
        break;
      case 'S':
        rt_.stats().add(counter::queries);
        note_query();
        machine_.sync_seen();
        forward(expect::sync);
        restore_after();
        break;
      case 'F':
        if (opts != nullptr) note(true);
        forward(expect::function_call);
        break;
      case 'H':
      case 'd':
      case 'c':
      case 'f':
        if (server_) to_server_.add_input(raw, size);
        break;
      case 'X':
        // What came before Terminate in the same read is still sent; then the session ends.
        return false;
      default:
        // Framing stops at any other type (client_pump); nothing else reaches here.
        return false;
    }
  }
  return !machine_.ending();
}

client_session::input_frames client_session::frame_input(std::span<const std::uint8_t> data) {
  // Frame, once: the rest of a streamed CopyData first, then complete messages (frames_); the
  // start of a large CopyData to stream is start_copy_stream's.
  input_frames in;
  if (machine_.client_stream_left() > 0) {
    in.stream_now = machine_.client_streamed(data.size());
    if (server_) to_server_.add_input(data.data(), in.stream_now);
  }
  in.framed = in.stream_now;
  frames_.clear();
  class_frame_ = ~std::size_t{0};  // a new batch: nothing classified yet
  if (machine_.client_stream_left() != 0) return in;
  for (;;) {
    if (in.framed < data.size() && !is_client_message_type(data[in.framed])) {
      in.bad_type = data[in.framed];
      break;
    }
    const auto r = protocol::next_frame(data.subspan(in.framed), max_message_size_);
    if (r.is_frame()) {
      frames_.push_back(client_frame{r.f.tag, static_cast<std::uint32_t>(in.framed), static_cast<std::uint32_t>(r.f.size)});
      in.want_server = in.want_server || !needs_no_server(r.f.tag);
      in.framed += r.f.size;
      if (r.f.tag == 'X') break;
      continue;
    }
    if (r.is_invalid()) {
      in.invalid = true;
      if (r.error == errc::message_too_large) {
        spdlog::info("{} protocol_violation message_too_large limit={}", name_, max_message_size_);
      }
    }
    break;
  }
  return in;
}

std::size_t client_session::start_copy_stream(std::span<const std::uint8_t> data, std::size_t framed) {
  // A large CopyData right after the complete messages: stream what has arrived of it.
  if (machine_.client_stream_left() != 0 || framed >= data.size()) return framed;
  const auto r = protocol::next_frame(data.subspan(framed), max_message_size_);
  if (!r.is_need_more() || r.f.size < stream_threshold || r.f.tag != 'd') return framed;
  const std::size_t have = data.size() - framed;
  if (server_) to_server_.add_input(data.data() + framed, have);
  machine_.client_stream(r.f.size - have);
  return data.size();
}

awaitable<void> client_session::wait_server_idle(bool released) {
  // Its own coroutine: the timer is in this rare wait's frame, not in the client pump's.
  asio::steady_timer t(worker_.io());
  while (!machine_.ending() && server_ && (released || !tracker_.idle())) {
    t.expires_after(std::chrono::milliseconds(1));
    co_await t.async_wait(nothrow_awaitable);
  }
}

awaitable<void> client_session::client_pump() {
  for (;;) {
    if (machine_.ending()) co_return;
    client_reading_ = true;  // nothing half-done from here to the read's end (session_retry.cpp)
    // Without TLS the buffer is taken only once the query is there: an idle client holds none.
    auto [ec, n] = tls_ ? co_await tls_read_some(socket_, *tls_, cbuf_.prepare(1024))
                        : co_await async_read_into(socket_, cbuf_, 1024, &ends_awaiting_reply, nothrow_awaitable);
    client_reading_ = false;
    const bool parking = std::exchange(park_due_, false) && ec == asio::error::operation_aborted;
    // A read being run again on another backend (session_retry.cpp): what came now waits for it.
    while (retrying_ && !machine_.ending()) {
      write_done_.expires_at(clock::time_point::max());
      co_await write_done_.async_wait(nothrow_awaitable);
    }
    if (machine_.ending()) co_return;
    if (parking) {
      parked_ = true;  // relay_session parks the session
      co_return;
    }
    if (ec) {
      end(end_reason::client_closed);
      co_return;
    }
    // A pipelined statement still running (lanes.hpp): what came now goes after its reply.
    if (lane_ != nullptr) {
      co_await wait_lane();
      if (machine_.ending()) co_return;
    }
    cbuf_.commit(n);
    rt_.stats().add(counter::client_received_bytes, static_cast<std::int64_t>(n));
    last_activity_ = clock::now();
    dbstats_->add(database_stats::field::bytes_received, n);

    auto data = cbuf_.data();
    const input_frames in = frame_input(data);
    const std::size_t stream_now = in.stream_now;
    const std::size_t framed = in.framed;
    bool want_server = in.want_server;
    if (pipeline_depth_ != 0 && want_server && stream_now == 0 && framed == data.size() && !in.invalid &&
        in.bad_type < 0) {
      // Nothing of the decision lives across the wait: the client pump's frame stays small.
      int queued = try_pipeline(data);
      if (queued == 2) {
        lane* l = co_await wait_for_lane();
        if (machine_.ending() || l == nullptr) co_return;
        queued = try_pipeline(cbuf_.data(), l);
      }
      if (queued == 1) {
        cbuf_.consume(framed);
        cbuf_.release_if_empty();
        continue;
      }
    }
    emit_target_ = &client_emit_;
    bool go_on = true;
    int answered = 0;  // answer_routing_statement: 1 answered, 2 wait for the server's replies first
    if (want_server && !server_ && stream_now == 0 && try_answer_locally(data)) {
      want_server = false;
    } else if (routing_ && stream_now == 0 && (answered = answer_routing_statement(data)) != 0 && answered != 2) {
      want_server = false;
    } else if (!routing_ && want_server && !server_ && stream_now == 0 && answer_held_begin(data)) {
      want_server = false;
    } else {
      if (answered == 2 || (routing_ && transaction_mode_ && want_server && server_ && counted_backend_ != nullptr &&
                            counted_backend_->shared->role.load(std::memory_order_relaxed) == router::role::replica && stream_now == 0 &&
                            route_of_batch(data).need == router::need::write)) {
        // A pipelining client: its own answer waits for the replies before it; a write that
        // arrives while a replica still serves its previous transaction waits for that server
        // to be released, then goes where it belongs (inside an open transaction it stays: the
        // replica answers as PostgreSQL does).
        co_await wait_server_idle(false);
        if (machine_.ending()) co_return;
        data = cbuf_.data();
        if (answered == 2) {
          answered = answer_routing_statement(data);
          if (answered == 1) want_server = false;
        } else if (server_ && server_->transaction_status == 'I') {
          co_await wait_server_idle(true);
          if (machine_.ending()) co_return;
        }
      }
      // Transaction pooling: each transaction goes where its first batch says.
      const bool starts = routing_ && transaction_mode_ && want_server && !server_;
      if (starts) route_ = route_of_batch(data);
      if (want_server && machine_.needs_server()) {
        if (!attach_now() && (machine_.ending() || !co_await attach_server())) co_return;
        data = cbuf_.data();
        emit_target_ = &client_emit_;  // the server pump may have run while this one waited
      }
      if (want_server && settings_due_ == settings_due::sync && server_) {
        settings_due_ = settings_due::none;
        sync_settings(false);
      }
      // A read that starts its transaction is kept until its reply begins (session_retry.cpp);
      // any other batch sent behind it makes the kept one unrepeatable alone.
      if (want_server) {
        if (starts && stream_now == 0 && route_.need == router::need::read) {
          arm_read_retry(data.first(framed), held_begin_);
        } else {
          disarm_read_retry();
        }
      }
      go_on = process_client(data);
    }
    const std::size_t used = go_on && !in.invalid ? start_copy_stream(data, framed) : framed;
    tracker_.emit_ready(*this);
    if (!client_emit_.empty()) disarm_read_retry();  // the client has seen a reply

    // Replies the proxy answered itself (a ParseComplete for a statement the server already has,
    // a CloseComplete) are ready only when nothing sent to the server precedes them, so they go
    // to the client before this batch reaches the server: afterwards the server pump could
    // deliver the server's replies first and the client would see them out of order.
    if (!client_emit_.empty() && !co_await write_client(client_emit_)) co_return;
    if (!to_server_.empty() && server_ && !machine_.ending() && !co_await send_batch()) co_return;
    to_server_.clear();
    cbuf_.consume(used);
    cbuf_.shrink_if_empty(64 * 1024);
    if (!go_on) end(end_reason::client_terminate);  // no-op when a protocol error ended it already
    if (in.bad_type >= 0) {
      // As PostgreSQL's postgres.c: FATAL "invalid frontend message type %d".
      spdlog::info("{} protocol_violation message_type={}", name_, in.bad_type);
      fail(end_reason::client_protocol_error, "08P01", "invalid frontend message type " + std::to_string(in.bad_type));
    }
    if (in.invalid) fail(end_reason::client_protocol_error, "08P01", "invalid message length");
    if (machine_.ending()) co_return;
  }
}

// --- server -> client ------------------------------------------------------------------------

std::size_t client_session::process_server(std::span<const std::uint8_t> data) {
  std::size_t off = 0;
  if (machine_.server_stream_left() > 0) {
    const std::size_t n = machine_.server_streamed(data.size());
    if (machine_.server_stream_forwarded()) to_client_.add_input(data.data(), n);
    off = n;
    if (machine_.server_stream_left() > 0) return off;
  }
  while (off < data.size() && !machine_.ending()) {
    const auto r = protocol::next_frame(data.subspan(off), server_message_limit);
    if (r.is_invalid()) {
      spdlog::warn("{} server_protocol_violation server={} error=\"{}\"", name_, server_->name(), r.error.message());
      fail(end_reason::server_protocol_error, "08P01", "pgsluice: invalid message from the server");
      return off;
    }
    if (r.is_need_more()) {
      if (r.f.size >= stream_threshold && (r.f.tag == 'D' || r.f.tag == 'd')) {
        const auto v = tracker_.on_server_message(r.f.tag, *this);
        const bool forward = v == response_tracker::verdict::forward;
        const std::size_t have = data.size() - off;
        if (forward) to_client_.add_input(data.data() + off, have);
        machine_.server_stream(r.f.size - have, forward);
        off = data.size();
      }
      break;
    }
    const char tag = r.f.tag;
    const auto body = r.f.body;
    const std::uint8_t* raw = data.data() + off;
    const std::size_t size = r.f.size;
    off += size;

    const expectation* head = tracker_.front();
    const bool internal = head != nullptr && head->kind == expect::internal_query;
    const bool lsn_query = internal && head->capture_lsn;
    bool is_error = false;
    std::string_view error_sqlstate;
    if (lsn_query) {
      // The position after a client's write: kept, everything else of the reply swallowed (an
      // error too: the client's transaction had failed, and nothing was committed).
      if (tag == 'D') {
        if (const auto v = first_column(body)) {
          std::uint64_t lsn = 0;
          const auto res = std::from_chars(v->data(), v->data() + v->size(), lsn);
          if (res.ec == std::errc{}) last_write_lsn_ = std::max(last_write_lsn_, lsn);
        }
      }
      if (tag == 'Z') {
        if (const auto st = protocol::read_ready_for_query(body)) server_->transaction_status = *st;
        // The client's own ReadyForQuery, held until its write's position was known.
        if (!held_ready_.empty()) to_client_.add_owned(held_ready_);
        held_ready_.clear();
      }
      if (tag == 'A') to_client_.add_input(raw, size);  // a notification is the client's
      if (tag != 'S') {
        tracker_.on_server_message(tag, *this);
        tracker_.emit_ready(*this);
        continue;
      }
    }
    switch (tag) {
      case 'S': {
        // Asynchronous: never consumes an expectation. https://www.postgresql.org/docs/15/protocol-flow.html#PROTOCOL-ASYNC
        const auto p = protocol::read_parameter_status(body);
        if (!p) continue;
        server_->reported.set(p->name, p->value);
        if (internal) continue;  // reconciled when the proxy's query completes
        if (view_.set(p->name, p->value) && is_tracked_parameter(p->name)) {
          update_settings_hash();
          server_->synced_settings = settings_hash_;  // the server reported it: both agree
        }
        if (!is_tracked_parameter(p->name) && p->name != "in_hot_standby") pin("ParameterStatus");
        to_client_.add_input(raw, size);
        continue;
      }
      case 'N':
        // "terminating connection because of crash of another server process" (57P02) and the
        // other shutdown warnings come as a notice before the server closes: under a kept read
        // it is withheld, the read runs elsewhere.
        if (!internal && read_retry_armed()) {
          if (const auto f = protocol::read_error_fields(body); f.sqlstate.starts_with("57P")) {
            retry_on_close_ = true;
            spdlog::info("{} server_notice server={} sqlstate={} withheld=read_retry", name_, server_->name(), f.sqlstate);
            continue;
          }
        }
        break;
      case 'E':
        if (internal) {
          if (!internal_error_) internal_error_ = to_server_error(body);
        } else {
          is_error = true;
          const auto f = protocol::read_error_fields(body);
          error_sqlstate = f.sqlstate;
          if (f.severity == "FATAL" && read_retry_armed() && f.sqlstate.starts_with("57P")) {
            // The server is shutting down under a kept read: it runs elsewhere instead.
            retry_on_close_ = true;
            spdlog::info("{} server_fatal server={} sqlstate={} withheld=read_retry", name_, server_->name(), f.sqlstate);
            continue;
          }
          if (f.severity == "FATAL" || f.severity == "PANIC") {
            machine_.server_fatal_seen();
            spdlog::info("{} server_fatal server={} sqlstate={} error=\"{}\"", name_, server_->name(), f.sqlstate, f.message);
          } else {
            spdlog::debug("{} server_error server={} sqlstate={} severity={}", name_, server_->name(), f.sqlstate, f.severity);
          }
        }
        break;
      case 'Z':
        if (const auto st = protocol::read_ready_for_query(body)) server_->transaction_status = *st;
        if (!internal) note_ready(server_->transaction_status == 'I');
        if (!internal && server_->transaction_status == 'I') {
          rt_.stats().add(counter::transactions);
          local_route_.reset();  // SET LOCAL pgsluice.route lasts until the transaction ends
        }
        break;
      default:
        break;
    }
    // A transaction that wrote has ended: where the WAL is now is at or after its commit. The
    // client's reads wait for a replica past it; the ReadyForQuery is held until then when
    // nothing else is outstanding, so the client cannot read before the position is known.
    bool hold_ready = false;
    if (tag == 'Z' && !internal && txn_wrote_ && server_->transaction_status == 'I') {
      txn_wrote_ = false;
      route_.last_write = clock::now();
      if (transaction_mode_ && counted_backend_ != nullptr && counted_backend_->shared->role.load(std::memory_order_relaxed) == router::role::primary &&
          route_.policy.consistency == router::consistency::read_your_writes) {
        capture_due_ = true;
        hold_ready = tracker_.size() == 1;  // only this reply outstanding
      }
    }
    if (tracker_.on_server_message(tag, *this) == response_tracker::verdict::forward) {
      // A kept read's prelude (ParseComplete, BindComplete, descriptions) is the same from
      // every server: what the client has of it already is not sent twice after a retry, and
      // it alone does not make the read unrepeatable (session_retry.cpp).
      const bool prelude = read_retry_armed() && is_reply_prelude(tag);
      if (prelude) {
        ++retry_prelude_sent_;
        if (retry_prelude_skip_ > 0) {
          --retry_prelude_skip_;
          --retry_prelude_sent_;
          tracker_.emit_ready(*this);
          continue;
        }
        retry_prelude_bytes_ += size;
      }
      if (is_error) {
        rt_.stats().error_sent(error_sqlstate);
        forward_error(raw, size, body, to_client_);
      } else if (hold_ready) {
        held_ready_.assign(raw, raw + size);
      } else {
        to_client_.add_input(raw, size);
      }
    }
    if (capture_due_) {
      capture_due_ = false;
      capture_write_lsn();
    }
    if (internal && tag == 'Z') finish_internal_query();
    tracker_.emit_ready(*this);
  }
  return off;
}

awaitable<void> client_session::server_pump() {
  // Started again by the next attach (start_server_pump); cleared however this returns. The
  // first wait is a post: the pump starts after the client pump has sent what it attached for.
  struct running_guard {
    bool& running;
    ~running_guard() { running = false; }
  } guard{server_pump_running_};
  co_await asio::post(worker_.io(), asio::use_awaitable);
  for (;;) {
    if (machine_.ending()) co_return;
    if (!server_) {
      // Back in the pool: a busy client's pump waits for the next attach (its signal comes
      // after the batch is sent); otherwise, or once the client went idle, it returns.
      if (std::exchange(server_pump_retire_, false) || !server_pump_hot_) co_return;
      server_pump_parked_ = true;
      co_await wait_signal();
      server_pump_parked_ = false;
      continue;
    }
    if (sbuf_.empty() && releasable()) {
      const auto act = machine_.between_requests(true);
      if (act == relay_machine::release_action::release_now) {
        release_server();
        continue;
      }
      if (act == relay_machine::release_action::release_after_write) {
        co_await wait_signal();
        continue;
      }
    }
    auto [ec, n] = server_->tls() != nullptr
                       ? co_await tls_read_some(server_->socket(), *server_->tls(), sbuf_.prepare(4096))
                       : co_await async_read_into(server_->socket(), sbuf_, 4096, &ends_with_ready_for_query, nothrow_awaitable);
    if (machine_.ending()) co_return;
    if (ec) {
      spdlog::info("{} server_closed server={} error=\"{}\"", name_, server_->name(), ec.message());
      if (read_retry_possible()) {
        // Named, not a temporary in the co_await expression (GCC 12 destroys those twice).
        const std::string why = retry_on_close_ ? std::string("server shutting down") : ec.message();
        if (!co_await retry_read(why)) co_return;
        continue;
      }
      if (machine_.server_fatal()) {
        end(end_reason::server_fatal);  // the client already has the server's FATAL
      } else {
        fail(end_reason::server_closed, "08006", "server closed the connection unexpectedly");
      }
      co_return;
    }
    sbuf_.commit(n);
    dbstats_->add(database_stats::field::bytes_sent, n);
    emit_target_ = &to_client_;
    const auto data = sbuf_.data();
    const std::size_t used = process_server(data);
    if (machine_.ending()) co_return;
    // More than a prelude is the client's now: the read cannot be run again unseen.
    if (to_client_.bytes() > std::exchange(retry_prelude_bytes_, 0)) disarm_read_retry();
    // The position query goes out now, unless the client pump is writing: then right after it.
    if (capture_bytes_ != nullptr && !machine_.server_writing() && !co_await send_capture()) co_return;
    // Back to the pool before writing the replies out: another client can start at once.
    if (used == data.size() && releasable() &&
        machine_.between_requests(true) == relay_machine::release_action::release_now)
      release_server();
    if (!to_client_.empty()) {
      // Usually the client's socket takes it all at once: no coroutine call on that path.
      int w = write_client_now(to_client_);
      to_client_.clear();
      if (w == 0) w = co_await flush_client() ? 1 : -1;
      if (w < 0) {
        end(end_reason::client_closed);
        co_return;
      }
    }
    sbuf_.consume(used);
    if (server_) {
      sbuf_.shrink_if_empty(64 * 1024);
    } else {
      sbuf_.release_if_empty();  // the client waits for its next query: no server reads until then
    }
    if (machine_.ending()) co_return;
  }
}

}  // namespace pgsluice::proxy

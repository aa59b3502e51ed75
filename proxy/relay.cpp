// Client sessions, second half: the relay between a client and its pooled server connection.
//
// Messages are framed by their 5-byte header and forwarded untouched unless pooling needs to
// act on them (DESIGN.md convention 4): Query and Parse text is classified for session pinning,
// named statements are renamed and prepared where missing, ReadyForQuery decides when a
// transaction-mode server goes back to the pool, ParameterStatus keeps the client's view of
// the session consistent. Each read becomes at most one gather write to the other side.
#include <sys/socket.h>

#include <algorithm>

#include <spdlog/spdlog.h>

#include "protocol/codec.hpp"
#include "protocol/framing.hpp"
#include "proxy/client_session.hpp"
#include "proxy/pinning.hpp"
#include "proxy/pool.hpp"
#include "proxy/runtime.hpp"
#include "proxy/server_connection.hpp"
#include "proxy/wire.hpp"

namespace pgsluice::proxy {

namespace {

// Messages at least this large are streamed through as they arrive (CopyData from the client,
// DataRow / CopyData from the server) instead of being buffered whole.
constexpr std::size_t stream_threshold = 256 * 1024;
constexpr std::size_t server_message_limit = protocol::default_max_message_size;

bool needs_no_server(char tag) noexcept {
  // CopyData/CopyDone/CopyFail outside COPY are ignored by PostgreSQL; Flush with nothing
  // pending has no effect; Terminate ends the session.
  return tag == 'd' || tag == 'c' || tag == 'f' || tag == 'H' || tag == 'X';
}

}  // namespace

void client_session::signal() noexcept { signal_.cancel(); }

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

awaitable<void> client_session::wait_signal() {
  signal_.expires_at(clock::time_point::max());
  co_await signal_.async_wait(nothrow_awaitable);
}

void client_session::pin(std::string_view why) {
  if (pinned_ || !transaction_mode_) return;
  pinned_ = true;
  rt_.stats().add(counter::pinned_sessions);
  spdlog::info("{} pinned server={} reason=\"{}\"", name_, server_ ? server_->name() : std::string("-"), why);
}

bool client_session::releasable() const noexcept {
  return server_ && may_release_at_ready(transaction_mode_, pinned_, !tracker_.idle(), server_->transaction_status) &&
         server_stream_left_ == 0 && client_stream_left_ == 0;
}

void client_session::release_server() {
  spdlog::debug("{} released server={} status={}", name_, server_->name(), server_->transaction_status);
  auto s = std::move(server_);
  set_cancel_target(nullptr);
  tracker_.clear();
  if (!ending_) set_state(client_state::idle);
  pool_->release(std::move(s), true);
}

awaitable<bool> client_session::attach_server(bool for_login) {
  set_state(client_state::waiting);
  const auto wait = cfg_->query_wait_timeout.count() > 0 ? cfg_->query_wait_timeout : std::chrono::hours(24 * 365);
  auto r = co_await pool_->acquire(worker_, id_, clock::now() + wait, &wait_);
  // A client that gave up while queued (closed its connection) must not have its query run.
  if (r.waited && r.server && !ending_) {
    // What the client sent since (not consumed): EOF, or a Terminate, means it has left.
    std::uint8_t next[5];
    const auto n = ::recv(socket_.native_handle(), next, sizeof next, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0 || (n == 5 && next[0] == 'X' && wire::read_u32(next + 1) == 4)) end(end_reason::client_closed);
  }
  if (ending_) {
    if (r.server) {
      const bool clean = r.server->transaction_status == 'I';
      pool_->release(std::move(r.server), clean);
    }
    co_return false;
  }
  if (r.cancelled) co_return false;
  if (r.timed_out) {
    rt_.stats().add(counter::wait_timeouts);
    spdlog::info("{} refused reason=query_wait_timeout pool={}", name_, pool_->name());
    fail(end_reason::query_wait_timeout, "08P01",
         "query_wait_timeout: no server connection became free within query_wait_timeout");
    co_return false;
  }
  if (r.error) {
    fail_with(end_reason::server_unavailable, *r.error);
    co_return false;
  }
  on_attached(std::move(r.server), for_login);
  co_return true;
}

bool client_session::attach_now() {
  auto s = pool_->try_acquire(worker_);
  if (!s) return false;
  on_attached(std::move(s), false);
  return true;
}

void client_session::on_attached(std::shared_ptr<server_connection> s, bool for_login) {
  server_ = std::move(s);
  tracker_.clear();
  set_state(for_login ? client_state::login : client_state::active);
  set_cancel_target(server_.get());
  spdlog::debug("{} attached server={} worker={}", name_, server_->name(), worker_.index());
  if (!for_login) {
    // Bring the server's session settings in line with what this client was told and asked
    // for, in the same write as the client's first messages.
    // Servers remember which client settings they were last brought in line with (by hash), so
    // the comparison is skipped while consecutive clients agree.
    const std::string sql = server_->synced_settings == settings_hash_
                                ? std::string()
                                : plan_settings_sync(view_, startup_.settings, server_->reported, server_->applied);
    server_->synced_settings = settings_hash_;
    if (!sql.empty()) {
      auto& out = to_server_.begin_owned();
      wire::append_query(out, sql);
      to_server_.end_owned();
      tracker_.push(expect::internal_query);
      server_->applied = startup_.settings;
      internal_failed_ = false;
      internal_error_.reset();
    }
    // Session mode: statements the client prepared before it had a server are prepared now,
    // under the client's own names, replies swallowed.
    for (auto& [name, stmt] : deferred_parses_) {
      auto& out = to_server_.begin_owned();
      wire::append_parse(out, name, stmt->query, stmt->param_types);
      to_server_.end_owned();
      tracker_.push(expectation{expect::parse_injected, std::move(stmt), {}, {}});
    }
    deferred_parses_.clear();
    signal();
  }
}

void client_session::finish_internal_query() {
  if (internal_failed_) {
    internal_failed_ = false;
    spdlog::warn("{} settings_failed server={} error=\"{}\"", name_, server_->name(),
                 internal_error_ ? internal_error_->message : std::string());
    server_error e = internal_error_.value_or(server_error{});
    internal_error_.reset();
    server_->applied.clear();
    server_->synced_settings = 0;
    fail_with(end_reason::login_refused, e);
    return;
  }
  // Adopt the server's spelling of what was set (e.g. DateStyle "iso" -> "ISO, MDY") and tell
  // the client about any value it has not seen.
  for (const auto& [name, value] : server_->reported) {
    if (!is_tracked_parameter(name)) continue;
    const std::string* seen = view_.find(name);
    if (seen != nullptr && *seen != value) {
      view_.set(name, value);
      auto& out = emit_target_->begin_owned();
      wire::append_parameter_status(out, name, value);
      emit_target_->end_owned();
    }
  }
  update_settings_hash();
  server_->synced_settings = settings_hash_;
}

// --- response_tracker hooks ----------------------------------------------------------------

void client_session::emit(std::span<const std::uint8_t> message) { emit_target_->add_owned(message); }

void client_session::rollback(const expectation& e) {
  switch (e.kind) {
    case expect::parse:
      if (e.stmt) {
        if (server_) server_->statements.erase(e.stmt->digest);
        if (const auto* mine = statements_.find(e.client_name); mine != nullptr && *mine == e.stmt)
          statements_.remove(e.client_name);
      }
      break;
    case expect::parse_injected:
      if (e.stmt && server_) server_->statements.erase(e.stmt->digest);
      break;
    case expect::parse_synthetic:
      if (const auto* mine = statements_.find(e.client_name); mine != nullptr && *mine == e.stmt)
        statements_.remove(e.client_name);
      break;
    case expect::close_injected:
      // The server skipped our Close: the statement is still there.
      if (e.stmt && server_) server_->statements.restore(e.stmt);
      break;
    case expect::close_synthetic:
      if (e.stmt && statements_.find(e.client_name) == nullptr) statements_.add(e.client_name, e.stmt);
      break;
    default:
      break;
  }
}

void client_session::completed(const expectation& e) {
  if ((e.kind == expect::parse || e.kind == expect::parse_injected) && e.stmt) pool_->statement_validated(e.stmt->digest);
}

// --- client -> server ------------------------------------------------------------------------

void client_session::send_parse(const statement_ptr& stmt, expectation parse_entry) {
  std::vector<statement_ptr> evicted;
  server_->statements.insert(stmt, evicted);
  auto& out = to_server_.begin_owned();
  for (const auto& old : evicted) {
    // Least recently used statement out: Close it on the server, swallow the CloseComplete.
    wire::append_target(out, 'C', 'S', old->server_name);
  }
  out.insert(out.end(), stmt->parse_message.begin(), stmt->parse_message.end());
  to_server_.end_owned();
  for (const auto& old : evicted) tracker_.push(expectation{expect::close_injected, old, {}, {}});
  tracker_.push(std::move(parse_entry));
}

void client_session::ensure_prepared(const statement_ptr& stmt) {
  if (server_->statements.touch(stmt->digest)) return;
  send_parse(stmt, expectation{expect::parse_injected, stmt, {}, {}});
  rt_.stats().add(counter::statements_prepared);
}

bool client_session::try_answer_locally(std::span<const std::uint8_t> data, std::size_t end) {
  // Transaction mode renames statements (client registry); session mode defers the client's
  // own Parse to the server it will get (deferred_parses_).
  if (transaction_mode_ && !rewrite_statements_) return false;
  auto is_known_name = [&](std::string_view name) {
    if (rewrite_statements_) return statements_.find(name) != nullptr;
    return std::any_of(deferred_parses_.begin(), deferred_parses_.end(), [&](const auto& d) { return d.first == name; });
  };
  // First pass: is every message one we can answer? Parse statements are made once here.
  std::vector<statement_ptr> made;
  bool skipping = skip_until_sync_;
  for (std::size_t off = 0; off < end;) {
    const auto r = protocol::next_frame(data.subspan(off, end - off), max_message_size_);
    if (!r.is_frame()) return false;
    off += r.f.size;
    if (skipping) {
      if (r.f.tag == 'X') return false;
      if (r.f.tag == 'S') skipping = false;
      continue;
    }
    switch (r.f.tag) {
      case 'P': {
        const auto p = wire::read_parse(r.f.body);
        if (!p || p->name.empty()) return false;
        if (is_known_name(p->name)) {
          skipping = true;  // answered with 42P05 below
          break;
        }
        auto stmt = make_statement(p->query, p->param_types);
        if (!pool_->statement_known(stmt->digest)) return false;
        made.push_back(std::move(stmt));
        break;
      }
      case 'C': {
        const auto t = wire::read_target(r.f.body);
        if (!t || t->kind != 'S' || t->name.empty()) return false;
        break;
      }
      case 'H':
      case 'S':
        break;
      default:
        return false;
    }
  }
  // Second pass: answer as the server would, in order.
  std::size_t next_made = 0;
  auto& out = client_emit_.begin_owned();
  for (std::size_t off = 0; off < end;) {
    const auto r = protocol::next_frame(data.subspan(off, end - off), max_message_size_);
    off += r.f.size;
    if (skip_until_sync_) {
      if (r.f.tag == 'S') {
        skip_until_sync_ = false;
        protocol::encode_ready_for_query('I', out);
      }
      continue;
    }
    switch (r.f.tag) {
      case 'P': {
        const auto p = wire::read_parse(r.f.body);
        if (is_known_name(p->name)) {
          protocol::encode_error_response("ERROR", "42P05",
                                          "prepared statement \"" + std::string(p->name) + "\" already exists", out);
          skip_until_sync_ = true;
          break;
        }
        if (rewrite_statements_) {
          statements_.add(p->name, made[next_made++]);
        } else {
          deferred_parses_.emplace_back(std::string(p->name), made[next_made++]);
        }
        out.insert(out.end(), std::begin(wire::parse_complete_msg), std::end(wire::parse_complete_msg));
        break;
      }
      case 'C': {
        const auto t = wire::read_target(r.f.body);
        if (rewrite_statements_) {
          statements_.remove(t->name);
        } else {
          std::erase_if(deferred_parses_, [&](const auto& d) { return d.first == t->name; });
        }
        out.insert(out.end(), std::begin(wire::close_complete_msg), std::end(wire::close_complete_msg));
        break;
      }
      case 'S':
        // No server attached: no transaction is open.
        protocol::encode_ready_for_query('I', out);
        break;
      default:
        break;
    }
  }
  client_emit_.end_owned();
  return true;
}

bool client_session::process_client(std::span<const std::uint8_t> data, std::size_t end) {
  // What a statement does to the session: pin it, or forget what the server is known to hold.
  auto apply_effects = [&](const session_effects& fx) {
    if (fx.pins) pin(fx.reason);
    if (fx.drops_prepared) server_->statements.clear();
    if (fx.resets_settings) {
      server_->applied.clear();
      server_->synced_settings = 0;
    }
  };
  std::size_t off = 0;
  while (off < end && !ending_) {
    const auto r = protocol::next_frame(data.subspan(off, end - off), max_message_size_);
    if (!r.is_frame()) break;  // cannot happen: the caller framed [0, end)
    const char tag = r.f.tag;
    const auto body = r.f.body;
    const std::uint8_t* raw = data.data() + off;
    const std::size_t size = r.f.size;
    off += size;

    if (skip_until_sync_ && tag != 'S' && tag != 'X') continue;
    // Sent on untouched; the server's reply is expected in this order.
    auto forward = [&](expect e) {
      to_server_.add_input(raw, size);
      tracker_.push(e);
    };

    switch (tag) {
      case 'Q': {
        rt_.stats().add(counter::queries);
        std::size_t pos = 0;
        const auto sql = wire::read_cstring(body, pos).value_or(std::string_view());
        apply_effects(classify_session_effects(sql));
        forward(expect::query);
        break;
      }
      case 'P': {
        const auto p = wire::read_parse(body);
        if (!p) {
          to_server_.add_input(raw, size);  // malformed: the server answers with the proper error
          tracker_.push(expect::parse);
          break;
        }
        apply_effects(classify_session_effects(p->query));
        if (!rewrite_statements_ || p->name.empty()) {
          to_server_.add_input(raw, size);
          // A named statement the server accepts becomes known to the pool (see try_answer_locally).
          tracker_.push(expectation{expect::parse, p->name.empty() ? nullptr : make_statement(p->query, p->param_types),
                                    {}, {}});
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
          skip_until_sync_ = true;
          break;
        }
        auto stmt = make_statement(p->query, p->param_types);
        statements_.add(p->name, stmt);
        if (server_->statements.touch(stmt->digest)) {
          tracker_.push(expectation{expect::parse_synthetic, stmt, std::string(p->name), {}});
          break;
        }
        send_parse(stmt, expectation{expect::parse, stmt, std::string(p->name), {}});
        break;
      }
      case 'B': {
        const auto b = wire::read_bind(body);
        const statement_ptr* stmt = (b && rewrite_statements_ && !b->statement.empty()) ? statements_.find(b->statement) : nullptr;
        if (stmt == nullptr) {
          // Unnamed statement, session mode, or a name the client never prepared (the
          // server then reports it does not exist, with the client's own name).
          to_server_.add_input(raw, size);
        } else {
          const statement_ptr keep = *stmt;
          ensure_prepared(keep);
          auto& out = to_server_.begin_owned();
          wire::append_bind(out, b->portal, keep->server_name, b->rest);
          to_server_.end_owned();
        }
        tracker_.push(expect::bind);
        break;
      }
      case 'D': {
        const auto t = wire::read_target(body);
        const statement_ptr* stmt =
            (t && t->kind == 'S' && rewrite_statements_ && !t->name.empty()) ? statements_.find(t->name) : nullptr;
        if (stmt == nullptr) {
          to_server_.add_input(raw, size);
        } else {
          const statement_ptr keep = *stmt;
          ensure_prepared(keep);
          auto& out = to_server_.begin_owned();
          wire::append_target(out, 'D', 'S', keep->server_name);
          to_server_.end_owned();
        }
        tracker_.push(t && t->kind == 'P' ? expect::describe_portal : expect::describe_statement);
        break;
      }
      case 'C': {
        const auto t = wire::read_target(body);
        if (t && t->kind == 'S' && rewrite_statements_ && !t->name.empty()) {
          // The server-side statement may serve other clients: only this client's name goes.
          auto stmt = statements_.remove(t->name);
          tracker_.push(expectation{expect::close_synthetic, std::move(stmt), std::string(t->name), {}});
        } else {
          forward(expect::close);
        }
        break;
      }
      case 'E':
        forward(expect::execute);
        break;
      case 'S':
        rt_.stats().add(counter::queries);
        skip_until_sync_ = false;
        forward(expect::sync);
        break;
      case 'F':
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
        terminate_seen_ = true;
        return false;
      default:
        // As PostgreSQL's postgres.c: FATAL "invalid frontend message type %d".
        spdlog::info("{} protocol_violation message_type={}", name_, static_cast<int>(static_cast<unsigned char>(tag)));
        fail(end_reason::client_protocol_error, "08P01",
             "invalid frontend message type " + std::to_string(static_cast<int>(static_cast<unsigned char>(tag))));
        return false;
    }
  }
  return !ending_;
}

awaitable<void> client_session::client_pump() {
  for (;;) {
    if (ending_) co_return;
    auto space = cbuf_.prepare(1024);
    auto [ec, n] = co_await socket_.async_read_some(asio::buffer(space.data(), space.size()), nothrow_awaitable);
    if (ending_) co_return;
    if (ec) {
      end(end_reason::client_closed);
      co_return;
    }
    cbuf_.commit(n);
    last_activity_ = clock::now();

    // Frame: the rest of a streamed CopyData first, then complete messages, then possibly the
    // start of a large CopyData to stream.
    auto data = cbuf_.data();
    std::size_t stream_now = 0;
    if (client_stream_left_ > 0) {
      stream_now = std::min(client_stream_left_, data.size());
      if (server_) to_server_.add_input(data.data(), stream_now);
      client_stream_left_ -= stream_now;
    }
    std::size_t framed = stream_now;
    bool want_server = false;
    bool invalid = false;
    if (client_stream_left_ == 0) {
      for (;;) {
        const auto r = protocol::next_frame(data.subspan(framed), max_message_size_);
        if (r.is_frame()) {
          want_server = want_server || !needs_no_server(r.f.tag);
          framed += r.f.size;
          if (r.f.tag == 'X') break;
          continue;
        }
        if (r.is_invalid()) {
          invalid = true;
          if (r.error == errc::message_too_large) {
            spdlog::info("{} protocol_violation message_too_large limit={}", name_, max_message_size_);
          }
        }
        break;
      }
    }
    emit_target_ = &client_emit_;
    if (want_server && !server_ && stream_now == 0 && try_answer_locally(data, framed)) {
      want_server = false;
    } else {
      if (want_server && !server_ && !attach_now()) {
        if (!co_await attach_server()) co_return;
        data = cbuf_.data();
        emit_target_ = &client_emit_;  // the server pump may have run while this one waited
      }
      process_client(data.subspan(stream_now), framed - stream_now);
    }
    std::size_t used = framed;
    // A large CopyData right after: stream what has arrived of it.
    if (!ending_ && !invalid && client_stream_left_ == 0 && framed < data.size()) {
      const auto r = protocol::next_frame(data.subspan(framed), max_message_size_);
      if (r.is_need_more() && r.f.size >= stream_threshold && r.f.tag == 'd') {
        const std::size_t have = data.size() - framed;
        if (server_) to_server_.add_input(data.data() + framed, have);
        client_stream_left_ = r.f.size - have;
        used = data.size();
      }
    }
    tracker_.emit_ready(*this);

    // Replies the proxy answered itself (a ParseComplete for a statement the server already has,
    // a CloseComplete) are ready only when nothing sent to the server precedes them, so they go
    // to the client before this batch reaches the server: afterwards the server pump could
    // deliver the server's replies first and the client would see them out of order.
    if (!client_emit_.empty()) {
      int w = write_client_now(client_emit_);
      client_emit_.clear();
      if (w == 0) w = co_await flush_client() ? 1 : -1;
      if (w < 0) end(end_reason::client_closed);
    }
    if (!to_server_.empty() && server_ && !ending_) {
      // Usually the server's socket takes the batch at once; only a remainder is copied and
      // written asynchronously.
      int err = 0;
      const std::size_t sent = to_server_.send_now(server_->socket().native_handle(), err);
      boost::system::error_code wec(err, boost::system::system_category());
      if (!wec && sent < to_server_.bytes()) {
        server_writing_ = true;
        server_tail_.clear();
        to_server_.copy_tail(sent, server_tail_);
        auto [ec2, wn] = co_await asio::async_write(server_->socket(), asio::buffer(server_tail_), nothrow_awaitable);
        (void)wn;
        wec = ec2;
        server_writing_ = false;
        server_tail_.clear();
        server_tail_.shrink_to_fit();
        if (release_pending_) signal();
      }
      if (wec && !ending_) {
        spdlog::info("{} server_write_failed server={} error=\"{}\"", name_, server_->name(), wec.message());
        fail(end_reason::server_closed, "08006", "server closed the connection unexpectedly");
      }
    }
    to_server_.clear();
    cbuf_.consume(used);
    cbuf_.shrink_if_empty(64 * 1024);
    if (terminate_seen_) end(end_reason::client_terminate);
    if (invalid && !ending_) {
      fail(end_reason::client_protocol_error, "08P01", "invalid message length");
    }
    if (ending_) co_return;
  }
}

// --- server -> client ------------------------------------------------------------------------

std::size_t client_session::process_server(std::span<const std::uint8_t> data) {
  std::size_t off = 0;
  if (server_stream_left_ > 0) {
    const std::size_t n = std::min(server_stream_left_, data.size());
    if (server_stream_forward_) to_client_.add_input(data.data(), n);
    server_stream_left_ -= n;
    off = n;
    if (server_stream_left_ > 0) return off;
  }
  while (off < data.size() && !ending_) {
    const auto r = protocol::next_frame(data.subspan(off), server_message_limit);
    if (r.is_invalid()) {
      spdlog::warn("{} server_protocol_violation server={} error=\"{}\"", name_, server_->name(), r.error.message());
      fail(end_reason::server_protocol_error, "08P01", "pgsluice: invalid message from the server");
      return off;
    }
    if (r.is_need_more()) {
      if (r.f.size >= stream_threshold && (r.f.tag == 'D' || r.f.tag == 'd')) {
        const auto v = tracker_.on_server_message(r.f.tag, *this);
        server_stream_forward_ = v == response_tracker::verdict::forward;
        const std::size_t have = data.size() - off;
        if (server_stream_forward_) to_client_.add_input(data.data() + off, have);
        server_stream_left_ = r.f.size - have;
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
    switch (tag) {
      case 'S': {
        // Asynchronous: never consumes an expectation. https://www.postgresql.org/docs/15/protocol-flow.html#PROTOCOL-ASYNC
        const auto p = wire::read_parameter_status(body);
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
      case 'E':
        if (internal) {
          internal_failed_ = true;
          if (!internal_error_) internal_error_ = to_server_error(body);
        } else {
          const auto f = wire::read_error_fields(body);
          if (f.severity == "FATAL" || f.severity == "PANIC") {
            server_fatal_ = true;
            spdlog::info("{} server_fatal server={} sqlstate={} error=\"{}\"", name_, server_->name(), f.sqlstate, f.message);
          }
        }
        break;
      case 'Z':
        if (!body.empty()) server_->transaction_status = static_cast<char>(body[0]);
        if (!internal && server_->transaction_status == 'I') rt_.stats().add(counter::transactions);
        break;
      default:
        break;
    }
    if (tracker_.on_server_message(tag, *this) == response_tracker::verdict::forward) to_client_.add_input(raw, size);
    if (internal && tag == 'Z') finish_internal_query();
    tracker_.emit_ready(*this);
  }
  return off;
}

int client_session::write_client_now(gather_list& g) {
  if (client_writing_) {
    // A write is under way: queue a copy behind it (flush_client sends the queue before it stops).
    g.for_each([&](std::span<const std::uint8_t> s) { client_pending_.insert(client_pending_.end(), s.begin(), s.end()); });
    return 1;
  }
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
    auto [ec2, n2] = co_await asio::async_write(socket_, asio::buffer(client_flushing_.data(), client_flushing_.size()),
                                                nothrow_awaitable);
    (void)n2;
    ec = ec2;
    client_flushing_.clear();
    if (ec || client_pending_.empty()) break;
    client_flushing_.swap(client_pending_);
  }
  client_pending_.clear();
  client_writing_ = false;
  co_return !ec;
}

awaitable<void> client_session::server_pump() {
  for (;;) {
    if (ending_) co_return;
    if (!server_) {
      co_await wait_signal();
      continue;
    }
    if (sbuf_.empty() && releasable()) {
      if (!server_writing_) {
        release_server();
        continue;
      }
      release_pending_ = true;
      co_await wait_signal();
      release_pending_ = false;
      continue;
    }
    auto space = sbuf_.prepare(4096);
    auto [ec, n] = co_await server_->socket().async_read_some(asio::buffer(space.data(), space.size()), nothrow_awaitable);
    if (ending_) co_return;
    if (ec) {
      spdlog::info("{} server_closed server={} error=\"{}\"", name_, server_->name(), ec.message());
      if (server_fatal_) {
        end(end_reason::server_fatal);  // the client already has the server's FATAL
      } else {
        fail(end_reason::server_closed, "08006", "server closed the connection unexpectedly");
      }
      co_return;
    }
    sbuf_.commit(n);
    emit_target_ = &to_client_;
    const auto data = sbuf_.data();
    const std::size_t used = process_server(data);
    if (ending_) co_return;
    // Back to the pool before writing the replies out: another client can start at once.
    if (used == data.size() && releasable() && !server_writing_) release_server();
    if (!to_client_.empty()) {
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
    if (ending_) co_return;
  }
}

}  // namespace pgsluice::proxy

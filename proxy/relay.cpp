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
#include "proxy/pool.hpp"
#include "proxy/runtime.hpp"
#include "proxy/server_connection.hpp"

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

std::span<const std::uint8_t> body_of(std::span<const std::uint8_t> data, std::uint32_t offset, std::uint32_t size) {
  return data.subspan(offset + 5, size - 5);
}

// A statement's class as the flags a prepared statement keeps.
std::uint8_t flags_of(const router::statement_class& c) noexcept {
  std::uint8_t f = 0;
  if (c.is_read()) f |= statement_flags::read;
  if (c.begins_transaction) f |= statement_flags::begins;
  if (c.ends_transaction) f |= statement_flags::ends;
  return f;
}

// A statement that writes, as opposed to transaction control alone (BEGIN, COMMIT, SET TRANSACTION).
bool writes(const router::statement_class& c) noexcept {
  if (c.is_read()) return false;
  const bool control = c.begins_transaction || c.ends_transaction || c.set_mode != router::access_mode::unspecified;
  return !(control && c.statements == 1);
}

router::route_hint hint_of(router::comment_hint h) noexcept {
  switch (h) {
    case router::comment_hint::primary: return router::route_hint::primary;
    case router::comment_hint::replica: return router::route_hint::replica;
    default: return router::route_hint::automatic;
  }
}

// The first column of a DataRow as text (the proxy's own one-value queries).
std::optional<std::string_view> first_column(std::span<const std::uint8_t> body) noexcept {
  if (body.size() < 6 || ((body[0] << 8) | body[1]) < 1) return std::nullopt;
  const std::int32_t len = static_cast<std::int32_t>((std::uint32_t{body[2]} << 24) | (std::uint32_t{body[3]} << 16) |
                                                     (std::uint32_t{body[4]} << 8) | body[5]);
  if (len < 0 || static_cast<std::size_t>(len) > body.size() - 6) return std::nullopt;
  return std::string_view(reinterpret_cast<const char*>(body.data() + 6), static_cast<std::size_t>(len));
}

// The first word of a statement, lower-cased, for the few replies the proxy words itself.
std::string first_word(std::string_view sql) {
  std::size_t i = 0;
  while (i < sql.size() && std::isspace(static_cast<unsigned char>(sql[i]))) ++i;
  std::string w;
  while (i < sql.size() && std::isalpha(static_cast<unsigned char>(sql[i]))) w += static_cast<char>(std::tolower(static_cast<unsigned char>(sql[i++])));
  return w;
}

// The statement as lower-case words separated by one space, without a trailing ';' (for the
// few bare transaction-control statements the proxy answers itself).
std::string bare_words(std::string_view sql) {
  std::string out;
  bool space = false;
  for (char ch : sql) {
    const auto u = static_cast<unsigned char>(ch);
    if (std::isspace(u) || ch == ';') {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += static_cast<char>(std::tolower(u));
  }
  return out;
}

// Server-side statement names are "pgsluice_" and 32 hex digits (prepared.hpp).
constexpr std::string_view internal_prefix = "pgsluice_";
constexpr std::size_t internal_name_size = internal_prefix.size() + 32;

}  // namespace

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
  tracker_.clear();
  machine_.detached();
  if (counted_backend_ != nullptr) counted_backend_->active.fetch_sub(1, std::memory_order_relaxed);
  counted_backend_ = nullptr;
  pool_->release(std::move(s), true);
}

bool client_session::choose_pool(bool* wait) {
  // route_ says what the transaction (or session) needs: a write unless routing classified it.
  if (routing_) route_.now = clock::now();
  const auto pick = cluster_->choose(route_);
  if (pick.pool == nullptr) {
    if (pick.status == router::route_status::wait && wait != nullptr) {
      *wait = true;
      return false;
    }
    spdlog::warn("{} no_backend cluster={} status={}", name_, cluster_->name(), router::to_string(pick.status));
    fail(end_reason::server_unavailable, "08006",
         "pgsluice: no server available for database \"" + startup_.database + "\" (" +
             std::string(router::to_string(pick.status)) + ")");
    return false;
  }
  chosen_ = pick.chosen;
  if (pool_.get() != pick.pool->get()) pool_ = *pick.pool;
  return true;
}

awaitable<bool> client_session::attach_server(bool for_login) {
  // Read-your-writes may ask to wait a little for a replica to replay the client's last write.
  // A backend attach_now() chose a moment ago stands: choosing twice would skew the balance.
  for (bool wait = false; !std::exchange(chosen_now_, false) && !choose_pool(&wait); wait = false) {
    if (!wait || machine_.ending()) co_return false;
    if (!route_.waiting_since) route_.waiting_since = clock::now();
    asio::steady_timer t(worker_.io(), std::chrono::milliseconds(5));
    co_await t.async_wait(nothrow_awaitable);
  }
  route_.waiting_since.reset();
  machine_.needs_server();
  const auto wait = cfg_->query_wait_timeout.count() > 0 ? cfg_->query_wait_timeout : std::chrono::hours(24 * 365);
  auto r = co_await pool_->acquire(worker_, id_, clock::now() + wait, &wait_);
  // A client that gave up while queued (closed its connection) must not have its query run.
  if (r.waited && r.server && !machine_.ending()) {
    // What the client sent since (not consumed): EOF, or a Terminate, means it has left.
    std::uint8_t next[5];
    const auto n = ::recv(socket_.native_handle(), next, sizeof next, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0 || (n == 5 && std::equal(next, next + 5, protocol::terminate_msg))) end(end_reason::client_closed);
  }
  if (machine_.ending()) {
    if (r.server) {
      const bool clean = r.server->transaction_status == 'I';
      pool_->release(std::move(r.server), clean);
    }
    co_return false;
  }
  if (r.cancelled) {
    machine_.attach_failed();
    co_return false;
  }
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
  bool wait = false;
  if (!choose_pool(&wait)) return false;
  auto s = pool_->try_acquire(worker_);
  if (!s) {
    chosen_now_ = true;  // attach_server() waits on this backend's pool
    return false;
  }
  on_attached(std::move(s), false);
  return true;
}

void client_session::on_attached(std::shared_ptr<server_connection> s, bool for_login) {
  server_ = std::move(s);
  counted_backend_ = chosen_;
  if (counted_backend_ != nullptr) counted_backend_->active.fetch_add(1, std::memory_order_relaxed);
  tracker_.clear();
  machine_.attached(for_login);
  set_cancel_target(server_.get());
  spdlog::debug("{} attached server={} worker={}", name_, server_->name(), worker_.index());
  // The server's settings are brought in line with the client's in the same write as the
  // client's first messages (at login's end for a server kept from login).
  if (!for_login) {
    // A reset pending from the last server is moot: the new one is brought in line anyway.
    settings_due_ = settings_due::none;
    sync_settings(false);
    signal();
  }
}

void client_session::sync_settings(bool restore) {
  std::string sql;
  if (restore) {
    // After DISCARD ALL / RESET ALL the server is back at its own defaults, where a direct
    // connection would be back at the values of the client's startup packet.
    sql = plan_settings_sync(startup_.reported, startup_.settings, parameter_set{}, parameter_set{});
  } else if (server_->synced_settings != settings_hash_) {
    // Servers remember which client settings they were last brought in line with (by hash),
    // so the comparison is skipped while consecutive clients agree.
    sql = plan_settings_sync(view_, startup_.settings, server_->reported, server_->applied);
  }
  server_->synced_settings = settings_hash_;
  if (!sql.empty()) {
    auto& out = to_server_.begin_owned();
    protocol::append_query(out, sql);
    to_server_.end_owned();
    tracker_.push(expect::internal_query);
    server_->applied = startup_.settings;
    server_->unnamed_owner = 0;  // a simple Query drops the unnamed statement
    internal_error_.reset();
  }
  // Session mode: statements the client prepared before it had a server are prepared now,
  // under the client's own names, replies swallowed.
  for (auto& [name, stmt] : deferred_parses_) {
    auto& out = to_server_.begin_owned();
    protocol::append_parse(out, name, stmt->query, stmt->param_types);
    to_server_.end_owned();
    tracker_.push(expectation{expect::parse_injected, std::move(stmt), {}, {}});
  }
  deferred_parses_.clear();
}

void client_session::restore_reset_parameters(std::string_view sql) {
  // RESET of one parameter puts a direct connection back at the client's startup value, and a
  // pooled server at its own: the startup value goes back right behind the statement.
  if (startup_.reported.empty() && startup_.settings.empty()) return;
  auto mentions = [&](std::string_view w) {
    return std::search(sql.begin(), sql.end(), w.begin(), w.end(), [](char a, char b) {
             return std::tolower(static_cast<unsigned char>(a)) == b;
           }) != sql.end();
  };
  if (!mentions("reset") && !mentions("default")) return;
  parameter_set wanted;
  for (const auto& name : reset_parameter_names(sql)) {
    if (const std::string* v = startup_.reported.find(name)) wanted.set(name, *v);
    if (const std::string* v = startup_.settings.find(name)) wanted.set(name, *v);
  }
  if (wanted.empty()) return;
  const std::string set = plan_settings_sync(parameter_set{}, wanted, parameter_set{}, parameter_set{});
  auto& out = to_server_.begin_owned();
  protocol::append_query(out, set);
  to_server_.end_owned();
  tracker_.push(expect::internal_query);
  server_->unnamed_owner = 0;
  internal_error_.reset();
}

void client_session::finish_internal_query() {
  if (internal_error_) {
    spdlog::warn("{} settings_failed server={} error=\"{}\"", name_, server_->name(), internal_error_->message);
    const server_error e = std::move(*internal_error_);
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
      protocol::append_parameter_status(out, name, value);
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
      } else if (transaction_mode_) {
        // A failed or skipped Parse of the unnamed statement: whatever the server holds now is
        // not known to be this client's; the next Bind re-parses or closes first.
        has_unnamed_ = false;
        if (server_) server_->unnamed_owner = 0;
      }
      break;
    case expect::query:
      if (server_) server_->unnamed_owner = 0;  // skipped: the server's unnamed statement is whoever's it was
      break;
    case expect::parse_injected:
      if (e.stmt && server_) server_->statements.erase(e.stmt->digest);
      if (!e.stmt && server_) server_->unnamed_owner = 0;
      break;
    case expect::parse_synthetic:
      if (const auto* mine = statements_.find(e.client_name); mine != nullptr && *mine == e.stmt)
        statements_.remove(e.client_name);
      break;
    case expect::close_injected:
      // The server skipped our Close: the statement is still there.
      if (e.stmt && server_) server_->statements.restore(e.stmt);
      if (!e.stmt && server_) server_->unnamed_owner = 0;
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

// --- routing ---------------------------------------------------------------------------------

bool client_session::take_routing_options() {
  routing_ = cluster_->routes_reads();
  const auto& rs = cluster_->route_settings();
  route_.policy = rs.policy;
  // pgsluice.* settings in the startup packet are the proxy's, never sent to a server.
  if (const std::string* v = startup_.settings.find("pgsluice.route")) {
    const auto c = router::classify("SET pgsluice.route = " + *v);
    if (c.kind != router::statement_kind::route_set || c.route == router::route_value::invalid) {
      fail(end_reason::login_refused, "22023", "invalid value for parameter \"pgsluice.route\": \"" + *v + "\"");
      return false;
    }
    session_route_ = c.route == router::route_value::primary   ? router::route_hint::primary
                     : c.route == router::route_value::replica ? router::route_hint::replica
                                                               : router::route_hint::automatic;
    startup_.settings.erase("pgsluice.route");
  }
  if (const std::string* v = startup_.settings.find("pgsluice.min_lsn")) {
    const auto lsn = parse_lsn(*v);
    if (!lsn) {
      fail(end_reason::login_refused, "22P02", "invalid input syntax for type pg_lsn: \"" + *v + "\"");
      return false;
    }
    min_lsn_ = *lsn;
    startup_.settings.erase("pgsluice.min_lsn");
  }
  auto attrs = rs.session_attrs;
  if (const std::string* v = startup_.settings.find("target_session_attrs")) {
    bool known = false;
    for (auto a : {conf::target_session_attrs::any, conf::target_session_attrs::read_write,
                   conf::target_session_attrs::read_only, conf::target_session_attrs::primary,
                   conf::target_session_attrs::standby, conf::target_session_attrs::prefer_standby}) {
      if (conf::to_string(a) == *v) {
        attrs = a;
        known = true;
      }
    }
    if (!known) {
      fail(end_reason::login_refused, "22023", "invalid value for parameter \"target_session_attrs\": \"" + *v + "\"");
      return false;
    }
    startup_.settings.erase("target_session_attrs");
  }
  if (const std::string* v = startup_.settings.find("default_transaction_read_only")) {
    session_read_only_ = *v == "on" || *v == "true" || *v == "1" || *v == "yes";
  }
  if (!routing_) return true;
  // Session pooling: the backend is chosen once, at login, by target_session_attrs; in
  // transaction pooling anything but "any" decides for every transaction alike.
  session_attrs_ = attrs;
  route_.force = router::route_hint::automatic;
  switch (attrs) {
    case conf::target_session_attrs::any:
      route_.need = session_read_only_ ? router::need::read : router::need::write;
      break;
    case conf::target_session_attrs::read_write:
    case conf::target_session_attrs::primary:
      route_.need = router::need::write;
      break;
    case conf::target_session_attrs::standby:
      route_.policy.primary_reads = router::primary_reads::never;
      [[fallthrough]];
    case conf::target_session_attrs::read_only:
      route_.need = router::need::read;
      route_.force = router::route_hint::replica;
      break;
    case conf::target_session_attrs::prefer_standby:
      route_.need = router::need::read;
      break;
  }
  session_need_ = route_.need;
  session_force_ = route_.force;
  return true;
}

const router::statement_class& client_session::class_of(std::span<const std::uint8_t> data, std::size_t i,
                                                        std::string_view text) {
  // Classified once per batch and frame: routing, the proxy's own statements and the write
  // bookkeeping all ask about the same Query.
  if (class_frame_ != i || class_batch_ != data.data()) {
    class_ = router::classify(text, cluster_->route_settings().classify);
    class_frame_ = i;
    class_batch_ = data.data();  // the buffer may have moved while waiting for a server
  }
  return class_;
}

router::route_request client_session::route_of_batch(std::span<const std::uint8_t> data) {
  router::route_request r = route_;
  const auto& opts = cluster_->route_settings().classify;
  bool read = true;
  bool read_write = false;  // BEGIN READ WRITE: the primary even in a read-only session
  auto hint = router::comment_hint::none;
  std::uint8_t unnamed = unnamed_flags_;
  for (std::size_t fi = 0; fi < frames_.size(); ++fi) {
    const auto& f = frames_[fi];
    const auto body = body_of(data, f.offset, f.size);
    switch (f.tag) {
      case 'Q': {
        const auto& c = class_of(data, fi, protocol::read_query(body).value_or(std::string_view()));
        if (c.hint != router::comment_hint::none) hint = c.hint;
        read = read && c.is_read();
        read_write = read_write || c.begin_mode == router::access_mode::read_write;
        break;
      }
      case 'P': {
        const auto p = protocol::read_parse(body);
        if (!p) {
          read = false;
          break;
        }
        const auto c = router::classify(p->query, opts);
        if (c.hint != router::comment_hint::none) hint = c.hint;
        if (p->name.empty()) unnamed = flags_of(c);
        read = read && c.is_read();
        break;
      }
      case 'B': {
        const auto b = protocol::read_bind(body);
        std::uint8_t flags = 0;
        if (b && b->statement.empty()) {
          flags = unnamed;
        } else if (const statement_ptr* st = b ? statements_.find(b->statement) : nullptr) {
          flags = (*st)->route_flags;
        }
        read = read && (flags & statement_flags::read) != 0;
        break;
      }
      case 'F':
        read = false;
        break;
      default:
        break;
    }
  }
  // Only a batch that ends with it may go to a replica: the rest of an extended batch still to
  // arrive (up to its Sync) could write.
  const char last = frames_.empty() ? 'S' : frames_.back().tag;
  if (last != 'S' && last != 'Q' && last != 'H') read = false;
  if (session_read_only_ && !read_write) read = true;
  r.force = local_route_ ? *local_route_ : hint != router::comment_hint::none ? hint_of(hint) : session_route_;
  // A transaction opened by a plain BEGIN may write later: the primary, unless the client said
  // a replica (a transaction that started on a replica and then writes would fail there).
  if (!held_begin_.empty() && r.force != router::route_hint::replica) read = false;
  r.need = read ? router::need::read : router::need::write;
  if (session_attrs_ != conf::target_session_attrs::any) {
    r.need = session_need_;  // as the session asked
    if (r.force == router::route_hint::automatic) r.force = session_force_;
  }
  r.min_lsn = r.policy.consistency == router::consistency::read_your_writes ? std::max(last_write_lsn_, min_lsn_) : 0;
  return r;
}

int client_session::answer_routing_statement(std::span<const std::uint8_t> data) {
  if (frames_.size() != 1 || frames_[0].tag != 'Q') return 0;
  const std::string_view sql =
      protocol::read_query(body_of(data, frames_[0].offset, frames_[0].size)).value_or(std::string_view());
  const auto& c = class_of(data, 0, sql);
  // An answer of the proxy's own must not overtake replies still due from the server (a
  // pipelining client), nor a write's position still being read: wait for them.
  if (c.kind != router::statement_kind::ordinary && server_ && !tracker_.idle()) return 2;
  const char status = server_ ? server_->transaction_status : held_begin_.empty() ? 'I' : 'T';
  auto& out = client_emit_.begin_owned();
  auto done = [&](std::string_view tag, char st) {
    protocol::encode(protocol::command_complete{tag}, out);
    protocol::encode_ready_for_query(st, out);
    client_emit_.end_owned();
    return 1;
  };
  auto error = [&](std::string_view sqlstate, const std::string& message) {
    if (server_ && status != 'I') {
      // Inside a transaction the error must abort it, as PostgreSQL's would: the server raises it.
      // The client's text goes in as an escaped literal, without '$' (it must not end the body).
      std::string text = message;
      std::erase(text, '$');
      auto& q = to_server_.begin_owned();
      protocol::append_query(q, "DO $pgsluice$BEGIN RAISE EXCEPTION USING ERRCODE = '" + std::string(sqlstate) +
                                    "', MESSAGE = " + quote_literal(text) + "; END$pgsluice$");
      to_server_.end_owned();
      tracker_.push(expect::query);
      server_->unnamed_owner = 0;
      client_emit_.end_owned();
      return 1;
    }
    protocol::encode_error_response("ERROR", sqlstate, message, out);
    protocol::encode_ready_for_query(status == 'I' ? 'I' : 'E', out);
    client_emit_.end_owned();
    return 1;
  };
  const bool reset = first_word(sql) == "reset";
  switch (c.kind) {
    case router::statement_kind::ordinary: {
      // Transaction pooling: a plain BEGIN waits for its first statement, which decides where
      // the transaction goes; a transaction that ends with nothing in it needs no server at all.
      if (!transaction_mode_ || server_ || c.statements != 1) break;
      const std::string words = bare_words(sql);
      if (held_begin_.empty() && (words == "begin" || words == "begin work" || words == "begin transaction" ||
                                  words == "start transaction")) {
        held_begin_.assign(data.data() + frames_[0].offset, data.data() + frames_[0].offset + frames_[0].size);
        return done("BEGIN", 'T');
      }
      if (!held_begin_.empty()) {
        const bool commit = words == "commit" || words == "commit work" || words == "commit transaction" ||
                            words == "end" || words == "end work" || words == "end transaction";
        const bool rollback = words == "rollback" || words == "rollback work" || words == "rollback transaction" ||
                              words == "abort" || words == "abort work" || words == "abort transaction";
        if (commit || rollback) {
          held_begin_.clear();
          local_route_.reset();
          return done(commit ? "COMMIT" : "ROLLBACK", 'I');
        }
      }
      break;
    }
    case router::statement_kind::route_set: {
      if (c.route == router::route_value::invalid) {
        std::string v = bare_words(sql);
        v = v.substr(v.rfind(' ') + 1);
        std::erase(v, '\'');
        return error("22023", "invalid value for parameter \"pgsluice.route\": \"" + v + "\"");
      }
      const auto h = c.route == router::route_value::primary   ? router::route_hint::primary
                     : c.route == router::route_value::replica ? router::route_hint::replica
                                                               : router::route_hint::automatic;
      if (c.local) {
        if (status != 'I') local_route_ = h;  // outside a transaction block SET LOCAL has no effect
      } else {
        session_route_ = h;
      }
      return done(reset ? "RESET" : "SET", status);
    }
    case router::statement_kind::show_last_write_lsn: {
      protocol::row_description rd;
      rd.fields.push_back(protocol::field_description{"pgsluice.last_write_lsn", 0, 0, 25, -1, -1, 0});
      protocol::encode(rd, out);
      const std::string v = format_lsn(last_write_lsn_);
      protocol::data_row row;
      row.columns.emplace_back(protocol::bytes_view(reinterpret_cast<const std::uint8_t*>(v.data()), v.size()));
      protocol::encode(row, out);
      return done("SHOW", status);
    }
    case router::statement_kind::set_min_lsn: {
      if (c.value.empty()) {
        min_lsn_ = 0;
      } else if (const auto lsn = parse_lsn(c.value)) {
        min_lsn_ = *lsn;
      } else {
        return error("22P02", "invalid input syntax for type pg_lsn: \"" + std::string(c.value) + "\"");
      }
      return done(reset ? "RESET" : "SET", status);
    }
    case router::statement_kind::unknown_pgsluice_name:
      return error("42704", "unrecognized configuration parameter \"pgsluice." + std::string(c.value) + "\"");
    case router::statement_kind::pgsluice_in_batch:
      return error("0A000", "pgsluice: SET, SHOW and RESET of pgsluice.* settings must be sent as a query of their own");
  }
  client_emit_.end_owned();
  return 0;
}

bool client_session::capture_write_lsn() {
  // Queued behind whatever the client has pipelined already (the tracker's order is the wire
  // order); written by send_capture() from the server pump, or by the client pump right after
  // its own write when one is under way.
  static const std::vector<std::uint8_t> query = [] {
    std::vector<std::uint8_t> q;
    protocol::append_query(q, "SELECT (pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::text");
    return q;
  }();
  expectation e;
  e.kind = expect::internal_query;
  e.capture_lsn = true;
  tracker_.push(std::move(e));
  server_->unnamed_owner = 0;  // a simple Query drops the unnamed statement
  capture_bytes_ = &query;
  return true;
}

awaitable<bool> client_session::send_capture() {
  const auto* q = std::exchange(capture_bytes_, nullptr);
  if (q == nullptr || !server_) co_return true;
  gather_list g;
  g.add_input(q->data(), q->size());
  int err = 0;
  const std::size_t sent = g.send_now(server_->socket().native_handle(), err);
  boost::system::error_code ec(err, boost::system::system_category());
  if (!ec && sent < q->size()) {
    machine_.server_write_started();
    auto [ec2, n] = co_await asio::async_write(server_->socket(), asio::buffer(q->data() + sent, q->size() - sent),
                                               nothrow_awaitable);
    (void)n;
    ec = ec2;
    if (machine_.server_write_finished()) signal();
    write_done_.cancel();
  }
  if (ec && !machine_.ending()) {
    spdlog::info("{} server_write_failed server={} error=\"{}\"", name_, server_->name(), ec.message());
    fail(end_reason::server_closed, "08006", "server closed the connection unexpectedly");
    co_return false;
  }
  co_return true;
}

// --- client -> server ------------------------------------------------------------------------

void client_session::send_parse(const statement_ptr& stmt, expectation parse_entry) {
  std::vector<statement_ptr> evicted;
  server_->statements.insert(stmt, evicted);
  auto& out = to_server_.begin_owned();
  for (const auto& old : evicted) {
    // Least recently used statement out: Close it on the server, swallow the CloseComplete.
    protocol::append_target(out, protocol::frontend_tag::close, 'S', old->server_name);
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

void client_session::ensure_unnamed() {
  if (!transaction_mode_ || server_->unnamed_owner == id_) return;
  auto& out = to_server_.begin_owned();
  if (has_unnamed_) {
    out.insert(out.end(), unnamed_parse_.begin(), unnamed_parse_.end());
    to_server_.end_owned();
    tracker_.push(expect::parse_injected);
  } else {
    // This client has no unnamed statement: whatever another client left there must not run.
    protocol::append_target(out, protocol::frontend_tag::close, 'S', {});
    to_server_.end_owned();
    tracker_.push(expect::close_injected);
  }
  server_->unnamed_owner = id_;
}

bool client_session::try_answer_locally(std::span<const std::uint8_t> data) {
  // Transaction mode renames statements (client registry); session mode defers the client's
  // own Parse to the server it will get (deferred_parses_).
  if (transaction_mode_ && !rewrite_statements_) return false;
  auto is_known_name = [&](std::string_view name) {
    if (rewrite_statements_) return statements_.find(name) != nullptr;
    return std::any_of(deferred_parses_.begin(), deferred_parses_.end(), [&](const auto& d) { return d.first == name; });
  };
  // First pass: is every message one we can answer? Parse statements are made once here.
  std::vector<statement_ptr> made;
  bool skipping = machine_.skipping();
  for (const auto& f : frames_) {
    if (skipping) {
      if (f.tag == 'X') return false;
      if (f.tag == 'S') skipping = false;
      continue;
    }
    switch (f.tag) {
      case 'P': {
        const auto p = protocol::read_parse(body_of(data, f.offset, f.size));
        if (!p || p->name.empty()) return false;
        if (is_known_name(p->name)) {
          skipping = true;  // answered with 42P05 below
          break;
        }
        auto stmt = make_statement(p->query, p->param_types,
                                   routing_ ? flags_of(router::classify(p->query, cluster_->route_settings().classify)) : 0);
        if (!cluster_->statement_known(stmt->digest)) return false;
        made.push_back(std::move(stmt));
        break;
      }
      case 'C': {
        const auto t = protocol::read_target(body_of(data, f.offset, f.size));
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
  for (const auto& f : frames_) {
    const auto body = body_of(data, f.offset, f.size);
    if (machine_.skipping()) {
      if (f.tag == 'S') {
        machine_.sync_seen();
        protocol::encode_ready_for_query(held_begin_.empty() ? 'I' : 'T', out);
      }
      continue;
    }
    switch (f.tag) {
      case 'P': {
        const auto p = protocol::read_parse(body);
        if (is_known_name(p->name)) {
          protocol::encode_error_response("ERROR", "42P05",
                                          "prepared statement \"" + std::string(p->name) + "\" already exists", out);
          machine_.skip_to_sync();
          break;
        }
        if (rewrite_statements_) {
          statements_.add(p->name, made[next_made++]);
        } else {
          deferred_parses_.emplace_back(std::string(p->name), made[next_made++]);
        }
        out.insert(out.end(), std::begin(protocol::parse_complete_msg), std::end(protocol::parse_complete_msg));
        break;
      }
      case 'C': {
        const auto t = protocol::read_target(body);
        if (rewrite_statements_) {
          statements_.remove(t->name);
        } else {
          std::erase_if(deferred_parses_, [&](const auto& d) { return d.first == t->name; });
        }
        out.insert(out.end(), std::begin(protocol::close_complete_msg), std::end(protocol::close_complete_msg));
        break;
      }
      case 'S':
        // No server attached: no transaction is open, unless one is held at its BEGIN.
        protocol::encode_ready_for_query(held_begin_.empty() ? 'I' : 'T', out);
        break;
      default:
        break;
    }
  }
  client_emit_.end_owned();
  return true;
}

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
  // Routing: a transaction held at its BEGIN starts now, on the server its first statement chose.
  if (routing_ && server_ && !held_begin_.empty()) {
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

awaitable<void> client_session::client_pump() {
  for (;;) {
    if (machine_.ending()) co_return;
    auto space = cbuf_.prepare(1024);
    auto [ec, n] = co_await socket_.async_read_some(asio::buffer(space.data(), space.size()), nothrow_awaitable);
    if (machine_.ending()) co_return;
    if (ec) {
      end(end_reason::client_closed);
      co_return;
    }
    cbuf_.commit(n);
    last_activity_ = clock::now();

    // Frame, once: the rest of a streamed CopyData first, then complete messages, then possibly
    // the start of a large CopyData to stream.
    auto data = cbuf_.data();
    std::size_t stream_now = 0;
    if (machine_.client_stream_left() > 0) {
      stream_now = machine_.client_streamed(data.size());
      if (server_) to_server_.add_input(data.data(), stream_now);
    }
    std::size_t framed = stream_now;
    bool want_server = false;
    bool invalid = false;
    int bad_type = -1;  // PostgreSQL judges the type byte before the length that follows it
    frames_.clear();
    class_frame_ = ~std::size_t{0};  // a new batch: nothing classified yet
    if (machine_.client_stream_left() == 0) {
      for (;;) {
        if (framed < data.size() && !is_client_message_type(data[framed])) {
          bad_type = data[framed];
          break;
        }
        const auto r = protocol::next_frame(data.subspan(framed), max_message_size_);
        if (r.is_frame()) {
          frames_.push_back(client_frame{r.f.tag, static_cast<std::uint32_t>(framed), static_cast<std::uint32_t>(r.f.size)});
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
    bool go_on = true;
    int answered = 0;  // answer_routing_statement: 1 answered, 2 wait for the server's replies first
    if (want_server && !server_ && stream_now == 0 && try_answer_locally(data)) {
      want_server = false;
    } else if (routing_ && stream_now == 0 && (answered = answer_routing_statement(data)) != 0 && answered != 2) {
      want_server = false;
    } else {
      if (answered == 2 || (routing_ && transaction_mode_ && want_server && server_ && counted_backend_ != nullptr &&
                            counted_backend_->role == router::role::replica && stream_now == 0 &&
                            route_of_batch(data).need == router::need::write)) {
        // A pipelining client: its own answer waits for the replies before it; a write that
        // arrives while a replica still serves its previous transaction waits for that server
        // to be released, then goes where it belongs (inside an open transaction it stays: the
        // replica answers as PostgreSQL does).
        asio::steady_timer t(worker_.io());
        while (!machine_.ending() && server_ && !tracker_.idle()) {
          t.expires_after(std::chrono::milliseconds(1));
          co_await t.async_wait(nothrow_awaitable);
        }
        if (machine_.ending()) co_return;
        data = cbuf_.data();
        if (answered == 2) {
          answered = answer_routing_statement(data);
          if (answered == 1) want_server = false;
        } else if (server_ && server_->transaction_status == 'I') {
          while (!machine_.ending() && server_) {
            t.expires_after(std::chrono::milliseconds(1));
            co_await t.async_wait(nothrow_awaitable);
          }
          if (machine_.ending()) co_return;
        }
      }
      // Transaction pooling: each transaction goes where its first batch says.
      if (routing_ && transaction_mode_ && want_server && !server_) route_ = route_of_batch(data);
      if (want_server && machine_.needs_server()) {
        if (!attach_now() && (machine_.ending() || !co_await attach_server())) co_return;
        data = cbuf_.data();
        emit_target_ = &client_emit_;  // the server pump may have run while this one waited
      }
      if (want_server && settings_due_ == settings_due::sync && server_) {
        settings_due_ = settings_due::none;
        sync_settings(false);
      }
      go_on = process_client(data);
    }
    std::size_t used = framed;
    // A large CopyData right after: stream what has arrived of it.
    if (go_on && !invalid && machine_.client_stream_left() == 0 && framed < data.size()) {
      const auto r = protocol::next_frame(data.subspan(framed), max_message_size_);
      if (r.is_need_more() && r.f.size >= stream_threshold && r.f.tag == 'd') {
        const std::size_t have = data.size() - framed;
        if (server_) to_server_.add_input(data.data() + framed, have);
        machine_.client_stream(r.f.size - have);
        used = data.size();
      }
    }
    tracker_.emit_ready(*this);

    // Replies the proxy answered itself (a ParseComplete for a statement the server already has,
    // a CloseComplete) are ready only when nothing sent to the server precedes them, so they go
    // to the client before this batch reaches the server: afterwards the server pump could
    // deliver the server's replies first and the client would see them out of order.
    if (!client_emit_.empty() && !co_await write_client(client_emit_)) co_return;
    if (!to_server_.empty() && server_ && !machine_.ending()) {
      // Usually the server's socket takes the batch at once; only a remainder is copied and
      // written asynchronously.
      // The server pump may be finishing the position query's write: bytes must not interleave.
      while (machine_.server_writing() && !machine_.ending()) {
        write_done_.expires_at(clock::time_point::max());
        co_await write_done_.async_wait(nothrow_awaitable);
      }
      if (machine_.ending() || !server_) co_return;
      int err = 0;
      const std::size_t sent = to_server_.send_now(server_->socket().native_handle(), err);
      boost::system::error_code wec(err, boost::system::system_category());
      if (!wec && sent < to_server_.bytes()) {
        machine_.server_write_started();
        server_tail_.clear();
        to_server_.copy_tail(sent, server_tail_);
        auto [ec2, wn] = co_await asio::async_write(server_->socket(), asio::buffer(server_tail_), nothrow_awaitable);
        (void)wn;
        wec = ec2;
        server_tail_.clear();
        server_tail_.shrink_to_fit();
        if (machine_.server_write_finished()) signal();  // a release waited for this write
      }
      if (!wec && capture_bytes_ != nullptr && server_ && !co_await send_capture()) co_return;
      if (wec && !machine_.ending()) {
        spdlog::info("{} server_write_failed server={} error=\"{}\"", name_, server_->name(), wec.message());
        fail(end_reason::server_closed, "08006", "server closed the connection unexpectedly");
      }
    }
    to_server_.clear();
    cbuf_.consume(used);
    cbuf_.shrink_if_empty(64 * 1024);
    if (!go_on) end(end_reason::client_terminate);  // no-op when a protocol error ended it already
    if (bad_type >= 0) {
      // As PostgreSQL's postgres.c: FATAL "invalid frontend message type %d".
      spdlog::info("{} protocol_violation message_type={}", name_, bad_type);
      fail(end_reason::client_protocol_error, "08P01", "invalid frontend message type " + std::to_string(bad_type));
    }
    if (invalid) fail(end_reason::client_protocol_error, "08P01", "invalid message length");
    if (machine_.ending()) co_return;
  }
}

// --- server -> client ------------------------------------------------------------------------

void client_session::forward_error(const std::uint8_t* raw, std::size_t size, std::span<const std::uint8_t> body) {
  const std::string_view text(reinterpret_cast<const char*>(body.data()), body.size());
  if (!rewrite_statements_ || text.find(internal_prefix) == std::string_view::npos) {
    to_client_.add_input(raw, size);
    return;
  }
  // The server quoted a statement by the proxy's name for it: give the client's name instead.
  protocol::error_response e;
  std::vector<std::string> values;
  std::vector<char> types;
  protocol::error_field_reader fields(body);
  while (auto f = fields.next()) {
    std::string v(f->value);
    for (std::size_t at = v.find(internal_prefix); at != std::string::npos; at = v.find(internal_prefix, at)) {
      const std::string_view mine =
          at + internal_name_size <= v.size() ? statements_.name_of(std::string_view(v).substr(at, internal_name_size))
                                              : std::string_view();
      if (mine.empty()) {
        at += internal_prefix.size();
        continue;
      }
      v.replace(at, internal_name_size, mine);
      at += mine.size();
    }
    types.push_back(f->type);
    values.push_back(std::move(v));
  }
  if (fields.error() != errc{}) {
    to_client_.add_input(raw, size);
    return;
  }
  for (std::size_t i = 0; i < values.size(); ++i) e.fields.emplace_back(types[i], values[i]);
  auto& out = to_client_.begin_owned();
  protocol::encode(e, out);
  to_client_.end_owned();
}

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
      case 'E':
        if (internal) {
          if (!internal_error_) internal_error_ = to_server_error(body);
        } else {
          is_error = true;
          const auto f = protocol::read_error_fields(body);
          if (f.severity == "FATAL" || f.severity == "PANIC") {
            machine_.server_fatal_seen();
            spdlog::info("{} server_fatal server={} sqlstate={} error=\"{}\"", name_, server_->name(), f.sqlstate, f.message);
          }
        }
        break;
      case 'Z':
        if (const auto st = protocol::read_ready_for_query(body)) server_->transaction_status = *st;
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
      if (transaction_mode_ && counted_backend_ != nullptr && counted_backend_->role == router::role::primary &&
          route_.policy.consistency == router::consistency::read_your_writes) {
        capture_due_ = true;
        hold_ready = tracker_.size() == 1;  // only this reply outstanding
      }
    }
    if (tracker_.on_server_message(tag, *this) == response_tracker::verdict::forward) {
      if (is_error) {
        forward_error(raw, size, body);
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
  for (;;) {
    if (machine_.ending()) co_return;
    if (!server_) {
      co_await wait_signal();
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
    auto space = sbuf_.prepare(4096);
    auto [ec, n] = co_await server_->socket().async_read_some(asio::buffer(space.data(), space.size()), nothrow_awaitable);
    if (machine_.ending()) co_return;
    if (ec) {
      spdlog::info("{} server_closed server={} error=\"{}\"", name_, server_->name(), ec.message());
      if (machine_.server_fatal()) {
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
    if (machine_.ending()) co_return;
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

// Client sessions, read/write routing: the client's routing options, where a transaction goes, pgsluice's own settings answered, the write position read after a writing transaction.
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
#include "proxy/relay_detail.hpp"
#include "proxy/runtime.hpp"
#include "proxy/server_connection.hpp"

namespace pgsluice::proxy {

using namespace relay_detail;

namespace {

router::route_hint hint_of(router::comment_hint h) noexcept {
  switch (h) {
    case router::comment_hint::primary: return router::route_hint::primary;
    case router::comment_hint::replica: return router::route_hint::replica;
    default: return router::route_hint::automatic;
  }
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

// BEGIN, START, COMMIT, END, ROLLBACK or ABORT, in any case.
bool opens_or_ends_transaction(std::string_view word) noexcept {
  static constexpr std::string_view words[] = {"begin", "start", "commit", "end", "rollback", "abort"};
  for (const auto w : words) {
    if (w.size() == word.size() &&
        std::equal(w.begin(), w.end(), word.begin(), [](char a, char b) { return a == (b | 0x20); })) {
      return true;
    }
  }
  return false;
}

}  // namespace

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
  if (!held_begin_.empty() && !held_begin_read_only_ && r.force != router::route_hint::replica) read = false;
  r.need = read ? router::need::read : router::need::write;
  if (session_attrs_ != conf::target_session_attrs::any) {
    r.need = session_need_;  // as the session asked
    if (r.force == router::route_hint::automatic) r.force = session_force_;
  }
  r.min_lsn = r.policy.consistency == router::consistency::read_your_writes ? std::max(last_write_lsn_, min_lsn_) : 0;
  return r;
}

int client_session::hold_begin(std::span<const std::uint8_t> data, std::string_view words) {
  auto done = [&](std::string_view tag, char st) {
    has_unnamed_ = false;  // a simple Query drops the unnamed statement, as on a direct connection
    auto& out = client_emit_.begin_owned();
    protocol::encode(protocol::command_complete{tag}, out);
    protocol::encode_ready_for_query(st, out);
    client_emit_.end_owned();
    return 1;
  };
  // A read-only one is held the same way: with routing its first statement then goes to a
  // replica and, if that replica fails before replying, runs again elsewhere (session_retry.cpp).
  const bool read_only = words == "begin read only" || words == "begin work read only" ||
                         words == "begin transaction read only" || words == "start transaction read only";
  if (held_begin_.empty() && (words == "begin" || words == "begin work" || words == "begin transaction" ||
                              words == "start transaction" || read_only)) {
    held_begin_.assign(data.data() + frames_[0].offset, data.data() + frames_[0].offset + frames_[0].size);
    held_begin_read_only_ = read_only;
    return done(words.starts_with("start") ? "START TRANSACTION" : "BEGIN", 'T');  // PostgreSQL's tags
  }
  if (held_begin_.empty()) return 0;
  const bool commit = words == "commit" || words == "commit work" || words == "commit transaction" ||
                      words == "end" || words == "end work" || words == "end transaction";
  const bool rollback = words == "rollback" || words == "rollback work" || words == "rollback transaction" ||
                        words == "abort" || words == "abort work" || words == "abort transaction";
  if (!commit && !rollback) return 0;
  held_begin_.clear();
  local_route_.reset();
  return done(commit ? "COMMIT" : "ROLLBACK", 'I');
}

bool client_session::answer_held_begin(std::span<const std::uint8_t> data) {
  if (!transaction_mode_ || server_ || frames_.size() != 1 || frames_[0].tag != 'Q' || frames_[0].size > 64) return false;
  const std::string_view sql =
      protocol::read_query(body_of(data, frames_[0].offset, frames_[0].size)).value_or(std::string_view());
  // Only a statement whose first word opens or ends a transaction gets further (no allocation
  // for the ordinary ones: this runs for every short query between transactions).
  std::size_t word = 0;
  while (word < sql.size() && ((sql[word] | 0x20) >= 'a' && (sql[word] | 0x20) <= 'z')) ++word;
  if (!opens_or_ends_transaction(sql.substr(0, word))) return false;
  // One statement: after a ';' only more of them and white space (bare_words joins the rest).
  if (const auto semi = sql.find(';'); semi != std::string_view::npos &&
      sql.find_first_not_of("; \t\r\n\f\v", semi) != std::string_view::npos) {
    return false;
  }
  return hold_begin(data, bare_words(sql)) == 1;
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
    rt_.stats().error_sent(sqlstate);
    protocol::encode_ready_for_query(status == 'I' ? 'I' : 'E', out);
    client_emit_.end_owned();
    return 1;
  };
  const std::string words = bare_words(sql);
  const bool reset = words.starts_with("reset");
  switch (c.kind) {
    case router::statement_kind::ordinary: {
      // Transaction pooling: a plain BEGIN waits for its first statement, which decides where
      // the transaction goes; a transaction that ends with nothing in it needs no server at all.
      if (!transaction_mode_ || server_ || c.statements != 1) break;
      client_emit_.end_owned();
      return hold_begin(data, words);
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
  boost::system::error_code ec;
  const std::size_t sent = server_->send_now(g, ec);
  if (!ec && sent < q->size()) {
    machine_.server_write_started();
    ec = co_await server_->write(std::span<const std::uint8_t>(*q).subspan(sent));
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

}  // namespace pgsluice::proxy

// Client sessions, prepared statements in transaction pooling: the tracker's hooks, statements prepared on the server at hand, the unnamed statement, batches answered without a server, server errors in the client's statement names.
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

// --- response_tracker hooks ----------------------------------------------------------------

void client_session::emit(std::span<const std::uint8_t> message) {
  // A synthesized ErrorResponse (42P05 for a statement name in use) is an error the client gets.
  if (message.size() > 5 && message[0] == 'E') rt_.stats().error_sent(protocol::read_error_fields(message.subspan(5)).sqlstate);
  emit_target_->add_owned(message);
}

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

namespace {

// Server-side statement names are "pgsluice_" and 32 hex digits (prepared.hpp).
constexpr std::string_view internal_prefix = "pgsluice_";
constexpr std::size_t internal_name_size = internal_prefix.size() + 32;

}  // namespace

void client_session::forward_error(const std::uint8_t* raw, std::size_t size, std::span<const std::uint8_t> body,
                                   gather_list& to) {
  const std::string_view text(reinterpret_cast<const char*>(body.data()), body.size());
  if (!rewrite_statements_ || text.find(internal_prefix) == std::string_view::npos) {
    to.add_input(raw, size);
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
    to.add_input(raw, size);
    return;
  }
  for (std::size_t i = 0; i < values.size(); ++i) e.fields.emplace_back(types[i], values[i]);
  auto& out = to.begin_owned();
  protocol::encode(e, out);
  to.end_owned();
}

}  // namespace pgsluice::proxy

// Matching server replies to client requests, with injected, swallowed and synthesized replies (see pipeline.hpp).
#include "proxy/pipeline.hpp"

#include "protocol/fields.hpp"

namespace pgsluice::proxy {

const char* to_string(expect e) noexcept {
  switch (e) {
    case expect::parse: return "parse";
    case expect::parse_injected: return "parse_injected";
    case expect::parse_synthetic: return "parse_synthetic";
    case expect::bind: return "bind";
    case expect::describe_statement: return "describe_statement";
    case expect::describe_portal: return "describe_portal";
    case expect::execute: return "execute";
    case expect::close: return "close";
    case expect::close_injected: return "close_injected";
    case expect::close_synthetic: return "close_synthetic";
    case expect::error_synthetic: return "error_synthetic";
    case expect::sync: return "sync";
    case expect::query: return "query";
    case expect::function_call: return "function_call";
    case expect::internal_query: return "internal_query";
  }
  return "?";
}

namespace {

bool is_synthetic(expect k) noexcept {
  return k == expect::parse_synthetic || k == expect::close_synthetic || k == expect::error_synthetic;
}

// Messages that belong to the extended-query protocol and leave the server expecting a Sync.
bool is_extended(expect k) noexcept {
  switch (k) {
    case expect::sync:
    case expect::query:
    case expect::function_call:
    case expect::internal_query: return false;
    default: return true;
  }
}

}  // namespace

void response_tracker::push(expectation e) {
  if (count_ == ring_.size()) {
    // Small at first (most batches are a Query, or Parse/Bind/Execute/Sync): an idle client
    // keeps only this; a pipelining client grows it.
    std::vector<expectation> bigger(ring_.empty() ? 4 : ring_.size() * 2);
    for (std::size_t i = 0; i < count_; ++i) bigger[i] = std::move(at(i));
    ring_ = std::move(bigger);
    head_ = 0;
  }
  if (is_extended(e.kind)) unsynced_ = true;
  if (e.kind == expect::sync) unsynced_ = false;
  at(count_) = std::move(e);
  ++count_;
}

void response_tracker::pop() noexcept {
  auto& e = ring_[head_];
  e.stmt.reset();
  e.client_name.clear();
  e.payload.clear();
  head_ = (head_ + 1) & (ring_.size() - 1);
  --count_;
}

void response_tracker::clear(bool keep_storage) noexcept {
  while (count_ > 0) pop();
  head_ = 0;
  unsynced_ = false;
  // Called when a server is attached or released: an idle client keeps no ring (the next
  // transaction's first push allocates one, from the allocator's per-thread cache).
  if (!keep_storage) ring_ = {};
}

void response_tracker::emit_ready(hooks& h) {
  while (count_ > 0 && is_synthetic(ring_[head_].kind)) {
    auto& e = ring_[head_];
    switch (e.kind) {
      case expect::parse_synthetic: h.emit(protocol::parse_complete_msg); break;
      case expect::close_synthetic: h.emit(protocol::close_complete_msg); break;
      default: h.emit(e.payload); break;
    }
    const bool was_error = e.kind == expect::error_synthetic;
    pop();
    if (was_error) skip_to_sync(h);
  }
}

void response_tracker::skip_to_sync(hooks& h) {
  while (count_ > 0 && ring_[head_].kind != expect::sync) {
    h.rollback(ring_[head_]);
    pop();
  }
}

response_tracker::verdict response_tracker::on_server_message(char tag, hooks& h) {
  const bool internal = count_ > 0 && ring_[head_].kind == expect::internal_query;
  if (tag == 'S' || tag == 'A') return verdict::forward;
  if (tag == 'N') return internal ? verdict::swallow : verdict::forward;

  emit_ready(h);
  if (count_ == 0) return verdict::forward;  // unsolicited, e.g. a FATAL error before the server closes

  auto& e = ring_[head_];
  verdict v = verdict::forward;
  bool done = false;
  switch (e.kind) {
    case expect::internal_query:
      v = verdict::swallow;
      done = tag == 'Z';
      break;
    case expect::query:
    case expect::function_call:
    case expect::sync:
      // An error at Sync (e.g. a deferred constraint at the implicit commit) is followed by ReadyForQuery.
      done = tag == 'Z';
      break;
    default:
      if (tag == 'E') {
        // The failing message itself and everything up to the Sync are never completed.
        h.rollback(e);
        pop();
        skip_to_sync(h);
        return verdict::forward;
      }
      switch (e.kind) {
        case expect::parse: done = tag == '1'; break;
        case expect::parse_injected:
          done = tag == '1';
          if (done) v = verdict::swallow;
          break;
        case expect::bind: done = tag == '2'; break;
        case expect::describe_statement: done = tag == 'T' || tag == 'n'; break;
        case expect::describe_portal: done = tag == 'T' || tag == 'n'; break;
        case expect::execute: done = tag == 'C' || tag == 'I' || tag == 's'; break;
        case expect::close: done = tag == '3'; break;
        case expect::close_injected:
          done = tag == '3';
          if (done) v = verdict::swallow;
          break;
        default: break;
      }
  }
  if (done) {
    h.completed(e);
    pop();
  }
  return v;
}

}  // namespace pgsluice::proxy

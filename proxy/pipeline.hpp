// Which server reply answers which client message: the bookkeeping behind pipelining with rewritten statements.
//
// The proxy forwards a client's messages in order, but in transaction mode it also inserts its own
// (a Parse for a statement missing on this server, a Close to evict one, a SET before the
// client's first message) and answers some without the server (a Parse of a statement the server
// already has, a client's Close of a statement). For the client to see exactly the replies
// PostgreSQL would send, in order, every message that produces a reply pushes one expectation;
// server messages are matched to the oldest expectation, replies to the proxy's own messages are
// swallowed, and synthesized replies are emitted when their turn comes. After an ErrorResponse
// in the extended protocol, PostgreSQL skips everything up to the next Sync
// (https://www.postgresql.org/docs/15/protocol-flow.html#PROTOCOL-FLOW-EXT-QUERY), and so does
// the tracker: skipped expectations are rolled back (a statement that was never prepared is
// forgotten) through hooks.
//
// The tracker also tells when a server connection is between transactions and may go back to
// the pool: nothing outstanding and no extended-protocol message since the last Sync.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "proxy/prepared.hpp"

namespace pgsluice::proxy {

enum class expect : std::uint8_t {
  parse,               // client's Parse: ParseComplete forwarded
  parse_injected,      // proxy's Parse: ParseComplete swallowed
  parse_synthetic,     // statement already on the server: ParseComplete synthesized
  bind,                // BindComplete
  describe_statement,  // ParameterDescription, then RowDescription or NoData
  describe_portal,     // RowDescription or NoData
  execute,             // rows..., then CommandComplete / EmptyQueryResponse / PortalSuspended
  close,               // client's Close of a portal (or unnamed statement): CloseComplete
  close_injected,      // proxy's Close evicting a statement: CloseComplete swallowed
  close_synthetic,     // client's Close of a named statement: CloseComplete synthesized
  error_synthetic,     // an ErrorResponse the proxy answers itself (e.g. duplicate statement name)
  sync,                // ReadyForQuery
  query,               // simple query: everything through ReadyForQuery
  function_call,       // FunctionCallResponse, then ReadyForQuery
  internal_query,      // proxy's own simple query (SET ..., server reset): swallowed through ReadyForQuery
};

const char* to_string(expect e) noexcept;

struct expectation {
  expect kind = expect::sync;
  statement_ptr stmt;                 // parse*, close_injected, close_synthetic
  std::string client_name;            // parse / parse_synthetic / close_synthetic of a named statement
  std::vector<std::uint8_t> payload;  // error_synthetic: the complete ErrorResponse
  bool capture_lsn = false;           // internal_query: the WAL position after a client's write
};

class response_tracker {
 public:
  // What the proxy does for the outcome of tracked work.
  struct hooks {
    virtual ~hooks() = default;
    // Append a synthesized reply to the client's stream, at the current position.
    virtual void emit(std::span<const std::uint8_t> message) = 0;
    // An expectation that will never be answered successfully: skipped after an error, or itself
    // failed. Undo what the proxy recorded when it pushed it.
    virtual void rollback(const expectation& e) = 0;
    // An expectation answered successfully (its last reply arrived).
    virtual void completed(const expectation& e) { (void)e; }
  };

  enum class verdict : std::uint8_t { forward, swallow };

  // Records that a message was sent (or answered locally) which the client will see replied to.
  void push(expectation e);
  void push(expect kind) { push(expectation{kind, nullptr, {}, {}}); }

  // Emits the synthesized replies that are next in line (nothing outstanding before them).
  // Call after pushing, before writing to the server.
  void emit_ready(hooks& h);

  // One complete server message (by its type byte): forward it to the client or swallow it.
  // ParameterStatus, NoticeResponse and NotificationResponse are asynchronous and never consume
  // an expectation; NoticeResponse is swallowed during the proxy's own queries. After forwarding
  // the message, the caller calls emit_ready() so synthesized replies due next follow it.
  verdict on_server_message(char tag, hooks& h);

  // Kind of the oldest outstanding expectation, or nullptr when none.
  const expectation* front() const noexcept { return count_ == 0 ? nullptr : &ring_[head_]; }
  bool empty() const noexcept { return count_ == 0; }
  std::size_t size() const noexcept { return count_; }
  // No reply outstanding and no extended-protocol message since the last Sync: the server is
  // between requests (whether it is between transactions is ReadyForQuery's status).
  bool idle() const noexcept { return count_ == 0 && !unsynced_; }
  bool in_extended_batch() const noexcept { return unsynced_; }

  // Drops everything (the connection is being closed or reset). The ring's storage goes too,
  // unless `keep_storage` (a busy client: its next transaction follows at once).
  void clear(bool keep_storage = false) noexcept;

 private:
  expectation& at(std::size_t i) noexcept { return ring_[(head_ + i) & (ring_.size() - 1)]; }
  void pop() noexcept;
  void skip_to_sync(hooks& h);

  std::vector<expectation> ring_;  // empty or a power of two (allocated on the first push)
  std::size_t head_ = 0;
  std::size_t count_ = 0;
  bool unsynced_ = false;
};

}  // namespace pgsluice::proxy

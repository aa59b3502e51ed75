// Pure rules on how a client session ends and when its server connection may go back to the pool.
//
// A session ends through one function taking a typed reason (DESIGN.md convention 8). Whether
// the reason lies with the client or with the server decides what happens to the server
// connection: after a client-side end a clean server is reused (after a rollback and/or the
// reset query where needed); after a server-side end, or with anything still in flight, it is
// closed, so a dirty server never reaches another client.
#pragma once

#include <cstdint>
#include <string_view>

namespace pgsluice::proxy {

enum class end_reason : std::uint8_t {
  // Client side.
  client_terminate,           // Terminate message
  client_closed,              // EOF or socket error from the client
  client_protocol_error,      // malformed or unexpected message from the client
  client_login_timeout,       // client_login_timeout passed before login completed
  client_idle_timeout,        // client_idle_timeout with no server attached
  idle_transaction_timeout,   // idle_transaction_timeout inside a transaction
  auth_failed,                // wrong password, unknown user
  login_refused,              // unknown database, too many clients, bad startup parameters
  query_wait_timeout,         // no server connection within query_wait_timeout
  shutdown,                   // pgsluice is shutting down
  // Server side.
  server_unavailable,         // could not connect or log in to the server
  server_closed,              // the server closed the connection or a read/write failed
  server_protocol_error,      // the server sent something the proxy cannot follow
  server_fatal,               // the server sent a FATAL error
};

const char* to_string(end_reason r) noexcept;
bool is_server_side(end_reason r) noexcept;

// What the proxy knows about the attached server connection when the client is done with it.
struct server_condition {
  bool replies_outstanding = false;  // requests sent whose replies have not all arrived, or an unsynced extended batch
  char transaction_status = 'I';     // last ReadyForQuery status: 'I', 'T' or 'E'
  bool in_copy = false;              // inside COPY IN/OUT
  bool needs_reset = false;          // session mode, a pinned client, or server_reset_query_always
};

enum class server_disposition : std::uint8_t {
  reuse,                  // straight back to the pool
  reset,                  // run the reset query (and a ROLLBACK first when in a transaction), then reuse
  close,                  // close it
};

server_disposition decide_server_disposition(end_reason reason, const server_condition& c) noexcept;

// Whether a transaction-mode server may leave its client now: ReadyForQuery 'I', nothing
// outstanding, no pinning.
bool may_release_at_ready(bool transaction_mode, bool pinned, bool replies_outstanding, char transaction_status) noexcept;

}  // namespace pgsluice::proxy

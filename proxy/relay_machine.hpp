// The relay's state as one plain state machine: where a client session is, and what the next event makes it do.
//
// A session runs two coroutines (client pump: client -> server; server pump: server -> client)
// that share one view of the session. That view is this class (DESIGN.md convention 5): the
// pumps report events and carry out the decision returned; every change of the main state goes
// through one set_state(), which also tells the observer (the metrics gauges by state).
//
//   login --logged_in--> idle --needs_server--> waiting --attached--> active
//   active --between_transactions(release allowed)--> idle            (server back to the pool)
//   active --between_transactions, write to the server in flight--> releasing
//   releasing --server_write_finished--> idle                         (released then)
//   any --end(reason)--> ending --finished--> closing --closed--> closed
//
// Besides the main state, each direction has its own framing sub-state: the client side may be
// skipping to the next Sync after an error (as PostgreSQL does in the extended protocol) or
// streaming a large CopyData; the server side may be streaming a large DataRow/CopyData,
// forwarded or swallowed. A client becomes `pinned` (transaction pooling) when it creates
// session state that must stay on its server.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "proxy/metrics.hpp"
#include "proxy/session_rules.hpp"

namespace pgsluice::proxy {

enum class relay_state : std::uint8_t {
  login,      // startup and authentication (a server may be attached to learn its parameters)
  idle,       // logged in, no server attached
  waiting,    // queued for a server connection
  active,     // a server connection is attached
  releasing,  // the server is between transactions; it goes back once the write to it completes
  ending,     // end() was called: the pumps stop, the session winds down
  closing,    // the server is being returned or reset, the final message sent
  closed,
};
const char* to_string(relay_state s) noexcept;
// The gauge a state is counted in (PgBouncer's client lists).
client_state gauge_of(relay_state s) noexcept;

class relay_machine {
 public:
  struct observer {
    virtual ~observer() = default;
    virtual void state_changed(relay_state from, relay_state to) noexcept = 0;
  };

  explicit relay_machine(observer* obs = nullptr) noexcept : obs_(obs) {}

  relay_state state() const noexcept { return state_; }
  bool ending() const noexcept { return state_ >= relay_state::ending; }
  bool has_server() const noexcept {
    return attached_ && !ending();
  }
  end_reason reason() const noexcept { return reason_; }

  // --- main state ---
  void logged_in() noexcept;
  // The client sent something that needs a server. True: the session must acquire one (the
  // state is `waiting`); false: a server is attached already (or the session is ending). A
  // release due after a write in flight is called off: the client goes on with its server.
  bool needs_server() noexcept;
  // A server was attached (`for_login`: during login, only to learn its parameters).
  void attached(bool for_login) noexcept;
  // The acquisition failed or was given up (the session ends or the client left).
  void attach_failed() noexcept;

  // The server is between requests. Returns what to do with it now.
  enum class release_action : std::uint8_t { keep, release_now, release_after_write };
  release_action between_requests(bool may_release) noexcept;
  // The server connection was detached (released to the pool or dropped at login's end).
  void detached() noexcept;

  // Writes to the server: while one is in flight the server cannot be handed to another client.
  void server_write_started() noexcept { server_writing_ = true; }
  // True when a release was waiting for this write: the caller releases the server now.
  bool server_write_finished() noexcept;
  bool server_writing() const noexcept { return server_writing_; }

  // Ends the session; false when it was ending already (the first reason counts).
  bool end(end_reason r) noexcept;
  void finishing() noexcept { set_state(relay_state::closing); }
  void closed() noexcept { set_state(relay_state::closed); }

  // --- client direction ---
  enum class client_input : std::uint8_t { messages, skip_to_sync, copy_stream };
  client_input client_side() const noexcept {
    return client_left_ > 0 ? client_input::copy_stream : skipping_ ? client_input::skip_to_sync : client_input::messages;
  }
  // An error the proxy answered itself in an extended-protocol batch: skip until Sync.
  void skip_to_sync() noexcept { skipping_ = true; }
  bool skipping() const noexcept { return skipping_; }
  // A Sync arrived: the skipping stops.
  void sync_seen() noexcept { skipping_ = false; }
  // The rest of a large CopyData (`left` bytes) is streamed through as it arrives.
  void client_stream(std::size_t left) noexcept;
  // `n` bytes of the streamed message passed; returns how many of them belonged to it.
  std::size_t client_streamed(std::size_t n) noexcept;
  std::size_t client_stream_left() const noexcept { return client_left_; }

  // --- server direction ---
  void server_stream(std::size_t left, bool forward) noexcept;
  std::size_t server_streamed(std::size_t n) noexcept;
  std::size_t server_stream_left() const noexcept { return server_left_; }
  bool server_stream_forwarded() const noexcept { return server_forward_; }
  // The server sent FATAL: its closing the connection needs no second error for the client.
  void server_fatal_seen() noexcept { server_fatal_ = true; }
  bool server_fatal() const noexcept { return server_fatal_; }

  // Nothing of a message is half-way through either direction.
  bool streams_idle() const noexcept { return client_left_ == 0 && server_left_ == 0; }

  // --- pinning (transaction pooling) ---
  // True when this call pinned the session (it was not pinned before).
  bool pin() noexcept;
  bool pinned() const noexcept { return pinned_; }

 private:
  void set_state(relay_state s) noexcept;

  observer* obs_;
  relay_state state_ = relay_state::login;
  end_reason reason_ = end_reason::client_closed;
  bool attached_ = false;
  bool server_writing_ = false;
  bool pinned_ = false;
  bool server_fatal_ = false;
  bool server_forward_ = true;
  bool skipping_ = false;
  std::size_t client_left_ = 0;
  std::size_t server_left_ = 0;
};

}  // namespace pgsluice::proxy

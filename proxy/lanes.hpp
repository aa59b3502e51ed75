// Internal to proxy/: pipelined statements — autocommit statements of different clients queued back to back on one server connection.
//
// With pipeline_depth > 0 a client's batch that is one autocommit statement (a simple Query,
// or Parse/Bind/Describe/Execute/Sync of one statement; pipelinable() says which texts) does
// not take a server of its own: it joins a *lane*, a server connection of the pool held by the
// worker, behind the statements of other clients already sent there. PostgreSQL runs them one
// after the other, each closed by its own Query or Sync, so an error in one ends at its
// ReadyForQuery and never touches the next; every reply goes to the client whose statement is
// at the head of the lane, in order. The server reads several statements per receive and
// needs no wake-up between them; the proxy writes several clients' statements in one send.
//
// A client has at most one statement in a lane; anything else it sends waits for that reply,
// then goes the ordinary way (transaction pooling). A lane takes new statements while fewer
// than pipeline_depth are queued on it; a new lane opens (an idle server of the pool) when
// every lane is that full, and an idle lane gives its server back at the next janitor tick.
//
// Cancel: a CancelRequest reaches PostgreSQL as a signal to whatever statement runs when it
// arrives. So a lane with a cancel wanted takes no more statements, the cancel is sent only
// once the client's statement is at the head, and the replies of the statements queued behind
// it are kept until complete: one that the signal hit instead ("canceling statement due to
// user request") is run again, unseen, behind the others. A lane whose cancel may still be
// pending in the server (none of its statements was cancelled) closes its server at the end.
//
// A client slower than the lane's server (its socket full) holds the lane until it has taken its
// replies: the lane reads the server no further meanwhile, so nothing piles up in pgsluice.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <vector>

#include "proxy/asio.hpp"
#include "proxy/buffer.hpp"
#include "proxy/prepared.hpp"

namespace pgsluice::proxy {

class client_session;
class pool;
class server_connection;
class worker;
class lane_set;

struct lane_entry {
  std::shared_ptr<client_session> client;  // null: the lane's own query (settings), replies swallowed
  std::vector<std::uint8_t> request;       // the client's messages as sent (run again after a stray cancel)
  statement_ptr stmt;                      // the client's prepared statement it binds, if any
  bool injected = false;                   // it was prepared on the server for this entry
  std::uint16_t swallow = 0;               // replies to injected Close/Parse messages ahead of the client's
  bool cancel_wanted = false;
  bool cancel_sent = false;
  bool held = false;   // queued behind a cancel: its reply is kept until complete
  bool rerun = false;  // a cancel meant for another statement hit this one
  bool failed_internal = false;
  std::vector<std::uint8_t> kept;
};

class lane : public std::enable_shared_from_this<lane> {
 public:
  lane(worker& w, lane_set& set, std::shared_ptr<pool> p, std::size_t settings, std::shared_ptr<server_connection> s);
  ~lane();
  lane(const lane&) = delete;
  lane& operator=(const lane&) = delete;

  server_connection& server() noexcept { return *server_; }
  const pool* owner() const noexcept { return pool_.get(); }
  std::size_t settings() const noexcept { return settings_; }
  std::size_t queued() const noexcept { return entries_.size(); }
  bool accepting() const noexcept { return !closed_ && !broken_; }

  // Where the next entry's messages are appended (then push()).
  gather_list& out() noexcept { return out_; }
  // Queues an entry whose messages are in out(); they are written once the event loop has run
  // the other clients' reads that are ready (one send for all of them).
  void push(lane_entry e);
  // A client of this lane asked to cancel its statement.
  void request_cancel(const client_session* c);
  // Starts the lane's reader.
  void start();
  // Janitor: an idle lane (nothing queued since the last tick) gives its server back; true when
  // the lane is done and may be dropped.
  bool tick(bool shutting_down);

 private:
  awaitable<void> read_loop();
  awaitable<void> write_rest();
  void flush();
  // Routes the complete messages of `data` to their clients; returns the bytes used.
  std::size_t dispatch(std::span<const std::uint8_t> data);
  // The head entry's ReadyForQuery arrived.
  void finish_head(char status);
  void deliver_head();
  // Writes to_client_ to `c`; a client whose socket is full is flushed before the next read.
  void send_to(const std::shared_ptr<client_session>& c);
  void maybe_send_cancel();
  // The server failed (or left the protocol's path): every queued client gets an error.
  void fail_all(const char* why);
  void finish();

  worker& worker_;
  lane_set& set_;
  std::shared_ptr<pool> pool_;
  std::size_t settings_;
  std::shared_ptr<server_connection> server_;
  std::deque<lane_entry> entries_;
  byte_buffer rbuf_;
  gather_list out_;
  gather_list to_client_;  // the head client's replies of the read being dispatched
  std::vector<std::uint8_t> tail_;
  bool flush_posted_ = false;
  bool writing_ = false;
  bool closed_ = false;       // takes no new statements (a cancel is wanted or was sent)
  std::uint32_t cancels_out_ = 0;  // cancels sent whose error has not been seen yet
  std::size_t need_ = 0;           // bytes of the message the buffer ends in the middle of
  bool finish_after_write_ = false;
  // Clients whose replies did not fit their sockets: the lane reads on once they took them.
  std::vector<std::shared_ptr<client_session>> flushing_;
  bool broken_ = false;
  bool retiring_ = false;
  bool reading_ = false;
  bool done_ = false;
  bool used_since_tick_ = true;
};

// A worker's lanes (its thread only).
class lane_set {
 public:
  explicit lane_set(worker& w) : worker_(w) {}
  ~lane_set();
  // The lane for a statement of a client of `p` with settings hash `settings`: the least busy
  // one taking statements with fewer than `depth` queued, else a new one on an idle server of
  // the pool. Null: none now (the statement goes the ordinary way).
  lane* pick(const std::shared_ptr<pool>& p, std::size_t settings, std::uint32_t depth);
  // A new lane on server `s`, taken from `p` for it.
  lane* adopt(const std::shared_ptr<pool>& p, std::size_t settings, std::shared_ptr<server_connection> s);
  // Janitor tick: idle lanes give their servers back (all of them when shutting down).
  void tick(bool shutting_down);
  // Whether a lane of `p` for `settings` takes statements (it may be full now).
  bool has_open_lane(const pool* p, std::size_t settings) const;
  // Clients waiting for room in a lane of `p`: woken (their timer cancelled) when a statement of
  // one ends, all of them when a lane closes.
  void add_waiter(const pool* p, std::size_t settings, asio::steady_timer* t, bool first) {
    waiters_.insert(first ? waiters_.begin() : waiters_.end(), waiter{p, settings, t});
  }
  bool has_waiters(const pool* p, std::size_t settings) const;
  void remove_waiter(asio::steady_timer* t);
  // One waiter of `p` with `settings` (a statement ended there), or all of `p` (a lane closed).
  void wake(const pool* p, std::size_t settings, bool all);
  std::size_t size() const noexcept { return lanes_.size(); }

 private:
  worker& worker_;
  std::vector<std::shared_ptr<lane>> lanes_;
  struct waiter {
    const pool* p;
    std::size_t settings;
    asio::steady_timer* timer;
  };
  std::vector<waiter> waiters_;
};

}  // namespace pgsluice::proxy

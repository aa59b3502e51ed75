// Internal to proxy/: one client connection — startup, authentication, then the relay to pooled server connections.
//
// A session is two coroutines on its worker's thread:
//  - the client pump reads the client, frames each batch once, takes a server from the
//    cluster's chosen backend pool when a message needs one, rewrites what transaction pooling
//    requires (named prepared statements, session settings, the unnamed statement) and writes
//    the batch to the server in one gather write;
//  - the server pump (running only while a server is attached) reads the attached server, matches replies to requests
//    (response_tracker), swallows replies to the proxy's own messages, inserts synthesized ones,
//    writes each batch to the client, and in transaction mode hands the server back to the pool
//    at ReadyForQuery 'I' when nothing is outstanding.
// What both pumps share about the session's progress is one relay_machine (relay_machine.hpp):
// its state, the framing sub-states of both directions, pinning. Everything written to the
// client socket goes through write_client_now() / flush_client(). Everything ends in
// end(reason): the reason (client side or server side) decides whether the server connection
// returns to the pool (session_rules.hpp).
//
// Files: client_session.cpp (lifecycle, timeouts, ending, the client writer), client_login.cpp
// (startup, authentication, cancel requests), relay.cpp (the two pumps), session_server.cpp
// (choosing a backend, attaching and releasing a server, its settings), session_statements.cpp
// (prepared and unnamed statements in transaction pooling), session_routing.cpp (read/write
// routing).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "conf/config.hpp"
#include "protocol/scram.hpp"
#include "proxy/asio.hpp"
#include "proxy/buffer.hpp"
#include "proxy/cluster.hpp"
#include "proxy/metrics.hpp"
#include "proxy/params.hpp"
#include "proxy/pipeline.hpp"
#include "proxy/pool.hpp"
#include "proxy/prepared.hpp"
#include "proxy/relay_machine.hpp"
#include "proxy/server_connection.hpp"
#include "proxy/session_parts.hpp"
#include "proxy/session_rules.hpp"

namespace pgsluice::proxy {

class worker;
class runtime;
class pool;
class cluster;
class tls_channel;
class tls_contexts;
class lane;

class client_session : public std::enable_shared_from_this<client_session>,
                       private response_tracker::hooks,
                       private relay_machine::observer {
 public:
  using clock = std::chrono::steady_clock;

  client_session(worker& w, tcp::socket socket);
  ~client_session() override;
  client_session(const client_session&) = delete;
  client_session& operator=(const client_session&) = delete;

  // Spawns the session's coroutine on its worker.
  void start();

  const std::string& name() const noexcept { return name_; }  // "c42", in every log line
  client_state state() const noexcept { return gauge_of(machine_.state()); }

  // Called by the worker's janitor (same thread): login, idle and idle-in-transaction timeouts,
  // and closing idle sessions during shutdown.
  void check_timeouts(clock::time_point now, const conf::config& cfg, bool shutting_down);
  // Ends the session now (shutdown grace period over).
  void terminate();

  // The server connection running this client's query right now, for a CancelRequest (any thread).
  struct cancel_target {
    stream_endpoint server;
    std::int32_t pid = 0;
    std::int32_t secret = 0;
  };
  std::optional<cancel_target> current_cancel_target();
  // A CancelRequest for a statement this session has in a lane (lanes.hpp): handed to the lane
  // on the session's own thread, which sends it when it may. False: no such statement.
  bool cancel_in_lane();

  // --- the admin console (admin_session.cpp) ---
  // What SHOW CLIENTS / SERVERS / POOLS show of this session and of the server it holds; read
  // on the session's own worker thread.
  struct admin_view {
    std::string name;              // c42
    std::string user;
    std::string database;
    std::string cluster;           // "database/user" (the pool row it counts in)
    std::string state;             // "active" or "waiting" (PgBouncer's client lists)
    tcp::endpoint remote;
    tcp::endpoint local;
    clock::time_point connected{};
    clock::time_point last_request{};
    clock::duration waited{};      // queued for a server so far
    std::string application_name;
    bool console = false;
    // The server attached, if any.
    bool has_server = false;
    std::string server_name;
    std::string server_user;
    std::uint64_t server_id = 0;
    stream_endpoint server_remote;
    stream_endpoint server_local;
    clock::time_point server_connected{};
    clock::time_point server_used{};
    std::int32_t backend_pid = 0;
    bool server_close_needed = false;
  };
  // nullopt while logging in or ending (PgBouncer lists those elsewhere or not at all).
  std::optional<admin_view> view_for_admin(clock::time_point now) const;
  bool is_console() const noexcept { return console_; }
  const std::string& database() const noexcept { return startup_.database; }
  // KILL: the session ends now with PgBouncer's "database removed".
  void kill();

  // Intrusive list of the worker's sessions.
  client_session* next_ = nullptr;
  client_session* prev_ = nullptr;
  bool listed_ = false;

 private:
  // --- lifecycle (client_session.cpp) ---
  // Login, then the relay in a coroutine of its own (relay_session): the login's frame goes.
  awaitable<void> run();
  // The client pump, then the ending; or, when the client pump parked (below), nothing more
  // until the client's next bytes start it again.
  awaitable<void> relay_session();
  // Runs `fn` as the session's coroutine on its worker; an exception ends the connection.
  void spawn(awaitable<void> (client_session::*fn)());
  // An idle client (a second without a message, no server, nothing under way) keeps no
  // coroutine: check_timeouts cancels the client pump's read, the pump returns, and a wait for
  // the socket to be readable (no buffer, no frame) starts relay_session again.
  void park();
  bool may_park(clock::time_point now) const noexcept;
  void state_changed(relay_state from, relay_state to) noexcept override;

  // --- the admin console (admin_session.cpp, admin_show.cpp) ---
  awaitable<bool> console_login();
  awaitable<void> console_loop();
  // Runs one console statement, appending the whole reply to `out`.
  awaitable<void> console_execute(std::string_view query, std::vector<std::uint8_t>& out);
  awaitable<bool> console_show(std::string_view what, std::vector<std::uint8_t>& out);
  // Every session of every worker, seen from its own thread.
  awaitable<std::vector<admin_view>> gather_sessions();
  // Waits, as a queued client, while PAUSE holds this session's database; false when the
  // session ended meanwhile.
  awaitable<bool> wait_while_paused();
  // After a reload retired this session's cluster: the cluster of the new config, at a
  // transaction boundary (no server attached). False (session ended) when the database is gone.
  bool refresh_cluster();

  // --- login (client_login.cpp) ---
  awaitable<bool> login();
  awaitable<bool> authenticate(const conf::config& cfg, const conf::user_config* user,
                               const std::optional<std::string>& fetched_secret);
  awaitable<std::optional<std::string>> run_auth_query(const conf::config& cfg, const conf::database_config* db);
  awaitable<void> forward_cancel(std::int32_t pid, std::int32_t secret);
  // Reads one message during login (startup packet when `startup`); nullopt on EOF/error/invalid.
  struct login_message {
    char tag = 0;
    std::uint32_t code = 0;  // startup kinds
    int kind = 0;            // protocol::frame_kind as int
    std::vector<std::uint8_t> body;
    std::size_t size = 0;
  };
  awaitable<std::optional<login_message>> read_login_message(bool startup);
  awaitable<bool> send_bytes(const std::vector<std::uint8_t>& bytes);

  // --- TLS towards the client (client_tls.cpp) ---
  // Answers an SSLRequest or GSSENCRequest ('S' and the handshake when TLS is on, else 'N');
  // false when the session ended (unencrypted bytes after the request, a repeated request, a
  // failed or stalled handshake).
  awaitable<bool> answer_encryption_request(bool ssl);
  // After the startup packet: plaintext refused where client_tls_mode requires TLS, the client
  // certificate's CN checked against the user (verify-full). False when the session ended.
  bool tls_allows_login();
  // SCRAM-SHA-256-PLUS's binding data, when the client speaks TLS and the certificate has one.
  std::optional<protocol::scram_channel_binding> channel_binding() const;
  int write_client_tls_now(gather_list& g);

  // --- relay (relay.cpp) ---
  // One complete client message of the batch being processed: framed once, read by every pass.
  struct client_frame {
    char tag;
    std::uint32_t offset;  // of the tag byte in the batch
    std::uint32_t size;    // tag + length word + body
  };
  awaitable<void> client_pump();
  awaitable<void> server_pump();
  // The client pump's framing of what it read, outside its coroutine frame (relay.cpp).
  struct input_frames {
    std::size_t stream_now = 0;  // bytes that continue a streamed CopyData
    std::size_t framed = 0;      // bytes in complete messages (after stream_now)
    bool want_server = false;
    bool invalid = false;
    int bad_type = -1;  // PostgreSQL judges the type byte before the length that follows it
  };
  input_frames frame_input(std::span<const std::uint8_t> data);
  // What of `data` after `framed` starts a large CopyData to stream; returns the bytes used.
  std::size_t start_copy_stream(std::span<const std::uint8_t> data, std::size_t framed);
  // Polls (1 ms) until the server's replies are all in, or (`released`) the server is gone.
  awaitable<void> wait_server_idle(bool released);
  // The server pump runs while a server is attached, and between the transactions of a busy
  // client: started by on_attached, it returns once the server went back to the pool, unless
  // it was started less than 100 ms after the previous one; then it waits for the next server
  // (no coroutine started per transaction) until the client has been idle for a second
  // (check_timeouts retires it). An idle client keeps no coroutine reading a server, nor its
  // frame. Wakes the pump instead when it still runs.
  void start_server_pump();
  // Takes a server from the pool the cluster chooses (waiting up to query_wait_timeout).
  // `for_login`: only to learn the server's parameters; settings are applied once login is done.
  awaitable<bool> attach_server(bool for_login = false);
  // The common case without a coroutine: an idle server is there for the taking.
  bool attach_now();
  // The pool of the backend the next transaction (or the session) goes to, for what it needs
  // (route_of_batch / the session's target_session_attrs). False: none now; `wait` set when
  // read-your-writes asks to wait for a replica, else the session ended with an error.
  bool choose_pool(bool* wait = nullptr);
  // Waits until the cluster has a primary again (any_change: until any backend's status
  // changes), or the hold's deadline: a wake-up from the health checks, not polling.
  awaitable<void> wait_for_primary(bool any_change);
  // --- read/write routing (a cluster with replicas) ---
  // What the batch about to start a transaction needs, from its statements and the hints.
  router::route_request route_of_batch(std::span<const std::uint8_t> data);
  const router::statement_class& class_of(std::span<const std::uint8_t> data, std::size_t frame, std::string_view text);
  // Answers SET/SHOW of pgsluice's own settings, a plain BEGIN held until its first statement,
  // and an empty held transaction's end: 1 when the whole batch was answered, 2 when it must wait
  // for replies still due from the server, 0 when it is not one of those.
  int answer_routing_statement(std::span<const std::uint8_t> data);
  // Transaction pooling: a plain BEGIN (START TRANSACTION, READ ONLY or not) answered here and
  // sent with the transaction's first statement, and the COMMIT or ROLLBACK of a transaction
  // that had none answered too: 1 answered. `words`: the statement's bare_words.
  int hold_begin(std::span<const std::uint8_t> data, std::string_view words);
  // The same without routing (no statement classes): true when the batch was answered.
  bool answer_held_begin(std::span<const std::uint8_t> data);
  // After a transaction that wrote: the WAL position, read behind it on the same server.
  bool capture_write_lsn();
  awaitable<bool> send_capture();
  // Writes the batch in to_server_ to the attached server (the rest asynchronously when its
  // socket does not take it all). False: the pump must stop now (the session is ending).
  awaitable<bool> send_batch();
  // --- in-flight read retry (session_retry.cpp) ---
  // A batch that starts a read-only transaction is kept until a byte of its reply reaches the
  // client; if its server fails before, the batch runs again on another backend, unseen.
  void arm_read_retry(std::span<const std::uint8_t> batch, const std::vector<std::uint8_t>& begin);
  void disarm_read_retry() noexcept { retry_batch_.clear(); }
  bool read_retry_armed() const noexcept { return !retry_batch_.empty(); }
  // Whether the failure seen now may be retried (the client pump is waiting on its client,
  // nothing is being written or streamed, retries left).
  bool read_retry_possible() const noexcept;
  // Drops the failed server, attaches another backend's and sends the batch again. False: the
  // session ended.
  awaitable<bool> retry_read(std::string_view why);
  // Applies pgsluice.* startup options and target_session_attrs; false (session ended) on a bad value.
  bool take_routing_options();
  void on_attached(std::shared_ptr<server_connection> s, bool for_login);
  // Brings the attached server's session settings in line with what this client was told and
  // asked for (`restore`: after the client reset them, back to its startup values), as an
  // internal query in the batch being built.
  void sync_settings(bool restore);
  // Processes the framed client messages; false when the session must end (reason set).
  bool process_client(std::span<const std::uint8_t> data);
  // Answers, without a server, a batch made only of Parse of statements this cluster already
  // accepted, Close of statements, Flush and Sync (libpq's PQprepare between transactions):
  // taking a server for it could block a client that prepares synchronously while others
  // it waits for hold every server. Returns false (nothing done) for any other batch.
  bool try_answer_locally(std::span<const std::uint8_t> data);
  // Prepares `stmt` on the attached server if it lacks it (injected Parse, reply swallowed).
  void ensure_prepared(const statement_ptr& stmt);
  // Sends the statement's Parse (after Closes of statements it evicts) and records `parse_entry`.
  void send_parse(const statement_ptr& stmt, expectation parse_entry);
  // Transaction mode: the unnamed statement a Bind/Describe refers to is this client's own on
  // whatever server runs it, as on a direct connection where it lives until the next Parse of
  // the unnamed statement or the next simple Query.
  void ensure_unnamed();
  std::size_t process_server(std::span<const std::uint8_t> data);
  // An ErrorResponse for the client: the server's, with the client's statement names where
  // the server quoted the proxy's internal ones.
  void forward_error(const std::uint8_t* raw, std::size_t size, std::span<const std::uint8_t> body, gather_list& to);
  // --- pipelined statements (session_lanes.cpp, lanes.hpp) ---
  friend class lane;
  // The framed batch as one autocommit statement a lane can take, or nullopt (the ordinary way).
  struct pipeline_batch {
    const client_frame* parse = nullptr;
    const client_frame* bind = nullptr;
    const client_frame* describe = nullptr;
    statement_ptr named;  // the client's prepared statement it runs
  };
  std::optional<pipeline_batch> pipeline_shape(std::span<const std::uint8_t> data);
  // A lane with room now, or null; wait_for_lane(): a new lane on a server waited for (null:
  // the session ended, with the error when there was one).
  lane* pick_lane();
  awaitable<lane*> wait_for_lane();
  // Queues the batch on the lane.
  void enqueue_in_lane(lane& l, std::span<const std::uint8_t> data, const pipeline_batch& pb);
  // The client pump's entry: 1 the batch was queued (on `into` when given, else on a lane with
  // room), 0 it goes the ordinary way, 2 it waits for a lane (wait_for_lane, then again with it).
  int try_pipeline(std::span<const std::uint8_t> data, lane* into = nullptr);
  // Until the statement in a lane has its reply.
  awaitable<void> wait_lane();
  // The lane's side: replies for the client, the statement done, the lane's server lost.
  // True: the socket did not take it all; the caller must await flush_client().
  bool lane_reply(gather_list& g);
  void lane_error(const std::uint8_t* raw, std::size_t size, std::span<const std::uint8_t> body, gather_list& to);
  void lane_done();
  void lane_failed();
  bool releasable() const noexcept;
  void release_server();
  // SHOW STATS counters: a Query or Sync relayed; a ReadyForQuery from the server.
  void note_query() noexcept;
  void note_ready(bool transaction_ended) noexcept;
  void pin(std::string_view why);
  // The one way to the client socket. Sends `g` without waiting when the socket takes it all
  // (the common case): 1 done (or queued behind a write under way), -1 failed, 0 the rest was
  // copied to client_flushing_ and flush_client() must be awaited.
  int write_client_now(gather_list& g);
  awaitable<bool> flush_client();
  // write_client_now, then flush_client when needed; ends the session on failure.
  awaitable<bool> write_client(gather_list& g);
  awaitable<void> wait_signal();
  void signal() noexcept;
  void finish_internal_query();
  void restore_reset_parameters(std::string_view sql);
  void update_settings_hash();

  // response_tracker::hooks
  void emit(std::span<const std::uint8_t> message) override;
  void rollback(const expectation& e) override;
  void completed(const expectation& e) override;

  // --- ending (client_session.cpp) ---
  void end(end_reason r) noexcept;
  void fail(end_reason r, std::string_view sqlstate, std::string_view message, std::string_view severity = "FATAL");
  void fail_with(end_reason r, const server_error& e);
  awaitable<void> finish();
  void set_cancel_target(server_connection* s);

  worker& worker_;
  runtime& rt_;
  std::uint64_t id_;
  std::string name_;
  tcp::socket socket_;
  // TLS: the contexts of the config the session started with; the channel once the handshake
  // succeeded (null: plaintext, the relay's plain path). ssl_done_/gss_done_: the requests
  // already answered, as PostgreSQL's ProcessStartupPacket tracks them.
  std::shared_ptr<const tls_contexts> tls_ctx_;
  std::unique_ptr<tls_channel> tls_;
  std::vector<std::uint8_t> tls_scratch_;
  bool ssl_done_ = false;
  bool gss_done_ = false;
  std::string peer_;                         // the client's address, for the log
  clock::time_point accepted_ = clock::now();
  std::string final_sqlstate_;               // of the error the session ended with, for the log
  relay_machine machine_{this};

  // Login results.
  std::shared_ptr<const conf::config> cfg_;
  client_startup startup_;
  std::shared_ptr<cluster> cluster_;
  std::shared_ptr<pool> pool_;  // the chosen backend's pool (the attached server's, when one is)
  cluster::backend* chosen_ = nullptr;  // its backend record
  bool chosen_now_ = false;             // attach_now() chose it for the attach under way
  // No primary (failover under way): since when this transaction waits for one
  // (failover_hold_timeout), and whether the last choice asked to wait for it.
  std::optional<std::chrono::steady_clock::time_point> held_since_;
  bool hold_ = false;
  cluster::backend* counted_backend_ = nullptr;  // counted in that backend's `active` while a server is attached
  bool counted_ = false;        // counted in runtime::client_count
  bool console_ = false;        // logged in to the admin console
  bool console_admin_ = false;  // an admin user there (else a stats user: SHOW only)
  database_stats* dbstats_ = nullptr;  // the database's counters (owned by runtime::db_stats)
  clock::time_point connected_ = clock::now();
  clock::time_point wait_since_{};     // entered `waiting`
  clock::time_point query_start_{};    // the oldest query without its ReadyForQuery yet
  clock::time_point xact_start_{};     // the transaction under way began
  boxed<protocol::scram_client_keys> scram_keys_;
  std::int32_t cancel_pid_ = 0;
  std::int32_t cancel_secret_ = 0;
  clock::time_point login_deadline_{};
  clock::time_point last_activity_ = clock::now();

  // Relay.
  bool transaction_mode_ = false;
  std::uint8_t pipeline_depth_ = 0;  // the database's pipeline_depth (lanes.hpp)
  bool rewrite_statements_ = false;  // transaction mode with max_prepared_statements > 0
  std::size_t max_message_size_ = 0;
  shared_parameter_set view_;        // ParameterStatus values the client has been told
  std::size_t settings_hash_ = 1;    // of view_'s tracked parameters and startup_.settings
  // What the attached server still needs of the client's settings before its next statement.
  enum class settings_due : std::uint8_t {
    none,
    sync,     // a server kept from login: the client's settings go with its first query
    restore,  // the client reset its session (DISCARD ALL, RESET ALL): its startup values again
  };
  settings_due settings_due_ = settings_due::none;
  client_statements statements_;
  std::vector<std::pair<std::string, statement_ptr>> deferred_parses_;  // session mode, before a server is attached
  std::vector<std::uint8_t> unnamed_parse_;  // transaction mode: the client's last Parse of the unnamed statement
  bool has_unnamed_ = false;
  // Routing.
  bool routing_ = false;                                 // the cluster routes reads: statements are classified
  router::route_request route_;                          // what the next transaction (session mode: the session) needs
  router::route_hint session_route_ = router::route_hint::automatic;  // SET pgsluice.route, startup option
  std::optional<router::route_hint> local_route_;        // SET LOCAL pgsluice.route: until the transaction ends
  bool session_read_only_ = false;                       // default_transaction_read_only asked at login
  conf::target_session_attrs session_attrs_ = conf::target_session_attrs::any;
  router::need session_need_ = router::need::write;      // what target_session_attrs asks of every transaction
  router::route_hint session_force_ = router::route_hint::automatic;
  std::uint64_t last_write_lsn_ = 0;                     // at or after the client's last write's commit
  std::uint64_t min_lsn_ = 0;                            // SET pgsluice.min_lsn (passed back by the application)
  bool txn_wrote_ = false;                               // the transaction under way wrote: its position is due
  bool capture_due_ = false;
  const std::vector<std::uint8_t>* capture_bytes_ = nullptr;  // the position query, to be written
  std::vector<std::uint8_t> held_ready_;                 // the client's ReadyForQuery, until the position is known
  std::uint8_t unnamed_flags_ = 0;                       // statement_flags of the client's unnamed statement
  std::vector<std::uint8_t> held_begin_;                 // a plain BEGIN, sent with the statement that follows it
  bool held_begin_read_only_ = false;                    // it was BEGIN READ ONLY: the transaction reads
  // In-flight read retry: the batch (and its held BEGIN) while nothing of its reply reached the
  // client; the backend being avoided while choosing again.
  std::vector<std::uint8_t> retry_batch_;
  std::vector<std::uint8_t> retry_begin_;
  cluster::backend* retry_avoid_ = nullptr;
  std::uint8_t retries_ = 0;      // of the batch kept
  bool retrying_ = false;         // the server pump is running it again: the client pump waits
  bool retry_on_close_ = false;   // the server said it is shutting down (57P0x), withheld from the client
  bool client_reading_ = false;   // the client pump waits for its client (nothing half-done)
  bool park_due_ = false;         // check_timeouts cancelled that read to park the session
  bool parked_ = false;           // the client pump returned to park (relay_session)
  std::uint16_t retry_prelude_sent_ = 0;  // prelude messages of the kept read the client has
  std::uint16_t retry_prelude_skip_ = 0;  // of the run again: not sent a second time
  std::size_t retry_prelude_bytes_ = 0;   // of the server read being processed
  router::statement_class class_;                        // class_of's last answer: frame class_frame_ of batch class_batch_
  std::size_t class_frame_ = ~std::size_t{0};
  const std::uint8_t* class_batch_ = nullptr;
  std::shared_ptr<server_connection> server_;
  response_tracker tracker_;
  boxed<server_error> internal_error_;  // the proxy's own query on the server failed
  std::vector<client_frame> frames_;
  byte_buffer cbuf_;
  byte_buffer sbuf_;
  gather_list to_server_;
  gather_list to_client_;
  gather_list* emit_target_ = nullptr;  // where emit() appends: the server pump's batch or the client pump's
  gather_list client_emit_;
  bool client_writing_ = false;         // a write to the client is under way (flush_client)
  std::vector<std::uint8_t> client_pending_;
  std::vector<std::uint8_t> client_flushing_;
  std::vector<std::uint8_t> server_tail_;  // what the server's socket did not take at once
  lazy_timer signal_;  // made on the first wait: a client that never parks its server pump has none
  lazy_timer done_signal_;
  lazy_timer write_done_;  // the server pump finished a write the client pump waits out
  bool server_pump_running_ = false;  // set by start_server_pump, cleared when server_pump returns
  bool server_pump_parked_ = false;   // waiting for the next server, none attached
  bool server_pump_retire_ = false;   // the client went idle: the parked pump returns
  bool server_pump_hot_ = false;      // started moments after the last one: it parks, not returns
  clock::time_point server_pump_started_{};

  wait_handle wait_;  // interrupts a wait for a server when the session ends
  std::vector<std::uint8_t> final_message_;

  lane* lane_ = nullptr;             // the lane running this client's statement
  std::atomic<bool> in_lane_{false};  // lane_ != nullptr, for a CancelRequest on another thread
  tiny_lock cancel_mu_;
  std::shared_ptr<const server_connection::cancel_key> cancel_target_;  // the server's, shared
};

}  // namespace pgsluice::proxy

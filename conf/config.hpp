// The immutable pgsluice configuration: plain types the proxy, router and bench read, and the loader that builds it.
//
// A config is loaded once into a std::shared_ptr<const config>; a reload builds a
// new one and the proxy swaps the pointer, so nothing here is ever mutated after
// load_config() returns. This header deliberately carries no toml++ (the parser
// lives in config.cpp), so including it is cheap everywhere.
//
// Defaults are the member initialisers below and nowhere else: the loader starts
// from a default-constructed config, and describe_settings() renders the same
// values for `pgsluice check --defaults` and the example config.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace pgsluice::conf {

using duration = std::chrono::milliseconds;

// session: a client keeps its server connection until it disconnects.
// transaction: the server goes back to the pool at ReadyForQuery 'I'.
// The default is session, as in PgBouncer, because it is the mode any client
// works with unchanged.
enum class pool_mode { session, transaction };

// How clients authenticate to pgsluice (the server side always answers whatever
// the server asks for). https://www.postgresql.org/docs/15/auth-password.html
enum class auth_type { trust, md5, scram_sha_256 };

// What a configured password string holds, detected the way PostgreSQL's
// get_password_type() does: "md5" + 32 hex digits is an MD5 hash,
// "SCRAM-SHA-256$..." a SCRAM verifier, anything else plaintext.
enum class secret_kind { none, plaintext, md5, scram_sha_256 };

// primary: takes writes. replica: read-only standby. automatic: ask the server
// (pg_is_in_recovery()) and follow promotions; resolved by the router.
enum class backend_role { primary, replica, automatic };

// TLS modes named as libpq's sslmode values.
// https://www.postgresql.org/docs/15/libpq-ssl.html#LIBPQ-SSL-PROTECTION
enum class tls_mode { disable, allow, prefer, require, verify_ca, verify_full };

// How reads are spread over a database's replicas (weights apply to each): smooth weighted
// round robin, fewest active connections per weight, or weighted random.
enum class load_balance { round_robin, least_connections, random };

// When the primary serves reads: never (they wait or fail), as a fallback when no replica may,
// or always (as one more candidate with its own weight).
enum class primary_reads { never, fallback, always };

// What a client's reads see of its own writes: read_your_writes (a replica only once it has
// replayed the client's last commit), primary_after_write (the primary for
// primary_after_write_for after a write), eventual (any replica within max_replica_lag).
enum class consistency { read_your_writes, primary_after_write, eventual };

// libpq's target_session_attrs, choosing a backend at login in session mode.
// https://www.postgresql.org/docs/15/libpq-connect.html#LIBPQ-CONNECT-TARGET-SESSION-ATTRS
enum class target_session_attrs { any, read_write, read_only, primary, standby, prefer_standby };

// What pgsluice does when the primary fails: off (configured roles stand), follow (roles as the
// servers report them: a promotion done by others is followed), promote (follow, and promote
// the most advanced replica once the primary has been down for failover_after).
enum class failover_mode { off, follow, promote };

enum class log_level { trace, debug, info, warning, error, off };
enum class log_format { text, json };

std::string_view to_string(pool_mode) noexcept;
std::string_view to_string(auth_type) noexcept;      // "trust", "md5", "scram-sha-256"
std::string_view to_string(secret_kind) noexcept;
std::string_view to_string(backend_role) noexcept;   // "primary", "replica", "auto"
std::string_view to_string(tls_mode) noexcept;       // "disable", ..., "verify-full"
std::string_view to_string(load_balance) noexcept;         // "round_robin", "least_connections", "random"
std::string_view to_string(primary_reads) noexcept;        // "never", "fallback", "always"
std::string_view to_string(consistency) noexcept;          // "read_your_writes", ...
std::string_view to_string(target_session_attrs) noexcept; // "any", "read-write", ..., "prefer-standby"
std::string_view to_string(failover_mode) noexcept;        // "off", "follow", "promote"
std::string_view to_string(log_level) noexcept;
std::string_view to_string(log_format) noexcept;

// Same spellings as to_string(); also used by the admin console.
std::optional<pool_mode> parse_pool_mode(std::string_view) noexcept;

// Classifies a stored password as PostgreSQL does (empty -> none).
secret_kind detect_secret_kind(std::string_view secret) noexcept;

// "30s", "500ms", "5m"/"5min", "2h", "1d", "250us" or a bare number of
// milliseconds. Returns nullopt on anything else (negative, overflow, junk).
std::optional<duration> parse_duration(std::string_view) noexcept;
std::string format_duration(duration);   // shortest exact unit: "90s", "2h", "1500ms", "0"

// "64MiB", "64MB" (1024-based, as PostgreSQL's GUC units), "512kB", "1GB", or a
// bare number of bytes.
std::optional<std::uint64_t> parse_size(std::string_view) noexcept;
std::string format_size(std::uint64_t);  // "64MiB", "1000B"

// How far behind the primary a replica may be and still get new reads: WAL bytes not yet
// replayed and replay delay; 0 = that limit is off. TOML: max_replica_lag = "16MB", "2s",
// ["16MB", "2s"] or 0.
struct replica_lag {
  std::uint64_t bytes = 0;
  duration time{0};
  bool operator==(const replica_lag&) const = default;
};

struct listen_endpoint {
  std::string host = "127.0.0.1";   // an address or host name; "0.0.0.0" / "::" for all
  std::uint16_t port = 6432;
  bool operator==(const listen_endpoint&) const = default;
};

// One PostgreSQL server behind a client-facing database.
struct backend_config {
  std::string host;                 // "127.0.0.1", a host name
  std::uint16_t port = 5432;
  backend_role role = backend_role::primary;
  std::uint32_t weight = 1;         // load-balancing weight for reads (0 = never chosen for reads)
  bool operator==(const backend_config&) const = default;
};

// A client-facing database: what clients put in `dbname`, and where it really is.
// TOML: [databases.<name>] with either host/port (one primary) or [[databases.<name>.backends]].
struct database_config {
  std::string name;                 // client-facing name; "*" is the fallback for any other name
  std::string dbname;               // database on the server; empty only for "*" (= the client's name)
  // At least one after loading, exactly one of them the primary (several only when routing is
  // supported; see conf/schema.hpp).
  std::vector<backend_config> backends;
  // Log in to the server as this user (PgBouncer's forced user) instead of as the client's user.
  std::optional<std::string> user;
  std::optional<std::string> password;   // for `user`; otherwise taken from [users.<user>]
  std::optional<std::string> auth_user;  // overrides the global auth_user for this database
  std::optional<conf::pool_mode> pool_mode;
  std::optional<std::uint32_t> pool_size;
  std::optional<std::uint32_t> min_pool_size;
  std::optional<std::uint32_t> reserve_pool_size;
  std::optional<std::uint32_t> max_db_connections;  // 0 = unlimited
  std::optional<std::uint32_t> pipeline_depth;      // 0 = off
  // Read/write routing; unset = the global setting (see routing_settings).
  std::optional<bool> read_write_split;
  std::optional<conf::load_balance> load_balance;
  std::optional<conf::primary_reads> primary_reads;
  std::optional<replica_lag> max_replica_lag;
  std::optional<conf::consistency> consistency;
  std::optional<duration> primary_after_write_for;
  std::optional<duration> read_your_writes_wait;
  std::optional<std::vector<std::string>> write_functions;  // replaces the global list
  std::optional<conf::target_session_attrs> target_session_attrs;

  // The server-side database name for a client that asked for `requested`.
  std::string_view backend_dbname(std::string_view requested) const noexcept {
    return dbname.empty() ? requested : std::string_view(dbname);
  }
  const backend_config* primary() const noexcept;
  bool has_replicas() const noexcept;
};

// A user known to pgsluice. TOML: [users.<name>].
struct user_config {
  std::string name;
  std::string password;             // raw as configured: plaintext, "md5<hex>" or "SCRAM-SHA-256$..."
  secret_kind password_kind = secret_kind::none;
  std::optional<conf::pool_mode> pool_mode;
  std::optional<std::uint32_t> pool_size;
  std::optional<std::uint32_t> max_user_connections;  // server connections over all pools; 0 = unlimited
  std::optional<conf::target_session_attrs> target_session_attrs;  // wins over the database's
};

// Database names of the admin console (PgBouncer's is "pgbouncer"; both are accepted), reserved.
inline constexpr std::array<std::string_view, 2> admin_databases{"pgsluice", "pgbouncer"};
inline bool is_admin_database(std::string_view name) noexcept {
  return name == admin_databases[0] || name == admin_databases[1];
}

// Who may use the admin console (database "pgsluice" or "pgbouncer" on the listen port), and
// the window of its per-database averages.
struct admin_config {
  std::vector<std::string> admin_users;   // every command
  std::vector<std::string> stats_users;   // read-only SHOW commands
  duration stats_period = std::chrono::seconds{60};  // SHOW STATS averages cover the last period
};

// The Prometheus endpoint: plain HTTP, GET of `path` answers the text exposition format.
struct metrics_config {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;           // 0 = no /metrics endpoint
  std::string path = "/metrics";
};

// TLS towards clients and servers (proxy/tls.hpp). Modes have libpq's meanings; towards
// clients: disable answers SSLRequest 'N', allow/prefer use TLS when asked, require refuses
// plaintext logins, verify-ca/verify-full also require a client certificate signed by
// client_tls_ca_file (verify-full: its CN must be the user name). Relative paths are relative
// to the config file's directory. Files are read at start and on each reload.
struct tls_config {
  tls_mode client_tls_mode = tls_mode::disable;
  std::filesystem::path client_tls_cert_file;
  std::filesystem::path client_tls_key_file;
  std::filesystem::path client_tls_ca_file;
  duration client_tls_handshake_timeout = std::chrono::seconds{10};
  tls_mode server_tls_mode = tls_mode::disable;
  std::filesystem::path server_tls_ca_file;   // empty: the system's trusted CAs (verify-ca / verify-full)
  std::filesystem::path server_tls_cert_file;
  std::filesystem::path server_tls_key_file;
};

struct log_config {
  log_level level = log_level::info;
  log_format format = log_format::text;  // json: one object per line
  bool log_connections = true;
  bool log_disconnections = true;
};

// pool_size = "auto" as stored in the pool size members (0 is no valid size otherwise).
inline constexpr std::uint32_t pool_size_auto = 0;

// Resolved pool parameters for one (database, user) pair.
struct pool_settings {
  conf::pool_mode pool_mode;
  std::uint32_t pool_size;             // with pool_size_auto: pool_size_auto_max, the ceiling
  // pool_size = "auto": busy servers are limited adaptively between pool_size_auto_min and
  // pool_size (proxy/concurrency_limit.hpp).
  bool pool_size_auto = false;
  std::uint32_t pool_size_auto_min = 0;
  std::uint32_t min_pool_size;
  std::uint32_t reserve_pool_size;
  std::uint32_t max_db_connections;    // 0 = unlimited
  std::uint32_t max_user_connections;  // 0 = unlimited
};

// Resolved read/write routing for one (database, user) pair: database > global, and user >
// database for target_session_attrs.
struct routing_settings {
  bool read_write_split = false;   // unset everywhere: on when the database lists replicas
  conf::load_balance load_balance = conf::load_balance::round_robin;
  conf::primary_reads primary_reads = conf::primary_reads::fallback;
  replica_lag max_replica_lag;
  conf::consistency consistency = conf::consistency::read_your_writes;
  duration primary_after_write_for{0};
  duration read_your_writes_wait{0};
  std::vector<std::string> write_functions;
  conf::target_session_attrs target_session_attrs = conf::target_session_attrs::any;
  duration lag_check_interval{0};
};

// One problem found while loading; line/column are 1-based, 0 when unknown.
struct config_problem {
  std::string file;
  std::uint32_t line = 0;
  std::uint32_t column = 0;
  std::string key;       // dotted path, e.g. "databases.app.pool_size"; empty for syntax errors
  std::string message;
  // "FILE:LINE: key 'KEY': MESSAGE" (parts that are unknown are left out).
  std::string to_string() const;
};

struct config {
  std::filesystem::path source;     // file it was loaded from (empty for strings)

  // --- listening -----------------------------------------------------------
  std::vector<listen_endpoint> listen{listen_endpoint{}};
  std::uint32_t listen_backlog = 4096;
  std::uint32_t workers = 0;        // event-loop threads; 0 = half the CPU cores, at least one

  // --- pooling -------------------------------------------------------------
  conf::pool_mode pool_mode = conf::pool_mode::session;
  std::uint32_t default_pool_size = 20;     // or pool_size_auto
  // pool_size = "auto": the bounds of the adaptive limit on busy server connections.
  std::uint32_t pool_size_auto_min = 2;
  std::uint32_t pool_size_auto_max = 100;
  std::uint32_t min_pool_size = 0;
  std::uint32_t reserve_pool_size = 0;
  duration reserve_pool_timeout = std::chrono::seconds{5};      // a client waiting this long may use the reserve
  std::uint32_t max_client_conn = 100;
  std::uint32_t max_db_connections = 0;    // per database over all users; 0 = unlimited
  std::uint32_t max_user_connections = 0;  // per user over all databases; 0 = unlimited
  std::string server_reset_query = "DISCARD ALL";
  bool server_reset_query_always = false;  // also in transaction mode
  // Named prepared statements tracked per server connection in transaction mode; 0 disables tracking.
  std::uint32_t max_prepared_statements = 200;
  // Pipelined statements (transaction mode): autocommit statements of different clients queued
  // back to back on one server connection, at most this many; 0 = off.
  std::uint32_t pipeline_depth = 0;

  // --- timeouts (0 = disabled unless noted) --------------------------------
  duration server_connect_timeout = std::chrono::seconds{15};
  duration server_login_retry = std::chrono::seconds{15};       // after a failed login, no min_pool_size opens this long
  duration query_wait_timeout = std::chrono::seconds{120};      // time a client may wait for a server connection
  duration query_timeout = std::chrono::seconds{0};             // cancel queries running longer than this (not supported yet)
  duration client_idle_timeout = std::chrono::seconds{0};
  duration idle_transaction_timeout = std::chrono::seconds{0};
  duration server_idle_timeout = std::chrono::seconds{600};
  duration server_lifetime = std::chrono::seconds{3600};
  duration client_login_timeout = std::chrono::seconds{60};

  // --- limits --------------------------------------------------------------
  // Largest protocol message accepted from a client. PostgreSQL's own ceiling
  // is 1 GiB (MaxAllocSize); the default keeps one client from pinning that much.
  std::uint64_t max_message_size = 64ull << 20;

  // --- client authentication ---------------------------------------------
  conf::auth_type auth_type = conf::auth_type::scram_sha_256;
  // Users not in [users] are looked up on the server with auth_query, logged in
  // as auth_user (PgBouncer semantics). Empty auth_user = no lookups.
  std::string auth_user;
  std::string auth_query = "SELECT usename, passwd FROM pg_shadow WHERE usename=$1";
  std::string auth_dbname;          // database to run auth_query in; empty = the client's database
  // How long a secret auth_query returned is reused for that user's next logins; 0 = a query
  // per login. A failed login with a reused secret forgets it.
  duration auth_query_cache_ttl = std::chrono::seconds{5};

  // --- read/write routing (each overridable per database) ------------------
  // Reads to replicas, writes to the primary. Unset: on for a database that lists replicas.
  std::optional<bool> read_write_split;
  conf::load_balance load_balance = conf::load_balance::round_robin;
  conf::primary_reads primary_reads = conf::primary_reads::fallback;
  replica_lag max_replica_lag{};   // off
  conf::consistency consistency = conf::consistency::read_your_writes;
  duration primary_after_write_for = std::chrono::seconds{1};
  duration read_your_writes_wait = std::chrono::milliseconds{0};  // 0 = the primary serves at once
  // Functions that write or take locks beyond the built-in ones (nextval, setval,
  // pg_advisory_*, lo_*, txid_current, pg_notify...): a statement calling one is a write.
  std::vector<std::string> write_functions;
  // Session mode: the backend chosen at login when the client does not say (libpq's values).
  conf::target_session_attrs target_session_attrs = conf::target_session_attrs::any;
  // How often each backend's replay position and lag are sampled.
  duration lag_check_interval = std::chrono::milliseconds{500};

  // --- health checks and failover ------------------------------------------
  // Each backend is checked (connect + pg_is_in_recovery() and its WAL positions) this often,
  // off the event loops; a check not answered within the timeout failed.
  duration health_check_interval = std::chrono::seconds{1};
  duration health_check_timeout = std::chrono::seconds{2};
  std::uint32_t health_check_fall = 3;  // failed checks in a row that mark a backend down
  std::uint32_t health_check_rise = 2;  // good checks in a row that bring it back
  conf::failover_mode failover = conf::failover_mode::follow;
  duration failover_after = std::chrono::seconds{1};          // promote: how long the primary is down first (after `fall` failed checks)
  duration failover_hold_timeout = std::chrono::seconds{30};  // how long writes wait for a primary; 0 = fail at once

  tls_config tls;
  log_config log;
  admin_config admin;
  metrics_config metrics;

  std::vector<database_config> databases;
  std::vector<user_config> users;

  // Non-fatal findings, shown by `pgsluice check` and logged by `serve`.
  std::vector<config_problem> warnings;

  // Exact name, else the "*" fallback, else nullptr.
  const database_config* find_database(std::string_view name) const noexcept;
  const user_config* find_user(std::string_view name) const noexcept;

  // Overrides resolve user > database > global, as PgBouncer's pool_pool_mode().
  // `user` may be nullptr (a user known only through auth_query).
  pool_settings effective_pool(const database_config& db, const user_config* user) const noexcept;
  std::uint32_t effective_pipeline_depth(const database_config& db) const noexcept {
    return db.pipeline_depth.value_or(pipeline_depth);
  }
  conf::pool_mode effective_pool_mode(const database_config& db, const user_config* user) const noexcept {
    return effective_pool(db, user).pool_mode;
  }

  // Read/write routing resolved database > global (user > database > global for
  // target_session_attrs). `user` may be nullptr.
  routing_settings effective_routing(const database_config& db, const user_config* user) const;

  // workers, with 0 resolved to the number of cores (at least 1).
  std::uint32_t effective_workers() const noexcept;

  bool is_admin_user(std::string_view user) const noexcept;
  bool is_stats_user(std::string_view user) const noexcept;  // admin users included
};

// All problems found in a config; what() lists them one per line.
class config_error : public std::runtime_error {
 public:
  explicit config_error(std::vector<config_problem> problems);
  const std::vector<config_problem>& problems() const noexcept { return problems_; }

 private:
  std::vector<config_problem> problems_;
};

// Loads and validates a TOML file. Throws config_error listing every problem found,
// keys not supported yet included.
std::shared_ptr<const config> load_config(const std::filesystem::path& file);

// Same, from text; `name` appears in messages where a file name would.
std::shared_ptr<const config> load_config_from_string(std::string_view text,
                                                       std::string_view name = "<string>");

// One documented setting, its default rendered as it would be written in TOML.
struct setting_doc {
  std::string key;            // "pool_mode", "databases.<name>.pool_size", "tls.client_tls_mode"
  std::string default_value;  // "\"session\"", "\"30s\"", "20", "(unset)"
  std::string description;
};
// Every key the loader accepts, in schema order.
std::vector<setting_doc> describe_settings();

// Current value of every global setting (for the admin console's SHOW CONFIG).
struct setting_value {
  std::string key;
  std::string value;
  std::string default_value;
};
std::vector<setting_value> current_settings(const config&);

// Settings that differ between two configs but cannot change without a restart
// (listen addresses, listen_backlog, workers, metrics endpoint), one message each.
std::vector<std::string> reload_restrictions(const config& old, const config& next);

}  // namespace pgsluice::conf

// The TOML schema of pgsluice.toml: every key with its range and description, and the docs rendered from it.
//
// Defaults are the member initialisers in config.hpp: the loader starts from a
// default-constructed struct and only overwrites what the file sets, and the
// docs (`pgsluice check --defaults`, SHOW CONFIG) render those same members.
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

#include "conf/config.hpp"
#include "conf/detail.hpp"
#include "conf/schema.hpp"

namespace pgsluice::conf {
namespace detail {
namespace {

// --- what is missing, for the keys not supported yet -------------------------

constexpr std::string_view no_query_cancel = "pgsluice does not cancel long-running queries in this version";

// Routing keys: whether the reader refuses them depends on the one switch (routing_supported).
constexpr bool routing = true;

// --- the schema -------------------------------------------------------------

const setting<config> root_keys[] = {
    {"listen", std::monostate{}, any_value, "", ""},
    {"listen_backlog", &config::listen_backlog, {1, 65535}, "Backlog passed to listen(2) for every listening socket."},
    {"workers", &config::workers, {0, 1024}, "Event-loop threads; 0 = half the CPU cores, at least one (set the core count on a host of its own). Pools and limits are shared by all of them."},
    {"pool_mode", &config::pool_mode, any_value,
     "\"session\": a client keeps its server connection until it leaves (works with every client). "
     "\"transaction\": the server connection returns to the pool after each transaction."},
    {"default_pool_size", &config::default_pool_size, pool_size_range,
     "Server connections per (database, user) pool; \"auto\" (transaction mode): as many busy at once as the "
     "server serves fastest, learnt from transaction round trips, between pool_size_auto_min and "
     "pool_size_auto_max; other clients queue in pgsluice."},
    {"pool_size_auto_min", &config::pool_size_auto_min, pool_range, "pool_size = \"auto\": the adaptive limit never goes below this many busy server connections."},
    {"pool_size_auto_max", &config::pool_size_auto_max, pool_range,
     "pool_size = \"auto\": the adaptive limit never goes above this, nor above max_db_connections / "
     "max_user_connections when set; it is also the pool's ceiling of open connections."},
    {"min_pool_size", &config::min_pool_size, count_range, "Server connections kept open per pool even when idle."},
    {"reserve_pool_size", &config::reserve_pool_size, count_range, "Extra connections a pool may open for clients that waited reserve_pool_timeout."},
    {"reserve_pool_timeout", &config::reserve_pool_timeout, up_to_a_day, "How long a client waits before the reserve pool is used."},
    {"max_client_conn", &config::max_client_conn, {1, 1'000'000}, "Client connections accepted in total; more are refused with SQLSTATE 53300."},
    {"max_db_connections", &config::max_db_connections, connections, "Server connections per database over all users; 0 = unlimited."},
    {"max_user_connections", &config::max_user_connections, connections, "Server connections per user over all databases; 0 = unlimited."},
    {"server_reset_query", &config::server_reset_query, any_value, "Run on a server connection before another client gets it in session mode; empty = none."},
    {"server_reset_query_always", &config::server_reset_query_always, any_value, "Also run server_reset_query in transaction mode."},
    {"max_prepared_statements", &config::max_prepared_statements, count_range,
     "Named prepared statements cached per server connection in transaction mode (least recently used are closed); 0 = no tracking."},
    {"pipeline_depth", &config::pipeline_depth, {0, 64},
     "Transaction mode: autocommit statements of different clients (a single SELECT, INSERT, UPDATE, DELETE, "
     "VALUES, TABLE, WITH, SHOW or EXPLAIN that leaves no session state) are queued back to back on one "
     "server connection, up to this many at once; 0 = off. A slow statement delays those queued behind it."},
    {"server_connect_timeout", &config::server_connect_timeout, up_to_a_day, "Time allowed to connect and log in to a server."},
    {"server_login_retry", &config::server_login_retry, up_to_a_day,
     "After a failed server login, wait this long before opening min_pool_size connections again "
     "(a client that needs a server still tries at once)."},
    {"query_wait_timeout", &config::query_wait_timeout, up_to_a_week, "Longest a client waits for a server connection; 0 = forever."},
    {"query_timeout", &config::query_timeout, up_to_a_week, "Cancel queries running longer than this; 0 = never.", {},
     no_query_cancel},
    {"client_idle_timeout", &config::client_idle_timeout, up_to_a_week, "Close client connections idle this long; 0 = never."},
    {"idle_transaction_timeout", &config::idle_transaction_timeout, up_to_a_week, "Close clients idle inside a transaction this long; 0 = never."},
    {"server_idle_timeout", &config::server_idle_timeout, up_to_a_week, "Close pooled server connections unused this long (above min_pool_size); 0 = never."},
    {"server_lifetime", &config::server_lifetime, up_to_a_week, "Close pooled server connections older than this when they are next released; 0 = never."},
    {"client_login_timeout", &config::client_login_timeout, up_to_a_day, "Time a client has to complete startup and authentication; 0 = forever."},
    {"max_message_size", &config::max_message_size, {16 << 10, 1 << 30},
     "Largest protocol message accepted from a client (bytes or \"64MiB\"); PostgreSQL's own ceiling is 1GiB."},
    {"auth_type", &config::auth_type, any_value, "How clients authenticate: \"trust\", \"md5\" or \"scram-sha-256\"."},
    {"auth_user", &config::auth_user, any_value,
     "User that runs auth_query to fetch the password of users not listed in [users]; empty = no lookups."},
    {"auth_query", &config::auth_query, any_value, "Query returning (usename, passwd) for $1, run as auth_user."},
    {"auth_dbname", &config::auth_dbname, any_value, "Database auth_query runs in; empty = the database the client asked for."},
    {"auth_query_cache_ttl", &config::auth_query_cache_ttl, up_to_a_day,
     "Reuse a password auth_query returned for this long (a changed password takes effect after it); "
     "a failed login forgets it at once; 0 = run auth_query at every login."},
    {"read_write_split", &config::read_write_split, any_value,
     "Send reads to replicas and writes to the primary; false = every transaction to the primary.",
     "(true for a database that lists replicas)", {}, routing},
    {"load_balance", &config::load_balance, any_value,
     "How reads are spread over the replicas, by their weights: \"round_robin\" (smooth weighted), "
     "\"least_connections\" (fewest active per weight) or \"random\" (weighted).", {}, {}, routing},
    {"primary_reads", &config::primary_reads, any_value,
     "When the primary serves reads: \"fallback\" (only when no replica may), \"always\" (one more candidate, "
     "with its weight) or \"never\" (reads wait, then fail, rather than go to the primary).", {}, {}, routing},
    {"max_replica_lag", &config::max_replica_lag, any_value,
     "A replica further behind gets no new reads: WAL not replayed (\"16MB\"), replay delay (\"2s\"), or both "
     "([\"16MB\", \"2s\"]); 0 = no limit. When every replica lags, reads go to the primary.", {}, {}, routing},
    {"consistency", &config::consistency, any_value,
     "\"read_your_writes\": after a write, a client reads only from a replica that replayed it (else the "
     "primary). \"primary_after_write\": its reads go to the primary for primary_after_write_for. "
     "\"eventual\": any replica within max_replica_lag.", {}, {}, routing},
    {"primary_after_write_for", &config::primary_after_write_for, up_to_a_day,
     "With consistency = \"primary_after_write\": how long after its last write a client reads from the primary.",
     {}, {}, routing},
    {"read_your_writes_wait", &config::read_your_writes_wait, up_to_a_day,
     "With consistency = \"read_your_writes\": how long a read waits for a replica to replay the client's "
     "write before the primary serves it; 0 = the primary at once.", {}, {}, routing},
    {"write_functions", &config::write_functions, any_value,
     "Functions that write or take locks, besides the built-in ones (nextval, setval, pg_advisory_*, lo_*, "
     "txid_current, pg_notify...): a statement calling one goes to the primary.", {}, {}, routing},
    {"target_session_attrs", &config::target_session_attrs, any_value,
     "Session mode: the backend a client gets at login when it does not ask itself, as libpq's values: "
     "\"any\", \"read-write\", \"read-only\", \"primary\", \"standby\", \"prefer-standby\".", {}, {}, routing},
    {"lag_check_interval", &config::lag_check_interval, {10, day_ms},
     "How often each backend's replay position and lag are sampled (for max_replica_lag and read_your_writes).",
     {}, {}, routing},
    // Health checks and failover.
    {"health_check_interval", &config::health_check_interval, {10, day_ms},
     "How often each backend of a database with more than one is checked: a connection of its own, "
     "pg_is_in_recovery() and the WAL positions, off the event loops."},
    {"health_check_timeout", &config::health_check_timeout, {10, day_ms},
     "A check (connect, log in, answer) not done within this failed: a server that accepts TCP but never "
     "answers is marked down too."},
    {"health_check_fall", &config::health_check_fall, {1, 1000}, "Failed checks in a row that mark a backend down."},
    {"health_check_rise", &config::health_check_rise, {1, 1000}, "Good checks in a row that bring a down backend back."},
    {"failover", &config::failover, any_value,
     "When the primary fails: \"off\" (configured roles stand), \"follow\" (roles as the servers report them: a "
     "promotion done by others is followed within one check) or \"promote\" (follow, and promote the replica with "
     "the most WAL once the primary has been down for failover_after)."},
    {"failover_after", &config::failover_after, up_to_a_day,
     "With failover = \"promote\": how long the primary must be down (after health_check_fall failed checks) "
     "before a replica is promoted."},
    {"failover_hold_timeout", &config::failover_hold_timeout, up_to_a_day,
     "While no primary is up, new write transactions wait this long for one (reads go on to the replicas); "
     "0 = they fail at once."},
    {"tls", std::monostate{}, any_value, "", ""},
    {"log", std::monostate{}, any_value, "", ""},
    {"admin", std::monostate{}, any_value, "", ""},
    {"metrics", std::monostate{}, any_value, "", ""},
    {"databases", std::monostate{}, any_value, "", ""},
    {"users", std::monostate{}, any_value, "", ""},
};

const setting<listen_endpoint> listen_keys[] = {
    {"host", &listen_endpoint::host, non_empty, "Address to listen on; \"0.0.0.0\" or \"::\" for all. Use [[listen]] for several."},
    {"port", &listen_endpoint::port, port_range, "TCP port."},
};

const setting<tls_config> tls_keys[] = {
    {"client_tls_mode", &tls_config::client_tls_mode, any_value,
     "TLS towards clients, as libpq's sslmode: \"disable\" (SSLRequest answered 'N'), \"allow\"/\"prefer\" (TLS "
     "when the client asks), \"require\" (plaintext logins refused), \"verify-ca\" (and a client certificate "
     "signed by client_tls_ca_file), \"verify-full\" (and its CN is the user name)."},
    {"client_tls_cert_file", &tls_config::client_tls_cert_file, any_value, "Certificate (PEM, chain) presented to clients."},
    {"client_tls_key_file", &tls_config::client_tls_key_file, any_value, "Private key of client_tls_cert_file (PEM)."},
    {"client_tls_ca_file", &tls_config::client_tls_ca_file, any_value, "CA used to verify client certificates (verify-ca / verify-full)."},
    {"client_tls_handshake_timeout", &tls_config::client_tls_handshake_timeout, {1, day_ms},
     "Time a client has to complete the TLS handshake after pgsluice answered 'S'."},
    {"server_tls_mode", &tls_config::server_tls_mode, any_value,
     "TLS towards servers, as libpq's sslmode: \"disable\", \"allow\" (plaintext, TLS if the server refuses it), "
     "\"prefer\", \"require\", \"verify-ca\" (the server's certificate chain), \"verify-full\" (and its name is "
     "the backend's host)."},
    {"server_tls_ca_file", &tls_config::server_tls_ca_file, any_value,
     "CA used to verify server certificates (verify-ca / verify-full); empty = the system's trusted CAs."},
    {"server_tls_cert_file", &tls_config::server_tls_cert_file, any_value, "Client certificate presented to servers."},
    {"server_tls_key_file", &tls_config::server_tls_key_file, any_value, "Private key of server_tls_cert_file."},
};

const setting<log_config> log_keys[] = {
    {"level", &log_config::level, any_value, "\"trace\", \"debug\", \"info\", \"warning\", \"error\" or \"off\"."},
    {"format", &log_config::format, any_value,
     "\"text\", or \"json\": one JSON object per line (time, level, connection, event, the line's fields, message)."},
    {"log_connections", &log_config::log_connections, any_value, "Log each client login."},
    {"log_disconnections", &log_config::log_disconnections, any_value, "Log each client logout with its reason."},
};

const setting<admin_config> admin_keys[] = {
    {"admin_users", &admin_config::admin_users, any_value,
     "Users allowed every command on the admin console (database \"pgsluice\" or \"pgbouncer\" on the listen "
     "port); they log in with their [users] entry or auth_query like any client."},
    {"stats_users", &admin_config::stats_users, any_value, "Users allowed the console's SHOW commands only."},
    {"stats_period", &admin_config::stats_period, {1000, day_ms},
     "Window of the averages in SHOW STATS / STATS_AVERAGES (PgBouncer's stats_period)."},
};

const setting<metrics_config> metrics_keys[] = {
    {"host", &metrics_config::host, non_empty, "Address the Prometheus endpoint (HTTP) listens on."},
    {"port", &metrics_config::port, {0, 65535}, "Port of the Prometheus endpoint; 0 = off. Needs a restart to change."},
    {"path", &metrics_config::path, non_empty, "HTTP path serving the metrics (text exposition format 0.0.4)."},
};

const setting<database_config> database_keys[] = {
    {"host", std::monostate{}, any_value, "Server host of a single-backend database (shorthand for one primary in backends); an absolute path is a Unix-socket directory, as in libpq.", "(required unless backends is given)"},
    {"port", std::monostate{}, any_value, "Server port for host.", "5432"},
    {"backends", std::monostate{}, any_value,
     "Array of tables {host, port, role, weight}: the servers behind this database, one primary and its "
     "replicas (only the primary while read/write routing is not supported).", "(none)"},
    {"dbname", &database_config::dbname, non_empty, "Database name on the server.", "(the client-facing name)"},
    {"user", &database_config::user, non_empty, "Log in to the server as this user whoever the client is.", "(the client's user)"},
    {"password", &database_config::password, non_empty, "Password for user (otherwise taken from [users.<user>]).", "(unset)"},
    {"auth_user", &database_config::auth_user, non_empty, "auth_user for this database.", "(auth_user)"},
    {"pool_mode", &database_config::pool_mode, any_value, "pool_mode for this database.", "(pool_mode)"},
    {"pool_size", &database_config::pool_size, pool_size_range, "Pool size for this database, or \"auto\".", "(default_pool_size)"},
    {"min_pool_size", &database_config::min_pool_size, count_range, "min_pool_size for this database.", "(min_pool_size)"},
    {"pipeline_depth", &database_config::pipeline_depth, {0, 64}, "pipeline_depth for this database.", "(pipeline_depth)"},
    {"reserve_pool_size", &database_config::reserve_pool_size, count_range, "reserve_pool_size for this database.", "(reserve_pool_size)"},
    {"max_db_connections", &database_config::max_db_connections, connections, "max_db_connections for this database.", "(max_db_connections)"},
    {"read_write_split", &database_config::read_write_split, any_value, "read_write_split for this database.",
     "(read_write_split)", {}, routing},
    {"load_balance", &database_config::load_balance, any_value, "load_balance for this database.", "(load_balance)", {},
     routing},
    {"primary_reads", &database_config::primary_reads, any_value, "primary_reads for this database.",
     "(primary_reads)", {}, routing},
    {"max_replica_lag", &database_config::max_replica_lag, any_value, "max_replica_lag for this database.",
     "(max_replica_lag)", {}, routing},
    {"consistency", &database_config::consistency, any_value, "consistency for this database.", "(consistency)", {},
     routing},
    {"primary_after_write_for", &database_config::primary_after_write_for, up_to_a_day,
     "primary_after_write_for for this database.", "(primary_after_write_for)", {}, routing},
    {"read_your_writes_wait", &database_config::read_your_writes_wait, up_to_a_day,
     "read_your_writes_wait for this database.", "(read_your_writes_wait)", {}, routing},
    {"write_functions", &database_config::write_functions, any_value,
     "write_functions for this database (replaces the global list).", "(write_functions)", {}, routing},
    {"target_session_attrs", &database_config::target_session_attrs, any_value,
     "target_session_attrs for this database.", "(target_session_attrs)", {}, routing},
};

const setting<backend_config> backend_keys[] = {
    {"host", &backend_config::host, non_empty,
     "Server host: an address, a host name, or an absolute path, the directory holding the server's Unix socket "
     ".s.PGSQL.<port> (as libpq; no TLS over it, server_tls_mode does not apply).", "(required)"},
    {"port", &backend_config::port, port_range, "Server port."},
    {"role", &backend_config::role, any_value,
     "\"primary\" (exactly one per database) or \"replica\" (a streaming standby serving reads); \"auto\" "
     "(ask the server and follow promotions) is not supported yet.", {}, {}, routing},
    {"weight", &backend_config::weight, {0, 1000},
     "Share of reads (among replicas, and the primary with primary_reads = \"always\"); 0 = never chosen for reads.",
     {}, {}, routing},
};

const setting<user_config> user_keys[] = {
    {"password", &user_config::password, non_empty,
     "Plaintext, \"md5\" + md5(password + user), or a SCRAM-SHA-256 verifier as in pg_authid. "
     "A bare string (users.<name> = \"...\") is a password too.", "(none)"},
    {"pool_mode", &user_config::pool_mode, any_value, "pool_mode for this user (wins over the database's).", "(pool_mode)"},
    {"pool_size", &user_config::pool_size, pool_size_range, "Pool size for this user (wins over the database's), or \"auto\".", "(default_pool_size)"},
    {"max_user_connections", &user_config::max_user_connections, connections, "max_user_connections for this user.", "(max_user_connections)"},
    {"target_session_attrs", &user_config::target_session_attrs, any_value,
     "target_session_attrs for this user (wins over the database's).", "(target_session_attrs)", {}, routing},
};

}  // namespace

// THE SWITCH for read/write routing (see schema.hpp): true once the proxy honours replicas,
// weights and the routing keys.
const bool routing_supported = true;
const std::string_view routing_missing =
    "pgsluice sends every statement to one primary in this version (no replicas, no read/write routing)";

constinit const std::span<const setting<config>> root_schema{root_keys};
constinit const std::span<const setting<listen_endpoint>> listen_schema{listen_keys};
constinit const std::span<const setting<tls_config>> tls_schema{tls_keys};
constinit const std::span<const setting<log_config>> log_schema{log_keys};
constinit const std::span<const setting<admin_config>> admin_schema{admin_keys};
constinit const std::span<const setting<metrics_config>> metrics_schema{metrics_keys};
constinit const std::span<const setting<database_config>> database_schema{database_keys};
constinit const std::span<const setting<backend_config>> backend_schema{backend_keys};
constinit const std::span<const setting<user_config>> user_schema{user_keys};

template <class Owner>
const Owner& defaults_of() noexcept {
  static const Owner defaults{};
  return defaults;
}
template const config& defaults_of<config>() noexcept;
template const listen_endpoint& defaults_of<listen_endpoint>() noexcept;
template const tls_config& defaults_of<tls_config>() noexcept;
template const log_config& defaults_of<log_config>() noexcept;
template const admin_config& defaults_of<admin_config>() noexcept;
template const metrics_config& defaults_of<metrics_config>() noexcept;
template const database_config& defaults_of<database_config>() noexcept;
template const backend_config& defaults_of<backend_config>() noexcept;
template const user_config& defaults_of<user_config>() noexcept;

std::string join_key(std::string_view prefix, std::string_view key) {
  if (prefix.empty()) return std::string(key);
  std::string out(prefix);
  out += '.';
  out += key;
  return out;
}

std::string quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
  return out;
}

}  // namespace detail

namespace {

using namespace detail;

// --- rendering values for docs and SHOW CONFIG -------------------------------------

template <class T>
std::string render(const T& v) {
  if constexpr (is_optional<T>::value) {
    return v ? render(*v) : std::string("(unset)");
  } else if constexpr (std::is_same_v<T, duration>) {
    return v.count() == 0 ? std::string("0") : quote(format_duration(v));
  } else if constexpr (std::is_same_v<T, replica_lag>) {
    if (v.bytes != 0 && v.time.count() != 0) return "[" + quote(format_size(v.bytes)) + ", " + quote(format_duration(v.time)) + "]";
    if (v.bytes != 0) return quote(format_size(v.bytes));
    if (v.time.count() != 0) return quote(format_duration(v.time));
    return "0";
  } else if constexpr (std::is_same_v<T, std::uint64_t>) {
    return quote(format_size(v));
  } else if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    return std::to_string(v);
  } else if constexpr (std::is_same_v<T, bool>) {
    return v ? "true" : "false";
  } else if constexpr (std::is_enum_v<T>) {
    return quote(detail::name_of(v));
  } else if constexpr (std::is_same_v<T, std::filesystem::path>) {
    return quote(v.string());
  } else if constexpr (std::is_same_v<T, std::string>) {
    return quote(v);
  } else {
    std::string out = "[";
    for (const auto& s : v) out += (out.size() > 1 ? ", " : "") + quote(s);
    return out + "]";
  }
}

template <class Owner>
std::string render_member(const setting<Owner>& s, const Owner& owner) {
  return std::visit(
      [&](auto member) -> std::string {
        if constexpr (std::is_same_v<decltype(member), std::monostate>) {
          return std::string(s.default_text);
        } else {
          const auto& v = owner.*member;
          if constexpr (std::is_same_v<std::remove_cvref_t<decltype(v)>, std::uint32_t>) {
            if (s.range.or_auto && v == pool_size_auto) return quote("auto");
          }
          return render(v);
        }
      },
      s.member);
}

template <class Owner>
void describe(std::vector<setting_doc>& out, std::span<const setting<Owner>> schema, std::string_view prefix) {
  const Owner& defaults = defaults_of<Owner>();
  for (const auto& s : schema) {
    if (s.description.empty()) continue;  // sections, documented by their own keys
    out.push_back({join_key(prefix, s.key),
                   s.default_text.empty() ? render_member(s, defaults) : std::string(s.default_text),
                   std::string(s.description) +
                       (missing_of(s, routing_supported).empty() ? "" : " (not supported yet; only the default is accepted)")});
  }
}

template <class Owner>
void current(std::vector<setting_value>& out, std::span<const setting<Owner>> schema, std::string_view prefix,
             const Owner& now) {
  const Owner& defaults = defaults_of<Owner>();
  for (const auto& s : schema) {
    if (std::holds_alternative<std::monostate>(s.member)) continue;
    out.push_back({join_key(prefix, s.key), render_member(s, now), render_member(s, defaults)});
  }
}

}  // namespace

std::vector<setting_doc> describe_settings() {
  std::vector<setting_doc> out;
  describe<config>(out, root_schema, "");
  describe<listen_endpoint>(out, listen_schema, "listen");
  describe<log_config>(out, log_schema, "log");
  describe<admin_config>(out, admin_schema, "admin");
  describe<metrics_config>(out, metrics_schema, "metrics");
  describe<tls_config>(out, tls_schema, "tls");
  describe<database_config>(out, database_schema, "databases.<name>");
  describe<backend_config>(out, backend_schema, "databases.<name>.backends[]");
  describe<user_config>(out, user_schema, "users.<name>");
  return out;
}

std::vector<setting_value> current_settings(const config& c) {
  std::vector<setting_value> out;
  std::string listen;
  for (const auto& e : c.listen) listen += (listen.empty() ? "" : ", ") + e.host + ":" + std::to_string(e.port);
  out.push_back({"listen", listen, "127.0.0.1:6432"});
  current<config>(out, root_schema, "", c);
  current<log_config>(out, log_schema, "log", c.log);
  current<admin_config>(out, admin_schema, "admin", c.admin);
  current<metrics_config>(out, metrics_schema, "metrics", c.metrics);
  current<tls_config>(out, tls_schema, "tls", c.tls);
  return out;
}

}  // namespace pgsluice::conf

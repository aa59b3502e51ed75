// The TOML schema of pgsluice.toml: one table of keys drives loading, validation and the generated docs.
//
// Every accepted key is an entry in one of the schema tables below (key, the
// member it fills, its allowed range, a description). Defaults are the member
// initialisers in config.hpp; the loader starts from a default-constructed
// struct and only overwrites what the file sets. Every problem found is
// collected with the line of the key it concerns, and all of them are thrown
// together at the end, so `pgsluice check` can show everything in one run.
#include <algorithm>
#include <array>
#include <cstdint>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <span>
#include <sstream>
#include <string>
#include <system_error>
#include <type_traits>
#include <variant>

#include <toml++/toml.h>

#include "conf/check.hpp"
#include "conf/config.hpp"
#include "conf/detail.hpp"

namespace pgsluice::conf {
namespace {

// Names reserved for the admin console (PgBouncer's is "pgbouncer"; both are accepted).
constexpr std::array<std::string_view, 2> admin_databases{"pgsluice", "pgbouncer"};

constexpr std::int64_t unlimited = std::numeric_limits<std::int64_t>::max();

struct bounds {
  std::int64_t min = 0;
  std::int64_t max = unlimited;
};

// Member pointers for every value type a key can have. monostate = read by hand (sections, shorthands).
template <class Owner>
using target = std::variant<std::monostate, std::uint32_t Owner::*, std::uint16_t Owner::*, duration Owner::*,
                            std::uint64_t Owner::*, std::string Owner::*, bool Owner::*, pool_mode Owner::*,
                            auth_type Owner::*, backend_role Owner::*, tls_mode Owner::*, log_level Owner::*,
                            log_format Owner::*, std::filesystem::path Owner::*,
                            std::vector<std::string> Owner::*, std::optional<std::uint32_t> Owner::*,
                            std::optional<std::string> Owner::*, std::optional<pool_mode> Owner::*>;

template <class Owner>
struct setting {
  std::string_view key;
  target<Owner> member;
  bounds range;
  std::string_view description;
  // Shown instead of the member's default in the docs (e.g. "inherits default_pool_size").
  std::string_view default_text = {};
};

constexpr bounds any_value{};
constexpr bounds non_empty{1, unlimited};
constexpr bounds port_range{1, 65535};
constexpr bounds pool_range{1, 100'000};
constexpr bounds count_range{0, 100'000};
constexpr bounds connections{0, 1'000'000};
constexpr std::int64_t day_ms = 86'400'000;
constexpr bounds up_to_a_day{0, day_ms};
constexpr bounds up_to_a_week{0, 7 * day_ms};

// --- the schema -------------------------------------------------------------

const setting<config> root_schema[] = {
    {"listen", std::monostate{}, any_value, "", ""},
    {"listen_backlog", &config::listen_backlog, {1, 65535}, "Backlog passed to listen(2) for every listening socket."},
    {"workers", &config::workers, {0, 1024}, "Event-loop threads; 0 = one per CPU core. Pools and limits are shared by all of them."},
    {"pool_mode", &config::pool_mode, any_value,
     "\"session\": a client keeps its server connection until it leaves (works with every client). "
     "\"transaction\": the server connection returns to the pool after each transaction."},
    {"default_pool_size", &config::default_pool_size, pool_range, "Server connections per (database, user) pool."},
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
    {"server_connect_timeout", &config::server_connect_timeout, up_to_a_day, "Time allowed to connect and log in to a server."},
    {"server_login_retry", &config::server_login_retry, up_to_a_day, "Wait after a failed server login before trying again."},
    {"query_wait_timeout", &config::query_wait_timeout, up_to_a_week, "Longest a client waits for a server connection; 0 = forever."},
    {"query_timeout", &config::query_timeout, up_to_a_week, "Cancel queries running longer than this; 0 = never."},
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
    {"tls", std::monostate{}, any_value, "", ""},
    {"log", std::monostate{}, any_value, "", ""},
    {"admin", std::monostate{}, any_value, "", ""},
    {"metrics", std::monostate{}, any_value, "", ""},
    {"databases", std::monostate{}, any_value, "", ""},
    {"users", std::monostate{}, any_value, "", ""},
};

const setting<listen_endpoint> listen_schema[] = {
    {"host", &listen_endpoint::host, non_empty, "Address to listen on; \"0.0.0.0\" or \"::\" for all. Use [[listen]] for several."},
    {"port", &listen_endpoint::port, port_range, "TCP port."},
};

const setting<tls_config> tls_schema[] = {
    {"client_tls_mode", &tls_config::client_tls_mode, any_value, "TLS towards clients (not built yet; validated only)."},
    {"client_tls_cert_file", &tls_config::client_tls_cert_file, any_value, "Certificate presented to clients."},
    {"client_tls_key_file", &tls_config::client_tls_key_file, any_value, "Private key of client_tls_cert_file."},
    {"client_tls_ca_file", &tls_config::client_tls_ca_file, any_value, "CA used to verify client certificates (verify-ca / verify-full)."},
    {"server_tls_mode", &tls_config::server_tls_mode, any_value, "TLS towards servers, as libpq's sslmode (not built yet; validated only)."},
    {"server_tls_ca_file", &tls_config::server_tls_ca_file, any_value, "CA used to verify server certificates."},
    {"server_tls_cert_file", &tls_config::server_tls_cert_file, any_value, "Client certificate presented to servers."},
    {"server_tls_key_file", &tls_config::server_tls_key_file, any_value, "Private key of server_tls_cert_file."},
};

const setting<log_config> log_schema[] = {
    {"level", &log_config::level, any_value, "\"trace\", \"debug\", \"info\", \"warning\", \"error\" or \"off\"."},
    {"format", &log_config::format, any_value, "\"text\" or \"json\" (one object per line)."},
    {"log_connections", &log_config::log_connections, any_value, "Log each client login."},
    {"log_disconnections", &log_config::log_disconnections, any_value, "Log each client logout with its reason."},
};

const setting<admin_config> admin_schema[] = {
    {"admin_users", &admin_config::admin_users, any_value, "Users allowed every command on the admin console (database \"pgsluice\" or \"pgbouncer\")."},
    {"stats_users", &admin_config::stats_users, any_value, "Users allowed the read-only SHOW commands."},
};

const setting<metrics_config> metrics_schema[] = {
    {"host", &metrics_config::host, non_empty, "Address of the Prometheus endpoint."},
    {"port", &metrics_config::port, {0, 65535}, "Port of the Prometheus endpoint; 0 = off."},
    {"path", &metrics_config::path, non_empty, "HTTP path of the Prometheus endpoint."},
};

const setting<database_config> database_schema[] = {
    {"host", std::monostate{}, any_value, "Server host of a single-backend database (shorthand for one primary in backends).", "(required unless backends is given)"},
    {"port", std::monostate{}, any_value, "Server port for host.", "5432"},
    {"backends", std::monostate{}, any_value, "Array of tables {host, port, role, weight}: the servers behind this database.", "(none)"},
    {"dbname", &database_config::dbname, non_empty, "Database name on the server.", "(the client-facing name)"},
    {"user", &database_config::user, non_empty, "Log in to the server as this user whoever the client is.", "(the client's user)"},
    {"password", &database_config::password, non_empty, "Password for user (otherwise taken from [users.<user>]).", "(unset)"},
    {"auth_user", &database_config::auth_user, non_empty, "auth_user for this database.", "(auth_user)"},
    {"pool_mode", &database_config::pool_mode, any_value, "pool_mode for this database.", "(pool_mode)"},
    {"pool_size", &database_config::pool_size, pool_range, "Pool size for this database.", "(default_pool_size)"},
    {"min_pool_size", &database_config::min_pool_size, count_range, "min_pool_size for this database.", "(min_pool_size)"},
    {"reserve_pool_size", &database_config::reserve_pool_size, count_range, "reserve_pool_size for this database.", "(reserve_pool_size)"},
    {"max_db_connections", &database_config::max_db_connections, connections, "max_db_connections for this database.", "(max_db_connections)"},
};

const setting<backend_config> backend_schema[] = {
    {"host", &backend_config::host, non_empty, "Server host.", "(required)"},
    {"port", &backend_config::port, port_range, "Server port."},
    {"role", &backend_config::role, any_value, "\"primary\", \"replica\" or \"auto\" (ask the server and follow promotions)."},
    {"weight", &backend_config::weight, {0, 1000}, "Share of reads among replicas; 0 = never chosen for reads."},
};

const setting<user_config> user_schema[] = {
    {"password", &user_config::password, non_empty,
     "Plaintext, \"md5\" + md5(password + user), or a SCRAM-SHA-256 verifier as in pg_authid. "
     "A bare string (users.<name> = \"...\") is a password too.", "(none)"},
    {"pool_mode", &user_config::pool_mode, any_value, "pool_mode for this user (wins over the database's).", "(pool_mode)"},
    {"pool_size", &user_config::pool_size, pool_range, "Pool size for this user (wins over the database's).", "(default_pool_size)"},
    {"max_user_connections", &user_config::max_user_connections, connections, "max_user_connections for this user.", "(max_user_connections)"},
};

// Keys people bring from pgbouncer.ini, with where they went.
const std::pair<std::string_view, std::string_view> renamed_keys[] = {
    {"listen_addr", "use [listen] host = \"...\""},
    {"listen_port", "use [listen] port = ..."},
    {"auth_file", "define users as [users.<name>] with a password"},
    {"reserve_pool", "did you mean 'reserve_pool_size'?"},
    {"pool_size", "did you mean 'default_pool_size'?"},
    {"max_packet_size", "did you mean 'max_message_size'?"},
    {"admin_users", "put it in [admin]"},
    {"stats_users", "put it in [admin]"},
    {"logfile", "pgsluice logs to stderr; see [log]"},
    {"pgbouncer", "pgsluice's global settings go at the top of the file, before any [section]"},
};

// --- problems and positions ---------------------------------------------------

struct position {
  std::uint32_t line = 0;
  std::uint32_t column = 0;
};

position at(const toml::source_region& r) { return {r.begin.line, r.begin.column}; }

struct context {
  std::string file;
  std::filesystem::path base_dir;  // relative file paths in the config are resolved against it
  std::vector<config_problem> problems;
  std::vector<config_problem> warnings;
  std::map<std::string, position, std::less<>> positions;  // dotted key -> where it was written
  std::size_t declared_databases = 0;     // entries under [databases], loadable or not
  std::set<std::string> users_with_password;  // a password was written (even an invalid one)

  void error(position p, std::string key, std::string message) {
    problems.push_back({file, p.line, p.column, std::move(key), std::move(message)});
  }
  // Position of `key`, or of the nearest enclosing key that was written.
  position where(std::string_view key) const {
    for (;;) {
      if (auto it = positions.find(key); it != positions.end()) return it->second;
      const auto cut = key.find_last_of(".[");
      if (cut == std::string_view::npos) return {};
      key = key.substr(0, cut);
    }
  }
  void error_at(std::string key, std::string message) {
    const position p = where(key);
    error(p, std::move(key), std::move(message));
  }
  void warning_at(std::string key, std::string message) {
    const position p = where(key);
    warnings.push_back({file, p.line, p.column, std::move(key), std::move(message)});
  }
};

std::string join_key(std::string_view prefix, std::string_view key) {
  if (prefix.empty()) return std::string(key);
  std::string out(prefix);
  out += '.';
  out += key;
  return out;
}

std::string type_name(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
    default: return "nothing";
  }
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

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

// The candidate close enough to `word` to be a typo of it, if any.
template <class Range>
std::string_view closest(std::string_view word, const Range& candidates) {
  std::string_view best;
  std::size_t best_distance = std::max<std::size_t>(1, std::min<std::size_t>(3, word.size() / 3)) + 1;
  for (std::string_view c : candidates) {
    if (c.empty()) continue;
    const std::size_t d = edit_distance(word, c);
    if (d < best_distance) {
      best_distance = d;
      best = c;
    }
  }
  return best;
}

template <class E>
std::string enum_suggestion(std::string_view word) {
  std::vector<std::string_view> names;
  for (const auto& [name, v] : detail::enum_names<E>::values) names.push_back(name);
  const std::string_view best = closest(word, names);
  return best.empty() ? std::string() : "; did you mean " + quote(best) + "?";
}

// --- reading one value ------------------------------------------------------------

template <class T>
struct is_optional : std::false_type {};
template <class T>
struct is_optional<std::optional<T>> : std::true_type {};

template <class T>
constexpr bool is_enum_value = std::is_enum_v<T>;

std::string range_text(std::int64_t v) { return v == unlimited ? std::string("unlimited") : std::to_string(v); }

template <class T>
std::optional<T> read_value(context& ctx, const toml::node& node, const std::string& key, bounds range) {
  const position p = at(node.source());
  const auto wrong_type = [&](std::string_view expected) {
    ctx.error(p, key, "must be " + std::string(expected) + " (got " + type_name(node) + ")");
    return std::nullopt;
  };
  if constexpr (std::is_same_v<T, std::uint32_t> || std::is_same_v<T, std::uint16_t>) {
    const auto* v = node.as_integer();
    if (v == nullptr) return wrong_type("an integer");
    const std::int64_t value = v->get();
    if (value < range.min || value > range.max) {
      ctx.error(p, key,
                "must be between " + range_text(range.min) + " and " + range_text(range.max) + " (got " +
                    std::to_string(value) + ")");
      return std::nullopt;
    }
    return static_cast<T>(value);
  } else if constexpr (std::is_same_v<T, duration> || std::is_same_v<T, std::uint64_t>) {
    constexpr bool is_duration = std::is_same_v<T, duration>;
    const auto render = [](std::int64_t v) {
      if constexpr (is_duration) return format_duration(duration{v});
      else return format_size(static_cast<std::uint64_t>(v));
    };
    std::optional<std::int64_t> value;
    if (const auto* i = node.as_integer()) {
      value = i->get();
    } else if (const auto* s = node.as_string()) {
      if constexpr (is_duration) {
        if (auto d = parse_duration(s->get())) value = d->count();
      } else {
        if (auto b = parse_size(s->get())) value = static_cast<std::int64_t>(*b);
      }
      if (!value) {
        ctx.error(p, key,
                  std::string(is_duration ? "must be a duration such as \"30s\", \"500ms\", \"5min\", \"2h\" or a "
                                            "number of milliseconds"
                                          : "must be a size such as \"64MiB\", \"512kB\", \"1GB\" or a number of bytes") +
                      " (got " + quote(s->get()) + ")");
        return std::nullopt;
      }
    } else {
      return wrong_type(is_duration ? "a duration (\"30s\") or a number of milliseconds"
                                    : "a size (\"64MiB\") or a number of bytes");
    }
    if (*value < range.min || *value > range.max) {
      ctx.error(p, key,
                "must be between " + render(range.min) + " and " + render(range.max) + " (got " +
                    (*value < 0 ? std::to_string(*value) : render(*value)) + ")");
      return std::nullopt;
    }
    if constexpr (is_duration) return duration{*value};
    else return static_cast<std::uint64_t>(*value);
  } else if constexpr (std::is_same_v<T, std::string> || std::is_same_v<T, std::filesystem::path>) {
    const auto* s = node.as_string();
    if (s == nullptr) return wrong_type("a string");
    if (range.min > 0 && s->get().empty()) {
      ctx.error(p, key, "must not be empty");
      return std::nullopt;
    }
    return T(s->get());
  } else if constexpr (std::is_same_v<T, bool>) {
    const auto* b = node.as_boolean();
    if (b == nullptr) return wrong_type("true or false");
    return b->get();
  } else if constexpr (is_enum_value<T>) {
    const auto* s = node.as_string();
    if (s == nullptr) return wrong_type("one of " + detail::quoted_names<T>());
    if (auto v = detail::parse_enum<T>(s->get())) return v;
    ctx.error(p, key,
              "must be one of " + detail::quoted_names<T>() + " (got " + quote(s->get()) + ")" +
                  enum_suggestion<T>(s->get()));
    return std::nullopt;
  } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
    const auto* a = node.as_array();
    if (a == nullptr) return wrong_type("an array of strings");
    std::vector<std::string> out;
    bool ok = true;
    for (std::size_t i = 0; i < a->size(); ++i) {
      const toml::node& e = *a->get(i);
      const std::string element_key = key + '[' + std::to_string(i) + ']';
      if (const auto* s = e.as_string(); s != nullptr && !s->get().empty()) {
        out.push_back(s->get());
      } else {
        ctx.error(at(e.source()), element_key,
                  s == nullptr ? "must be a string (got " + type_name(e) + ")" : std::string("must not be empty"));
        ok = false;
      }
    }
    if (!ok) return std::nullopt;
    return out;
  } else {
    static_assert(sizeof(T) == 0, "no reader for this type");
  }
}

template <class Owner>
const setting<Owner>* find_setting(std::span<const setting<Owner>> schema, std::string_view key) {
  for (const auto& s : schema) {
    if (s.key == key) return &s;
  }
  return nullptr;
}

template <class Owner>
std::vector<std::string_view> keys_of(std::span<const setting<Owner>> schema) {
  std::vector<std::string_view> keys;
  for (const auto& s : schema) keys.push_back(s.key);
  return keys;
}

void unknown_key(context& ctx, position p, std::string key, std::string_view name,
                 const std::vector<std::string_view>& known, bool at_root) {
  std::string message = "unknown key";
  if (const std::string_view best = closest(name, known); !best.empty()) {
    message += "; did you mean '" + std::string(best) + "'?";
  } else if (at_root) {
    for (const auto& [old_name, hint] : renamed_keys) {
      if (old_name == name) message += "; " + std::string(hint);
    }
  }
  ctx.error(p, std::move(key), std::move(message));
}

// Reads every key of `table` that the schema maps to a member; reports unknown keys.
// Keys mapped to monostate are left for the caller.
template <class Owner>
void read_table(context& ctx, const toml::table& table, std::span<const setting<Owner>> schema, Owner& owner,
                std::string_view prefix) {
  for (auto&& [k, node] : table) {
    const std::string key = join_key(prefix, k.str());
    ctx.positions[key] = at(k.source());
    const setting<Owner>* s = find_setting(schema, k.str());
    if (s == nullptr) {
      unknown_key(ctx, at(k.source()), key, k.str(), keys_of(schema), prefix.empty());
      continue;
    }
    std::visit(
        [&](auto member) {
          using member_type = decltype(member);
          if constexpr (!std::is_same_v<member_type, std::monostate>) {
            using value_type = std::remove_cvref_t<decltype(owner.*member)>;
            if constexpr (is_optional<value_type>::value) {
              if (auto v = read_value<typename value_type::value_type>(ctx, node, key, s->range)) owner.*member = *v;
            } else {
              if (auto v = read_value<value_type>(ctx, node, key, s->range)) owner.*member = std::move(*v);
            }
          }
        },
        s->member);
  }
}

const toml::table* expect_table(context& ctx, const toml::node& node, const std::string& key) {
  const auto* t = node.as_table();
  if (t == nullptr) ctx.error(at(node.source()), key, "must be a table (got " + type_name(node) + ")");
  return t;
}

// --- sections ----------------------------------------------------------------

void read_listen(context& ctx, const toml::node& node, config& c) {
  c.listen.clear();
  const auto read_one = [&](const toml::table& t, const std::string& key) {
    listen_endpoint e;
    read_table<listen_endpoint>(ctx, t, listen_schema, e, key);
    c.listen.push_back(std::move(e));
  };
  if (const auto* t = node.as_table()) {
    read_one(*t, "listen");
  } else if (const auto* a = node.as_array()) {
    if (a->empty()) ctx.error(at(node.source()), "listen", "must list at least one address");
    for (std::size_t i = 0; i < a->size(); ++i) {
      const std::string key = "listen[" + std::to_string(i) + "]";
      ctx.positions[key] = at(a->get(i)->source());
      if (const auto* t = expect_table(ctx, *a->get(i), key)) read_one(*t, key);
    }
  } else {
    ctx.error(at(node.source()), "listen",
              "must be a table ([listen] host/port) or an array of tables ([[listen]]) (got " + type_name(node) + ")");
  }
  std::set<std::pair<std::string, std::uint16_t>> seen;
  for (std::size_t i = 0; i < c.listen.size(); ++i) {
    if (!seen.emplace(c.listen[i].host, c.listen[i].port).second) {
      ctx.error_at("listen[" + std::to_string(i) + "]",
                   "duplicate address " + c.listen[i].host + ":" + std::to_string(c.listen[i].port));
    }
  }
}

void read_backends(context& ctx, const toml::node& node, database_config& db, const std::string& prefix) {
  const std::string key = prefix + ".backends";
  const auto* a = node.as_array();
  if (a == nullptr) {
    ctx.error(at(node.source()), key, "must be an array of tables ([[" + key + "]]) (got " + type_name(node) + ")");
    return;
  }
  if (a->empty()) ctx.error(at(node.source()), key, "must list at least one backend");
  for (std::size_t i = 0; i < a->size(); ++i) {
    const std::string element = key + "[" + std::to_string(i) + "]";
    ctx.positions[element] = at(a->get(i)->source());
    const auto* t = expect_table(ctx, *a->get(i), element);
    if (t == nullptr) continue;
    backend_config b;
    read_table<backend_config>(ctx, *t, backend_schema, b, element);
    if (!t->contains("host")) ctx.error_at(element + ".host", "missing; every backend needs a host");
    db.backends.push_back(std::move(b));
  }
}

void check_backends(context& ctx, const database_config& db, const std::string& prefix, bool explicit_list) {
  const std::string key = explicit_list ? prefix + ".backends" : prefix;
  std::size_t primaries = 0;
  std::size_t automatic = 0;
  std::set<std::pair<std::string, std::uint16_t>> seen;
  for (std::size_t i = 0; i < db.backends.size(); ++i) {
    const auto& b = db.backends[i];
    if (b.role == backend_role::primary) ++primaries;
    if (b.role == backend_role::automatic) ++automatic;
    if (!b.host.empty() && !seen.emplace(b.host, b.port).second) {
      ctx.error_at(key + "[" + std::to_string(i) + "]",
                   "duplicate backend " + b.host + ":" + std::to_string(b.port));
    }
  }
  if (automatic != 0 && automatic != db.backends.size()) {
    ctx.error_at(key, "role \"auto\" cannot be mixed with \"primary\"/\"replica\"; use it for every backend or none");
  } else if (primaries > 1) {
    ctx.error_at(key, "has " + std::to_string(primaries) + " backends with role \"primary\"; at most one is allowed");
  } else if (primaries == 0 && automatic == 0 && !db.backends.empty()) {
    ctx.warning_at(key, "no backend has role \"primary\": writes to this database will fail");
  }
}

void read_database(context& ctx, std::string_view name, const toml::table& t, config& c) {
  const std::string prefix = "databases." + std::string(name);
  database_config db;
  db.name = std::string(name);
  read_table<database_config>(ctx, t, database_schema, db, prefix);

  if (name.empty()) ctx.error_at(prefix, "database name must not be empty");
  for (auto reserved : admin_databases) {
    if (name == reserved) ctx.error_at(prefix, "name \"" + std::string(name) + "\" is reserved for the admin console");
  }

  const toml::node* host = t.get("host");
  const toml::node* port = t.get("port");
  const toml::node* backends = t.get("backends");
  if (backends != nullptr) {
    if (host != nullptr) ctx.error_at(prefix + ".host", "give either host/port or backends, not both");
    if (port != nullptr && host == nullptr) ctx.error_at(prefix + ".port", "give either host/port or backends, not both");
    read_backends(ctx, *backends, db, prefix);
  } else if (host != nullptr) {
    backend_config b;
    if (auto h = read_value<std::string>(ctx, *host, prefix + ".host", non_empty)) b.host = *h;
    if (port != nullptr) {
      if (auto p = read_value<std::uint16_t>(ctx, *port, prefix + ".port", port_range)) b.port = *p;
    }
    db.backends.push_back(std::move(b));
  } else {
    ctx.error_at(prefix + ".host", "missing; give host (and port) or a backends array");
  }
  check_backends(ctx, db, prefix, backends != nullptr);

  if (db.dbname.empty() && name != "*") db.dbname = db.name;
  if (db.password && !db.user) ctx.error_at(prefix + ".password", "needs user: it is the password of that server login");
  const std::uint32_t pool_size = db.pool_size.value_or(c.default_pool_size);
  if (db.min_pool_size && *db.min_pool_size > pool_size) {
    ctx.error_at(prefix + ".min_pool_size", "must not exceed the pool size " + std::to_string(pool_size) + " (got " +
                                                std::to_string(*db.min_pool_size) + ")");
  }
  c.databases.push_back(std::move(db));
}

bool has_password_key(const toml::node& node) { return node.is_table() && node.as_table()->contains("password"); }

void read_user(context& ctx, std::string_view name, const toml::node& node, config& c) {
  const std::string prefix = "users." + std::string(name);
  user_config u;
  u.name = std::string(name);
  if (name.empty()) ctx.error_at(prefix, "user name must not be empty");
  if (!node.is_table() || has_password_key(node)) ctx.users_with_password.insert(u.name);
  if (node.is_string()) {
    // users.alice = "secret": the short form is just a password.
    if (auto v = read_value<std::string>(ctx, node, prefix, non_empty)) u.password = *v;
  } else if (const auto* t = node.as_table()) {
    read_table<user_config>(ctx, *t, user_schema, u, prefix);
  } else {
    ctx.error(at(node.source()), prefix, "must be a table or a password string (got " + type_name(node) + ")");
  }
  u.password_kind = detect_secret_kind(u.password);
  if (u.password.starts_with(detail::scram_prefix) && u.password_kind != secret_kind::scram_sha_256) {
    ctx.error_at(node.is_table() ? prefix + ".password" : prefix,
                 "is not a valid SCRAM-SHA-256 verifier (expected "
                 "SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey> in base64, as in pg_authid)");
  }
  c.users.push_back(std::move(u));
}

template <class Owner>
void read_section(context& ctx, const toml::table& root, std::string_view name,
                  std::span<const setting<Owner>> schema, Owner& owner) {
  const toml::node* node = root.get(name);
  if (node == nullptr) return;
  if (const auto* t = expect_table(ctx, *node, std::string(name))) read_table<Owner>(ctx, *t, schema, owner, name);
}

// --- checks across keys ---------------------------------------------------------

std::string password_key(const user_config& u, const context& ctx) {
  const std::string table_key = "users." + u.name + ".password";
  return ctx.positions.count(table_key) != 0 ? table_key : "users." + u.name;
}

// A user pgsluice itself logs in to servers as (auth_user, a database's forced user)
// needs something it can answer a password challenge with.
void check_server_login(context& ctx, const config& c, const std::string& key, std::string_view user,
                        std::string_view purpose) {
  const user_config* u = c.find_user(user);
  if (u == nullptr) {
    ctx.error_at(key, "user '" + std::string(user) + "' is not defined in [users] (" + std::string(purpose) + ")");
  } else if (u->password_kind == secret_kind::scram_sha_256) {
    ctx.error_at(key, "user '" + std::string(user) +
                          "' has only a SCRAM verifier, which cannot log in to a server; give its plaintext "
                          "password (" + std::string(purpose) + ")");
  }
}

void check_cross_references(context& ctx, config& c) {
  if (ctx.declared_databases == 0) ctx.error_at("databases", "no database defined; add a [databases.<name>] table");

  if (c.min_pool_size > c.default_pool_size) {
    ctx.error_at("min_pool_size", "must not exceed default_pool_size " + std::to_string(c.default_pool_size) +
                                      " (got " + std::to_string(c.min_pool_size) + ")");
  }

  const bool lookups = !c.auth_user.empty();
  for (const auto& u : c.users) {
    const std::string key = password_key(u, ctx);
    if (c.auth_type == auth_type::md5 && u.password_kind == secret_kind::scram_sha_256) {
      ctx.error_at(key, "user '" + u.name +
                            "' has only a SCRAM verifier, which cannot check an md5 login (auth_type = \"md5\"); "
                            "give the plaintext password or use auth_type = \"scram-sha-256\"");
    } else if (c.auth_type == auth_type::scram_sha_256 && u.password_kind == secret_kind::md5) {
      ctx.error_at(key, "user '" + u.name +
                            "' has only an md5 hash, which cannot check a SCRAM login (auth_type = "
                            "\"scram-sha-256\"); give the plaintext password or a SCRAM verifier, or use "
                            "auth_type = \"md5\"");
    } else if (c.auth_type != auth_type::trust && ctx.users_with_password.count(u.name) == 0 && !lookups) {
      ctx.error_at("users." + u.name, "user '" + u.name + "' has no password and auth_type is \"" +
                                          std::string(to_string(c.auth_type)) +
                                          "\"; give a password (or set auth_user to look it up)");
    }
  }

  if (lookups) {
    check_server_login(ctx, c, "auth_user", c.auth_user, "auth_user runs auth_query");
    if (c.auth_query.find("$1") == std::string::npos) {
      ctx.error_at("auth_query", "must take the user name as parameter $1");
    }
  }
  for (const auto& db : c.databases) {
    const std::string prefix = "databases." + db.name;
    if (db.user && !db.password) {
      check_server_login(ctx, c, prefix + ".user", *db.user, "or set " + prefix + ".password");
    }
    if (db.auth_user) check_server_login(ctx, c, prefix + ".auth_user", *db.auth_user, "auth_user runs auth_query");
  }

  // Admin console users authenticate against [users] only: there is no server to ask.
  const auto check_console_users = [&](const std::vector<std::string>& names, std::string_view list) {
    for (std::size_t i = 0; i < names.size(); ++i) {
      if (c.find_user(names[i]) == nullptr && c.auth_type != auth_type::trust) {
        ctx.error_at("admin." + std::string(list) + "[" + std::to_string(i) + "]",
                     "user '" + names[i] + "' is not defined in [users]");
      }
    }
  };
  check_console_users(c.admin.admin_users, "admin_users");
  check_console_users(c.admin.stats_users, "stats_users");

  if (c.metrics.port != 0) {
    for (const auto& e : c.listen) {
      if (e.port == c.metrics.port && (e.host == c.metrics.host || e.host == "0.0.0.0" || e.host == "::" ||
                                       c.metrics.host == "0.0.0.0" || c.metrics.host == "::")) {
        ctx.error_at("metrics.port", "port " + std::to_string(c.metrics.port) + " is also a listen port");
      }
    }
    if (!c.metrics.path.starts_with('/')) ctx.error_at("metrics.path", "must start with '/'");
  }
}

// TLS files must exist; relative names are relative to the config file.
void check_tls(context& ctx, tls_config& tls) {
  const auto resolve = [&](std::filesystem::path& file, std::string_view name, bool required, std::string_view why) {
    const std::string key = "tls." + std::string(name);
    if (file.empty()) {
      if (required) ctx.error_at(key, "missing; " + std::string(why));
      return;
    }
    if (file.is_relative()) file = ctx.base_dir / file;
    std::error_code ec;
    if (!std::filesystem::is_regular_file(file, ec)) ctx.error_at(key, "file not found: " + file.string());
  };
  const bool client_on = tls.client_tls_mode != tls_mode::disable;
  const bool client_verify = tls.client_tls_mode == tls_mode::verify_ca || tls.client_tls_mode == tls_mode::verify_full;
  resolve(tls.client_tls_cert_file, "client_tls_cert_file", client_on, "client_tls_mode needs a certificate");
  resolve(tls.client_tls_key_file, "client_tls_key_file", client_on, "client_tls_mode needs a private key");
  resolve(tls.client_tls_ca_file, "client_tls_ca_file", client_verify, "verifying client certificates needs a CA");
  const bool server_verify = tls.server_tls_mode == tls_mode::verify_ca || tls.server_tls_mode == tls_mode::verify_full;
  resolve(tls.server_tls_ca_file, "server_tls_ca_file", server_verify, "verifying server certificates needs a CA");
  resolve(tls.server_tls_cert_file, "server_tls_cert_file", !tls.server_tls_key_file.empty(),
          "server_tls_key_file is set");
  resolve(tls.server_tls_key_file, "server_tls_key_file", !tls.server_tls_cert_file.empty(),
          "server_tls_cert_file is set");
  if (client_on) ctx.warning_at("tls.client_tls_mode", "TLS is not built yet: this setting is validated but has no effect");
  if (tls.server_tls_mode != tls_mode::disable) {
    ctx.warning_at("tls.server_tls_mode", "TLS is not built yet: this setting is validated but has no effect");
  }
}

void sort_by_line(std::vector<config_problem>& problems) {
  // File order; problems without a line (whole-file ones) first.
  std::stable_sort(problems.begin(), problems.end(),
                   [](const config_problem& a, const config_problem& b) { return a.line < b.line; });
}

std::shared_ptr<const config> load(context& ctx, std::string_view text, std::filesystem::path source) {
  toml::table root;
  try {
    root = toml::parse(text, std::string_view(ctx.file));
  } catch (const toml::parse_error& e) {
    ctx.error(at(e.source()), "", "TOML syntax error: " + std::string(e.description()));
    throw config_error(std::move(ctx.problems));
  }

  auto c = std::make_shared<config>();
  c->source = std::move(source);
  read_table<config>(ctx, root, root_schema, *c, "");
  if (const toml::node* listen = root.get("listen")) read_listen(ctx, *listen, *c);
  read_section<tls_config>(ctx, root, "tls", tls_schema, c->tls);
  read_section<log_config>(ctx, root, "log", log_schema, c->log);
  read_section<admin_config>(ctx, root, "admin", admin_schema, c->admin);
  read_section<metrics_config>(ctx, root, "metrics", metrics_schema, c->metrics);
  // Users first: databases refer to them.
  if (const toml::node* users = root.get("users")) {
    if (const auto* t = expect_table(ctx, *users, "users")) {
      for (auto&& [name, node] : *t) {
        ctx.positions["users." + std::string(name.str())] = at(name.source());
        read_user(ctx, name.str(), node, *c);
      }
    }
  }
  if (const toml::node* databases = root.get("databases")) {
    if (const auto* t = expect_table(ctx, *databases, "databases")) {
      for (auto&& [name, node] : *t) {
        const std::string key = "databases." + std::string(name.str());
        ctx.positions[key] = at(name.source());
        ++ctx.declared_databases;
        if (const auto* db = expect_table(ctx, node, key)) read_database(ctx, name.str(), *db, *c);
      }
    }
  }
  check_cross_references(ctx, *c);
  check_tls(ctx, c->tls);

  if (!ctx.problems.empty()) {
    sort_by_line(ctx.problems);
    throw config_error(std::move(ctx.problems));
  }
  sort_by_line(ctx.warnings);
  c->warnings = std::move(ctx.warnings);
  return c;
}

// --- rendering values for docs and SHOW CONFIG -------------------------------------

template <class T>
std::string render(const T& v) {
  if constexpr (is_optional<T>::value) {
    return v ? render(*v) : std::string("(unset)");
  } else if constexpr (std::is_same_v<T, duration>) {
    return v.count() == 0 ? std::string("0") : quote(format_duration(v));
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
        if constexpr (std::is_same_v<decltype(member), std::monostate>) return std::string(s.default_text);
        else return render(owner.*member);
      },
      s.member);
}

template <class Owner>
void describe(std::vector<setting_doc>& out, std::span<const setting<Owner>> schema, std::string_view prefix) {
  const Owner defaults{};
  for (const auto& s : schema) {
    if (s.description.empty()) continue;  // sections, documented by their own keys
    out.push_back({join_key(prefix, s.key),
                   s.default_text.empty() ? render_member(s, defaults) : std::string(s.default_text),
                   std::string(s.description)});
  }
}

template <class Owner>
void current(std::vector<setting_value>& out, std::span<const setting<Owner>> schema, std::string_view prefix,
             const Owner& now) {
  const Owner defaults{};
  for (const auto& s : schema) {
    if (std::holds_alternative<std::monostate>(s.member)) continue;
    out.push_back({join_key(prefix, s.key), render_member(s, now), render_member(s, defaults)});
  }
}

}  // namespace

std::shared_ptr<const config> load_config(const std::filesystem::path& file) {
  context ctx;
  ctx.file = file.string();
  ctx.base_dir = file.parent_path();
  std::error_code ec;
  if (std::filesystem::is_directory(file, ec)) {
    ctx.error({}, "", "is a directory, not a config file");
    throw config_error(std::move(ctx.problems));
  }
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    const bool exists = std::filesystem::exists(file, ec);
    ctx.error({}, "", exists ? "cannot read config file (permission denied?)" : "config file not found");
    throw config_error(std::move(ctx.problems));
  }
  std::ostringstream text;
  text << in.rdbuf();
  return load(ctx, text.str(), file);
}

std::shared_ptr<const config> load_config_from_string(std::string_view text, std::string_view name) {
  context ctx;
  ctx.file = std::string(name);
  ctx.base_dir = std::filesystem::current_path();
  return load(ctx, text, {});
}

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

// Checks across keys of a loaded config: backends, passwords against auth_type, referenced users, auth lookups.
#include <sys/un.h>

#include <filesystem>
#include <set>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "conf/config.hpp"
#include "conf/loading.hpp"

namespace pgsluice::conf::detail {

namespace {

// A host holding a '/' is a Unix-socket directory, as libpq reads `host`: PostgreSQL's socket
// <dir>/.s.PGSQL.<port> is in it (unix_socket_directories). Checked here so that a typo fails
// `check` instead of every connection: absolute, an existing directory, and short enough for
// the socket's path to fit in sockaddr_un. The socket itself may appear later (server down).
void check_socket_dir(context& ctx, const backend_config& b, const std::string& key) {
  if (b.host.find('/') == std::string::npos) return;
  if (!b.host.starts_with('/')) {
    ctx.error_at(key, "a Unix-socket directory must be an absolute path, e.g. \"/var/run/postgresql\" (got \"" +
                          b.host + "\"; a host name cannot contain '/')");
    return;
  }
  std::error_code ec;
  const auto st = std::filesystem::status(b.host, ec);
  if (!std::filesystem::exists(st)) {
    ctx.error_at(key, "the Unix-socket directory \"" + b.host + "\" does not exist");
    return;
  }
  if (!std::filesystem::is_directory(st)) {
    ctx.error_at(key, "\"" + b.host + "\" is not a directory: host names the directory holding the server's "
                      "socket (.s.PGSQL." + std::to_string(b.port) + "), not the socket itself");
    return;
  }
  const std::string path = b.host + "/.s.PGSQL." + std::to_string(b.port);
  if (path.size() >= sizeof(sockaddr_un::sun_path)) {
    ctx.error_at(key, "the socket path \"" + path + "\" is longer than the " +
                          std::to_string(sizeof(sockaddr_un::sun_path) - 1) + " bytes a Unix socket's name can have");
  }
}

}  // namespace

void check_backends(context& ctx, const database_config& db, const std::string& prefix) {
  for (std::size_t i = 0; i < db.backends.size(); ++i) {
    const std::string element = prefix + ".backends[" + std::to_string(i) + "].host";
    check_socket_dir(ctx, db.backends[i], ctx.positions.count(element) != 0 ? element : prefix + ".host");
  }
  if (!ctx.routing) {
    // Each backend's role and weight are refused on their own lines when not the default.
    if (db.backends.size() > 1) {
      ctx.error_at(prefix + ".backends[1]",
                   "not supported yet: pgsluice uses one backend per database in this version (no replicas, no "
                   "read/write routing); list only the primary");
    }
    return;
  }
  std::size_t primaries = 0;
  bool automatic = false;
  for (std::size_t i = 0; i < db.backends.size(); ++i) {
    const auto& b = db.backends[i];
    const std::string element = prefix + ".backends[" + std::to_string(i) + "]";
    if (b.role == backend_role::automatic) {
      automatic = true;  // the health checks ask the server (pg_is_in_recovery())
    } else if (b.role == backend_role::primary && ++primaries == 2) {
      ctx.error_at(element + ".role", "a second primary: a database has exactly one (never two writable primaries)");
    }
    for (std::size_t j = 0; j < i; ++j) {
      if (db.backends[j].host == b.host && db.backends[j].port == b.port && !b.host.empty()) {
        ctx.error_at(element, "the same server as backends[" + std::to_string(j) + "] (" + b.host + ":" +
                                  std::to_string(b.port) + ")");
        break;
      }
    }
  }
  if (primaries == 0 && !automatic && !db.backends.empty()) {
    ctx.error_at(prefix + ".backends", "needs a backend with role = \"primary\" (writes go there)");
  }
}

namespace {

// Where a routing setting of `db` was written: the database's own key, else the global one.
std::string routing_key(const context& ctx, const database_config& db, std::string_view key) {
  const std::string own = "databases." + db.name + "." + std::string(key);
  return ctx.positions.count(own) != 0 ? own : std::string(key);
}

// A function name as SQL writes it, unquoted: [schema.]name, letters, digits, _ and $.
bool is_function_name(std::string_view name) {
  bool start = true;
  for (char c : name) {
    const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    const bool digit = (c >= '0' && c <= '9') || c == '$';
    if (c == '.') {
      if (start) return false;
      start = true;
      continue;
    }
    if (!letter && !(digit && !start)) return false;
    start = false;
  }
  return !start;
}

void check_function_names(context& ctx, const std::vector<std::string>& names, const std::string& key) {
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (!is_function_name(names[i])) {
      ctx.error_at(key + "[" + std::to_string(i) + "]",
                   "must be a function name such as \"audit_insert\" or \"app.next_ticket\", without parentheses "
                   "or quotes (got \"" + names[i] + "\")");
    }
  }
}

}  // namespace

void check_routing(context& ctx, const config& c) {
  check_function_names(ctx, c.write_functions, "write_functions");
  for (const auto& db : c.databases) {
    if (db.write_functions) check_function_names(ctx, *db.write_functions, "databases." + db.name + ".write_functions");
  }
  // While routing is off every routing key is refused unless at its default; the defaults agree.
  if (!ctx.routing) return;
  for (const auto& db : c.databases) {
    const routing_settings r = c.effective_routing(db, nullptr);
    if (!r.read_write_split) continue;
    if (r.primary_reads == primary_reads::never && !db.has_replicas()) {
      ctx.error_at(routing_key(ctx, db, "primary_reads"),
                   "\"never\" leaves database '" + db.name + "' no backend for reads: it lists no replica");
    }
    if (r.primary_reads == primary_reads::never && r.consistency == consistency::primary_after_write) {
      ctx.error_at(routing_key(ctx, db, "primary_reads"),
                   "\"never\" contradicts consistency = \"primary_after_write\" for database '" + db.name +
                       "' (which sends reads after a write to the primary)");
    }
  }
}

namespace {

constexpr std::string_view no_lookups = "has no effect without auth_user, which turns lookups on";

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

// pool_size = "auto": its bounds in order, and only where transactions release their servers
// (in session mode a server is held for a whole session, whose length says nothing of the server).
void check_pool_size_auto(context& ctx, const config& c) {
  if (c.pool_size_auto_min > c.pool_size_auto_max) {
    ctx.error_at("pool_size_auto_min", "must not exceed pool_size_auto_max " + std::to_string(c.pool_size_auto_max) +
                                           " (got " + std::to_string(c.pool_size_auto_min) + ")");
  }
  std::set<std::string> reported;
  for (const auto& db : c.databases) {
    std::vector<const user_config*> users{nullptr};
    for (const auto& u : c.users) users.push_back(&u);
    for (const user_config* u : users) {
      const pool_settings ps = c.effective_pool(db, u);
      if (!ps.pool_size_auto || ps.pool_mode != pool_mode::session) continue;
      const std::string key = u != nullptr && u->pool_size   ? "users." + u->name + ".pool_size"
                              : db.pool_size ? "databases." + db.name + ".pool_size"
                                             : std::string("default_pool_size");
      if (!reported.insert(key).second) continue;
      ctx.error_at(key, "not supported yet: \"auto\" needs pool_mode = \"transaction\" (" +
                            (u != nullptr ? "user " + u->name + " in " : std::string()) + "database " + db.name +
                            " pools in session mode)");
    }
  }
}

// pipeline_depth: only where transactions release their servers, and not yet where reads are
// routed to replicas (a queued statement would have to be routed, and read-your-writes kept).
void check_pipeline(context& ctx, const config& c) {
  bool global_reported = false;
  for (const auto& db : c.databases) {
    const std::uint32_t depth = c.effective_pipeline_depth(db);
    if (depth == 0) continue;
    const bool own = db.pipeline_depth.has_value();
    if (!own && global_reported) continue;
    const std::string key = own ? "databases." + db.name + ".pipeline_depth" : std::string("pipeline_depth");
    const pool_mode mode = c.effective_pool_mode(db, nullptr);
    if (mode != pool_mode::transaction) {
      ctx.error_at(key, "needs pool_mode = \"transaction\" (got \"" + std::string(to_string(mode)) + "\")");
    } else if (db.has_replicas()) {
      ctx.error_at(key, "not supported yet with replicas (database " + db.name +
                            " lists replicas); set it to 0 for that database or remove the replicas");
    } else {
      continue;
    }
    if (!own) global_reported = true;
  }
}

}  // namespace

void check_cross_references(context& ctx, config& c) {
  if (ctx.declared_databases == 0) ctx.error_at("databases", "no database defined; add a [databases.<name>] table");

  const std::uint32_t default_size = c.default_pool_size == pool_size_auto ? c.pool_size_auto_max : c.default_pool_size;
  if (c.min_pool_size > default_size) {
    ctx.error_at("min_pool_size", "must not exceed default_pool_size " + std::to_string(default_size) +
                                      " (got " + std::to_string(c.min_pool_size) + ")");
  }
  check_pool_size_auto(ctx, c);
  check_pipeline(ctx, c);

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
    if (!c.auth_dbname.empty() && c.find_database(c.auth_dbname) == nullptr) {
      ctx.error_at("auth_dbname", "database '" + c.auth_dbname + "' is not defined in [databases]");
    }
  } else {
    // Lookups are off without auth_user: the keys that shape them would be accepted and ignored.
    if (!c.auth_dbname.empty()) ctx.error_at("auth_dbname", std::string(no_lookups));
    if (c.auth_query != config{}.auth_query) ctx.error_at("auth_query", std::string(no_lookups));
    if (c.auth_query_cache_ttl != config{}.auth_query_cache_ttl) {
      ctx.error_at("auth_query_cache_ttl", std::string(no_lookups));
    }
  }
  for (const auto& db : c.databases) {
    const std::string prefix = "databases." + db.name;
    if (db.user && !db.password) {
      check_server_login(ctx, c, prefix + ".user", *db.user, "or set " + prefix + ".password");
    }
    if (!db.auth_user) continue;
    if (lookups) {
      check_server_login(ctx, c, prefix + ".auth_user", *db.auth_user, "auth_user runs auth_query");
    } else {
      ctx.error_at(prefix + ".auth_user", std::string(no_lookups) + " (it only overrides the global auth_user)");
    }
  }
  // Console users log in as clients do: one known nowhere cannot (PgBouncer accepts it too).
  if (!lookups && c.auth_type != auth_type::trust) {
    for (const auto* list : {&c.admin.admin_users, &c.admin.stats_users}) {
      for (const auto& name : *list) {
        if (c.find_user(name) != nullptr) continue;
        ctx.warning_at(list == &c.admin.admin_users ? "admin.admin_users" : "admin.stats_users",
                       "user '" + name + "' is not in [users] and auth_user is not set: it cannot log in to the console");
      }
    }
  }
}

}  // namespace pgsluice::conf::detail

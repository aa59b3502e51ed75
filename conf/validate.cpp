// Checks across keys of a loaded config: backends, passwords against auth_type, referenced users, TLS files.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <set>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "conf/config.hpp"
#include "conf/loading.hpp"

namespace pgsluice::conf::detail {

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

namespace {

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

}  // namespace

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

}  // namespace pgsluice::conf::detail

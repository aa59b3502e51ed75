// Reading pgsluice.toml into a config through the schema tables, reporting each bad key with its line.
//
// A key that cannot be read leaves its member at the default and adds a
// problem; reading goes on, so one run reports every problem of the file.
#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include <toml++/toml.h>

#include "conf/config.hpp"
#include "conf/detail.hpp"
#include "conf/loading.hpp"
#include "conf/schema.hpp"

namespace pgsluice::conf::detail {
namespace {

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

position at(const toml::source_region& r) { return {r.begin.line, r.begin.column}; }

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

// --- typo suggestions -----------------------------------------------------------

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
constexpr bool is_enum_value = std::is_enum_v<T>;

std::string range_text(std::int64_t v) { return v == unlimited ? std::string("unlimited") : std::to_string(v); }

// One part of max_replica_lag: a size (WAL bytes) or a duration (replay delay). A bare number
// would be either, so only 0 ("off") may go without a unit.
constexpr std::string_view lag_forms =
    "must be a size of WAL such as \"16MB\", a replay delay such as \"2s\", both as [\"16MB\", \"2s\"], or 0";

bool read_lag_part(context& ctx, const toml::node& node, const std::string& key, replica_lag& lag, bool& seen_bytes,
                   bool& seen_time) {
  const position p = at(node.source());
  const auto* s = node.as_string();
  if (s == nullptr) {
    ctx.error(p, key, std::string(lag_forms) + " (got " + type_name(node) + ")");
    return false;
  }
  const std::string_view text = s->get();
  const auto bytes = parse_size(text);
  const auto time = parse_duration(text);
  if (bytes && time) {  // a bare number
    if (*bytes == 0) return true;
    ctx.error(p, key, "needs a unit: a size of WAL such as \"16MB\" or a replay delay such as \"2s\" (got " +
                          quote(text) + ")");
    return false;
  }
  if (!bytes && !time) {
    ctx.error(p, key, std::string(lag_forms) + " (got " + quote(text) + ")");
    return false;
  }
  if ((bytes && seen_bytes) || (time && seen_time)) {
    ctx.error(p, key, std::string("gives the ") + (bytes ? "WAL size" : "replay delay") + " twice (got " +
                          quote(text) + ")");
    return false;
  }
  if (time && *time > duration{day_ms}) {
    ctx.error(p, key, "must be at most 1d of replay delay (got " + quote(text) + ")");
    return false;
  }
  if (bytes) {
    lag.bytes = *bytes;
    seen_bytes = true;
  } else {
    lag.time = *time;
    seen_time = true;
  }
  return true;
}

std::optional<replica_lag> read_replica_lag(context& ctx, const toml::node& node, const std::string& key) {
  replica_lag lag;
  bool seen_bytes = false;
  bool seen_time = false;
  if (const auto* i = node.as_integer()) {
    if (i->get() == 0) return lag;
    ctx.error(at(node.source()), key, std::string(lag_forms) + " (got " + std::to_string(i->get()) + ")");
    return std::nullopt;
  }
  if (const auto* a = node.as_array()) {
    if (a->empty() || a->size() > 2) {
      ctx.error(at(node.source()), key, std::string(lag_forms) + " (got an array of " + std::to_string(a->size()) + ")");
      return std::nullopt;
    }
    bool ok = true;
    for (std::size_t i = 0; i < a->size(); ++i) {
      ok = read_lag_part(ctx, *a->get(i), key + '[' + std::to_string(i) + ']', lag, seen_bytes, seen_time) && ok;
    }
    if (!ok) return std::nullopt;
    return lag;
  }
  if (!read_lag_part(ctx, node, key, lag, seen_bytes, seen_time)) return std::nullopt;
  return lag;
}

template <class T>
std::optional<T> read_value(context& ctx, const toml::node& node, const std::string& key, bounds range) {
  const position p = at(node.source());
  const auto wrong_type = [&](std::string_view expected) {
    ctx.error(p, key, "must be " + std::string(expected) + " (got " + type_name(node) + ")");
    return std::nullopt;
  };
  if constexpr (std::is_same_v<T, std::uint32_t> || std::is_same_v<T, std::uint16_t>) {
    if (range.or_auto) {
      if (const auto* s = node.as_string(); s != nullptr && s->get() == "auto") return static_cast<T>(pool_size_auto);
      if (const auto* s = node.as_string()) {
        ctx.error(p, key, "must be an integer or \"auto\" (got " + quote(s->get()) + ")");
        return std::nullopt;
      }
      if (node.as_integer() == nullptr) return wrong_type("an integer or \"auto\"");
    }
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
  } else if constexpr (std::is_same_v<T, replica_lag>) {
    (void)range;
    return read_replica_lag(ctx, node, key);
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

// A key not supported yet may only repeat its default, which asks for nothing; any other
// value would be accepted and ignored.
template <class Owner, class Member>
void refuse_unless_default(context& ctx, position p, const std::string& key, const setting<Owner>& s,
                           const Owner& owner, Member member) {
  const std::string_view missing = missing_of(s, ctx.routing);
  if (!missing.empty() && owner.*member != defaults_of<Owner>().*member) {
    ctx.error(p, key, "not supported yet: " + std::string(missing));
  }
}

// Reads every key of `table` that the schema maps to a member; reports unknown keys and
// refuses keys not supported yet. Keys mapped to monostate are left for the caller.
template <class Owner>
void read_table(context& ctx, const toml::table& table, std::span<const setting<Owner>> schema, Owner& owner,
                std::string_view prefix) {
  for (auto&& [k, value_node] : table) {
    const toml::node& node = value_node;  // lambdas cannot capture structured bindings before clang 16
    const std::string key = join_key(prefix, k.str());
    const position key_at = at(k.source());
    ctx.positions[key] = key_at;
    const setting<Owner>* s = find_setting(schema, k.str());
    if (s == nullptr) {
      unknown_key(ctx, key_at, key, k.str(), keys_of(schema), prefix.empty());
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
            refuse_unless_default(ctx, key_at, key, *s, owner, member);
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
  check_backends(ctx, db, prefix);

  if (db.dbname.empty() && name != "*") db.dbname = db.name;
  if (db.password && !db.user) ctx.error_at(prefix + ".password", "needs user: it is the password of that server login");
  std::uint32_t pool_size = db.pool_size.value_or(c.default_pool_size);
  if (pool_size == pool_size_auto) pool_size = c.pool_size_auto_max;
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

}  // namespace

bool read_document(context& ctx, std::string_view text, config& c) {
  toml::table root;
  try {
    root = toml::parse(text, std::string_view(ctx.file));
  } catch (const toml::parse_error& e) {
    ctx.error(at(e.source()), "", "TOML syntax error: " + std::string(e.description()));
    return false;
  }
  read_table<config>(ctx, root, root_schema, c, "");
  if (const toml::node* listen = root.get("listen")) read_listen(ctx, *listen, c);
  read_section<tls_config>(ctx, root, "tls", tls_schema, c.tls);
  read_section<log_config>(ctx, root, "log", log_schema, c.log);
  read_section<admin_config>(ctx, root, "admin", admin_schema, c.admin);
  read_section<metrics_config>(ctx, root, "metrics", metrics_schema, c.metrics);
  // Users first: databases refer to them.
  if (const toml::node* users = root.get("users")) {
    if (const auto* t = expect_table(ctx, *users, "users")) {
      for (auto&& [name, node] : *t) {
        ctx.positions["users." + std::string(name.str())] = at(name.source());
        read_user(ctx, name.str(), node, c);
      }
    }
  }
  if (const toml::node* databases = root.get("databases")) {
    if (const auto* t = expect_table(ctx, *databases, "databases")) {
      for (auto&& [name, node] : *t) {
        const std::string key = "databases." + std::string(name.str());
        ctx.positions[key] = at(name.source());
        ++ctx.declared_databases;
        if (const auto* db = expect_table(ctx, node, key)) read_database(ctx, name.str(), *db, c);
      }
    }
  }
  return true;
}

}  // namespace pgsluice::conf::detail

// Lookups on a loaded config, override resolution, error formatting and reload restrictions.
#include <algorithm>
#include <string>
#include <thread>

#include "conf/config.hpp"

namespace pgsluice::conf {

std::string config_problem::to_string() const {
  std::string out = file.empty() ? std::string("<config>") : file;
  if (line != 0) {
    out += ':' + std::to_string(line);
    // Syntax errors have no key; the column is what locates them.
    if (key.empty() && column != 0) out += ':' + std::to_string(column);
  }
  out += ": ";
  if (!key.empty()) out += "key '" + key + "': ";
  out += message;
  return out;
}

namespace {
std::string join_problems(const std::vector<config_problem>& problems) {
  std::string out;
  for (const auto& p : problems) {
    if (!out.empty()) out += '\n';
    out += p.to_string();
  }
  return out;
}
}  // namespace

config_error::config_error(std::vector<config_problem> problems)
    : std::runtime_error(join_problems(problems)), problems_(std::move(problems)) {}

const backend_config* database_config::primary() const noexcept {
  for (const auto& b : backends) {
    if (b.role == backend_role::primary) return &b;
  }
  return nullptr;
}

bool database_config::has_replicas() const noexcept {
  // A backend whose role is asked of the server ("auto") may be a replica.
  for (const auto& b : backends) {
    if (b.role == backend_role::replica || (b.role == backend_role::automatic && backends.size() > 1)) return true;
  }
  return false;
}

const database_config* config::find_database(std::string_view name) const noexcept {
  const database_config* fallback = nullptr;
  for (const auto& db : databases) {
    if (db.name == name) return &db;
    if (db.name == "*") fallback = &db;
  }
  return fallback;
}

const user_config* config::find_user(std::string_view name) const noexcept {
  for (const auto& u : users) {
    if (u.name == name) return &u;
  }
  return nullptr;
}

pool_settings config::effective_pool(const database_config& db, const user_config* user) const noexcept {
  pool_settings s{};
  s.pool_mode = pool_mode;
  if (db.pool_mode) s.pool_mode = *db.pool_mode;
  if (user != nullptr && user->pool_mode) s.pool_mode = *user->pool_mode;
  s.pool_size = default_pool_size;
  if (db.pool_size) s.pool_size = *db.pool_size;
  if (user != nullptr && user->pool_size) s.pool_size = *user->pool_size;
  if (s.pool_size == pool_size_auto) {
    s.pool_size_auto = true;
    s.pool_size_auto_min = pool_size_auto_min;
    s.pool_size = pool_size_auto_max;
  }
  s.min_pool_size = db.min_pool_size.value_or(min_pool_size);
  s.reserve_pool_size = db.reserve_pool_size.value_or(reserve_pool_size);
  s.max_db_connections = db.max_db_connections.value_or(max_db_connections);
  s.max_user_connections = max_user_connections;
  if (user != nullptr && user->max_user_connections) s.max_user_connections = *user->max_user_connections;
  return s;
}

routing_settings config::effective_routing(const database_config& db, const user_config* user) const {
  routing_settings s;
  s.read_write_split = db.read_write_split.value_or(read_write_split.value_or(db.has_replicas()));
  s.load_balance = db.load_balance.value_or(load_balance);
  s.primary_reads = db.primary_reads.value_or(primary_reads);
  s.max_replica_lag = db.max_replica_lag.value_or(max_replica_lag);
  s.consistency = db.consistency.value_or(consistency);
  s.primary_after_write_for = db.primary_after_write_for.value_or(primary_after_write_for);
  s.read_your_writes_wait = db.read_your_writes_wait.value_or(read_your_writes_wait);
  s.write_functions = db.write_functions.value_or(write_functions);
  s.target_session_attrs = db.target_session_attrs.value_or(target_session_attrs);
  if (user != nullptr && user->target_session_attrs) s.target_session_attrs = *user->target_session_attrs;
  s.lag_check_interval = lag_check_interval;
  return s;
}

std::uint32_t config::effective_workers() const noexcept {
  if (workers != 0) return workers;
  // Half the cores: the pooler usually shares its host with PostgreSQL (or the application),
  // and on a 2-core host one event loop beat two in throughput and p99 (BENCHMARKS.md).
  return std::max(1u, std::thread::hardware_concurrency() / 2);
}

bool config::is_admin_user(std::string_view user) const noexcept {
  return std::find(admin.admin_users.begin(), admin.admin_users.end(), user) != admin.admin_users.end();
}

bool config::is_stats_user(std::string_view user) const noexcept {
  return is_admin_user(user) ||
         std::find(admin.stats_users.begin(), admin.stats_users.end(), user) != admin.stats_users.end();
}

namespace {
std::string endpoints(const std::vector<listen_endpoint>& list) {
  std::string out;
  for (const auto& e : list) {
    if (!out.empty()) out += ", ";
    // IPv6 literals are bracketed so the port stays readable.
    out += e.host.find(':') != std::string::npos ? "[" + e.host + "]" : e.host;
    out += ':' + std::to_string(e.port);
  }
  return out;
}

template <class T>
void restrict(std::vector<std::string>& out, std::string_view key, const T& old_value, const T& new_value,
              const std::string& old_text, const std::string& new_text) {
  if (old_value == new_value) return;
  out.push_back(std::string(key) + ": " + old_text + " -> " + new_text +
                " needs a restart; keeping " + old_text);
}
}  // namespace

std::vector<std::string> reload_restrictions(const config& old, const config& next) {
  std::vector<std::string> out;
  restrict(out, "listen", old.listen, next.listen, endpoints(old.listen), endpoints(next.listen));
  restrict(out, "listen_backlog", old.listen_backlog, next.listen_backlog, std::to_string(old.listen_backlog),
           std::to_string(next.listen_backlog));
  restrict(out, "workers", old.workers, next.workers, std::to_string(old.workers), std::to_string(next.workers));
  const auto metrics_text = [](const metrics_config& m) {
    return m.port == 0 ? std::string("off") : m.host + ':' + std::to_string(m.port) + m.path;
  };
  restrict(out, "metrics", metrics_text(old.metrics), metrics_text(next.metrics), metrics_text(old.metrics),
           metrics_text(next.metrics));
  return out;
}

}  // namespace pgsluice::conf

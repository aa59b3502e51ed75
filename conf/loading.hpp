// Internal to conf/: what one load carries (every problem found, where each key was written) and the steps sharing it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "conf/config.hpp"

namespace pgsluice::conf::detail {

struct position {
  std::uint32_t line = 0;
  std::uint32_t column = 0;
};

// What one load accepts beyond the released defaults (tests of features not switched on yet).
struct load_options {
  bool routing;  // read/write routing keys accepted (routing_supported in released builds)
};

struct context {
  std::string file;
  bool routing = false;  // see load_options
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

// conf/reader.cpp: parses `text` as TOML and reads it into `c` through the schema tables, with
// the checks that concern one key or one table. False on a TOML syntax error (reported), after
// which nothing else can be read.
bool read_document(context& ctx, std::string_view text, config& c);

// conf/validate.cpp: checks that span several keys.
// A database's backend list: one primary, and replicas when routing is on.
void check_backends(context& ctx, const database_config& db, const std::string& prefix);
// The routing settings of every database, resolved, against each other and its backends.
void check_routing(context& ctx, const config& c);
// Passwords against auth_type, users that must exist, the keys that need auth_user.
void check_cross_references(context& ctx, config& c);
// conf/tls_check.cpp: the [tls] keys against each other; relative paths made absolute.
void check_tls(context& ctx, config& c);

// conf/loader.cpp: load_config_from_string with the features `options` switches on.
std::shared_ptr<const config> load_config_from_string(std::string_view text, std::string_view name,
                                                      const load_options& options);

}  // namespace pgsluice::conf::detail

// Internal to conf/: the shape of the schema tables (one entry per accepted key) and the tables themselves.
//
// Every accepted key is an entry in one of the tables declared below (key, the
// member it fills, its allowed range, a description, and what is missing when it
// is not supported yet); conf/schema.cpp defines them. The reader
// (conf/reader.cpp) loads through them and describe_settings() /
// current_settings() render them, so a key is added in one place.
#pragma once

#include <cstdint>
#include <filesystem>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

#include "conf/config.hpp"

namespace pgsluice::conf::detail {

inline constexpr std::int64_t unlimited = std::numeric_limits<std::int64_t>::max();

struct bounds {
  std::int64_t min = 0;
  std::int64_t max = unlimited;
  // A pool size: the string "auto" is accepted too (stored as conf::pool_size_auto).
  bool or_auto = false;
};

// Member pointers for every value type a key can have. monostate = read by hand (sections, shorthands).
template <class Owner>
using target = std::variant<std::monostate, std::uint32_t Owner::*, std::uint16_t Owner::*, duration Owner::*,
                            std::uint64_t Owner::*, std::string Owner::*, bool Owner::*, pool_mode Owner::*,
                            auth_type Owner::*, backend_role Owner::*, tls_mode Owner::*, log_level Owner::*,
                            log_format Owner::*, std::filesystem::path Owner::*,
                            std::vector<std::string> Owner::*, std::optional<std::uint32_t> Owner::*,
                            std::optional<std::string> Owner::*, std::optional<pool_mode> Owner::*,
                            std::optional<bool> Owner::*, std::optional<duration> Owner::*,
                            load_balance Owner::*, std::optional<load_balance> Owner::*, primary_reads Owner::*,
                            std::optional<primary_reads> Owner::*, consistency Owner::*,
                            std::optional<consistency> Owner::*, target_session_attrs Owner::*,
                            std::optional<target_session_attrs> Owner::*, replica_lag Owner::*,
                            std::optional<replica_lag> Owner::*, std::optional<std::vector<std::string>> Owner::*,
                            failover_mode Owner::*>;

// THE SWITCH for read/write routing (defined in conf/schema.cpp). While it is false, `check`
// and `serve` refuse as "not supported yet", naming key and line: a second backend in a
// database, a backend's role and weight, and every key of a setting marked `routing` below
// unless it repeats its default. Setting it to true lifts all of those refusals at once (the
// keys are read and checked fully either way); role = "auto" stays refused, as it belongs to
// failover. Tests load with it on through detail::load_options.
extern const bool routing_supported;
// What the refusal of a routing key says while routing is not supported.
extern const std::string_view routing_missing;

template <class Owner>
struct setting {
  std::string_view key;
  target<Owner> member;
  bounds range;
  std::string_view description;
  // Shown instead of the member's default in the docs (e.g. "inherits default_pool_size").
  std::string_view default_text = {};
  // Non-empty: the key is not supported yet, and this says what is missing. The loader then
  // refuses any value but the default (which asks for nothing) and the docs mark the key.
  std::string_view missing = {};
  // A key of read/write routing: refused with routing_missing while routing is off.
  bool routing = false;
};

// What is missing for `s` to be accepted with any value (empty: nothing), routing on or off.
template <class Owner>
std::string_view missing_of(const setting<Owner>& s, bool routing_on) noexcept {
  if (!s.missing.empty()) return s.missing;
  return s.routing && !routing_on ? routing_missing : std::string_view{};
}

inline constexpr bounds any_value{};
inline constexpr bounds non_empty{1, unlimited};
inline constexpr bounds port_range{1, 65535};
inline constexpr bounds pool_range{1, 100'000};
inline constexpr bounds pool_size_range{1, 100'000, true};
inline constexpr bounds count_range{0, 100'000};
inline constexpr bounds connections{0, 1'000'000};
inline constexpr std::int64_t day_ms = 86'400'000;
inline constexpr bounds up_to_a_day{0, day_ms};
inline constexpr bounds up_to_a_week{0, 7 * day_ms};

// The tables, one per TOML table of the file.
extern const std::span<const setting<config>> root_schema;
extern const std::span<const setting<listen_endpoint>> listen_schema;
extern const std::span<const setting<tls_config>> tls_schema;
extern const std::span<const setting<log_config>> log_schema;
extern const std::span<const setting<admin_config>> admin_schema;
extern const std::span<const setting<metrics_config>> metrics_schema;
extern const std::span<const setting<database_config>> database_schema;
extern const std::span<const setting<backend_config>> backend_schema;
extern const std::span<const setting<user_config>> user_schema;

// A default-constructed Owner: its members are the defaults (the initialisers in config.hpp).
// Defined in conf/schema.cpp for every Owner of a table above.
template <class Owner>
const Owner& defaults_of() noexcept;

template <class T>
struct is_optional : std::false_type {};
template <class T>
struct is_optional<std::optional<T>> : std::true_type {};

// "databases.app" + "pool_size" -> "databases.app.pool_size"; an empty prefix is the root.
std::string join_key(std::string_view prefix, std::string_view key);

// `s` as a TOML basic string, for messages and docs.
std::string quote(std::string_view s);

}  // namespace pgsluice::conf::detail

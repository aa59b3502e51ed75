// Scalar config values: enum spellings, durations, sizes and the kind of a stored password.
#include <array>
#include <charconv>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

#include "conf/config.hpp"
#include "conf/detail.hpp"
#include "protocol/md5.hpp"
#include "protocol/scram.hpp"

namespace pgsluice::conf {

std::string_view to_string(pool_mode v) noexcept { return detail::name_of(v); }
std::string_view to_string(auth_type v) noexcept { return detail::name_of(v); }
std::string_view to_string(secret_kind v) noexcept { return detail::name_of(v); }
std::string_view to_string(backend_role v) noexcept { return detail::name_of(v); }
std::string_view to_string(tls_mode v) noexcept { return detail::name_of(v); }
std::string_view to_string(load_balance v) noexcept { return detail::name_of(v); }
std::string_view to_string(failover_mode v) noexcept { return detail::name_of(v); }
std::string_view to_string(primary_reads v) noexcept { return detail::name_of(v); }
std::string_view to_string(consistency v) noexcept { return detail::name_of(v); }
std::string_view to_string(target_session_attrs v) noexcept { return detail::name_of(v); }
std::string_view to_string(log_level v) noexcept { return detail::name_of(v); }
std::string_view to_string(log_format v) noexcept { return detail::name_of(v); }

std::optional<pool_mode> parse_pool_mode(std::string_view text) noexcept {
  return detail::parse_enum<pool_mode>(text);
}

namespace {

struct unit {
  std::string_view name;
  std::uint64_t factor;
};

// A non-negative integer followed by optional spaces and one of `units`; a bare number uses `bare_factor`.
template <std::size_t N>
std::optional<std::uint64_t> parse_with_units(std::string_view text, const std::array<unit, N>& units,
                                              std::uint64_t bare_factor) noexcept {
  std::size_t i = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
  if (i == 0) return std::nullopt;
  std::uint64_t number = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + i, number);
  if (ec != std::errc{} || end != text.data() + i) return std::nullopt;
  std::string_view suffix = text.substr(i);
  while (!suffix.empty() && suffix.front() == ' ') suffix.remove_prefix(1);
  std::uint64_t factor = 0;
  if (suffix.empty()) {
    factor = bare_factor;
  } else {
    for (const auto& u : units) {
      if (u.name == suffix) factor = u.factor;
    }
    if (factor == 0) return std::nullopt;
  }
  if (number > std::numeric_limits<std::int64_t>::max() / factor) return std::nullopt;
  return number * factor;
}

}  // namespace

secret_kind detect_secret_kind(std::string_view secret) noexcept {
  if (secret.empty()) return secret_kind::none;
  // The same tests PostgreSQL's get_password_type() applies to pg_authid.rolpassword.
  if (protocol::is_md5_hash(secret)) return secret_kind::md5;
  if (protocol::parse_scram_verifier(secret)) return secret_kind::scram_sha_256;
  return secret_kind::plaintext;
}

// Units as PostgreSQL's GUC time units (https://www.postgresql.org/docs/15/config-setting.html),
// plus "m" for minutes.
std::optional<duration> parse_duration(std::string_view text) noexcept {
  static constexpr std::array<unit, 6> units{{{"ms", 1},
                                              {"s", 1000},
                                              {"m", 60'000},
                                              {"min", 60'000},
                                              {"h", 3'600'000},
                                              {"d", 86'400'000}}};
  const auto ms = parse_with_units(text, units, 1);
  if (!ms) return std::nullopt;
  return duration{static_cast<duration::rep>(*ms)};
}

std::string format_duration(duration d) {
  const auto ms = d.count();
  if (ms == 0) return "0";
  static constexpr std::array<unit, 4> units{{{"d", 86'400'000}, {"h", 3'600'000}, {"min", 60'000}, {"s", 1000}}};
  for (const auto& u : units) {
    const auto factor = static_cast<duration::rep>(u.factor);
    if (ms % factor == 0) return std::to_string(ms / factor) + std::string(u.name);
  }
  return std::to_string(ms) + "ms";
}

// 1024-based like PostgreSQL's memory units (kB, MB, GB), with the IEC spellings too.
std::optional<std::uint64_t> parse_size(std::string_view text) noexcept {
  static constexpr std::array<unit, 10> units{{{"B", 1},
                                               {"kB", 1ull << 10},
                                               {"KB", 1ull << 10},
                                               {"KiB", 1ull << 10},
                                               {"MB", 1ull << 20},
                                               {"MiB", 1ull << 20},
                                               {"GB", 1ull << 30},
                                               {"GiB", 1ull << 30},
                                               {"TB", 1ull << 40},
                                               {"TiB", 1ull << 40}}};
  return parse_with_units(text, units, 1);
}

std::string format_size(std::uint64_t bytes) {
  static constexpr std::array<unit, 4> units{{{"TiB", 1ull << 40}, {"GiB", 1ull << 30}, {"MiB", 1ull << 20}, {"KiB", 1ull << 10}}};
  if (bytes != 0) {
    for (const auto& u : units) {
      if (bytes % u.factor == 0) return std::to_string(bytes / u.factor) + std::string(u.name);
    }
  }
  return std::to_string(bytes) + "B";
}

}  // namespace pgsluice::conf

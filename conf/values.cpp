// Scalar config values: enum spellings, durations, sizes and the kind of a stored password.
#include <array>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

#include "conf/config.hpp"
#include "conf/detail.hpp"

namespace pgsluice::conf {

std::string_view to_string(pool_mode v) noexcept { return detail::name_of(v); }
std::string_view to_string(auth_type v) noexcept { return detail::name_of(v); }
std::string_view to_string(secret_kind v) noexcept { return detail::name_of(v); }
std::string_view to_string(backend_role v) noexcept { return detail::name_of(v); }
std::string_view to_string(tls_mode v) noexcept { return detail::name_of(v); }
std::string_view to_string(log_level v) noexcept { return detail::name_of(v); }
std::string_view to_string(log_format v) noexcept { return detail::name_of(v); }

std::optional<pool_mode> parse_pool_mode(std::string_view text) noexcept {
  return detail::parse_enum<pool_mode>(text);
}

namespace {

bool is_base64(std::string_view s, std::size_t decoded_size_or_zero) noexcept {
  if (s.empty() || s.size() % 4 != 0) return false;
  std::size_t pad = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '=') {
      ++pad;
      continue;
    }
    if (pad != 0) return false;  // '=' only at the end
    if (!(std::isalnum(c) || c == '+' || c == '/')) return false;
  }
  if (pad > 2) return false;
  const std::size_t decoded = s.size() / 4 * 3 - pad;
  return decoded_size_or_zero == 0 || decoded == decoded_size_or_zero;
}

// PostgreSQL's parse_scram_secret(): SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>,
// salt and keys in base64, keys 32 bytes (SHA-256).
// https://www.postgresql.org/docs/15/catalog-pg-authid.html
bool is_scram_verifier(std::string_view s) noexcept {
  if (!s.starts_with(detail::scram_prefix)) return false;
  s.remove_prefix(detail::scram_prefix.size());
  const auto colon1 = s.find(':');
  const auto dollar = s.find('$');
  if (colon1 == std::string_view::npos || dollar == std::string_view::npos || dollar < colon1) return false;
  const std::string_view iterations = s.substr(0, colon1);
  const std::string_view salt = s.substr(colon1 + 1, dollar - colon1 - 1);
  const std::string_view keys = s.substr(dollar + 1);
  const auto colon2 = keys.find(':');
  if (colon2 == std::string_view::npos) return false;
  int iter = 0;
  const auto [end, ec] = std::from_chars(iterations.data(), iterations.data() + iterations.size(), iter);
  if (ec != std::errc{} || end != iterations.data() + iterations.size() || iter <= 0) return false;
  return is_base64(salt, 0) && is_base64(keys.substr(0, colon2), 32) && is_base64(keys.substr(colon2 + 1), 32);
}

// PostgreSQL's isMD5(): "md5" followed by 32 lowercase hex digits.
bool is_md5_hash(std::string_view s) noexcept {
  if (s.size() != 35 || !s.starts_with("md5")) return false;
  for (char c : s.substr(3)) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

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
  if (is_md5_hash(secret)) return secret_kind::md5;
  if (is_scram_verifier(secret)) return secret_kind::scram_sha_256;
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

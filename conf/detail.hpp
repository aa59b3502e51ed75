// Internal to conf/: the spelling of every config enum, shared by to_string(), the loader and the docs.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "conf/config.hpp"

namespace pgsluice::conf::detail {

template <class E>
struct enum_names;

template <>
struct enum_names<pool_mode> {
  static constexpr std::pair<std::string_view, pool_mode> values[] = {
      {"session", pool_mode::session}, {"transaction", pool_mode::transaction}};
};
template <>
struct enum_names<auth_type> {
  // Spelled as in pg_hba.conf: https://www.postgresql.org/docs/15/auth-pg-hba-conf.html
  static constexpr std::pair<std::string_view, auth_type> values[] = {
      {"trust", auth_type::trust}, {"md5", auth_type::md5}, {"scram-sha-256", auth_type::scram_sha_256}};
};
template <>
struct enum_names<secret_kind> {
  static constexpr std::pair<std::string_view, secret_kind> values[] = {
      {"none", secret_kind::none},
      {"plaintext", secret_kind::plaintext},
      {"md5", secret_kind::md5},
      {"scram-sha-256", secret_kind::scram_sha_256}};
};
template <>
struct enum_names<backend_role> {
  static constexpr std::pair<std::string_view, backend_role> values[] = {
      {"primary", backend_role::primary}, {"replica", backend_role::replica}, {"auto", backend_role::automatic}};
};
template <>
struct enum_names<tls_mode> {
  static constexpr std::pair<std::string_view, tls_mode> values[] = {
      {"disable", tls_mode::disable},     {"allow", tls_mode::allow},
      {"prefer", tls_mode::prefer},       {"require", tls_mode::require},
      {"verify-ca", tls_mode::verify_ca}, {"verify-full", tls_mode::verify_full}};
};
template <>
struct enum_names<load_balance> {
  static constexpr std::pair<std::string_view, load_balance> values[] = {
      {"round_robin", load_balance::round_robin},
      {"least_connections", load_balance::least_connections},
      {"random", load_balance::random}};
};
template <>
struct enum_names<primary_reads> {
  static constexpr std::pair<std::string_view, primary_reads> values[] = {
      {"never", primary_reads::never}, {"fallback", primary_reads::fallback}, {"always", primary_reads::always}};
};
template <>
struct enum_names<consistency> {
  static constexpr std::pair<std::string_view, consistency> values[] = {
      {"read_your_writes", consistency::read_your_writes},
      {"primary_after_write", consistency::primary_after_write},
      {"eventual", consistency::eventual}};
};
template <>
struct enum_names<target_session_attrs> {
  // Spelled as libpq's: https://www.postgresql.org/docs/15/libpq-connect.html#LIBPQ-CONNECT-TARGET-SESSION-ATTRS
  static constexpr std::pair<std::string_view, target_session_attrs> values[] = {
      {"any", target_session_attrs::any},
      {"read-write", target_session_attrs::read_write},
      {"read-only", target_session_attrs::read_only},
      {"primary", target_session_attrs::primary},
      {"standby", target_session_attrs::standby},
      {"prefer-standby", target_session_attrs::prefer_standby}};
};
template <>
struct enum_names<failover_mode> {
  static constexpr std::pair<std::string_view, failover_mode> values[] = {
      {"off", failover_mode::off}, {"follow", failover_mode::follow}, {"promote", failover_mode::promote}};
};
template <>
struct enum_names<log_level> {
  static constexpr std::pair<std::string_view, log_level> values[] = {
      {"trace", log_level::trace},     {"debug", log_level::debug}, {"info", log_level::info},
      {"warning", log_level::warning}, {"error", log_level::error}, {"off", log_level::off}};
};
template <>
struct enum_names<log_format> {
  static constexpr std::pair<std::string_view, log_format> values[] = {{"text", log_format::text},
                                                                        {"json", log_format::json}};
};

template <class E>
constexpr std::string_view name_of(E value) noexcept {
  for (const auto& [name, v] : enum_names<E>::values) {
    if (v == value) return name;
  }
  return "?";
}

template <class E>
constexpr std::optional<E> parse_enum(std::string_view text) noexcept {
  for (const auto& [name, v] : enum_names<E>::values) {
    if (name == text) return v;
  }
  return std::nullopt;
}

// "\"session\", \"transaction\"" for error messages.
template <class E>
std::string quoted_names() {
  std::string out;
  for (const auto& [name, v] : enum_names<E>::values) {
    if (!out.empty()) out += ", ";
    out += '"';
    out += name;
    out += '"';
  }
  return out;
}

// True when `secret` starts like a SCRAM verifier (then it must be a valid one).
constexpr std::string_view scram_prefix = "SCRAM-SHA-256$";

}  // namespace pgsluice::conf::detail

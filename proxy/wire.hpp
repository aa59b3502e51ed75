// Allocation-free readers and writers for the few message fields the relay must look at or rewrite.
//
// The relay forwards most messages untouched (DESIGN.md convention 4). For the handful it acts on
// (Parse, Bind, Describe, Close, ReadyForQuery, ParameterStatus) it needs one or two fields, and
// protocol/codec.hpp's full decoders would allocate vectors for parameters it never reads; these
// helpers read just the leading fields in place. Layouts:
// https://www.postgresql.org/docs/15/protocol-message-formats.html
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

namespace pgsluice::proxy::wire {

using bytes = std::span<const std::uint8_t>;

inline std::uint32_t read_u32(const std::uint8_t* p) noexcept {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | std::uint32_t{p[3]};
}
inline std::uint16_t read_u16(const std::uint8_t* p) noexcept {
  return static_cast<std::uint16_t>((p[0] << 8) | p[1]);
}
inline void put_u32(std::vector<std::uint8_t>& out, std::uint32_t v) {
  const std::uint8_t b[4] = {static_cast<std::uint8_t>(v >> 24), static_cast<std::uint8_t>(v >> 16),
                             static_cast<std::uint8_t>(v >> 8), static_cast<std::uint8_t>(v)};
  out.insert(out.end(), b, b + 4);
}
inline void put_u16(std::vector<std::uint8_t>& out, std::uint16_t v) {
  out.push_back(static_cast<std::uint8_t>(v >> 8));
  out.push_back(static_cast<std::uint8_t>(v));
}
inline void put_cstring(std::vector<std::uint8_t>& out, std::string_view s) {
  out.insert(out.end(), s.begin(), s.end());
  out.push_back(0);
}
inline void put_bytes(std::vector<std::uint8_t>& out, bytes b) { out.insert(out.end(), b.begin(), b.end()); }

// Starts a tagged message in `out`; finish_message() patches the length once the body is written.
inline std::size_t begin_message(std::vector<std::uint8_t>& out, char tag) {
  out.push_back(static_cast<std::uint8_t>(tag));
  const std::size_t at = out.size();
  put_u32(out, 0);
  return at;
}
inline void finish_message(std::vector<std::uint8_t>& out, std::size_t length_at) {
  const auto len = static_cast<std::uint32_t>(out.size() - length_at);
  out[length_at] = static_cast<std::uint8_t>(len >> 24);
  out[length_at + 1] = static_cast<std::uint8_t>(len >> 16);
  out[length_at + 2] = static_cast<std::uint8_t>(len >> 8);
  out[length_at + 3] = static_cast<std::uint8_t>(len);
}

// Reads a NUL-terminated string at `pos` of `body`; advances `pos` past the NUL.
inline std::optional<std::string_view> read_cstring(bytes body, std::size_t& pos) noexcept {
  if (pos > body.size()) return std::nullopt;
  const void* nul = std::memchr(body.data() + pos, 0, body.size() - pos);
  if (nul == nullptr) return std::nullopt;
  const auto end = static_cast<std::size_t>(static_cast<const std::uint8_t*>(nul) - body.data());
  std::string_view s(reinterpret_cast<const char*>(body.data() + pos), end - pos);
  pos = end + 1;
  return s;
}

// Parse: statement name, query text and the raw parameter-type section (Int16 count + Int32 OIDs).
struct parse_fields {
  std::string_view name;
  std::string_view query;
  bytes param_types;  // the count and the OIDs, exactly as on the wire
};
std::optional<parse_fields> read_parse(bytes body) noexcept;

// Bind: portal and statement names; `rest` is everything after them (formats, values, result formats).
struct bind_fields {
  std::string_view portal;
  std::string_view statement;
  bytes rest;
};
std::optional<bind_fields> read_bind(bytes body) noexcept;

// Describe and Close: 'S' (statement) or 'P' (portal) and the name.
struct target_fields {
  char kind = 'S';
  std::string_view name;
};
std::optional<target_fields> read_target(bytes body) noexcept;

// ParameterStatus: name and value.
struct parameter_fields {
  std::string_view name;
  std::string_view value;
};
std::optional<parameter_fields> read_parameter_status(bytes body) noexcept;

// ErrorResponse / NoticeResponse: SQLSTATE ('C'), severity ('V', else 'S'), message ('M') and detail ('D').
struct error_fields {
  std::string_view sqlstate;
  std::string_view severity;
  std::string_view message;
  std::string_view detail;
};
error_fields read_error_fields(bytes body) noexcept;

// Writers for the messages the proxy builds itself.
void append_parse(std::vector<std::uint8_t>& out, std::string_view name, std::string_view query, bytes param_types);
void append_bind(std::vector<std::uint8_t>& out, std::string_view portal, std::string_view statement, bytes rest);
void append_target(std::vector<std::uint8_t>& out, char tag, char kind, std::string_view name);
void append_query(std::vector<std::uint8_t>& out, std::string_view sql);
void append_parameter_status(std::vector<std::uint8_t>& out, std::string_view name, std::string_view value);

// Fixed 5-byte messages (tag + length 4), for the replies the proxy synthesizes.
inline constexpr std::uint8_t parse_complete_msg[5] = {'1', 0, 0, 0, 4};
inline constexpr std::uint8_t close_complete_msg[5] = {'3', 0, 0, 0, 4};
inline constexpr std::uint8_t sync_msg[5] = {'S', 0, 0, 0, 4};

}  // namespace pgsluice::proxy::wire

// Internal to proxy/: small helpers the relay's files share (framed client messages and their routing flags).
#pragma once

#include <cstdint>
#include <span>

#include "proxy/prepared.hpp"
#include "router/classify.hpp"

namespace pgsluice::proxy::relay_detail {

inline std::span<const std::uint8_t> body_of(std::span<const std::uint8_t> data, std::uint32_t offset, std::uint32_t size) {
  return data.subspan(offset + 5, size - 5);
}

// A statement's class as the flags a prepared statement keeps.
inline std::uint8_t flags_of(const router::statement_class& c) noexcept {
  std::uint8_t f = 0;
  if (c.is_read()) f |= statement_flags::read;
  if (c.begins_transaction) f |= statement_flags::begins;
  if (c.ends_transaction) f |= statement_flags::ends;
  return f;
}

// A statement that writes, as opposed to transaction control alone (BEGIN, COMMIT, SET TRANSACTION).
inline bool writes(const router::statement_class& c) noexcept {
  if (c.is_read()) return false;
  const bool control = c.begins_transaction || c.ends_transaction || c.set_mode != router::access_mode::unspecified;
  return !(control && c.statements == 1);
}

// Replies that come before a statement's result and are the same from every server of the
// cluster: ParseComplete, BindComplete, CloseComplete, ParameterDescription, RowDescription, NoData.
inline bool is_reply_prelude(char tag) noexcept {
  return tag == '1' || tag == '2' || tag == '3' || tag == 't' || tag == 'T' || tag == 'n';
}

}  // namespace pgsluice::proxy::relay_detail

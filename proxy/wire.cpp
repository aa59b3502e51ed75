// Allocation-free field readers and small message writers used by the relay (see wire.hpp).
#include "proxy/wire.hpp"

namespace pgsluice::proxy::wire {

std::optional<parse_fields> read_parse(bytes body) noexcept {
  std::size_t pos = 0;
  auto name = read_cstring(body, pos);
  if (!name) return std::nullopt;
  auto query = read_cstring(body, pos);
  if (!query) return std::nullopt;
  if (body.size() - pos < 2) return std::nullopt;
  const std::size_t count = read_u16(body.data() + pos);
  if (body.size() - pos != 2 + 4 * count) return std::nullopt;
  return parse_fields{*name, *query, body.subspan(pos)};
}

std::optional<bind_fields> read_bind(bytes body) noexcept {
  std::size_t pos = 0;
  auto portal = read_cstring(body, pos);
  if (!portal) return std::nullopt;
  auto statement = read_cstring(body, pos);
  if (!statement) return std::nullopt;
  return bind_fields{*portal, *statement, body.subspan(pos)};
}

std::optional<target_fields> read_target(bytes body) noexcept {
  if (body.empty()) return std::nullopt;
  const char kind = static_cast<char>(body[0]);
  if (kind != 'S' && kind != 'P') return std::nullopt;
  std::size_t pos = 1;
  auto name = read_cstring(body, pos);
  if (!name || pos != body.size()) return std::nullopt;
  return target_fields{kind, *name};
}

std::optional<parameter_fields> read_parameter_status(bytes body) noexcept {
  std::size_t pos = 0;
  auto name = read_cstring(body, pos);
  if (!name) return std::nullopt;
  auto value = read_cstring(body, pos);
  if (!value) return std::nullopt;
  return parameter_fields{*name, *value};
}

error_fields read_error_fields(bytes body) noexcept {
  error_fields out;
  std::size_t pos = 0;
  while (pos < body.size() && body[pos] != 0) {
    const char type = static_cast<char>(body[pos++]);
    auto value = read_cstring(body, pos);
    if (!value) break;
    if (type == 'C') out.sqlstate = *value;
    if (type == 'V' || (type == 'S' && out.severity.empty())) out.severity = *value;
    if (type == 'M') out.message = *value;
    if (type == 'D') out.detail = *value;
  }
  return out;
}

void append_parse(std::vector<std::uint8_t>& out, std::string_view name, std::string_view query, bytes param_types) {
  const auto at = begin_message(out, 'P');
  put_cstring(out, name);
  put_cstring(out, query);
  if (param_types.empty()) {
    put_u16(out, 0);
  } else {
    put_bytes(out, param_types);
  }
  finish_message(out, at);
}

void append_bind(std::vector<std::uint8_t>& out, std::string_view portal, std::string_view statement, bytes rest) {
  const auto at = begin_message(out, 'B');
  put_cstring(out, portal);
  put_cstring(out, statement);
  put_bytes(out, rest);
  finish_message(out, at);
}

void append_target(std::vector<std::uint8_t>& out, char tag, char kind, std::string_view name) {
  const auto at = begin_message(out, tag);
  out.push_back(static_cast<std::uint8_t>(kind));
  put_cstring(out, name);
  finish_message(out, at);
}

void append_query(std::vector<std::uint8_t>& out, std::string_view sql) {
  const auto at = begin_message(out, 'Q');
  put_cstring(out, sql);
  finish_message(out, at);
}

void append_parameter_status(std::vector<std::uint8_t>& out, std::string_view name, std::string_view value) {
  const auto at = begin_message(out, 'S');
  put_cstring(out, name);
  put_cstring(out, value);
  finish_message(out, at);
}

}  // namespace pgsluice::proxy::wire

// Field readers and small message writers for the relay (see fields.hpp).
#include "protocol/fields.hpp"

#include "protocol/detail/wire.hpp"

namespace pgsluice::protocol {

using detail::reader;
using detail::writer;

std::optional<std::string_view> read_cstring(bytes_view body, std::size_t& pos) noexcept {
  if (pos > body.size()) return std::nullopt;
  reader r(body.subspan(pos));
  const std::string_view s = r.cstring();
  if (r.failed()) return std::nullopt;
  pos = body.size() - r.remaining();
  return s;
}

std::optional<parse_fields> read_parse(bytes_view body) noexcept {
  reader r(body);
  parse_fields p;
  p.name = r.cstring();
  p.query = r.cstring();
  if (r.failed()) return std::nullopt;
  const std::size_t at = body.size() - r.remaining();
  // Unsigned, as pq_getmsgint(msg, 2) returns it: up to 65535 parameter types.
  const auto count = static_cast<std::uint16_t>(r.i16());
  r.bytes(4 * std::size_t{count});
  r.expect_end();
  if (r.failed()) return std::nullopt;
  p.param_types = body.subspan(at);
  return p;
}

std::optional<bind_fields> read_bind(bytes_view body) noexcept {
  reader r(body);
  bind_fields b;
  b.portal = r.cstring();
  b.statement = r.cstring();
  b.rest = r.rest();
  if (r.failed()) return std::nullopt;
  return b;
}

std::optional<target_fields> read_target(bytes_view body) noexcept {
  reader r(body);
  target_fields t;
  t.kind = static_cast<char>(r.u8());
  if (!r.failed() && t.kind != 'S' && t.kind != 'P') return std::nullopt;
  t.name = r.cstring();
  r.expect_end();
  if (r.failed()) return std::nullopt;
  return t;
}

std::optional<parameter_fields> read_parameter_status(bytes_view body) noexcept {
  reader r(body);
  parameter_fields p;
  p.name = r.cstring();
  p.value = r.cstring();
  if (r.failed()) return std::nullopt;
  return p;
}

std::optional<char> read_ready_for_query(bytes_view body) noexcept {
  if (body.empty()) return std::nullopt;
  return static_cast<char>(body[0]);
}

std::optional<std::string_view> read_query(bytes_view body) noexcept {
  std::size_t pos = 0;
  return read_cstring(body, pos);
}

std::optional<error_field> error_field_reader::next() noexcept {
  if (done_) return std::nullopt;
  reader r(body_.subspan(pos_));
  auto stop = [&](errc e) -> std::optional<error_field> {
    done_ = true;
    error_ = e;
    return std::nullopt;
  };
  if (r.remaining() == 0) return stop(errc::missing_terminator);
  const char type = static_cast<char>(r.u8());
  if (type == '\0') return stop(r.remaining() == 0 ? errc{} : errc::malformed_message);
  const std::string_view value = r.cstring();
  if (r.failed()) return stop(r.error());
  pos_ = body_.size() - r.remaining();
  return error_field{type, value};
}

error_fields read_error_fields(bytes_view body) noexcept {
  // The first field of each type counts, as in notice_fields::get().
  error_fields out;
  bool seen_c = false, seen_m = false, seen_d = false, seen_v = false, seen_s = false;
  auto first = [](bool& seen, std::string_view& into, std::string_view value) {
    if (!seen) into = value;
    seen = true;
  };
  error_field_reader fields(body);
  while (const auto f = fields.next()) {
    switch (f->type) {
      case field::sqlstate: first(seen_c, out.sqlstate, f->value); break;
      case field::message: first(seen_m, out.message, f->value); break;
      case field::detail: first(seen_d, out.detail, f->value); break;
      case field::severity_nonlocalized: first(seen_v, out.severity, f->value); break;
      case field::severity:
        if (!seen_v && !seen_s) out.severity = f->value;
        seen_s = true;
        break;
      default: break;
    }
  }
  return out;
}

namespace {

template <class Body>
void tagged(std::vector<std::uint8_t>& out, char tag, Body&& body) {
  writer w(out);
  w.begin(tag);
  body(w);
  w.finish();
}

}  // namespace

void append_parse(std::vector<std::uint8_t>& out, std::string_view name, std::string_view query, bytes_view param_types) {
  tagged(out, static_cast<char>(frontend_tag::parse), [&](writer& w) {
    w.cstring(name);
    w.cstring(query);
    if (param_types.empty()) {
      w.i16(0);
    } else {
      w.bytes(param_types);
    }
  });
}

void append_bind(std::vector<std::uint8_t>& out, std::string_view portal, std::string_view statement, bytes_view rest) {
  tagged(out, static_cast<char>(frontend_tag::bind), [&](writer& w) {
    w.cstring(portal);
    w.cstring(statement);
    w.bytes(rest);
  });
}

void append_target(std::vector<std::uint8_t>& out, char tag, char kind, std::string_view name) {
  tagged(out, tag, [&](writer& w) {
    w.u8(static_cast<std::uint8_t>(kind));
    w.cstring(name);
  });
}

void append_query(std::vector<std::uint8_t>& out, std::string_view sql) {
  tagged(out, static_cast<char>(frontend_tag::query), [&](writer& w) { w.cstring(sql); });
}

void append_parameter_status(std::vector<std::uint8_t>& out, std::string_view name, std::string_view value) {
  tagged(out, static_cast<char>(backend_tag::parameter_status), [&](writer& w) {
    w.cstring(name);
    w.cstring(value);
  });
}

bool append_error_response(std::vector<std::uint8_t>& out, bytes_view body, char type, std::string_view value) {
  // Check the whole body first so a malformed one leaves `out` untouched.
  {
    error_field_reader check(body);
    while (check.next()) {
    }
    if (check.error() != errc{}) return false;
  }
  tagged(out, static_cast<char>(backend_tag::error_response), [&](writer& w) {
    error_field_reader fields(body);
    while (const auto f = fields.next()) {
      w.u8(static_cast<std::uint8_t>(f->type));
      w.cstring(f->type == type ? value : f->value);
    }
    w.u8(0);
  });
  return true;
}

}  // namespace pgsluice::protocol

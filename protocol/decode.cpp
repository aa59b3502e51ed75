// Decoders: one frame's body -> a typed message with views into it, bounds-checked field by field.
#include <algorithm>
#include <type_traits>
#include <utility>

#include "protocol/codec.hpp"
#include "protocol/detail/wire.hpp"

namespace pgsluice::protocol {
namespace {

using detail::reader;

// ---- body layouts, https://www.postgresql.org/docs/15/protocol-message-formats.html ----------
// Each read() consumes the fields after the type byte and length word (and, for
// Authentication messages, after the Int32 subtype); the caller checks the body is used up.

// Messages with no fields.
template <class M>
  requires std::is_empty_v<M>
void read(reader&, M&) {}

void read_kind(reader& r, char& kind) {
  kind = static_cast<char>(r.u8());
  // Describe and Close name a prepared statement or a portal; PostgreSQL rejects other bytes.
  if (!r.failed() && kind != 'S' && kind != 'P') r.fail(errc::malformed_message);
}

void read_int16s(reader& r, std::vector<std::int16_t>& v) {
  const std::size_t n = r.count16(2);
  v.reserve(n);
  for (std::size_t i = 0; i < n && !r.failed(); ++i) v.push_back(r.i16());
}

void read_nullable_values(reader& r, std::vector<std::optional<bytes_view>>& v) {
  const std::size_t n = r.count16(4);
  v.reserve(n);
  for (std::size_t i = 0; i < n && !r.failed(); ++i) v.push_back(r.nullable_bytes());
}

// Frontend.
void read(reader& r, cancel_request& m) {
  m.process_id = r.i32();
  m.secret_key = r.i32();
}
void read(reader& r, query& m) { m.sql = r.cstring(); }
void read(reader& r, parse& m) {
  m.name = r.cstring();
  m.query = r.cstring();
  const std::size_t n = r.count16(4);
  m.param_types.reserve(n);
  for (std::size_t i = 0; i < n && !r.failed(); ++i) m.param_types.push_back(r.u32());
}
void read(reader& r, bind& m) {
  m.portal = r.cstring();
  m.statement = r.cstring();
  read_int16s(r, m.param_formats);
  read_nullable_values(r, m.params);
  read_int16s(r, m.result_formats);
}
void read(reader& r, describe& m) {
  read_kind(r, m.kind);
  m.name = r.cstring();
}
void read(reader& r, execute& m) {
  m.portal = r.cstring();
  m.max_rows = r.i32();
}
void read(reader& r, close& m) {
  read_kind(r, m.kind);
  m.name = r.cstring();
}
void read(reader& r, copy_data& m) { m.data = r.rest(); }
void read(reader& r, copy_fail& m) { m.message = r.cstring(); }
void read(reader& r, function_call& m) {
  m.oid = r.u32();
  read_int16s(r, m.arg_formats);
  read_nullable_values(r, m.args);
  m.result_format = r.i16();
}
void read(reader& r, password_message& m) { m.password = r.cstring(); }
void read(reader& r, sasl_initial_response& m) {
  m.mechanism = r.cstring();
  m.data = r.nullable_bytes();
}
void read(reader& r, sasl_response& m) { m.data = r.rest(); }
void read(reader& r, gss_response& m) { m.data = r.rest(); }

// Backend.
void read(reader& r, authentication_md5_password& m) {
  const bytes_view salt = r.bytes(4);
  if (!r.failed()) std::copy(salt.begin(), salt.end(), m.salt.begin());
}
void read(reader& r, authentication_gss_continue& m) { m.data = r.rest(); }
void read(reader& r, authentication_sasl& m) {
  // A list of mechanism names closed by an empty string.
  for (;;) {
    const std::string_view name = r.cstring();
    if (r.failed() || name.empty()) break;
    m.mechanisms.push_back(name);
  }
}
void read(reader& r, authentication_sasl_continue& m) { m.data = r.rest(); }
void read(reader& r, authentication_sasl_final& m) { m.data = r.rest(); }
void read(reader& r, backend_key_data& m) {
  m.process_id = r.i32();
  m.secret_key = r.i32();
}
void read(reader& r, parameter_status& m) {
  m.name = r.cstring();
  m.value = r.cstring();
}
void read(reader& r, ready_for_query& m) {
  m.status = static_cast<char>(r.u8());
  if (!r.failed() && m.status != 'I' && m.status != 'T' && m.status != 'E') r.fail(errc::malformed_message);
}
void read(reader& r, row_description& m) {
  // Smallest field: empty name (its NUL) + 4 + 2 + 4 + 2 + 4 + 2 bytes.
  const std::size_t n = r.count16(19);
  m.fields.reserve(n);
  for (std::size_t i = 0; i < n && !r.failed(); ++i) {
    field_description& f = m.fields.emplace_back();
    f.name = r.cstring();
    f.table_oid = r.u32();
    f.column_attr = r.i16();
    f.type_oid = r.u32();
    f.type_size = r.i16();
    f.type_modifier = r.i32();
    f.format = r.i16();
  }
}
void read(reader& r, data_row& m) { read_nullable_values(r, m.columns); }
void read(reader& r, command_complete& m) { m.tag = r.cstring(); }
void read(reader& r, notice_fields& m) {
  // (type byte, String) pairs closed by a zero type byte.
  for (;;) {
    if (r.remaining() == 0) {
      r.fail(errc::missing_terminator);
      break;
    }
    const char type = static_cast<char>(r.u8());
    if (type == '\0') break;
    const std::string_view value = r.cstring();
    if (r.failed()) break;
    m.fields.emplace_back(type, value);
  }
}
void read(reader& r, error_response& m) { read(r, static_cast<notice_fields&>(m)); }
void read(reader& r, notice_response& m) { read(r, static_cast<notice_fields&>(m)); }
void read(reader& r, parameter_description& m) {
  const std::size_t n = r.count16(4);
  m.type_oids.reserve(n);
  for (std::size_t i = 0; i < n && !r.failed(); ++i) m.type_oids.push_back(r.u32());
}
void read(reader& r, copy_response_fields& m) {
  m.format = static_cast<std::int8_t>(r.u8());
  read_int16s(r, m.column_formats);
}
void read(reader& r, copy_in_response& m) { read(r, static_cast<copy_response_fields&>(m)); }
void read(reader& r, copy_out_response& m) { read(r, static_cast<copy_response_fields&>(m)); }
void read(reader& r, copy_both_response& m) { read(r, static_cast<copy_response_fields&>(m)); }
void read(reader& r, notification_response& m) {
  m.process_id = r.i32();
  m.channel = r.cstring();
  m.payload = r.cstring();
}
void read(reader& r, negotiate_protocol_version& m) {
  m.newest_minor = r.i32();
  const std::size_t n = r.count32(1);
  m.unrecognized_options.reserve(n);
  for (std::size_t i = 0; i < n && !r.failed(); ++i) m.unrecognized_options.push_back(r.cstring());
}
void read(reader& r, function_call_response& m) { m.result = r.nullable_bytes(); }

// Reads an M from the rest of `r`, requires the body to be used up, wraps it as R.
template <class R, class M>
result<R> finish_as(reader& r) {
  M m{};
  read(r, m);
  r.expect_end();
  if (r.failed()) return boost::system::error_code(r.error());
  return R(std::in_place_type<M>, std::move(m));
}

template <class M>
result<M> decode_exact(const frame& f) {
  reader r(f.body);
  M m{};
  read(r, m);
  r.expect_end();
  if (r.failed()) return boost::system::error_code(r.error());
  return m;
}

result<frontend_message> decode_tagged_frontend(const frame& f) {
  using R = frontend_message;
  reader r(f.body);
  switch (static_cast<frontend_tag>(f.tag)) {
    case frontend_tag::query: return finish_as<R, query>(r);
    case frontend_tag::parse: return finish_as<R, parse>(r);
    case frontend_tag::bind: return finish_as<R, bind>(r);
    case frontend_tag::describe: return finish_as<R, describe>(r);
    case frontend_tag::execute: return finish_as<R, execute>(r);
    case frontend_tag::sync: return finish_as<R, sync>(r);
    case frontend_tag::flush: return finish_as<R, flush>(r);
    case frontend_tag::close: return finish_as<R, close>(r);
    case frontend_tag::copy_data: return finish_as<R, copy_data>(r);
    case frontend_tag::copy_done: return finish_as<R, copy_done>(r);
    case frontend_tag::copy_fail: return finish_as<R, copy_fail>(r);
    case frontend_tag::function_call: return finish_as<R, function_call>(r);
    case frontend_tag::terminate: return finish_as<R, terminate>(r);
    case frontend_tag::password: return finish_as<R, password_message>(r);
  }
  return boost::system::error_code(errc::unknown_message_type);
}

result<backend_message> decode_authentication(reader& r) {
  using R = backend_message;
  const auto code = static_cast<auth_code>(r.i32());
  if (r.failed()) return boost::system::error_code(r.error());
  switch (code) {
    case auth_code::ok: return finish_as<R, authentication_ok>(r);
    case auth_code::kerberos_v5: return finish_as<R, authentication_kerberos_v5>(r);
    case auth_code::cleartext_password: return finish_as<R, authentication_cleartext_password>(r);
    case auth_code::md5_password: return finish_as<R, authentication_md5_password>(r);
    case auth_code::gss: return finish_as<R, authentication_gss>(r);
    case auth_code::gss_continue: return finish_as<R, authentication_gss_continue>(r);
    case auth_code::sspi: return finish_as<R, authentication_sspi>(r);
    case auth_code::sasl: return finish_as<R, authentication_sasl>(r);
    case auth_code::sasl_continue: return finish_as<R, authentication_sasl_continue>(r);
    case auth_code::sasl_final: return finish_as<R, authentication_sasl_final>(r);
  }
  return boost::system::error_code(errc::unknown_message_type);
}

bool is_regular(const frame& f) { return f.kind == frame_kind::regular; }

}  // namespace

result<frontend_message> decode_frontend(const frame& f) {
  if (!is_regular(f)) return decode_startup(f);
  return decode_tagged_frontend(f);
}

// https://www.postgresql.org/docs/15/protocol-message-formats.html (StartupMessage, SSLRequest,
// GSSENCRequest, CancelRequest); the body starts with the Int32 code.
result<frontend_message> decode_startup(const frame& f) {
  using R = frontend_message;
  reader r(f.body);
  const std::uint32_t code = r.u32();
  if (r.failed()) return boost::system::error_code(r.error());
  auto expect_code = [&](std::uint32_t want) { return code == want ? errc{} : errc::malformed_message; };
  switch (f.kind) {
    case frame_kind::ssl_request:
      if (auto e = expect_code(ssl_request_code); e != errc{}) return boost::system::error_code(e);
      return finish_as<R, ssl_request>(r);
    case frame_kind::gssenc_request:
      if (auto e = expect_code(gssenc_request_code); e != errc{}) return boost::system::error_code(e);
      return finish_as<R, gssenc_request>(r);
    case frame_kind::cancel_request:
      if (auto e = expect_code(cancel_request_code); e != errc{}) return boost::system::error_code(e);
      return finish_as<R, cancel_request>(r);
    case frame_kind::startup: {
      startup_message m;
      m.protocol_major = static_cast<std::uint16_t>(code >> 16);
      m.protocol_minor = static_cast<std::uint16_t>(code & 0xffff);
      if (m.protocol_major != 3) return boost::system::error_code(errc::unsupported_protocol_version);
      // Name/value String pairs closed by an empty name; PostgreSQL requires that final NUL
      // to be the packet's last byte ("invalid startup packet layout").
      for (;;) {
        const std::string_view name = r.cstring();
        if (r.failed() || name.empty()) break;
        const std::string_view value = r.cstring();
        if (r.failed()) break;
        m.params.emplace_back(name, value);
      }
      r.expect_end();
      if (r.failed()) return boost::system::error_code(r.error());
      return R(std::move(m));
    }
    case frame_kind::regular: break;
  }
  return boost::system::error_code(errc::malformed_message);
}

result<sasl_initial_response> decode_sasl_initial_response(const frame& f) {
  return decode_exact<sasl_initial_response>(f);
}
result<sasl_response> decode_sasl_response(const frame& f) { return decode_exact<sasl_response>(f); }
result<gss_response> decode_gss_response(const frame& f) { return decode_exact<gss_response>(f); }

result<backend_message> decode_backend(const frame& f) {
  using R = backend_message;
  if (!is_regular(f)) return boost::system::error_code(errc::malformed_message);
  reader r(f.body);
  switch (static_cast<backend_tag>(f.tag)) {
    case backend_tag::authentication: return decode_authentication(r);
    case backend_tag::backend_key_data: return finish_as<R, backend_key_data>(r);
    case backend_tag::bind_complete: return finish_as<R, bind_complete>(r);
    case backend_tag::close_complete: return finish_as<R, close_complete>(r);
    case backend_tag::command_complete: return finish_as<R, command_complete>(r);
    case backend_tag::copy_data: return finish_as<R, copy_data>(r);
    case backend_tag::copy_done: return finish_as<R, copy_done>(r);
    case backend_tag::copy_in_response: return finish_as<R, copy_in_response>(r);
    case backend_tag::copy_out_response: return finish_as<R, copy_out_response>(r);
    case backend_tag::copy_both_response: return finish_as<R, copy_both_response>(r);
    case backend_tag::data_row: return finish_as<R, data_row>(r);
    case backend_tag::empty_query_response: return finish_as<R, empty_query_response>(r);
    case backend_tag::error_response: return finish_as<R, error_response>(r);
    case backend_tag::function_call_response: return finish_as<R, function_call_response>(r);
    case backend_tag::negotiate_protocol_version: return finish_as<R, negotiate_protocol_version>(r);
    case backend_tag::no_data: return finish_as<R, no_data>(r);
    case backend_tag::notice_response: return finish_as<R, notice_response>(r);
    case backend_tag::notification_response: return finish_as<R, notification_response>(r);
    case backend_tag::parameter_description: return finish_as<R, parameter_description>(r);
    case backend_tag::parameter_status: return finish_as<R, parameter_status>(r);
    case backend_tag::parse_complete: return finish_as<R, parse_complete>(r);
    case backend_tag::portal_suspended: return finish_as<R, portal_suspended>(r);
    case backend_tag::ready_for_query: return finish_as<R, ready_for_query>(r);
    case backend_tag::row_description: return finish_as<R, row_description>(r);
  }
  return boost::system::error_code(errc::unknown_message_type);
}

}  // namespace pgsluice::protocol

// Encoders: typed message -> one complete wire message appended to an output buffer.
#include <variant>

#include "protocol/codec.hpp"
#include "protocol/detail/wire.hpp"

namespace pgsluice::protocol {
namespace {

using detail::writer;
using out_t = std::vector<std::uint8_t>;

// One tagged message whose fields `body` writes; the length word is patched afterwards.
template <class Body>
void tagged(out_t& out, char tag, Body&& body) {
  writer w(out);
  w.begin(tag);
  body(w);
  w.finish();
}

void empty(out_t& out, char tag) {
  tagged(out, tag, [](writer&) {});
}

void untagged(out_t& out, std::uint32_t code, std::int32_t a = 0, std::int32_t b = 0, bool with_ab = false) {
  writer w(out);
  w.begin_untagged();
  w.u32(code);
  if (with_ab) {
    w.i32(a);
    w.i32(b);
  }
  w.finish();
}

// Authentication ('R') with its Int32 subtype, then optional extra fields.
template <class Body>
void authentication(out_t& out, auth_code code, Body&& body) {
  tagged(out, static_cast<char>(backend_tag::authentication), [&](writer& w) {
    w.i32(static_cast<std::int32_t>(code));
    body(w);
  });
}

void authentication(out_t& out, auth_code code) {
  authentication(out, code, [](writer&) {});
}

void int16s(writer& w, const std::vector<std::int16_t>& v) {
  w.count16(v.size());
  for (auto x : v) w.i16(x);
}

void nullable_values(writer& w, const std::vector<std::optional<bytes_view>>& v) {
  w.count16(v.size());
  for (const auto& x : v) w.nullable_bytes(x);
}

void fields(out_t& out, char tag, const notice_fields& m) {
  tagged(out, tag, [&](writer& w) {
    for (const auto& [type, value] : m.fields) {
      w.u8(static_cast<std::uint8_t>(type));
      w.cstring(value);
    }
    w.u8(0);
  });
}

void copy_response(out_t& out, backend_tag tag, const copy_response_fields& m) {
  tagged(out, static_cast<char>(tag), [&](writer& w) {
    w.u8(static_cast<std::uint8_t>(m.format));
    int16s(w, m.column_formats);
  });
}

constexpr char tag_of(frontend_tag t) { return static_cast<char>(t); }
constexpr char tag_of(backend_tag t) { return static_cast<char>(t); }

}  // namespace

// ---- frontend -------------------------------------------------------------------------------

void encode(const startup_message& m, out_t& out) {
  writer w(out);
  w.begin_untagged();
  w.u32((std::uint32_t{m.protocol_major} << 16) | m.protocol_minor);
  for (const auto& [name, value] : m.params) {
    w.cstring(name);
    w.cstring(value);
  }
  w.u8(0);
  w.finish();
}
void encode(const ssl_request&, out_t& out) { untagged(out, ssl_request_code); }
void encode(const gssenc_request&, out_t& out) { untagged(out, gssenc_request_code); }
void encode(const cancel_request& m, out_t& out) {
  untagged(out, cancel_request_code, m.process_id, m.secret_key, true);
}
void encode(const query& m, out_t& out) {
  tagged(out, tag_of(frontend_tag::query), [&](writer& w) { w.cstring(m.sql); });
}
void encode(const parse& m, out_t& out) {
  tagged(out, tag_of(frontend_tag::parse), [&](writer& w) {
    w.cstring(m.name);
    w.cstring(m.query);
    w.count16(m.param_types.size());
    for (auto oid : m.param_types) w.u32(oid);
  });
}
void encode(const bind& m, out_t& out) {
  tagged(out, tag_of(frontend_tag::bind), [&](writer& w) {
    w.cstring(m.portal);
    w.cstring(m.statement);
    int16s(w, m.param_formats);
    nullable_values(w, m.params);
    int16s(w, m.result_formats);
  });
}
void encode(const describe& m, out_t& out) {
  tagged(out, tag_of(frontend_tag::describe), [&](writer& w) {
    w.u8(static_cast<std::uint8_t>(m.kind));
    w.cstring(m.name);
  });
}
void encode(const execute& m, out_t& out) {
  tagged(out, tag_of(frontend_tag::execute), [&](writer& w) {
    w.cstring(m.portal);
    w.i32(m.max_rows);
  });
}
void encode(const sync&, out_t& out) { empty(out, tag_of(frontend_tag::sync)); }
void encode(const flush&, out_t& out) { empty(out, tag_of(frontend_tag::flush)); }
void encode(const close& m, out_t& out) {
  tagged(out, tag_of(frontend_tag::close), [&](writer& w) {
    w.u8(static_cast<std::uint8_t>(m.kind));
    w.cstring(m.name);
  });
}
void encode(const copy_fail& m, out_t& out) {
  tagged(out, tag_of(frontend_tag::copy_fail), [&](writer& w) { w.cstring(m.message); });
}
void encode(const function_call& m, out_t& out) {
  tagged(out, tag_of(frontend_tag::function_call), [&](writer& w) {
    w.u32(m.oid);
    int16s(w, m.arg_formats);
    nullable_values(w, m.args);
    w.i16(m.result_format);
  });
}
void encode(const terminate&, out_t& out) { empty(out, tag_of(frontend_tag::terminate)); }
void encode(const password_message& m, out_t& out) {
  tagged(out, tag_of(frontend_tag::password), [&](writer& w) { w.cstring(m.password); });
}
void encode(const sasl_initial_response& m, out_t& out) {
  tagged(out, tag_of(frontend_tag::password), [&](writer& w) {
    w.cstring(m.mechanism);
    w.nullable_bytes(m.data);
  });
}
void encode(const sasl_response& m, out_t& out) {
  tagged(out, tag_of(frontend_tag::password), [&](writer& w) { w.bytes(m.data); });
}
void encode(const gss_response& m, out_t& out) {
  tagged(out, tag_of(frontend_tag::password), [&](writer& w) { w.bytes(m.data); });
}

// ---- both directions ------------------------------------------------------------------------

void encode(const copy_data& m, out_t& out) {
  tagged(out, tag_of(frontend_tag::copy_data), [&](writer& w) { w.bytes(m.data); });
}
void encode(const copy_done&, out_t& out) { empty(out, tag_of(frontend_tag::copy_done)); }

// ---- backend --------------------------------------------------------------------------------

void encode(const authentication_ok&, out_t& out) { authentication(out, auth_code::ok); }
void encode(const authentication_kerberos_v5&, out_t& out) { authentication(out, auth_code::kerberos_v5); }
void encode(const authentication_cleartext_password&, out_t& out) {
  authentication(out, auth_code::cleartext_password);
}
void encode(const authentication_md5_password& m, out_t& out) {
  authentication(out, auth_code::md5_password, [&](writer& w) { w.bytes(m.salt); });
}
void encode(const authentication_gss&, out_t& out) { authentication(out, auth_code::gss); }
void encode(const authentication_gss_continue& m, out_t& out) {
  authentication(out, auth_code::gss_continue, [&](writer& w) { w.bytes(m.data); });
}
void encode(const authentication_sspi&, out_t& out) { authentication(out, auth_code::sspi); }
void encode(const authentication_sasl& m, out_t& out) {
  authentication(out, auth_code::sasl, [&](writer& w) {
    for (auto name : m.mechanisms) w.cstring(name);
    w.u8(0);
  });
}
void encode(const authentication_sasl_continue& m, out_t& out) {
  authentication(out, auth_code::sasl_continue, [&](writer& w) { w.bytes(m.data); });
}
void encode(const authentication_sasl_final& m, out_t& out) {
  authentication(out, auth_code::sasl_final, [&](writer& w) { w.bytes(m.data); });
}
void encode(const backend_key_data& m, out_t& out) {
  tagged(out, tag_of(backend_tag::backend_key_data), [&](writer& w) {
    w.i32(m.process_id);
    w.i32(m.secret_key);
  });
}
void encode(const parameter_status& m, out_t& out) {
  tagged(out, tag_of(backend_tag::parameter_status), [&](writer& w) {
    w.cstring(m.name);
    w.cstring(m.value);
  });
}
void encode(const ready_for_query& m, out_t& out) { encode_ready_for_query(m.status, out); }
void encode(const row_description& m, out_t& out) {
  tagged(out, tag_of(backend_tag::row_description), [&](writer& w) {
    w.count16(m.fields.size());
    for (const auto& f : m.fields) {
      w.cstring(f.name);
      w.u32(f.table_oid);
      w.i16(f.column_attr);
      w.u32(f.type_oid);
      w.i16(f.type_size);
      w.i32(f.type_modifier);
      w.i16(f.format);
    }
  });
}
void encode(const data_row& m, out_t& out) {
  tagged(out, tag_of(backend_tag::data_row), [&](writer& w) { nullable_values(w, m.columns); });
}
void encode(const command_complete& m, out_t& out) {
  tagged(out, tag_of(backend_tag::command_complete), [&](writer& w) { w.cstring(m.tag); });
}
void encode(const empty_query_response&, out_t& out) { empty(out, tag_of(backend_tag::empty_query_response)); }
void encode(const error_response& m, out_t& out) { fields(out, tag_of(backend_tag::error_response), m); }
void encode(const notice_response& m, out_t& out) { fields(out, tag_of(backend_tag::notice_response), m); }
void encode(const parse_complete&, out_t& out) { empty(out, tag_of(backend_tag::parse_complete)); }
void encode(const bind_complete&, out_t& out) { empty(out, tag_of(backend_tag::bind_complete)); }
void encode(const close_complete&, out_t& out) { empty(out, tag_of(backend_tag::close_complete)); }
void encode(const no_data&, out_t& out) { empty(out, tag_of(backend_tag::no_data)); }
void encode(const parameter_description& m, out_t& out) {
  tagged(out, tag_of(backend_tag::parameter_description), [&](writer& w) {
    w.count16(m.type_oids.size());
    for (auto oid : m.type_oids) w.u32(oid);
  });
}
void encode(const portal_suspended&, out_t& out) { empty(out, tag_of(backend_tag::portal_suspended)); }
void encode(const copy_in_response& m, out_t& out) { copy_response(out, backend_tag::copy_in_response, m); }
void encode(const copy_out_response& m, out_t& out) { copy_response(out, backend_tag::copy_out_response, m); }
void encode(const copy_both_response& m, out_t& out) { copy_response(out, backend_tag::copy_both_response, m); }
void encode(const notification_response& m, out_t& out) {
  tagged(out, tag_of(backend_tag::notification_response), [&](writer& w) {
    w.i32(m.process_id);
    w.cstring(m.channel);
    w.cstring(m.payload);
  });
}
void encode(const negotiate_protocol_version& m, out_t& out) {
  tagged(out, tag_of(backend_tag::negotiate_protocol_version), [&](writer& w) {
    w.i32(m.newest_minor);
    w.i32(static_cast<std::int32_t>(m.unrecognized_options.size()));
    for (auto opt : m.unrecognized_options) w.cstring(opt);
  });
}
void encode(const function_call_response& m, out_t& out) {
  tagged(out, tag_of(backend_tag::function_call_response), [&](writer& w) { w.nullable_bytes(m.result); });
}

// ---- variants -------------------------------------------------------------------------------

void encode(const frontend_message& m, out_t& out) {
  std::visit([&](const auto& msg) { encode(msg, out); }, m);
}
void encode(const backend_message& m, out_t& out) {
  std::visit([&](const auto& msg) { encode(msg, out); }, m);
}

// ---- helpers --------------------------------------------------------------------------------

void encode_error_response(std::string_view severity, std::string_view sqlstate, std::string_view message,
                           out_t& out) {
  encode_error_response(severity, sqlstate, message, {}, {}, out);
}

// PostgreSQL's send_message_to_frontend (src/backend/utils/error/elog.c) writes S (localized
// severity), V (non-localized severity, 9.6+), C, M, then optional D, H, ... in that order.
void encode_error_response(std::string_view severity, std::string_view sqlstate, std::string_view message,
                           std::string_view detail, std::string_view hint, out_t& out) {
  tagged(out, tag_of(backend_tag::error_response), [&](writer& w) {
    auto put = [&](char type, std::string_view value) {
      w.u8(static_cast<std::uint8_t>(type));
      w.cstring(value);
    };
    put(field::severity, severity);
    put(field::severity_nonlocalized, severity);
    put(field::sqlstate, sqlstate);
    put(field::message, message);
    if (!detail.empty()) put(field::detail, detail);
    if (!hint.empty()) put(field::hint, hint);
    w.u8(0);
  });
}

void encode_ready_for_query(char status, out_t& out) {
  tagged(out, tag_of(backend_tag::ready_for_query), [&](writer& w) { w.u8(static_cast<std::uint8_t>(status)); });
}

}  // namespace pgsluice::protocol

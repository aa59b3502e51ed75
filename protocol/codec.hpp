// Decoders (frame -> typed message) and encoders (typed message -> bytes) for every PostgreSQL
// v3 message, https://www.postgresql.org/docs/15/protocol-message-formats.html
//
// Decoders never throw on input and bounds-check every field; they allocate only for the
// vectors of repeated fields. Errors: errc::missing_terminator (a String without its NUL),
// errc::truncated_field (a fixed-size field or counted array past the end of the body),
// errc::malformed_message (bytes left over, bad counts, invalid enumerated values),
// errc::unknown_message_type (tag or Authentication subtype outside the protocol).
// Encoders append one complete message (tag and length included) to `out`; they trust their
// input (strings without NUL bytes, at most 32767 entries in Int16-counted arrays), which any
// decoded message satisfies, so decode -> encode reproduces the original bytes exactly.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include <boost/system/result.hpp>

#include "protocol/framing.hpp"
#include "protocol/messages.hpp"

namespace pgsluice::protocol {

template <class T>
using result = boost::system::result<T>;

// ---- decoding -------------------------------------------------------------------------------

// Any frontend frame: untagged kinds go to decode_startup, regular ones by tag. A 'p' frame
// is decoded as password_message; use the decode_sasl_* / decode_gss_response functions when
// the authentication state says otherwise.
result<frontend_message> decode_frontend(const frame& f);
// StartupMessage, SSLRequest, GSSENCRequest, CancelRequest (frames from next_startup_frame).
result<frontend_message> decode_startup(const frame& f);
result<sasl_initial_response> decode_sasl_initial_response(const frame& f);
result<sasl_response> decode_sasl_response(const frame& f);
result<gss_response> decode_gss_response(const frame& f);

// Any backend frame (regular kind only).
result<backend_message> decode_backend(const frame& f);

// ---- encoding -------------------------------------------------------------------------------

// Frontend.
void encode(const startup_message& m, std::vector<std::uint8_t>& out);
void encode(const ssl_request& m, std::vector<std::uint8_t>& out);
void encode(const gssenc_request& m, std::vector<std::uint8_t>& out);
void encode(const cancel_request& m, std::vector<std::uint8_t>& out);
void encode(const query& m, std::vector<std::uint8_t>& out);
void encode(const parse& m, std::vector<std::uint8_t>& out);
void encode(const bind& m, std::vector<std::uint8_t>& out);
void encode(const describe& m, std::vector<std::uint8_t>& out);
void encode(const execute& m, std::vector<std::uint8_t>& out);
void encode(const sync& m, std::vector<std::uint8_t>& out);
void encode(const flush& m, std::vector<std::uint8_t>& out);
void encode(const close& m, std::vector<std::uint8_t>& out);
void encode(const copy_fail& m, std::vector<std::uint8_t>& out);
void encode(const function_call& m, std::vector<std::uint8_t>& out);
void encode(const terminate& m, std::vector<std::uint8_t>& out);
void encode(const password_message& m, std::vector<std::uint8_t>& out);
void encode(const sasl_initial_response& m, std::vector<std::uint8_t>& out);
void encode(const sasl_response& m, std::vector<std::uint8_t>& out);
void encode(const gss_response& m, std::vector<std::uint8_t>& out);

// Both directions.
void encode(const copy_data& m, std::vector<std::uint8_t>& out);
void encode(const copy_done& m, std::vector<std::uint8_t>& out);

// Backend.
void encode(const authentication_ok& m, std::vector<std::uint8_t>& out);
void encode(const authentication_kerberos_v5& m, std::vector<std::uint8_t>& out);
void encode(const authentication_cleartext_password& m, std::vector<std::uint8_t>& out);
void encode(const authentication_md5_password& m, std::vector<std::uint8_t>& out);
void encode(const authentication_gss& m, std::vector<std::uint8_t>& out);
void encode(const authentication_gss_continue& m, std::vector<std::uint8_t>& out);
void encode(const authentication_sspi& m, std::vector<std::uint8_t>& out);
void encode(const authentication_sasl& m, std::vector<std::uint8_t>& out);
void encode(const authentication_sasl_continue& m, std::vector<std::uint8_t>& out);
void encode(const authentication_sasl_final& m, std::vector<std::uint8_t>& out);
void encode(const backend_key_data& m, std::vector<std::uint8_t>& out);
void encode(const parameter_status& m, std::vector<std::uint8_t>& out);
void encode(const ready_for_query& m, std::vector<std::uint8_t>& out);
void encode(const row_description& m, std::vector<std::uint8_t>& out);
void encode(const data_row& m, std::vector<std::uint8_t>& out);
void encode(const command_complete& m, std::vector<std::uint8_t>& out);
void encode(const empty_query_response& m, std::vector<std::uint8_t>& out);
void encode(const error_response& m, std::vector<std::uint8_t>& out);
void encode(const notice_response& m, std::vector<std::uint8_t>& out);
void encode(const parse_complete& m, std::vector<std::uint8_t>& out);
void encode(const bind_complete& m, std::vector<std::uint8_t>& out);
void encode(const close_complete& m, std::vector<std::uint8_t>& out);
void encode(const no_data& m, std::vector<std::uint8_t>& out);
void encode(const parameter_description& m, std::vector<std::uint8_t>& out);
void encode(const portal_suspended& m, std::vector<std::uint8_t>& out);
void encode(const copy_in_response& m, std::vector<std::uint8_t>& out);
void encode(const copy_out_response& m, std::vector<std::uint8_t>& out);
void encode(const copy_both_response& m, std::vector<std::uint8_t>& out);
void encode(const notification_response& m, std::vector<std::uint8_t>& out);
void encode(const negotiate_protocol_version& m, std::vector<std::uint8_t>& out);
void encode(const function_call_response& m, std::vector<std::uint8_t>& out);

// Whole variants.
void encode(const frontend_message& m, std::vector<std::uint8_t>& out);
void encode(const backend_message& m, std::vector<std::uint8_t>& out);

// ---- helpers for the proxy ------------------------------------------------------------------

// ErrorResponse as PostgreSQL sends it (fields S, V, C, M in that order), e.g.
// encode_error_response("FATAL", "28P01", "password authentication failed for user \"x\"", out).
void encode_error_response(std::string_view severity, std::string_view sqlstate, std::string_view message,
                           std::vector<std::uint8_t>& out);
// Same with a DETAIL ('D') and/or HINT ('H') field when non-empty.
void encode_error_response(std::string_view severity, std::string_view sqlstate, std::string_view message,
                           std::string_view detail, std::string_view hint, std::vector<std::uint8_t>& out);
// ReadyForQuery with status 'I', 'T' or 'E'.
void encode_ready_for_query(char status, std::vector<std::uint8_t>& out);

}  // namespace pgsluice::protocol

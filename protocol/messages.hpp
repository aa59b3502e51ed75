// The PostgreSQL v3 message catalog: tags and typed messages for both directions, named as in
// https://www.postgresql.org/docs/15/protocol-message-formats.html
//
// Decoded messages hold views (std::string_view / bytes_view) into the buffer they were decoded
// from: a message is valid only as long as that buffer is. Strings never include their NUL.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "protocol/framing.hpp"

namespace pgsluice::protocol {

// Type bytes of messages sent by the client ("F" in the docs). PasswordMessage, SASLInitialResponse,
// SASLResponse and GSSResponse all use 'p'; only the authentication state tells them apart.
enum class frontend_tag : char {
  query = 'Q',
  parse = 'P',
  bind = 'B',
  describe = 'D',
  execute = 'E',
  sync = 'S',
  flush = 'H',
  close = 'C',
  copy_data = 'd',
  copy_done = 'c',
  copy_fail = 'f',
  function_call = 'F',
  terminate = 'X',
  password = 'p',
};

// Type bytes of messages sent by the server ("B" in the docs).
enum class backend_tag : char {
  authentication = 'R',
  backend_key_data = 'K',
  bind_complete = '2',
  close_complete = '3',
  command_complete = 'C',
  copy_data = 'd',
  copy_done = 'c',
  copy_in_response = 'G',
  copy_out_response = 'H',
  copy_both_response = 'W',
  data_row = 'D',
  empty_query_response = 'I',
  error_response = 'E',
  function_call_response = 'V',
  negotiate_protocol_version = 'v',
  no_data = 'n',
  notice_response = 'N',
  notification_response = 'A',
  parameter_description = 't',
  parameter_status = 'S',
  parse_complete = '1',
  portal_suspended = 's',
  ready_for_query = 'Z',
  row_description = 'T',
};

// Names as in the docs ("Query", "ReadyForQuery", ...); "Unknown" for bytes outside the catalog.
std::string_view to_string(frontend_tag t) noexcept;
std::string_view to_string(backend_tag t) noexcept;
bool is_frontend_tag(char c) noexcept;
bool is_backend_tag(char c) noexcept;

// Subtypes of the Authentication ('R') message.
enum class auth_code : std::int32_t {
  ok = 0,
  kerberos_v5 = 2,
  cleartext_password = 3,
  md5_password = 5,
  gss = 7,
  gss_continue = 8,
  sspi = 9,
  sasl = 10,
  sasl_continue = 11,
  sasl_final = 12,
};

bool equal_bytes(bytes_view a, bytes_view b) noexcept;
bool equal_bytes(const std::optional<bytes_view>& a, const std::optional<bytes_view>& b) noexcept;
bool equal_bytes(const std::vector<std::optional<bytes_view>>& a,
                 const std::vector<std::optional<bytes_view>>& b) noexcept;

// ---------------------------------------------------------------------------------------------
// Messages shared by both directions.

struct copy_data {
  bytes_view data;
  friend bool operator==(const copy_data& a, const copy_data& b) noexcept { return equal_bytes(a.data, b.data); }
};
struct copy_done {
  bool operator==(const copy_done&) const = default;
};

// ---------------------------------------------------------------------------------------------
// Frontend (client -> server).

// Untagged first packets.
struct startup_message {
  std::uint16_t protocol_major = 3;
  std::uint16_t protocol_minor = 0;
  std::vector<std::pair<std::string_view, std::string_view>> params;  // in wire order, e.g. {"user","alice"}
  // Value of the first parameter called `name`, if any.
  std::optional<std::string_view> param(std::string_view name) const noexcept;
  bool operator==(const startup_message&) const = default;
};
struct ssl_request {
  bool operator==(const ssl_request&) const = default;
};
struct gssenc_request {
  bool operator==(const gssenc_request&) const = default;
};
struct cancel_request {
  std::int32_t process_id = 0;
  std::int32_t secret_key = 0;
  bool operator==(const cancel_request&) const = default;
};

struct query {
  std::string_view sql;
  bool operator==(const query&) const = default;
};
struct parse {
  std::string_view name;  // empty: the unnamed statement
  std::string_view query;
  std::vector<std::uint32_t> param_types;  // 0: unspecified
  bool operator==(const parse&) const = default;
};
struct bind {
  std::string_view portal;
  std::string_view statement;
  std::vector<std::int16_t> param_formats;        // 0 text, 1 binary; 0 or 1 entries mean "all"
  std::vector<std::optional<bytes_view>> params;  // nullopt: SQL NULL
  std::vector<std::int16_t> result_formats;
  friend bool operator==(const bind& a, const bind& b) noexcept {
    return a.portal == b.portal && a.statement == b.statement && a.param_formats == b.param_formats &&
           equal_bytes(a.params, b.params) && a.result_formats == b.result_formats;
  }
};
struct describe {
  char kind = 'S';  // 'S' prepared statement, 'P' portal
  std::string_view name;
  bool operator==(const describe&) const = default;
};
struct execute {
  std::string_view portal;
  std::int32_t max_rows = 0;  // 0: no limit
  bool operator==(const execute&) const = default;
};
struct sync {
  bool operator==(const sync&) const = default;
};
struct flush {
  bool operator==(const flush&) const = default;
};
struct close {
  char kind = 'S';  // 'S' prepared statement, 'P' portal
  std::string_view name;
  bool operator==(const close&) const = default;
};
struct copy_fail {
  std::string_view message;
  bool operator==(const copy_fail&) const = default;
};
struct function_call {
  std::uint32_t oid = 0;
  std::vector<std::int16_t> arg_formats;
  std::vector<std::optional<bytes_view>> args;  // nullopt: SQL NULL
  std::int16_t result_format = 0;
  friend bool operator==(const function_call& a, const function_call& b) noexcept {
    return a.oid == b.oid && a.arg_formats == b.arg_formats && equal_bytes(a.args, b.args) &&
           a.result_format == b.result_format;
  }
};
struct terminate {
  bool operator==(const terminate&) const = default;
};
// 'p' during cleartext / MD5 authentication.
struct password_message {
  std::string_view password;
  bool operator==(const password_message&) const = default;
};
// 'p' answering AuthenticationSASL.
struct sasl_initial_response {
  std::string_view mechanism;
  std::optional<bytes_view> data;  // nullopt: length -1 on the wire
  friend bool operator==(const sasl_initial_response& a, const sasl_initial_response& b) noexcept {
    return a.mechanism == b.mechanism && equal_bytes(a.data, b.data);
  }
};
// 'p' answering AuthenticationSASLContinue.
struct sasl_response {
  bytes_view data;
  friend bool operator==(const sasl_response& a, const sasl_response& b) noexcept { return equal_bytes(a.data, b.data); }
};
// 'p' answering AuthenticationGSSContinue.
struct gss_response {
  bytes_view data;
  friend bool operator==(const gss_response& a, const gss_response& b) noexcept { return equal_bytes(a.data, b.data); }
};

using frontend_message =
    std::variant<startup_message, ssl_request, gssenc_request, cancel_request, query, parse, bind, describe, execute,
                 sync, flush, close, copy_data, copy_done, copy_fail, function_call, terminate, password_message,
                 sasl_initial_response, sasl_response, gss_response>;

// ---------------------------------------------------------------------------------------------
// Backend (server -> client).

struct authentication_ok {
  bool operator==(const authentication_ok&) const = default;
};
struct authentication_kerberos_v5 {
  bool operator==(const authentication_kerberos_v5&) const = default;
};
struct authentication_cleartext_password {
  bool operator==(const authentication_cleartext_password&) const = default;
};
struct authentication_md5_password {
  std::array<std::uint8_t, 4> salt{};
  bool operator==(const authentication_md5_password&) const = default;
};
struct authentication_gss {
  bool operator==(const authentication_gss&) const = default;
};
struct authentication_gss_continue {
  bytes_view data;
  friend bool operator==(const authentication_gss_continue& a, const authentication_gss_continue& b) noexcept {
    return equal_bytes(a.data, b.data);
  }
};
struct authentication_sspi {
  bool operator==(const authentication_sspi&) const = default;
};
struct authentication_sasl {
  std::vector<std::string_view> mechanisms;  // e.g. {"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"}
  bool operator==(const authentication_sasl&) const = default;
};
struct authentication_sasl_continue {
  bytes_view data;
  friend bool operator==(const authentication_sasl_continue& a, const authentication_sasl_continue& b) noexcept {
    return equal_bytes(a.data, b.data);
  }
};
struct authentication_sasl_final {
  bytes_view data;
  friend bool operator==(const authentication_sasl_final& a, const authentication_sasl_final& b) noexcept {
    return equal_bytes(a.data, b.data);
  }
};
struct backend_key_data {
  std::int32_t process_id = 0;
  std::int32_t secret_key = 0;
  bool operator==(const backend_key_data&) const = default;
};
struct parameter_status {
  std::string_view name;
  std::string_view value;
  bool operator==(const parameter_status&) const = default;
};
struct ready_for_query {
  char status = 'I';  // 'I' idle, 'T' in a transaction block, 'E' in a failed transaction block
  bool operator==(const ready_for_query&) const = default;
};
struct field_description {
  std::string_view name;
  std::uint32_t table_oid = 0;    // 0 when not a table column
  std::int16_t column_attr = 0;   // attribute number, 0 when not a table column
  std::uint32_t type_oid = 0;
  std::int16_t type_size = 0;     // negative: variable width
  std::int32_t type_modifier = 0;
  std::int16_t format = 0;        // 0 text, 1 binary
  bool operator==(const field_description&) const = default;
};
struct row_description {
  std::vector<field_description> fields;
  bool operator==(const row_description&) const = default;
};
struct data_row {
  std::vector<std::optional<bytes_view>> columns;  // nullopt: SQL NULL
  friend bool operator==(const data_row& a, const data_row& b) noexcept { return equal_bytes(a.columns, b.columns); }
};
struct command_complete {
  std::string_view tag;  // e.g. "SELECT 1", "INSERT 0 1"
  bool operator==(const command_complete&) const = default;
};
struct empty_query_response {
  bool operator==(const empty_query_response&) const = default;
};

// Field type bytes of ErrorResponse / NoticeResponse
// (https://www.postgresql.org/docs/15/protocol-error-fields.html).
namespace field {
inline constexpr char severity = 'S';            // localized
inline constexpr char severity_nonlocalized = 'V';
inline constexpr char sqlstate = 'C';
inline constexpr char message = 'M';
inline constexpr char detail = 'D';
inline constexpr char hint = 'H';
inline constexpr char position = 'P';
inline constexpr char internal_position = 'p';
inline constexpr char internal_query = 'q';
inline constexpr char where = 'W';
inline constexpr char schema_name = 's';
inline constexpr char table_name = 't';
inline constexpr char column_name = 'c';
inline constexpr char data_type_name = 'd';
inline constexpr char constraint_name = 'n';
inline constexpr char file = 'F';
inline constexpr char line = 'L';
inline constexpr char routine = 'R';
}  // namespace field

struct notice_fields {
  std::vector<std::pair<char, std::string_view>> fields;  // in wire order
  // First field of the given type, if present.
  std::optional<std::string_view> get(char type) const noexcept;
  // Non-localized severity 'V' when present (9.6+), else 'S'; empty if neither.
  std::string_view severity() const noexcept;
  std::string_view code() const noexcept;     // SQLSTATE ('C'), empty if absent
  std::string_view message() const noexcept;  // 'M', empty if absent
  bool operator==(const notice_fields&) const = default;
};
struct error_response : notice_fields {
  bool operator==(const error_response&) const = default;
};
struct notice_response : notice_fields {
  bool operator==(const notice_response&) const = default;
};

struct parse_complete {
  bool operator==(const parse_complete&) const = default;
};
struct bind_complete {
  bool operator==(const bind_complete&) const = default;
};
struct close_complete {
  bool operator==(const close_complete&) const = default;
};
struct no_data {
  bool operator==(const no_data&) const = default;
};
struct parameter_description {
  std::vector<std::uint32_t> type_oids;
  bool operator==(const parameter_description&) const = default;
};
struct portal_suspended {
  bool operator==(const portal_suspended&) const = default;
};
struct copy_response_fields {
  std::int8_t format = 0;                    // 0 textual, 1 binary (overall)
  std::vector<std::int16_t> column_formats;  // per column
  bool operator==(const copy_response_fields&) const = default;
};
struct copy_in_response : copy_response_fields {
  bool operator==(const copy_in_response&) const = default;
};
struct copy_out_response : copy_response_fields {
  bool operator==(const copy_out_response&) const = default;
};
struct copy_both_response : copy_response_fields {
  bool operator==(const copy_both_response&) const = default;
};
struct notification_response {
  std::int32_t process_id = 0;
  std::string_view channel;
  std::string_view payload;
  bool operator==(const notification_response&) const = default;
};
struct negotiate_protocol_version {
  std::int32_t newest_minor = 0;  // newest minor version the server supports for the requested major
  std::vector<std::string_view> unrecognized_options;  // "_pq_.*" options the server did not recognise
  bool operator==(const negotiate_protocol_version&) const = default;
};
struct function_call_response {
  std::optional<bytes_view> result;  // nullopt: SQL NULL
  friend bool operator==(const function_call_response& a, const function_call_response& b) noexcept {
    return equal_bytes(a.result, b.result);
  }
};

using backend_message =
    std::variant<authentication_ok, authentication_kerberos_v5, authentication_cleartext_password,
                 authentication_md5_password, authentication_gss, authentication_gss_continue, authentication_sspi,
                 authentication_sasl, authentication_sasl_continue, authentication_sasl_final, backend_key_data,
                 parameter_status, ready_for_query, row_description, data_row, command_complete, empty_query_response,
                 error_response, notice_response, parse_complete, bind_complete, close_complete, no_data,
                 parameter_description, portal_suspended, copy_in_response, copy_out_response, copy_both_response,
                 copy_data, copy_done, notification_response, negotiate_protocol_version, function_call_response>;

}  // namespace pgsluice::protocol

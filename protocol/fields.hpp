// Allocation-free readers and writers for the few message fields the relay looks at or rewrites.
//
// The relay forwards most messages untouched (DESIGN.md convention 4). For the handful it acts on
// (Query, Parse, Bind, Describe, Close, ReadyForQuery, ParameterStatus, ErrorResponse) it needs one
// or two fields, and codec.hpp's full decoders would allocate vectors for parameters, values and
// error fields it never reads; these read the fields in place, with the same bounds-checked
// reader the decoders use (detail/wire.hpp). Every reader takes a frame's body (after the tag and
// length word), never throws and never allocates. Layouts:
// https://www.postgresql.org/docs/15/protocol-message-formats.html and, for ErrorResponse /
// NoticeResponse fields, https://www.postgresql.org/docs/15/protocol-error-fields.html
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "protocol/errc.hpp"
#include "protocol/framing.hpp"
#include "protocol/messages.hpp"

namespace pgsluice::protocol {

// ---- readers --------------------------------------------------------------------------------

// A NUL-terminated String starting at `pos` of `body` (the view excludes the NUL); advances
// `pos` past the NUL. nullopt, `pos` unchanged, when there is no NUL or `pos` is past the end.
std::optional<std::string_view> read_cstring(bytes_view body, std::size_t& pos) noexcept;

// Parse: statement name, query text and the raw parameter-type section (Int16 count, then that
// many Int32 OIDs). The count is read unsigned, as PostgreSQL's pq_getmsgint does, and the OIDs
// must end the body exactly.
struct parse_fields {
  std::string_view name;  // empty: the unnamed statement
  std::string_view query;
  bytes_view param_types;  // the count and the OIDs, exactly as on the wire
};
std::optional<parse_fields> read_parse(bytes_view body) noexcept;

// Bind: portal and statement names; `rest` is everything after them (parameter formats, values,
// result formats), unchecked, for forwarding as it is.
struct bind_fields {
  std::string_view portal;
  std::string_view statement;
  bytes_view rest;
};
std::optional<bind_fields> read_bind(bytes_view body) noexcept;

// Describe and Close: 'S' (prepared statement) or 'P' (portal) and the name, ending the body.
struct target_fields {
  char kind = 'S';
  std::string_view name;
};
std::optional<target_fields> read_target(bytes_view body) noexcept;

// ParameterStatus: name and value (bytes after the value are ignored).
struct parameter_fields {
  std::string_view name;
  std::string_view value;
};
std::optional<parameter_fields> read_parameter_status(bytes_view body) noexcept;

// ReadyForQuery: the transaction status byte ('I', 'T' or 'E'; other bytes are returned as they are).
std::optional<char> read_ready_for_query(bytes_view body) noexcept;

// Query: the SQL text.
std::optional<std::string_view> read_query(bytes_view body) noexcept;

// ErrorResponse / NoticeResponse fields in wire order: (type byte, String) pairs closed by a zero
// byte. next() returns each field, then nullopt at the terminator or at the first malformed byte;
// error() tells the two apart (errc{} after a well-formed body, missing_terminator when the body
// ends early, malformed_message when bytes follow the terminator).
struct error_field {
  char type = '\0';  // field::message, field::sqlstate, ...
  std::string_view value;
};
class error_field_reader {
 public:
  explicit error_field_reader(bytes_view body) noexcept : body_(body) {}
  std::optional<error_field> next() noexcept;
  errc error() const noexcept { return error_; }

 private:
  bytes_view body_;
  std::size_t pos_ = 0;
  bool done_ = false;
  errc error_{};
};

// The fields the proxy logs or maps: SQLSTATE ('C'), severity (non-localized 'V', else 'S'),
// message ('M') and detail ('D'); each the first of its type, empty when absent. Tolerant: a
// malformed body yields the fields before the damage.
struct error_fields {
  std::string_view sqlstate;
  std::string_view severity;
  std::string_view message;
  std::string_view detail;
};
error_fields read_error_fields(bytes_view body) noexcept;

// ---- writers --------------------------------------------------------------------------------
// Each appends one complete message (tag and length included) to `out`. Like codec.hpp's
// encoders they trust their input: strings without NUL bytes, raw sections well formed.

// Parse; an empty `param_types` is written as a zero count.
void append_parse(std::vector<std::uint8_t>& out, std::string_view name, std::string_view query, bytes_view param_types);
// Bind with the formats/values section `rest` copied as it is (from read_bind).
void append_bind(std::vector<std::uint8_t>& out, std::string_view portal, std::string_view statement, bytes_view rest);
// Describe ('D') or Close ('C') of kind 'S' or 'P'.
void append_target(std::vector<std::uint8_t>& out, char tag, char kind, std::string_view name);
inline void append_target(std::vector<std::uint8_t>& out, frontend_tag tag, char kind, std::string_view name) {
  append_target(out, static_cast<char>(tag), kind, name);
}
void append_query(std::vector<std::uint8_t>& out, std::string_view sql);
void append_parameter_status(std::vector<std::uint8_t>& out, std::string_view name, std::string_view value);

// Re-encodes the ErrorResponse whose body is `body` with the value of every field of type
// `type` (e.g. field::message) replaced by `value`; the other fields keep their order and bytes,
// and a body without such a field is re-encoded unchanged. Used to put the client's statement
// name where the server quoted the proxy's internal one. Returns false, appending nothing, when
// `body` is not a well-formed field list (error_field_reader reports an error).
bool append_error_response(std::vector<std::uint8_t>& out, bytes_view body, char type, std::string_view value);

// Fixed 5-byte messages (tag + length 4), for the replies and requests the proxy synthesizes.
inline constexpr std::uint8_t parse_complete_msg[5] = {static_cast<std::uint8_t>(backend_tag::parse_complete), 0, 0, 0, 4};
inline constexpr std::uint8_t close_complete_msg[5] = {static_cast<std::uint8_t>(backend_tag::close_complete), 0, 0, 0, 4};
inline constexpr std::uint8_t sync_msg[5] = {static_cast<std::uint8_t>(frontend_tag::sync), 0, 0, 0, 4};
inline constexpr std::uint8_t terminate_msg[5] = {static_cast<std::uint8_t>(frontend_tag::terminate), 0, 0, 0, 4};

}  // namespace pgsluice::protocol

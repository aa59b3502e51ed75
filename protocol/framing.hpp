// Splits a byte stream into PostgreSQL v3 protocol frames without copying or allocating.
//
// Framing is kept apart from parsing: a frame is a length-delimited slice of the buffer, and
// the relay can forward it untouched (DESIGN.md conventions 2 and 4). Every length is judged
// from the header alone, before the body is buffered, so a hostile length never makes us
// allocate. See https://www.postgresql.org/docs/15/protocol-overview.html#PROTOCOL-MESSAGE-CONCEPTS
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include <boost/system/error_code.hpp>

#include "protocol/errc.hpp"

namespace pgsluice::protocol {

using bytes_view = std::span<const std::uint8_t>;

// Request codes of the untagged packets a client may send first
// (https://www.postgresql.org/docs/15/protocol-message-formats.html).
inline constexpr std::uint32_t ssl_request_code = 80877103;     // (1234 << 16) | 5679
inline constexpr std::uint32_t gssenc_request_code = 80877104;  // (1234 << 16) | 5680
inline constexpr std::uint32_t cancel_request_code = 80877102;  // (1234 << 16) | 5678
inline constexpr std::uint32_t protocol_3_0 = 3u << 16;         // 196608

// PostgreSQL's MAX_STARTUP_PACKET_LENGTH (src/include/libpq/pqcomm.h) bounds the packet body,
// i.e. the length word's value minus the 4 bytes of the word itself (postmaster.c,
// ProcessStartupPacket); we apply the same rule so we reject exactly what PostgreSQL rejects.
inline constexpr std::size_t max_startup_packet_length = 10000;
// Smallest untagged packet: length word + request code / protocol version.
inline constexpr std::size_t min_startup_packet_size = 8;
inline constexpr std::size_t cancel_request_size = 16;
// Tag byte + Int32 length.
inline constexpr std::size_t regular_header_size = 5;
// A sensible default for next_frame's limit; PostgreSQL itself allows up to 1 GB (PQ_LARGE_MESSAGE_LIMIT).
inline constexpr std::size_t default_max_message_size = 1u << 30;

enum class frame_kind { startup, ssl_request, gssenc_request, cancel_request, regular };

std::string_view to_string(frame_kind k) noexcept;

struct frame {
  frame_kind kind = frame_kind::regular;
  char tag = '\0';         // message type byte; '\0' for untagged kinds
  std::size_t size = 0;    // total bytes of the frame, header included
  bytes_view body;         // after tag+length (regular) or after the length word (untagged: starts with the code)
  std::uint32_t code = 0;  // untagged kinds: request code or protocol version (major << 16 | minor); 0 otherwise

  std::uint16_t protocol_major() const noexcept { return static_cast<std::uint16_t>(code >> 16); }
  std::uint16_t protocol_minor() const noexcept { return static_cast<std::uint16_t>(code & 0xffff); }
};

struct frame_result {
  enum class status { need_more, frame, invalid };
  status st = status::need_more;
  // status::frame: the complete frame (body views into the caller's buffer).
  // status::need_more with the header already complete: kind, tag, size and code are filled
  // in (body is empty), so a relay can start streaming a large message before it is buffered.
  frame f;
  // status::need_more: total bytes (from the start of buf) needed before calling again can
  // make progress; the whole frame's size once the header is known.
  std::size_t need = 0;
  boost::system::error_code error;  // status::invalid: why (errc::invalid_length, ...)

  bool is_frame() const noexcept { return st == status::frame; }
  bool is_need_more() const noexcept { return st == status::need_more; }
  bool is_invalid() const noexcept { return st == status::invalid; }
};

// First packet of a connection (no tag): StartupMessage, SSLRequest, GSSENCRequest or
// CancelRequest. Invalid when the length is below 8 or its body above
// max_startup_packet_length (startup_too_large), when SSLRequest/GSSENCRequest are not exactly
// 8 bytes or CancelRequest not exactly 16 (invalid_length), or when the protocol major version
// is not 3 (unsupported_protocol_version). Protocol 3.x with x > 0 is a valid startup frame
// (protocol_minor() reports x) so the caller can answer with NegotiateProtocolVersion.
frame_result next_startup_frame(bytes_view buf) noexcept;

// A tagged message, either direction. Invalid when the length word is below 4 or negative
// (invalid_length) or when tag+length exceed max_message_size (message_too_large); both are
// judged from the 5-byte header, before the body arrives.
frame_result next_frame(bytes_view buf, std::size_t max_message_size = default_max_message_size) noexcept;

}  // namespace pgsluice::protocol

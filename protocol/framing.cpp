// Frame boundaries for the untagged first packet and for tagged messages; no allocation, no copies.
#include "protocol/framing.hpp"

#include <limits>

#include "protocol/detail/wire.hpp"

namespace pgsluice::protocol {
namespace {

frame_result need_more(std::size_t need) noexcept {
  frame_result r;
  r.st = frame_result::status::need_more;
  r.need = need;
  return r;
}

frame_result invalid(errc e) noexcept {
  frame_result r;
  r.st = frame_result::status::invalid;
  r.error = e;
  return r;
}

}  // namespace

std::string_view to_string(frame_kind k) noexcept {
  switch (k) {
    case frame_kind::startup: return "StartupMessage";
    case frame_kind::ssl_request: return "SSLRequest";
    case frame_kind::gssenc_request: return "GSSENCRequest";
    case frame_kind::cancel_request: return "CancelRequest";
    case frame_kind::regular: return "regular";
  }
  return "unknown";
}

// Mirrors ProcessStartupPacket (src/backend/postmaster/postmaster.c) and
// https://www.postgresql.org/docs/15/protocol-flow.html (Start-up): the length is judged
// as soon as its 4 bytes arrive, the code as soon as its 4 bytes arrive, before the body.
frame_result next_startup_frame(bytes_view buf) noexcept {
  if (buf.size() < 4) return need_more(4);
  const std::uint32_t len = detail::load_u32(buf.data());
  if (len > static_cast<std::uint32_t>(std::numeric_limits<std::int32_t>::max())) return invalid(errc::invalid_length);
  if (len < min_startup_packet_size) return invalid(errc::invalid_length);
  if (len - 4 > max_startup_packet_length) return invalid(errc::startup_too_large);
  if (buf.size() < min_startup_packet_size) return need_more(len);

  frame_result r;
  r.f.tag = '\0';
  r.f.size = len;
  r.f.code = detail::load_u32(buf.data() + 4);
  switch (r.f.code) {
    case ssl_request_code:
      if (len != min_startup_packet_size) return invalid(errc::invalid_length);
      r.f.kind = frame_kind::ssl_request;
      break;
    case gssenc_request_code:
      if (len != min_startup_packet_size) return invalid(errc::invalid_length);
      r.f.kind = frame_kind::gssenc_request;
      break;
    case cancel_request_code:
      if (len != cancel_request_size) return invalid(errc::invalid_length);
      r.f.kind = frame_kind::cancel_request;
      break;
    default:
      // Any other code is a protocol version; only major 3 exists since PostgreSQL 14 dropped 2.0.
      if (r.f.protocol_major() != 3) return invalid(errc::unsupported_protocol_version);
      r.f.kind = frame_kind::startup;
      break;
  }
  if (buf.size() < len) {
    r.st = frame_result::status::need_more;
    r.need = len;
    return r;
  }
  r.st = frame_result::status::frame;
  r.f.body = buf.subspan(4, len - 4);
  return r;
}

// https://www.postgresql.org/docs/15/protocol-overview.html#PROTOCOL-MESSAGE-CONCEPTS : a type
// byte, then an Int32 length that counts itself but not the type byte.
frame_result next_frame(bytes_view buf, std::size_t max_message_size) noexcept {
  if (buf.size() < regular_header_size) return need_more(regular_header_size);
  const std::uint32_t len = detail::load_u32(buf.data() + 1);
  if (len > static_cast<std::uint32_t>(std::numeric_limits<std::int32_t>::max()) || len < 4) {
    return invalid(errc::invalid_length);
  }
  const std::size_t total = std::size_t{len} + 1;
  if (total > max_message_size) return invalid(errc::message_too_large);

  frame_result r;
  r.f.kind = frame_kind::regular;
  r.f.tag = static_cast<char>(buf[0]);
  r.f.size = total;
  if (buf.size() < total) {
    r.st = frame_result::status::need_more;
    r.need = total;
    return r;
  }
  r.st = frame_result::status::frame;
  r.f.body = buf.subspan(regular_header_size, total - regular_header_size);
  return r;
}

}  // namespace pgsluice::protocol

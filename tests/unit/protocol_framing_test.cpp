// Tests of protocol/framing.hpp: need-more / frame / invalid for startup-family packets and tagged messages.
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "protocol/errc.hpp"
#include "protocol/framing.hpp"
#include "tests/unit/protocol_wire_builder.hpp"

namespace pgsluice::protocol {
namespace {

using pgsluice::test::byte_vector;
using pgsluice::test::concat;
using pgsluice::test::wire;
using status = frame_result::status;

constexpr std::uint32_t version(std::uint16_t major, std::uint16_t minor) {
  return (std::uint32_t{major} << 16) | minor;
}

byte_vector startup_packet(std::uint32_t code) {
  return wire::startup().i32(code).str("user").str("alice").str("database").str("db").u8(0).done();
}

struct framing_case {
  std::string name;
  byte_vector bytes;
  status st;
  std::optional<frame_kind> kind = std::nullopt;  // when the header is complete
  char tag = '\0';
  std::size_t size = 0;                            // frame size, when known
  std::size_t need = 0;                            // status::need_more
  std::optional<errc> error = std::nullopt;        // status::invalid
  std::uint32_t code = 0;
};

void PrintTo(const framing_case& c, std::ostream* os) { *os << c.name; }

void check(const frame_result& r, const framing_case& c, bytes_view buf) {
  ASSERT_EQ(r.st, c.st) << c.name;
  switch (c.st) {
    case status::invalid:
      ASSERT_TRUE(c.error.has_value());
      EXPECT_EQ(r.error, make_error_code(*c.error)) << c.name << ": " << r.error.message();
      break;
    case status::need_more:
      EXPECT_EQ(r.need, c.need) << c.name;
      EXPECT_FALSE(r.error) << c.name;
      EXPECT_GT(r.need, buf.size()) << c.name;
      if (c.kind) {
        EXPECT_EQ(r.f.kind, *c.kind) << c.name;
        EXPECT_EQ(r.f.tag, c.tag) << c.name;
        EXPECT_EQ(r.f.size, c.size) << c.name;
        EXPECT_TRUE(r.f.body.empty()) << c.name;
      }
      break;
    case status::frame:
      EXPECT_FALSE(r.error) << c.name;
      ASSERT_TRUE(c.kind.has_value());
      EXPECT_EQ(r.f.kind, *c.kind) << c.name;
      EXPECT_EQ(r.f.tag, c.tag) << c.name;
      EXPECT_EQ(r.f.size, c.size) << c.name;
      EXPECT_EQ(r.f.code, c.code) << c.name;
      // The body is a view into the caller's buffer, right after the header.
      {
        const std::size_t header = c.kind == frame_kind::regular ? regular_header_size : 4;
        EXPECT_EQ(r.f.body.data(), buf.data() + header) << c.name;
        EXPECT_EQ(r.f.body.size(), c.size - header) << c.name;
      }
      break;
  }
}

// ---- startup family -------------------------------------------------------------------------

class startup_framing : public ::testing::TestWithParam<framing_case> {};

TEST_P(startup_framing, classifies) {
  const auto& c = GetParam();
  check(next_startup_frame(c.bytes), c, c.bytes);
}

std::vector<framing_case> startup_cases() {
  const byte_vector startup30 = startup_packet(protocol_3_0);
  const byte_vector ssl = wire::startup().i32(ssl_request_code).done();
  const byte_vector gss = wire::startup().i32(gssenc_request_code).done();
  const byte_vector cancel = wire::startup().i32(cancel_request_code).i32(4242).i32(-7).done();
  const byte_vector big_ok = [] {
    // Body (length word excluded) exactly max_startup_packet_length bytes: accepted like PostgreSQL does.
    std::string value(max_startup_packet_length - 10, 'x');  // code 4 + "opt\0" 4 + NUL 1 + final NUL 1
    return wire::startup().i32(protocol_3_0).str("opt").str(value).u8(0).done();
  }();
  std::vector<framing_case> v;
  v.push_back({"empty buffer", {}, status::need_more, {}, '\0', 0, 4});
  v.push_back({"partial length word", {0, 0, 0}, status::need_more, {}, '\0', 0, 4});
  v.push_back({"length word only", byte_vector(startup30.begin(), startup30.begin() + 4), status::need_more, {}, '\0',
               0, startup30.size()});
  v.push_back({"length and half a code", byte_vector(startup30.begin(), startup30.begin() + 6), status::need_more, {},
               '\0', 0, startup30.size()});
  v.push_back({"code but partial params", byte_vector(startup30.begin(), startup30.begin() + 12), status::need_more,
               frame_kind::startup, '\0', startup30.size(), startup30.size()});
  v.push_back({"startup 3.0", startup30, status::frame, frame_kind::startup, '\0', startup30.size(), 0, {},
               protocol_3_0});
  {
    auto two = concat({startup30, ssl});
    v.push_back({"startup followed by more bytes", two, status::frame, frame_kind::startup, '\0', startup30.size(), 0,
                 {}, protocol_3_0});
  }
  {
    auto p = startup_packet(version(3, 2));
    v.push_back({"startup 3.2 is a frame (NegotiateProtocolVersion is the caller's answer)", p, status::frame,
                 frame_kind::startup, '\0', p.size(), 0, {}, version(3, 2)});
  }
  {
    auto p = startup_packet(version(3, 0xffff));
    v.push_back({"startup 3.65535", p, status::frame, frame_kind::startup, '\0', p.size(), 0, {}, version(3, 0xffff)});
  }
  v.push_back({"ssl request", ssl, status::frame, frame_kind::ssl_request, '\0', 8, 0, {}, ssl_request_code});
  v.push_back({"gssenc request", gss, status::frame, frame_kind::gssenc_request, '\0', 8, 0, {}, gssenc_request_code});
  v.push_back({"cancel request", cancel, status::frame, frame_kind::cancel_request, '\0', 16, 0, {},
               cancel_request_code});
  v.push_back({"partial cancel request", byte_vector(cancel.begin(), cancel.begin() + 10), status::need_more,
               frame_kind::cancel_request, '\0', 16, 16});
  v.push_back({"largest startup packet", big_ok, status::frame, frame_kind::startup, '\0', big_ok.size(), 0, {},
               protocol_3_0});
  v.push_back({"protocol 2.0", startup_packet(version(2, 0)), status::invalid, {}, '\0', 0, 0,
               errc::unsupported_protocol_version});
  v.push_back({"protocol 4.0", startup_packet(version(4, 0)), status::invalid, {}, '\0', 0, 0,
               errc::unsupported_protocol_version});
  v.push_back({"unknown 1234.x request code", wire::startup().i32(version(1234, 5681)).done(), status::invalid, {},
               '\0', 0, 0, errc::unsupported_protocol_version});
  v.push_back({"version judged from 8 bytes, before the body",
               byte_vector{0, 0, 0x27, 0x10, 0, 2, 0, 0}, status::invalid, {}, '\0', 0, 0,
               errc::unsupported_protocol_version});
  v.push_back({"length 0", {0, 0, 0, 0}, status::invalid, {}, '\0', 0, 0, errc::invalid_length});
  v.push_back({"length 7", {0, 0, 0, 7, 0, 3, 0}, status::invalid, {}, '\0', 0, 0, errc::invalid_length});
  v.push_back({"negative length", {0xff, 0xff, 0xff, 0xf0}, status::invalid, {}, '\0', 0, 0, errc::invalid_length});
  v.push_back({"too large, judged from the length word alone", wire::raw().i32(max_startup_packet_length + 5).done(),
               status::invalid, {}, '\0', 0, 0, errc::startup_too_large});
  v.push_back({"huge length", {0x7f, 0xff, 0xff, 0xff}, status::invalid, {}, '\0', 0, 0, errc::startup_too_large});
  v.push_back({"ssl request with a body", wire::startup().i32(ssl_request_code).i32(0).done(), status::invalid, {},
               '\0', 0, 0, errc::invalid_length});
  v.push_back({"gssenc request with a body", wire::startup().i32(gssenc_request_code).u8(0).done(), status::invalid,
               {}, '\0', 0, 0, errc::invalid_length});
  v.push_back({"short cancel request", wire::startup().i32(cancel_request_code).i32(1).done(), status::invalid, {},
               '\0', 0, 0, errc::invalid_length});
  v.push_back({"long cancel request", wire::startup().i32(cancel_request_code).i32(1).i32(2).i32(3).done(),
               status::invalid, {}, '\0', 0, 0, errc::invalid_length});
  v.push_back({"tagged message where a startup packet belongs", wire::msg('Q').str("SELECT 1").done(),
               status::invalid, {}, '\0', 0, 0, errc::startup_too_large});
  v.push_back({"http request", wire::raw().text("GET / HTTP/1.1\r\n\r\n").done(), status::invalid, {}, '\0', 0, 0,
               errc::startup_too_large});
  return v;
}

INSTANTIATE_TEST_SUITE_P(table, startup_framing, ::testing::ValuesIn(startup_cases()),
                         [](const auto& info) { return "case" + std::to_string(info.index); });

TEST(startup_framing, largest_plus_one_is_too_large) {
  const byte_vector header = wire::raw().i32(max_startup_packet_length + 4).done();
  EXPECT_TRUE(next_startup_frame(header).is_need_more());
  const byte_vector over = wire::raw().i32(max_startup_packet_length + 5).done();
  const auto r = next_startup_frame(over);
  ASSERT_TRUE(r.is_invalid());
  EXPECT_EQ(r.error, errc::startup_too_large);
}

TEST(startup_framing, reports_protocol_version) {
  const auto p = startup_packet(version(3, 7));
  const auto r = next_startup_frame(p);
  ASSERT_TRUE(r.is_frame());
  EXPECT_EQ(r.f.protocol_major(), 3);
  EXPECT_EQ(r.f.protocol_minor(), 7);
}

// ---- tagged messages ------------------------------------------------------------------------

struct regular_case {
  framing_case c;
  std::size_t max = default_max_message_size;
};

void PrintTo(const regular_case& c, std::ostream* os) { *os << c.c.name; }

class regular_framing : public ::testing::TestWithParam<regular_case> {};

TEST_P(regular_framing, classifies) {
  const auto& c = GetParam();
  check(next_frame(c.c.bytes, c.max), c.c, c.c.bytes);
}

std::vector<regular_case> regular_cases() {
  const byte_vector q = wire::msg('Q').str("SELECT 1").done();  // 14 bytes
  const byte_vector sync = wire::msg('S').done();
  const byte_vector z = wire::msg('Z').ch('I').done();
  std::vector<regular_case> v;
  auto add = [&](framing_case c, std::size_t max = default_max_message_size) { v.push_back({std::move(c), max}); };
  add({"empty buffer", {}, status::need_more, {}, '\0', 0, 5});
  add({"tag only", {'Q'}, status::need_more, {}, '\0', 0, 5});
  add({"partial header", {'Q', 0, 0, 0}, status::need_more, {}, '\0', 0, 5});
  add({"header only", byte_vector(q.begin(), q.begin() + 5), status::need_more, frame_kind::regular, 'Q', q.size(),
       q.size()});
  add({"partial body", byte_vector(q.begin(), q.end() - 1), status::need_more, frame_kind::regular, 'Q', q.size(),
       q.size()});
  add({"query", q, status::frame, frame_kind::regular, 'Q', q.size()});
  add({"empty body (Sync)", sync, status::frame, frame_kind::regular, 'S', 5});
  add({"two messages in one buffer: the first", concat({z, q}), status::frame, frame_kind::regular, 'Z', z.size()});
  add({"one and a half messages", concat({q, byte_vector(z.begin(), z.begin() + 3)}), status::frame,
       frame_kind::regular, 'Q', q.size()});
  add({"length 3", {'Q', 0, 0, 0, 3}, status::invalid, {}, '\0', 0, 0, errc::invalid_length});
  add({"length 0", {'S', 0, 0, 0, 0}, status::invalid, {}, '\0', 0, 0, errc::invalid_length});
  add({"negative length", {'D', 0xff, 0xff, 0xff, 0xff}, status::invalid, {}, '\0', 0, 0, errc::invalid_length});
  add({"int32 min length", {'D', 0x80, 0, 0, 0}, status::invalid, {}, '\0', 0, 0, errc::invalid_length});
  add({"oversized, judged from the header alone", {'Q', 0, 0x10, 0, 0}, status::invalid, {}, '\0', 0, 0,
       errc::message_too_large},
      8192);
  add({"exactly the maximum", q, status::frame, frame_kind::regular, 'Q', q.size()}, q.size());
  add({"one byte over the maximum", q, status::invalid, {}, '\0', 0, 0, errc::message_too_large}, q.size() - 1);
  add({"largest int32 length with the default limit", {'d', 0x7f, 0xff, 0xff, 0xff}, status::invalid, {}, '\0', 0,
       0, errc::message_too_large});
  add({"unknown tag is still framed (decoding decides)", wire::msg('~').u8(1).done(), status::frame,
       frame_kind::regular, '~', 6});
  return v;
}

INSTANTIATE_TEST_SUITE_P(table, regular_framing, ::testing::ValuesIn(regular_cases()),
                         [](const auto& info) { return "case" + std::to_string(info.index); });

// Feeds a stream of messages split at every possible point, as reads from a socket would, and
// checks the framer yields exactly the original messages.
TEST(regular_framing, every_split_point_of_a_stream) {
  const std::vector<byte_vector> messages = {
      wire::msg('P').str("s1").str("SELECT $1").i16(1).i32(23).done(),
      wire::msg('B').str("").str("s1").i16(0).i16(1).i32(1).text("7").i16(0).done(),
      wire::msg('E').str("").i32(0).done(),
      wire::msg('S').done(),
      wire::msg('d').text(std::string(300, 'z')).done(),
  };
  byte_vector stream;
  for (const auto& m : messages) stream.insert(stream.end(), m.begin(), m.end());

  for (std::size_t split = 0; split <= stream.size(); ++split) {
    byte_vector buffer;  // what a relay holds so far
    std::size_t fed = 0;
    std::vector<byte_vector> seen;
    auto feed = [&](std::size_t upto) {
      buffer.insert(buffer.end(), stream.begin() + static_cast<long>(fed), stream.begin() + static_cast<long>(upto));
      fed = upto;
      for (;;) {
        auto r = next_frame(buffer);
        ASSERT_FALSE(r.is_invalid());
        if (r.is_need_more()) {
          EXPECT_GT(r.need, buffer.size());
          break;
        }
        seen.emplace_back(buffer.begin(), buffer.begin() + static_cast<long>(r.f.size));
        buffer.erase(buffer.begin(), buffer.begin() + static_cast<long>(r.f.size));
      }
    };
    feed(split);
    feed(stream.size());
    EXPECT_TRUE(buffer.empty()) << "split " << split;
    EXPECT_EQ(seen, messages) << "split " << split;
  }
}

// Reading exactly `need` bytes each time never overshoots a message boundary.
TEST(regular_framing, need_is_exact) {
  const byte_vector stream =
      concat({wire::msg('Z').ch('I').done(), wire::msg('C').str("SELECT 1").done(), wire::msg('S').done()});
  std::size_t offset = 0, have = 0, frames = 0;
  while (offset < stream.size()) {
    auto r = next_frame(bytes_view(stream).subspan(offset, have));
    if (r.is_need_more()) {
      ASSERT_LE(offset + r.need, stream.size());
      have = r.need;
      continue;
    }
    ASSERT_TRUE(r.is_frame());
    EXPECT_EQ(r.f.size, have);
    offset += r.f.size;
    have = 0;
    ++frames;
  }
  EXPECT_EQ(frames, 3u);
}

TEST(regular_framing, garbage_never_crashes_and_never_overreads) {
  // A deterministic byte soup: every result must be consistent with the buffer it came from.
  std::uint32_t x = 2463534242u;
  for (int round = 0; round < 2000; ++round) {
    byte_vector buf(static_cast<std::size_t>(round % 64));
    for (auto& b : buf) {
      x ^= x << 13, x ^= x >> 17, x ^= x << 5;
      b = static_cast<std::uint8_t>(x);
    }
    for (const auto& r : {next_frame(buf, 4096), next_startup_frame(buf)}) {
      if (r.is_frame()) {
        EXPECT_LE(r.f.size, buf.size());
        EXPECT_GE(r.f.body.data(), buf.data());
        EXPECT_LE(r.f.body.data() + r.f.body.size(), buf.data() + buf.size());
      } else if (r.is_need_more()) {
        EXPECT_GT(r.need, buf.size());
      } else {
        EXPECT_TRUE(r.error);
      }
    }
  }
}

TEST(frame_kind_names, for_logs) {
  EXPECT_EQ(to_string(frame_kind::startup), "StartupMessage");
  EXPECT_EQ(to_string(frame_kind::ssl_request), "SSLRequest");
  EXPECT_EQ(to_string(frame_kind::gssenc_request), "GSSENCRequest");
  EXPECT_EQ(to_string(frame_kind::cancel_request), "CancelRequest");
  EXPECT_EQ(to_string(frame_kind::regular), "regular");
}

TEST(errc_category, is_registered_as_pgsluice) {
  boost::system::error_code ec = errc::message_too_large;
  EXPECT_EQ(ec.category().name(), std::string("pgsluice"));
  EXPECT_EQ(ec, make_error_code(errc::message_too_large));
  EXPECT_NE(ec, make_error_code(errc::invalid_length));
  EXPECT_EQ(ec.message(), "message too large");
  for (int v = static_cast<int>(errc::need_more); v <= static_cast<int>(errc::crypto_failure); ++v) {
    EXPECT_NE(make_error_code(static_cast<errc>(v)).message(), "unknown pgsluice error") << v;
  }
}

}  // namespace
}  // namespace pgsluice::protocol

// Tests of protocol/codec.hpp on malformed bodies: every decoder family fails with the right errc, never throws.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "protocol/codec.hpp"
#include "tests/unit/protocol_wire_builder.hpp"

namespace pgsluice::protocol {
namespace {

using pgsluice::test::byte_vector;
using pgsluice::test::wire;

enum class family { frontend, startup, sasl_initial, sasl, gss, backend };

struct malformed_case {
  std::string name;
  family fam;
  byte_vector bytes;  // a whole frame (framing must accept it; the body is what is wrong)
  errc expected;
};

void PrintTo(const malformed_case& c, std::ostream* os) { *os << c.name; }

template <class R>
boost::system::error_code error_of(const R& r) {
  return r ? boost::system::error_code{} : r.error();
}

boost::system::error_code decode_error(family fam, const frame& f) {
  switch (fam) {
    case family::frontend: return error_of(decode_frontend(f));
    case family::startup: return error_of(decode_startup(f));
    case family::sasl_initial: return error_of(decode_sasl_initial_response(f));
    case family::sasl: return error_of(decode_sasl_response(f));
    case family::gss: return error_of(decode_gss_response(f));
    case family::backend: return error_of(decode_backend(f));
  }
  return {};
}

std::vector<malformed_case> cases() {
  using F = family;
  std::vector<malformed_case> v;
  auto add = [&](std::string name, F fam, byte_vector b, errc e) { v.push_back({std::move(name), fam, std::move(b), e}); };

  // Frontend, tagged.
  add("unknown frontend tag", F::frontend, wire::msg('Z').ch('I').done(), errc::unknown_message_type);
  add("Query without NUL", F::frontend, wire::msg('Q').text("SELECT 1").done(), errc::missing_terminator);
  add("Query with bytes after NUL", F::frontend, wire::msg('Q').str("SELECT 1").u8('x').done(), errc::malformed_message);
  add("Query empty body", F::frontend, wire::msg('Q').done(), errc::missing_terminator);
  add("Parse missing query", F::frontend, wire::msg('P').str("s1").done(), errc::missing_terminator);
  add("Parse missing count", F::frontend, wire::msg('P').str("s1").str("q").done(), errc::truncated_field);
  add("Parse negative count", F::frontend, wire::msg('P').str("").str("q").i16(-1).done(), errc::malformed_message);
  add("Parse count beyond body", F::frontend, wire::msg('P').str("").str("q").i16(3).i32(23).done(),
      errc::truncated_field);
  add("Parse half an oid", F::frontend, wire::msg('P').str("").str("q").i16(1).i16(0).done(), errc::truncated_field);
  add("Bind missing statement", F::frontend, wire::msg('B').str("").done(), errc::missing_terminator);
  add("Bind format count beyond body", F::frontend, wire::msg('B').str("").str("").i16(5).i16(0).done(),
      errc::truncated_field);
  add("Bind parameter length -2", F::frontend,
      wire::msg('B').str("").str("").i16(0).i16(1).i32(-2).i16(0).done(), errc::malformed_message);
  add("Bind parameter longer than body", F::frontend,
      wire::msg('B').str("").str("").i16(0).i16(1).i32(10).text("ab").done(), errc::truncated_field);
  add("Bind parameter count 32767", F::frontend, wire::msg('B').str("").str("").i16(0).i16(32767).i32(1).done(),
      errc::truncated_field);
  add("Bind missing result formats", F::frontend, wire::msg('B').str("").str("").i16(0).i16(0).done(),
      errc::truncated_field);
  add("Bind trailing byte", F::frontend, wire::msg('B').str("").str("").i16(0).i16(0).i16(0).u8(0).done(),
      errc::malformed_message);
  add("Describe kind X", F::frontend, wire::msg('D').ch('X').str("s").done(), errc::malformed_message);
  add("Describe empty body", F::frontend, wire::msg('D').done(), errc::truncated_field);
  add("Describe name without NUL", F::frontend, wire::msg('D').ch('S').text("s").done(), errc::missing_terminator);
  add("Execute missing max_rows", F::frontend, wire::msg('E').str("").i16(0).done(), errc::truncated_field);
  add("Sync with a body", F::frontend, wire::msg('S').u8(0).done(), errc::malformed_message);
  add("Flush with a body", F::frontend, wire::msg('H').u8(0).done(), errc::malformed_message);
  add("Close kind 0", F::frontend, wire::msg('C').u8(0).str("").done(), errc::malformed_message);
  add("CopyDone with a body", F::frontend, wire::msg('c').u8(1).done(), errc::malformed_message);
  add("CopyFail without NUL", F::frontend, wire::msg('f').text("oops").done(), errc::missing_terminator);
  add("FunctionCall short oid", F::frontend, wire::msg('F').i16(1).done(), errc::truncated_field);
  add("FunctionCall argument length -3", F::frontend, wire::msg('F').i32(1).i16(0).i16(1).i32(-3).i16(0).done(),
      errc::malformed_message);
  add("FunctionCall missing result format", F::frontend, wire::msg('F').i32(1).i16(0).i16(0).done(),
      errc::truncated_field);
  add("Terminate with a body", F::frontend, wire::msg('X').u8(0).done(), errc::malformed_message);
  add("PasswordMessage without NUL", F::frontend, wire::msg('p').text("secret").done(), errc::missing_terminator);

  // SASL / GSS ('p' decoded by the authentication state).
  add("SASLInitialResponse mechanism without NUL", F::sasl_initial, wire::msg('p').text("SCRAM").done(),
      errc::missing_terminator);
  add("SASLInitialResponse missing length", F::sasl_initial, wire::msg('p').str("SCRAM-SHA-256").i16(0).done(),
      errc::truncated_field);
  add("SASLInitialResponse length -2", F::sasl_initial, wire::msg('p').str("SCRAM-SHA-256").i32(-2).done(),
      errc::malformed_message);
  add("SASLInitialResponse length beyond body", F::sasl_initial,
      wire::msg('p').str("SCRAM-SHA-256").i32(100).text("n,,").done(), errc::truncated_field);
  add("SASLInitialResponse trailing bytes", F::sasl_initial, wire::msg('p').str("M").i32(1).text("ab").done(),
      errc::malformed_message);
  add("SASLInitialResponse on a regular frame of another tag is still a body check", F::sasl_initial,
      wire::msg('p').done(), errc::missing_terminator);

  // Startup family (frames hand-made so the body, not the framer, is at fault).
  add("StartupMessage without final terminator", F::startup,
      wire::startup().i32(196608).str("user").str("alice").done(), errc::missing_terminator);
  add("StartupMessage name without value", F::startup, wire::startup().i32(196608).str("user").done(),
      errc::missing_terminator);
  add("StartupMessage bytes after terminator", F::startup,
      wire::startup().i32(196608).str("user").str("a").u8(0).text("zz").done(), errc::malformed_message);
  add("StartupMessage with no terminator at all", F::startup, wire::startup().i32(196608).done(),
      errc::missing_terminator);

  // Backend.
  add("unknown backend tag", F::backend, wire::msg('Q').str("x").done(), errc::unknown_message_type);
  add("Authentication without subtype", F::backend, wire::msg('R').i16(0).done(), errc::truncated_field);
  add("Authentication unknown subtype 6 (SCM credentials)", F::backend, wire::msg('R').i32(6).done(),
      errc::unknown_message_type);
  add("Authentication negative subtype", F::backend, wire::msg('R').i32(-1).done(), errc::unknown_message_type);
  add("AuthenticationOk with a body", F::backend, wire::msg('R').i32(0).u8(0).done(), errc::malformed_message);
  add("AuthenticationMD5Password short salt", F::backend, wire::msg('R').i32(5).u8(1).u8(2).u8(3).done(),
      errc::truncated_field);
  add("AuthenticationMD5Password long salt", F::backend, wire::msg('R').i32(5).i32(1).u8(0).done(),
      errc::malformed_message);
  add("AuthenticationSASL without list terminator", F::backend, wire::msg('R').i32(10).str("SCRAM-SHA-256").done(),
      errc::missing_terminator);
  add("AuthenticationSASL name without NUL", F::backend, wire::msg('R').i32(10).text("SCRAM").done(),
      errc::missing_terminator);
  add("BackendKeyData short", F::backend, wire::msg('K').i32(1).i16(2).done(), errc::truncated_field);
  add("BackendKeyData long", F::backend, wire::msg('K').i32(1).i32(2).u8(3).done(), errc::malformed_message);
  add("ParameterStatus missing value", F::backend, wire::msg('S').str("TimeZone").done(), errc::missing_terminator);
  add("ReadyForQuery status X", F::backend, wire::msg('Z').ch('X').done(), errc::malformed_message);
  add("ReadyForQuery empty", F::backend, wire::msg('Z').done(), errc::truncated_field);
  add("ReadyForQuery two bytes", F::backend, wire::msg('Z').ch('I').ch('I').done(), errc::malformed_message);
  add("RowDescription count beyond body", F::backend, wire::msg('T').i16(1).done(), errc::truncated_field);
  add("RowDescription negative count", F::backend, wire::msg('T').i16(-5).done(), errc::malformed_message);
  add("RowDescription field cut short", F::backend,
      wire::msg('T').i16(1).str("a_long_enough_name").i32(0).i16(0).i32(23).done(), errc::truncated_field);
  add("RowDescription name without NUL", F::backend, wire::msg('T').i16(1).text("abcdefghijklmnopqrstuvwxyz").done(),
      errc::missing_terminator);
  add("DataRow negative count", F::backend, wire::msg('D').i16(-1).done(), errc::malformed_message);
  add("DataRow column length -5", F::backend, wire::msg('D').i16(1).i32(-5).done(), errc::malformed_message);
  add("DataRow column beyond body", F::backend, wire::msg('D').i16(1).i32(8).text("abc").done(),
      errc::truncated_field);
  add("DataRow fewer columns than counted", F::backend, wire::msg('D').i16(3).i32(1).text("a").i32(-1).done(),
      errc::truncated_field);
  add("DataRow extra bytes", F::backend, wire::msg('D').i16(1).i32(-1).u8(0).done(), errc::malformed_message);
  add("CommandComplete without NUL", F::backend, wire::msg('C').text("SELECT 1").done(), errc::missing_terminator);
  add("EmptyQueryResponse with a body", F::backend, wire::msg('I').u8(0).done(), errc::malformed_message);
  add("ErrorResponse without final zero", F::backend, wire::msg('E').ch('S').str("ERROR").done(),
      errc::missing_terminator);
  add("ErrorResponse field without NUL", F::backend, wire::msg('E').ch('S').text("ERROR").done(),
      errc::missing_terminator);
  add("ErrorResponse empty body", F::backend, wire::msg('E').done(), errc::missing_terminator);
  add("NoticeResponse bytes after final zero", F::backend, wire::msg('N').ch('M').str("m").u8(0).u8(0).done(),
      errc::malformed_message);
  add("ParseComplete with a body", F::backend, wire::msg('1').u8(0).done(), errc::malformed_message);
  add("BindComplete with a body", F::backend, wire::msg('2').u8(0).done(), errc::malformed_message);
  add("CloseComplete with a body", F::backend, wire::msg('3').u8(0).done(), errc::malformed_message);
  add("NoData with a body", F::backend, wire::msg('n').u8(0).done(), errc::malformed_message);
  add("PortalSuspended with a body", F::backend, wire::msg('s').u8(0).done(), errc::malformed_message);
  add("ParameterDescription count beyond body", F::backend, wire::msg('t').i16(2).i32(23).done(),
      errc::truncated_field);
  add("CopyInResponse missing count", F::backend, wire::msg('G').u8(0).done(), errc::truncated_field);
  add("CopyOutResponse count beyond body", F::backend, wire::msg('H').u8(0).i16(3).i16(0).done(),
      errc::truncated_field);
  add("CopyBothResponse empty", F::backend, wire::msg('W').done(), errc::truncated_field);
  add("CopyDone with a body", F::backend, wire::msg('c').u8(0).done(), errc::malformed_message);
  add("NotificationResponse missing payload", F::backend, wire::msg('A').i32(1).str("chan").done(),
      errc::missing_terminator);
  add("NotificationResponse short pid", F::backend, wire::msg('A').i16(1).done(), errc::truncated_field);
  add("NegotiateProtocolVersion negative count", F::backend, wire::msg('v').i32(0).i32(-1).done(),
      errc::malformed_message);
  add("NegotiateProtocolVersion huge count", F::backend, wire::msg('v').i32(0).i32(0x7fffffff).str("x").done(),
      errc::truncated_field);
  add("NegotiateProtocolVersion fewer options than counted", F::backend,
      wire::msg('v').i32(0).i32(2).str("_pq_.a").done(), errc::missing_terminator);
  add("FunctionCallResponse length -2", F::backend, wire::msg('V').i32(-2).done(), errc::malformed_message);
  add("FunctionCallResponse beyond body", F::backend, wire::msg('V').i32(4).text("ab").done(), errc::truncated_field);
  add("FunctionCallResponse empty", F::backend, wire::msg('V').done(), errc::truncated_field);
  return v;
}

class malformed : public ::testing::TestWithParam<malformed_case> {};

TEST_P(malformed, fails_with_the_right_code) {
  const auto& c = GetParam();
  const auto fr = c.fam == family::startup ? next_startup_frame(c.bytes) : next_frame(c.bytes);
  ASSERT_TRUE(fr.is_frame()) << c.name << ": " << fr.error.message();
  ASSERT_EQ(fr.f.size, c.bytes.size());
  const auto ec = decode_error(c.fam, fr.f);
  EXPECT_EQ(ec, make_error_code(c.expected)) << c.name << ": got " << ec.message();

  // Every strict prefix of the body is malformed too, and never read past (ASan checks the reads).
  for (std::size_t n = 0; n < fr.f.body.size(); ++n) {
    byte_vector body(fr.f.body.begin(), fr.f.body.begin() + static_cast<long>(n));
    frame cut = fr.f;
    cut.body = body;
    (void)decode_error(c.fam, cut);
  }
}

INSTANTIATE_TEST_SUITE_P(table, malformed, ::testing::ValuesIn(cases()),
                         [](const auto& info) { return "case" + std::to_string(info.index); });

// The startup decoders check the frame kind against the body's code, so a hand-made frame
// cannot smuggle one packet type as another.
TEST(malformed_startup, kind_and_code_must_agree) {
  const byte_vector cancel_body = wire::raw().i32(cancel_request_code).i32(1).i32(2).done();
  frame f;
  f.kind = frame_kind::ssl_request;
  f.body = cancel_body;
  f.size = cancel_body.size() + 4;
  auto r = decode_startup(f);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error(), errc::malformed_message);

  f.kind = frame_kind::cancel_request;
  EXPECT_TRUE(decode_startup(f).has_value());

  const byte_vector short_cancel = wire::raw().i32(cancel_request_code).i32(1).done();
  f.body = short_cancel;
  r = decode_startup(f);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error(), errc::truncated_field);

  f.kind = frame_kind::regular;
  r = decode_startup(f);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error(), errc::malformed_message);

  // The framer rejects other major versions already; the decoder does not rely on it.
  const byte_vector v2 = wire::raw().i32(2 << 16).u8(0).done();
  f.kind = frame_kind::startup;
  f.body = v2;
  r = decode_startup(f);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error(), errc::unsupported_protocol_version);

  const byte_vector empty;
  f.body = empty;
  r = decode_startup(f);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error(), errc::truncated_field);
}

TEST(malformed_backend, untagged_frames_are_not_backend_messages) {
  const byte_vector body = wire::raw().i32(ssl_request_code).done();
  frame f;
  f.kind = frame_kind::ssl_request;
  f.body = body;
  auto r = decode_backend(f);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error(), errc::malformed_message);
}

}  // namespace
}  // namespace pgsluice::protocol

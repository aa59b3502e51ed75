// Tests of protocol/codec.hpp: golden bytes for every message type in both directions, decode -> encode byte for byte.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <variant>
#include <vector>

#include "protocol/codec.hpp"
#include "tests/unit/protocol_wire_builder.hpp"

namespace pgsluice::protocol {
namespace {

using namespace std::string_view_literals;
using pgsluice::test::bv;
using pgsluice::test::byte_vector;
using pgsluice::test::wire;

// Which decoder the authentication state would pick for a frame.
enum class decoder { tagged, startup, sasl_initial, sasl, gss };

struct frontend_case {
  std::string name;
  byte_vector bytes;  // as the docs lay the message out
  frontend_message expected;
  decoder how = decoder::tagged;
};

void PrintTo(const frontend_case& c, std::ostream* os) { *os << c.name; }

std::vector<frontend_case> frontend_cases() {
  std::vector<frontend_case> v;
  v.push_back({"StartupMessage 3.0",
               wire::startup().i32(196608).str("user").str("alice").str("database").str("db")
                   .str("application_name").str("psql").u8(0).done(),
               startup_message{3, 0, {{"user", "alice"}, {"database", "db"}, {"application_name", "psql"}}},
               decoder::startup});
  v.push_back({"StartupMessage 3.2 with a protocol option",
               wire::startup().i32(196610).str("user").str("u").str("_pq_.x").str("1").u8(0).done(),
               startup_message{3, 2, {{"user", "u"}, {"_pq_.x", "1"}}}, decoder::startup});
  v.push_back({"StartupMessage without parameters", wire::startup().i32(196608).u8(0).done(),
               startup_message{3, 0, {}}, decoder::startup});
  v.push_back({"StartupMessage with an empty value",
               wire::startup().i32(196608).str("user").str("").u8(0).done(), startup_message{3, 0, {{"user", ""}}},
               decoder::startup});
  v.push_back({"SSLRequest", wire::startup().i32(80877103).done(), ssl_request{}, decoder::startup});
  v.push_back({"GSSENCRequest", wire::startup().i32(80877104).done(), gssenc_request{}, decoder::startup});
  v.push_back({"CancelRequest", wire::startup().i32(80877102).i32(12345).i32(-559038737).done(),
               cancel_request{12345, -559038737}, decoder::startup});
  v.push_back({"Query", wire::msg('Q').str("SELECT 1").done(), query{"SELECT 1"}});
  v.push_back({"Query empty", wire::msg('Q').str("").done(), query{""}});
  v.push_back({"Parse named with types",
               wire::msg('P').str("s1").str("SELECT $1, $2").i16(2).i32(23).i32(0).done(),
               parse{"s1", "SELECT $1, $2", {23, 0}}});
  v.push_back({"Parse unnamed, oid above int32", wire::msg('P').str("").str("SELECT $1").i16(1).i32(4000000000u).done(),
               parse{"", "SELECT $1", {4000000000u}}});
  v.push_back({"Parse no types", wire::msg('P').str("").str("BEGIN").i16(0).done(), parse{"", "BEGIN", {}}});
  v.push_back({"Bind with text, NULL, empty and binary values",
               wire::msg('B').str("p1").str("s1").i16(2).i16(0).i16(1)
                   .i16(4).i32(2).text("42").i32(-1).i32(0).i32(4).i32(7)
                   .i16(1).i16(1).done(),
               bind{"p1", "s1", {0, 1}, {bv("42"), std::nullopt, bv(""), bv("\0\0\0\x07"sv)}, {1}}});
  v.push_back({"Bind unnamed, nothing", wire::msg('B').str("").str("").i16(0).i16(0).i16(0).done(),
               bind{"", "", {}, {}, {}}});
  v.push_back({"Describe statement", wire::msg('D').ch('S').str("s1").done(), describe{'S', "s1"}});
  v.push_back({"Describe unnamed portal", wire::msg('D').ch('P').str("").done(), describe{'P', ""}});
  v.push_back({"Execute unlimited", wire::msg('E').str("").i32(0).done(), execute{"", 0}});
  v.push_back({"Execute 100 rows", wire::msg('E').str("c1").i32(100).done(), execute{"c1", 100}});
  v.push_back({"Sync", wire::msg('S').done(), sync{}});
  v.push_back({"Flush", wire::msg('H').done(), flush{}});
  v.push_back({"Close statement", wire::msg('C').ch('S').str("s1").done(), close{'S', "s1"}});
  v.push_back({"Close portal", wire::msg('C').ch('P').str("").done(), close{'P', ""}});
  v.push_back({"CopyData", wire::msg('d').text("1\tone\n"sv).done(), copy_data{bv("1\tone\n")}});
  v.push_back({"CopyData binary with NULs", wire::msg('d').text("\0\xff\0"sv).done(), copy_data{bv("\0\xff\0"sv)}});
  v.push_back({"CopyData empty", wire::msg('d').done(), copy_data{}});
  v.push_back({"CopyDone", wire::msg('c').done(), copy_done{}});
  v.push_back({"CopyFail", wire::msg('f').str("aborted by user").done(), copy_fail{"aborted by user"}});
  v.push_back({"FunctionCall",
               wire::msg('F').i32(1598).i16(1).i16(1).i16(2).i32(4).text("\0\0\0\x05"sv).i32(-1).i16(1).done(),
               function_call{1598, {1}, {bv("\0\0\0\x05"sv), std::nullopt}, 1}});
  v.push_back({"Terminate", wire::msg('X').done(), terminate{}});
  v.push_back({"PasswordMessage cleartext", wire::msg('p').str("secret").done(), password_message{"secret"}});
  v.push_back({"PasswordMessage md5", wire::msg('p').str("md5d41d8cd98f00b204e9800998ecf8427e").done(),
               password_message{"md5d41d8cd98f00b204e9800998ecf8427e"}});
  v.push_back({"SASLInitialResponse",
               wire::msg('p').str("SCRAM-SHA-256").i32(32).text("n,,n=,r=rOprNGfwEbeRWgbNEkqO%hvY").done(),
               sasl_initial_response{"SCRAM-SHA-256", bv("n,,n=,r=rOprNGfwEbeRWgbNEkqO%hvY")}, decoder::sasl_initial});
  v.push_back({"SASLInitialResponse without data", wire::msg('p').str("SCRAM-SHA-256").i32(-1).done(),
               sasl_initial_response{"SCRAM-SHA-256", std::nullopt}, decoder::sasl_initial});
  v.push_back({"SASLInitialResponse with empty data", wire::msg('p').str("X").i32(0).done(),
               sasl_initial_response{"X", bv("")}, decoder::sasl_initial});
  v.push_back({"SASLResponse", wire::msg('p').text("c=biws,r=abc,p=xyz=").done(),
               sasl_response{bv("c=biws,r=abc,p=xyz=")}, decoder::sasl});
  v.push_back({"GSSResponse", wire::msg('p').text("\x60\x82\0\x01"sv).done(), gss_response{bv("\x60\x82\0\x01"sv)},
               decoder::gss});
  return v;
}

struct backend_case {
  std::string name;
  byte_vector bytes;
  backend_message expected;
};

void PrintTo(const backend_case& c, std::ostream* os) { *os << c.name; }

std::vector<backend_case> backend_cases() {
  std::vector<backend_case> v;
  v.push_back({"AuthenticationOk", wire::msg('R').i32(0).done(), authentication_ok{}});
  v.push_back({"AuthenticationKerberosV5", wire::msg('R').i32(2).done(), authentication_kerberos_v5{}});
  v.push_back({"AuthenticationCleartextPassword", wire::msg('R').i32(3).done(), authentication_cleartext_password{}});
  v.push_back({"AuthenticationMD5Password", wire::msg('R').i32(5).u8(0xde).u8(0xad).u8(0).u8(0xef).done(),
               authentication_md5_password{{0xde, 0xad, 0x00, 0xef}}});
  v.push_back({"AuthenticationGSS", wire::msg('R').i32(7).done(), authentication_gss{}});
  v.push_back({"AuthenticationGSSContinue", wire::msg('R').i32(8).text("\x01\x02"sv).done(),
               authentication_gss_continue{bv("\x01\x02")}});
  v.push_back({"AuthenticationSSPI", wire::msg('R').i32(9).done(), authentication_sspi{}});
  v.push_back({"AuthenticationSASL",
               wire::msg('R').i32(10).str("SCRAM-SHA-256-PLUS").str("SCRAM-SHA-256").u8(0).done(),
               authentication_sasl{{"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"}}});
  v.push_back({"AuthenticationSASLContinue",
               wire::msg('R').i32(11).text("r=abcdef,s=QSXCR+Q6sek8bf92,i=4096").done(),
               authentication_sasl_continue{bv("r=abcdef,s=QSXCR+Q6sek8bf92,i=4096")}});
  v.push_back({"AuthenticationSASLFinal", wire::msg('R').i32(12).text("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=").done(),
               authentication_sasl_final{bv("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")}});
  v.push_back({"BackendKeyData", wire::msg('K').i32(31337).i32(-1).done(), backend_key_data{31337, -1}});
  v.push_back({"ParameterStatus", wire::msg('S').str("server_version").str("15.5").done(),
               parameter_status{"server_version", "15.5"}});
  v.push_back({"ReadyForQuery idle", wire::msg('Z').ch('I').done(), ready_for_query{'I'}});
  v.push_back({"ReadyForQuery in transaction", wire::msg('Z').ch('T').done(), ready_for_query{'T'}});
  v.push_back({"ReadyForQuery failed transaction", wire::msg('Z').ch('E').done(), ready_for_query{'E'}});
  v.push_back({"RowDescription",
               wire::msg('T').i16(2)
                   .str("id").i32(16384).i16(1).i32(23).i16(4).i32(-1).i16(0)
                   .str("?column?").i32(0).i16(0).i32(1043).i16(-1).i32(68).i16(1).done(),
               row_description{{{"id", 16384, 1, 23, 4, -1, 0}, {"?column?", 0, 0, 1043, -1, 68, 1}}}});
  v.push_back({"RowDescription no fields", wire::msg('T').i16(0).done(), row_description{}});
  v.push_back({"DataRow", wire::msg('D').i16(3).i32(1).text("1").i32(-1).i32(0).done(),
               data_row{{bv("1"), std::nullopt, bv("")}}});
  v.push_back({"DataRow no columns", wire::msg('D').i16(0).done(), data_row{}});
  v.push_back({"CommandComplete", wire::msg('C').str("INSERT 0 1").done(), command_complete{"INSERT 0 1"}});
  v.push_back({"EmptyQueryResponse", wire::msg('I').done(), empty_query_response{}});
  v.push_back({"ErrorResponse",
               wire::msg('E').ch('S').str("ERROR").ch('V').str("ERROR").ch('C').str("42P01")
                   .ch('M').str("relation \"nope\" does not exist").ch('P').str("15")
                   .ch('F').str("parse_relation.c").ch('L').str("1392").ch('R').str("parserOpenTable").u8(0).done(),
               error_response{{{{'S', "ERROR"}, {'V', "ERROR"}, {'C', "42P01"},
                                {'M', "relation \"nope\" does not exist"}, {'P', "15"}, {'F', "parse_relation.c"},
                                {'L', "1392"}, {'R', "parserOpenTable"}}}}});
  v.push_back({"ErrorResponse without fields", wire::msg('E').u8(0).done(), error_response{}});
  v.push_back({"NoticeResponse",
               wire::msg('N').ch('S').str("NOTICE").ch('V').str("NOTICE").ch('C').str("00000")
                   .ch('M').str("table \"t\" does not exist, skipping").u8(0).done(),
               notice_response{{{{'S', "NOTICE"}, {'V', "NOTICE"}, {'C', "00000"},
                                 {'M', "table \"t\" does not exist, skipping"}}}}});
  v.push_back({"ParseComplete", wire::msg('1').done(), parse_complete{}});
  v.push_back({"BindComplete", wire::msg('2').done(), bind_complete{}});
  v.push_back({"CloseComplete", wire::msg('3').done(), close_complete{}});
  v.push_back({"NoData", wire::msg('n').done(), no_data{}});
  v.push_back({"ParameterDescription", wire::msg('t').i16(2).i32(23).i32(25).done(),
               parameter_description{{23, 25}}});
  v.push_back({"PortalSuspended", wire::msg('s').done(), portal_suspended{}});
  v.push_back({"CopyInResponse", wire::msg('G').u8(0).i16(2).i16(0).i16(0).done(),
               copy_in_response{{0, {0, 0}}}});
  v.push_back({"CopyOutResponse binary", wire::msg('H').u8(1).i16(1).i16(1).done(), copy_out_response{{1, {1}}}});
  v.push_back({"CopyBothResponse", wire::msg('W').u8(0).i16(0).done(), copy_both_response{{0, {}}}});
  v.push_back({"CopyData", wire::msg('d').text("row\n").done(), copy_data{bv("row\n")}});
  v.push_back({"CopyDone", wire::msg('c').done(), copy_done{}});
  v.push_back({"NotificationResponse", wire::msg('A').i32(4242).str("jobs").str("{\"id\":1}").done(),
               notification_response{4242, "jobs", "{\"id\":1}"}});
  v.push_back({"NotificationResponse empty payload", wire::msg('A').i32(1).str("c").str("").done(),
               notification_response{1, "c", ""}});
  v.push_back({"NegotiateProtocolVersion",
               wire::msg('v').i32(0).i32(2).str("_pq_.a").str("_pq_.b").done(),
               negotiate_protocol_version{0, {"_pq_.a", "_pq_.b"}}});
  v.push_back({"NegotiateProtocolVersion no options", wire::msg('v').i32(0).i32(0).done(),
               negotiate_protocol_version{0, {}}});
  v.push_back({"FunctionCallResponse", wire::msg('V').i32(2).text("ok").done(), function_call_response{bv("ok")}});
  v.push_back({"FunctionCallResponse NULL", wire::msg('V').i32(-1).done(), function_call_response{std::nullopt}});
  return v;
}

template <class M>
result<frontend_message> widen(result<M> r) {
  if (!r) return r.error();
  return frontend_message(std::move(*r));
}

result<frontend_message> decode_with(decoder how, const frame& f) {
  switch (how) {
    case decoder::tagged:
    case decoder::startup: return decode_frontend(f);
    case decoder::sasl_initial: return widen(decode_sasl_initial_response(f));
    case decoder::sasl: return widen(decode_sasl_response(f));
    case decoder::gss: return widen(decode_gss_response(f));
  }
  return boost::system::error_code(errc::malformed_message);
}

// Encoding `expected` gives exactly the documented bytes; framing and decoding those bytes gives
// `expected` back; re-encoding the decoded message gives the same bytes again.
template <class Message, class Decode>
void check_golden(const byte_vector& bytes, const Message& expected, const frame_result& fr, Decode decode) {
  byte_vector encoded;
  encode(expected, encoded);
  EXPECT_EQ(encoded, bytes);

  ASSERT_TRUE(fr.is_frame()) << fr.error.message();
  ASSERT_EQ(fr.f.size, bytes.size());
  auto decoded = decode(fr.f);
  ASSERT_TRUE(decoded.has_value()) << decoded.error().message();
  EXPECT_EQ(*decoded, expected);

  byte_vector reencoded;
  encode(*decoded, reencoded);
  EXPECT_EQ(reencoded, bytes);

  // Encoders append: a second message lands after the first, untouched.
  encode(*decoded, reencoded);
  ASSERT_EQ(reencoded.size(), 2 * bytes.size());
  EXPECT_TRUE(std::equal(bytes.begin(), bytes.end(), reencoded.begin() + static_cast<long>(bytes.size())));
}

class frontend_golden : public ::testing::TestWithParam<frontend_case> {};

TEST_P(frontend_golden, decodes_and_reencodes_byte_for_byte) {
  const auto& c = GetParam();
  const auto fr = c.how == decoder::startup ? next_startup_frame(c.bytes) : next_frame(c.bytes);
  check_golden(c.bytes, c.expected, fr, [&](const frame& f) { return decode_with(c.how, f); });
}

INSTANTIATE_TEST_SUITE_P(table, frontend_golden, ::testing::ValuesIn(frontend_cases()),
                         [](const auto& info) { return "case" + std::to_string(info.index); });

class backend_golden : public ::testing::TestWithParam<backend_case> {};

TEST_P(backend_golden, decodes_and_reencodes_byte_for_byte) {
  const auto& c = GetParam();
  check_golden(c.bytes, c.expected, next_frame(c.bytes), [](const frame& f) { return decode_backend(f); });
}

INSTANTIATE_TEST_SUITE_P(table, backend_golden, ::testing::ValuesIn(backend_cases()),
                         [](const auto& info) { return "case" + std::to_string(info.index); });

// The tables above must cover every alternative of both variants.
TEST(golden_tables, cover_every_message_type) {
  std::set<std::size_t> front, back;
  for (const auto& c : frontend_cases()) front.insert(c.expected.index());
  for (const auto& c : backend_cases()) back.insert(c.expected.index());
  EXPECT_EQ(front.size(), std::variant_size_v<frontend_message>);
  EXPECT_EQ(back.size(), std::variant_size_v<backend_message>);
}

// Decoded strings and byte fields are views into the frame, not copies.
TEST(decoded_messages, view_the_buffer) {
  const byte_vector b = wire::msg('B').str("p").str("s").i16(0).i16(1).i32(3).text("abc").i16(0).done();
  const auto fr = next_frame(b);
  ASSERT_TRUE(fr.is_frame());
  auto m = decode_frontend(fr.f);
  ASSERT_TRUE(m.has_value());
  const auto& msg = std::get<bind>(*m);
  const auto* lo = reinterpret_cast<const char*>(b.data());
  const auto* hi = lo + b.size();
  EXPECT_GE(msg.portal.data(), lo);
  EXPECT_LT(msg.portal.data(), hi);
  ASSERT_TRUE(msg.params.at(0).has_value());
  EXPECT_EQ(reinterpret_cast<const char*>(msg.params[0]->data()), lo + b.size() - 5);
}

TEST(decoded_messages, password_tag_defaults_to_password_message) {
  const byte_vector b = wire::msg('p').str("SCRAM-SHA-256").i32(-1).done();
  const auto fr = next_frame(b);
  ASSERT_TRUE(fr.is_frame());
  // As a PasswordMessage this body has bytes after its String: the caller must pick the SASL decoder.
  auto as_password = decode_frontend(fr.f);
  ASSERT_FALSE(as_password.has_value());
  EXPECT_EQ(as_password.error(), errc::malformed_message);
  auto as_sasl = decode_sasl_initial_response(fr.f);
  ASSERT_TRUE(as_sasl.has_value());
  EXPECT_EQ(as_sasl->mechanism, "SCRAM-SHA-256");
  EXPECT_FALSE(as_sasl->data.has_value());
}

TEST(decoded_messages, startup_parameter_lookup) {
  const byte_vector b = wire::startup().i32(196608).str("user").str("bob").str("database").str("app").u8(0).done();
  const auto fr = next_startup_frame(b);
  ASSERT_TRUE(fr.is_frame());
  auto m = decode_startup(fr.f);
  ASSERT_TRUE(m.has_value());
  const auto& s = std::get<startup_message>(*m);
  EXPECT_EQ(s.param("user"), "bob");
  EXPECT_EQ(s.param("database"), "app");
  EXPECT_FALSE(s.param("options").has_value());
}

TEST(notice_fields, accessors) {
  error_response e{{{{'S', "ERREUR"}, {'V', "ERROR"}, {'C', "23505"}, {'M', "duplicate key"}}}};
  EXPECT_EQ(e.severity(), "ERROR");  // the non-localized one wins
  EXPECT_EQ(e.code(), "23505");
  EXPECT_EQ(e.message(), "duplicate key");
  EXPECT_EQ(e.get(field::detail), std::nullopt);
  notice_response old_server{{{{'S', "WARNING"}, {'M', "m"}}}};
  EXPECT_EQ(old_server.severity(), "WARNING");
  EXPECT_EQ(old_server.code(), "");
}

// ---- helpers --------------------------------------------------------------------------------

TEST(helpers, error_response_as_postgresql_sends_it) {
  byte_vector out;
  encode_error_response("FATAL", "28P01", "password authentication failed for user \"x\"", out);
  const byte_vector expected = wire::msg('E')
                                   .ch('S').str("FATAL")
                                   .ch('V').str("FATAL")
                                   .ch('C').str("28P01")
                                   .ch('M').str("password authentication failed for user \"x\"")
                                   .u8(0)
                                   .done();
  EXPECT_EQ(out, expected);
}

TEST(helpers, error_response_with_detail_and_hint) {
  byte_vector out;
  encode_error_response("ERROR", "08P01", "m", "d", "h", out);
  EXPECT_EQ(out, wire::msg('E').ch('S').str("ERROR").ch('V').str("ERROR").ch('C').str("08P01").ch('M').str("m")
                     .ch('D').str("d").ch('H').str("h").u8(0).done());
  out.clear();
  encode_error_response("ERROR", "08P01", "m", "", "h", out);
  EXPECT_EQ(out, wire::msg('E').ch('S').str("ERROR").ch('V').str("ERROR").ch('C').str("08P01").ch('M').str("m")
                     .ch('H').str("h").u8(0).done());
}

TEST(helpers, ready_for_query) {
  byte_vector out;
  encode_ready_for_query('T', out);
  EXPECT_EQ(out, (byte_vector{'Z', 0, 0, 0, 5, 'T'}));
}

TEST(catalog, names_as_in_the_docs) {
  EXPECT_EQ(to_string(frontend_tag::query), "Query");
  EXPECT_EQ(to_string(frontend_tag::function_call), "FunctionCall");
  EXPECT_EQ(to_string(frontend_tag::password), "PasswordMessage");
  EXPECT_EQ(to_string(backend_tag::ready_for_query), "ReadyForQuery");
  EXPECT_EQ(to_string(backend_tag::negotiate_protocol_version), "NegotiateProtocolVersion");
  EXPECT_EQ(to_string(static_cast<frontend_tag>('~')), "Unknown");
  EXPECT_EQ(to_string(static_cast<backend_tag>('Q')), "Unknown");
  EXPECT_TRUE(is_frontend_tag('Q'));
  EXPECT_FALSE(is_frontend_tag('Z'));
  EXPECT_TRUE(is_backend_tag('Z'));
  EXPECT_FALSE(is_backend_tag('Q'));
  // Every tag of the golden tables has a name.
  for (const auto& c : frontend_cases()) {
    if (c.how != decoder::startup) {
      EXPECT_TRUE(is_frontend_tag(static_cast<char>(c.bytes[0]))) << c.name;
    }
  }
  for (const auto& c : backend_cases()) EXPECT_TRUE(is_backend_tag(static_cast<char>(c.bytes[0]))) << c.name;
}

}  // namespace
}  // namespace pgsluice::protocol

// Tests of protocol/fields.hpp: the relay's in-place field readers (valid, truncated, missing NUL, leftovers) and writers.
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "protocol/codec.hpp"
#include "protocol/fields.hpp"
#include "tests/unit/protocol_wire_builder.hpp"

namespace pgsluice::protocol {
namespace {

using pgsluice::test::byte_vector;
using pgsluice::test::wire;

// Bodies only (no tag, no length word): what the readers take.
wire body() { return wire::raw(); }

template <class T>
struct reader_case {
  std::string name;
  byte_vector bytes;
  std::optional<T> expected;
};

// ---- Parse ----------------------------------------------------------------------------------

struct parse_expect {
  std::string name, query;
  std::size_t param_types_size;
};

TEST(ProtocolFields, ReadParse) {
  const std::vector<reader_case<parse_expect>> cases = {
      {"named, two types", body().str("s1").str("SELECT $1, $2").i16(2).i32(23).i32(0).done(),
       parse_expect{"s1", "SELECT $1, $2", 10}},
      {"unnamed, no types", body().str("").str("SELECT 1").i16(0).done(), parse_expect{"", "SELECT 1", 2}},
      {"empty body", body().done(), std::nullopt},
      {"name without NUL", body().text("s1").done(), std::nullopt},
      {"query without NUL", body().str("s1").text("SELECT").done(), std::nullopt},
      {"missing count", body().str("s1").str("q").done(), std::nullopt},
      {"half a count", body().str("s1").str("q").u8(0).done(), std::nullopt},
      {"count beyond body", body().str("").str("q").i16(2).i32(23).done(), std::nullopt},
      {"half an oid", body().str("").str("q").i16(1).i16(0).done(), std::nullopt},
      {"leftover byte", body().str("").str("q").i16(1).i32(23).u8(0).done(), std::nullopt},
      {"negative count read unsigned (65535 types) beyond body", body().str("").str("q").i16(-1).i32(23).done(),
       std::nullopt},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const auto got = read_parse(c.bytes);
    ASSERT_EQ(got.has_value(), c.expected.has_value());
    if (!got) continue;
    EXPECT_EQ(got->name, c.expected->name);
    EXPECT_EQ(got->query, c.expected->query);
    EXPECT_EQ(got->param_types.size(), c.expected->param_types_size);
    EXPECT_EQ(got->param_types.data() + got->param_types.size(), c.bytes.data() + c.bytes.size());
  }
}

TEST(ProtocolFields, ReadParseAcceptsUnsignedCount) {
  // PostgreSQL reads the count with pq_getmsgint(msg, 2), i.e. unsigned: 40000 types is valid.
  wire w = body().str("").str("q").i16(static_cast<std::int16_t>(40000));
  for (int i = 0; i < 40000; ++i) w.i32(23);
  const byte_vector b = w.done();
  const auto got = read_parse(b);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->param_types.size(), 2u + 4u * 40000u);
}

// ---- Bind -----------------------------------------------------------------------------------

struct bind_expect {
  std::string portal, statement;
  byte_vector rest;
};

TEST(ProtocolFields, ReadBind) {
  const byte_vector values = body().i16(0).i16(1).i32(1).text("7").i16(0).done();
  const std::vector<reader_case<bind_expect>> cases = {
      {"portal, statement, values", body().str("p").str("s1").append(values).done(), bind_expect{"p", "s1", values}},
      {"unnamed, nothing after (rest unchecked)", body().str("").str("").done(), bind_expect{"", "", {}}},
      {"empty body", body().done(), std::nullopt},
      {"portal without NUL", body().text("p").done(), std::nullopt},
      {"statement without NUL", body().str("p").text("s1").done(), std::nullopt},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const auto got = read_bind(c.bytes);
    ASSERT_EQ(got.has_value(), c.expected.has_value());
    if (!got) continue;
    EXPECT_EQ(got->portal, c.expected->portal);
    EXPECT_EQ(got->statement, c.expected->statement);
    EXPECT_EQ(byte_vector(got->rest.begin(), got->rest.end()), c.expected->rest);
  }
}

// ---- Describe / Close -----------------------------------------------------------------------

struct target_expect {
  char kind;
  std::string name;
};

TEST(ProtocolFields, ReadTarget) {
  const std::vector<reader_case<target_expect>> cases = {
      {"statement", body().ch('S').str("s1").done(), target_expect{'S', "s1"}},
      {"unnamed portal", body().ch('P').str("").done(), target_expect{'P', ""}},
      {"empty body", body().done(), std::nullopt},
      {"kind only", body().ch('S').done(), std::nullopt},
      {"kind X", body().ch('X').str("s1").done(), std::nullopt},
      {"name without NUL", body().ch('S').text("s1").done(), std::nullopt},
      {"leftover byte", body().ch('S').str("s1").u8('x').done(), std::nullopt},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const auto got = read_target(c.bytes);
    ASSERT_EQ(got.has_value(), c.expected.has_value());
    if (!got) continue;
    EXPECT_EQ(got->kind, c.expected->kind);
    EXPECT_EQ(got->name, c.expected->name);
  }
}

// ---- ParameterStatus, ReadyForQuery, Query, String ------------------------------------------

struct parameter_expect {
  std::string name, value;
};

TEST(ProtocolFields, ReadParameterStatus) {
  const std::vector<reader_case<parameter_expect>> cases = {
      {"name and value", body().str("TimeZone").str("UTC").done(), parameter_expect{"TimeZone", "UTC"}},
      {"empty value", body().str("application_name").str("").done(), parameter_expect{"application_name", ""}},
      {"leftover byte ignored", body().str("a").str("b").u8('x').done(), parameter_expect{"a", "b"}},
      {"empty body", body().done(), std::nullopt},
      {"name without NUL", body().text("TimeZone").done(), std::nullopt},
      {"value without NUL", body().str("TimeZone").text("UTC").done(), std::nullopt},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const auto got = read_parameter_status(c.bytes);
    ASSERT_EQ(got.has_value(), c.expected.has_value());
    if (!got) continue;
    EXPECT_EQ(got->name, c.expected->name);
    EXPECT_EQ(got->value, c.expected->value);
  }
}

TEST(ProtocolFields, ReadReadyForQueryAndQuery) {
  EXPECT_EQ(read_ready_for_query(body().ch('T').done()), 'T');
  EXPECT_EQ(read_ready_for_query(body().done()), std::nullopt);
  EXPECT_EQ(read_query(body().str("SELECT 1").done()), "SELECT 1");
  EXPECT_EQ(read_query(body().text("SELECT 1").done()), std::nullopt);
  EXPECT_EQ(read_query(body().done()), std::nullopt);
}

TEST(ProtocolFields, ReadCstring) {
  const byte_vector b = body().str("ab").str("").text("c").done();
  std::size_t pos = 0;
  EXPECT_EQ(read_cstring(b, pos), "ab");
  EXPECT_EQ(pos, 3u);
  EXPECT_EQ(read_cstring(b, pos), "");
  EXPECT_EQ(pos, 4u);
  EXPECT_EQ(read_cstring(b, pos), std::nullopt);  // "c" has no NUL
  EXPECT_EQ(pos, 4u);
  pos = b.size();
  EXPECT_EQ(read_cstring(b, pos), std::nullopt);
  pos = b.size() + 1;
  EXPECT_EQ(read_cstring(b, pos), std::nullopt);
  pos = 0;
  EXPECT_EQ(read_cstring({}, pos), std::nullopt);
}

// ---- ErrorResponse fields -------------------------------------------------------------------

struct error_case {
  std::string name;
  byte_vector bytes;
  std::vector<std::pair<char, std::string>> fields;  // what error_field_reader yields
  errc error;
  error_fields summary;  // read_error_fields
};

TEST(ProtocolFields, ErrorFieldReaderAndSummary) {
  const byte_vector pg = body()
                             .ch('S').str("ERREUR").ch('V').str("ERROR").ch('C').str("26000")
                             .ch('M').str("prepared statement \"_pgs1\" does not exist")
                             .ch('F').str("prepare.c").u8(0).done();
  const std::vector<error_case> cases = {
      {"as PostgreSQL sends it", pg,
       {{'S', "ERREUR"}, {'V', "ERROR"}, {'C', "26000"}, {'M', "prepared statement \"_pgs1\" does not exist"},
        {'F', "prepare.c"}},
       errc{},
       {"26000", "ERROR", "prepared statement \"_pgs1\" does not exist", ""}},
      {"S only (before 9.6), detail", body().ch('S').str("FATAL").ch('D').str("why").u8(0).done(),
       {{'S', "FATAL"}, {'D', "why"}}, errc{}, {"", "FATAL", "", "why"}},
      {"first of each type counts", body().ch('M').str("one").ch('M').str("two").ch('S').str("A").ch('S').str("B").u8(0).done(),
       {{'M', "one"}, {'M', "two"}, {'S', "A"}, {'S', "B"}}, errc{}, {"", "A", "one", ""}},
      {"V after S wins", body().ch('S').str("ERREUR").ch('V').str("ERROR").u8(0).done(),
       {{'S', "ERREUR"}, {'V', "ERROR"}}, errc{}, {"", "ERROR", "", ""}},
      {"no fields", body().u8(0).done(), {}, errc{}, {}},
      {"empty body", body().done(), {}, errc::missing_terminator, {}},
      {"missing terminator", body().ch('C').str("42P01").done(), {{'C', "42P01"}}, errc::missing_terminator,
       {"42P01", "", "", ""}},
      {"value without NUL", body().ch('C').str("42P01").ch('M').text("oops").done(), {{'C', "42P01"}},
       errc::missing_terminator, {"42P01", "", "", ""}},
      {"leftover after terminator", body().ch('C').str("42P01").u8(0).u8('x').done(), {{'C', "42P01"}},
       errc::malformed_message, {"42P01", "", "", ""}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    error_field_reader r(c.bytes);
    std::vector<std::pair<char, std::string>> got;
    while (const auto f = r.next()) got.emplace_back(f->type, std::string(f->value));
    EXPECT_EQ(got, c.fields);
    EXPECT_EQ(r.error(), c.error);
    EXPECT_EQ(r.next(), std::nullopt) << "stays done";
    const auto s = read_error_fields(c.bytes);
    EXPECT_EQ(s.sqlstate, c.summary.sqlstate);
    EXPECT_EQ(s.severity, c.summary.severity);
    EXPECT_EQ(s.message, c.summary.message);
    EXPECT_EQ(s.detail, c.summary.detail);
  }
}

// ---- writers --------------------------------------------------------------------------------

byte_vector bytes_of(const std::vector<std::uint8_t>& v) { return v; }

TEST(ProtocolFields, WritersMatchTheDocs) {
  struct writer_case {
    std::string name;
    byte_vector got;
    byte_vector expected;
  };
  const byte_vector types = body().i16(1).i32(23).done();
  const byte_vector rest = body().i16(0).i16(0).i16(0).done();
  std::vector<writer_case> cases;
  auto add = [&](std::string name, auto write, byte_vector expected) {
    std::vector<std::uint8_t> out = {0xAA};  // writers append
    write(out);
    cases.push_back({std::move(name), out, test::concat({{0xAA}, expected})});
  };
  add("Parse with types", [&](auto& o) { append_parse(o, "s1", "SELECT $1", types); },
      wire::msg('P').str("s1").str("SELECT $1").i16(1).i32(23).done());
  add("Parse without types", [&](auto& o) { append_parse(o, "", "SELECT 1", {}); },
      wire::msg('P').str("").str("SELECT 1").i16(0).done());
  add("Bind", [&](auto& o) { append_bind(o, "", "_pgs1", rest); },
      wire::msg('B').str("").str("_pgs1").i16(0).i16(0).i16(0).done());
  add("Close statement", [&](auto& o) { append_target(o, 'C', 'S', "_pgs1"); }, wire::msg('C').ch('S').str("_pgs1").done());
  add("Describe portal (catalog tag)", [&](auto& o) { append_target(o, frontend_tag::describe, 'P', ""); },
      wire::msg('D').ch('P').str("").done());
  add("Query", [&](auto& o) { append_query(o, "DISCARD ALL"); }, wire::msg('Q').str("DISCARD ALL").done());
  add("ParameterStatus", [&](auto& o) { append_parameter_status(o, "TimeZone", "UTC"); },
      wire::msg('S').str("TimeZone").str("UTC").done());
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(c.got, c.expected);
  }
  EXPECT_EQ(bytes_of({std::begin(parse_complete_msg), std::end(parse_complete_msg)}), wire::msg('1').done());
  EXPECT_EQ(bytes_of({std::begin(close_complete_msg), std::end(close_complete_msg)}), wire::msg('3').done());
  EXPECT_EQ(bytes_of({std::begin(sync_msg), std::end(sync_msg)}), wire::msg('S').done());
  EXPECT_EQ(bytes_of({std::begin(terminate_msg), std::end(terminate_msg)}), wire::msg('X').done());
}

TEST(ProtocolFields, WritersRoundTripThroughTheReaders) {
  std::vector<std::uint8_t> out;
  const byte_vector types = body().i16(2).i32(23).i32(25).done();
  append_parse(out, "n", "SELECT $1, $2", types);
  const auto f = next_frame(out);
  ASSERT_TRUE(f.is_frame());
  const auto p = read_parse(f.f.body);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->name, "n");
  EXPECT_EQ(byte_vector(p->param_types.begin(), p->param_types.end()), types);
  const auto decoded = decode_frontend(f.f);
  ASSERT_TRUE(decoded);
  EXPECT_EQ(std::get<parse>(*decoded).param_types, (std::vector<std::uint32_t>{23, 25}));
}

struct rewrite_case {
  std::string name;
  byte_vector body;
  char type;
  std::string value;
  std::optional<byte_vector> expected;  // the whole message; nullopt: refused
};

TEST(ProtocolFields, AppendErrorResponseReplacesOneFieldType) {
  const std::vector<rewrite_case> cases = {
      {"message replaced, others kept in order",
       body().ch('S').str("ERROR").ch('V').str("ERROR").ch('C').str("26000").ch('M').str("prepared statement \"_pgs1\" does not exist").ch('L').str("1").u8(0).done(),
       'M', "prepared statement \"mine\" does not exist",
       wire::msg('E').ch('S').str("ERROR").ch('V').str("ERROR").ch('C').str("26000").ch('M').str("prepared statement \"mine\" does not exist").ch('L').str("1").u8(0).done()},
      {"every field of the type", body().ch('M').str("a").ch('M').str("b").u8(0).done(), 'M', "c",
       wire::msg('E').ch('M').str("c").ch('M').str("c").u8(0).done()},
      {"no such field: unchanged", body().ch('C').str("XX000").u8(0).done(), 'M', "c",
       wire::msg('E').ch('C').str("XX000").u8(0).done()},
      {"empty value", body().ch('M').str("a").u8(0).done(), 'M', "", wire::msg('E').ch('M').str("").u8(0).done()},
      {"missing terminator refused", body().ch('M').str("a").done(), 'M', "b", std::nullopt},
      {"truncated value refused", body().ch('M').text("a").done(), 'M', "b", std::nullopt},
      {"leftover refused", body().ch('M').str("a").u8(0).u8(1).done(), 'M', "b", std::nullopt},
      {"empty body refused", body().done(), 'M', "b", std::nullopt},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    std::vector<std::uint8_t> out = {0xAA};
    const bool ok = append_error_response(out, c.body, c.type, c.value);
    ASSERT_EQ(ok, c.expected.has_value());
    if (!ok) {
      EXPECT_EQ(out, (byte_vector{0xAA})) << "nothing appended";
      continue;
    }
    EXPECT_EQ(out, test::concat({{0xAA}, *c.expected}));
  }
}

}  // namespace
}  // namespace pgsluice::protocol

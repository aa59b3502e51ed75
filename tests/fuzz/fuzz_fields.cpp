// Fuzz target: protocol/fields.hpp's in-place readers agree with the full decoders, and the writers (the ErrorResponse re-encoder included) rebuild what was read.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <variant>
#include <vector>

#include "protocol/codec.hpp"
#include "protocol/fields.hpp"
#include "tests/fuzz/protocol_roundtrip.hpp"

using namespace pgsluice;
namespace proto = pgsluice::protocol;
using test::fuzz_check;
using bytes = std::vector<std::uint8_t>;

namespace {

// The whole message `tag` + length + `body`, as the framer would see it.
bytes message(char tag, proto::bytes_view body) {
  bytes out{static_cast<std::uint8_t>(tag)};
  const auto len = static_cast<std::uint32_t>(body.size() + 4);
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(len >> shift));
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

proto::frame frame_of(char tag, proto::bytes_view body) {
  proto::frame f;
  f.tag = tag;
  f.size = body.size() + 5;
  f.body = body;
  return f;
}

// The decoded message if it is an M; `r` must outlive the pointer (hence no temporaries).
template <class M, class R>
const M* as(const R& r) {
  return r ? std::get_if<M>(&*r) : nullptr;
}
template <class M, class R>
const M* as(const R&& r) = delete;

bool equal(proto::bytes_view a, const bytes& b) { return proto::equal_bytes(a, proto::bytes_view(b)); }

void check_parse(proto::bytes_view body) {
  const auto fields = proto::read_parse(body);
  const auto decoded = proto::decode_frontend(frame_of('P', body));
  if (const auto* p = as<proto::parse>(decoded)) {
    fuzz_check(fields.has_value(), "Parse decodes but read_parse refuses it");
    fuzz_check(fields->name == p->name && fields->query == p->query, "read_parse disagrees with decode");
    fuzz_check(fields->param_types.size() == 2 + 4 * p->param_types.size(), "read_parse type section size");
  } else if (fields) {
    // Only an Int16 count above 32767 (read unsigned, as PostgreSQL does) separates the two.
    fuzz_check(fields->param_types.size() >= 2 && fields->param_types[0] >= 0x80, "read_parse accepts what decode refuses");
  }
  if (fields) {
    bytes out;
    proto::append_parse(out, fields->name, fields->query, fields->param_types);
    fuzz_check(equal(proto::bytes_view(message('P', body)), out), "append_parse does not rebuild the Parse");
  }
}

void check_bind(proto::bytes_view body) {
  const auto fields = proto::read_bind(body);
  const auto decoded = proto::decode_frontend(frame_of('B', body));
  if (const auto* b = as<proto::bind>(decoded)) {
    fuzz_check(fields && fields->portal == b->portal && fields->statement == b->statement, "read_bind disagrees with decode");
  }
  if (fields) {
    bytes out;
    proto::append_bind(out, fields->portal, fields->statement, fields->rest);
    fuzz_check(equal(proto::bytes_view(message('B', body)), out), "append_bind does not rebuild the Bind");
  }
}

void check_target(proto::bytes_view body) {
  const auto fields = proto::read_target(body);
  const auto decoded = proto::decode_frontend(frame_of('D', body));
  const auto* d = as<proto::describe>(decoded);
  fuzz_check(fields.has_value() == (d != nullptr), "read_target and decode disagree on validity");
  if (!fields) return;
  fuzz_check(fields->kind == d->kind && fields->name == d->name, "read_target disagrees with decode");
  bytes out;
  proto::append_target(out, proto::frontend_tag::close, fields->kind, fields->name);
  fuzz_check(equal(proto::bytes_view(message('C', body)), out), "append_target does not rebuild the Close");
}

void check_query(proto::bytes_view body) {
  const auto sql = proto::read_query(body);
  const auto decoded = proto::decode_frontend(frame_of('Q', body));
  if (const auto* q = as<proto::query>(decoded)) {
    fuzz_check(sql && *sql == q->sql, "read_query disagrees with decode");
    bytes out;
    proto::append_query(out, *sql);
    fuzz_check(equal(proto::bytes_view(message('Q', body)), out), "append_query does not rebuild the Query");
  }
  // Walk the body as Strings: each read ends at a NUL inside the body or leaves pos alone.
  std::size_t pos = 0;
  while (pos < body.size()) {
    const std::size_t before = pos;
    const auto s = proto::read_cstring(body, pos);
    if (!s) {
      fuzz_check(pos == before, "a failed read_cstring moved pos");
      break;
    }
    fuzz_check(pos == before + s->size() + 1 && pos <= body.size() && body[pos - 1] == 0, "read_cstring bounds");
  }
}

void check_parameter_status(proto::bytes_view body) {
  const auto fields = proto::read_parameter_status(body);
  const auto decoded = proto::decode_backend(frame_of('S', body));
  if (const auto* p = as<proto::parameter_status>(decoded)) {
    fuzz_check(fields && fields->name == p->name && fields->value == p->value, "read_parameter_status disagrees");
    bytes out;
    proto::append_parameter_status(out, fields->name, fields->value);
    fuzz_check(equal(proto::bytes_view(message('S', body)), out), "append_parameter_status does not rebuild it");
  }
  const auto status = proto::read_ready_for_query(body);
  const auto decoded_z = proto::decode_backend(frame_of('Z', body));
  if (const auto* z = as<proto::ready_for_query>(decoded_z)) {
    fuzz_check(status && *status == z->status, "read_ready_for_query disagrees with decode");
  }
}

void check_error(proto::bytes_view body) {
  const auto decoded = proto::decode_backend(frame_of('E', body));
  const auto* e = as<proto::error_response>(decoded);

  proto::error_field_reader reader(body);
  std::vector<std::pair<char, std::string_view>> walked;
  while (const auto f = reader.next()) walked.emplace_back(f->type, f->value);
  fuzz_check((reader.error() == errc{}) == (e != nullptr), "error_field_reader and decode disagree on validity");
  if (e != nullptr) fuzz_check(walked == e->fields, "error_field_reader fields differ from decode");

  // The tolerant summary: the first field of each type among those read before any damage.
  proto::error_response prefix;
  prefix.fields = walked;
  const auto summary = proto::read_error_fields(body);
  fuzz_check(summary.sqlstate == prefix.code() && summary.severity == prefix.severity() &&
                 summary.message == prefix.message() &&
                 summary.detail == prefix.get(proto::field::detail).value_or(std::string_view{}),
             "read_error_fields disagrees with the fields read");

  // Re-encoding: no match reproduces the message; a replaced field is the only change.
  bytes same;
  const bool ok = proto::append_error_response(same, body, '\0', "unused");
  fuzz_check(ok == (e != nullptr), "append_error_response accepts what decode refuses (or the reverse)");
  if (!ok) {
    fuzz_check(same.empty(), "a refused re-encode appended bytes");
    return;
  }
  fuzz_check(equal(proto::bytes_view(message('E', body)), same), "identity re-encode changed the bytes");

  for (const char type : {proto::field::message, proto::field::sqlstate}) {
    constexpr std::string_view replacement = "prepared statement \"client_name\" does not exist";
    bytes out;
    fuzz_check(proto::append_error_response(out, body, type, replacement), "re-encode refused a valid body");
    const auto r = proto::next_frame(out);
    fuzz_check(r.is_frame() && r.f.size == out.size(), "re-encoded ErrorResponse does not frame");
    const auto redecoded = proto::decode_backend(r.f);
    const auto* again = as<proto::error_response>(redecoded);
    fuzz_check(again != nullptr && again->fields.size() == e->fields.size(), "re-encoded ErrorResponse does not decode");
    for (std::size_t i = 0; i < e->fields.size(); ++i) {
      const auto& [t, v] = e->fields[i];
      fuzz_check(again->fields[i].first == t && again->fields[i].second == (t == type ? replacement : v),
                 "re-encode changed more than the replaced field");
    }
  }
}

}  // namespace

// Input: one message body, checked as each of the messages the readers cover.
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const proto::bytes_view body(data, size);
  check_parse(body);
  check_bind(body);
  check_target(body);
  check_query(body);
  check_parameter_status(body);
  check_error(body);
  return 0;
}

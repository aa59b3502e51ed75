// Fuzz target: frontend frames -> decode -> encode; a decoded message must re-encode byte for byte.
#include <cstddef>
#include <cstdint>

#include "protocol/codec.hpp"
#include "tests/fuzz/protocol_roundtrip.hpp"

using namespace pgsluice;
namespace proto = pgsluice::protocol;

namespace {

template <class Decode>
void try_decode(const proto::frame& f, proto::bytes_view original, Decode decode) {
  auto m = decode(f);
  if (!m) return;
  test::check_roundtrip(*m, original, [](proto::bytes_view b) { return proto::next_frame(b); }, decode);
}

}  // namespace

// Input: one mode byte (bit 0: the stream starts with a startup-family packet), then the stream.
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  proto::bytes_view rest(data + 1, size - 1);

  if (data[0] & 1) {
    const auto r = proto::next_startup_frame(rest);
    test::check_frame_result(r, rest);
    if (!r.is_frame()) return 0;
    const auto original = rest.first(r.f.size);
    auto m = proto::decode_startup(r.f);
    if (m) {
      test::check_roundtrip(*m, original, [](proto::bytes_view b) { return proto::next_startup_frame(b); },
                            [](const proto::frame& f) { return proto::decode_startup(f); });
    }
    rest = rest.subspan(r.f.size);
  }

  for (;;) {
    const auto r = proto::next_frame(rest, 1u << 20);
    test::check_frame_result(r, rest);
    if (!r.is_frame()) break;
    const auto original = rest.first(r.f.size);
    try_decode(r.f, original, [](const proto::frame& f) { return proto::decode_frontend(f); });
    if (r.f.tag == 'p') {
      // Only the authentication state knows which 'p' this is: every reading must hold up.
      try_decode(r.f, original, [](const proto::frame& f) { return proto::decode_sasl_initial_response(f); });
      try_decode(r.f, original, [](const proto::frame& f) { return proto::decode_sasl_response(f); });
      try_decode(r.f, original, [](const proto::frame& f) { return proto::decode_gss_response(f); });
    }
    rest = rest.subspan(r.f.size);
  }
  return 0;
}

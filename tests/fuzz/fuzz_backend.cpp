// Fuzz target: backend frames -> decode -> encode; a decoded message must re-encode byte for byte.
#include <cstddef>
#include <cstdint>

#include "protocol/codec.hpp"
#include "tests/fuzz/protocol_roundtrip.hpp"

using namespace pgsluice;
namespace proto = pgsluice::protocol;

// Input: a stream of backend messages.
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  proto::bytes_view rest(data, size);
  for (;;) {
    const auto r = proto::next_frame(rest, 1u << 20);
    test::check_frame_result(r, rest);
    if (!r.is_frame()) break;
    auto m = proto::decode_backend(r.f);
    if (m) {
      test::check_roundtrip(*m, rest.first(r.f.size), [](proto::bytes_view b) { return proto::next_frame(b); },
                            [](const proto::frame& f) { return proto::decode_backend(f); });
    }
    rest = rest.subspan(r.f.size);
  }
  return 0;
}

// Fuzz target: the startup-packet framer and the tagged-message framer over arbitrary bytes.
#include <cstddef>
#include <cstdint>

#include "protocol/framing.hpp"
#include "tests/fuzz/protocol_roundtrip.hpp"

using namespace pgsluice;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const protocol::bytes_view all(data, size);
  test::check_frame_result(protocol::next_startup_frame(all), all);

  // Walk a stream of tagged messages; the first byte picks a small limit so the
  // message_too_large path is reachable, 0 means the default limit.
  const std::size_t max = size == 0 || data[0] == 0 ? protocol::default_max_message_size : 5 + 16u * data[0];
  protocol::bytes_view rest = all.empty() ? all : all.subspan(1);
  for (;;) {
    const auto r = protocol::next_frame(rest, max);
    test::check_frame_result(r, rest);
    if (!r.is_frame()) {
      if (r.is_need_more() && rest.size() >= protocol::regular_header_size) {
        test::fuzz_check(r.need == r.f.size && r.f.size <= max, "need_more disagrees with the header");
      }
      break;
    }
    test::fuzz_check(r.f.size >= protocol::regular_header_size && r.f.size <= max, "frame size out of bounds");
    rest = rest.subspan(r.f.size);
  }
  return 0;
}

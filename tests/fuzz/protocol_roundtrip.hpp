// Shared checks of the protocol fuzz targets: a decoded frame must re-encode to the same bytes and decode again to an equal message.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "protocol/codec.hpp"

namespace pgsluice::test {

[[noreturn]] inline void fuzz_fail(const char* what) {
  std::fprintf(stderr, "fuzz invariant violated: %s\n", what);
  std::abort();
}

inline void fuzz_check(bool ok, const char* what) {
  if (!ok) fuzz_fail(what);
}

// Invariants of any framer result over `buf`.
inline void check_frame_result(const protocol::frame_result& r, protocol::bytes_view buf) {
  using status = protocol::frame_result::status;
  switch (r.st) {
    case status::frame:
      fuzz_check(!r.error, "frame with an error");
      fuzz_check(r.f.size <= buf.size(), "frame larger than the buffer");
      fuzz_check(r.f.body.data() >= buf.data() && r.f.body.data() + r.f.body.size() == buf.data() + r.f.size,
                 "frame body outside the frame");
      break;
    case status::need_more:
      fuzz_check(!r.error, "need_more with an error");
      fuzz_check(r.need > buf.size(), "need_more although enough bytes are there");
      break;
    case status::invalid:
      fuzz_check(static_cast<bool>(r.error), "invalid without an error");
      break;
  }
}

// `decoded` came from the frame that occupies `original`; re-encoding it must reproduce those
// bytes exactly, and framing + decoding the re-encoding must give an equal message.
template <class Message, class Frame, class Decode>
void check_roundtrip(const Message& decoded, protocol::bytes_view original, Frame next, Decode decode) {
  std::vector<std::uint8_t> again;
  protocol::encode(decoded, again);
  fuzz_check(std::equal(again.begin(), again.end(), original.begin(), original.end()),
             "re-encoding differs from the original bytes");
  const auto fr = next(protocol::bytes_view(again));
  fuzz_check(fr.is_frame() && fr.f.size == again.size(), "re-encoding does not frame");
  const auto redecoded = decode(fr.f);
  fuzz_check(redecoded.has_value(), "re-encoding does not decode");
  fuzz_check(*redecoded == decoded, "re-decoded message differs");
}

}  // namespace pgsluice::test

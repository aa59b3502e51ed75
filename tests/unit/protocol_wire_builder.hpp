// Test-only builder of wire bytes, written independently of protocol/ so tests check the codec against the docs.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string_view>
#include <vector>

#include "protocol/framing.hpp"

namespace pgsluice::test {

using byte_vector = std::vector<std::uint8_t>;

// A view of a literal's characters as bytes; use the sv suffix for literals with NULs.
inline protocol::bytes_view bv(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

// Appends big-endian fields; msg()/startup() compute the length word when done() is called.
class wire {
 public:
  // Tagged message: type byte + Int32 length (patched by done()).
  static wire msg(char tag) {
    wire w;
    w.bytes_.push_back(static_cast<std::uint8_t>(tag));
    w.len_at_ = 1;
    w.i32(0);
    return w;
  }
  // Untagged packet: Int32 length (patched by done()).
  static wire startup() {
    wire w;
    w.len_at_ = 0;
    w.i32(0);
    return w;
  }
  // Raw bytes with no automatic length (for hand-made headers).
  static wire raw() { return wire{}; }

  wire& u8(std::uint8_t v) {
    bytes_.push_back(v);
    return *this;
  }
  wire& ch(char c) { return u8(static_cast<std::uint8_t>(c)); }
  wire& i16(std::int16_t v) {
    auto u = static_cast<std::uint16_t>(v);
    return u8(static_cast<std::uint8_t>(u >> 8)).u8(static_cast<std::uint8_t>(u));
  }
  wire& i32(std::int64_t v) {
    auto u = static_cast<std::uint32_t>(v);
    for (int shift = 24; shift >= 0; shift -= 8) u8(static_cast<std::uint8_t>(u >> shift));
    return *this;
  }
  // String with its terminating NUL.
  wire& str(std::string_view s) { return text(s).u8(0); }
  // Characters without a NUL.
  wire& text(std::string_view s) {
    bytes_.insert(bytes_.end(), s.begin(), s.end());
    return *this;
  }
  wire& append(const byte_vector& v) {
    bytes_.insert(bytes_.end(), v.begin(), v.end());
    return *this;
  }

  byte_vector done() const {
    byte_vector out = bytes_;
    if (len_at_ >= 0) {
      auto len = static_cast<std::uint32_t>(out.size() - static_cast<std::size_t>(len_at_));
      auto* p = out.data() + len_at_;
      p[0] = static_cast<std::uint8_t>(len >> 24);
      p[1] = static_cast<std::uint8_t>(len >> 16);
      p[2] = static_cast<std::uint8_t>(len >> 8);
      p[3] = static_cast<std::uint8_t>(len);
    }
    return out;
  }

 private:
  byte_vector bytes_;
  long len_at_ = -1;
};

inline byte_vector concat(std::initializer_list<byte_vector> parts) {
  byte_vector out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

}  // namespace pgsluice::test

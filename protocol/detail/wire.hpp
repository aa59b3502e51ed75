// Internal: bounds-checked reader and appending writer for PostgreSQL wire primitives (network byte order).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>
#include <vector>

#include "protocol/errc.hpp"
#include "protocol/framing.hpp"

namespace pgsluice::protocol::detail {

inline std::uint32_t load_u32(const std::uint8_t* p) noexcept {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | std::uint32_t{p[3]};
}

// Reads fields front to back. The first failure is sticky: later reads return zero values and
// do not advance, so a decoder can read a whole layout and check error() once at the end
// (loops over counts check failed() to stop early).
class reader {
 public:
  explicit reader(bytes_view b) noexcept : p_(b.data()), end_(b.data() + b.size()) {}

  std::size_t remaining() const noexcept { return static_cast<std::size_t>(end_ - p_); }
  bool failed() const noexcept { return error_ != errc{}; }
  errc error() const noexcept { return error_; }
  void fail(errc e) noexcept {
    if (!failed()) error_ = e;
  }

  std::uint8_t u8() noexcept {
    if (!need(1)) return 0;
    return *p_++;
  }
  std::int16_t i16() noexcept {
    if (!need(2)) return 0;
    auto v = static_cast<std::uint16_t>((p_[0] << 8) | p_[1]);
    p_ += 2;
    return static_cast<std::int16_t>(v);
  }
  std::uint32_t u32() noexcept {
    if (!need(4)) return 0;
    auto v = load_u32(p_);
    p_ += 4;
    return v;
  }
  std::int32_t i32() noexcept { return static_cast<std::int32_t>(u32()); }

  // A NUL-terminated String; the view excludes the NUL.
  std::string_view cstring() noexcept {
    if (failed()) return {};
    // An empty body may come with a null data pointer, which memchr must not see.
    const void* nul = remaining() == 0 ? nullptr : std::memchr(p_, 0, remaining());
    if (nul == nullptr) {
      fail(errc::missing_terminator);
      return {};
    }
    auto n = static_cast<std::size_t>(static_cast<const std::uint8_t*>(nul) - p_);
    std::string_view s(reinterpret_cast<const char*>(p_), n);
    p_ += n + 1;
    return s;
  }
  bytes_view bytes(std::size_t n) noexcept {
    if (!need(n)) return {};
    bytes_view v(p_, n);
    p_ += n;
    return v;
  }
  bytes_view rest() noexcept {
    if (failed()) return {};
    bytes_view v(p_, remaining());
    p_ = end_;
    return v;
  }
  // Int32 length followed by that many bytes; -1 is NULL, other negatives are malformed.
  std::optional<bytes_view> nullable_bytes() noexcept {
    std::int32_t len = i32();
    if (failed()) return std::nullopt;
    if (len == -1) return std::nullopt;
    if (len < 0) {
      fail(errc::malformed_message);
      return std::nullopt;
    }
    return bytes(static_cast<std::size_t>(len));
  }
  // An element count (Int16, or Int32 when wide): negative is malformed, and a count whose
  // elements of at least `min_element_size` bytes cannot fit in the rest of the body is
  // truncated, so no decoder reserves memory for elements that are not there.
  std::size_t count16(std::size_t min_element_size) noexcept { return checked_count(i16(), min_element_size); }
  std::size_t count32(std::size_t min_element_size) noexcept { return checked_count(i32(), min_element_size); }

  // The body must be consumed exactly (PostgreSQL's pq_getmsgend: "invalid message format").
  void expect_end() noexcept {
    if (!failed() && p_ != end_) fail(errc::malformed_message);
  }

 private:
  bool need(std::size_t n) noexcept {
    if (failed()) return false;
    if (remaining() < n) {
      fail(errc::truncated_field);
      return false;
    }
    return true;
  }
  std::size_t checked_count(std::int32_t n, std::size_t min_element_size) noexcept {
    if (failed()) return 0;
    if (n < 0) {
      fail(errc::malformed_message);
      return 0;
    }
    auto count = static_cast<std::size_t>(n);
    if (count > remaining() / (min_element_size == 0 ? 1 : min_element_size)) {
      fail(errc::truncated_field);
      return 0;
    }
    return count;
  }

  const std::uint8_t* p_;
  const std::uint8_t* end_;
  errc error_{};
};

// Appends primitives to an output buffer; begin()/finish() bracket one message and patch its
// length word. Encoders trust their input: strings must not contain NUL, counts must fit the
// wire width (Int16 counts below 32768).
class writer {
 public:
  explicit writer(std::vector<std::uint8_t>& out) noexcept : out_(out) {}

  // Tagged message: tag byte + length placeholder.
  void begin(char tag) {
    out_.push_back(static_cast<std::uint8_t>(tag));
    begin_untagged();
  }
  // Untagged packet (startup family): length placeholder only.
  void begin_untagged() {
    start_ = out_.size();
    u32(0);
  }
  void finish() noexcept {
    auto len = static_cast<std::uint32_t>(out_.size() - start_);
    std::uint8_t* p = out_.data() + start_;
    p[0] = static_cast<std::uint8_t>(len >> 24);
    p[1] = static_cast<std::uint8_t>(len >> 16);
    p[2] = static_cast<std::uint8_t>(len >> 8);
    p[3] = static_cast<std::uint8_t>(len);
  }

  void u8(std::uint8_t v) { out_.push_back(v); }
  void i16(std::int16_t v) {
    auto u = static_cast<std::uint16_t>(v);
    const std::uint8_t b[2] = {static_cast<std::uint8_t>(u >> 8), static_cast<std::uint8_t>(u)};
    out_.insert(out_.end(), b, b + 2);
  }
  void u32(std::uint32_t v) {
    const std::uint8_t b[4] = {static_cast<std::uint8_t>(v >> 24), static_cast<std::uint8_t>(v >> 16),
                               static_cast<std::uint8_t>(v >> 8), static_cast<std::uint8_t>(v)};
    out_.insert(out_.end(), b, b + 4);
  }
  void i32(std::int32_t v) { u32(static_cast<std::uint32_t>(v)); }
  void count16(std::size_t n) { i16(static_cast<std::int16_t>(n)); }
  void cstring(std::string_view s) {
    out_.insert(out_.end(), s.begin(), s.end());
    out_.push_back(0);
  }
  void bytes(bytes_view b) { out_.insert(out_.end(), b.begin(), b.end()); }
  void nullable_bytes(const std::optional<bytes_view>& b) {
    if (!b) {
      i32(-1);
      return;
    }
    i32(static_cast<std::int32_t>(b->size()));
    bytes(*b);
  }

 private:
  std::vector<std::uint8_t>& out_;
  std::size_t start_ = 0;
};

}  // namespace pgsluice::protocol::detail

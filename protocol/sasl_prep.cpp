// SASLprep of passwords as PostgreSQL's src/common/saslprep.c does it (see protocol/sasl_prep.hpp).
#include "protocol/sasl_prep.hpp"

#include <algorithm>
#include <cstdint>
#include <span>
#include <vector>

namespace pgsluice::protocol {
namespace {

struct range {
  char32_t first;
  char32_t last;
};

bool in_table(char32_t c, std::span<const range> table) noexcept {
  return std::any_of(table.begin(), table.end(), [c](const range& r) { return c >= r.first && c <= r.last; });
}

// RFC 3454 table C.1.2, non-ASCII space characters: mapped to U+0020 (RFC 4013 section 2.1).
constexpr range non_ascii_space[] = {
    {0x00A0, 0x00A0}, {0x1680, 0x1680}, {0x2000, 0x200B}, {0x202F, 0x202F}, {0x205F, 0x205F}, {0x3000, 0x3000},
};

// RFC 3454 table B.1, commonly mapped to nothing. PostgreSQL tests C.1.2 first, so U+200B
// (in both tables) becomes a space; we keep that order.
constexpr range mapped_to_nothing[] = {
    {0x00AD, 0x00AD}, {0x034F, 0x034F}, {0x1806, 0x1806}, {0x180B, 0x180D}, {0x200B, 0x200D},
    {0x2060, 0x2060}, {0xFE00, 0xFE0F}, {0xFEFF, 0xFEFF},
};

// Union of RFC 3454 tables C.1.2, C.2.1, C.2.2, C.3, C.4, C.5, C.6, C.7, C.8 and C.9 (the
// prohibited output of RFC 4013 section 2.3), merged into sorted ranges. Checked code point by
// code point against Python's stringprep module, which implements those tables.
constexpr range prohibited[] = {
    {0x0000, 0x001F},   {0x007F, 0x00A0},   {0x0340, 0x0341},   {0x06DD, 0x06DD},   {0x070F, 0x070F},
    {0x1680, 0x1680},   {0x180E, 0x180E},   {0x2000, 0x200F},   {0x2028, 0x202F},   {0x205F, 0x2063},
    {0x206A, 0x206F},   {0x2FF0, 0x2FFB},   {0x3000, 0x3000},   {0xD800, 0xF8FF},   {0xFDD0, 0xFDEF},
    {0xFEFF, 0xFEFF},   {0xFFF9, 0xFFFF},   {0x1D173, 0x1D17A}, {0x1FFFE, 0x1FFFF}, {0x2FFFE, 0x2FFFF},
    {0x3FFFE, 0x3FFFF}, {0x4FFFE, 0x4FFFF}, {0x5FFFE, 0x5FFFF}, {0x6FFFE, 0x6FFFF}, {0x7FFFE, 0x7FFFF},
    {0x8FFFE, 0x8FFFF}, {0x9FFFE, 0x9FFFF}, {0xAFFFE, 0xAFFFF}, {0xBFFFE, 0xBFFFF}, {0xCFFFE, 0xCFFFF},
    {0xDFFFE, 0xDFFFF}, {0xE0001, 0xE0001}, {0xE0020, 0xE007F}, {0xEFFFE, 0xEFFFF}, {0xF0000, 0x10FFFF},
};

// Characters we can normalise without Unicode tables: assigned in Unicode 3.2 (so not in table
// A.1), neither mapped nor prohibited, left-to-right or neutral (no RandALCat, so the bidi rule
// of RFC 3454 section 6 always passes), combining class 0, and NFKC-stable alone and next to
// each other (checked for every pair). A string made only of them is its own NFKC form.
constexpr range nfkc_stable[] = {
    {0x0020, 0x007E}, {0x00A1, 0x00A7}, {0x00A9, 0x00A9}, {0x00AB, 0x00AC}, {0x00AE, 0x00AE}, {0x00B0, 0x00B1},
    {0x00B6, 0x00B7}, {0x00BB, 0x00BB}, {0x00BF, 0x0131}, {0x0134, 0x013E}, {0x0141, 0x0148}, {0x014A, 0x017E},
    {0x0386, 0x0386}, {0x0388, 0x038A}, {0x038C, 0x038C}, {0x038E, 0x03A1}, {0x03A3, 0x03CE}, {0x0400, 0x045F},
};

// Strict UTF-8 decoding (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF),
// which is what PostgreSQL's pg_utf8_islegal() accepts. False on the first invalid sequence.
bool decode_utf8(std::string_view s, std::vector<char32_t>& out) {
  const auto* p = reinterpret_cast<const std::uint8_t*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    const std::uint8_t b0 = *p;
    std::size_t len = 0;
    char32_t c = 0;
    std::uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (b0 < 0x80) {
      out.push_back(b0);
      ++p;
      continue;
    } else if (b0 >= 0xC2 && b0 <= 0xDF) {
      len = 2;
      c = b0 & 0x1F;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
      len = 3;
      c = b0 & 0x0F;
      if (b0 == 0xE0) lo = 0xA0;  // overlong
      if (b0 == 0xED) hi = 0x9F;  // surrogates
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
      len = 4;
      c = b0 & 0x07;
      if (b0 == 0xF0) lo = 0x90;  // overlong
      if (b0 == 0xF4) hi = 0x8F;  // above U+10FFFF
    } else {
      return false;
    }
    if (static_cast<std::size_t>(end - p) < len) return false;
    for (std::size_t i = 1; i < len; ++i) {
      const std::uint8_t b = p[i];
      if (b < (i == 1 ? lo : 0x80) || b > (i == 1 ? hi : 0xBF)) return false;
      c = (c << 6) | (b & 0x3F);
    }
    out.push_back(c);
    p += len;
  }
  return true;
}

void append_utf8(std::string& out, char32_t c) {
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xE0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (c >> 18));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
}

}  // namespace

boost::system::result<std::string> sasl_prep_password(std::string_view password) {
  // PostgreSQL handles passwords as C strings: one with a NUL cannot be the one it stored.
  if (password.size() > max_sasl_prep_password_length || password.find('\0') != std::string_view::npos) {
    return errc::invalid_password;
  }
  const std::string raw(password);
  if (std::all_of(password.begin(), password.end(), [](char ch) { return static_cast<unsigned char>(ch) < 0x80; })) {
    return raw;
  }
  std::vector<char32_t> chars;
  if (!decode_utf8(password, chars)) return raw;  // SASLPREP_INVALID_UTF8: PostgreSQL uses the raw bytes

  // Step 1, map.
  std::vector<char32_t> mapped;
  mapped.reserve(chars.size());
  for (const char32_t c : chars) {
    if (in_table(c, non_ascii_space)) {
      mapped.push_back(U' ');
    } else if (!in_table(c, mapped_to_nothing)) {
      mapped.push_back(c);
    }
  }
  // PostgreSQL treats an empty result as prohibited ("don't allow empty password") and, like any
  // prohibited result, falls back to the raw bytes. It checks prohibited characters on the mapped
  // string before normalisation, so this decision needs no NFKC.
  if (mapped.empty()) return raw;
  if (std::any_of(mapped.begin(), mapped.end(), [](char32_t c) { return in_table(c, prohibited); })) return raw;

  // Step 2, NFKC: the identity on the supported repertoire; anything else we cannot decide.
  if (!std::all_of(mapped.begin(), mapped.end(), [](char32_t c) { return in_table(c, nfkc_stable); })) {
    return errc::sasl_prep_unsupported;
  }
  std::string out;
  out.reserve(password.size());
  for (const char32_t c : mapped) append_utf8(out, c);
  return out;
}

}  // namespace pgsluice::protocol

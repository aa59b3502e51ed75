// Fuzz target: the session-effects scanner (classify_session_effects) and is_tracked_parameter over arbitrary text.
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "proxy/params.hpp"
#include "proxy/pinning.hpp"
#include "tests/fuzz/protocol_roundtrip.hpp"

using namespace pgsluice;
using test::fuzz_check;

namespace {

bool same_effects(const proxy::session_effects& a, const proxy::session_effects& b) {
  return a.pins == b.pins && a.drops_prepared == b.drops_prepared && a.resets_settings == b.resets_settings;
}

}  // namespace

// Input: the text of a Query or Parse (any bytes; the relay hands over whatever the client sent).
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view sql(reinterpret_cast<const char*>(data), size);
  const auto e = proxy::classify_session_effects(sql);
  fuzz_check(!e.pins || !e.reason.empty(), "a pinning statement without a reason");
  fuzz_check(!e.drops_prepared || !e.reason.empty(), "dropping prepared statements without a reason");
  fuzz_check(same_effects(e, proxy::classify_session_effects(sql)), "classification is not deterministic");

  // A leading comment defeats the single-keyword fast path, so this goes through the full lexer:
  // the fast path must never call harmless what the lexer would pin.
  const std::string commented = "/**/ " + std::string(sql);
  fuzz_check(same_effects(e, proxy::classify_session_effects(commented)), "fast path and lexer disagree");

  // GUC names compare case-insensitively; every tracked name could be spliced into SET.
  const bool tracked = proxy::is_tracked_parameter(sql);
  std::string upper(sql), lower(sql);
  for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  fuzz_check(tracked == proxy::is_tracked_parameter(upper) && tracked == proxy::is_tracked_parameter(lower),
             "is_tracked_parameter depends on case");
  fuzz_check(!tracked || proxy::is_valid_setting_name(sql), "a tracked parameter that is not a valid setting name");
  return 0;
}

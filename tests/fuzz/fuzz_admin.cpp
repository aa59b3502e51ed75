// Fuzz target: the admin console's statement reader (parse_admin_statement) and error reply over arbitrary text.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "protocol/framing.hpp"
#include "proxy/admin.hpp"
#include "tests/fuzz/protocol_roundtrip.hpp"

using namespace pgsluice;
using test::fuzz_check;

namespace {

// A word written back as the reader would accept it: quoted, quotes doubled.
std::string quote(std::string_view w) {
  std::string out = "\"";
  for (char c : w) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

}  // namespace

// Input: the text of a console Query (any bytes a client may send).
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view q(reinterpret_cast<const char*>(data), size);
  const auto st = proxy::parse_admin_statement(q);
  using kind = proxy::admin_statement::kind;
  if (st.k == kind::command) {
    fuzz_check(!st.cmd.empty() && st.cmd.size() <= 15, "a command word out of PgBouncer's bounds");
    fuzz_check(st.arg.size() <= 63, "an argument out of PgBouncer's bounds");
    // What was read, written back quoted, reads the same (when the quotes keep it in bounds,
    // which PgBouncer counts as written).
    const std::string cmd = quote(st.cmd);
    const std::string arg = st.arg.empty() ? std::string() : quote(st.arg);
    if (cmd.size() <= 15 && arg.size() <= 63) {
      const auto st2 = proxy::parse_admin_statement(cmd + (arg.empty() ? "" : " " + arg) + ";");
      fuzz_check(st2.k == kind::command && st2.cmd == st.cmd && st2.arg == st.arg, "a command does not read back");
    }
  }
  if (st.k == kind::set) fuzz_check(!st.arg.empty(), "SET without a key");
  // The error echoing the statement is one well-formed message, then ReadyForQuery.
  std::vector<std::uint8_t> out;
  proxy::admin_error(out, proxy::invalid_command(q.substr(0, q.find('\0'))));
  const auto f = protocol::next_frame(out);
  fuzz_check(f.is_frame() && f.f.tag == 'E', "the error reply does not frame");
  return 0;
}

// Internal to proxy/: the admin console's pure parts — reading a console statement as PgBouncer does, and writing result sets with PgBouncer's column types.
//
// The console (database "pgsluice" or "pgbouncer" on the listen port) speaks the simple query
// protocol only, one command per Query, as PgBouncer's admin.c: `CMD [arg][;]` where CMD and
// arg are words ([0-9a-z_]+, any case) or "double quoted" (with "" for a quote), and
// `SET key = value`. Anything else is PgBouncer's "invalid command '...', use SHOW HELP;".
// Column types follow PgBouncer 1.18's RowDescription: text (25), int4 (23), int8 (20),
// numeric (1700) for the SHOW STATS counters, and timestamps sent as text.
// https://www.pgbouncer.org/usage.html#admin-console
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pgsluice::proxy {

struct admin_statement {
  enum class kind : std::uint8_t {
    command,        // `cmd` and `arg` (arg empty when none)
    set,            // SET `arg` = `value`
    syntax_error,   // "invalid command '<query>', use SHOW HELP;"
    bad_arguments,  // a word too long: "bad arguments"
  };
  kind k = kind::syntax_error;
  std::string cmd;    // as written, unquoted (compared without regard to case)
  std::string arg;
  std::string value;
};

// Never throws; any input gives one of the kinds above.
admin_statement parse_admin_statement(std::string_view query);

// A result set being written: RowDescription at construction, DataRows, then CommandComplete
// and ReadyForQuery by finish().
class admin_result {
 public:
  enum class type : std::uint8_t { text, int4, int8, numeric, timestamp };
  struct column {
    std::string_view name;
    type t;
  };
  admin_result(std::vector<std::uint8_t>& out, std::initializer_list<column> columns);

  using cell = std::optional<std::string>;  // nullopt: NULL
  void row(std::initializer_list<cell> values);
  void row(const std::vector<cell>& values);
  std::size_t rows() const noexcept { return rows_; }

 private:
  std::vector<std::uint8_t>& out_;
  std::size_t columns_;
  std::size_t rows_ = 0;
};

// Cell helpers.
inline admin_result::cell num(std::int64_t v) { return std::to_string(v); }
inline admin_result::cell num(std::uint64_t v) { return std::to_string(v); }
inline admin_result::cell num(std::uint32_t v) { return std::to_string(v); }
inline admin_result::cell num(int v) { return std::to_string(v); }
inline admin_result::cell text(std::string_view v) { return std::string(v); }

// The reply's end: CommandComplete `tag` and ReadyForQuery 'I'.
void admin_complete(std::vector<std::uint8_t>& out, std::string_view tag);
// An ERROR (SQLSTATE 08P01, as PgBouncer's admin_error) followed by ReadyForQuery 'I'.
void admin_error(std::vector<std::uint8_t>& out, std::string_view message);
// PgBouncer's syntax error for `query`.
std::string invalid_command(std::string_view query);

// "2026-01-02 03:04:05 UTC" (PgBouncer's timestamps).
std::string format_timestamp(std::int64_t unix_seconds);

}  // namespace pgsluice::proxy

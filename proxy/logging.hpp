// Internal to proxy/: log output — the JSON form of log.format = "json", and quoting values in text lines.
//
// Log lines are written in one text convention everywhere: the connection first (c42 for a
// client, s7 for a server), an event word, then key=value fields, a value with spaces in double
// quotes (`c42 login user="app" db="app" addr=127.0.0.1:50412`). The JSON form is derived from
// that text, so every line of every module has one without a second logging API:
//   {"time":"2026-12-01T12:00:00.123Z","level":"info","connection":"c42","event":"login",
//    "user":"app","database":"app","client_addr":"127.0.0.1:50412","message":"c42 login ..."}
// "connection" is null on lines about the whole process; db= becomes "database", addr=
// "client_addr", and duration= a number of seconds; every other value stays a string, and
// "message" keeps the whole line.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

namespace pgsluice::proxy {

// `v` in double quotes, with `"` and `\` escaped, for a text log field (user names, errors).
std::string log_quoted(std::string_view v);

// One JSON object (no newline) for a line logged at `level` ("info", "warning", ...).
std::string json_log_line(std::chrono::system_clock::time_point time, std::string_view level, std::string_view text);

// `v` as the inside of a JSON string: escapes, and U+FFFD for bytes that are not UTF-8.
std::string json_escape(std::string_view v);

// Makes the default logger write JSON lines to stderr.
void use_json_logs();

}  // namespace pgsluice::proxy

// `pgsluice check`: validate a config file and report every problem with its key and line.
#pragma once

#include <filesystem>
#include <ostream>

namespace pgsluice::conf {

// Its line in `pgsluice --help`, and the first line of `pgsluice check --help`.
inline constexpr const char* check_summary = "Validate a config file; every problem is reported with its key and line";

// Runs `pgsluice check ARGS...` (argv[0] is "check"): -c/--config FILE runs run_check on it,
// --defaults runs print_defaults. Returns the process exit code (2 for a usage error).
int check_main(int argc, char** argv);

// Loads `file`; on success prints "config OK: N databases, M users" (plus any
// warnings) to `out` and returns 0; otherwise prints every problem, one per
// line as FILE:LINE: key 'KEY': MESSAGE, to `err` and returns 1.
int run_check(const std::filesystem::path& file, std::ostream& out, std::ostream& err);

// Every accepted key with its default and description, as commented TOML
// (`pgsluice check --defaults`).
void print_defaults(std::ostream& out);

}  // namespace pgsluice::conf

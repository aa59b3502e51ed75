// `pgsluice check`: validate a config file and report every problem with its key and line.
#pragma once

#include <filesystem>
#include <ostream>

namespace pgsluice::conf {

// Loads `file`; on success prints "config OK: N databases, M users" (plus any
// warnings) to `out` and returns 0; otherwise prints every problem, one per
// line as FILE:LINE: key 'KEY': MESSAGE, to `err` and returns 1.
int run_check(const std::filesystem::path& file, std::ostream& out, std::ostream& err);

// Every accepted key with its default and description, as commented TOML
// (`pgsluice check --defaults`).
void print_defaults(std::ostream& out);

}  // namespace pgsluice::conf

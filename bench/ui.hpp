// `pgsluice bench ui`: serves the bench's web page (choose targets and workload, start and stop a run, watch it live, past results).
#pragma once

#include <iosfwd>
#include <string>

#include "bench/ui_api.hpp"

namespace pgsluice::bench {

struct ui_serve_options {
  std::string listen = "127.0.0.1:8089";    // HOST:PORT; port 0 picks a free one
  // A token even on loopback: other users of a shared machine reach loopback ports too.
  bool require_token = false;
  ui_settings app;
};

// Serves until SIGINT/SIGTERM; prints the address (and the token, when not on loopback) to
// `out` first. Returns the exit code; a bad --listen is a usage error (2).
int serve_ui(const ui_serve_options& options, std::ostream& out);

}  // namespace pgsluice::bench

// Entry point of `pgsluice serve`: load the config, start the worker threads and listeners, run until a signal.
#pragma once

#include <filesystem>
#include <string>

namespace pgsluice::proxy {

struct serve_options {
  std::filesystem::path config_file;
  // Overrides the config's log level when set ("trace", "debug", "info", ...).
  std::string log_level;
};

// Runs the proxy in the foreground. SIGINT/SIGTERM stop it gracefully (stop accepting, let
// transactions finish up to a timeout), SIGHUP reloads the config file. Returns the process
// exit code: 0 after a clean shutdown, 1 when the config cannot be loaded or a listener
// cannot be opened.
int run_serve(const serve_options& options);

}  // namespace pgsluice::proxy

// `pgsluice serve`: run the proxy in the foreground until a signal.
#pragma once

namespace pgsluice::proxy {

// Its line in `pgsluice --help`, and the first line of `pgsluice serve --help`.
inline constexpr const char* serve_summary = "Run the proxy in the foreground (SIGHUP reloads, SIGINT/SIGTERM stop)";

// Runs `pgsluice serve ARGS...` (argv[0] is "serve"): -c/--config FILE, --log-level LEVEL.
// SIGINT/SIGTERM stop it gracefully (stop accepting, let transactions finish up to a timeout),
// SIGHUP reloads the config file. Returns the process exit code: 0 after a clean shutdown, 1 when
// the config cannot be loaded or a listener cannot be opened, CLI11's code for a bad command line.
int serve_main(int argc, char** argv);

}  // namespace pgsluice::proxy

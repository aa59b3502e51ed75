// Entry point of `pgsluice bench`: the subcommands stack / init / run / quick / report / explain.
#pragma once

namespace pgsluice::bench {

// Its line in `pgsluice --help`.
inline constexpr const char* bench_summary = "Compare pgsluice, PgBouncer and Pgpool-II on a local cluster";

// Runs `pgsluice bench ARGS...`. argv[0] is "bench", the rest are the bench arguments.
// Returns the process exit code (0 success, 1 run-time failure, 2 usage error).
int run_bench_command(int argc, char** argv);

}  // namespace pgsluice::bench

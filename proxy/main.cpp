// The `pgsluice` executable: dispatches the subcommands serve, check, bench and version.
#include <cstring>
#include <iostream>
#include <string>

#include <CLI/CLI.hpp>

#include "proxy/serve.hpp"

#if PGSLUICE_HAVE_CHECK
#include "conf/check.hpp"
#endif
#if PGSLUICE_HAVE_BENCH
#include "bench/cli.hpp"
#endif

#ifndef PGSLUICE_VERSION
#define PGSLUICE_VERSION "unknown"
#endif

namespace {

int run_bench(int argc, char** argv) {
#if PGSLUICE_HAVE_BENCH
  return pgsluice::bench::run_bench_command(argc, argv);
#else
  (void)argc;
  (void)argv;
  std::cerr << "pgsluice bench: not built yet in this version (bench/cli.cpp is missing)\n";
  return 2;
#endif
}

}  // namespace

int main(int argc, char** argv) {
  // `bench` owns its own command line (its subcommands and --help), so it is handed the rest
  // of argv untouched rather than parsed here.
  if (argc >= 2 && std::strcmp(argv[1], "bench") == 0) return run_bench(argc - 1, argv + 1);

  CLI::App app{"pgsluice: PostgreSQL connection pooler, router and benchmark"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("pgsluice ") + PGSLUICE_VERSION);

  pgsluice::proxy::serve_options serve_opts;
  auto* serve = app.add_subcommand("serve", "Run the proxy in the foreground (SIGHUP reloads, SIGINT/SIGTERM stop)");
  serve->add_option("-c,--config", serve_opts.config_file, "Config file (TOML)")->required()->check(CLI::ExistingFile);
  serve->add_option("--log-level", serve_opts.log_level, "Override log.level: trace, debug, info, warning, error, off");

  std::string check_file;
  bool check_defaults = false;
  auto* check = app.add_subcommand("check", "Validate a config file; every problem is reported with its key and line");
  check->add_option("-c,--config", check_file, "Config file (TOML)");
  check->add_flag("--defaults", check_defaults, "Print every setting with its default as commented TOML");

  app.add_subcommand("bench", "Compare pgsluice, PgBouncer and Pgpool-II on a local cluster (see `pgsluice bench --help`)");
  app.add_subcommand("version", "Print the version");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  if (serve->parsed()) return pgsluice::proxy::run_serve(serve_opts);

  if (check->parsed()) {
#if PGSLUICE_HAVE_CHECK
    if (check_defaults) {
      pgsluice::conf::print_defaults(std::cout);
      return 0;
    }
    if (check_file.empty()) {
      std::cerr << "pgsluice check: -c FILE is required (or --defaults)\n";
      return 2;
    }
    return pgsluice::conf::run_check(check_file, std::cout, std::cerr);
#else
    (void)check_defaults;
    std::cerr << "pgsluice check: not built yet in this version (conf/check.cpp is missing)\n";
    return 2;
#endif
  }

  if (app.got_subcommand("version")) {
    std::cout << "pgsluice " << PGSLUICE_VERSION << '\n';
    return 0;
  }
  return 2;
}

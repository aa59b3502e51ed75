// The `pgsluice` executable: a table of subcommands, each handed the rest of the command line.
#include <iomanip>
#include <iostream>
#include <string_view>

#include "bench/cli.hpp"
#include "conf/check.hpp"
#include "proxy/serve.hpp"

namespace {

int version_main(int, char**) {
  std::cout << "pgsluice " PGSLUICE_VERSION "\n";
  return 0;
}

struct subcommand {
  std::string_view name;
  std::string_view help;
  // Gets argv from the subcommand's name on (argv[0] is the name) and returns the exit code.
  int (*run)(int argc, char** argv);
};

constexpr subcommand subcommands[] = {
    {"serve", pgsluice::proxy::serve_summary, pgsluice::proxy::serve_main},
    {"check", pgsluice::conf::check_summary, pgsluice::conf::check_main},
    {"bench", pgsluice::bench::bench_summary, pgsluice::bench::run_bench_command},
    {"version", "Print the version", version_main},
};

void print_usage(std::ostream& out) {
  out << "pgsluice: PostgreSQL connection pooler, router and benchmark\n"
         "Usage: pgsluice SUBCOMMAND [OPTIONS]    (pgsluice SUBCOMMAND --help for its options)\n"
         "       pgsluice --help | --version\n\n"
         "Subcommands:\n";
  for (const auto& c : subcommands) out << "  " << std::left << std::setw(12) << c.name << c.help << '\n';
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    print_usage(std::cerr);
    return 2;
  }
  const std::string_view arg = argv[1];
  if (arg == "-h" || arg == "--help") {
    print_usage(std::cout);
    return 0;
  }
  if (arg == "--version") return version_main(argc - 1, argv + 1);
  for (const auto& c : subcommands) {
    if (c.name == arg) return c.run(argc - 1, argv + 1);
  }
  std::cerr << "pgsluice: unknown subcommand '" << arg << "'\n\n";
  print_usage(std::cerr);
  return 2;
}

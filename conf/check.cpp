// `pgsluice check`: its command line; load a config, print "config OK" or every problem, and document the defaults.
#include "conf/check.hpp"

#include <iostream>
#include <ostream>
#include <string>

#include <CLI/CLI.hpp>

#include "conf/config.hpp"

namespace pgsluice::conf {

int run_check(const std::filesystem::path& file, std::ostream& out, std::ostream& err) {
  try {
    const auto c = load_config(file);
    for (const auto& w : c->warnings) err << "warning: " << w.to_string() << '\n';
    out << "config OK: " << c->databases.size() << (c->databases.size() == 1 ? " database, " : " databases, ")
        << c->users.size() << (c->users.size() == 1 ? " user" : " users") << '\n';
    return 0;
  } catch (const config_error& e) {
    for (const auto& p : e.problems()) err << p.to_string() << '\n';
    err << e.problems().size() << (e.problems().size() == 1 ? " problem" : " problems") << " in "
        << file.string() << '\n';
    return 1;
  }
}

void print_defaults(std::ostream& out) {
  out << "# pgsluice settings and their defaults (pgsluice check --defaults)\n";
  for (const auto& s : describe_settings()) {
    out << "\n# " << s.description << '\n' << "# " << s.key << " = " << s.default_value << '\n';
  }
}

int check_main(int argc, char** argv) {
  CLI::App app{check_summary, "pgsluice check"};
  std::string file;
  bool defaults = false;
  app.add_option("-c,--config", file, "Config file (TOML)");
  app.add_flag("--defaults", defaults, "Print every setting with its default as commented TOML");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (defaults) {
    print_defaults(std::cout);
    return 0;
  }
  if (file.empty()) {
    std::cerr << "pgsluice check: -c FILE is required (or --defaults)\n";
    return 2;
  }
  return run_check(file, std::cout, std::cerr);
}

}  // namespace pgsluice::conf

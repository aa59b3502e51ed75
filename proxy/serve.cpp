// `pgsluice serve`: placeholder until the event loops land.
#include "proxy/serve.hpp"

#include <iostream>

namespace pgsluice::proxy {

int run_serve(const serve_options& options) {
  std::cerr << "pgsluice serve: not implemented yet (config " << options.config_file << ")\n";
  return 1;
}

}  // namespace pgsluice::proxy

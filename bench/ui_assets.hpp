// The page of `pgsluice bench ui` (bench/ui/*), embedded in the binary at build time so that it works with no network.
#pragma once

#include <string_view>
#include <vector>

namespace pgsluice::bench {

struct ui_asset {
  std::string_view path;           // "/app.js"; "/" for index.html
  std::string_view content_type;
  std::string_view body;
};

// Defined in the ui_assets.cpp that cmake/embed_ui.cmake writes into the build directory.
const std::vector<ui_asset>& ui_assets();

}  // namespace pgsluice::bench

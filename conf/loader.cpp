// Loading pgsluice.toml: read it through the schema, check across keys, and throw every problem found at once.
//
// Every problem found is collected with the line of the key it concerns, and
// all of them are thrown together at the end, so `pgsluice check` can show
// everything in one run. Reading is conf/reader.cpp, the checks across keys
// conf/validate.cpp, the keys themselves conf/schema.cpp.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "conf/config.hpp"
#include "conf/loading.hpp"
#include "conf/schema.hpp"

namespace pgsluice::conf {
namespace {

using detail::context;

void sort_by_line(std::vector<config_problem>& problems) {
  // File order; problems without a line (whole-file ones) first.
  std::stable_sort(problems.begin(), problems.end(),
                   [](const config_problem& a, const config_problem& b) { return a.line < b.line; });
}

std::shared_ptr<const config> load(context& ctx, std::string_view text, std::filesystem::path source) {
  auto c = std::make_shared<config>();
  c->source = std::move(source);
  if (!detail::read_document(ctx, text, *c)) throw config_error(std::move(ctx.problems));
  detail::check_cross_references(ctx, *c);
  detail::check_routing(ctx, *c);
  detail::check_tls(ctx, *c);

  if (!ctx.problems.empty()) {
    sort_by_line(ctx.problems);
    throw config_error(std::move(ctx.problems));
  }
  sort_by_line(ctx.warnings);
  c->warnings = std::move(ctx.warnings);
  return c;
}

}  // namespace

std::shared_ptr<const config> load_config(const std::filesystem::path& file) {
  context ctx;
  ctx.routing = detail::routing_supported;
  ctx.file = file.string();
  std::error_code ec;
  if (std::filesystem::is_directory(file, ec)) {
    ctx.error({}, "", "is a directory, not a config file");
    throw config_error(std::move(ctx.problems));
  }
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    const bool exists = std::filesystem::exists(file, ec);
    ctx.error({}, "", exists ? "cannot read config file (permission denied?)" : "config file not found");
    throw config_error(std::move(ctx.problems));
  }
  std::ostringstream text;
  text << in.rdbuf();
  return load(ctx, text.str(), file);
}

std::shared_ptr<const config> load_config_from_string(std::string_view text, std::string_view name) {
  return detail::load_config_from_string(text, name, detail::load_options{detail::routing_supported});
}

std::shared_ptr<const config> detail::load_config_from_string(std::string_view text, std::string_view name,
                                                              const load_options& options) {
  context ctx;
  ctx.file = std::string(name);
  ctx.routing = options.routing;
  return load(ctx, text, {});
}

}  // namespace pgsluice::conf

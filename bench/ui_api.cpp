// Routes the requests of `pgsluice bench ui` to the run manager, the results directory and the embedded page.
#include "bench/ui_api.hpp"

#include <nlohmann/json.hpp>

#include <fstream>
#include <optional>
#include <sstream>
#include <variant>

#include "bench/report.hpp"
#include "bench/ui_assets.hpp"
#include "bench/ui_results.hpp"
#include "bench/ui_runs.hpp"

namespace pgsluice::bench {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> parts;
  std::stringstream in(path);
  for (std::string part; std::getline(in, part, '/');)
    if (!part.empty()) parts.push_back(part);
  return parts;
}

std::optional<std::string> read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

ui_reply ui_error(unsigned status, const std::string& message) {
  return {status, "application/json", json{{"error", message}}.dump(), {}};
}

struct ui_app::impl {
  ui_run_manager runs;
  impl(ui_settings s, event_sink sink) : runs(std::move(s), std::move(sink)) {}

  const fs::path& results() const { return runs.settings().results_dir; }

  // A run of the results directory, or the 404 explaining why not.
  std::variant<bench_run, ui_reply> load(const std::string& id) const {
    const auto dir = result_dir(results(), id);
    if (!dir) return ui_error(404, "no run '" + id + "' in " + results().string());
    try {
      return load_run(*dir);
    } catch (const std::exception& e) {
      return ui_error(500, "run " + id + ": " + e.what());
    }
  }

  ui_reply result_file(const std::string& id, const std::string& file) const {
    const auto dir = result_dir(results(), id);
    if (!dir) return ui_error(404, "no run '" + id + "' in " + results().string());
    if (file != "results.json" && file != "results.csv" && file != "report.html")
      return ui_error(404, "a run offers results.json, results.csv and report.html, not '" + file + "'");
    const std::string type = file.ends_with(".json") ? "application/json"
                             : file.ends_with(".csv") ? "text/csv; charset=utf-8"
                                                      : "text/html; charset=utf-8";
    const std::string download = id + "-" + file;
    if (auto body = read_file(*dir / file)) return {200, type, std::move(*body), download};
    // Runs saved by `bench run` have no CSV, and --no-html ones no report: made from results.json.
    auto run = load(id);
    if (auto* error = std::get_if<ui_reply>(&run)) return *error;
    const bench_run& r = std::get<bench_run>(run);
    if (file == "results.csv") return {200, type, summary_csv(r), download};
    if (file == "report.html") return {200, type, render_html(r), download};
    return ui_error(404, "run " + id + " has no " + file);
  }

  ui_reply compare(const std::string& a, const std::string& b) const {
    auto run = load(a);
    if (auto* error = std::get_if<ui_reply>(&run)) return *error;
    auto baseline = load(b);
    if (auto* error = std::get_if<ui_reply>(&baseline)) return *error;
    return {200, "text/html; charset=utf-8", render_html(std::get<bench_run>(run), &std::get<bench_run>(baseline)),
            "compare-" + a + "-" + b + ".html"};
  }

  ui_reply get(const std::string& path) {
    const auto parts = split_path(path);
    if (parts.size() >= 2 && parts[0] == "api") {
      const std::string& what = parts[1];
      if (parts.size() == 2 && what == "options") return runs.options();
      if (parts.size() == 2 && what == "status") return runs.status();
      if (parts.size() == 2 && what == "results") return {200, "application/json", list_results(results()).dump(), {}};
      if (parts.size() == 3 && what == "results") {
        ui_reply r = result_file(parts[2], "results.json");
        r.download_name.clear();
        return r;
      }
      if (parts.size() == 4 && what == "results") return result_file(parts[2], parts[3]);
      if (parts.size() == 5 && what == "compare" && parts[4] == "report.html") return compare(parts[2], parts[3]);
      return ui_error(404, "no such API: GET " + path);
    }
    for (const auto& asset : ui_assets())
      if (asset.path == path) return {200, std::string(asset.content_type), std::string(asset.body), {}};
    return ui_error(404, "not found: " + path);
  }
};

ui_app::ui_app(ui_settings settings, event_sink sink) : impl_(std::make_unique<impl>(std::move(settings), std::move(sink))) {}

ui_app::~ui_app() = default;

void ui_app::shutdown() { impl_->runs.shutdown(); }

ui_reply ui_app::handle(const ui_request& request) {
  try {
    if (request.method == "GET") return impl_->get(request.path);
    if (request.method == "POST") {
      if (request.path == "/api/runs") return impl_->runs.start(request.body);
      if (request.path == "/api/stop") return impl_->runs.stop();
      return ui_error(404, "no such API: POST " + request.path);
    }
    return ui_error(405, "method " + request.method + " is not used here (GET and POST are)");
  } catch (const std::exception& e) {
    return ui_error(500, e.what());
  }
}

}  // namespace pgsluice::bench

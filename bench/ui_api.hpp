// The application behind `pgsluice bench ui`, free of HTTP plumbing: requests in, replies and live events out.
//
// The HTTP server (bench/ui_http.cpp, the one file that sees Boost.Beast) turns each
// request into a ui_request and writes back the ui_reply; what the page must see live
// comes out of the event sink, which the server pushes to every page as server-sent
// events. One run at a time: a second start is refused (409) while one runs.
//
//   GET  /api/options                  targets, workloads, protocols, defaults
//   POST /api/runs                     start a run (JSON form; 400 with a message when invalid)
//   POST /api/stop                     stop the run in progress
//   GET  /api/status                   the current (or last) run: state, points, log, result
//   GET  /api/events                   server-sent events (ui_http.cpp)
//   GET  /api/results                  past runs under the results directory, newest first
//   GET  /api/results/ID               that run's results.json
//   GET  /api/results/ID/FILE          results.json, results.csv or report.html, as a download
//   GET  /api/compare/A/B/report.html  run A compared with run B, as HTML
//   GET  /, /app.js, /style.css        the page (embedded in the binary)
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "bench/cli_options.hpp"

namespace pgsluice::bench {

struct ui_settings {
  std::filesystem::path results_dir = "bench-results";
  std::filesystem::path work_dir;            // the local stack's; empty = default_stack_dir()
  std::vector<target_spec> extra_targets;    // --target NAME=URL: offered next to the stack's
};

struct ui_request {
  std::string method;                        // "GET", "POST", ...
  std::string path;                          // without the query
  std::string body;
};

struct ui_reply {
  unsigned status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::string download_name;                 // set: sent as an attachment with this file name
};

// A reply {"error": message} with that status.
ui_reply ui_error(unsigned status, const std::string& message);

class ui_app {
 public:
  // `sink(event, json)` is called for every live event, from whichever thread produced it
  // (the run's own thread for points); it must not block.
  using event_sink = std::function<void(const std::string& event, const std::string& json)>;

  ui_app(ui_settings settings, event_sink sink);
  ~ui_app();                                 // stops a run in progress and waits for it
  ui_app(const ui_app&) = delete;
  ui_app& operator=(const ui_app&) = delete;

  // Blocks at most a few seconds (checking that the targets of a new run answer).
  ui_reply handle(const ui_request& request);

  // Stops a run in progress (results measured so far are saved) and waits for it.
  void shutdown();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace pgsluice::bench

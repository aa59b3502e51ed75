// The one run of `pgsluice bench ui` at a time: checked against live targets, run on its own thread, seen live, saved.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "bench/ui_api.hpp"

namespace pgsluice::bench {

class ui_run_manager {
 public:
  ui_run_manager(ui_settings settings, ui_app::event_sink sink);
  ~ui_run_manager();

  ui_reply options();                        // GET /api/options
  ui_reply start(const std::string& body);   // POST /api/runs
  ui_reply stop();                           // POST /api/stop
  ui_reply status();                         // GET /api/status
  void shutdown();

  const ui_settings& settings() const { return settings_; }

 private:
  struct run_state;
  void emit(const std::string& event, const std::string& json);  // with mutex_ held

  ui_settings settings_;
  ui_app::event_sink sink_;
  std::mutex mutex_;
  std::shared_ptr<run_state> current_;       // the run in progress, or the last one
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace pgsluice::bench

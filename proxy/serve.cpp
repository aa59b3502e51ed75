// `pgsluice serve`: its command line, logging, listeners and accept loops, signals (graceful stop, reload) and pool upkeep.
#include "proxy/serve.hpp"

#include <sys/socket.h>

#include <csignal>
#include <filesystem>
#include <functional>
#include <iostream>
#include <string>

#include <CLI/CLI.hpp>
#include <boost/asio/signal_set.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "proxy/client_session.hpp"
#include "proxy/pool.hpp"
#include "proxy/runtime.hpp"
#include "proxy/tls.hpp"

namespace pgsluice::proxy {

namespace {

using clock = std::chrono::steady_clock;

struct serve_options {
  std::filesystem::path config_file;
  // Overrides the config's log level when set ("trace", "debug", "info", ...).
  std::string log_level;
};


spdlog::level::level_enum to_spdlog(std::string_view level) {
  if (level == "trace") return spdlog::level::trace;
  if (level == "debug") return spdlog::level::debug;
  if (level == "warning" || level == "warn") return spdlog::level::warn;
  if (level == "error") return spdlog::level::err;
  if (level == "off") return spdlog::level::off;
  return spdlog::level::info;
}

void setup_logging(const conf::config& cfg, const std::string& override_level) {
  auto logger = spdlog::stderr_color_mt("pgsluice");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%Y-%m-%d %H:%M:%S.%e %l %v");
  spdlog::set_level(to_spdlog(override_level.empty() ? conf::to_string(cfg.log.level) : override_level));
  spdlog::flush_on(spdlog::level::info);
}

// One SO_REUSEPORT listening socket per worker and address: the kernel spreads connections.
bool open_listeners(runtime& rt, const conf::config& cfg) {
  asio::io_context resolver_io;
  tcp::resolver resolver(resolver_io);
  for (const auto& l : cfg.listen) {
    boost::system::error_code ec;
    auto results = resolver.resolve(l.host, std::to_string(l.port), tcp::resolver::passive, ec);
    if (ec || results.empty()) {
      spdlog::critical("listen address {}:{} cannot be resolved: {}", l.host, l.port, ec.message());
      return false;
    }
    const tcp::endpoint ep = results.begin()->endpoint();
    for (auto& w : rt.workers()) {
      tcp::acceptor acc(w->io());
      acc.open(ep.protocol(), ec);
      if (!ec) acc.set_option(asio::socket_base::reuse_address(true), ec);
      if (!ec) {
        int one = 1;
        if (::setsockopt(acc.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
          ec = boost::system::error_code(errno, boost::system::system_category());
      }
      if (!ec) acc.bind(ep, ec);
      if (!ec) acc.listen(static_cast<int>(cfg.listen_backlog), ec);
      if (ec) {
        spdlog::critical("cannot listen on {}:{}: {}", l.host, l.port, ec.message());
        return false;
      }
      w->acceptors().push_back(std::move(acc));
    }
    spdlog::info("listening on {}:{} workers={}", ep.address().to_string(), ep.port(), rt.workers().size());
  }
  return true;
}

awaitable<void> accept_loop(worker& w, tcp::acceptor& acc) {
  asio::steady_timer backoff(w.io());
  for (;;) {
    auto [ec, sock] = co_await acc.async_accept(nothrow_awaitable);
    if (ec) {
      if (ec == asio::error::operation_aborted || !acc.is_open()) co_return;
      spdlog::warn("worker{} accept failed: {}", w.index(), ec.message());
      // Out of file descriptors and the like: back off briefly instead of spinning.
      backoff.expires_after(std::chrono::milliseconds(50));
      co_await backoff.async_wait(nothrow_awaitable);
      continue;
    }
    if (w.rt().shutting_down()) {
      boost::system::error_code ignored;
      sock.close(ignored);
      continue;
    }
    std::make_shared<client_session>(w, std::move(sock))->start();
  }
}

std::size_t total_sessions(runtime& rt) {
  std::size_t n = 0;
  for (auto& w : rt.workers()) n += w->session_count();
  return n;
}

void reload(runtime& rt) {
  std::shared_ptr<const conf::config> next;
  try {
    next = conf::load_config(rt.config_file());
  } catch (const std::exception& e) {  // conf::config_error included: what() lists its problems
    spdlog::error("reload failed, keeping the current config: {}", e.what());
    return;
  }
  // New certificates and keys are read now, for the connections that come next.
  std::shared_ptr<const tls_contexts> tls;
  try {
    tls = tls_contexts::load(next->tls);
  } catch (const std::exception& e) {
    spdlog::error("reload failed, keeping the current config: {}", e.what());
    return;
  }
  for (const auto& msg : conf::reload_restrictions(*rt.config(), *next)) spdlog::warn("reload: {} (needs a restart)", msg);
  rt.set_tls(std::move(tls));
  rt.set_config(next);
  rt.clusters().retire_changed(*next);
  spdlog::info("config reloaded from {}", rt.config_file().string());
}

// Runs the proxy in the foreground until SIGINT/SIGTERM, reloading the config on SIGHUP.
int run_serve(const serve_options& options) {
  std::shared_ptr<const conf::config> cfg;
  try {
    cfg = conf::load_config(options.config_file);
  } catch (const conf::config_error& e) {
    std::cerr << "pgsluice serve: invalid config\n" << e.what() << '\n';
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "pgsluice serve: cannot load config: " << e.what() << '\n';
    return 1;
  }
  setup_logging(*cfg, options.log_level);
  for (const auto& w : cfg->warnings) spdlog::warn("config: {}", w.to_string());

  auto rt = std::make_unique<runtime>(cfg, options.config_file);
  try {
    rt->set_tls(tls_contexts::load(cfg->tls));
  } catch (const std::exception& e) {
    spdlog::critical("{}", e.what());
    return 1;
  }
  if (!open_listeners(*rt, *cfg)) return 1;
  for (auto& w : rt->workers()) {
    for (auto& acc : w->acceptors()) {
      asio::co_spawn(w->io(), accept_loop(*w, acc), [i = w->index()](std::exception_ptr e) {
        if (!e) return;
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& ex) {
          spdlog::error("worker{} accept loop failed with an exception: {}", i, ex.what());
        }
      });
    }
    w->start();
  }

  // The main thread runs signals and pool upkeep.
  asio::io_context main_io;
  asio::signal_set signals(main_io, SIGINT, SIGTERM, SIGHUP);
  ::signal(SIGPIPE, SIG_IGN);
  asio::steady_timer upkeep(main_io);
  bool stopping = false;
  clock::time_point stop_deadline{};
  constexpr auto graceful_timeout = std::chrono::seconds(30);

  std::function<void()> arm_signals = [&] {
    signals.async_wait([&](const boost::system::error_code& ec, int sig) {
      if (ec) return;
      if (sig == SIGHUP) {
        reload(*rt);
      } else if (!stopping) {
        stopping = true;
        stop_deadline = clock::now() + graceful_timeout;
        spdlog::info("shutdown signal={} sessions={}: no new clients, waiting for transactions to finish",
                     sig == SIGINT ? "SIGINT" : "SIGTERM", total_sessions(*rt));
        rt->begin_shutdown();
        for (auto& w : rt->workers()) {
          asio::post(w->io(), [wp = w.get()] {
            for (auto& acc : wp->acceptors()) {
              boost::system::error_code ignored;
              acc.close(ignored);
            }
          });
        }
      } else {
        spdlog::info("second shutdown signal: closing every connection now");
        stop_deadline = clock::now();
      }
      arm_signals();
    });
  };
  arm_signals();

  bool forced = false;
  clock::time_point force_deadline{};
  std::function<void()> arm_upkeep = [&] {
    upkeep.expires_after(stopping ? std::chrono::milliseconds(100) : std::chrono::milliseconds(1000));
    upkeep.async_wait([&](const boost::system::error_code& ec) {
      if (ec) return;
      const auto now = clock::now();
      if (!stopping) {
        for (auto& p : rt->clusters().pools()) p->maintain(now);
      } else {
        const std::size_t left = total_sessions(*rt);
        if (left == 0 || (forced && now >= force_deadline)) {
          if (left > 0) spdlog::warn("shutdown: {} sessions did not end in time", left);
          signals.cancel();
          main_io.stop();
          return;
        }
        if (!forced && now >= stop_deadline) {
          forced = true;
          force_deadline = now + std::chrono::seconds(5);
          spdlog::info("shutdown: closing {} remaining sessions", left);
          for (auto& w : rt->workers()) {
            asio::post(w->io(), [wp = w.get()] { wp->janitor_tick(clock::now(), true); });
          }
        }
      }
      arm_upkeep();
    });
  };
  arm_upkeep();

  main_io.run();

  rt->clusters().clear();
  for (auto& w : rt->workers()) w->stop();
  for (auto& w : rt->workers()) w->join();
  std::string totals;
  for (std::size_t i = 0; i < counter_count; ++i) {
    const auto c = static_cast<counter>(i);
    totals += fmt::format(" {}={}", to_string(c), rt->stats().total(c));
  }
  spdlog::info("stopped{}", totals);
  rt.reset();
  return 0;
}

}  // namespace

int serve_main(int argc, char** argv) {
  CLI::App app{serve_summary, "pgsluice serve"};
  serve_options options;
  app.add_option("-c,--config", options.config_file, "Config file (TOML)")->required()->check(CLI::ExistingFile);
  app.add_option("--log-level", options.log_level, "Override log.level: trace, debug, info, warning, error, off");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return run_serve(options);
}

}  // namespace pgsluice::proxy

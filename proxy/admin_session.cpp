// Client sessions on the admin console: login, the simple-query loop, and the commands that act (PAUSE, RESUME, RECONNECT, RELOAD, KILL, DISABLE, ENABLE, WAIT_CLOSE, SHUTDOWN).
//
// Replies and wording are PgBouncer 1.18's (its admin.c), so scripts written for it keep
// working: every error is an ERROR with SQLSTATE 08P01 followed by ReadyForQuery, a stats user
// gets "admin access needed" for anything but SHOW, the extended protocol gets its error and
// the connection is closed ("bad packet"). PAUSE and WAIT_CLOSE answer once what they wait for
// has happened, as PgBouncer's do.
#include <openssl/rand.h>

#include <algorithm>
#include <charconv>
#include <cctype>
#include <functional>

#include <spdlog/spdlog.h>

#include "protocol/codec.hpp"
#include "protocol/fields.hpp"
#include "proxy/admin.hpp"
#include "proxy/client_session.hpp"
#include "proxy/cluster.hpp"
#include "proxy/ha.hpp"
#include "proxy/pool.hpp"
#include "proxy/runtime.hpp"
#include "proxy/server_connection.hpp"

#ifndef PGSLUICE_PROXY_VERSION
#define PGSLUICE_PROXY_VERSION "0"
#endif

namespace pgsluice::proxy {

namespace {

bool iequals(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

// The pools of `database` (every database when empty), retired ones included.
std::vector<std::shared_ptr<pool>> pools_of(runtime& rt, std::string_view database) {
  std::vector<std::shared_ptr<pool>> out;
  for (const auto& c : rt.clusters().all_including_retired()) {
    if (!database.empty() && c->database() != database) continue;
    for (const auto& b : c->backends()) out.push_back(b->pool);
  }
  return out;
}

// Polls `done` every few milliseconds until it holds or the session ends. PAUSE and WAIT_CLOSE
// wait for servers to be released or closed by other sessions; PgBouncer checks the same in
// its janitor loop.
awaitable<void> wait_until(asio::io_context& io, const std::function<bool()>& done, const std::function<bool()>& gone) {
  asio::steady_timer t(io);
  while (!done() && !gone()) {
    t.expires_after(std::chrono::milliseconds(10));
    co_await t.async_wait(nothrow_awaitable);
  }
}

}  // namespace

// --- login ------------------------------------------------------------------------------------

awaitable<bool> client_session::console_login() {
  const auto cfg = cfg_;
  console_ = true;
  console_admin_ = cfg->is_admin_user(startup_.user);
  if (!console_admin_ && !cfg->is_stats_user(startup_.user)) {
    spdlog::info("{} refused reason=not_admin_user user={} db={}", name_, startup_.user, startup_.database);
    fail(end_reason::login_refused, "08P01", "not allowed");
    co_return false;
  }
  // The parameters PgBouncer's console reports, with pgsluice's version.
  std::vector<std::uint8_t> out;
  protocol::append_parameter_status(out, "server_version", PGSLUICE_PROXY_VERSION "/pgsluice");
  protocol::append_parameter_status(out, "client_encoding", "UTF8");
  protocol::append_parameter_status(out, "server_encoding", "UTF8");
  protocol::append_parameter_status(out, "DateStyle", "ISO");
  protocol::append_parameter_status(out, "TimeZone", "GMT");
  protocol::append_parameter_status(out, "standard_conforming_strings", "on");
  protocol::append_parameter_status(out, "is_superuser", console_admin_ ? "on" : "off");
  std::int32_t key[2] = {0, 0};
  RAND_bytes(reinterpret_cast<unsigned char*>(key), sizeof key);  // nothing to cancel on the console
  protocol::encode(protocol::backend_key_data{key[0] & 0x7fffffff, key[1]}, out);
  protocol::encode_ready_for_query('I', out);
  if (!co_await send_bytes(out)) co_return false;
  if (cfg->log.log_connections) {
    spdlog::info("{} login user={} db={} console={}", name_, startup_.user, startup_.database,
                 console_admin_ ? "admin" : "stats");
  }
  co_return true;
}

// --- the loop ---------------------------------------------------------------------------------

awaitable<void> client_session::console_loop() {
  for (;;) {
    auto m = co_await read_login_message(false);
    if (!m) co_return;  // EOF, or an invalid length already answered
    last_activity_ = clock::now();
    std::vector<std::uint8_t> out;
    switch (m->tag) {
      case 'Q': {
        const std::string_view body(reinterpret_cast<const char*>(m->body.data()), m->body.size());
        const auto nul = body.find('\0');
        if (nul == std::string_view::npos) {
          fail(end_reason::client_protocol_error, "08P01", "incomplete query");
          co_return;
        }
        co_await console_execute(body.substr(0, nul), out);
        if (machine_.ending()) co_return;
        if (!co_await send_bytes(out)) co_return;
        break;
      }
      case 'X':
        end(end_reason::client_terminate);
        co_return;
      case 'P':
      case 'B':
      case 'E':
        admin_error(out, "extended query protocol not supported by admin console");
        if (co_await send_bytes(out)) fail(end_reason::client_protocol_error, "08P01", "bad packet");
        co_return;
      default:
        admin_error(out, "unsupported packet type for admin console: " + std::to_string(static_cast<int>(m->tag)));
        if (co_await send_bytes(out)) fail(end_reason::client_protocol_error, "08P01", "bad packet");
        co_return;
    }
  }
}

// --- commands ---------------------------------------------------------------------------------

awaitable<void> client_session::console_execute(std::string_view query, std::vector<std::uint8_t>& out) {
  const admin_statement st = parse_admin_statement(query);
  if (st.k == admin_statement::kind::syntax_error) {
    admin_error(out, invalid_command(query));
    co_return;
  }
  if (st.k == admin_statement::kind::bad_arguments) {
    admin_error(out, "bad arguments");
    co_return;
  }
  if (st.k == admin_statement::kind::set) {
    if (!console_admin_) {
      admin_error(out, "admin access needed");
    } else {
      admin_error(out, "SET is not supported by pgsluice's console: change the config file and RELOAD");
    }
    co_return;
  }
  const std::string& cmd = st.cmd;
  const std::string& arg = st.arg;
  if (iequals(cmd, "show") || iequals(cmd, "select")) {
    if (arg.empty() || !co_await console_show(arg, out)) admin_error(out, invalid_command(query));
    co_return;
  }
  static constexpr std::string_view commands[] = {"pause", "resume", "reconnect", "reload", "kill", "disable",
                                                  "enable", "wait_close", "shutdown", "suspend", "fence",
                                                  "unfence", "drain"};
  const auto known = std::find_if(std::begin(commands), std::end(commands), [&](auto c) { return iequals(cmd, c); });
  if (known == std::end(commands)) {
    admin_error(out, invalid_command(query));
    co_return;
  }
  const std::string_view verb = *known;
  // Commands that take no argument: PgBouncer answers one given with its syntax error.
  if ((verb == "reload" || verb == "shutdown" || verb == "suspend") && !arg.empty()) {
    admin_error(out, invalid_command(query));
    co_return;
  }
  if (!console_admin_) {
    admin_error(out, "admin access needed");
    co_return;
  }
  const auto cfg = rt_.config();
  auto& control = rt_.control();
  // A database named on the console: configured ones (the "*" fallback admits any name, as
  // PgBouncer's auto-databases do).
  auto known_db = [&](std::string_view name) { return cfg->find_database(name) != nullptr; };
  auto admin_db = [&](std::string_view name) { return conf::is_admin_database(name); };
  auto upper = [](std::string_view v) {
    std::string u(v);
    for (auto& c : u) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return u;
  };
  const std::string tag = upper(verb);
  if (arg.empty()) {
    spdlog::info("{} {} command issued", name_, tag);
  } else {
    spdlog::info("{} {} '{}' command issued", name_, tag, arg);
  }
  auto no_such = [&] { admin_error(out, "no such database: " + arg); };
  auto gone = [this] { return machine_.ending(); };
  // No server of `database` (all when empty) is attached to a client or logging in.
  auto servers_released = [this, database = arg] {
    for (const auto& p : pools_of(rt_, database)) {
      const auto c = p->counts();
      if (c.active + c.connecting > 0) return false;
    }
    return true;
  };
  auto close_idle = [this](std::string_view database) {
    for (const auto& p : pools_of(rt_, database)) p->close_idle();
  };

  if (verb == "pause") {
    if (control.all_paused()) {
      admin_error(out, "already suspended/paused");
      co_return;
    }
    if (arg.empty()) {
      control.pause_all();
    } else {
      if (!known_db(arg)) co_return no_such();
      if (admin_db(arg)) co_return admin_error(out, "cannot pause admin db: " + arg);
      control.pause(arg);
    }
    // Running transactions finish; then the idle servers are closed (the database may restart).
    co_await wait_until(worker_.io(), servers_released, gone);
    if (gone()) co_return;
    close_idle(arg);
    co_return admin_complete(out, "PAUSE");
  }
  if (verb == "resume") {
    if (arg.empty()) {
      if (!control.resume_all()) co_return admin_error(out, "pooler is not paused/suspended");
    } else {
      if (!known_db(arg)) co_return no_such();
      if (!control.resume(arg)) co_return admin_error(out, "database " + arg + " is not paused");
    }
    co_return admin_complete(out, "RESUME");
  }
  if (verb == "reconnect") {
    if (!arg.empty() && !known_db(arg)) co_return no_such();
    if (!arg.empty() && admin_db(arg)) co_return admin_error(out, "cannot reconnect admin db: " + arg);
    const auto mark = rt_.server_id_mark();
    for (const auto& p : pools_of(rt_, arg)) p->reconnect(mark);
    co_return admin_complete(out, "RECONNECT");
  }
  if (verb == "reload") {
    rt_.reload();  // a file that does not load is logged and the current config kept, as PgBouncer
    co_return admin_complete(out, "RELOAD");
  }
  if (verb == "kill") {
    if (control.all_paused()) co_return admin_error(out, "already suspended/paused");
    if (arg.empty()) co_return admin_error(out, "a database is required");
    if (!known_db(arg)) co_return no_such();
    if (admin_db(arg)) co_return admin_error(out, "cannot kill admin db: " + arg);
    // As PgBouncer: the database stays paused (new clients wait for RESUME), its clients are
    // dropped and its servers closed.
    control.pause(arg);
    const auto mark = rt_.server_id_mark();
    for (const auto& p : pools_of(rt_, arg)) p->reconnect(mark);
    for (auto& w : rt_.workers()) {
      asio::post(w->io(), [wp = w.get(), database = arg] {
        wp->visit_sessions([&](client_session& s) {
          if (!s.is_console() && s.database() == database) s.kill();
        });
      });
    }
    co_return admin_complete(out, "KILL");
  }
  if (verb == "disable" || verb == "enable") {
    if (arg.empty()) co_return admin_error(out, "a database is required");
    if (!known_db(arg)) co_return no_such();
    if (admin_db(arg)) co_return admin_error(out, "cannot disable admin db: " + arg);
    if (verb == "disable") {
      control.disable(arg);
    } else {
      control.enable(arg);
    }
    co_return admin_complete(out, tag);
  }
  if (verb == "wait_close") {
    if (!arg.empty() && !known_db(arg)) co_return no_such();
    if (!arg.empty() && admin_db(arg)) co_return admin_error(out, "cannot wait in admin db: " + arg);
    // Until no server marked by RECONNECT or a reload is left open.
    auto closed = [this, database = arg] {
      for (const auto& p : pools_of(rt_, database)) {
        if (p->close_needed_count() > 0) return false;
      }
      return true;
    };
    co_await wait_until(worker_.io(), closed, gone);
    if (gone()) co_return;
    co_return admin_complete(out, "WAIT_CLOSE");
  }
  if (verb == "shutdown") {
    // A graceful stop, as SIGTERM: no new clients, transactions finish; this session ends with
    // the others. PgBouncer sends no reply either.
    rt_.request_shutdown();
    co_return admin_complete(out, "SHUTDOWN");
  }
  if (verb == "suspend") co_return admin_error(out, "SUSPEND is not supported by pgsluice (no online restart)");
  // FENCE / UNFENCE / DRAIN "host:port" (SHOW BACKENDS' backend column): every database whose
  // health checks know that server. UNFENCE puts it back in service (fenced or draining).
  const auto colon = arg.rfind(':');
  unsigned port = 0;
  if (arg.empty() || colon == std::string::npos || colon == 0 ||
      std::from_chars(arg.data() + colon + 1, arg.data() + arg.size(), port).ec != std::errc{} || port == 0 ||
      port > 65535) {
    co_return admin_error(out, tag + " needs a backend as SHOW BACKENDS names it: " + tag + " \"host:port\"");
  }
  const std::string host = arg.substr(0, colon);
  std::size_t matched = 0;
  for (const auto& set : rt_.ha().sets()) {
    const auto i = set->find(host, static_cast<std::uint16_t>(port));
    if (!i) continue;
    ++matched;
    if (verb == "fence") {
      set->fence(*i);
    } else if (verb == "drain") {
      set->drain(*i);
    } else {
      set->unfence(*i);
      set->undrain(*i);
    }
  }
  if (matched == 0) co_return admin_error(out, "no such backend: " + arg);
  co_return admin_complete(out, tag);
}

// --- what the console shows of sessions ---------------------------------------------------------

std::optional<client_session::admin_view> client_session::view_for_admin(clock::time_point now) const {
  const relay_state st = machine_.state();
  if (st == relay_state::login || machine_.ending()) return std::nullopt;
  admin_view v;
  v.name = name_;
  v.user = startup_.user;
  v.database = startup_.database;
  v.console = console_;
  v.cluster = cluster_ ? cluster_->name() : startup_.database + "/" + startup_.user;
  v.state = st == relay_state::waiting ? "waiting" : "active";
  boost::system::error_code ec;
  v.remote = socket_.remote_endpoint(ec);
  v.local = socket_.local_endpoint(ec);
  v.connected = connected_;
  v.last_request = last_activity_;
  if (st == relay_state::waiting) v.waited = now - wait_since_;
  v.application_name = startup_.application_name;
  if (server_) {
    v.has_server = true;
    v.server_name = server_->name();
    v.server_user = pool_ ? pool_->cfg().target.user : std::string();
    v.server_id = server_->id();
    v.server_remote = server_->remote;
    v.server_local = server_->local;
    v.server_connected = server_->created;
    v.server_used = server_->last_used;
    v.backend_pid = server_->backend_pid;
    v.server_close_needed = pool_ && pool_->close_needed(server_->id());
  }
  return v;
}

void client_session::kill() {
  spdlog::info("{} killed db={}", name_, startup_.database);
  fail(end_reason::shutdown, "08P01", "database removed");
}

awaitable<std::vector<client_session::admin_view>> client_session::gather_sessions() {
  std::vector<admin_view> all;
  for (auto& w : rt_.workers()) {
    auto collect = [wp = w.get()]() -> awaitable<std::vector<admin_view>> {
      std::vector<admin_view> rows;
      const auto now = clock::now();
      wp->visit_sessions([&](client_session& s) {
        if (auto v = s.view_for_admin(now)) rows.push_back(std::move(*v));
      });
      co_return rows;
    };
    // Each worker reads its own sessions on its own thread; the answer comes back here.
    auto rows = co_await asio::co_spawn(w->io(), collect(), asio::use_awaitable);
    for (auto& r : rows) all.push_back(std::move(r));
  }
  co_return all;
}

}  // namespace pgsluice::proxy

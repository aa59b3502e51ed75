// The health prober (see monitor.hpp).
#include "proxy/monitor.hpp"

#include <charconv>
#include <cstdio>

#include <spdlog/spdlog.h>

#include "proxy/cluster.hpp"
#include "proxy/ha.hpp"
#include "proxy/pool.hpp"
#include "proxy/runtime.hpp"
#include "proxy/server_connection.hpp"

namespace pgsluice::proxy {

namespace {

// Positions as numbers of bytes (pg_lsn minus 0/0 is numeric), so no LSN text is parsed on the
// server's side of things; works on a primary and on a standby alike. The timeline of a
// primary is the first 8 hex digits of its current WAL file's name.
constexpr std::string_view sample_sql =
    "SELECT pg_is_in_recovery(), "
    "(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END - '0/0'::pg_lsn)::text, "
    "(extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp()) * 1000)::bigint::text, "
    "(pg_last_wal_receive_lsn() - '0/0'::pg_lsn)::text, "
    "CASE WHEN pg_is_in_recovery() THEN (SELECT received_tli FROM pg_stat_wal_receiver)::text "
    "ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int::text END";

template <class T>
std::optional<T> number(const std::optional<std::string>& s) {
  if (!s) return std::nullopt;
  T v{};
  const auto* end = s->data() + s->size();
  const auto r = std::from_chars(s->data(), end, v);
  if (r.ec != std::errc{} || r.ptr != end) return std::nullopt;
  return v;
}

std::string sql_literal(std::string_view s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += '\'';
    out += c;
  }
  return out + "'";
}

std::string conninfo_value(std::string_view v) {
  std::string out = "'";
  for (char c : v) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  return out + "'";
}

bool is_loopback(std::string_view host) { return host == "127.0.0.1" || host == "localhost" || host == "::1"; }

void log_exception(std::exception_ptr e, const char* what) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    spdlog::error("health {} failed with an exception: {}", what, ex.what());
  }
}

}  // namespace

std::optional<std::uint64_t> parse_lsn(std::string_view text) noexcept {
  const auto slash = text.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 >= text.size()) return std::nullopt;
  std::uint32_t hi = 0, lo = 0;
  const auto a = std::from_chars(text.data(), text.data() + slash, hi, 16);
  const auto b = std::from_chars(text.data() + slash + 1, text.data() + text.size(), lo, 16);
  if (a.ec != std::errc{} || a.ptr != text.data() + slash || b.ec != std::errc{} || b.ptr != text.data() + text.size())
    return std::nullopt;
  return (std::uint64_t{hi} << 32) | lo;
}

std::string format_lsn(std::uint64_t lsn) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%X/%X", static_cast<unsigned>(lsn >> 32), static_cast<unsigned>(lsn & 0xffffffffu));
  return buf;
}

std::optional<wal_sample> parse_wal_sample(const std::vector<std::optional<std::string>>& row) {
  if (row.size() < 3 || !row[0]) return std::nullopt;
  wal_sample s;
  s.in_recovery = *row[0] == "t";
  s.position = number<std::uint64_t>(row[1]);
  s.replay_age_ms = number<std::int64_t>(row[2]);
  if (row.size() > 3) s.received = number<std::uint64_t>(row[3]);
  if (row.size() > 4) s.timeline = number<std::uint32_t>(row[4]);
  return s;
}

std::string repoint_conninfo(std::string_view conninfo, std::string_view host, std::uint16_t port) {
  // keyword = value pairs; a value is a word or a single-quoted string with \-escapes
  // (https://www.postgresql.org/docs/15/libpq-connect.html#LIBPQ-CONNSTRING).
  std::vector<std::pair<std::string, std::string>> kv;
  std::size_t i = 0;
  auto skip = [&] {
    while (i < conninfo.size() && (conninfo[i] == ' ' || conninfo[i] == '\t' || conninfo[i] == '\n')) ++i;
  };
  while (true) {
    skip();
    if (i >= conninfo.size()) break;
    std::string key;
    while (i < conninfo.size() && conninfo[i] != '=' && conninfo[i] != ' ') key += conninfo[i++];
    skip();
    if (i < conninfo.size() && conninfo[i] == '=') ++i;
    skip();
    std::string value;
    if (i < conninfo.size() && conninfo[i] == '\'') {
      ++i;
      while (i < conninfo.size() && conninfo[i] != '\'') {
        if (conninfo[i] == '\\' && i + 1 < conninfo.size()) ++i;
        value += conninfo[i++];
      }
      ++i;
    } else {
      while (i < conninfo.size() && conninfo[i] != ' ') value += conninfo[i++];
    }
    kv.emplace_back(std::move(key), std::move(value));
  }
  std::string out;
  bool host_done = false;
  bool port_done = false;
  for (auto& [k, v] : kv) {
    if (k == "hostaddr") continue;
    if (k == "host") {
      if (!(v.starts_with('/') && is_loopback(host))) v = std::string(host);
      host_done = true;
    }
    if (k == "port") {
      v = std::to_string(port);
      port_done = true;
    }
    out += (out.empty() ? "" : " ") + k + "=" + conninfo_value(v);
  }
  if (!host_done) out += (out.empty() ? "" : " ") + std::string("host=") + conninfo_value(host);
  if (!port_done) out += " port=" + conninfo_value(std::to_string(port));
  return out;
}

health_prober::health_prober(runtime& rt, asio::io_context& io, std::shared_ptr<backend_set> set, timing t)
    : rt_(rt), io_(io), set_(set), timing_(t), conns_(set->size()) {
  for (std::size_t i = 0; i < set->size(); ++i) timers_.push_back(std::make_unique<asio::steady_timer>(io_));
}

health_prober::~health_prober() = default;

void health_prober::spawn(awaitable<void> a, const char* what) {
  asio::co_spawn(io_, std::move(a), [what](std::exception_ptr e) { log_exception(e, what); });
}

void health_prober::start() {
  for (std::size_t i = 0; i < conns_.size(); ++i) {
    asio::co_spawn(io_, [self = shared_from_this(), i]() { return self->run(i); },
                   [](std::exception_ptr e) { log_exception(e, "check"); });
  }
}

void health_prober::stop() {
  stopped_.store(true, std::memory_order_relaxed);
  // The timers live on the prober's thread: cancel them there.
  asio::post(io_, [self = shared_from_this()] {
    for (auto& t : self->timers_) t->cancel();
  });
}

void health_prober::promote(const router::promote_order& o) {
  asio::post(io_, [self = shared_from_this(), o] { self->spawn(self->run_promote(o), "promotion"); });
}

void health_prober::repoint(const router::repoint_order& o) {
  asio::post(io_, [self = shared_from_this(), o] { self->spawn(self->run_repoint(o), "re-pointing"); });
}

awaitable<std::shared_ptr<server_connection>> health_prober::open(std::size_t i, std::string& error) {
  auto set = set_.lock();
  if (!set) co_return nullptr;
  for (const auto& c : set->clusters()) {
    const auto& b = *c->backends().at(i);
    if (!b.pool->can_log_in_alone()) continue;
    auto conn = std::make_shared<server_connection>(rt_, rt_.next_server_id(), io_, 0);
    auto creds = b.pool->login_credentials();
    const auto target = b.pool->cfg().target;
    if (auto err = co_await conn->login(target, creds, timing_.timeout)) {
      // A wrong password is this user's problem, not the server's: try another user's login.
      if (err->sqlstate == "28P01") continue;
      error = err->severity + ": " + err->message;
      co_return nullptr;
    }
    conn->set_state(server_state::active);
    co_return conn;
  }
  co_return nullptr;  // nobody to log in as yet (no client proved SCRAM keys): no check
}

awaitable<std::optional<router::probe_result>> health_prober::probe(std::size_t i) {
  router::probe_result r;
  auto& conn = conns_[i];
  if (!conn || !conn->is_open()) {
    std::string error;
    conn = co_await open(i, error);
    if (!conn) {
      if (error.empty()) co_return std::nullopt;
      r.error = std::move(error);
      co_return r;
    }
  }
  auto rows = co_await conn->query_rows(sample_sql, {}, timing_.timeout);
  std::optional<wal_sample> s;
  if (!rows.error && !rows.rows.empty()) s = parse_wal_sample(rows.rows.front());
  if (!s) {
    r.error = rows.error ? rows.error->severity + ": " + rows.error->message : "no answer to the health check";
    conn->close();
    conn.reset();
    co_return r;
  }
  r.ok = true;
  r.in_recovery = s->in_recovery;
  r.position = s->position;
  r.received = s->received;
  r.replay_age_ms = s->replay_age_ms;
  r.timeline = s->timeline;
  co_return r;
}

awaitable<void> health_prober::run(std::size_t i) {
  using clock = std::chrono::steady_clock;
  auto next_check = clock::now();
  while (!stopped_.load(std::memory_order_relaxed)) {
    // A health check logs in afresh (as HAProxy's pgsql-check): a server that stopped taking
    // logins, or whose postmaster no longer answers, fails it even while old sessions work.
    if (clock::now() >= next_check && conns_[i]) {
      conns_[i]->close();
      conns_[i].reset();
    }
    const auto r = co_await probe(i);
    if (stopped_.load(std::memory_order_relaxed)) break;
    auto set = set_.lock();
    if (!set) break;
    const auto now = clock::now();
    if (r) {
      if (now >= next_check) {
        set->report_check(i, *r);
        next_check = now + timing_.check_interval;
      } else {
        set->report_sample(i, *r);
      }
    }
    if (i == 0) set->tick();  // failover_after is measured even when no check changes anything
    set.reset();
    auto& t = *timers_[i];
    t.expires_at(std::min(next_check, clock::now() + timing_.sample_interval));
    co_await t.async_wait(nothrow_awaitable);
  }
  if (conns_[i]) conns_[i]->close();
}

awaitable<void> health_prober::run_promote(router::promote_order o) {
  std::string error;
  bool ok = false;
  auto conn = co_await open(o.backend, error);
  if (conn) {
    // pg_promote(wait => true) returns once the server accepts writes (docs: 9.27.9).
    auto rows = co_await conn->query_rows("SELECT pg_promote(true, 60)", {}, std::chrono::seconds(70));
    ok = !rows.error && !rows.rows.empty() && !rows.rows[0].empty() && rows.rows[0][0] == "t";
    if (!ok) error = rows.error ? rows.error->message : "pg_promote() did not complete within 60 s";
    conn->close();
  } else if (error.empty()) {
    error = "no user to log in as";
  }
  if (auto set = set_.lock()) {
    const auto& cfg = set->at(o.backend).cfg;
    if (ok) {
      spdlog::warn("failover database={} promoted={}:{}", set->database(), cfg.host, cfg.port);
    } else {
      spdlog::error("failover database={} promotion of {}:{} failed: {} (a superuser, or a user granted EXECUTE "
                    "on pg_promote, must be the one pgsluice logs in as)",
                    set->database(), cfg.host, cfg.port, error);
    }
    set->report_promotion(o.backend, ok, error);
  }
}

awaitable<void> health_prober::run_repoint(router::repoint_order o) {
  auto set = set_.lock();
  if (!set) co_return;
  const auto primary = set->at(o.primary).cfg;
  const std::string db = set->database();
  set.reset();
  const auto timeout = timing_.timeout;
  for (const auto r : o.replicas) {
    std::string error;
    const auto cfg = [&] {
      auto s = set_.lock();
      return s ? s->at(r).cfg : conf::backend_config{};
    }();
    auto conn = co_await open(r, error);
    if (conn) {
      auto rows = co_await conn->query_rows(
          "SELECT current_setting('primary_conninfo'), current_setting('primary_slot_name')", {}, timeout);
      if (rows.error || rows.rows.empty() || rows.rows[0].size() < 2 || !rows.rows[0][0]) {
        error = rows.error ? rows.error->message : "primary_conninfo not readable";
      } else {
        const std::string info = repoint_conninfo(*rows.rows[0][0], primary.host, primary.port);
        const std::string slot = rows.rows[0][1].value_or("");
        if (!slot.empty()) {
          // The slot the replica streams through must exist on its new upstream.
          std::string perr;
          if (auto pc = co_await open(o.primary, perr)) {
            auto e = co_await pc->run_internal(
                "SELECT pg_create_physical_replication_slot(" + sql_literal(slot) +
                    ") WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = " + sql_literal(slot) + ")",
                timeout);
            if (e) error = "creating slot " + slot + " on the new primary: " + e->message;
            pc->close();
          } else {
            error = "cannot log in to the new primary: " + perr;
          }
        }
        if (error.empty()) {
          if (auto e = co_await conn->run_internal("ALTER SYSTEM SET primary_conninfo = " + sql_literal(info), timeout)) {
            error = e->message;
          } else if (auto e2 = co_await conn->run_internal("SELECT pg_reload_conf()", timeout)) {
            error = e2->message;
          }
        }
      }
      conn->close();
    } else if (error.empty()) {
      error = "no user to log in as";
    }
    if (error.empty()) {
      spdlog::info("failover database={} replica={}:{} now follows {}:{}", db, cfg.host, cfg.port, primary.host,
                   primary.port);
    } else {
      spdlog::error("failover database={} replica={}:{} could not be pointed at the new primary {}:{}: {}; an "
                    "operator must set its primary_conninfo (and slot) and reload it",
                    db, cfg.host, cfg.port, primary.host, primary.port, error);
    }
  }
}

}  // namespace pgsluice::proxy

// Client sessions, login: startup packet, SSL/GSSENC refusal, cancel requests, authentication, login replies.
#include <openssl/rand.h>

#include <spdlog/spdlog.h>

#include "protocol/codec.hpp"
#include "protocol/framing.hpp"
#include "protocol/md5.hpp"
#include "protocol/fields.hpp"
#include "proxy/client_session.hpp"
#include "proxy/cluster.hpp"
#include "proxy/logging.hpp"
#include "proxy/pinning.hpp"
#include "proxy/pool.hpp"
#include "proxy/runtime.hpp"
#include "proxy/server_connection.hpp"
#include "proxy/tls.hpp"

namespace pgsluice::proxy {

namespace {

std::span<const std::uint8_t> as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}
std::string_view as_text(std::span<const std::uint8_t> b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

// Secret for mock SCRAM exchanges (unknown users), random per process as PostgreSQL's
// mock_auth_nonce is per cluster: the fake salt of a user is stable while pgsluice runs.
const std::array<std::uint8_t, 32>& mock_secret() {
  static const std::array<std::uint8_t, 32> secret = [] {
    std::array<std::uint8_t, 32> s{};
    RAND_bytes(s.data(), static_cast<int>(s.size()));
    return s;
  }();
  return secret;
}

// Where auth_query runs for a client of `client_db` (the database it asked for): the database
// and the user running the query; the client's own database when auth_dbname is empty.
struct auth_query_place {
  std::string dbname;
  const conf::database_config* db = nullptr;  // null: not defined
  std::string user;
};
auth_query_place auth_query_runner(const conf::config& cfg, const conf::database_config* client_db,
                                   const std::string& client_database) {
  auth_query_place p;
  p.dbname = cfg.auth_dbname.empty() ? client_database : cfg.auth_dbname;
  p.db = cfg.auth_dbname.empty() ? client_db : cfg.find_database(p.dbname);
  p.user = p.db != nullptr && p.db->auth_user ? *p.db->auth_user : cfg.auth_user;
  return p;
}

// The auth_query_cache key of `user`'s lookup for a client of `client_db`.
std::string auth_cache_key(const conf::config& cfg, const conf::database_config* client_db,
                           const std::string& client_database, const std::string& user) {
  const auto place = auth_query_runner(cfg, client_db, client_database);
  return auth_query_cache::key(place.dbname, place.user, cfg.auth_query, user);
}

// Messages during login are small; PostgreSQL caps SASL messages well below this.
constexpr std::size_t max_login_message = 64 * 1024;

}  // namespace

awaitable<std::optional<client_session::login_message>> client_session::read_login_message(bool startup) {
  for (;;) {
    const auto data = cbuf_.data();
    const auto r = startup ? protocol::next_startup_frame(data) : protocol::next_frame(data, max_login_message);
    if (r.is_frame()) {
      login_message m;
      m.tag = r.f.tag;
      m.code = r.f.code;
      m.kind = static_cast<int>(r.f.kind);
      m.body.assign(r.f.body.begin(), r.f.body.end());
      m.size = r.f.size;
      cbuf_.consume(r.f.size);
      co_return m;
    }
    if (r.is_invalid()) {
      spdlog::info("{} invalid_{} error=\"{}\"", name_, startup ? "startup_packet" : "message", r.error.message());
      if (startup) {
        // PostgreSQL closes the connection at once on an invalid startup packet (postmaster.c).
        end(end_reason::client_protocol_error);
      } else {
        fail(end_reason::client_protocol_error, "08P01", "invalid message length");
      }
      co_return std::nullopt;
    }
    auto space = cbuf_.prepare(std::max<std::size_t>(r.need > data.size() ? r.need - data.size() : 1, 1024));
    auto [ec, n] = tls_ ? co_await tls_read_some(socket_, *tls_, space)
                        : co_await socket_.async_read_some(asio::buffer(space.data(), space.size()), nothrow_awaitable);
    if (ec || machine_.ending()) {
      end(end_reason::client_closed);
      co_return std::nullopt;
    }
    cbuf_.commit(n);
    rt_.stats().add(counter::client_received_bytes, static_cast<std::int64_t>(n));
  }
}

awaitable<bool> client_session::login() {
  // --- startup packet (SSLRequest / GSSENCRequest answered 'N' first) ---
  // https://www.postgresql.org/docs/15/protocol-flow.html#PROTOCOL-FLOW-START-UP
  auto startup_frame = [](const login_message& lm) {
    protocol::frame fr;
    fr.kind = static_cast<protocol::frame_kind>(lm.kind);
    fr.size = lm.size;
    fr.code = lm.code;
    fr.body = lm.body;
    return fr;
  };
  std::optional<login_message> m;
  for (;;) {
    m = co_await read_login_message(true);
    if (!m) co_return false;
    const auto kind = static_cast<protocol::frame_kind>(m->kind);
    if (kind == protocol::frame_kind::ssl_request || kind == protocol::frame_kind::gssenc_request) {
      if (!co_await answer_encryption_request(kind == protocol::frame_kind::ssl_request)) co_return false;
      continue;
    }
    if (kind == protocol::frame_kind::cancel_request) {
      // Answered by closing, as PostgreSQL does.
      const auto decoded = protocol::decode_startup(startup_frame(*m));
      if (const auto* c = decoded ? std::get_if<protocol::cancel_request>(&*decoded) : nullptr) {
        co_await forward_cancel(c->process_id, c->secret_key);
      }
      end(end_reason::client_closed);
      co_return false;
    }
    break;
  }

  auto decoded = protocol::decode_startup(startup_frame(*m));
  if (!decoded || !std::holds_alternative<protocol::startup_message>(*decoded)) {
    fail(end_reason::client_protocol_error, "08P01", "invalid startup packet layout: expected terminator as last byte");
    co_return false;
  }
  const auto& sm = std::get<protocol::startup_message>(*decoded);

  // Protocol 3.x with x > 0, or _pq_.* options: NegotiateProtocolVersion, as PostgreSQL 15 does.
  protocol::negotiate_protocol_version npv;
  for (const auto& [k, v] : sm.params) {
    if (k.starts_with("_pq_.")) npv.unrecognized_options.push_back(k);
  }
  if (sm.protocol_minor > 0 || !npv.unrecognized_options.empty()) {
    npv.newest_minor = 0;
    std::vector<std::uint8_t> out;
    protocol::encode(npv, out);
    if (!co_await send_bytes(out)) co_return false;
  }

  if (auto err = sort_startup_parameters(sm.params, startup_)) {
    fail(end_reason::login_refused, err->sqlstate, err->message);
    co_return false;
  }
  if (startup_.user.empty()) {
    fail(end_reason::login_refused, "28000", "no PostgreSQL user name specified in startup packet");
    co_return false;
  }
  if (!tls_allows_login()) co_return false;
  const auto cfg = cfg_;
  if (rt_.shutting_down()) {
    rt_.stats().add(counter::clients_refused);
    fail(end_reason::shutdown, "57P03", "the database system is shutting down");
    co_return false;
  }
  counted_ = true;
  if (rt_.client_count().fetch_add(1, std::memory_order_relaxed) + 1 > static_cast<std::int64_t>(cfg->max_client_conn)) {
    rt_.stats().add(counter::clients_refused);
    spdlog::info("{} refused reason=max_client_conn user={} db={} addr={}", name_, log_quoted(startup_.user),
                 log_quoted(startup_.database), peer_);
    fail(end_reason::login_refused, "53300", "sorry, too many clients already");
    co_return false;
  }

  const conf::database_config* db = cfg->find_database(startup_.database);
  const conf::user_config* user = cfg->find_user(startup_.user);
  std::optional<std::string> fetched;
  std::string cached_under;  // auth_query_cache key when `fetched` was reused
  if (user == nullptr && !cfg->auth_user.empty()) {
    const std::string key = auth_cache_key(*cfg, db, startup_.database, startup_.user);
    fetched = rt_.auth_cache().find(key, cfg->auth_query_cache_ttl, clock::now());
    if (fetched) {
      cached_under = key;
    } else {
      fetched = co_await run_auth_query(*cfg, db);
      if (machine_.ending()) co_return false;
      if (fetched && cfg->auth_query_cache_ttl.count() > 0) rt_.auth_cache().store(key, *fetched, clock::now());
    }
  }

  if (!co_await authenticate(*cfg, user, fetched)) {
    // The reused secret may be out of date: the next login asks the server again.
    if (!cached_under.empty()) rt_.auth_cache().forget(cached_under);
    co_return false;
  }
  if (conf::is_admin_database(startup_.database)) co_return co_await console_login();

  // As PostgreSQL, the database is checked after authentication (InitPostgres).
  if (db == nullptr) {
    fail(end_reason::login_refused, "3D000", "database \"" + startup_.database + "\" does not exist");
    co_return false;
  }
  if (rt_.control().disabled(startup_.database)) {
    // DISABLE on the console; PgBouncer's wording.
    spdlog::info("{} refused reason=disabled user={} db={}", name_, startup_.user, startup_.database);
    fail(end_reason::login_refused, "08P01", "database \"" + startup_.database + "\" is disabled");
    co_return false;
  }
  cluster_ = rt_.clusters().get(*cfg, *db, startup_.database, startup_.user, fetched);
  cluster_->clients().fetch_add(1, std::memory_order_relaxed);  // given back in finish()
  dbstats_ = &cluster_->stats();
  if (scram_keys_) cluster_->remember_scram_keys(*scram_keys_);
  transaction_mode_ = cluster_->transaction_mode();
  pipeline_depth_ = static_cast<std::uint8_t>(cluster_->pipeline_depth());
  if (!take_routing_options()) co_return false;
  rewrite_statements_ = transaction_mode_ && cfg->max_prepared_statements > 0;
  max_message_size_ = static_cast<std::size_t>(std::min<std::uint64_t>(cfg->max_message_size, protocol::default_max_message_size));

  // ParameterStatus for the client: those of the pool's first server, with the client's own
  // values for the parameters it set. A pool that never logged in does so now, which also
  // reports a server that refuses this user before the client is told it is in.
  auto params = cluster_->initial_params();
  if (!params) {
    if (!co_await attach_server(true)) co_return false;
    params = cluster_->initial_params();
    if (!params) params = std::make_shared<parameter_set>(server_->reported);
    if (transaction_mode_) {
      release_server();
    } else {
      settings_due_ = settings_due::sync;  // session pooling keeps it
    }
  }
  view_.assign(std::move(params));
  for (const auto& [k, v] : startup_.reported) view_.set(k, v);
  update_settings_hash();

  auto [pid, secret] = rt_.cancels().add(shared_from_this());
  cancel_pid_ = pid;
  cancel_secret_ = secret;

  std::vector<std::uint8_t> out;
  for (const auto& [k, v] : view_) protocol::append_parameter_status(out, k, v);
  protocol::encode(protocol::backend_key_data{pid, secret}, out);
  protocol::encode_ready_for_query('I', out);
  if (!co_await send_bytes(out)) co_return false;
  if (cfg->log.log_connections) {
    spdlog::info("{} login user={} db={} addr={} pool={} mode={} tls={} application_name={}", name_, log_quoted(startup_.user),
                 log_quoted(startup_.database), peer_, log_quoted(cluster_->name()), transaction_mode_ ? "transaction" : "session",
                 tls_ ? tls_->version() : std::string("off"), log_quoted(startup_.application_name));
  }
  co_return true;
}

awaitable<std::optional<std::string>> client_session::run_auth_query(const conf::config& cfg,
                                                                      const conf::database_config* client_db) {
  const auto place = auth_query_runner(cfg, client_db, startup_.database);
  if (place.db == nullptr) co_return std::nullopt;
  auto c = rt_.clusters().get(cfg, *place.db, place.dbname, place.user, std::nullopt);
  const auto pick = c->choose(router::route_request{router::need::write});
  if (pick.pool == nullptr) {
    spdlog::warn("{} auth_query failed cluster={} status={}", name_, c->name(), router::to_string(pick.status));
    co_return std::nullopt;
  }
  const std::shared_ptr<pool> p = *pick.pool;
  const auto wait = cfg.query_wait_timeout.count() > 0 ? cfg.query_wait_timeout : std::chrono::milliseconds(60000);
  auto r = co_await p->acquire(worker_, id_, clock::now() + wait);
  if (!r.server) {
    spdlog::warn("{} auth_query failed pool={} error=\"{}\"", name_, p->name(),
                 r.timed_out ? std::string("query_wait_timeout") : r.error->message);
    co_return std::nullopt;
  }
  const std::vector<std::string> params{startup_.user};
  auto rows = co_await r.server->query_rows(cfg.auth_query, params, cfg.server_connect_timeout);
  r.server->unnamed_owner = 0;  // the lookup used the unnamed statement
  const bool clean = !rows.error && r.server->transaction_status == 'I';
  p->release(std::move(r.server), clean);
  if (rows.error) {
    spdlog::warn("{} auth_query failed pool={} sqlstate={} error=\"{}\"", name_, p->name(), rows.error->sqlstate,
                 rows.error->message);
    co_return std::nullopt;
  }
  if (rows.rows.empty() || rows.rows[0].size() < 2 || !rows.rows[0][1]) co_return std::nullopt;
  co_return rows.rows[0][1];
}

awaitable<bool> client_session::authenticate(const conf::config& cfg, const conf::user_config* user,
                                              const std::optional<std::string>& fetched_secret) {
  const std::string secret = user != nullptr ? user->password : fetched_secret.value_or(std::string());
  const auto kind = conf::detect_secret_kind(secret);
  const bool known = user != nullptr || fetched_secret.has_value();
  const std::string failed_msg = "password authentication failed for user \"" + startup_.user + "\"";
  auto auth_failed = [&](std::string_view why) {
    rt_.stats().add(counter::logins_failed);
    spdlog::info("{} auth_failed user={} db={} addr={} method={} why=\"{}\" sqlstate=28P01", name_, log_quoted(startup_.user),
                 log_quoted(startup_.database), peer_, conf::to_string(cfg.auth_type), why);
    fail(end_reason::auth_failed, "28P01", failed_msg);
  };
  auto send_ok = [&]() -> awaitable<bool> {
    std::vector<std::uint8_t> out;
    protocol::encode(protocol::authentication_ok{}, out);
    co_return co_await send_bytes(out);
  };
  // Reads the client's 'p' answer; false (session ended) on EOF or another message type.
  auto read_password = [&]() -> awaitable<std::optional<login_message>> {
    auto m = co_await read_login_message(false);
    if (!m) co_return std::nullopt;
    if (m->tag != 'p') {
      fail(end_reason::client_protocol_error, "08P01",
           "expected password response, got message type " + std::to_string(static_cast<int>(m->tag)));
      co_return std::nullopt;
    }
    co_return m;
  };

  if (cfg.auth_type == conf::auth_type::trust) co_return co_await send_ok();

  // md5 in the config with a SCRAM verifier stored: PostgreSQL then uses SCRAM, so do we.
  const bool use_md5 = cfg.auth_type == conf::auth_type::md5 && kind != conf::secret_kind::scram_sha_256;
  if (use_md5) {
    protocol::authentication_md5_password req;
    RAND_bytes(req.salt.data(), static_cast<int>(req.salt.size()));
    std::vector<std::uint8_t> out;
    protocol::encode(req, out);
    if (!co_await send_bytes(out)) co_return false;
    auto m = co_await read_password();
    if (!m) co_return false;
    std::string_view response = as_text(m->body);
    if (!response.empty() && response.back() == '\0') response.remove_suffix(1);
    if (!known || (kind != conf::secret_kind::plaintext && kind != conf::secret_kind::md5)) {
      auth_failed(known ? "no usable password" : "unknown user");
      co_return false;
    }
    std::string stored = secret;
    if (kind == conf::secret_kind::plaintext) {
      auto h = protocol::md5_password_hash(startup_.user, secret);
      if (!h) {
        auth_failed("md5 unavailable");
        co_return false;
      }
      stored = *h;
    }
    if (!protocol::md5_verify_response(stored, req.salt, response)) {
      auth_failed("wrong password");
      co_return false;
    }
    co_return co_await send_ok();
  }

  // SCRAM-SHA-256. https://www.postgresql.org/docs/15/sasl-authentication.html
  // Over TLS, SCRAM-SHA-256-PLUS is offered first, bound to pgsluice's certificate.
  auto options = [&] {
    protocol::scram_server_options o;
    o.channel_binding = channel_binding();
    return o;
  };
  boost::system::result<protocol::scram_server> server = boost::system::error_code(errc::auth_failed);
  bool mock = false;
  if (known && kind == conf::secret_kind::scram_sha_256) {
    server = protocol::scram_server::from_verifier(secret, options());
  } else if (known && kind == conf::secret_kind::plaintext) {
    // Hi() once per (user, password), not per login: the verifier is remembered as PostgreSQL
    // keeps one in pg_authid. The client's proof is checked against it all the same.
    auto v = rt_.scram_cache().verifier_for(startup_.user, secret);
    if (v) {
      server = protocol::scram_server::from_verifier(*v, options());
    } else {
      server = v.error();
    }
  } else {
    mock = true;
    server = protocol::scram_server::mock(startup_.user, mock_secret(), options());
  }
  if (!server) {
    spdlog::warn("{} scram setup failed user={} error=\"{}\"", name_, startup_.user, server.error().message());
    mock = true;
    server = protocol::scram_server::mock(startup_.user, mock_secret(), options());
    if (!server) {
      auth_failed("scram setup failed");
      co_return false;
    }
  }
  {
    std::vector<std::uint8_t> out;
    protocol::encode(protocol::authentication_sasl{server->mechanisms()}, out);
    if (!co_await send_bytes(out)) co_return false;
  }
  auto m = co_await read_password();
  if (!m) co_return false;
  auto frame_of = [](const login_message& lm) {
    protocol::frame fr;
    fr.kind = protocol::frame_kind::regular;
    fr.tag = lm.tag;
    fr.size = lm.size;
    fr.body = lm.body;
    return fr;
  };
  auto initial = protocol::decode_sasl_initial_response(frame_of(*m));
  if (!initial || !initial->data) {
    fail(end_reason::client_protocol_error, "08P01", "malformed SCRAM message");
    co_return false;
  }
  auto first = server->on_client_first(initial->mechanism, as_text(*initial->data));
  if (!first) {
    if (first.error() == errc::unsupported_mechanism) {
      fail(end_reason::client_protocol_error, "08P01", "client selected an invalid SASL authentication mechanism");
    } else if (first.error() == errc::channel_binding_error) {
      // PostgreSQL's wording (auth-scram.c, read_client_first_message).
      fail(end_reason::client_protocol_error, "08P01", "SCRAM channel binding negotiation error");
    } else {
      fail(end_reason::client_protocol_error, "08P01", "malformed SCRAM message");
    }
    co_return false;
  }
  {
    std::vector<std::uint8_t> out;
    protocol::encode(protocol::authentication_sasl_continue{as_bytes(*first)}, out);
    if (!co_await send_bytes(out)) co_return false;
  }
  m = co_await read_password();
  if (!m) co_return false;
  auto resp = protocol::decode_sasl_response(frame_of(*m));
  if (!resp) {
    fail(end_reason::client_protocol_error, "08P01", "malformed SCRAM message");
    co_return false;
  }
  auto final_msg = server->on_client_final(as_text(resp->data));
  if (!final_msg) {
    if (final_msg.error() == errc::malformed_sasl) {
      fail(end_reason::client_protocol_error, "08P01", "malformed SCRAM message");
    } else if (final_msg.error() == errc::channel_binding_error) {
      spdlog::info("{} auth_failed user={} why=channel_binding_mismatch", name_, startup_.user);
      fail(end_reason::client_protocol_error, "08P01", "SCRAM channel binding check failed");
    } else {
      auth_failed(mock ? (known ? "no usable password" : "unknown user") : "wrong password");
    }
    co_return false;
  }
  if (mock) {
    auth_failed("unknown user");
    co_return false;
  }
  if (kind == conf::secret_kind::scram_sha_256) scram_keys_ = server->recovered_keys();
  std::vector<std::uint8_t> out;
  protocol::encode(protocol::authentication_sasl_final{as_bytes(*final_msg)}, out);
  protocol::encode(protocol::authentication_ok{}, out);
  co_return co_await send_bytes(out);
}

awaitable<void> client_session::forward_cancel(std::int32_t pid, std::int32_t secret) {
  auto target_session = rt_.cancels().find(pid, secret);
  if (!target_session) {
    spdlog::info("{} cancel_request unknown_key", name_);
    co_return;
  }
  // What the lane of a pipelined statement decides itself (lanes.hpp): when it may be sent.
  if (target_session->cancel_in_lane()) {
    spdlog::info("{} cancel_request for={} pipelined", name_, target_session->name());
    co_return;
  }
  auto target = target_session->current_cancel_target();
  if (!target) {
    spdlog::info("{} cancel_request for={} no_server_attached", name_, target_session->name());
    co_return;
  }
  if (const auto err = co_await send_cancel_request(worker_.io(), target->server, target->pid, target->secret)) {
    spdlog::warn("{} cancel_request for={} connect_failed error=\"{}\"", name_, target_session->name(), *err);
    co_return;
  }
  rt_.stats().add(counter::cancels_forwarded);
  spdlog::info("{} cancel_request for={} backend_pid={} forwarded", name_, target_session->name(), target->pid);
}

}  // namespace pgsluice::proxy

// Client sessions, TLS: answering SSLRequest and GSSENCRequest, the handshake, plaintext refused where TLS is required, channel binding.
//
// https://www.postgresql.org/docs/15/protocol-flow.html#id-1.10.6.7.11 (SSL session encryption);
// the rules on repeated requests and early bytes are PostgreSQL's (postmaster.c, ProcessStartupPacket).
#include <spdlog/spdlog.h>

#include "protocol/codec.hpp"
#include "proxy/client_session.hpp"
#include "proxy/runtime.hpp"
#include "proxy/tls.hpp"

namespace pgsluice::proxy {

awaitable<bool> client_session::answer_encryption_request(bool ssl) {
  // SSL may be asked once and GSS once (a client may try both, in either order); after TLS is
  // on, neither. PostgreSQL then judges the packet as a startup packet of protocol 1234.5679.
  if ((ssl && ssl_done_) || (!ssl && gss_done_)) {
    fail(end_reason::client_protocol_error, "0A000",
         std::string("unsupported frontend protocol 1234.") + (ssl ? "5679" : "5680") +
             ": server supports 3.0 to 3.0");
    co_return false;
  }
  // Bytes behind the request came before any encryption: a client bug or someone injecting
  // them in the middle (CVE-2021-23214). PostgreSQL refuses them; so do we, before answering.
  if (!cbuf_.empty()) {
    spdlog::info("{} protocol_violation unencrypted_data_after_{}_request bytes={}", name_, ssl ? "ssl" : "gssenc",
                 cbuf_.size());
    final_message_.clear();
    protocol::encode_error_response(
        "FATAL", "08P01",
        ssl ? "received unencrypted data after SSL request" : "received unencrypted data after GSSAPI encryption request",
        "This could be either a client-software bug or evidence of an attempted man-in-the-middle attack.", {},
        final_message_);
    end(end_reason::client_protocol_error);
    co_return false;
  }
  const bool use_tls = ssl && tls_ctx_ && tls_ctx_->client_ctx() != nullptr;
  const std::vector<std::uint8_t> answer{static_cast<std::uint8_t>(use_tls ? 'S' : 'N')};  // GSS encryption: never
  if (!co_await send_bytes(answer)) co_return false;
  if (!use_tls) {
    (ssl ? ssl_done_ : gss_done_) = true;
    co_return true;
  }
  ssl_done_ = gss_done_ = true;
  auto channel = tls_channel::accepting(tls_ctx_->client_ctx(), socket_);
  if (!channel) {
    spdlog::warn("{} tls_setup_failed", name_);
    end(end_reason::client_protocol_error);
    co_return false;
  }
  // A client that gets 'S' and then says nothing holds a descriptor: the handshake has its own bound.
  watchdog wd(socket_.get_executor(), tls_ctx_->handshake_timeout(), [this] {
    boost::system::error_code ignored;
    socket_.cancel(ignored);
  });
  const auto ec = co_await tls_handshake(socket_, *channel);
  if (ec || machine_.ending()) {
    spdlog::info("{} tls_handshake_failed error=\"{}\"", name_,
                 wd.fired() ? std::string("client_tls_handshake_timeout") : channel->describe(ec));
    end(end_reason::client_protocol_error);  // it does not speak TLS with us: nothing more to say
    co_return false;
  }
  tls_ = std::move(channel);
  spdlog::debug("{} tls version={} cipher={}", name_, tls_->version(), tls_->cipher());
  co_return true;
}

bool client_session::tls_allows_login() {
  const conf::tls_mode mode = tls_ctx_ ? tls_ctx_->client_mode() : conf::tls_mode::disable;
  if (!tls_ && tls_required(mode)) {
    // What PostgreSQL says when only hostssl lines match (hba.c, "no pg_hba.conf entry").
    boost::system::error_code ec;
    const auto peer = socket_.remote_endpoint(ec);
    const std::string host = ec ? std::string("[unknown]") : peer.address().to_string();
    spdlog::info("{} refused reason=tls_required user={} db={}", name_, startup_.user, startup_.database);
    fail(end_reason::login_refused, "28000",
         "no pg_hba.conf entry for host \"" + host + "\", user \"" + startup_.user + "\", database \"" +
             startup_.database + "\", no encryption");
    return false;
  }
  if (tls_ && mode == conf::tls_mode::verify_full) {
    // As PostgreSQL's clientcert=verify-full: the certificate is that user's.
    const std::string cn = tls_->peer_common_name();
    if (cn != startup_.user) {
      rt_.stats().add(counter::logins_failed);
      spdlog::info("{} auth_failed user={} db={} why=certificate_cn cn=\"{}\"", name_, startup_.user, startup_.database, cn);
      fail(end_reason::auth_failed, "28000", "certificate authentication failed for user \"" + startup_.user + "\"");
      return false;
    }
  }
  return true;
}

std::optional<protocol::scram_channel_binding> client_session::channel_binding() const {
  if (!tls_ || tls_ctx_->client_end_point().empty()) return std::nullopt;
  protocol::scram_channel_binding cb;
  cb.data = tls_ctx_->client_end_point();
  return cb;
}

int client_session::write_client_tls_now(gather_list& g) {
  boost::system::error_code ec;
  const std::size_t sent = tls_send_now(*tls_, g, tls_scratch_, ec);
  if (tls_scratch_.capacity() > 256 * 1024) std::vector<std::uint8_t>().swap(tls_scratch_);
  if (ec) return -1;
  if (sent == g.bytes()) return 1;
  client_writing_ = true;
  client_flushing_.clear();
  g.copy_tail(sent, client_flushing_);
  return 0;
}

}  // namespace pgsluice::proxy

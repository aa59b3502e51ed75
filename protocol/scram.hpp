// SCRAM-SHA-256 (RFC 5802, RFC 7677) in both roles, as PostgreSQL speaks it, plus its stored verifiers.
//
// PostgreSQL flavour (https://www.postgresql.org/docs/15/sasl-authentication.html): the user name
// in client-first-message is sent empty ("n=") and ignored, the user being the one of the startup
// packet; passwords go through SASLprep (protocol/sasl_prep.hpp); the server stores
// "SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>" in pg_authid.rolpassword.
//
// Both roles are plain state machines: they consume the text of a SASL message (the payload of
// SASLInitialResponse / SASLResponse / AuthenticationSASLContinue / AuthenticationSASLFinal) and
// return the text to send next, or an error. They never throw on input and do no I/O. Randomness
// (nonces, salts) comes from RAND_bytes unless the options inject fixed values, which tests do.
//
// Channel binding: the gs2 header may be "n,," (client does not support it), "y,," (client
// supports it but thinks the server does not) or "p=tls-server-end-point,," (SCRAM-SHA-256-PLUS).
// Both roles take the binding data (the hash of the server certificate, RFC 5929 section 4) from
// the caller, which owns the TLS connection. A server given none offers only SCRAM-SHA-256 and
// refuses SCRAM-SHA-256-PLUS (errc::unsupported_mechanism) and a "p" header
// (errc::channel_binding_error); a client given none never sends "p".
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <boost/system/result.hpp>

#include "protocol/errc.hpp"

namespace pgsluice::protocol {

inline constexpr std::string_view scram_sha_256_name = "SCRAM-SHA-256";
inline constexpr std::string_view scram_sha_256_plus_name = "SCRAM-SHA-256-PLUS";
inline constexpr std::string_view tls_server_end_point = "tls-server-end-point";

// PostgreSQL's defaults (src/include/common/scram-common.h).
inline constexpr std::uint32_t scram_default_iterations = 4096;
inline constexpr std::size_t scram_default_salt_length = 16;
inline constexpr std::size_t scram_raw_nonce_length = 18;  // base64: 24 printable characters
// Highest iteration count a client accepts from a server by default: Hi() is linear in it, and a
// hostile or broken server must not make the proxy spin for minutes (10 million is a few seconds).
inline constexpr std::uint32_t scram_default_max_iterations = 10'000'000;

using scram_key = std::array<std::uint8_t, 32>;

class scram_key_cache;  // protocol/scram_cache.hpp

// ---------------------------------------------------------------------------------------------
// Stored verifiers ("SCRAM secrets" in PostgreSQL's sources).

struct scram_verifier {
  std::uint32_t iterations = 0;
  std::vector<std::uint8_t> salt;
  scram_key stored_key{};
  scram_key server_key{};
  bool operator==(const scram_verifier&) const = default;
};

// Parses "SCRAM-SHA-256$<iterations>:<base64 salt>$<base64 StoredKey>:<base64 ServerKey>", the
// form PostgreSQL stores and accepts in CREATE ROLE ... PASSWORD. Iterations must be a decimal
// number from 1 to 2147483647, the salt non-empty base64 and both keys base64 of 32 bytes.
// errc::invalid_verifier otherwise.
boost::system::result<scram_verifier> parse_scram_verifier(std::string_view text);

// The text form of a verifier, as parse_scram_verifier reads it and PostgreSQL stores it.
std::string to_string(const scram_verifier& v);

// The verifier PostgreSQL would store for `password` with this salt and iteration count
// (password SASLprep'ed first). Errors: those of sasl_prep_password, errc::invalid_verifier for an
// empty salt or zero iterations, errc::crypto_failure.
boost::system::result<scram_verifier> make_scram_verifier(std::string_view password, std::span<const std::uint8_t> salt,
                                                          std::uint32_t iterations = scram_default_iterations);

// ClientKey and ServerKey of an already SASLprep'ed password (RFC 5802 section 3): Hi(), the
// costly part of SCRAM, then two HMACs. False when the crypto library fails.
bool derive_scram_keys(std::string_view prepared_password, std::span<const std::uint8_t> salt, std::uint32_t iterations,
                       scram_key& client_key, scram_key& server_key) noexcept;

// Same with a fresh random 16-byte salt, as text: what `CREATE ROLE ... PASSWORD 'pw'` stores.
boost::system::result<std::string> build_scram_verifier(std::string_view password,
                                                        std::uint32_t iterations = scram_default_iterations);

// ---------------------------------------------------------------------------------------------
// Shared pieces.

// Channel binding data of the TLS connection the exchange runs on.
struct scram_channel_binding {
  std::string type{tls_server_end_point};  // cb-name of the gs2 header
  std::vector<std::uint8_t> data;          // for tls-server-end-point: hash of the server's certificate
};

// The keys that let a client authenticate without the password (RFC 5802 section 3), with the
// salt and iteration count of the verifier they belong to.
struct scram_client_keys {
  scram_key client_key{};
  scram_key server_key{};
  std::vector<std::uint8_t> salt;  // empty: unknown, not checked against the server's
  std::uint32_t iterations = 0;    // 0: unknown, not checked against the server's
};

// ---------------------------------------------------------------------------------------------
// Client role: pgsluice authenticating to a PostgreSQL server.

struct scram_client_options {
  // gs2 header choice when not binding: 'n' (default) or 'y' (we could bind, e.g. over TLS, but
  // the server did not offer SCRAM-SHA-256-PLUS). Ignored when channel_binding is set.
  char cbind_flag = 'n';
  // Set: bind to the channel ("p=<type>,,") and use SCRAM-SHA-256-PLUS.
  std::optional<scram_channel_binding> channel_binding;
  // Client nonce; empty: 18 random bytes in base64 (as libpq does). Must be printable ASCII
  // without ','.
  std::string nonce;
  // User name for "n=". PostgreSQL ignores it and libpq sends it empty; other SCRAM peers (and
  // RFC 7677's example) use it. '=' and ',' are escaped as RFC 5802 section 5.1 requires.
  std::string user;
  // Highest iteration count accepted in server-first-message.
  std::uint32_t max_iterations = scram_default_max_iterations;
  // from_password: where the keys for the server's salt are looked up and remembered (null:
  // derived every time). Must outlive the exchange.
  scram_key_cache* key_cache = nullptr;
};

class scram_client {
 public:
  enum class state { initial, awaiting_server_first, awaiting_server_final, done, failed };

  // Password authentication (SASLprep'ed). Errors: those of sasl_prep_password, errc::malformed_sasl
  // for an unusable injected nonce, errc::channel_binding_error for bad channel binding options,
  // errc::crypto_failure.
  static boost::system::result<scram_client> from_password(std::string_view password,
                                                           scram_client_options options = {});
  // Pass-through authentication with keys recovered from a client's own exchange
  // (scram_server::recovered_keys) or cached by an earlier exchange (keys()). When the keys carry
  // a salt and iteration count, a server announcing others fails with errc::scram_secret_mismatch.
  static boost::system::result<scram_client> from_keys(const scram_client_keys& keys,
                                                       scram_client_options options = {});

  scram_client(const scram_client&) = default;
  scram_client(scram_client&&) = default;
  scram_client& operator=(const scram_client&) = default;
  scram_client& operator=(scram_client&&) = default;
  ~scram_client();

  // Mechanism to name in SASLInitialResponse.
  std::string_view mechanism() const noexcept;
  state current_state() const noexcept { return state_; }

  // client-first-message, e.g. "n,,n=,r=<nonce>". The first call moves initial ->
  // awaiting_server_first; later calls return the same text and change nothing.
  std::string client_first();
  // server-first-message ("r=...,s=...,i=...") in, client-final-message out.
  // Errors: errc::malformed_sasl (syntax, base64, iteration count, unsupported mandatory
  // extension "m="), errc::nonce_mismatch, errc::scram_secret_mismatch, errc::auth_out_of_order,
  // errc::crypto_failure.
  boost::system::result<std::string> on_server_first(std::string_view message);
  // server-final-message ("v=..."): verifies the server's signature in constant time.
  // Errors: errc::bad_server_signature, errc::auth_failed (the server sent "e=..."),
  // errc::malformed_sasl, errc::auth_out_of_order.
  boost::system::result<void> on_server_final(std::string_view message);

  // After on_server_first: the keys derived for this server's salt and iteration count, so later
  // connections to the same server can skip the costly Hi() with from_keys().
  std::optional<scram_client_keys> keys() const;

 private:
  scram_client() = default;
  boost::system::result<void> init(scram_client_options&& options);
  boost::system::result<void> fail(errc e);

  state state_ = state::initial;
  std::string password_;  // SASLprep'ed; empty with from_keys
  bool have_keys_ = false;
  scram_client_keys keys_;
  std::string gs2_header_;
  std::vector<std::uint8_t> cbind_input_;  // gs2 header + binding data, the content of "c="
  bool plus_ = false;
  std::uint32_t max_iterations_ = scram_default_max_iterations;
  scram_key_cache* key_cache_ = nullptr;
  std::string nonce_;
  std::string client_first_bare_;
  scram_key expected_server_signature_{};
};

// ---------------------------------------------------------------------------------------------
// Server role: pgsluice verifying a client.

struct scram_server_options {
  // Set when the client connection uses TLS: SCRAM-SHA-256-PLUS is offered, "p" accepted, and a
  // client sending "y" (it could bind but believes we cannot) is refused as a downgrade attack.
  std::optional<scram_channel_binding> channel_binding;
  // Server part of the nonce; empty: 18 random bytes in base64, as PostgreSQL does.
  std::string nonce;
  // from_password only: salt (empty: 16 random bytes) and iteration count.
  std::vector<std::uint8_t> salt;
  std::uint32_t iterations = scram_default_iterations;
};

class scram_server {
 public:
  enum class state { awaiting_client_first, awaiting_client_final, done, failed };

  // From a stored verifier (text or parsed). Errors: errc::invalid_verifier, errc::malformed_sasl
  // for an unusable injected nonce, errc::crypto_failure.
  static boost::system::result<scram_server> from_verifier(std::string_view verifier, scram_server_options options = {});
  static boost::system::result<scram_server> from_verifier(const scram_verifier& verifier,
                                                           scram_server_options options = {});
  // From a plaintext password: a verifier is built with options.salt / options.iterations.
  static boost::system::result<scram_server> from_password(std::string_view password, scram_server_options options = {});
  // An exchange doomed to fail, for a user that does not exist or has no SCRAM verifier, that
  // looks like a real one to the client: the salt is SHA-256(user || mock_secret) cut to 16
  // bytes, stable per user, as PostgreSQL's scram_mock_salt() does. on_client_final always
  // fails with errc::auth_failed once the message is well formed.
  static boost::system::result<scram_server> mock(std::string_view user, std::span<const std::uint8_t> mock_secret,
                                                  scram_server_options options = {});

  scram_server(const scram_server&) = default;
  scram_server(scram_server&&) = default;
  scram_server& operator=(const scram_server&) = default;
  scram_server& operator=(scram_server&&) = default;
  ~scram_server();

  // Mechanisms for AuthenticationSASL, preferred first: PLUS only with channel binding data.
  std::vector<std::string_view> mechanisms() const;
  state current_state() const noexcept { return state_; }

  // client-first-message in (with the mechanism the client chose in SASLInitialResponse),
  // server-first-message out. Errors: errc::unsupported_mechanism, errc::channel_binding_error
  // (gs2 flag inconsistent with the mechanism or with what we offered), errc::malformed_sasl
  // (syntax, authorization identity "a=", mandatory extension "m=", non-printable nonce),
  // errc::auth_out_of_order.
  boost::system::result<std::string> on_client_first(std::string_view mechanism, std::string_view message);
  boost::system::result<std::string> on_client_first(std::string_view message) {
    return on_client_first(scram_sha_256_name, message);
  }
  // client-final-message in, server-final-message ("v=...") out once the proof is verified (in
  // constant time). Errors: errc::auth_failed (wrong password, mock exchange),
  // errc::nonce_mismatch, errc::channel_binding_error, errc::malformed_sasl,
  // errc::auth_out_of_order.
  boost::system::result<std::string> on_client_final(std::string_view message);

  // After a successful exchange: ClientKey = ClientProof XOR ClientSignature, with this
  // verifier's ServerKey, salt and iterations; what scram_client::from_keys needs to log in to
  // servers holding the same verifier.
  std::optional<scram_client_keys> recovered_keys() const;

 private:
  scram_server() = default;
  boost::system::result<void> init(const scram_verifier& verifier, scram_server_options&& options);
  boost::system::result<std::string> fail(errc e);

  state state_ = state::awaiting_client_first;
  scram_verifier verifier_;
  bool doomed_ = false;
  std::optional<scram_channel_binding> channel_binding_;
  std::string server_nonce_;
  std::string client_nonce_;
  std::vector<std::uint8_t> expected_cbind_input_;  // gs2 header + binding data, the content of "c="
  std::string client_first_bare_;
  std::string server_first_;
  bool have_recovered_key_ = false;
  scram_key recovered_client_key_{};
};

}  // namespace pgsluice::protocol

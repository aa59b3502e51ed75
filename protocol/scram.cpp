// SCRAM-SHA-256 client and server state machines and verifier handling (see protocol/scram.hpp).
//
// Message syntax: RFC 5802 section 7; PostgreSQL's checks: src/backend/libpq/auth-scram.c (server)
// and src/interfaces/libpq/fe-auth-scram.c (client), which we follow where they are stricter than
// the RFC, and extend where they are not (e.g. "c=" must repeat the client's exact gs2 header).
#include "protocol/scram.hpp"

#include <algorithm>
#include <charconv>
#include <climits>

#include "protocol/crypto.hpp"
#include "protocol/sasl_prep.hpp"
#include "protocol/scram_cache.hpp"

namespace pgsluice::protocol {
namespace {

using boost::system::result;
using crypto::as_bytes;

constexpr std::string_view verifier_prefix = "SCRAM-SHA-256$";
constexpr std::uint32_t verifier_max_iterations = INT_MAX;  // PostgreSQL reads it into an int

// RFC 5802 "printable": %x21-2B / %x2D-7E, i.e. visible ASCII without ','.
bool is_printable(std::string_view s) noexcept {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x21 && c <= 0x7e && c != ','; });
}

bool is_alpha(char c) noexcept { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// cb-name = 1*(ALPHA / DIGIT / "." / "-")
bool is_cb_name(std::string_view s) noexcept {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return is_alpha(c) || (c >= '0' && c <= '9') || c == '.' || c == '-';
  });
}

// A decimal count with no sign, spaces or other decoration, from 1 to max.
std::optional<std::uint32_t> parse_count(std::string_view s, std::uint32_t max) noexcept {
  if (s.empty() || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; })) return std::nullopt;
  std::uint64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || end != s.data() + s.size() || v == 0 || v > max) return std::nullopt;
  return static_cast<std::uint32_t>(v);
}

std::optional<scram_key> decode_key(std::string_view text) {
  auto bytes = crypto::base64_decode(text);
  if (!bytes || bytes->size() != scram_key{}.size()) return std::nullopt;
  scram_key k{};
  std::copy(bytes->begin(), bytes->end(), k.begin());
  return k;
}

scram_key xor_keys(const scram_key& a, const scram_key& b) noexcept {
  scram_key out{};
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<std::uint8_t>(a[i] ^ b[i]);
  return out;
}

std::vector<std::uint8_t> to_bytes(std::string_view s) { return {s.begin(), s.end()}; }

// 18 random bytes in base64, like PostgreSQL's nonces; or the injected one, checked.
result<std::string> make_nonce(std::string injected) {
  if (!injected.empty()) {
    if (!is_printable(injected)) return errc::malformed_sasl;
    return injected;
  }
  std::array<std::uint8_t, scram_raw_nonce_length> raw{};
  if (!crypto::random_bytes(raw)) return errc::crypto_failure;
  return crypto::base64_encode(raw);
}

// AuthMessage = client-first-message-bare "," server-first-message "," client-final-message-without-proof
std::string auth_message(std::string_view client_first_bare, std::string_view server_first,
                         std::string_view client_final_without_proof) {
  std::string m;
  m.reserve(client_first_bare.size() + server_first.size() + client_final_without_proof.size() + 2);
  m.append(client_first_bare).append(",").append(server_first).append(",").append(client_final_without_proof);
  return m;
}

// Reads the comma-separated "a=value" attributes of a SCRAM message, front to back. A malformed
// attribute (no single-letter name and '=', a trailing ',') ends the reading for good.
class attribute_reader {
 public:
  struct attribute {
    char name = 0;
    std::string_view value;
    std::size_t offset = 0;  // of the name, within the whole text
  };

  explicit attribute_reader(std::string_view text) noexcept : text_(text), rest_(text) {}

  // The next attribute; nullopt at the end of the text or when malformed.
  std::optional<attribute> next() noexcept {
    if (bad_ || rest_.empty()) return std::nullopt;
    if (rest_.size() < 2 || !is_alpha(rest_[0]) || rest_[1] != '=') {
      bad_ = true;
      return std::nullopt;
    }
    attribute a;
    a.name = rest_[0];
    a.offset = text_.size() - rest_.size();
    const std::size_t comma = rest_.find(',');
    a.value = rest_.substr(2, comma == std::string_view::npos ? std::string_view::npos : comma - 2);
    if (comma == std::string_view::npos) {
      rest_ = {};
    } else {
      rest_.remove_prefix(comma + 1);
      if (rest_.empty()) {  // "x=v," with nothing after the comma
        bad_ = true;
        return std::nullopt;
      }
    }
    return a;
  }

  // The next attribute if it is `name`, else nullopt and the reader is marked malformed.
  std::optional<std::string_view> expect(char name) noexcept {
    auto a = next();
    if (!a || a->name != name) {
      bad_ = true;
      return std::nullopt;
    }
    return a->value;
  }

  // Skips optional extensions (RFC 5802 "extensions"); true when the text ends well.
  bool skip_extensions() noexcept {
    while (next()) {
    }
    return !bad_;
  }

  bool malformed() const noexcept { return bad_; }

 private:
  std::string_view text_;
  std::string_view rest_;
  bool bad_ = false;
};

bool has_nul(std::string_view s) noexcept { return s.find('\0') != std::string_view::npos; }

}  // namespace

// ---------------------------------------------------------------------------------------------
// Verifiers.

result<scram_verifier> parse_scram_verifier(std::string_view text) {
  if (!text.starts_with(verifier_prefix)) return errc::invalid_verifier;
  text.remove_prefix(verifier_prefix.size());
  // "<iterations>:<salt>$<StoredKey>:<ServerKey>": base64 never contains ':' or '$'.
  const std::size_t dollar = text.find('$');
  if (dollar == std::string_view::npos) return errc::invalid_verifier;
  const std::string_view params = text.substr(0, dollar);
  const std::string_view keys = text.substr(dollar + 1);
  const std::size_t c1 = params.find(':');
  const std::size_t c2 = keys.find(':');
  if (c1 == std::string_view::npos || c2 == std::string_view::npos) return errc::invalid_verifier;
  const std::string_view iterations = params.substr(0, c1), salt = params.substr(c1 + 1);
  const std::string_view stored = keys.substr(0, c2), server = keys.substr(c2 + 1);
  // Anything else containing a separator is an extra field (base64 would refuse it anyway).
  if (salt.find_first_of(":$") != std::string_view::npos || server.find_first_of(":$") != std::string_view::npos) {
    return errc::invalid_verifier;
  }
  scram_verifier v;
  const auto it = parse_count(iterations, verifier_max_iterations);
  auto salt_bytes = crypto::base64_decode(salt);
  const auto stored_key = decode_key(stored);
  const auto server_key = decode_key(server);
  if (!it || !salt_bytes || salt_bytes->empty() || !stored_key || !server_key) return errc::invalid_verifier;
  v.iterations = *it;
  v.salt = std::move(*salt_bytes);
  v.stored_key = *stored_key;
  v.server_key = *server_key;
  return v;
}

std::string to_string(const scram_verifier& v) {
  std::string s(verifier_prefix);
  s += std::to_string(v.iterations);
  s += ':';
  s += crypto::base64_encode(v.salt);
  s += '$';
  s += crypto::base64_encode(v.stored_key);
  s += ':';
  s += crypto::base64_encode(v.server_key);
  return s;
}

bool derive_scram_keys(std::string_view prepared_password, std::span<const std::uint8_t> salt, std::uint32_t iterations,
                       scram_key& client_key, scram_key& server_key) noexcept {
  scram_key salted{};
  const bool ok = crypto::pbkdf2_sha256(as_bytes(prepared_password), salt, iterations, salted) &&
                  crypto::hmac_sha256(salted, as_bytes("Client Key"), client_key) &&
                  crypto::hmac_sha256(salted, as_bytes("Server Key"), server_key);
  crypto::secure_clear(salted.data(), salted.size());
  return ok;
}

result<scram_verifier> make_scram_verifier(std::string_view password, std::span<const std::uint8_t> salt,
                                           std::uint32_t iterations) {
  if (salt.empty() || iterations == 0 || iterations > verifier_max_iterations) return errc::invalid_verifier;
  auto prepared = sasl_prep_password(password);
  if (!prepared) return prepared.error();
  scram_verifier v;
  v.iterations = iterations;
  v.salt.assign(salt.begin(), salt.end());
  scram_key client_key{};
  const bool ok = derive_scram_keys(*prepared, salt, iterations, client_key, v.server_key) &&
                  crypto::sha256(client_key, v.stored_key);
  crypto::secure_clear(client_key.data(), client_key.size());
  crypto::secure_clear(*prepared);
  if (!ok) return errc::crypto_failure;
  return v;
}

result<std::string> build_scram_verifier(std::string_view password, std::uint32_t iterations) {
  std::array<std::uint8_t, scram_default_salt_length> salt{};
  if (!crypto::random_bytes(salt)) return errc::crypto_failure;
  auto v = make_scram_verifier(password, salt, iterations);
  if (!v) return v.error();
  return to_string(*v);
}

// ---------------------------------------------------------------------------------------------
// Client role.

scram_client::~scram_client() {
  crypto::secure_clear(password_);
  crypto::secure_clear(keys_.client_key.data(), keys_.client_key.size());
  crypto::secure_clear(keys_.server_key.data(), keys_.server_key.size());
}

result<scram_client> scram_client::from_password(std::string_view password, scram_client_options options) {
  auto prepared = sasl_prep_password(password);
  if (!prepared) return prepared.error();
  scram_client c;
  c.password_ = std::move(*prepared);
  if (auto r = c.init(std::move(options)); !r) return r.error();
  return c;
}

result<scram_client> scram_client::from_keys(const scram_client_keys& keys, scram_client_options options) {
  scram_client c;
  c.keys_ = keys;
  c.have_keys_ = true;
  if (auto r = c.init(std::move(options)); !r) return r.error();
  return c;
}

result<void> scram_client::init(scram_client_options&& options) {
  if (options.channel_binding) {
    // "p=<cb-name>,,": SCRAM-SHA-256-PLUS. "c=" will carry the header followed by the binding data.
    const auto& cb = *options.channel_binding;
    if (!is_cb_name(cb.type) || cb.data.empty()) return errc::channel_binding_error;
    gs2_header_ = "p=" + cb.type + ",,";
    cbind_input_ = to_bytes(gs2_header_);
    cbind_input_.insert(cbind_input_.end(), cb.data.begin(), cb.data.end());
    plus_ = true;
  } else {
    if (options.cbind_flag != 'n' && options.cbind_flag != 'y') return errc::channel_binding_error;
    gs2_header_ = std::string(1, options.cbind_flag) + ",,";
    cbind_input_ = to_bytes(gs2_header_);
  }
  if (options.max_iterations == 0) return errc::malformed_sasl;
  max_iterations_ = options.max_iterations;
  key_cache_ = options.key_cache;
  auto nonce = make_nonce(std::move(options.nonce));
  if (!nonce) return nonce.error();
  nonce_ = std::move(*nonce);
  // PostgreSQL takes the user name from the startup packet and ignores this one; libpq sends it
  // empty (https://www.postgresql.org/docs/15/sasl-authentication.html#SASL-SCRAM-SHA-256).
  std::string user;
  for (const char ch : options.user) {
    if (ch == '=') {
      user += "=3D";
    } else if (ch == ',') {
      user += "=2C";
    } else {
      user += ch;
    }
  }
  client_first_bare_ = "n=" + user + ",r=" + nonce_;
  return {};
}

result<void> scram_client::fail(errc e) {
  state_ = state::failed;
  return e;
}

std::string_view scram_client::mechanism() const noexcept { return plus_ ? scram_sha_256_plus_name : scram_sha_256_name; }

std::string scram_client::client_first() {
  if (state_ == state::initial) state_ = state::awaiting_server_first;
  return gs2_header_ + client_first_bare_;
}

result<std::string> scram_client::on_server_first(std::string_view message) {
  if (state_ != state::awaiting_server_first) return fail(errc::auth_out_of_order).error();
  if (has_nul(message)) return fail(errc::malformed_sasl).error();

  // server-first-message = [reserved-mext ","] nonce "," salt "," iteration-count ["," extensions]
  attribute_reader in(message);
  const auto first = in.next();
  if (!first) return fail(errc::malformed_sasl).error();
  if (first->name == 'm') return fail(errc::malformed_sasl).error();  // mandatory extension: none supported
  if (first->name != 'r') return fail(errc::malformed_sasl).error();
  const std::string_view nonce = first->value;
  const auto salt_text = in.expect('s');
  const auto iterations_text = in.expect('i');
  if (!salt_text || !iterations_text || !in.skip_extensions()) return fail(errc::malformed_sasl).error();

  // The server must echo our nonce and append a part of its own (RFC 5802 section 5.1).
  if (nonce.size() <= nonce_.size() || !nonce.starts_with(nonce_)) return fail(errc::nonce_mismatch).error();
  if (!is_printable(nonce)) return fail(errc::malformed_sasl).error();
  auto salt = crypto::base64_decode(*salt_text);
  if (!salt || salt->empty()) return fail(errc::malformed_sasl).error();
  const auto iterations = parse_count(*iterations_text, max_iterations_);
  if (!iterations) return fail(errc::malformed_sasl).error();

  if (have_keys_) {
    // Pass-through keys only work with the verifier they came from: say so plainly rather than
    // send a proof the server will refuse with a generic "password authentication failed".
    if ((!keys_.salt.empty() && keys_.salt != *salt) || (keys_.iterations != 0 && keys_.iterations != *iterations)) {
      return fail(errc::scram_secret_mismatch).error();
    }
  } else if (key_cache_ != nullptr) {
    auto k = key_cache_->derive(password_, *salt, *iterations);
    if (!k) return fail(errc::crypto_failure).error();
    keys_.client_key = k->client_key;
    keys_.server_key = k->server_key;
    crypto::secure_clear(&*k, sizeof *k);
  } else if (!derive_scram_keys(password_, *salt, *iterations, keys_.client_key, keys_.server_key)) {
    return fail(errc::crypto_failure).error();
  }
  keys_.salt = std::move(*salt);
  keys_.iterations = *iterations;
  have_keys_ = true;

  std::string final_message = "c=" + crypto::base64_encode(cbind_input_) + ",r=";
  final_message += nonce;
  const std::string auth = auth_message(client_first_bare_, message, final_message);
  scram_key stored_key{}, client_signature{};
  if (!crypto::sha256(keys_.client_key, stored_key) ||
      !crypto::hmac_sha256(stored_key, as_bytes(auth), client_signature) ||
      !crypto::hmac_sha256(keys_.server_key, as_bytes(auth), expected_server_signature_)) {
    return fail(errc::crypto_failure).error();
  }
  const scram_key proof = xor_keys(keys_.client_key, client_signature);
  final_message += ",p=";
  final_message += crypto::base64_encode(proof);
  state_ = state::awaiting_server_final;
  return final_message;
}

result<void> scram_client::on_server_final(std::string_view message) {
  if (state_ != state::awaiting_server_final) return fail(errc::auth_out_of_order);
  if (has_nul(message)) return fail(errc::malformed_sasl);

  // server-final-message = (server-error / verifier) ["," extensions]
  attribute_reader in(message);
  const auto first = in.next();
  if (!first) return fail(errc::malformed_sasl);
  if (first->name == 'e') return fail(errc::auth_failed);  // server-error: it refused our proof
  if (first->name != 'v') return fail(errc::malformed_sasl);
  const auto signature = crypto::base64_decode(first->value);
  if (!signature || signature->size() != expected_server_signature_.size() || !in.skip_extensions()) {
    return fail(errc::malformed_sasl);
  }
  if (!crypto::constant_time_equal(*signature, expected_server_signature_)) return fail(errc::bad_server_signature);
  state_ = state::done;
  return {};
}

std::optional<scram_client_keys> scram_client::keys() const {
  if (!have_keys_ || keys_.iterations == 0) return std::nullopt;
  return keys_;
}

// ---------------------------------------------------------------------------------------------
// Server role.

scram_server::~scram_server() {
  crypto::secure_clear(verifier_.stored_key.data(), verifier_.stored_key.size());
  crypto::secure_clear(verifier_.server_key.data(), verifier_.server_key.size());
  crypto::secure_clear(recovered_client_key_.data(), recovered_client_key_.size());
}

result<scram_server> scram_server::from_verifier(std::string_view verifier, scram_server_options options) {
  auto v = parse_scram_verifier(verifier);
  if (!v) return v.error();
  return from_verifier(*v, std::move(options));
}

result<scram_server> scram_server::from_verifier(const scram_verifier& verifier, scram_server_options options) {
  if (verifier.salt.empty() || verifier.iterations == 0 || verifier.iterations > verifier_max_iterations) {
    return errc::invalid_verifier;
  }
  scram_server s;
  if (auto r = s.init(verifier, std::move(options)); !r) return r.error();
  return s;
}

result<scram_server> scram_server::from_password(std::string_view password, scram_server_options options) {
  std::vector<std::uint8_t> salt = std::move(options.salt);
  if (salt.empty()) {
    salt.resize(scram_default_salt_length);
    if (!crypto::random_bytes(salt)) return errc::crypto_failure;
  }
  auto v = make_scram_verifier(password, salt, options.iterations);
  if (!v) return v.error();
  return from_verifier(*v, std::move(options));
}

result<scram_server> scram_server::mock(std::string_view user, std::span<const std::uint8_t> mock_secret,
                                        scram_server_options options) {
  std::vector<std::uint8_t> input = to_bytes(user);
  input.insert(input.end(), mock_secret.begin(), mock_secret.end());
  scram_key digest{};
  if (!crypto::sha256(input, digest)) return errc::crypto_failure;
  scram_verifier v;
  v.iterations = scram_default_iterations;
  v.salt.assign(digest.begin(), digest.begin() + scram_default_salt_length);
  scram_server s;
  if (auto r = s.init(v, std::move(options)); !r) return r.error();
  s.doomed_ = true;
  return s;
}

result<void> scram_server::init(const scram_verifier& verifier, scram_server_options&& options) {
  if (options.channel_binding && (!is_cb_name(options.channel_binding->type) || options.channel_binding->data.empty())) {
    return errc::channel_binding_error;
  }
  auto nonce = make_nonce(std::move(options.nonce));
  if (!nonce) return nonce.error();
  verifier_ = verifier;
  channel_binding_ = std::move(options.channel_binding);
  server_nonce_ = std::move(*nonce);
  return {};
}

result<std::string> scram_server::fail(errc e) {
  state_ = state::failed;
  return e;
}

std::vector<std::string_view> scram_server::mechanisms() const {
  if (channel_binding_) return {scram_sha_256_plus_name, scram_sha_256_name};
  return {scram_sha_256_name};
}

result<std::string> scram_server::on_client_first(std::string_view mechanism, std::string_view message) {
  if (state_ != state::awaiting_client_first) return fail(errc::auth_out_of_order);
  bool plus = false;
  if (mechanism == scram_sha_256_plus_name && channel_binding_) {
    plus = true;
  } else if (mechanism != scram_sha_256_name) {
    return fail(errc::unsupported_mechanism);
  }
  if (has_nul(message) || message.empty()) return fail(errc::malformed_sasl);

  // gs2-header = gs2-cbind-flag "," [ authzid ] ","
  const std::size_t comma1 = message.find(',');
  if (comma1 == std::string_view::npos) return fail(errc::malformed_sasl);
  const std::string_view flag = message.substr(0, comma1);
  if (flag == "n" || flag == "y") {
    // Choosing the PLUS mechanism without binding is inconsistent. A client that could bind ('y')
    // while we offered PLUS was steered away from it by someone in the middle: refuse, as
    // PostgreSQL does (RFC 5802 section 6).
    if (plus || (flag == "y" && channel_binding_)) return fail(errc::channel_binding_error);
  } else if (flag.starts_with("p=") && is_cb_name(flag.substr(2))) {
    if (!plus || flag.substr(2) != channel_binding_->type) return fail(errc::channel_binding_error);
  } else {
    return fail(errc::malformed_sasl);
  }
  const std::size_t comma2 = message.find(',', comma1 + 1);
  if (comma2 == std::string_view::npos) return fail(errc::malformed_sasl);
  // PostgreSQL does not support an authorization identity ("a=..."): the role is the startup user.
  if (comma2 != comma1 + 1) return fail(errc::malformed_sasl);
  const std::string_view gs2_header = message.substr(0, comma2 + 1);
  const std::string_view bare = message.substr(comma2 + 1);

  // client-first-message-bare = [reserved-mext ","] username "," nonce ["," extensions]
  attribute_reader in(bare);
  const auto first = in.next();
  if (!first || first->name != 'n') return fail(errc::malformed_sasl);  // includes "m=": none supported
  const auto nonce = in.expect('r');
  if (!nonce || !in.skip_extensions() || !is_printable(*nonce)) return fail(errc::malformed_sasl);

  client_nonce_ = *nonce;
  client_first_bare_ = bare;
  expected_cbind_input_ = to_bytes(gs2_header);
  if (plus) {
    expected_cbind_input_.insert(expected_cbind_input_.end(), channel_binding_->data.begin(),
                                 channel_binding_->data.end());
  }
  server_first_ = "r=" + client_nonce_ + server_nonce_ + ",s=" + crypto::base64_encode(verifier_.salt) +
                  ",i=" + std::to_string(verifier_.iterations);
  state_ = state::awaiting_client_final;
  return server_first_;
}

result<std::string> scram_server::on_client_final(std::string_view message) {
  if (state_ != state::awaiting_client_final) return fail(errc::auth_out_of_order);
  if (has_nul(message)) return fail(errc::malformed_sasl);

  // client-final-message = channel-binding "," nonce ["," extensions] "," proof
  attribute_reader in(message);
  const auto cbind = in.expect('c');
  const auto nonce = in.expect('r');
  if (!cbind || !nonce) return fail(errc::malformed_sasl);
  std::optional<attribute_reader::attribute> proof_attr;
  while (auto a = in.next()) {
    if (a->name == 'p') {
      proof_attr = a;
      break;
    }
  }
  if (!proof_attr || in.next() || in.malformed()) return fail(errc::malformed_sasl);  // the proof comes last

  const auto cbind_input = crypto::base64_decode(*cbind);
  if (!cbind_input) return fail(errc::malformed_sasl);
  if (*cbind_input != expected_cbind_input_) return fail(errc::channel_binding_error);
  if (*nonce != client_nonce_ + server_nonce_) return fail(errc::nonce_mismatch);
  const auto proof = decode_key(proof_attr->value);
  if (!proof) return fail(errc::malformed_sasl);

  // ClientKey = ClientProof XOR HMAC(StoredKey, AuthMessage); the proof holds if H(ClientKey) is StoredKey.
  const std::string auth = auth_message(client_first_bare_, server_first_, message.substr(0, proof_attr->offset - 1));
  scram_key client_signature{}, client_key{}, stored_key{}, server_signature{};
  if (!crypto::hmac_sha256(verifier_.stored_key, as_bytes(auth), client_signature)) {
    return fail(errc::crypto_failure);
  }
  client_key = xor_keys(*proof, client_signature);
  if (!crypto::sha256(client_key, stored_key)) return fail(errc::crypto_failure);
  const bool proof_ok = crypto::constant_time_equal(stored_key, verifier_.stored_key);
  if (doomed_ || !proof_ok) {
    crypto::secure_clear(client_key.data(), client_key.size());
    return fail(errc::auth_failed);
  }
  if (!crypto::hmac_sha256(verifier_.server_key, as_bytes(auth), server_signature)) return fail(errc::crypto_failure);
  recovered_client_key_ = client_key;
  crypto::secure_clear(client_key.data(), client_key.size());
  have_recovered_key_ = true;
  state_ = state::done;
  return "v=" + crypto::base64_encode(server_signature);
}

std::optional<scram_client_keys> scram_server::recovered_keys() const {
  if (!have_recovered_key_) return std::nullopt;
  scram_client_keys k;
  k.client_key = recovered_client_key_;
  k.server_key = verifier_.server_key;
  k.salt = verifier_.salt;
  k.iterations = verifier_.iterations;
  return k;
}

}  // namespace pgsluice::protocol

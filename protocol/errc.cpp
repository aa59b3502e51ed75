// The "pgsluice" error category: names and messages for pgsluice::errc values.
#include "protocol/errc.hpp"

#include <string>

namespace pgsluice {
namespace {

class category final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "pgsluice"; }

  std::string message(int ev) const override { return message(ev, nullptr, 0); }

  const char* message(int ev, char*, std::size_t) const noexcept override {
    switch (static_cast<errc>(ev)) {
      case errc::need_more: return "need more bytes";
      case errc::invalid_length: return "invalid message length";
      case errc::message_too_large: return "message too large";
      case errc::startup_too_large: return "startup packet too large";
      case errc::unsupported_protocol_version: return "unsupported frontend protocol version";
      case errc::malformed_message: return "invalid message format";
      case errc::unknown_message_type: return "unknown message type";
      case errc::truncated_field: return "insufficient data left in message";
      case errc::missing_terminator: return "string field without terminating NUL";
      case errc::auth_failed: return "authentication failed";
      case errc::malformed_sasl: return "malformed SASL message";
      case errc::unsupported_mechanism: return "unsupported SASL mechanism";
      case errc::nonce_mismatch: return "SCRAM nonce mismatch";
      case errc::bad_server_signature: return "invalid SCRAM server signature";
      case errc::sasl_prep_unsupported:
        return "SASLprep of this non-ASCII password is not supported (only Latin, Greek and Cyrillic letters)";
      case errc::invalid_verifier: return "invalid stored password verifier";
      case errc::channel_binding_error: return "SCRAM channel binding negotiation error";
      case errc::scram_secret_mismatch: return "server's SCRAM secret does not match the pass-through keys";
      case errc::invalid_password: return "password contains a NUL byte or is longer than 1024 bytes";
      case errc::auth_out_of_order: return "authentication step out of order";
      case errc::crypto_failure: return "cryptographic primitive failed";
    }
    return "unknown pgsluice error";
  }
};

}  // namespace

const boost::system::error_category& pgsluice_category() noexcept {
  static const category instance;
  return instance;
}

}  // namespace pgsluice

// Error codes of pgsluice (category "pgsluice"), usable as boost::system::error_code everywhere.
#pragma once

#include <type_traits>

#include <boost/system/error_category.hpp>
#include <boost/system/error_code.hpp>
#include <boost/system/is_error_code_enum.hpp>

namespace pgsluice {

// A simple list: new values go at the end so existing numbers stay stable in logs.
enum class errc {
  // Framing / decoding (protocol/framing.hpp, protocol/codec.hpp).
  need_more = 1,                 // not a failure: the buffer holds only part of a message
  invalid_length,                // length word below the protocol minimum, negative, or wrong for the kind
  message_too_large,             // tagged message longer than the configured maximum
  startup_too_large,             // startup packet longer than PostgreSQL's 10000-byte limit
  unsupported_protocol_version,  // startup packet for a protocol major version other than 3
  malformed_message,             // body layout does not match the message type
  unknown_message_type,          // tag (or Authentication subtype) not in the protocol
  truncated_field,               // a fixed-size field or a counted array runs past the body
  missing_terminator,            // a String field has no terminating NUL inside the body

  // Authentication (protocol/scram.hpp, protocol/md5.hpp).
  auth_failed,
  malformed_sasl,
  unsupported_mechanism,
  nonce_mismatch,
  bad_server_signature,
  sasl_prep_unsupported,
  invalid_verifier,        // stored SCRAM verifier or MD5 hash does not parse
  channel_binding_error,   // SCRAM gs2 header / channel binding data inconsistent or unsupported
  scram_secret_mismatch,   // pass-through keys were recovered for another salt / iteration count
  invalid_password,        // plaintext password PostgreSQL cannot use (NUL byte, longer than 1024 bytes)
  auth_out_of_order,       // an authentication step called in the wrong state
  crypto_failure,          // an OpenSSL primitive (RAND_bytes, PBKDF2, HMAC, digest) failed
};

// The category named "pgsluice"; its message() describes each errc value.
const boost::system::error_category& pgsluice_category() noexcept;

inline boost::system::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), pgsluice_category()};
}

}  // namespace pgsluice

template <>
struct boost::system::is_error_code_enum<pgsluice::errc> : std::true_type {};

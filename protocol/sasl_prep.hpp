// SASLprep (RFC 4013) of a password, with exactly the outcome PostgreSQL's own SCRAM code gets.
//
// PostgreSQL normalises a password with SASLprep before hashing it (src/common/saslprep.c, used by
// both libpq and the server), and falls back to the raw bytes when the password is not valid
// UTF-8 or contains a character SASLprep prohibits. To derive the same keys as the server, the
// proxy must reproduce that behaviour byte for byte; where it cannot (see below) it says so
// instead of guessing. See https://www.postgresql.org/docs/15/sasl-authentication.html
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <boost/system/result.hpp>

#include "protocol/errc.hpp"

namespace pgsluice::protocol {

// PostgreSQL's MAX_PASSWORD_LENGTH in saslprep.c: longer passwords are refused outright.
inline constexpr std::size_t max_sasl_prep_password_length = 1024;

// The byte string PostgreSQL feeds to SCRAM's Hi() for `password`:
//  - pure ASCII (control characters included): unchanged, as PostgreSQL skips SASLprep for it;
//  - not valid UTF-8: unchanged (PostgreSQL's fallback to the raw bytes);
//  - otherwise RFC 3454 step 1 mapping (non-ASCII spaces -> U+0020, "commonly mapped to nothing"
//    characters removed); if the result is empty or contains a prohibited character (tables
//    C.2.1-C.9, checked before normalisation as PostgreSQL does), the raw bytes, unchanged;
//  - if every remaining character is in the supported repertoire (letters and symbols of Latin-1
//    Supplement, Latin Extended-A, Greek and Cyrillic that NFKC leaves unchanged, checked pairwise
//    against Unicode 14 data), the mapped string: NFKC is the identity on it.
// Errors: errc::invalid_password (a NUL byte, or longer than 1024 bytes: PostgreSQL cannot store
// such a password) and errc::sasl_prep_unsupported (other non-ASCII characters, whose result
// would need the full NFKC and unassigned-code-point tables).
boost::system::result<std::string> sasl_prep_password(std::string_view password);

}  // namespace pgsluice::protocol

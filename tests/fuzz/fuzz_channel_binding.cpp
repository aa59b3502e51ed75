// Fuzz target for the certificate walker behind tls-server-end-point (protocol/channel_binding.hpp): arbitrary bytes must never crash.
//
// Besides "no crash": a signature OID found lies inside the input, and binding data, when
// produced, has the size of the hash the OID prescribes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "protocol/channel_binding.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace pgsluice::protocol;
  const std::span<const std::uint8_t> der(data, size);
  const auto oid = certificate_signature_oid(der);
  if (oid && (oid->data() < data || oid->data() + oid->size() > data + size)) std::abort();
  const auto hash = oid ? end_point_hash_for(*oid) : std::nullopt;
  const auto binding = server_end_point_data(der);
  if (binding.has_value() != hash.has_value()) std::abort();
  if (binding && binding->size() != static_cast<std::size_t>(*hash) / 8) std::abort();
  return 0;
}

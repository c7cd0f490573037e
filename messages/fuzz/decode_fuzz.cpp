// libFuzzer target: every input is decoded as a message of every type.
//
// Input layout: the first two bytes (little-endian) pick the blob type when
// they name a known type; otherwise the rest is tried as each type in turn.
// Properties checked, beyond "no crash, no sanitizer report":
//   - decode_any and validate agree;
//   - a decoded message re-encodes to a blob that decodes to an equal message;
//   - decode_sharing of a KvDeltaBatch agrees with decode (same message, or
//     an error of the same code).
// Build: -DACCELLM_FUZZ=ON with clang (messages/CMakeLists.txt); seed corpus
// from fuzz_decode_seeds DIR.
#include "messages/codec.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <span>
#include <vector>

namespace {

using namespace accellm::messages;

void check(std::uint16_t type, std::span<const std::uint8_t> bytes) {
  const blob_view in{type, bytes};
  auto any = decode_any(in);
  const auto ok = validate(in).ok();
  if (ok != any.ok()) std::abort();
  if (!any) return;
  const capnp_blob again = encode(*any);
  auto round = decode_any(again);
  if (!round || !(*round == *any)) std::abort();
}

void check_sharing(std::span<const std::uint8_t> bytes) {
  auto copied = decode<kv_delta_batch>(
      blob_view{static_cast<std::uint16_t>(msg_type::kv_delta_batch), bytes});
  auto shared =
      decode_sharing(std::make_shared<const std::vector<std::uint8_t>>(bytes.begin(), bytes.end()));
  if (copied.ok() != shared.ok()) std::abort();
  if (copied ? !(*copied == *shared) : copied.err().code() != shared.err().code()) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  std::uint16_t type = 0;
  std::memcpy(&type, data, sizeof type);
  // Copy so that the payload starts 8-byte aligned, like a capnp_blob's
  // vector; unaligned input is covered by decoding `data + 2` below.
  const std::vector<std::uint8_t> payload(data + 2, data + size);
  check_sharing(payload);
  if (to_msg_type(type)) {
    check(type, payload);
    check(type, {data + 2, size - 2});
    return 0;
  }
  for (const auto t : all_msg_types) check(static_cast<std::uint16_t>(t), payload);
  check(type, payload);  // unknown type: must be rejected
  return 0;
}

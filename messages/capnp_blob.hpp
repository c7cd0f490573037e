// messages::capnp_blob: one encoded wire message as it travels between actors.
//
// CAF carries every accellm message as this one registered type (DESIGN.md
// "Messages"); the receiver decodes it with messages::decode<T>, which
// validates both fields. `type` is a raw integer, not a msg_type, so that a
// hostile or newer value is just a number (no undefined behaviour) and is
// rejected by decode with errc::wrong_type.
//
// This header must not include CAF: messages/ does not depend on CAF. CAF
// 0.17 finds `inspect` below by argument-dependent lookup; actors/ registers
// the type under its name.
//
// Value type; no shared state.
#pragma once

#include <cstdint>
#include <vector>

namespace accellm::messages {

/// An encoded message: `bytes` is one Cap'n Proto flat array (segment table
/// followed by the segments) whose root struct is the schema struct of `type`
/// (a messages::msg_type value).
struct capnp_blob {
  std::uint16_t type = 0;
  std::vector<std::uint8_t> bytes;

  friend bool operator==(const capnp_blob&, const capnp_blob&) = default;
};

/// CAF serialisation: the type, then the bytes (one length prefix + memcpy).
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, capnp_blob& x) {
  return f(x.type, x.bytes);
}

}  // namespace accellm::messages

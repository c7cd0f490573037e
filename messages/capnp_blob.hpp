// messages::capnp_blob: one encoded wire message as it travels between actors.
//
// CAF carries every accellm message as this one registered type (DESIGN.md
// "Messages"); the receiver decodes it with messages::decode<T>, which
// validates both fields. `type` is a raw integer, not a msg_type, so that a
// hostile or newer value is just a number (no undefined behaviour) and is
// rejected by decode with errc::wrong_type.
//
// Local messages are not encoded (messages::pack): as CAF itself does for its
// own types, a message that stays in the process travels as the struct; it
// becomes Cap'n Proto bytes only when CAF serialises it to leave the process
// (inspect below), so the wire format is the same either way and a hop
// between two actors of one process (every hop of a simulation) skips the
// encode/decode round trip. decode<T> validates both kinds alike.
//
// This header must not include CAF: messages/ does not depend on CAF. CAF
// 0.17 finds `inspect` below by argument-dependent lookup; actors/ registers
// the type under its name.
//
// Value type; a packed message is shared, immutable.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

namespace accellm::messages {

/// A message struct kept unencoded (codec.hpp defines it).
struct local_message;

/// An encoded message: `bytes` is one Cap'n Proto flat array (segment table
/// followed by the segments) whose root struct is the schema struct of `type`
/// (a messages::msg_type value). Or, from messages::pack, `local` holds the
/// message itself and `bytes` is empty until the blob leaves the process.
struct capnp_blob {
  std::uint16_t type = 0;
  std::vector<std::uint8_t> bytes;
  std::shared_ptr<const local_message> local;

  /// Same type and same wire bytes (a packed blob compares as its encoding).
  friend bool operator==(const capnp_blob& a, const capnp_blob& b);
};

/// What goes on the wire: `bytes`, or the local message encoded.
std::vector<std::uint8_t> wire_bytes(const capnp_blob& b);

/// CAF serialisation: the type, then the bytes (one length prefix + memcpy);
/// a packed message is encoded here, when it leaves the process.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, capnp_blob& x) {
  if constexpr (Inspector::reads_state) {
    if (x.local) {
      auto bytes = wire_bytes(x);
      return f(x.type, bytes);
    }
  }
  return f(x.type, x.bytes);
}

}  // namespace accellm::messages

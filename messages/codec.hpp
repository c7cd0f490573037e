// Encoding and validated decoding of the accellm wire messages.
//
//   capnp_blob b = messages::encode(messages::execute{...});
//   result<messages::execute> m = messages::decode<messages::execute>(b);
//
// encode never fails and never validates: it writes whatever the struct holds
// (tests rely on that to build invalid input). decode is the trust boundary:
// it never throws and never crashes on any input, and returns an error that
// names the problem, checked in this order:
//   errc::wrong_type    blob type differs from the requested type (or is unknown)
//   errc::truncated     no bytes, or fewer than the segment table announces
//   errc::too_large     over decode_limits::max_bytes(type), or a list over its limit
//   errc::misaligned    size not a multiple of 8 bytes
//   errc::malformed     framing or Cap'n Proto structure is invalid (incl. trailing
//                       bytes, pointers out of bounds, traversal limit exceeded)
//   errc::out_of_range  a field outside its domain, with its path
//                       ("execute.items[3].num_tokens: ..."); rules in docs/protocol.md
// Input whose data pointer is not 8-byte aligned is copied to an aligned buffer
// first. Decoding copies everything it keeps: the result does not refer to the
// input.
//
// Thread contract: free functions without shared state; safe from any thread.
#pragma once

#include "common/result.hpp"
#include "messages/capnp_blob.hpp"
#include "messages/msg_type.hpp"
#include "messages/structs.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

namespace accellm::messages {

/// Size limits applied by decode. Defaults suit a cluster; tests shrink them.
struct decode_limits {
  /// Whole-message limit of control messages (no bulk payload).
  std::size_t control_bytes = std::size_t{1} << 20;
  /// Whole-message limit of messages carrying token lists: SubmitRequest,
  /// AssignPrefill, MoveDecode, Execute, TokenBatch.
  std::size_t token_bytes = std::size_t{16} << 20;
  /// Whole-message limit of KvLayer and KvDelta.
  std::size_t kv_bytes = std::size_t{1} << 30;
  /// Any token list (prompt, already_generated, tail_tokens, item tokens, ...).
  std::size_t max_tokens = std::size_t{1} << 20;
  /// Stop tokens of one request.
  std::size_t max_stop_tokens = 256;
  /// Items of one Execute (and tokens of one IterationDone).
  std::size_t max_execute_items = 4096;
  /// Decode steps of one multi-step iteration (Execute item, IterationDone);
  /// the tokens of an IterationDone or IterationReport are bounded by
  /// max_execute_items x max_decode_steps.
  std::size_t max_decode_steps = 64;
  /// Request ids of one EvictReplica.
  std::size_t max_request_ids = std::size_t{1} << 16;
  /// Any text field, in bytes.
  std::size_t max_text_bytes = std::size_t{64} << 10;

  /// The whole-message limit of `t` (control_bytes for an unknown type).
  std::size_t max_bytes(msg_type t) const noexcept;
};

/// Every message struct, in msg_type order: index i holds type i + 1.
using any_message =
    std::variant<submit_request, assign_prefill, start_decode, move_decode, set_role, evict_replica,
                 cancel, execute, iteration_done, kv_layer, kv_delta, token_batch, request_done,
                 instance_report, register_worker, heartbeat, trace_event, kv_delta_batch,
                 iteration_report, kv_ack>;

/// The msg_type of whichever struct `m` holds.
msg_type type_of(const any_message& m) noexcept;

/// What a packed capnp_blob holds.
struct local_message {
  any_message message;
};

/// A blob for an actor of this process: `m` itself, encoded only if CAF
/// sends it elsewhere (capnp_blob). Receivers decode it as any blob.
template <class T>
capnp_blob pack(T m) {
  return {.type = static_cast<std::uint16_t>(T::type),
          .bytes = {},
          .local = std::make_shared<const local_message>(local_message{std::move(m)})};
}

/// Encodes a message. Never fails for messages Cap'n Proto can represent;
/// a list or data field over 2^29 - 1 elements cannot be, and then the blob
/// has the right type but no bytes (which decode rejects as truncated).
capnp_blob encode(const submit_request& m);
capnp_blob encode(const assign_prefill& m);
capnp_blob encode(const start_decode& m);
capnp_blob encode(const move_decode& m);
capnp_blob encode(const set_role& m);
capnp_blob encode(const evict_replica& m);
capnp_blob encode(const cancel& m);
capnp_blob encode(const execute& m);
capnp_blob encode(const iteration_done& m);
capnp_blob encode(const kv_layer& m);
capnp_blob encode(const kv_delta& m);
capnp_blob encode(const token_batch& m);
capnp_blob encode(const request_done& m);
capnp_blob encode(const instance_report& m);
capnp_blob encode(const register_worker& m);
capnp_blob encode(const heartbeat& m);
capnp_blob encode(const trace_event& m);
capnp_blob encode(const kv_delta_batch& m);
capnp_blob encode(const iteration_report& m);
capnp_blob encode(const kv_ack& m);
capnp_blob encode(const any_message& m);

/// Checks the field rules of a message that is about to be sent or was just
/// decoded (decode calls it); the same errors as decode's out_of_range and
/// list-size too_large.
status validate(const submit_request& m, const decode_limits& limits = {});
status validate(const assign_prefill& m, const decode_limits& limits = {});
status validate(const start_decode& m, const decode_limits& limits = {});
status validate(const move_decode& m, const decode_limits& limits = {});
status validate(const set_role& m, const decode_limits& limits = {});
status validate(const evict_replica& m, const decode_limits& limits = {});
status validate(const cancel& m, const decode_limits& limits = {});
status validate(const execute& m, const decode_limits& limits = {});
status validate(const iteration_done& m, const decode_limits& limits = {});
status validate(const kv_layer& m, const decode_limits& limits = {});
status validate(const kv_delta& m, const decode_limits& limits = {});
status validate(const token_batch& m, const decode_limits& limits = {});
status validate(const request_done& m, const decode_limits& limits = {});
status validate(const instance_report& m, const decode_limits& limits = {});
status validate(const register_worker& m, const decode_limits& limits = {});
status validate(const heartbeat& m, const decode_limits& limits = {});
status validate(const trace_event& m, const decode_limits& limits = {});
status validate(const kv_delta_batch& m, const decode_limits& limits = {});
status validate(const iteration_report& m, const decode_limits& limits = {});
status validate(const kv_ack& m, const decode_limits& limits = {});

/// Raw input of decode: a type tag and bytes that may be unaligned (a slice
/// of a trace log, a network buffer).
struct blob_view {
  std::uint16_t type = 0;
  std::span<const std::uint8_t> bytes;
};

inline blob_view view(const capnp_blob& b) noexcept {
  return {b.type, b.bytes};
}

/// Overloads behind decode<T>, one per message struct (the tag picks it).
result<submit_request> decode_as(std::type_identity<submit_request>, blob_view b,
                                 const decode_limits& l);
result<assign_prefill> decode_as(std::type_identity<assign_prefill>, blob_view b,
                                 const decode_limits& l);
result<start_decode> decode_as(std::type_identity<start_decode>, blob_view b,
                               const decode_limits& l);
result<move_decode> decode_as(std::type_identity<move_decode>, blob_view b, const decode_limits& l);
result<set_role> decode_as(std::type_identity<set_role>, blob_view b, const decode_limits& l);
result<evict_replica> decode_as(std::type_identity<evict_replica>, blob_view b,
                                const decode_limits& l);
result<cancel> decode_as(std::type_identity<cancel>, blob_view b, const decode_limits& l);
result<execute> decode_as(std::type_identity<execute>, blob_view b, const decode_limits& l);
result<iteration_done> decode_as(std::type_identity<iteration_done>, blob_view b,
                                 const decode_limits& l);
result<kv_layer> decode_as(std::type_identity<kv_layer>, blob_view b, const decode_limits& l);
result<kv_delta> decode_as(std::type_identity<kv_delta>, blob_view b, const decode_limits& l);
result<token_batch> decode_as(std::type_identity<token_batch>, blob_view b, const decode_limits& l);
result<request_done> decode_as(std::type_identity<request_done>, blob_view b,
                               const decode_limits& l);
result<instance_report> decode_as(std::type_identity<instance_report>, blob_view b,
                                  const decode_limits& l);
result<register_worker> decode_as(std::type_identity<register_worker>, blob_view b,
                                  const decode_limits& l);
result<heartbeat> decode_as(std::type_identity<heartbeat>, blob_view b, const decode_limits& l);
result<trace_event> decode_as(std::type_identity<trace_event>, blob_view b, const decode_limits& l);
result<kv_delta_batch> decode_as(std::type_identity<kv_delta_batch>, blob_view b,
                                 const decode_limits& l);
result<iteration_report> decode_as(std::type_identity<iteration_report>, blob_view b,
                                   const decode_limits& l);
result<kv_ack> decode_as(std::type_identity<kv_ack>, blob_view b, const decode_limits& l);

/// Decodes and validates a message of type T (see the top of this file).
template <class T>
result<T> decode(blob_view blob, const decode_limits& limits = {}) {
  return decode_as(std::type_identity<T>{}, blob, limits);
}

/// The T a packed blob holds; null for encoded bytes or another type.
template <class T>
const T* packed_as(const capnp_blob& blob) noexcept {
  return blob.local && blob.type == static_cast<std::uint16_t>(T::type)
             ? std::get_if<T>(&blob.local->message)
             : nullptr;
}

template <class T>
result<T> decode(const capnp_blob& blob, const decode_limits& limits = {}) {
  if (const T* m = packed_as<T>(blob)) {
    if (auto ok = validate(*m, limits); !ok) return std::move(ok).err();
    return *m;
  }
  // Bytes; or a packed blob of another type, which decode_as names as such.
  return decode_as(std::type_identity<T>{}, blob.local ? blob_view{blob.type, {}} : view(blob),
                   limits);
}

/// decode<T>, handing the message to `fn(const T&)` instead of returning it:
/// a packed blob's message is validated in place, not copied. Returns
/// decode's error (and does not call fn) when the blob is not a valid T.
template <class T, class Fn>
status with_decoded(const capnp_blob& blob, Fn&& fn, const decode_limits& limits = {}) {
  const T* m = packed_as<T>(blob);
  if (m == nullptr) {
    auto copy = decode<T>(blob, limits);
    if (!copy) return std::move(copy).err();
    fn(*copy);
    return {};
  }
  if (auto ok = validate(*m, limits); !ok) return ok;
  fn(*m);
  return {};
}

/// decode<kv_delta_batch> of encoded bytes it may keep: each row's data is
/// a share of `bytes` (no copy) where the reader finds it in place, which it
/// does when they lie at a word-aligned address (a vector's do); otherwise a
/// copy, as decode makes. The same checks and errors as decode.
result<kv_delta_batch> decode_sharing(std::shared_ptr<const std::vector<std::uint8_t>> bytes,
                                      const decode_limits& limits = {});

/// Decodes a message of whatever type the blob names; errc::wrong_type for
/// an unknown type.
result<any_message> decode_any(blob_view blob, const decode_limits& limits = {});
result<any_message> decode_any(const capnp_blob& blob, const decode_limits& limits = {});

/// Decodes by the blob's own type and discards the result: ok exactly when
/// decode of that type succeeds; errc::wrong_type for an unknown type.
status validate(blob_view blob, const decode_limits& limits = {});
status validate(const capnp_blob& blob, const decode_limits& limits = {});

/// One fully populated, valid example of every message type, in msg_type
/// order; every schema field holds a non-default value (in at least one
/// element of a struct list).
std::vector<any_message> example_messages();

/// example_messages(), encoded: the start-up self-test of the CAF type
/// registration sends each of these through CAF and decodes it.
std::vector<capnp_blob> example_blobs();

/// Schema fields that hold their default value in a decodable blob, as
/// paths ("Execute.items.replicaTo"; a field of a struct list counts as set
/// when any element sets it). Empty for example_blobs(); tests use it to
/// prove that every schema field is encoded.
result<std::vector<std::string>> default_fields(const capnp_blob& blob);

}  // namespace accellm::messages

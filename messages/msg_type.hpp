// messages::msg_type: the type tag of every accellm wire message.
//
// The numeric value is what travels in capnp_blob::type and in trace records;
// it equals the MsgType ordinal of messages/accellm.capnp. Values are only
// ever appended, never renumbered (STYLE.md rule 3).
//
// Value types and constexpr functions; safe from any thread.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

namespace accellm::messages {

/// Version of the wire protocol; bumped when a change needs both sides to
/// know about it (RegisterWorker carries it).
inline constexpr std::uint32_t protocol_version = 6;

/// The type of a wire message. 0 is never a valid type.
enum class msg_type : std::uint16_t {
  submit_request = 1,
  assign_prefill,
  start_decode,
  move_decode,
  set_role,
  evict_replica,
  cancel,
  execute,
  iteration_done,
  kv_layer,
  kv_delta,
  token_batch,
  request_done,
  instance_report,
  register_worker,
  heartbeat,
  trace_event,
  kv_delta_batch,
  iteration_report,
  kv_ack,
};

/// Every message type, in numeric order.
inline constexpr std::array<msg_type, 20> all_msg_types = {
    msg_type::submit_request,   msg_type::assign_prefill,  msg_type::start_decode,
    msg_type::move_decode,      msg_type::set_role,        msg_type::evict_replica,
    msg_type::cancel,           msg_type::execute,         msg_type::iteration_done,
    msg_type::kv_layer,         msg_type::kv_delta,        msg_type::token_batch,
    msg_type::request_done,     msg_type::instance_report, msg_type::register_worker,
    msg_type::heartbeat,        msg_type::trace_event,     msg_type::kv_delta_batch,
    msg_type::iteration_report, msg_type::kv_ack,
};

/// The schema name of a type ("SubmitRequest"), or "unknown" for a value
/// outside the enumeration.
constexpr std::string_view to_string(msg_type t) noexcept {
  switch (t) {
    case msg_type::submit_request:
      return "SubmitRequest";
    case msg_type::assign_prefill:
      return "AssignPrefill";
    case msg_type::start_decode:
      return "StartDecode";
    case msg_type::move_decode:
      return "MoveDecode";
    case msg_type::set_role:
      return "SetRole";
    case msg_type::evict_replica:
      return "EvictReplica";
    case msg_type::cancel:
      return "Cancel";
    case msg_type::execute:
      return "Execute";
    case msg_type::iteration_done:
      return "IterationDone";
    case msg_type::kv_layer:
      return "KvLayer";
    case msg_type::kv_delta:
      return "KvDelta";
    case msg_type::token_batch:
      return "TokenBatch";
    case msg_type::request_done:
      return "RequestDone";
    case msg_type::instance_report:
      return "InstanceReport";
    case msg_type::register_worker:
      return "RegisterWorker";
    case msg_type::heartbeat:
      return "Heartbeat";
    case msg_type::trace_event:
      return "TraceEvent";
    case msg_type::kv_delta_batch:
      return "KvDeltaBatch";
    case msg_type::iteration_report:
      return "IterationReport";
    case msg_type::kv_ack:
      return "KvAck";
  }
  return "unknown";
}

/// The msg_type of a raw wire value, or nullopt when no such type exists
/// (hostile or newer input).
constexpr std::optional<msg_type> to_msg_type(std::uint16_t raw) noexcept {
  if (raw < static_cast<std::uint16_t>(all_msg_types.front()) ||
      raw > static_cast<std::uint16_t>(all_msg_types.back())) {
    return std::nullopt;
  }
  return static_cast<msg_type>(raw);
}

}  // namespace accellm::messages

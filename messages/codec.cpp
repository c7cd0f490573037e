// Type-independent parts of the codec: size classes, dispatch by the blob's
// type, and the checks that the C++ enums mirror the schema.
#include "messages/codec.hpp"

#include "messages/detail/wire.hpp"

#include <utility>

namespace accellm::messages {
namespace {

namespace w = accellm::wire;

template <class A, class B>
constexpr bool same_value(A a, B b) {
  return static_cast<std::uint16_t>(a) == static_cast<std::uint16_t>(b);
}

// The C++ enums must keep the schema's ordinals (decode casts between them).
static_assert(same_value(w::MsgType::TRACE_EVENT, msg_type::trace_event));
static_assert(same_value(w::MsgType::SUBMIT_REQUEST, msg_type::submit_request));
static_assert(same_value(w::MsgType::KV_ACK, msg_type::kv_ack));
static_assert(same_value(w::Role::MIXED, role::mixed) && same_value(w::Role::DECODE, role::decode));
static_assert(same_value(w::Phase::DECODE, phase::decode));
static_assert(same_value(w::MoveReason::TAKEOVER, move_reason::takeover) &&
              same_value(w::MoveReason::HANDOFF, move_reason::handoff) &&
              same_value(w::MoveReason::ROLE_SWITCH, move_reason::role_switch));
static_assert(same_value(w::EvictReason::REPAIR, evict_reason::repair) &&
              same_value(w::EvictReason::HANDED_OFF, evict_reason::handed_off) &&
              same_value(w::EvictReason::COMPLETED, evict_reason::completed));
static_assert(same_value(w::RequestStatus::FAILED, request_status::failed));
static_assert(same_value(w::FinishReason::CONTEXT_LIMIT, finish_reason::context_limit) &&
              same_value(w::FinishReason::STOP, finish_reason::stop));
static_assert(same_value(w::TraceKind::ITERATION_SPAN, trace_kind::iteration_span));
static_assert(same_value(w::TraceKind::LOG_END, trace_kind::log_end));

template <std::size_t... I>
constexpr bool variant_in_type_order(std::index_sequence<I...>) {
  return ((std::variant_alternative_t<I, any_message>::type == static_cast<msg_type>(I + 1)) &&
          ...);
}
static_assert(std::variant_size_v<any_message> == all_msg_types.size());
static_assert(variant_in_type_order(std::make_index_sequence<all_msg_types.size()>{}));

template <std::size_t I = 0>
result<any_message> decode_index(std::size_t index, blob_view b, const decode_limits& l) {
  if constexpr (I < std::variant_size_v<any_message>) {
    if (index != I) return decode_index<I + 1>(index, b, l);
    using T = std::variant_alternative_t<I, any_message>;
    auto r = decode<T>(b, l);
    if (!r) return std::move(r).err();
    return any_message{std::in_place_index<I>, std::move(*r)};
  } else {
    return fail(errc::internal, "decode_any: no message type at index " + std::to_string(index));
  }
}

}  // namespace

std::size_t decode_limits::max_bytes(msg_type t) const noexcept {
  switch (t) {
    case msg_type::kv_layer:
    case msg_type::kv_delta:
    case msg_type::kv_delta_batch:
      return kv_bytes;
    case msg_type::submit_request:
    case msg_type::assign_prefill:
    case msg_type::move_decode:
    case msg_type::execute:
    case msg_type::token_batch:
    case msg_type::iteration_report:
      return token_bytes;
    default:
      return control_bytes;
  }
}

msg_type type_of(const any_message& m) noexcept {
  return static_cast<msg_type>(m.index() + 1);
}

capnp_blob encode(const any_message& m) {
  return std::visit([](const auto& x) { return encode(x); }, m);
}

result<any_message> decode_any(blob_view b, const decode_limits& l) {
  const auto t = to_msg_type(b.type);
  if (!t) {
    return fail(errc::wrong_type, "unknown message type " + detail::describe_type(b.type));
  }
  return decode_index(static_cast<std::size_t>(*t) - 1, b, l);
}

result<any_message> decode_any(const capnp_blob& b, const decode_limits& l) {
  if (!b.local) return decode_any(view(b), l);
  if (b.type != static_cast<std::uint16_t>(type_of(b.local->message))) {
    return decode_any(blob_view{b.type, {}}, l);  // an unknown type, or one that is not held
  }
  auto ok = std::visit([&](const auto& m) { return validate(m, l); }, b.local->message);
  if (!ok) return std::move(ok).err();
  return b.local->message;
}

status validate(blob_view b, const decode_limits& l) {
  auto r = decode_any(b, l);
  if (!r) return std::move(r).err();
  return {};
}

status validate(const capnp_blob& b, const decode_limits& l) {
  if (!b.local) return validate(view(b), l);
  auto r = decode_any(b, l);
  if (!r) return std::move(r).err();
  return {};
}

std::vector<std::uint8_t> wire_bytes(const capnp_blob& b) {
  if (!b.local) return b.bytes;
  return encode(b.local->message).bytes;
}

bool operator==(const capnp_blob& a, const capnp_blob& b) {
  if (a.type != b.type) return false;
  if (!a.local && !b.local) return a.bytes == b.bytes;
  return wire_bytes(a) == wire_bytes(b);
}

}  // namespace accellm::messages

// A small known run, built in memory, for the tracing tests.
//
// One virtual-clock log ("sim") of an AcceLLM pair i0/i1 (ns):
//   request 7: submitted 1'000'000, AssignPrefill to im:0 at 1'100'000,
//     prefill iteration of instance 0 1'200'000 + 3'000'000 (512 tokens),
//     KvLayer worker:0 -> kv:1 at 2'000'000 (1 MiB, transit 250'000),
//     StartDecode to im:1 at 4'400'000, decode iterations of instance 1,
//     KvDelta worker:1 -> kv:0 at 5'000'000 (while instance 0 prefills
//     another request at 5'000'000 + 500'000), MoveDecode im:1 -> im:0 at
//     6'000'000 (to both), decode iteration of instance 0 at 6'100'000,
//     RequestDone to the client at 7'600'000: end to end 6.6 ms.
//   request 8: submitted 2'000'000, AssignPrefill to im:1 at 2'100'000,
//     RequestDone to the client at 3'000'000: end to end 1 ms.
#pragma once

#include "actors/tracer.hpp"
#include "messages/enums.hpp"
#include "messages/msg_type.hpp"
#include "messages/structs.hpp"

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace accellm::tracing::test {

using messages::msg_type;
using messages::role;
using messages::trace_event;
using messages::trace_kind;

struct endpoint {
  std::string actor;
  std::string node;
};

inline trace_event message(std::uint64_t t, const endpoint& from, const endpoint& to, msg_type type,
                           request_id request, std::uint64_t bytes, std::uint64_t transit = 0) {
  trace_event e;
  e.epoch = 1;
  e.time_ns = t;
  e.kind = trace_kind::message;
  e.sender = from.actor;
  e.receiver = to.actor;
  e.sender_node = from.node;
  e.receiver_node = to.node;
  e.message_type = static_cast<std::uint16_t>(type);
  e.bytes = bytes;
  e.request = request;
  e.duration_ns = transit;
  return e;
}

inline trace_event span(std::uint64_t t, std::uint64_t length, instance_id instance, role r,
                        std::string node, std::uint32_t prefill_tokens,
                        std::uint32_t decode_requests) {
  trace_event e;
  e.epoch = 1;
  e.time_ns = t;
  e.kind = trace_kind::iteration_span;
  e.sender = "im:" + std::to_string(instance);
  e.sender_node = std::move(node);
  e.duration_ns = length;
  e.prefill_tokens = prefill_tokens;
  e.decode_requests = decode_requests;
  e.role = r;
  e.instance = instance;
  return e;
}

/// A coordinator on `node` got, at `t`, a message `peer` sent at `peer_t`.
inline trace_event clock_sample(std::uint64_t t, std::string node, std::string peer,
                                std::uint64_t peer_t) {
  trace_event e;
  e.time_ns = t;
  e.kind = trace_kind::clock_sample;
  e.sender = "im";
  e.receiver = "coordinator";
  e.sender_node = std::move(peer);
  e.receiver_node = std::move(node);
  e.peer_time_ns = peer_t;
  return e;
}

inline actors::trace_log log_of(std::string path, std::string node, std::string host,
                                std::string clock, std::vector<trace_event> events) {
  actors::trace_log log;
  log.path = std::move(path);
  log.node = std::move(node);
  log.host = std::move(host);
  log.clock = std::move(clock);
  log.events = std::move(events);
  log.complete = true;
  log.end_note = "closed";
  return log;
}

inline const endpoint client{"client", "client"};
inline const endpoint coordinator{"coordinator", "coordinator"};
inline const endpoint im0{"im:0", "i0"}, worker0{"worker:0", "i0"}, kv0{"kv:0", "i0"};
inline const endpoint im1{"im:1", "i1"}, worker1{"worker:1", "i1"}, kv1{"kv:1", "i1"};

/// The run described above, its events deliberately not in time order.
inline std::vector<trace_event> known_run() {
  return {
      message(1'000'000, client, coordinator, msg_type::submit_request, 7, 200),
      message(1'100'000, coordinator, im0, msg_type::assign_prefill, 7, 96),
      message(1'200'000, im0, worker0, msg_type::execute, 0, 64),
      span(1'200'000, 3'000'000, 0, role::prefill, "i0", 512, 0),
      message(2'000'000, client, coordinator, msg_type::submit_request, 8, 200),
      message(2'000'000, worker0, kv1, msg_type::kv_layer, 7, 1'048'576, 250'000),
      message(2'100'000, coordinator, im1, msg_type::assign_prefill, 8, 96),
      message(2'900'000, im1, coordinator, msg_type::request_done, 8, 40),
      message(3'000'000, coordinator, client, msg_type::request_done, 8, 40),
      message(4'200'000, worker0, im0, msg_type::iteration_done, 0, 80),
      message(4'300'000, im0, coordinator, msg_type::iteration_report, 0, 120),
      message(4'400'000, coordinator, im1, msg_type::start_decode, 7, 100),
      span(4'500'000, 1'000'000, 1, role::decode, "i1", 0, 1),
      message(5'000'000, worker1, kv0, msg_type::kv_delta, 7, 4096, 10'000),
      span(5'000'000, 500'000, 0, role::prefill, "i0", 256, 0),  // another request's
      span(5'500'000, 400'000, 1, role::decode, "i1", 0, 1),
      message(6'000'000, coordinator, im1, msg_type::move_decode, 7, 90),
      message(6'000'000, coordinator, im0, msg_type::move_decode, 7, 90),
      span(6'100'000, 1'000'000, 0, role::decode, "i0", 0, 1),
      message(7'500'000, im0, coordinator, msg_type::request_done, 7, 40),
      message(7'600'000, coordinator, client, msg_type::request_done, 7, 40),
  };
}

inline actors::trace_log known_log() {
  return log_of("sim.trace", "sim", "box", "virtual", known_run());
}

}  // namespace accellm::tracing::test

// example_messages(): one valid message of every type with every field set
// to a non-default value (tests check this with default_fields()). Values
// are chosen to be non-default first and realistic second, e.g. the
// request_done example is "failed" with a finish reason.
#include "messages/codec.hpp"

#include <utility>

namespace accellm::messages {
namespace {

std::vector<std::byte> pattern(std::size_t n, unsigned seed) {
  std::vector<std::byte> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::byte>((i * 31 + seed) & 0xff);
  return v;
}

submit_request example_submit() {
  return {.request = 42,
          .prompt = {1, 15043, 29892, 3186, 29991},
          .prompt_len = 5,
          .max_tokens = 64,
          .arrival_ns = 1'000'000,
          .stream = true,
          .ttft_ms = 200,
          .tbt_ms = 50,
          .stop_tokens = {2}};
}

assign_prefill example_assign() {
  return {.epoch = 3,
          .request = 42,
          .instance = 1,
          .partner = 2,
          .prompt = {1, 15043, 29892, 3186, 29991},
          .prompt_len = 5,
          .already_generated = {306, 626},
          .already_generated_len = 2,
          .max_tokens = 64,
          .chunk_tokens = 512,
          .arrival_ns = 1'000'000,
          .stop_tokens = {2},
          .then_decode = true};
}

start_decode example_start() {
  return {.epoch = 3,
          .request = 42,
          .instance = 2,
          .context_len = 5,
          .last_token = 306,
          .from_replica = true,
          .generated = 1,
          .partner = 1,
          .max_tokens = 64,
          .stop_tokens = {2},
          .context_tokens = {1, 15043, 29892, 3186, 29991},
          .takeover = true};
}

move_decode example_move() {
  return {.epoch = 3,
          .request = 42,
          .from_instance = 2,
          .to_instance = 1,
          .context_len = 9,
          .last_token = 11,
          .generated = 5,
          .reason = move_reason::takeover,
          .tail_tokens = {306, 626, 7, 8},
          .new_partner = 3,
          .max_tokens = 64,
          .stop_tokens = {2}};
}

execute example_execute() {
  execute m{.epoch = 4, .instance = 1, .iteration = 17, .items = {}};
  m.items.push_back({.request = 43,
                     .phase = phase::prefill,
                     .context = 0,
                     .num_tokens = 3,
                     .tokens = {1, 450, 4996},
                     .wants_output = false,
                     .replica_to = 2});
  m.items.push_back({.request = 42,
                     .phase = phase::decode,
                     .context = 9,
                     .num_tokens = 1,
                     .tokens = {11},
                     .wants_output = true,
                     .replica_to = no_instance,
                     .steps = 2});
  return m;
}

iteration_done example_done() {
  return {
      .epoch = 4,
      .instance = 1,
      .iteration = 17,
      .duration_ns = 1'500'000,
      .next_tokens = {no_token, 12, no_token, 13},
      .error = "example: device reported an error",
      .kv_bytes_sent = 4096,
      .steps = 2,
      .step_ends_ns = {700'000, 1'500'000},
      .joined = 1,
      .kv_bytes_shared = 1024,
      .refused = {{.item = 2,
                   .reason =
                       "not_found: request 9: not cached (its copy never reached this device)"}},
      .kv_bytes_copied = 512,
      .kv_bytes_dropped = 2048};
}

kv_layer example_kv_layer() {
  return {.epoch = 4,
          .request = 43,
          .from_instance = 1,
          .layer = 5,
          .token_begin = 16,
          .token_end = 19,
          .size_bytes = 48,
          .data = pattern(48, 7),
          .last_layer = true};
}

kv_delta example_kv_delta() {
  return {.epoch = 4,
          .request = 42,
          .from_instance = 1,
          .layer_begin = 1,
          .layer_end = 32,
          .token_begin = 9,
          .token_end = 10,
          .size_bytes = 64,
          .data = pattern(64, 3)};
}

request_done example_request_done() {
  return {.epoch = 4,
          .request = 42,
          .status = request_status::failed,
          .finish = finish_reason::length,
          .output_tokens = 7,
          .error = "worker lost",
          .instance = 2};
}

instance_report example_report() {
  return {.epoch = 4,
          .instance = 1,
          .time_ns = 3'000'000,
          .role = role::mixed,
          .queued_prefill_tokens = 1024,
          .running_decode = 8,
          .kv_blocks_total = 1000,
          .primary_blocks = 400,
          .replica_blocks = 300,
          .free_blocks = 300,
          .kv_bytes_sent = 1 << 20,
          .busy_ns = 2'500'000,
          .iterations = 99,
          .partner = 2,
          .queued_requests = 3,
          .rejected_messages = 2,
          .kv_bytes_shared = 1 << 19,
          .kv_bytes_copied = 1 << 18,
          .kv_bytes_dropped = 1 << 17};
}

register_worker example_register() {
  return {.epoch = 2,
          .cluster_token = "s3cret",
          .instance_name = "gpu-a",
          .device = "sim:h100",
          .model = "llama2-70b",
          .tp = 4,
          .kv_blocks = 8192,
          .block_tokens = 16,
          .host = "node-1",
          .pid = 4242,
          .kv_bytes_per_block = 5'242'880,
          .protocol_version = protocol_version,
          .kv_port = 7601};
}

trace_event example_trace() {
  return {.epoch = 4,
          .time_ns = 3'600'000,
          .kind = trace_kind::iteration_span,
          .sender = "im:1",
          .receiver = "worker:1",
          .sender_node = "node-1",
          .receiver_node = "node-2",
          .message_type = static_cast<std::uint16_t>(msg_type::execute),
          .bytes = 512,
          .request = 42,
          .duration_ns = 1'500'000,
          .prefill_tokens = 3,
          .decode_requests = 1,
          .role = role::decode,
          .instance = 1,
          .peer_time_ns = 3'500'000,
          .note = "steady",
          .dropped = 2};
}

kv_delta_batch example_delta_batch() {
  return {.epoch = 4,
          .from_instance = 1,
          .layer_begin = 2,
          .layer_end = 80,
          .rows = {{.request = 42,
                    .token_begin = 9,
                    .token_end = 10,
                    .size_bytes = 16,
                    .data = pattern(16, 5)},
                   {.request = 43,
                    .token_begin = 30,
                    .token_end = 31,
                    .size_bytes = 16,
                    .data = {},
                    .ring_pos = 4096}},
          .phase = phase::decode,
          .ring = 7,
          .abandoned = {44}};
}

iteration_report example_iteration_report() {
  return {.epoch = 4,
          .instance = 1,
          .iteration = 99,
          .start_ns = 2'000'000,
          .duration_ns = 1'000'000,
          .role = role::decode,
          .prefill_tokens = 512,
          .decode_requests = 2,
          .runs = {{.request = 42, .first_index = 3, .count = 1, .first_step = 1},
                   {.request = 43, .first_index = 0, .count = 2, .first_step = 0}},
          .load = example_report(),
          .evicted_replicas = {44},
          .preempted = {45},
          .step_ends_ns = {400'000, 1'000'000},
          .tokens = {17, 5, 9}};
}

}  // namespace

std::vector<any_message> example_messages() {
  std::vector<any_message> out;
  out.reserve(all_msg_types.size());
  out.emplace_back(example_submit());
  out.emplace_back(example_assign());
  out.emplace_back(example_start());
  out.emplace_back(example_move());
  out.emplace_back(
      set_role{.epoch = 4, .instance = 1, .role = role::decode, .partner = 2, .fenced = true});
  out.emplace_back(evict_replica{
      .epoch = 4, .instance = 2, .requests = {42, 43}, .reason = evict_reason::completed});
  out.emplace_back(cancel{.epoch = 4, .request = 43, .reason = "client went away"});
  out.emplace_back(example_execute());
  out.emplace_back(example_done());
  out.emplace_back(example_kv_layer());
  out.emplace_back(example_kv_delta());
  out.emplace_back(token_batch{.epoch = 4,
                               .request = 42,
                               .first_index = 5,
                               .tokens = {11, 12},
                               .instance = 1,
                               .time_ns = 2'000'000});
  out.emplace_back(example_request_done());
  out.emplace_back(example_report());
  out.emplace_back(example_register());
  out.emplace_back(heartbeat{.epoch = 4, .instance = 1, .seq = 77, .sent_ns = 3'500'000});
  out.emplace_back(example_trace());
  out.emplace_back(example_delta_batch());
  out.emplace_back(example_iteration_report());
  out.emplace_back(kv_ack{.epoch = 4, .batches = 3});
  return out;
}

std::vector<capnp_blob> example_blobs() {
  std::vector<capnp_blob> out;
  out.reserve(all_msg_types.size());
  for (const auto& m : example_messages()) out.push_back(encode(m));
  return out;
}

}  // namespace accellm::messages

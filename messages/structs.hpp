// The accellm wire messages as plain C++ structs, one per schema struct of
// messages/accellm.capnp (field comments there are the reference; the rules
// each field must satisfy are in docs/protocol.md and enforced by decode).
//
// Actors hold and pass only these structs; Cap'n Proto readers never leave
// messages/*.cpp. Each struct names its msg_type in `type`, compares with
// ==, and is encoded by messages::encode (codec.hpp). Instance fields that
// may be empty hold no_instance; list fields that are empty on simulated
// devices (token ids, KV bytes) say so, and then a count field gives the
// size.
//
// Value types; no shared state.
#pragma once

#include "common/shared_bytes.hpp"
#include "common/types.hpp"
#include "messages/enums.hpp"
#include "messages/msg_type.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace accellm::messages {

/// client -> coordinator: a new inference request. Not fenced (no epoch).
struct submit_request {
  static constexpr msg_type type = msg_type::submit_request;
  request_id request = 0;             ///< client-proposed id; 0 = coordinator assigns
  std::vector<token_id> prompt;       ///< prompt tokens; empty = only prompt_len matters
  std::uint32_t prompt_len = 0;       ///< prompt length (>= 1)
  std::uint32_t max_tokens = 0;       ///< output budget (>= 1)
  std::uint64_t arrival_ns = 0;       ///< arrival time at the client; 0 = on receipt
  bool stream = false;                ///< stream token_batch messages as tokens come
  std::uint32_t ttft_ms = 0;          ///< time-to-first-token SLO; 0 = none
  std::uint32_t tbt_ms = 0;           ///< time-between-tokens SLO; 0 = none
  std::vector<token_id> stop_tokens;  ///< generation ends after any of these
  friend bool operator==(const submit_request&, const submit_request&) = default;
};

/// Why a request's output is complete after `generated` tokens, the newest
/// `last`: one of its stop tokens, then max_tokens; none while it goes on.
/// The instance decoding a request ends it so, and the coordinator ends one
/// lost with its output complete the same way.
inline finish_reason finish_after(std::uint32_t generated, token_id last, std::uint32_t max_tokens,
                                  const std::vector<token_id>& stop) {
  if (generated == 0) return finish_reason::none;
  if (std::find(stop.begin(), stop.end(), last) != stop.end()) return finish_reason::stop;
  if (generated >= max_tokens) return finish_reason::length;
  return finish_reason::none;
}

/// coordinator -> instance_manager: prefill here, copy KV layer by layer to `partner`.
struct assign_prefill {
  static constexpr msg_type type = msg_type::assign_prefill;
  epoch_t epoch = 0;
  request_id request = 0;
  instance_id instance = no_instance;       ///< the prefilling instance
  instance_id partner = no_instance;        ///< replica holder; no_instance = no replica
  std::vector<token_id> prompt;             ///< empty on simulated devices
  std::uint32_t prompt_len = 0;             ///< >= 1
  std::vector<token_id> already_generated;  ///< output before a takeover re-prefill
  std::uint32_t already_generated_len = 0;  ///< its count (the list may be empty on sim)
  std::uint32_t max_tokens = 0;             ///< output budget incl. already_generated
  std::uint32_t chunk_tokens = 0;           ///< chunked-prefill size; 0 = instance default
  std::uint64_t arrival_ns = 0;             ///< queue order
  std::vector<token_id> stop_tokens;
  bool then_decode = false;  ///< keep decoding here after prefill (no StartDecode)
  friend bool operator==(const assign_prefill&, const assign_prefill&) = default;
};

/// coordinator -> instance_manager: decode a prefilled request here.
struct start_decode {
  static constexpr msg_type type = msg_type::start_decode;
  epoch_t epoch = 0;
  request_id request = 0;
  instance_id instance = no_instance;  ///< the decoding instance
  std::uint32_t context_len = 0;       ///< tokens with cached KV (>= 1)
  token_id last_token = no_token;      ///< input of the next decode step (>= 0)
  bool from_replica = false;           ///< promote this instance's replica to primary
  std::uint32_t generated = 0;         ///< output so far incl. last_token (>= 1)
  instance_id partner = no_instance;   ///< receives kv_delta; no_instance = none
  std::uint32_t max_tokens = 0;
  std::vector<token_id> stop_tokens;
  /// Token ids [0, context_len) on real devices (what a lagging copy
  /// recomputes); empty on simulated devices.
  std::vector<token_id> context_tokens;
  /// Takeover: the instance that decoded it is gone, so no more KV rows
  /// come; recompute what this instance's copy lacks at once (the whole
  /// context when it has none).
  bool takeover = false;
  friend bool operator==(const start_decode&, const start_decode&) = default;
};

/// coordinator -> both instances: move a running decode to the replica holder.
struct move_decode {
  static constexpr msg_type type = msg_type::move_decode;
  epoch_t epoch = 0;
  request_id request = 0;
  instance_id from_instance = no_instance;  ///< decoded there until now
  instance_id to_instance = no_instance;    ///< decodes there from now on
  std::uint32_t context_len = 0;            ///< tokens the source had cached (>= 1)
  token_id last_token = no_token;           ///< input of the next decode step (>= 0)
  std::uint32_t generated = 0;              ///< output so far incl. last_token
  move_reason reason = move_reason::balance;
  /// Context tokens [context_len - tail_tokens.size(), context_len): what the
  /// target recomputes when its replica lags. Empty on simulated devices.
  std::vector<token_id> tail_tokens;
  instance_id new_partner = no_instance;  ///< replica holder afterwards
  std::uint32_t max_tokens = 0;
  std::vector<token_id> stop_tokens;
  friend bool operator==(const move_decode&, const move_decode&) = default;
};

/// coordinator -> instance_manager (and the answer to register_worker).
struct set_role {
  static constexpr msg_type type = msg_type::set_role;
  epoch_t epoch = 0;
  instance_id instance = no_instance;
  messages::role role = role::mixed;
  instance_id partner = no_instance;  ///< pair partner; no_instance = unpaired
  /// The instance was declared lost: it drops all state and registers again.
  bool fenced = false;
  friend bool operator==(const set_role&, const set_role&) = default;
};

/// coordinator -> kv_replica: drop these replicas.
struct evict_replica {
  static constexpr msg_type type = msg_type::evict_replica;
  epoch_t epoch = 0;
  instance_id instance = no_instance;  ///< holder of the replicas
  std::vector<request_id> requests;    ///< non-empty, no 0
  evict_reason reason = evict_reason::memory_pressure;
  friend bool operator==(const evict_replica&, const evict_replica&) = default;
};

/// client -> coordinator -> instance_manager(s): stop a request.
struct cancel {
  static constexpr msg_type type = msg_type::cancel;
  epoch_t epoch = 0;  ///< 0 from a client
  request_id request = 0;
  std::string reason;
  friend bool operator==(const cancel&, const cancel&) = default;
};

/// One request's share of an iteration (mirrors device::batch_item).
struct execute_item {
  request_id request = 0;
  messages::phase phase = phase::decode;
  std::uint32_t context = 0;             ///< tokens already in the KV cache
  std::uint32_t num_tokens = 0;          ///< tokens appended (>= 1; 1 for decode)
  std::vector<token_id> tokens;          ///< empty on simulated devices
  bool wants_output = true;              ///< false for a non-final prefill chunk
  instance_id replica_to = no_instance;  ///< stream new KV there; no_instance = none
  /// Decode steps to run (multi-step decoding): the item's token of step k is
  /// the input of step k + 1. > 1 only for a decode.
  std::uint32_t steps = 1;
  friend bool operator==(const execute_item&, const execute_item&) = default;
};

/// instance_manager -> worker: run one iteration.
struct execute {
  static constexpr msg_type type = msg_type::execute;
  epoch_t epoch = 0;
  instance_id instance = no_instance;
  std::uint64_t iteration = 0;
  std::vector<execute_item> items;  ///< non-empty; each request at most once
  friend bool operator==(const execute&, const execute&) = default;
};

/// One Execute item a device would not run (IterationDone.refused).
struct item_refusal {
  std::uint32_t item = 0;  ///< its index in the Execute's items
  std::string reason;      ///< why, in the device's words
  friend bool operator==(const item_refusal&, const item_refusal&) = default;
};

/// worker -> instance_manager: an iteration finished or failed.
struct iteration_done {
  static constexpr msg_type type = msg_type::iteration_done;
  epoch_t epoch = 0;
  instance_id instance = no_instance;
  std::uint64_t iteration = 0;
  std::uint64_t duration_ns = 0;
  std::vector<token_id> next_tokens;  ///< one per item; no_token where none wanted
  std::string error;                  ///< empty = ok
  std::uint64_t kv_bytes_sent = 0;    ///< KV bytes streamed to partners
  /// Decode steps run (>= 1): fewer than the items asked for when the manager
  /// cut the iteration short, or on a device that runs one step at a time.
  std::uint32_t steps = 1;
  /// steps > 1: when each step ended, ns after the start (ascending, the last
  /// == duration_ns); next_tokens then holds steps x items, step-major, with
  /// no_token for an item past its own steps.
  std::vector<std::uint64_t> step_ends_ns;
  /// Multi-step: decodes the manager added while it ran (join), appended to
  /// the Execute's items in the order sent; the tokens cover them too.
  std::uint32_t joined = 0;
  /// Of kv_bytes_sent, the bytes that went through a same-node shared ring.
  std::uint64_t kv_bytes_shared = 0;
  /// Items the device refused one by one (ascending item): each request
  /// fails alone; the others ran (no_token in next_tokens at a refused item).
  std::vector<item_refusal> refused;
  /// Of kv_bytes_sent, the bytes a device with a pinned pool had no room
  /// for there, and so copied out on its thread (0 on other devices).
  std::uint64_t kv_bytes_copied = 0;
  /// KV bytes of layer groups such a device had no room for and did not
  /// send (kv_chunk::dropped): their copies were given up. Not in
  /// kv_bytes_sent.
  std::uint64_t kv_bytes_dropped = 0;
  friend bool operator==(const iteration_done&, const iteration_done&) = default;
};

/// worker -> partner's kv_replica: one layer of a prefill's KV.
struct kv_layer {
  static constexpr msg_type type = msg_type::kv_layer;
  epoch_t epoch = 0;
  request_id request = 0;
  instance_id from_instance = no_instance;
  std::uint32_t layer = 0;
  std::uint32_t token_begin = 0;
  std::uint32_t token_end = 0;   ///< >= token_begin
  std::uint64_t size_bytes = 0;  ///< wire size; == data.size() when data is non-empty
  std::vector<std::byte> data;   ///< empty on simulated devices
  bool last_layer = false;
  friend bool operator==(const kv_layer&, const kv_layer&) = default;
};

/// worker -> partner's kv_replica: KV of newly decoded tokens.
struct kv_delta {
  static constexpr msg_type type = msg_type::kv_delta;
  epoch_t epoch = 0;
  request_id request = 0;
  instance_id from_instance = no_instance;
  std::uint32_t layer_begin = 0;
  std::uint32_t layer_end = 0;  ///< > layer_begin
  std::uint32_t token_begin = 0;
  std::uint32_t token_end = 0;   ///< >= token_begin
  std::uint64_t size_bytes = 0;  ///< == data.size() when data is non-empty
  std::vector<std::byte> data;   ///< empty on simulated devices
  friend bool operator==(const kv_delta&, const kv_delta&) = default;
};

/// instance_manager -> coordinator -> client: generated tokens.
struct token_batch {
  static constexpr msg_type type = msg_type::token_batch;
  epoch_t epoch = 0;
  request_id request = 0;
  std::uint32_t first_index = 0;  ///< output-stream index of tokens[0]
  std::vector<token_id> tokens;   ///< non-empty
  instance_id instance = no_instance;
  std::uint64_t time_ns = 0;  ///< when the last token was generated
  friend bool operator==(const token_batch&, const token_batch&) = default;
};

/// instance_manager -> coordinator -> client: a request ended.
struct request_done {
  static constexpr msg_type type = msg_type::request_done;
  epoch_t epoch = 0;
  request_id request = 0;
  request_status status = request_status::ok;
  finish_reason finish = finish_reason::none;
  std::uint32_t output_tokens = 0;
  std::string error;                   ///< empty unless status is failed
  instance_id instance = no_instance;  ///< no_instance = the coordinator ended it
  friend bool operator==(const request_done&, const request_done&) = default;
};

/// instance_manager -> coordinator: periodic load and memory report.
struct instance_report {
  static constexpr msg_type type = msg_type::instance_report;
  epoch_t epoch = 0;
  instance_id instance = no_instance;
  std::uint64_t time_ns = 0;
  messages::role role = role::mixed;
  std::uint64_t queued_prefill_tokens = 0;
  std::uint32_t running_decode = 0;
  std::uint64_t kv_blocks_total = 0;
  std::uint64_t primary_blocks = 0;
  std::uint64_t replica_blocks = 0;
  std::uint64_t free_blocks = 0;  ///< primary + replica + free <= total
  std::uint64_t kv_bytes_sent = 0;
  std::uint64_t busy_ns = 0;
  std::uint64_t iterations = 0;
  instance_id partner = no_instance;
  std::uint32_t queued_requests = 0;
  std::uint64_t rejected_messages = 0;  ///< malformed or misaddressed, dropped since start
  std::uint64_t kv_bytes_shared = 0;    ///< of kv_bytes_sent, through a same-node ring
  std::uint64_t kv_bytes_copied = 0;    ///< of kv_bytes_sent, copied out for want of pinned room
  std::uint64_t kv_bytes_dropped = 0;   ///< not sent for want of pinned room (copies given up)
  friend bool operator==(const instance_report&, const instance_report&) = default;
};

/// worker process -> coordinator: join or rejoin; answered by set_role.
struct register_worker {
  static constexpr msg_type type = msg_type::register_worker;
  epoch_t epoch = 0;                ///< 0 on first join
  std::string cluster_token;        ///< shared secret (non-empty)
  std::string instance_name;        ///< non-empty
  std::string device;               ///< "cpu", "sim:h100", "cuda:0" (non-empty)
  std::string model;                ///< catalogue key
  std::uint32_t tp = 1;             ///< >= 1
  std::uint64_t kv_blocks = 0;      ///< >= 1
  std::uint32_t block_tokens = 16;  ///< >= 1
  std::string host;
  std::uint32_t pid = 0;
  std::uint64_t kv_bytes_per_block = 0;
  std::uint32_t protocol_version = messages::protocol_version;
  std::uint16_t kv_port = 0;  ///< where its kv_replica is published on `host`; 0 = none
  friend bool operator==(const register_worker&, const register_worker&) = default;
};

/// instance_manager -> coordinator: application-level liveness.
struct heartbeat {
  static constexpr msg_type type = msg_type::heartbeat;
  epoch_t epoch = 0;
  instance_id instance = no_instance;
  std::uint64_t seq = 0;
  std::uint64_t sent_ns = 0;
  friend bool operator==(const heartbeat&, const heartbeat&) = default;
};

/// tracer log record: one message envelope or one iteration span.
struct trace_event {
  static constexpr msg_type type = msg_type::trace_event;
  epoch_t epoch = 0;
  std::uint64_t time_ns = 0;
  trace_kind kind = trace_kind::message;
  std::string sender;
  std::string receiver;
  std::string sender_node;
  std::string receiver_node;
  std::uint16_t message_type = 0;  ///< a msg_type value; 0 = none (span, non-capnp)
  std::uint64_t bytes = 0;
  request_id request = 0;              ///< 0 = none
  std::uint64_t duration_ns = 0;       ///< spans
  std::uint32_t prefill_tokens = 0;    ///< spans
  std::uint32_t decode_requests = 0;   ///< spans
  messages::role role = role::mixed;   ///< spans
  instance_id instance = no_instance;  ///< spans
  /// clock_sample: the sender's clock when it sent the message; log_start:
  /// the wall clock (ns since 1970) at time_ns.
  std::uint64_t peer_time_ns = 0;
  std::string note;           ///< log_start: the clock; log_end: why it ended; message: its detail
  std::uint64_t dropped = 0;  ///< log_end: events dropped because the writer fell behind
  friend bool operator==(const trace_event&, const trace_event&) = default;
};

/// One request's rows in a kv_delta_batch.
struct kv_rows {
  request_id request = 0;
  std::uint32_t token_begin = 0;
  std::uint32_t token_end = 0;   ///< > token_begin
  std::uint64_t size_bytes = 0;  ///< == data.size() when data is non-empty
  shared_bytes data;  ///< empty on simulated devices and for rows in a ring; shared, not copied
  std::uint64_t ring_pos = 0;  ///< with kv_delta_batch::ring: the bytes' ring position
  friend bool operator==(const kv_rows&, const kv_rows&) = default;
};

/// worker -> a kv_replica: new KV rows of several requests, one layer range.
struct kv_delta_batch {
  static constexpr msg_type type = msg_type::kv_delta_batch;
  epoch_t epoch = 0;
  instance_id from_instance = no_instance;
  std::uint32_t layer_begin = 0;
  std::uint32_t layer_end = 0;  ///< > layer_begin
  std::vector<kv_rows> rows;    ///< non-empty; each request at most once
  messages::phase phase = phase::decode;
  /// Nonzero: the id of the sender's shared ring (a partner on the same
  /// node); a row with empty data lies there at its ring_pos (a row that did
  /// not fit the ring carries its data).
  std::uint64_t ring = 0;
  /// Requests whose copy the sender gave up from here on (its send queue to
  /// this receiver was full): the receiver drops what it holds of them. With
  /// entries, `rows` may be empty.
  std::vector<request_id> abandoned;
  friend bool operator==(const kv_delta_batch&, const kv_delta_batch&) = default;
};

/// kv_replica -> the worker that sent it KvDeltaBatch messages: `batches` of
/// them arrived (the credit of the KV flow control, worker/kv_send_queue.hpp).
struct kv_ack {
  static constexpr msg_type type = msg_type::kv_ack;
  epoch_t epoch = 0;          ///< a kv_replica knows no epoch: 0
  std::uint32_t batches = 0;  ///< >= 1
  friend bool operator==(const kv_ack&, const kv_ack&) = default;
};

/// Consecutive output tokens of one request from one iteration (a decode of
/// several steps makes one run of several tokens).
struct token_run {
  request_id request = 0;
  std::uint32_t first_index = 0;  ///< output-stream index of its first token
  std::uint32_t count = 1;        ///< >= 1
  std::uint32_t first_step = 0;   ///< the step that made the first; the others follow step by step
  friend bool operator==(const token_run&, const token_run&) = default;
};

/// instance_manager -> coordinator: one iteration's output and the state after it.
struct iteration_report {
  static constexpr msg_type type = msg_type::iteration_report;
  epoch_t epoch = 0;
  instance_id instance = no_instance;
  std::uint64_t iteration = 0;
  std::uint64_t start_ns = 0;
  std::uint64_t duration_ns = 0;
  messages::role role = role::mixed;
  std::uint32_t prefill_tokens = 0;
  std::uint32_t decode_requests = 0;
  std::vector<token_run> runs;  ///< the tokens produced, a run per request, in batch order
  instance_report load;         ///< load.instance == instance
  std::vector<request_id> evicted_replicas;  ///< dropped under memory pressure
  std::vector<request_id> preempted;         ///< KV freed, queued for recompute
  /// Multi-step: each step's end after start_ns; a run's k-th token was
  /// produced at start_ns + step_ends_ns[first_step + k]. Empty: one step,
  /// every token at start_ns + duration_ns.
  std::vector<std::uint64_t> step_ends_ns;
  std::vector<token_id> tokens;  ///< the runs' token ids, run after run (>= 0)
  friend bool operator==(const iteration_report&, const iteration_report&) = default;
};

}  // namespace accellm::messages

// instance_manager: one per instance (DESIGN.md "instance_manager"). It owns
// the instance's role, its queues and its KV block pool, forms one batch per
// iteration, sends it to the worker as Execute, and reports every iteration
// to the coordinator (IterationReport).
//
// Batching (continuous, iteration-level):
//   role prefill / decode  a batch is all prefill (whole prompts) or all
//                          decode, as AcceLLM and Splitwise intend. An
//                          instance holding both kinds of work (a saturated
//                          AcceLLM pair, where both members prefill or a
//                          decoding member takes a prompt; a Splitwise prompt
//                          instance whose hand-off found no room) runs its
//                          decodes with one chunk_tokens chunk of prompt per
//                          iteration (as Sarathi-Serve), so no decode waits
//                          behind a whole prompt.
//   role mixed             prefill and decode in one batch: prompts first and
//                          whole (vLLM's default), or, with chunked prefill,
//                          decodes first and prompt chunks filling the rest of
//                          the chunk budget (Sarathi-Serve).
// Every batch respects max_batch_size and the token budget (a prompt longer
// than the budget runs alone, unchunked).
//
// A decode placed here from a copy (StartDecode) that does not yet hold
// every token waits for the copy's remaining rows; when none arrives for
// `copy_stall` (the source stopped syncing, or a row was lost), the missing
// tail is recomputed here as a prefill chunk, so no request waits forever.
//
// Multi-step decoding (decode_steps > 1, as vLLM's multi-step scheduling, but
// exact): when the batch holds only decodes, no prompt is queued and the free
// blocks hold every step's KV without evicting a replica, one Execute asks
// for up to decode_steps steps per request (fewer for one that ends sooner).
// A decode that becomes ready meanwhile (a hand-off from the partner, a copy
// completing) joins the running steps at the next step boundary (the worker
// appends it); a prompt, a move of a request in the batch or a new role cuts
// them at the next step boundary. Either way the work starts exactly when it
// would with one step per Execute, and every token keeps its own step's time.
// What changes: the coordinator hears of the tokens (and the partner receives
// their KV rows) once per Execute rather than once per step.
//
// An iteration the device could not run (IterationDone.error) ends every
// request in it as failed, with the device's message (RequestDone); the
// instance goes on with the others. An item the device refused alone
// (IterationDone.refused) touches only its own request, and the rest of the
// iteration counts as run: on a real device (device_memory) the request's
// KV there is freed and rebuilt once from its token ids, prompt and output
// so far, by a prefill without output (reported as a preemption), and it
// decodes on; refused again, or on a simulated device, it fails so.
//
// Memory: one pool of blocks holds primaries (KV this instance computes on)
// and replicas (redundant copies of the partner's requests). A primary that
// needs blocks first evicts replicas, oldest first; only when none is left is
// a decoding request preempted (its KV freed, recomputed later, as vLLM
// does). A replica that does not fit is dropped, never a primary. Evictions
// and preemptions are reported to the coordinator.
//
// Real devices (instance_options::device_memory): the manager keeps every
// request's token ids (prompt, then each output token) and puts them in the
// Execute items; it forwards the KV rows it accepts (a replica growing, a
// copy it will decode from) to the worker, which imports them, and tells the
// worker (release_atom, request ids) when KV is freed (finished, failed,
// moved away, preempted, replica dropped), so the device holds exactly the
// KV this manager accounts for.
//
// A Cancel ends the request as cancelled (RequestDone) and frees its KV; one
// in the running iteration ends when the iteration lands, its last token
// dropped.
//
// Messages in (msg_atom, capnp_blob): AssignPrefill, StartDecode, MoveDecode,
// SetRole, EvictReplica, Cancel from the coordinator; IterationDone from the worker;
// KvDeltaBatch forwarded by the local kv_replica (its `abandoned` requests:
// the sender gave up their copies, which are dropped and reported as
// evicted). Out: Execute to the worker;
// IterationReport, RequestDone, MoveDecode (the move's final state) to the
// coordinator. Local set-up: (peers_atom, coordinator, worker). (ping_atom)
// is answered with pong_atom once everything received before it has been
// handled (what it sent on is on its way ahead of the answer). A manager
// spawned with id no_instance (a daemon, before it joins) takes its id from
// the first SetRole. A SetRole with `fenced` (the coordinator declared this
// instance lost) ends the manager at once, with an errc::not_found error
// naming the instance and the epoch: its worker process watches for that and
// registers again with fresh actors (daemon/worker_node.hpp).
//
// Thread contract: an actor; its state is its own.
#pragma once

#include "actors/tracer.hpp"
#include "common/types.hpp"

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

#include <chrono>
#include <cstdint>

namespace accellm::worker {

/// Batching and memory configuration of one instance.
struct instance_options {
  instance_id id = 0;
  std::uint64_t total_blocks = 0;  ///< KV pool size
  std::uint32_t block_tokens = 16;
  std::uint64_t bytes_per_block = 0;  ///< for reports
  std::uint32_t max_batch_tokens = 2048;
  std::uint32_t max_batch_size = 512;
  bool chunked_prefill = false;      ///< role mixed only
  std::uint32_t chunk_tokens = 512;  ///< per-iteration token budget when chunked
  bool sync_decode_kv = true;        ///< send each decode step's KV rows to the replica
  /// Multi-step decoding: a batch of decodes only, with nothing waiting to
  /// join it, runs up to this many steps per Execute (1 = one step each).
  std::uint32_t decode_steps = 1;
  /// A copy this instance must decode from that gets no new rows for this
  /// long is declared stalled: the tokens it lacks are recomputed here.
  std::chrono::nanoseconds copy_stall{std::chrono::milliseconds{10}};
  /// The worker's device holds real KV (cpu, cuda): Execute items carry token
  /// ids, the KV rows kept here are forwarded to the worker to import, and
  /// the worker is told (release_atom) when a request's KV is freed. Off on
  /// simulated devices, which hold sizes only.
  bool device_memory = false;
  /// The model's layers. A KvDeltaBatch that ends below the last layer (a
  /// real device streams a prompt's KV layer by layer) carries part of its
  /// rows: they are kept (and reach the device) but count as copied only once
  /// the batch that ends at the last layer arrives, later from the same
  /// sender. 0: every KvDeltaBatch carries whole rows (simulated devices).
  std::uint32_t layers = 0;
  /// The message trace: what the manager sends and each iteration's span.
  /// Its actor name is "im:<id>"; empty: not traced.
  actors::trace_point trace;
};

/// Spawns the manager; send it (peers_atom, coordinator, worker) before anything else.
caf::actor spawn_instance_manager(caf::actor_system& sys, const instance_options& options);

}  // namespace accellm::worker

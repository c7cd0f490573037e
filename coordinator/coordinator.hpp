// coordinator: the AcceLLM Scheduling Manager (DESIGN.md "coordinator").
//
// It owns the cluster_view and the request table, asks its policy what to do
// at every event and sends the decisions as messages:
//
//   SubmitRequest ──> policy.on_arrival ──> AssignPrefill (+ SetRole, MoveDecode)
//   IterationReport ─> view update; first tokens ─> policy.on_prefill_done
//                      ──> StartDecode here, or MoveDecode to the source;
//                      then policy.on_report ──> SetRole, MoveDecode
//   MoveDecode (the source's answer, with the final state) ──> StartDecode at the target
//   RequestDone ──> EvictReplica (completed) to the replica holder, answer to the client
//   replicas evicted under pressure ──> EvictReplica notice to the owner (stop syncing)
//
// Messages in/out are (msg_atom, capnp_blob). The client that sent a
// SubmitRequest gets its RequestDone (and, with token_ids, TokenBatch
// messages before it); a SubmitRequest with request id 0 gets an id from the
// coordinator, a duplicate or invalid one is answered at once with a failed
// RequestDone naming the problem.
//
// Membership. A simulation sends (peers_atom, std::vector<caf::actor>
// instance_managers) once. Daemons register instead, at any time:
// (register_atom, RegisterWorker blob, manager, node, kv_replica) is checked (cluster
// token, protocol version, model, block size; a refusal is an error reply
// and a log line, and changes nothing), then the instance gets the next id,
// the policy pairs it (policy::join), SetRole goes to it and to any instance
// whose role or partner changed, the reply is its SetRole, and every node
// gets the KV receivers of all instances by id: (peers_atom,
// std::vector<std::string> endpoints "host:port", std::vector<caf::actor>
// kv_replicas). The coordinator monitors
// each manager: when one goes down (its process died or was cut off), or a
// simulation sends (lost_atom, instance_id), the instance is marked dead and
// the epoch bumped, its partner re-paired (policy::leave), the copies it held
// forgotten (their owners stop syncing), and its requests taken over
// (DESIGN.md "Takeover", docs/resilience.md): a decoding one goes on from the
// copy its partner holds, or is recomputed on the least loaded live instance
// (StartDecode{takeover}); a prefilling one is placed again as if it had
// just arrived. Fencing: an IterationReport, MoveDecode or RequestDone from
// an instance declared lost is dropped, counted (observer::on_fenced) and
// answered with SetRole{fenced}; ids are never reused, so the id identifies
// a lost instance's messages.
//
// Thread contract: an actor; the policy and observer are used from it only.
#pragma once

#include "actors/tracer.hpp"
#include "coordinator/observer.hpp"
#include "coordinator/policies/policy.hpp"

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <spdlog/logger.h>

#include <memory>
#include <string>

namespace accellm::coordinator {

struct coordinator_options {
  std::uint32_t instances = 0;  ///< simulation: spawned up front; daemons: 0, they register
  std::uint64_t blocks_per_instance = 0;
  std::uint32_t block_tokens = 16;
  /// Keep every token's time in request_timeline::token_ns (for TBT); off:
  /// first and last only (long simulations).
  bool token_times = true;
  /// Daemons: requests carry real token ids. The coordinator keeps each
  /// request's prompt and output ids, passes them to the instances (real
  /// devices compute on them), and answers clients with TokenBatch messages:
  /// as tokens come for a streaming request, all at once before RequestDone
  /// otherwise. Off in simulation (lengths only, RequestDone only).
  bool token_ids = false;
  /// Daemons: the secret a RegisterWorker must carry, the model and block
  /// size every worker must have, and the limits checked at submission
  /// (0 = unchecked).
  std::string cluster_token;
  std::string model;
  std::uint32_t vocab = 0;
  std::uint32_t max_context = 0;
  /// Where the coordinator says what happens to workers (joins, refusals,
  /// losses); may be null.
  std::shared_ptr<spdlog::logger> log;
  /// The message trace (actors/tracer.hpp): what the coordinator sends, and a
  /// clock sample per IterationReport. Empty: not traced.
  actors::trace_point trace;
};

/// `pol` decides, `obs` (may be null, must outlive the actor) records.
caf::actor spawn_coordinator(caf::actor_system& sys, const coordinator_options& options,
                             std::shared_ptr<policy> pol, observer* obs);

}  // namespace accellm::coordinator

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
// SubmitRequest gets its RequestDone. Set-up: (peers_atom,
// std::vector<caf::actor> instance_managers).
//
// Thread contract: an actor; the policy and observer are used from it only.
#pragma once

#include "coordinator/observer.hpp"
#include "coordinator/policies/policy.hpp"

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

#include <memory>

namespace accellm::coordinator {

struct coordinator_options {
  std::uint32_t instances = 0;
  std::uint64_t blocks_per_instance = 0;
  std::uint32_t block_tokens = 16;
  /// Keep every token's time in request_timeline::token_ns (for TBT); off:
  /// first and last only (long simulations).
  bool token_times = true;
};

/// `pol` decides, `obs` (may be null, must outlive the actor) records.
caf::actor spawn_coordinator(caf::actor_system& sys, const coordinator_options& options,
                             std::shared_ptr<policy> pol, observer* obs);

}  // namespace accellm::coordinator

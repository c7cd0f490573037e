// worker: executes the iterations of one instance (DESIGN.md "worker").
//
// This is the simulated-device worker: it asks the cost model how long the
// batch takes and answers IterationDone after that much (virtual or real)
// time, with the tokens the simulated model emits (device::sim::pseudo_token,
// the same whichever instance decodes a request). Real devices (cpu, cuda)
// have device_worker.hpp: they compute on their own thread and report the
// measured time.
//
// KV copies: every batch item with a replica_to sends its new KV rows to that
// instance's KV receiver over this instance's outgoing link, which carries one
// transfer at a time (bandwidth and latency from the cluster file; each of the
// tp devices has its own link, so an item's bytes / tp cross each). A prompt's
// copy is layer-wise: layer l leaves when layer l is computed and the link is
// free, and the copy is complete when the last layer lands; one KvDeltaBatch
// per target carries it, delivered at that moment. Decode rows leave after the
// iteration in one KvDeltaBatch per target.
//
// Multi-step decoding: an Execute whose decode items ask for several steps
// (execute_item::steps) runs them back to back, each step's time from the
// cost model for the items still running at that step; the answer (one
// IterationDone with every step's tokens and end time) and the decode rows
// (one KvDeltaBatch per target, all steps' rows) leave when the last step
// ends. (cut_atom, iteration) ends the run at the first step boundary at or
// after now: the answer then carries the steps done by that boundary, as if
// the manager had asked for that many.
//
// Messages in: (msg_atom, Execute) and (cut_atom, iteration) from the
// instance_manager. Out:
// IterationDone to it, KvDeltaBatch to the partners' KV receivers. Set-up:
// (peers_atom, instance_manager, std::vector<caf::actor> kv_receivers): by
// instance id, where that instance's KV rows go (its kv_replica, or, in a
// simulation where rows carry no bytes, its instance_manager);
// (peers_atom, std::vector<caf::actor> kv_receivers) replaces them (a
// daemon's cluster grows). Rows carry the Execute's instance as sender.
//
// Thread contract: an actor; the cost model is shared read-only.
#pragma once

#include "actors/tracer.hpp"
#include "common/types.hpp"
#include "device/model_spec.hpp"
#include "device/sim/cost_model.hpp"

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

#include <chrono>
#include <memory>

namespace accellm::worker {

/// One outgoing link of an instance (per device of its TP group).
struct link_options {
  double bandwidth = 50e9;                 ///< bytes/s
  std::chrono::nanoseconds latency{5000};  ///< per transfer
};

struct sim_worker_options {
  instance_id id = 0;
  std::shared_ptr<const device::sim::cost_model> cost;  ///< never null
  device::model_spec model;
  std::uint32_t tp = 1;
  std::uint64_t kv_bytes_per_token = 0;  ///< whole instance, all layers
  link_options link;
  /// The message trace ("worker:<id>"): IterationDone and the KV rows sent
  /// to the partner (with their modelled transit); empty: not traced.
  actors::trace_point trace;
};

caf::actor spawn_sim_worker(caf::actor_system& sys, const sim_worker_options& options);

}  // namespace accellm::worker

// Every CAF atom accellm uses, in one place (STYLE.md rule 2). CAF 0.17 atoms
// are at most 10 characters.
//
// Cluster messages themselves travel as messages::capnp_blob (their type is in
// the blob); atoms tag the few local control messages around them.
#pragma once

#include <caf/atom.hpp>

namespace accellm::actors {

/// A Cap'n Proto message follows: (msg_atom, capnp_blob).
using msg_atom = caf::atom_constant<caf::atom("msg")>;
/// Periodic timer of an actor (reports, heartbeats, batching).
using tick_atom = caf::atom_constant<caf::atom("tick")>;
/// Ask an actor for a snapshot of its state (tests, metrics).
using report_atom = caf::atom_constant<caf::atom("report")>;
/// Orderly stop of a component and its children.
using stop_atom = caf::atom_constant<caf::atom("stop")>;
/// Local set-up: the handles an actor talks to follow.
using peers_atom = caf::atom_constant<caf::atom("peers")>;
/// A simulated request arrives (trace replay).
/// A delayed self-message: has a copy that should become a primary stalled?
using copy_check_atom = caf::atom_constant<caf::atom("copychk")>;
using arrive_atom = caf::atom_constant<caf::atom("arrive")>;
/// Multi-step decoding: (cut_atom, iteration) from an instance_manager asks
/// its worker to end that iteration at the next step boundary; (join_atom,
/// iteration, Execute blob) adds decodes from the next step boundary; the
/// worker's (window_atom, iteration, generation) self-message ends it.
using cut_atom = caf::atom_constant<caf::atom("cut")>;
using join_atom = caf::atom_constant<caf::atom("join")>;
using window_atom = caf::atom_constant<caf::atom("window")>;
/// (release_atom, std::vector<request_id>) from an instance_manager: the
/// worker's device frees those requests' KV.
using release_atom = caf::atom_constant<caf::atom("release")>;
/// From a device_worker's device thread to its actor: (out_atom, target
/// instance, KvDeltaBatch blob) rows for a partner, to send as the flow
/// control allows; (out_atom, IterationDone blob) after them.
using out_atom = caf::atom_constant<caf::atom("out")>;
/// (ring_atom, socket name) from a kv_replica to its device_worker: listen
/// there for same-node KV rings offered by partners (worker/kv_ring_link.hpp).
using ring_atom = caf::atom_constant<caf::atom("ring")>;
/// Daemons: (register_atom, RegisterWorker blob, manager, node, kv_replica)
/// from a worker process to the coordinator, answered with (msg_atom, SetRole
/// blob) or an error; (peers_atom, std::vector<std::string>,
/// std::vector<caf::actor>) from the coordinator to every worker node: each
/// instance's KV endpoint "host:port" ("" = none or gone) and kv_replica, by id.
using register_atom = caf::atom_constant<caf::atom("register")>;
/// (metrics_atom) to a coordinator: answered with its counters (daemons).
using metrics_atom = caf::atom_constant<caf::atom("metrics")>;
/// (lost_atom, instance_id) to a coordinator: that instance is gone. A
/// simulated fault says so (daemons learn it from CAF's down message).
using lost_atom = caf::atom_constant<caf::atom("lost")>;
/// Liveness probe.
using ping_atom = caf::atom_constant<caf::atom("ping")>;
using pong_atom = caf::atom_constant<caf::atom("pong")>;

}  // namespace accellm::actors

// kv_replica: the receiving end of the KV copies sent to an instance
// (DESIGN.md "kv_replica"). It hands each KvDeltaBatch to the local
// instance_manager, which owns the block pool where replicas live beside
// primaries, decodes it, and drops and counts (InstanceReport.
// rejectedMessages) a malformed or misaddressed one; on a real device also to
// the local device_worker, which imports the bytes into the device.
//
// Messages in: (msg_atom, KvDeltaBatch) from any worker. Out: the message to
// the instance_manager (and the device_worker), and a KvAck to its sender,
// the credit of the sender's flow control (worker/kv_send_queue.hpp). Set-up: (peers_atom,
// instance_manager) on a simulated device, (peers_atom, instance_manager,
// device_worker) on a real one, which also tells the device_worker where to
// take partners' same-node KV rings (ring_atom). (ping_atom) is answered with pong_atom once
// everything received before it has been handed on.
//
// A KvDeltaBatch that arrives as bytes (from another process) is decoded
// here, once, and handed on packed (messages::pack): both receivers share
// the one decoded message and its rows' bytes (shared_bytes) instead of each
// getting a copy of tens of MiB to decode again. One that does not decode
// goes on as it came, for the instance_manager to reject and count.
//
// Thread contract: an actor.
#pragma once

#include "common/types.hpp"

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

namespace accellm::worker {

caf::actor spawn_kv_replica(caf::actor_system& sys, instance_id self_id);

}  // namespace accellm::worker

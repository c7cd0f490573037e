// kv_replica: the receiving end of the KV copies sent to an instance
// (DESIGN.md "kv_replica"). On simulated devices the rows carry sizes, not
// bytes, so it only hands each KvDeltaBatch to the local instance_manager,
// which owns the block pool where replicas live beside primaries, decodes it
// once, and drops and counts (InstanceReport.rejectedMessages) a malformed or
// misaddressed one. On real devices it will also import the bytes into the
// device (issues 5 and 8), and then decode them itself.
//
// Messages in: (msg_atom, KvDeltaBatch) from any worker. Out: the same blob to
// the instance_manager. Set-up: (peers_atom, instance_manager).
//
// Thread contract: an actor.
#pragma once

#include "common/types.hpp"

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

namespace accellm::worker {

caf::actor spawn_kv_replica(caf::actor_system& sys, instance_id self_id);

}  // namespace accellm::worker

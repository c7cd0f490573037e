// kv_replica: the receiving end of the KV copies sent to an instance
// (DESIGN.md "kv_replica"). It decodes and checks each KvDeltaBatch (a
// malformed or foreign message is dropped and counted, never applied) and
// hands it to the local instance_manager, which owns the block pool where
// replicas live beside primaries. On real devices it will also import the
// bytes into the device (issue 5).
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

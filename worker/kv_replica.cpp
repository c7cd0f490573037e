#include "worker/kv_replica.hpp"

#include "actors/atoms.hpp"
#include "messages/codec.hpp"

#include <caf/all.hpp>

namespace accellm::worker {
namespace {

struct replica_state {
  caf::actor manager;
  static inline const char* name = "kv_replica";
};

using replica_actor = caf::stateful_actor<replica_state>;

caf::behavior kv_replica(replica_actor* self) {
  return {
      [self](actors::peers_atom, caf::actor manager) { self->state.manager = std::move(manager); },
      [self](actors::msg_atom, const messages::capnp_blob& b) {
        // Decoded once, by the manager; anything else goes there too, to be
        // rejected and counted in its reports.
        self->send(self->state.manager, actors::msg_atom::value, b);
      },
  };
}

}  // namespace

caf::actor spawn_kv_replica(caf::actor_system& sys, instance_id /*self_id*/) {
  return sys.spawn(kv_replica);
}

}  // namespace accellm::worker

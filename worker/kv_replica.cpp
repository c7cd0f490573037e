#include "worker/kv_replica.hpp"

#include "actors/atoms.hpp"
#include "messages/codec.hpp"

#include <caf/all.hpp>

namespace accellm::worker {
namespace {

struct replica_state {
  instance_id id = no_instance;
  caf::actor manager;
  std::uint64_t received_bytes = 0;
  std::uint64_t rejected = 0;  ///< malformed messages, or rows about ourselves
  static inline const char* name = "kv_replica";
};

using replica_actor = caf::stateful_actor<replica_state>;

caf::behavior kv_replica(replica_actor* self, instance_id id) {
  self->state.id = id;
  return {
      [self](actors::peers_atom, caf::actor manager) { self->state.manager = std::move(manager); },
      [self](actors::msg_atom, const messages::capnp_blob& b) {
        auto& s = self->state;
        auto m = messages::decode<messages::kv_delta_batch>(b);
        if (!m || m->from_instance == s.id) {
          ++s.rejected;
          return;
        }
        for (const auto& row : m->rows) s.received_bytes += row.size_bytes;
        self->send(s.manager, actors::msg_atom::value, b);
      },
  };
}

}  // namespace

caf::actor spawn_kv_replica(caf::actor_system& sys, instance_id self_id) {
  return sys.spawn(kv_replica, self_id);
}

}  // namespace accellm::worker

#include "worker/kv_replica.hpp"

#include "actors/atoms.hpp"
#include "messages/codec.hpp"
#include "worker/device_worker.hpp"

#include <caf/all.hpp>

#include <memory>
#include <utility>
#include <vector>

namespace accellm::worker {
namespace {

struct replica_state {
  caf::actor manager;
  caf::actor device;  ///< a real device's worker, which imports the bytes; null on sim
  static inline const char* name = "kv_replica";
};

using replica_actor = caf::stateful_actor<replica_state>;

// `b` as its receivers get it: a KvDeltaBatch in bytes decoded and packed
// (copies of a packed blob share the message), its rows shares of the bytes
// it came in; anything else as it is.
messages::capnp_blob shared_once(messages::capnp_blob b) {
  if (b.local || b.type != static_cast<std::uint16_t>(messages::msg_type::kv_delta_batch)) return b;
  auto bytes = std::make_shared<const std::vector<std::uint8_t>>(std::move(b.bytes));
  auto m = messages::decode_sharing(bytes);
  if (m) return messages::pack(std::move(*m));
  return {b.type, *bytes, nullptr};  // for the manager to reject
}

caf::behavior kv_replica(replica_actor* self) {
  return {
      [self](actors::peers_atom, caf::actor manager) { self->state.manager = std::move(manager); },
      [self](actors::peers_atom, caf::actor manager, caf::actor device) {
        self->state.manager = std::move(manager);
        self->state.device = std::move(device);
        // Partners on this node offer their KV rings to the device worker
        // at the socket named after this replica, whose handle they hold.
        self->send(self->state.device, actors::ring_atom::value,
                   kv_ring_socket(caf::actor_cast<caf::actor>(self), self->node()));
      },
      // Mutable: a message from the network is this actor's alone, and its
      // bytes move into the rows decoded from them (CAF copies a shared one).
      [self](actors::msg_atom, messages::capnp_blob& b) {
        // Taken: the sender's window opens by one message (worker/
        // kv_send_queue.hpp), whatever the receivers make of it.
        if (b.type == static_cast<std::uint16_t>(messages::msg_type::kv_delta_batch)) {
          if (auto sender = caf::actor_cast<caf::actor>(self->current_sender()))
            self->send(sender, actors::msg_atom::value,
                       messages::pack(messages::kv_ack{.epoch = 0, .batches = 1}));
        }
        // Anything malformed goes to the manager too, to be rejected and
        // counted in its reports.
        const messages::capnp_blob out = shared_once(std::move(b));
        if (self->state.device) self->send(self->state.device, actors::msg_atom::value, out);
        self->send(self->state.manager, actors::msg_atom::value, out);
      },
      [](actors::ping_atom) { return actors::pong_atom::value; },
  };
}

}  // namespace

caf::actor spawn_kv_replica(caf::actor_system& sys, instance_id /*self_id*/) {
  return sys.spawn(kv_replica);
}

}  // namespace accellm::worker

// kv_replica: a KvDeltaBatch that arrives as bytes reaches the manager and
// the device worker decoded once and packed, the two sharing one message and
// its rows' bytes; its sender gets a KvAck; a blob that does not decode goes
// to both as it came.
#include "worker/kv_replica.hpp"

#include "actors/atoms.hpp"
#include "actors/system_config.hpp"
#include "messages/codec.hpp"

#include <caf/all.hpp>
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

namespace accellm::worker {
namespace {

using namespace std::chrono_literals;
using actors::msg_atom;
using messages::capnp_blob;

constexpr auto patience = 30s;  // every wait below is bounded

// An actor that hands every msg_atom blob it gets to the test, tagged (and
// takes the replica's word on where partners offer rings, as a device
// worker would).
caf::behavior forward_to(caf::event_based_actor* self, caf::actor test, int tag) {
  return {
      [self, test, tag](msg_atom, const capnp_blob& b) { self->send(test, tag, b); },
      [](actors::ring_atom, const std::string&) {},
  };
}

class KvReplica : public ::testing::Test {
 protected:
  // The next blob one of the stand-ins (by tag) or a KvAck got.
  std::vector<std::pair<int, capnp_blob>> receive(std::size_t n) {
    std::vector<std::pair<int, capnp_blob>> out;
    for (std::size_t i = 0; i < n; ++i) {
      bool timed_out = false;
      self_->receive([&](int tag, const capnp_blob& b) { out.emplace_back(tag, b); },
                     [&](msg_atom, const capnp_blob& b) { out.emplace_back(0, b); },
                     caf::after(patience) >> [&] { timed_out = true; });
      if (timed_out) {
        ADD_FAILURE() << "only " << out.size() << " of " << n << " messages";
        break;
      }
    }
    return out;
  }

  actors::system_config cfg_{actors::clock_mode::real};
  caf::actor_system sys_{cfg_};
  caf::scoped_actor self_{sys_};
};

TEST_F(KvReplica, BytesAreDecodedOnceAndSharedByBothReceivers) {
  const caf::actor replica = spawn_kv_replica(sys_, 1);
  const caf::actor manager = sys_.spawn(forward_to, caf::actor{self_}, 1);
  const caf::actor device = sys_.spawn(forward_to, caf::actor{self_}, 2);
  self_->send(replica, actors::peers_atom::value, manager, device);
  messages::kv_delta_batch m{.epoch = 1,
                             .from_instance = 0,
                             .layer_begin = 0,
                             .layer_end = 1,
                             .rows = {{.request = 7,
                                       .token_begin = 0,
                                       .token_end = 4,
                                       .size_bytes = 4096,
                                       .data = std::vector<std::byte>(4096, std::byte{3}),
                                       .ring_pos = 0}},
                             .phase = messages::phase::prefill,
                             .ring = 0,
                             .abandoned = {}};
  self_->send(replica, msg_atom::value, messages::encode(m));
  const auto got = receive(3);  // the ack, and one to each receiver
  ASSERT_EQ(got.size(), 3u);
  const capnp_blob* to_manager = nullptr;
  const capnp_blob* to_device = nullptr;
  for (const auto& [tag, b] : got) {
    if (tag == 0) {
      EXPECT_TRUE(messages::decode<messages::kv_ack>(b).ok());
    }
    if (tag == 1) to_manager = &b;
    if (tag == 2) to_device = &b;
  }
  ASSERT_TRUE(to_manager != nullptr && to_device != nullptr);
  const auto* a = messages::packed_as<messages::kv_delta_batch>(*to_manager);
  const auto* b = messages::packed_as<messages::kv_delta_batch>(*to_device);
  ASSERT_TRUE(a != nullptr && b != nullptr) << "handed on packed";
  EXPECT_EQ(a, b) << "one message, shared";
  EXPECT_EQ(*a, m);

  // What does not decode goes on as it came (the manager rejects it).
  capnp_blob broken = messages::encode(m);
  broken.bytes.resize(broken.bytes.size() / 2);
  ASSERT_FALSE(messages::decode<messages::kv_delta_batch>(broken).ok());
  self_->send(replica, msg_atom::value, broken);
  const auto next = receive(3);
  ASSERT_EQ(next.size(), 3u);
  for (const auto& [tag, blob] : next) {
    if (tag != 0) {
      EXPECT_EQ(blob.bytes, broken.bytes) << "to " << tag;
    }
  }
  for (const caf::actor& x : {replica, manager, device})
    self_->send_exit(x, caf::exit_reason::user_shutdown);
}

}  // namespace
}  // namespace accellm::worker

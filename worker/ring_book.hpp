// ring_book: a device worker's same-node KV rings, both ways (the rings are
// device/kv_ring.hpp's, handed over by kv_ring_link.hpp).
//
// As a sender it keeps one ring per partner instance: the first time rows go
// to a partner whose kv_replica lives in another process of this node, it
// makes a ring in the backend's shareable memory and offers it; accepted, the
// partner's rows are packed there (place()) while it has room, and go over
// the network otherwise. A refused or failed offer is not retried until the
// partner's replica changes. As a receiver it keeps the rings partners
// offered, by (sender instance, ring id), the newest two of each sender: a
// sender that replaced its ring may still have rows of the old one on the
// way.
//
// Thread contract: the device thread's alone (it holds backend memory).
#pragma once

#include "common/result.hpp"
#include "common/types.hpp"
#include "device/backend.hpp"
#include "device/kv_ring.hpp"
#include "worker/kv_ring_link.hpp"

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>

namespace accellm::worker {

class ring_book {
 public:
  /// Rings of `ring_bytes` each (0: none are made; offers are still taken);
  /// an offer waits up to `offer_timeout` for its answer.
  explicit ring_book(std::uint64_t ring_bytes,
                     std::chrono::milliseconds offer_timeout = std::chrono::milliseconds{2000});

  /// Before rows go to `target`, whose kv_replica is `replica` (its address,
  /// or anything that changes when the replica does) and listens at `socket`
  /// ("" when it is not on this node): makes and offers its ring the first
  /// time.
  void prepare(device::backend& dev, instance_id self, instance_id target,
               const std::string& replica, const std::string& socket);
  /// A place for `bytes` of rows to `target` in its ring, or nullopt: no
  /// ring, or not enough unread room.
  std::optional<device::kv_place> place(instance_id target, std::uint64_t bytes);

  /// Maps a ring a partner offered.
  status open(device::backend& dev, const ring_offer& offer, ring_descriptors fds);
  /// Imports rows that lie in a partner's ring: `header` as kv_chunk (data
  /// empty, bytes set) at position `pos` of ring `ring` of instance `from`,
  /// then marks them read (also when the import fails: the sender may reuse
  /// the room either way). not_found for a ring that is not mapped here.
  status import(device::backend& dev, instance_id from, std::uint64_t ring, std::uint64_t pos,
                const device::kv_chunk& header);

 private:
  struct outbound {
    std::string replica;
    std::optional<device::ring_writer> ring;  // none: the network
  };
  std::uint64_t ring_bytes_;
  std::chrono::milliseconds offer_timeout_;
  std::map<instance_id, outbound> out_;
  std::map<std::pair<instance_id, std::uint64_t>, device::ring_reader> in_;
  std::uint64_t next_id_;
};

}  // namespace accellm::worker

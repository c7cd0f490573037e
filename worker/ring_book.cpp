#include "worker/ring_book.hpp"

#include <unistd.h>

#include <iterator>

namespace accellm::worker {

ring_book::ring_book(std::uint64_t ring_bytes, std::chrono::milliseconds offer_timeout)
    : ring_bytes_(ring_bytes),
      offer_timeout_(offer_timeout),
      // Ids of different processes differ, so a receiver never confuses a
      // restarted sender's ring with the one before.
      next_id_((std::uint64_t{static_cast<std::uint32_t>(::getpid())} << 32) | 1) {}

void ring_book::prepare(device::backend& dev, instance_id self, instance_id target,
                        const std::string& replica, const std::string& socket) {
  outbound& o = out_[target];
  if (o.replica == replica) return;  // offered already, or refused: keep that
  // Any failure below leaves the partner on the network path.
  o = outbound{.replica = replica, .ring = std::nullopt};
  if (ring_bytes_ == 0 || socket.empty()) return;
  auto ring = device::ring_writer::create(dev, ring_bytes_, next_id_++);
  if (!ring) return;
  auto data = ring->data().share();
  auto control = ring->control().share();
  if (!data || !control) return;
  const ring_offer offer{.from_instance = self,
                         .ring = ring->id(),
                         .kind = ring->kind(),
                         .capacity = ring->capacity()};
  if (!offer_ring(socket, offer, data->get(), control->get(), offer_timeout_)) return;
  o.ring = std::move(*ring);
}

std::optional<device::kv_place> ring_book::place(instance_id target, std::uint64_t bytes) {
  auto it = out_.find(target);
  if (it == out_.end() || !it->second.ring || bytes == 0) return std::nullopt;
  return it->second.ring->reserve(bytes);
}

status ring_book::open(device::backend& dev, const ring_offer& offer, ring_descriptors fds) {
  auto r = device::ring_reader::open(dev, offer.kind, std::move(fds.data), std::move(fds.control),
                                     offer.capacity);
  if (!r) return std::move(r).err();
  // Keep the newest two rings of this sender (ids grow within a process).
  const auto first = in_.lower_bound({offer.from_instance, 0});
  const auto end = in_.lower_bound({offer.from_instance + 1, 0});
  if (std::distance(first, end) >= 2) in_.erase(first);
  in_.insert_or_assign({offer.from_instance, offer.ring}, std::move(*r));
  return {};
}

status ring_book::import(device::backend& dev, instance_id from, std::uint64_t ring,
                         std::uint64_t pos, const device::kv_chunk& header) {
  auto it = in_.find({from, ring});
  if (it == in_.end())
    return fail(errc::not_found, "ring " + std::to_string(ring) + " of instance " +
                                     std::to_string(from) + " is not mapped here");
  device::ring_reader& r = it->second;
  auto at = r.offset(pos, header.bytes);
  status st = at ? dev.import_kv_from(r.data(), *at, header) : status{std::move(at).err()};
  r.mark_read(pos + header.bytes);
  return st;
}

}  // namespace accellm::worker

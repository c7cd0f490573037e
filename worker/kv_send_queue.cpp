#include "worker/kv_send_queue.hpp"

#include "messages/codec.hpp"

#include <algorithm>
#include <optional>
#include <utility>

namespace accellm::worker {
namespace {

using messages::capnp_blob;
using messages::kv_delta_batch;

/// How many abandoned copies a lane remembers: an older one forgotten lets
/// its later rows through, which the receiver, having dropped the copy,
/// ignores (instance_manager keeps as many dropped ids).
constexpr std::size_t abandoned_memory = 4096;

constexpr std::uint64_t overhead = 64;  // per row and per message: what encoding adds

std::uint64_t size_of(const kv_delta_batch& m) {
  std::uint64_t n = overhead + 8 * m.abandoned.size();
  for (const messages::kv_rows& r : m.rows) n += r.data.size() + overhead;
  return n;
}

std::vector<request_id> requests_of(const kv_delta_batch& m) {
  std::vector<request_id> out;
  out.reserve(m.rows.size());
  for (const messages::kv_rows& r : m.rows) out.push_back(r.request);
  return out;
}

}  // namespace

kv_send_queue::kv_send_queue(kv_flow_limits limits) : limits_(limits) {}

std::uint64_t kv_send_queue::size_of(const capnp_blob& blob) {
  if (const kv_delta_batch* m = messages::packed_as<kv_delta_batch>(blob))
    return worker::size_of(*m);
  auto m = messages::decode<kv_delta_batch>(blob);
  return m ? worker::size_of(*m) : blob.bytes.size();
}

bool kv_send_queue::push(instance_id target, const capnp_blob& blob) {
  std::optional<capnp_blob> repacked;
  const kv_delta_batch* m = messages::packed_as<kv_delta_batch>(blob);
  if (m == nullptr) {  // encoded bytes (a test, a tool): kept packed from here
    auto d = messages::decode<kv_delta_batch>(blob);
    if (!d) return false;
    repacked = messages::pack(std::move(*d));
    m = messages::packed_as<kv_delta_batch>(*repacked);
  }
  lane& l = lanes_[target];
  const auto gone = [&l](const messages::kv_rows& r) { return l.abandoned.count(r.request) != 0; };
  if (!l.abandoned.empty() && std::any_of(m->rows.begin(), m->rows.end(), gone)) {
    kv_delta_batch kept = *m;
    std::erase_if(kept.rows, gone);
    if (kept.rows.empty() && kept.abandoned.empty()) return true;
    repacked = messages::pack(std::move(kept));
    m = messages::packed_as<kv_delta_batch>(*repacked);
  }
  const std::uint64_t bytes = worker::size_of(*m);
  if (!l.queued.empty() && l.queued_bytes + bytes > limits_.queue_bytes) {
    abandon(l, target, requests_of(*m), repacked ? *repacked : blob);
    return true;
  }
  l.queued.push_back(
      {.target = target, .blob = repacked ? std::move(*repacked) : blob, .bytes = bytes});
  l.queued_bytes += bytes;
  return true;
}

void kv_send_queue::abandon(lane& l, instance_id target, const std::vector<request_id>& ids,
                            const capnp_blob& like) {
  for (const request_id id : ids) {
    if (!l.abandoned.insert(id).second) continue;
    ++abandoned_;
    l.abandoned_order.push_back(id);
    if (l.abandoned_order.size() > abandoned_memory) {
      l.abandoned.erase(l.abandoned_order.front());
      l.abandoned_order.pop_front();
    }
  }
  // What waits only for abandoned copies need not go at all.
  std::erase_if(l.queued, [&](const message& q) {
    const kv_delta_batch* b = messages::packed_as<kv_delta_batch>(q.blob);
    const bool useless = b != nullptr && b->abandoned.empty() &&
                         std::all_of(b->rows.begin(), b->rows.end(), [&](const auto& r) {
                           return l.abandoned.count(r.request) != 0;
                         });
    if (useless) l.queued_bytes -= q.bytes;
    return useless;
  });
  const kv_delta_batch* m = messages::packed_as<kv_delta_batch>(like);
  kv_delta_batch notice{.epoch = m->epoch,
                        .from_instance = m->from_instance,
                        .layer_begin = m->layer_begin,
                        .layer_end = m->layer_end,
                        .rows = {},
                        .phase = m->phase,
                        .ring = 0,
                        .abandoned = ids};
  const std::uint64_t bytes = worker::size_of(notice);
  l.queued.push_back({.target = target, .blob = messages::pack(std::move(notice)), .bytes = bytes});
  l.queued_bytes += bytes;
}

bool kv_send_queue::acked(instance_id target, std::uint32_t batches) {
  const auto it = lanes_.find(target);
  if (it == lanes_.end()) return batches == 0;
  lane& l = it->second;
  const bool fits = batches <= l.in_flight.size();
  for (std::uint32_t i = 0; i < batches && !l.in_flight.empty(); ++i) {
    l.in_flight_bytes -= l.in_flight.front();
    l.in_flight.pop_front();
  }
  return fits;
}

std::vector<kv_send_queue::message> kv_send_queue::take_ready() {
  std::vector<message> out;
  for (auto& [target, l] : lanes_) {
    // One message always goes when nothing is on the way, however large.
    while (!l.queued.empty() &&
           (l.in_flight.empty() ||
            l.in_flight_bytes + l.queued.front().bytes <= limits_.window_bytes)) {
      message& m = l.queued.front();
      l.queued_bytes -= m.bytes;
      l.in_flight_bytes += m.bytes;
      l.in_flight.push_back(m.bytes);
      out.push_back(std::move(m));
      l.queued.pop_front();
    }
  }
  return out;
}

void kv_send_queue::reset(instance_id target) {
  lanes_.erase(target);
}

void kv_send_queue::forget(std::span<const request_id> ids) {
  for (auto& [target, l] : lanes_) {
    for (const request_id id : ids) {
      if (l.abandoned.erase(id) != 0) std::erase(l.abandoned_order, id);
    }
  }
}

std::uint64_t kv_send_queue::in_flight_bytes(instance_id target) const {
  const auto it = lanes_.find(target);
  return it == lanes_.end() ? 0 : it->second.in_flight_bytes;
}

std::uint64_t kv_send_queue::queued_bytes(instance_id target) const {
  const auto it = lanes_.find(target);
  return it == lanes_.end() ? 0 : it->second.queued_bytes;
}

std::uint64_t kv_send_queue::in_flight_bytes() const {
  std::uint64_t n = 0;
  for (const auto& [target, l] : lanes_) n += l.in_flight_bytes;
  return n;
}

std::uint64_t kv_send_queue::queued_bytes() const {
  std::uint64_t n = 0;
  for (const auto& [target, l] : lanes_) n += l.queued_bytes;
  return n;
}

}  // namespace accellm::worker

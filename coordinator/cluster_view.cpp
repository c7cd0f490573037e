#include "coordinator/cluster_view.hpp"

namespace accellm::coordinator {

std::uint64_t instance_view::available_blocks(std::uint32_t block_tokens) const noexcept {
  const std::uint64_t reserved = (pending_prefill_tokens + block_tokens - 1) / block_tokens;
  const std::uint64_t usable = free_blocks + replica_blocks;
  return usable > reserved ? usable - reserved : 0;
}

void cluster_view::set_decode_instance(request_view& r, instance_id i) {
  if (r.decode_instance == i) return;
  if (r.decode_instance < instances.size()) instances[r.decode_instance].decoding.erase(r.id);
  r.decode_instance = i;
  if (i < instances.size()) instances[i].decoding.insert(r.id);
}

void cluster_view::unpair(instance_id i) {
  instance_view& inst = at(i);
  if (inst.partner < instances.size() && instances[inst.partner].partner == i) {
    instances[inst.partner].partner = no_instance;
  }
  inst.partner = no_instance;
}

void cluster_view::erase_request(std::map<request_id, request_view>::iterator it) {
  set_decode_instance(it->second, no_instance);
  requests.erase(it);
}

}  // namespace accellm::coordinator

#include "coordinator/policies/vllm.hpp"

#include <tuple>

namespace accellm::coordinator {

std::string vllm_policy::setting() const {
  return chunked_ ? "chunked prefill" : "prefill-first";
}

void vllm_policy::init(cluster_view& view) {
  for (instance_view& inst : view.instances) {
    inst.role = messages::role::mixed;
    inst.partner = no_instance;
    inst.pool = "mixed";
  }
}

void vllm_policy::join(cluster_view& view, instance_id i) {
  instance_view& inst = view.at(i);
  inst.role = messages::role::mixed;
  inst.partner = no_instance;
  inst.pool = "mixed";
}

// Join the shortest queue in tokens: prompt tokens waiting for prefill plus
// one per running decode (what the next iterations must process). Instances
// with room for the prompt come first, so a full instance is not chosen
// while another has memory.
decisions vllm_policy::on_arrival(const cluster_view& view, const request_view& r) {
  const std::uint64_t need = view.blocks_for(r.prompt_len);
  instance_id best = no_instance;
  std::tuple<bool, std::uint64_t, instance_id> best_key{};
  for (const instance_view& inst : view.instances) {
    if (!inst.alive) continue;
    const std::tuple key{inst.available_blocks(view.block_tokens) < need,
                         inst.pending_prefill_tokens + inst.decode_requests, inst.id};
    if (best == no_instance || key < best_key) {
      best = inst.id;
      best_key = key;
    }
  }
  return {assign_prefill_d{
      .request = r.id, .instance = best, .copy_to = no_instance, .then_decode = true}};
}

decisions vllm_policy::on_prefill_done(const cluster_view&, const request_view& r) {
  return {decode_here_d{.request = r.id, .replica = no_instance}};
}

decisions vllm_policy::on_report(const cluster_view&, instance_id) {
  return {};
}

}  // namespace accellm::coordinator

// vllm policy: the colocated baseline. Every instance runs prefill and decode
// mixed in one batch (prefill-first continuous batching as in vLLM's default
// scheduler, or Sarathi-style chunked prefill with decode first); a request
// goes to the instance with the shortest queue in tokens (SplitwiseSim's
// token_jsq) and decodes where it prefilled. No KV copies.
//
// Thread contract: policy's.
#pragma once

#include "coordinator/policies/policy.hpp"

namespace accellm::coordinator {

class vllm_policy final : public policy {
 public:
  explicit vllm_policy(bool chunked_prefill) : chunked_(chunked_prefill) {}

  std::string_view name() const noexcept override { return "vllm"; }
  std::string setting() const override;
  void init(cluster_view& view) override;
  void join(cluster_view& view, instance_id i) override;
  decisions on_arrival(const cluster_view& view, const request_view& r) override;
  decisions on_prefill_done(const cluster_view& view, const request_view& r) override;
  decisions on_report(const cluster_view& view, instance_id i) override;

 private:
  bool chunked_;
};

}  // namespace accellm::coordinator

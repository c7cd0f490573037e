// splitwise policy: the disaggregated baseline (Patel et al., ISCA 2024, as
// SplitwiseSim's MixedPoolScheduler implements it; notes/paper.md 6.2).
//
// The first `prompt_instances` instances form the prompt pool (role prefill),
// the rest the token pool (role decode). At arrival a request gets both:
//   prompt instance = fewest pending prefill tokens, skipping one whose queue
//                     is non-empty and would exceed prompt_max_pending_tokens;
//   token instance  = least KV memory in use among those with room for the
//                     request's prompt + output.
// Its KV is copied to the token instance layer by layer while it prefills;
// after prefill the decode moves there and the prompt instance frees its copy.
// When a pool has no candidate, an instance of the other pool is borrowed into
// a "mixed" pool (role mixed) and returns to its own pool once it is idle; if
// nothing fits at all, the least loaded instance does both phases.
//
// Thread contract: policy's.
#pragma once

#include "coordinator/policies/policy.hpp"

#include <map>
#include <vector>

namespace accellm::coordinator {

class splitwise_policy final : public policy {
 public:
  /// prompt_instances: 1 .. n - 1 (0 = half the instances, rounded up).
  splitwise_policy(std::uint32_t prompt_instances, std::uint64_t prompt_max_pending_tokens)
      : prompt_instances_(prompt_instances),
        wanted_prompt_(prompt_instances),
        max_pending_(prompt_max_pending_tokens) {}

  std::string_view name() const noexcept override { return "splitwise"; }
  std::string setting() const override;
  void init(cluster_view& view) override;
  /// The newcomer joins the prompt pool while it is below its share
  /// (prompt_instances, or half the instances rounded up), else the token pool.
  void join(cluster_view& view, instance_id i) override;
  decisions on_arrival(const cluster_view& view, const request_view& r) override;
  decisions on_prefill_done(const cluster_view& view, const request_view& r) override;
  decisions on_report(const cluster_view& view, instance_id i) override;

 private:
  enum class pool : std::uint8_t { prompt, token, mixed };

  instance_id pick_prompt(const cluster_view& view, const request_view& r) const;
  instance_id pick_token(const cluster_view& view, const request_view& r) const;
  instance_id least_loaded(const cluster_view& view, pool from) const;
  set_role_d borrow(instance_id i);

  std::uint32_t prompt_instances_;
  std::uint32_t wanted_prompt_;  ///< as configured (0 = half)
  std::uint64_t max_pending_;
  std::uint32_t instances_ = 0;
  std::vector<pool> pool_;                      ///< current pool per instance
  std::vector<pool> home_;                      ///< pool it returns to
  std::map<request_id, instance_id> token_of_;  ///< planned token instance per request
};

}  // namespace accellm::coordinator

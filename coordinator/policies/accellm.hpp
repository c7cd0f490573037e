// accellm policy: instances in pairs holding each other's redundant KV copies
// (Bournias et al., arXiv 2411.05555; notes/paper.md 3.2-3.3, where the paper
// is silent the choices below are ours and docs/policies.md says why).
//
//   arrival       the pair member with the fewest pending prefill tokens that
//                 has memory, among: the pair's prefill instance, a member with
//                 no decode work, or (no prefiller yet) the member with the
//                 lighter decode load (when that one is saturated, any
//                 member). One that was decoding switches to
//                 prefill and its decodes move to the partner, which holds
//                 their KV, so none of them stalls. Its prompt is copied layer
//                 by layer to the partner when the partner has room.
//   prefill done  both members hold the KV; decode goes to the less loaded
//                 member that is not busy prefilling.
//   report        a prefill instance with nothing left to prefill decodes;
//                 two decoding members even out their decode requests by
//                 moving some to the side that holds their replica.
//
// Thread contract: policy's.
#pragma once

#include "coordinator/policies/policy.hpp"

namespace accellm::coordinator {

class accellm_policy final : public policy {
 public:
  /// prompt_max_pending_tokens: when the best allowed prefiller has a queue
  /// and would exceed this many pending prompt tokens, the other member of a
  /// pair may prefill as well (the same saturation rule as Splitwise's).
  explicit accellm_policy(std::uint64_t prompt_max_pending_tokens = 8192)
      : max_pending_(prompt_max_pending_tokens) {}

  /// Running decodes move to the partner only when one side has more than
  /// twice the other's and more than this many extra.
  static constexpr std::uint32_t rebalance_slack = 64;

  std::string_view name() const noexcept override { return "accellm"; }
  std::string setting() const override { return "pairs"; }
  void init(cluster_view& view) override;
  /// Pairs `i` with instance i ^ 1 when that one is alive and unpaired,
  /// else with the first live unpaired instance (a lost one's partner).
  void join(cluster_view& view, instance_id i) override;
  /// The lost instance's partner pairs with the first other live unpaired
  /// instance (another loss's orphan), taking its pool label; else it stays
  /// alone and does both phases until a newcomer joins it.
  void leave(cluster_view& view, instance_id gone) override;
  decisions on_arrival(const cluster_view& view, const request_view& r) override;
  decisions on_prefill_done(const cluster_view& view, const request_view& r) override;
  decisions on_report(const cluster_view& view, instance_id i) override;

 private:
  instance_id pick_prefill(const cluster_view& view, const request_view& r, bool saturated) const;
  static void switch_to_prefill(const cluster_view& view, instance_id i, decisions& out);
  static void rebalance(const cluster_view& view, instance_id from, decisions& out);

  std::uint64_t max_pending_;
};

}  // namespace accellm::coordinator

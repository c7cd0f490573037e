// roofline_model: an analytic cost model. For each operator of a Llama-style
// block (norms, QKV projection, attention, output projection, gate/up/down,
// two tensor-parallel all-reduces) it counts the FLOPs and HBM bytes one
// device of the TP group handles, and charges
//
//   t_op = max(flops / (peak * eta_compute), bytes / (hbm_bandwidth * eta_memory))
//
// with eta_memory = eta.kv for attention (its traffic is the KV cache) and
// eta.hbm for every other operator. Each block also pays a fixed
// layer_overhead (launches and the gaps between its kernels). Blocks are
// summed over layers, then the final norm, the LM head (items that want
// output only), the logits all-gather and the fixed per-iteration overhead
// are added. Weights are read once per iteration whatever the batch.
// Attention is charged per item over its actual context (causal triangle for
// prefill chunks). All-reduce: 2(t-1)/t * bytes / busbw + alpha per call.
// docs/cost-model.md has the formulas and where every factor comes from.
//
// Thread contract: immutable after create(); estimate() may run concurrently.
#pragma once

#include "common/result.hpp"
#include "device/hardware_spec.hpp"
#include "device/model_spec.hpp"
#include "device/sim/cost_model.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace accellm::device::sim {

/// How the model is deployed on the hardware.
struct deployment {
  std::uint32_t tp = 1;  ///< tensor-parallel degree (devices per instance)
  dtype weights = dtype::bf16;
  dtype activations = dtype::bf16;
  dtype kv = dtype::bf16;
};

/// Ok when `tp` can shard `model`: tp >= 1, tp divides heads, and tp divides
/// kv_heads or is a multiple of it (KV heads are then replicated). When
/// `hardware` is given, tp must also fit in one node.
status check_tp(const model_spec& model, std::uint32_t tp, const hardware_spec* hardware);

class roofline_model final : public cost_model {
 public:
  /// Fails with invalid_argument when the model or hardware fails its
  /// check(), or when check_tp() fails.
  static result<roofline_model> create(const model_spec& model, const hardware_spec& hardware,
                                       const deployment& deploy);

  std::string describe() const override;
  result<cost_breakdown> estimate(const batch& b) const override;
  /// The total of estimate(b) (within a nanosecond: a decode-only batch of
  /// up to decode_table_size items sums its operators in another order),
  /// without building the breakdown.
  result<std::chrono::nanoseconds> iteration_time(const batch& b) const override;

  /// Decode-only batches up to this size are priced from a table built at
  /// create(): everything but attention depends on the batch size alone.
  static constexpr std::size_t decode_table_size = 512;

  const model_spec& model() const noexcept { return model_; }
  const hardware_spec& hardware() const noexcept { return hardware_; }
  const deployment& deploy() const noexcept { return deploy_; }
  /// iteration_overhead + layers * layer_overhead: the part of every
  /// iteration no operator accounts for (cost_breakdown::overhead).
  std::chrono::nanoseconds fixed_overhead() const;

 private:
  roofline_model(model_spec model, hardware_spec hardware, deployment deploy);
  /// Prices `b`: calls on_op(cost, scale) for each operator (scale = layers
  /// for a block operator, 1 for the head) and returns the total.
  template <class OnOp>
  std::chrono::nanoseconds price(const batch& b, OnOp on_op,
                                 std::chrono::nanoseconds& per_layer) const;

  model_spec model_;
  hardware_spec hardware_;
  deployment deploy_;
  /// [n]: seconds of one block's operators other than attention, and of the
  /// head, for n decode items that all sample (index 0 unused).
  std::vector<double> decode_block_, decode_head_;
};

}  // namespace accellm::device::sim

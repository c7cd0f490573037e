// cost_model: how long one iteration (one forward pass over a batch) takes on
// a simulated instance. Implementations: roofline_model (analytic, per
// operator) and profile_model (interpolated profile table).
//
// Thread contract: estimate() is const and touches no shared state, so one
// model may be queried from several threads at once.
#pragma once

#include "common/result.hpp"
#include "device/backend.hpp"

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

namespace accellm::device::sim {

/// Cost of one operator over the whole iteration (summed over layers), per
/// device of the tensor-parallel group.
struct op_cost {
  std::string_view name;  ///< "qkv_proj", "attention", "allreduce", ...: static strings
  double flops = 0.0;     ///< floating-point operations per device
  double bytes = 0.0;     ///< HBM (or link, for collectives) bytes per device
  std::chrono::nanoseconds compute{0};  ///< flops / (peak * eta); 0 for collectives
  std::chrono::nanoseconds memory{0};   ///< bytes / (bandwidth * eta)
  std::chrono::nanoseconds time{0};     ///< what the operator adds to the iteration
  bool collective = false;              ///< bytes cross links (TP collective), not HBM
};

/// Where an iteration's time goes.
struct cost_breakdown {
  std::vector<op_cost> ops;  ///< in execution order; may be empty (profiles)
  /// Fixed cost no operator accounts for (per iteration and per layer),
  /// included in total.
  std::chrono::nanoseconds overhead{0};
  std::chrono::nanoseconds total{0};  ///< the iteration time
  /// Time of one transformer block (what a layer-wise KV transfer overlaps
  /// with); 0 when the model cannot tell (profiles).
  std::chrono::nanoseconds per_layer{0};
  /// The op called `name`, or nullptr.
  const op_cost* find(std::string_view name) const noexcept {
    for (const op_cost& op : ops) {
      if (op.name == name) return &op;
    }
    return nullptr;
  }
};

/// Predicts iteration times. Inputs are only the shape of the batch: token
/// ids in batch items are ignored.
class cost_model {
 public:
  virtual ~cost_model() = default;

  /// Short description for tables, e.g. "roofline h100 tp8".
  virtual std::string describe() const = 0;

  /// Breaks one iteration down. Fails with invalid_argument for an empty
  /// batch, an item with num_tokens == 0, or a decode item with num_tokens != 1.
  virtual result<cost_breakdown> estimate(const batch& b) const = 0;

  /// estimate(b).total. Models override it when the total alone is cheaper
  /// (the simulator asks it once per iteration).
  virtual result<std::chrono::nanoseconds> iteration_time(const batch& b) const {
    auto r = estimate(b);
    if (!r) return std::move(r).err();
    return r->total;
  }
};

/// The checks every cost model applies to a batch (see estimate()).
status check_batch_shape(const batch& b);
/// check_batch_shape's checks of one item.
status check_item_shape(const batch_item& item);

/// Seconds as a double -> nanoseconds, rounded to nearest.
std::chrono::nanoseconds from_seconds(double seconds) noexcept;

}  // namespace accellm::device::sim

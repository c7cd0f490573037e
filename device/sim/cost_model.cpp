#include "device/sim/cost_model.hpp"

#include <cmath>
#include <string>

namespace accellm::device::sim {

status check_item_shape(const batch_item& it) {
  // Messages are built only on failure: this runs once per simulated iteration.
  if (it.num_tokens == 0) return fail(errc::invalid_argument, "num_tokens is 0");
  if (it.kind == phase::decode && it.num_tokens != 1) {
    return fail(errc::invalid_argument,
                "a decode item has num_tokens " + std::to_string(it.num_tokens) + ", expected 1");
  }
  return {};
}

status check_batch_shape(const batch& b) {
  if (b.items.empty()) return fail(errc::invalid_argument, "batch is empty");
  for (std::size_t i = 0; i < b.items.size(); ++i) {
    if (auto ok = check_item_shape(b.items[i]); !ok)
      return std::move(ok).err().context("batch.items[" + std::to_string(i) + "]");
  }
  return {};
}

std::chrono::nanoseconds from_seconds(double seconds) noexcept {
  return std::chrono::nanoseconds{static_cast<std::int64_t>(std::llround(seconds * 1e9))};
}

}  // namespace accellm::device::sim

#include "device/sim/kv_transfer.hpp"

#include "device/sim/cost_model.hpp"

#include <algorithm>
#include <vector>

namespace accellm::device::sim {

using std::chrono::nanoseconds;

nanoseconds kv_transfer_time(std::uint64_t bytes, const link_spec& link) noexcept {
  const double seconds = link.bandwidth > 0.0 ? static_cast<double>(bytes) / link.bandwidth : 0.0;
  return link.latency + from_seconds(seconds);
}

result<layerwise_transfer> simulate_layerwise(std::span<const nanoseconds> layer_compute,
                                              std::span<const std::uint64_t> layer_bytes,
                                              const link_spec& link) {
  if (layer_compute.empty() || layer_compute.size() != layer_bytes.size()) {
    return fail(errc::invalid_argument,
                "simulate_layerwise: " + std::to_string(layer_compute.size()) +
                    " compute times for " + std::to_string(layer_bytes.size()) + " layers");
  }
  nanoseconds compute_done{0};
  nanoseconds link_free{0};
  std::uint64_t total_bytes = 0;
  for (std::size_t i = 0; i < layer_compute.size(); ++i) {
    compute_done += layer_compute[i];
    const nanoseconds start = std::max(compute_done, link_free);
    link_free = start + kv_transfer_time(layer_bytes[i], link);
    total_bytes += layer_bytes[i];
  }
  layerwise_transfer out;
  out.prefill_end = compute_done;
  out.transfer_end = link_free;
  out.exposed = link_free - compute_done;
  out.serial = kv_transfer_time(total_bytes, link);
  return out;
}

layerwise_transfer simulate_layerwise(std::uint32_t layers, nanoseconds per_layer,
                                      std::uint64_t bytes_per_layer, const link_spec& link) {
  if (layers == 0) return {};
  const std::vector<nanoseconds> compute(layers, per_layer);
  const std::vector<std::uint64_t> bytes(layers, bytes_per_layer);
  return *simulate_layerwise(compute, bytes, link);
}

}  // namespace accellm::device::sim

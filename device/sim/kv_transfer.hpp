// KV-cache transfer over a link, and the layer-wise overlap of that transfer
// with the prefill that produces it.
//
// A prefill instance can send layer i's KV as soon as layer i finishes, while
// it computes layer i + 1 (Splitwise, Mooncake, AcceLLM do this). What the
// decode side waits for after the prefill ends is then not the whole transfer
// but what the pipeline leaves exposed: one layer's transfer when the link is
// fast, (total transfer - prefill + one layer's compute) when it is slow.
// simulate_layerwise() runs that pipeline event by event rather than assuming
// an overlap fraction (SplitwiseSim's "10x bandwidth").
//
// Byte counts are per link: under tensor parallelism each of the t devices
// sends its own 1/t of the KV over its own link, in parallel, so pass
// bytes / t.
//
// Pure functions; safe from any thread.
#pragma once

#include "common/result.hpp"
#include "device/hardware_spec.hpp"

#include <chrono>
#include <cstdint>
#include <span>

namespace accellm::device::sim {

/// One transfer: link.latency + bytes / link.bandwidth.
std::chrono::nanoseconds kv_transfer_time(std::uint64_t bytes, const link_spec& link) noexcept;

/// Timeline of a layer-wise transfer, measured from the start of the prefill.
struct layerwise_transfer {
  std::chrono::nanoseconds prefill_end{0};   ///< last layer's compute done
  std::chrono::nanoseconds transfer_end{0};  ///< last layer's KV arrived
  std::chrono::nanoseconds exposed{0};       ///< transfer_end - prefill_end
  std::chrono::nanoseconds serial{0};        ///< exposed time if sent only after prefill
};

/// Pipelines compute and transfer: layer i's transfer (one kv_transfer_time
/// of layer_bytes[i]) starts when layer i's compute ends and the link has
/// finished layer i - 1. Fails with invalid_argument when the spans differ
/// in length or are empty.
result<layerwise_transfer> simulate_layerwise(
    std::span<const std::chrono::nanoseconds> layer_compute,
    std::span<const std::uint64_t> layer_bytes, const link_spec& link);

/// The same for `layers` identical layers. `layers` == 0 gives all zeros.
layerwise_transfer simulate_layerwise(std::uint32_t layers, std::chrono::nanoseconds per_layer,
                                      std::uint64_t bytes_per_layer, const link_spec& link);

}  // namespace accellm::device::sim

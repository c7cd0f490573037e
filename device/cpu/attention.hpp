// cpu::attention: causal grouped-query attention of one query row over a
// request's paged KV cache.
//
// Query head h reads KV head h / (heads / kv_heads). The row at position p
// attends to positions [0, p] of its own request — the causal mask is simply
// where the loop stops. Scores, softmax and the weighted sum of V run in
// position order with the kernels of kernels.hpp, so the result depends only
// on the row's query and the cached K/V, never on the rest of the batch.
//
// Thread contract: pure function on caller-owned memory; reentrant.
#pragma once

#include "device/cpu/kv_cache.hpp"

#include <cstdint>

namespace accellm::device::cpu {

/// Head counts of one attention layer.
struct attention_shape {
  std::uint32_t heads = 0;
  std::uint32_t kv_heads = 0;
  std::uint32_t head_dim = 0;
};

/// out[h * head_dim + j] for every query head h: softmax(q_h . K / sqrt(head_dim))
/// over positions [0, pos] times V. `q` and `out` are [heads x head_dim];
/// `scores` is scratch of at least pos + 1 floats. Positions [0, pos] must be
/// written in `kv`.
void attend(const float* q, std::uint32_t pos, const kv_layer_view& kv,
            const attention_shape& shape, float* scores, float* out) noexcept;

}  // namespace accellm::device::cpu

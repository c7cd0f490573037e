#include "device/cpu/attention.hpp"

#include "device/cpu/kernels.hpp"

#include <algorithm>
#include <cmath>
#include <span>

namespace accellm::device::cpu {
namespace {

// Calls f(t, k_row, v_row) for positions t in [0, n), walking the block
// table once instead of dividing every position by block_tokens.
template <class F>
void for_each_position(const kv_layer_view& kv, std::uint32_t n, F&& f) {
  const std::uint64_t v_shift = kv.v_shift();
  std::uint32_t t = 0;
  for (std::uint32_t b = 0; t < n; ++b) {
    const float* k = kv.block_k(b);
    const float* v = k + v_shift;
    for (std::uint32_t s = 0; s < kv.block_tokens && t < n; ++s, ++t)
      f(t, k + static_cast<std::uint64_t>(s) * kv.kv_width,
        v + static_cast<std::uint64_t>(s) * kv.kv_width);
  }
}

}  // namespace

void attend(const float* q, std::uint32_t pos, const kv_layer_view& kv,
            const attention_shape& shape, float* scores, float* out) noexcept {
  const std::uint32_t hd = shape.head_dim;
  const std::uint32_t group = shape.heads / shape.kv_heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const std::uint32_t n = pos + 1;
  for (std::uint32_t h = 0; h < shape.heads; ++h) {
    const float* qh = q + static_cast<std::uint64_t>(h) * hd;
    const std::uint64_t col = static_cast<std::uint64_t>(h / group) * hd;
    float* o = out + static_cast<std::uint64_t>(h) * hd;
    for_each_position(kv, n, [&](std::uint32_t t, const float* k, const float*) {
      scores[t] = dot(qh, k + col, hd) * scale;
    });
    softmax(std::span<float>{scores, n});
    std::fill(o, o + hd, 0.0f);
    for_each_position(kv, n, [&](std::uint32_t t, const float*, const float* v) {
      const float w = scores[t];
      for (std::uint32_t j = 0; j < hd; ++j) o[j] += w * v[col + j];
    });
  }
}

}  // namespace accellm::device::cpu

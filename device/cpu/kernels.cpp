#include "device/cpu/kernels.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>

namespace accellm::device::cpu {
namespace {

// GCC/Clang vector extension: four float lanes, each lane an ordinary IEEE
// single operation, so the vectorised arithmetic is exactly specified (no
// reassociation, unlike auto-vectorised reductions under -ffast-math). 16
// bytes is the baseline x86-64 (SSE2) and AArch64 (NEON) width, which also
// avoids the psabi notes that wider vectors trigger without AVX.
using vec4 = float __attribute__((vector_size(16)));

inline vec4 load4(const float* p) noexcept {
  vec4 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// Finishes one dot product: the fixed lane combine, then the tail in order.
// Every kernel goes through here, which is what makes a row's result
// independent of the tile shape that computed it.
inline float finish(vec4 acc, const float* a, const float* b, std::size_t k,
                    std::size_t n) noexcept {
  float s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
  for (; k < n; ++k) s += a[k] * b[k];
  return s;
}

// RT rows of x times OT rows of w: RT * OT independent dot products sharing
// loads. Small fixed bounds, so the arrays live in registers.
template <int RT, int OT>
void tile(const float* x, std::size_t in, const float* w, std::size_t out, float* y) noexcept {
  vec4 acc[RT][OT] = {};
  std::size_t k = 0;
  for (; k + 4 <= in; k += 4) {
    vec4 wv[OT];
    for (int o = 0; o < OT; ++o) wv[o] = load4(w + o * in + k);
    for (int r = 0; r < RT; ++r) {
      const vec4 xv = load4(x + r * in + k);
      for (int o = 0; o < OT; ++o) acc[r][o] += xv * wv[o];
    }
  }
  for (int r = 0; r < RT; ++r)
    for (int o = 0; o < OT; ++o) y[r * out + o] = finish(acc[r][o], x + r * in, w + o * in, k, in);
}

// All outputs [o0, o1) for rows [r0, r1).
void block(const float* x, std::size_t r0, std::size_t r1, std::size_t in, const float* w,
           std::size_t o0, std::size_t o1, std::size_t out, float* y) noexcept {
  std::size_t r = r0;
  for (; r + 4 <= r1; r += 4) {
    std::size_t o = o0;
    for (; o + 2 <= o1; o += 2) tile<4, 2>(x + r * in, in, w + o * in, out, y + r * out + o);
    if (o < o1) tile<4, 1>(x + r * in, in, w + o * in, out, y + r * out + o);
  }
  for (; r < r1; ++r) {
    std::size_t o = o0;
    for (; o + 2 <= o1; o += 2) tile<1, 2>(x + r * in, in, w + o * in, out, y + r * out + o);
    if (o < o1) tile<1, 1>(x + r * in, in, w + o * in, out, y + r * out + o);
  }
}

}  // namespace

void matmul(const float* x, std::size_t rows, std::size_t in, const float* w, std::size_t out,
            float* y) noexcept {
  // Block the outputs so one block of W (about 128 KiB) stays in L2 while
  // every row passes over it; blocking changes only the visiting order.
  const std::size_t block_outputs =
      std::max<std::size_t>(2, (32768 / std::max<std::size_t>(in, 1)) & ~std::size_t{1});
  for (std::size_t o0 = 0; o0 < out; o0 += block_outputs)
    block(x, 0, rows, in, w, o0, std::min(out, o0 + block_outputs), out, y);
}

float dot(const float* a, const float* b, std::size_t n) noexcept {
  vec4 acc = {};
  std::size_t k = 0;
  for (; k + 4 <= n; k += 4) acc += load4(a + k) * load4(b + k);
  return finish(acc, a, b, k, n);
}

void rmsnorm(const float* x, const float* gain, std::size_t n, float eps, float* out) noexcept {
  const float mean_square = dot(x, x, n) / static_cast<float>(n);
  const float inv = 1.0f / std::sqrt(mean_square + eps);
  for (std::size_t i = 0; i < n; ++i) out[i] = x[i] * inv * gain[i];
}

void fill_rope_table(std::size_t positions, std::size_t head_dim, double theta, float* cos,
                     float* sin) noexcept {
  const std::size_t half = head_dim / 2;
  for (std::size_t i = 0; i < half; ++i) {
    const double inv_freq =
        std::pow(theta, -2.0 * static_cast<double>(i) / static_cast<double>(head_dim));
    for (std::size_t p = 0; p < positions; ++p) {
      const double angle = static_cast<double>(p) * inv_freq;
      cos[p * half + i] = static_cast<float>(std::cos(angle));
      sin[p * half + i] = static_cast<float>(std::sin(angle));
    }
  }
}

void rope(float* x, std::size_t heads, std::size_t pos, const rope_table& table) noexcept {
  const std::size_t half = table.half;
  const float* c = table.cos + pos * half;
  const float* s = table.sin + pos * half;
  for (std::size_t h = 0; h < heads; ++h) {
    float* v = x + h * 2 * half;
    for (std::size_t i = 0; i < half; ++i) {
      const float a = v[i];
      const float b = v[i + half];
      v[i] = a * c[i] - b * s[i];
      v[i + half] = a * s[i] + b * c[i];
    }
  }
}

float exp_fixed(float x) noexcept {
  // Cephes expf: e^x = 2^n * e^r with n = round(x / ln 2) and |r| <= ln2 / 2;
  // ln 2 is split in two so that r is computed almost exactly.
  x = std::clamp(x, -87.0f, 88.0f);
  const float n = std::floor(x * 1.44269504088896341f + 0.5f);
  const float r = (x - n * 0.693359375f) - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float er = p * r * r + r + 1.0f;
  const auto bits = static_cast<std::uint32_t>(static_cast<std::int32_t>(n) + 127) << 23;
  return er * std::bit_cast<float>(bits);
}

void silu_mul(const float* gate, const float* up, std::size_t n, float* h) noexcept {
  for (std::size_t i = 0; i < n; ++i) h[i] = gate[i] / (1.0f + exp_fixed(-gate[i])) * up[i];
}

void softmax(std::span<float> x) noexcept {
  if (x.empty()) return;
  float max = x[0];
  for (const float v : x) max = std::max(max, v);
  float sum = 0.0f;
  for (float& v : x) {
    v = exp_fixed(v - max);
    sum += v;
  }
  const float inv = 1.0f / sum;
  for (float& v : x) v *= inv;
}

std::uint32_t argmax(std::span<const float> x) noexcept {
  std::uint32_t best = 0;
  for (std::uint32_t i = 1; i < x.size(); ++i)
    if (x[i] > x[best]) best = i;
  return best;
}

}  // namespace accellm::device::cpu

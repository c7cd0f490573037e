// cpu::kernels: the fp32 operators of the cpu backend's forward pass.
//
// Every kernel computes each output row with a fixed sequence of float
// operations that depends only on that row's inputs and the weights, never on
// how many rows are processed together or where a row sits among them. This is
// what makes the backend batch invariant: a request's tokens are bit-identical
// whatever batch it runs in. The kernels' translation unit is compiled with
// -ffp-contract=off so that the compiler cannot fuse a multiply-add in one code
// path and not in another.
//
// Matrices are row-major and contiguous. A weight matrix W of a linear layer
// is stored [out x in] (one row per output feature, like nn.Linear), so
// y = x W^T and each output is a dot product of two contiguous rows.
//
// Thread contract: pure functions on caller-owned memory; reentrant.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace accellm::device::cpu {

/// y[r][o] = sum_k x[r][k] * w[o][k] for r < rows, o < out. `x` is
/// [rows x in], `w` is [out x in], `y` is [rows x out] and must not alias `x`.
/// Row r of y is bit-identical for any `rows` and any position of r.
void matmul(const float* x, std::size_t rows, std::size_t in, const float* w, std::size_t out,
            float* y) noexcept;

/// Dot product of two length-n vectors with the same fixed reduction order as
/// matmul (4 lanes, then (l0 + l1) + (l2 + l3), then the n % 4 tail in order).
float dot(const float* a, const float* b, std::size_t n) noexcept;

/// out = x / sqrt(mean(x^2) + eps) * gain, elementwise over n. `out` may alias `x`.
void rmsnorm(const float* x, const float* gain, std::size_t n, float eps, float* out) noexcept;

/// Precomputed RoPE rotation for positions [0, max_positions): for position p
/// and frequency i < head_dim / 2, cos and sin of p * theta^(-2i / head_dim).
/// Layout: [max_positions x head_dim / 2] each.
struct rope_table {
  std::size_t half = 0;  ///< head_dim / 2
  const float* cos = nullptr;
  const float* sin = nullptr;
};

/// Fills `cos` and `sin` ([positions x head_dim / 2] each) for base `theta`.
/// Computed in double and rounded once, so the table is the same on every
/// conforming libm to within the last bit of a double.
void fill_rope_table(std::size_t positions, std::size_t head_dim, double theta, float* cos,
                     float* sin) noexcept;

/// Rotates `heads` consecutive vectors of length 2 * table.half in place by
/// position `pos`, pairing element i with element i + half (the Llama / NeoX
/// "rotate half" convention). At pos 0 this is the identity.
void rope(float* x, std::size_t heads, std::size_t pos, const rope_table& table) noexcept;

/// h[i] = silu(gate[i]) * up[i] for i < n, silu(g) = g / (1 + exp(-g)).
void silu_mul(const float* gate, const float* up, std::size_t n, float* h) noexcept;

/// e^x in float from a fixed polynomial: the same bits on every machine (no
/// dependence on the libm build or its CPU dispatch). Relative error < 2e-7
/// for x in [-87, 88]; clamps outside.
float exp_fixed(float x) noexcept;

/// In-place softmax over `x` with fixed reduction order (max, then exp, then
/// the sum in index order, then one multiply by 1/sum).
void softmax(std::span<float> x) noexcept;

/// Index of the largest element; ties go to the lowest index. Empty -> 0.
std::uint32_t argmax(std::span<const float> x) noexcept;

}  // namespace accellm::device::cpu

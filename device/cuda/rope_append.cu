#include "device/cuda/check.hpp"
#include "device/cuda/launch.cuh"
#include "device/cuda/ptx.cuh"
#include "device/cuda/rope_append.cuh"
#include "device/cuda/vec.cuh"

#include <algorithm>
#include <cmath>

namespace accellm::device::cuda {
namespace {

constexpr unsigned threads = 128;

// Block (row, chunk): the threads of a row's chunks walk its (heads +
// kv_heads) * half / W rotation units (W consecutive i of one head, with their
// partners i + half), then its V row in units of W; several chunks per row
// keep small decode batches from running on a handful of SMs. W = vec::width
// needs half % W == 0 and 16-byte aligned pointers (then every row of Q, K, V
// and of the tables is aligned too). Each element is rotated exactly as the
// one-pair-per-thread kernel did, so both paths give the same bits.
template <std::uint32_t W>
__global__ void rope_append_kernel(const __nv_bfloat16* __restrict__ qkv, attn_shape shape,
                                   row_tables t, const float* __restrict__ cos,
                                   const float* __restrict__ sin, __nv_bfloat16* __restrict__ q_out,
                                   kv_pool_view kv, std::uint32_t layer) {
  ptx::follow_previous_grid();
  const std::uint32_t row = blockIdx.x;
  const std::uint32_t hd = shape.head_dim, half = hd / 2;
  const std::uint32_t qw = shape.q_width(), kvw = shape.kv_width();
  const __nv_bfloat16* in = qkv + static_cast<std::uint64_t>(row) * (qw + 2 * kvw);
  const std::uint32_t first = blockIdx.y * blockDim.x + threadIdx.x;
  const std::uint32_t step = gridDim.y * blockDim.x;
  const auto pos = static_cast<std::uint32_t>(t.pos[row]);
  const auto slot = static_cast<std::uint32_t>(t.slot[row]);
  const float* c = cos + static_cast<std::uint64_t>(pos) * half;
  const float* sn = sin + static_cast<std::uint64_t>(pos) * half;
  __nv_bfloat16* q_row = q_out + static_cast<std::uint64_t>(row) * qw;
  __nv_bfloat16* k_dst = kv.pool + kv.row_offset(slot, layer, 0, pos);
  __nv_bfloat16* v_dst = kv.pool + kv.row_offset(slot, layer, 1, pos);
  const std::uint32_t per_head = half / W;
  const std::uint32_t units = (shape.heads + shape.kv_heads) * per_head;
  for (std::uint32_t p = first; p < units; p += step) {
    const std::uint32_t head = p / per_head, i = (p % per_head) * W;
    const __nv_bfloat16* v = in + head * hd;  // K heads follow the Q heads in `in`
    float a[W], b[W], cw[W], sw[W], lo[W], hi[W];
    vec::load(v + i, a);
    vec::load(v + i + half, b);
    vec::load(c + i, cw);
    vec::load(sn + i, sw);
#pragma unroll
    for (std::uint32_t e = 0; e < W; ++e) {
      // No contraction, as on the CPU: a*c - b*s with each product rounded.
      lo[e] = __fsub_rn(__fmul_rn(a[e], cw[e]), __fmul_rn(b[e], sw[e]));
      hi[e] = __fadd_rn(__fmul_rn(a[e], sw[e]), __fmul_rn(b[e], cw[e]));
    }
    __nv_bfloat16* dst = head < shape.heads ? q_row + head * hd : k_dst + (head - shape.heads) * hd;
    vec::store(dst + i, lo);
    vec::store(dst + i + half, hi);
  }
  const __nv_bfloat16* v_in = in + qw + kvw;
  for (std::uint32_t j = first; j < kvw / W; j += step) vec::copy<W>(v_dst + j * W, v_in + j * W);
}

template <std::uint32_t W>
status launch(const __nv_bfloat16* qkv, std::uint32_t rows, const attn_shape& shape,
              const row_tables& t, const float* cos, const float* sin, __nv_bfloat16* q_out,
              const kv_pool_view& kv, std::uint32_t layer, cudaStream_t s) {
  const std::uint32_t units = (shape.heads + shape.kv_heads) * (shape.head_dim / 2 / W);
  const dim3 grid(rows, std::min<std::uint32_t>((units + threads - 1) / threads, 16));
  return launch_kernel(rope_append_kernel<W>, grid, dim3(threads), 0, s, qkv, shape, t, cos, sin,
                       q_out, kv, layer);
}

}  // namespace

status rope_append(const __nv_bfloat16* qkv, std::uint32_t rows, const attn_shape& shape,
                   const row_tables& t, const float* cos, const float* sin, __nv_bfloat16* q_out,
                   const kv_pool_view& kv, std::uint32_t layer, cudaStream_t s) {
  if (rows == 0) return {};
  if (shape.head_dim == 0 || shape.head_dim % 2 != 0 || shape.heads == 0 || shape.kv_heads == 0)
    return fail(errc::invalid_argument, "rope_append: head_dim must be even and heads non-zero");
  if (shape.kv_width() != kv.kv_width || layer >= kv.layers)
    return fail(errc::invalid_argument, "rope_append: shape does not match the KV pool");
  if (!qkv || !t.pos || !t.slot || !cos || !sin || !q_out || !kv.pool || !kv.tables)
    return fail(errc::invalid_argument, "rope_append: null pointer");
  // half % 8 == 0 makes every row offset (head_dim, widths, pos * half) a
  // multiple of 8 elements, so aligned bases mean aligned rows.
  if (vec::fits(shape.head_dim / 2, qkv, cos, sin, q_out, kv.pool))
    return launch<vec::width>(qkv, rows, shape, t, cos, sin, q_out, kv, layer, s);
  return launch<1>(qkv, rows, shape, t, cos, sin, q_out, kv, layer, s);
}

std::vector<float> rope_table_host(std::uint32_t positions, std::uint32_t head_dim, double theta) {
  const std::size_t half = head_dim / 2;
  std::vector<float> out(2 * positions * half);
  float* cos = out.data();
  float* sin = out.data() + positions * half;
  for (std::size_t i = 0; i < half; ++i) {
    const double inv_freq =
        std::pow(theta, -2.0 * static_cast<double>(i) / static_cast<double>(head_dim));
    for (std::size_t p = 0; p < positions; ++p) {
      const double angle = static_cast<double>(p) * inv_freq;
      cos[p * half + i] = static_cast<float>(std::cos(angle));
      sin[p * half + i] = static_cast<float>(std::sin(angle));
    }
  }
  return out;
}

}  // namespace accellm::device::cuda

#include "device/cuda/check.hpp"
#include "device/cuda/rope_append.cuh"

#include <algorithm>
#include <cmath>

namespace accellm::device::cuda {
namespace {

// Block (row, chunk): the threads of a row's chunks walk its (heads +
// kv_heads) * half rotation pairs, then its V elements; several chunks per row
// keep small decode batches from running on a handful of SMs.
__global__ void rope_append_kernel(const __nv_bfloat16* qkv, attn_shape shape, row_tables t,
                                   const float* cos, const float* sin, __nv_bfloat16* q_out,
                                   kv_pool_view kv, std::uint32_t layer) {
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
  __nv_bfloat16* k_dst = kv.pool + kv.row_offset(slot, layer, 0, pos);
  __nv_bfloat16* v_dst = kv.pool + kv.row_offset(slot, layer, 1, pos);
  const std::uint32_t pairs = (shape.heads + shape.kv_heads) * half;
  for (std::uint32_t p = first; p < pairs; p += step) {
    const std::uint32_t head = p / half, i = p % half;
    const __nv_bfloat16* v = in + head * hd;  // K heads follow the Q heads in `in`
    const float a = __bfloat162float(v[i]), b = __bfloat162float(v[i + half]);
    // No contraction, as on the CPU: a*c - b*s with each product rounded.
    const float lo = __fsub_rn(__fmul_rn(a, c[i]), __fmul_rn(b, sn[i]));
    const float hi = __fadd_rn(__fmul_rn(a, sn[i]), __fmul_rn(b, c[i]));
    if (head < shape.heads) {
      __nv_bfloat16* q = q_out + static_cast<std::uint64_t>(row) * qw + head * hd;
      q[i] = __float2bfloat16(lo);
      q[i + half] = __float2bfloat16(hi);
    } else {
      __nv_bfloat16* k = k_dst + (head - shape.heads) * hd;
      k[i] = __float2bfloat16(lo);
      k[i + half] = __float2bfloat16(hi);
    }
  }
  const __nv_bfloat16* v_in = in + qw + kvw;
  for (std::uint32_t j = first; j < kvw; j += step) v_dst[j] = v_in[j];
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
  const std::uint32_t pairs = (shape.heads + shape.kv_heads) * shape.head_dim / 2;
  const dim3 grid(rows, std::min<std::uint32_t>((pairs + 127) / 128, 16));
  rope_append_kernel<<<grid, 128, 0, s>>>(qkv, shape, t, cos, sin, q_out, kv, layer);
  ACCELLM_CUDA_TRY(cudaGetLastError());
  return {};
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

#include "device/cuda/check.hpp"
#include "device/cuda/gemv.cuh"
#include "device/cuda/launch.cuh"
#include "device/cuda/ptx.cuh"

namespace accellm::device::cuda {
namespace {

constexpr int warps = 4;
constexpr int outs_per_warp = 4;

__device__ inline void fma8(float& acc, const uint4& a, const uint4& b) {
  const auto* ha = reinterpret_cast<const __nv_bfloat162*>(&a);
  const auto* hb = reinterpret_cast<const __nv_bfloat162*>(&b);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 fa = __bfloat1622float2(ha[i]), fb = __bfloat1622float2(hb[i]);
    acc += fa.x * fb.x + fa.y * fb.y;
  }
}

template <int R>
__global__ void __launch_bounds__(warps * 32)
    gemv_kernel(const __nv_bfloat16* x, std::uint32_t in, const __nv_bfloat16* w, std::uint32_t out,
                float* y, float beta) {
  ptx::follow_previous_grid();
  const int lane = threadIdx.x % 32;
  const std::uint32_t o0 = (blockIdx.x * warps + threadIdx.x / 32) * outs_per_warp;
  if (o0 >= out) return;
  const std::uint32_t vecs = in / 8;
  const auto* wv = reinterpret_cast<const uint4*>(w);
  const auto* xv = reinterpret_cast<const uint4*>(x);
  float acc[R][outs_per_warp] = {};
  // Two k-steps per iteration: eight independent 16-byte weight loads in
  // flight per lane before the first use.
  for (std::uint32_t k0 = lane; k0 < vecs; k0 += 64) {
    uint4 wr[2][outs_per_warp];
#pragma unroll
    for (int u = 0; u < 2; ++u)
#pragma unroll
      for (int j = 0; j < outs_per_warp; ++j) {
        const std::uint32_t k = k0 + 32 * u;
        wr[u][j] = (o0 + j < out && k < vecs) ? wv[static_cast<std::uint64_t>(o0 + j) * vecs + k]
                                              : make_uint4(0, 0, 0, 0);
      }
#pragma unroll
    for (int u = 0; u < 2; ++u) {
      const std::uint32_t k = k0 + 32 * u;
      if (k >= vecs) break;
#pragma unroll
      for (int r = 0; r < R; ++r) {
        const uint4 xr = __ldg(xv + static_cast<std::uint64_t>(r) * vecs + k);
#pragma unroll
        for (int j = 0; j < outs_per_warp; ++j) fma8(acc[r][j], xr, wr[u][j]);
      }
    }
  }
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int j = 0; j < outs_per_warp; ++j) {
      float v = acc[r][j];
      for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
      if (lane == 0 && o0 + j < out) {
        float* dst = y + static_cast<std::uint64_t>(r) * out + o0 + j;
        *dst = beta == 0.0f ? v : v + beta * *dst;
      }
    }
}

template <int R>
status launch(const __nv_bfloat16* x, std::uint32_t in, const __nv_bfloat16* w, std::uint32_t out,
              float* y, float beta, cudaStream_t s) {
  const std::uint32_t per_block = warps * outs_per_warp;
  return launch_kernel(gemv_kernel<R>, dim3((out + per_block - 1) / per_block), dim3(warps * 32), 0,
                       s, x, in, w, out, y, beta);
}

}  // namespace

status gemv(const __nv_bfloat16* x, std::uint32_t rows, std::uint32_t in, const __nv_bfloat16* w,
            std::uint32_t out, float* y, float beta, cudaStream_t s) {
  if (rows == 0) return {};
  if (rows > gemv_max_rows || in == 0 || in % 8 != 0 || out == 0 || !x || !w || !y)
    return fail(errc::invalid_argument,
                "gemv: rows must be 1..8, in a positive multiple of 8, pointers non-null");
  switch (rows) {
    case 1:
      return launch<1>(x, in, w, out, y, beta, s);
    case 2:
      return launch<2>(x, in, w, out, y, beta, s);
    case 3:
      return launch<3>(x, in, w, out, y, beta, s);
    case 4:
      return launch<4>(x, in, w, out, y, beta, s);
    case 5:
      return launch<5>(x, in, w, out, y, beta, s);
    case 6:
      return launch<6>(x, in, w, out, y, beta, s);
    case 7:
      return launch<7>(x, in, w, out, y, beta, s);
    default:
      return launch<8>(x, in, w, out, y, beta, s);
  }
}

}  // namespace accellm::device::cuda

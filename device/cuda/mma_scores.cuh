// mma_scores: the two products both mma.sync attention kernels compute the
// same way (rows64 in prefill_mma.cuh, the decode pass 1 in
// decode_kernels.cuh): the score tile and P V. Device code only; built on ptx.cuh, so that the host
// emulator runs it too.
#pragma once

#include "device/cuda/ptx.cuh"

#include <cuda_bf16.h>

#include <cstdint>

namespace accellm::device::cuda::mma {

/// s = q K^T for `keys` keys of a row-major K tile (pitch `stride`
/// elements) against the A fragments qa of one m16 tile of queries: k-steps
/// outside, key tiles inside (independent accumulators per k-step). krow is
/// the lane's ldmatrix.x4 row address for the B fragments of key tiles j and
/// j + 1: lane group m = lane / 8 names rows of key tile j + m / 2, dims
/// + 8 (m % 2).
template <int HD, int keys>
__device__ __forceinline__ void scores(float (&s)[keys / 8][4],
                                       const std::uint32_t (&qa)[HD / 16][4],
                                       const __nv_bfloat16* krow, int stride) {
#pragma unroll
  for (int j = 0; j < keys / 8; ++j) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.0f;
#pragma unroll
  for (int ks = 0; ks < HD / 16; ++ks)
#pragma unroll
    for (int j = 0; j < keys / 8; j += 2) {
      std::uint32_t b[4];
      ptx::ldmatrix_x4(b, krow + 8 * j * stride + ks * 16);
      ptx::mma_bf16(s[j], qa[ks], b[0], b[1]);
      ptx::mma_bf16(s[j + 1], qa[ks], b[2], b[3]);
    }
}

/// o += P V for 16 keys: pa is P's A fragment (16 queries x 16 keys), vrow
/// the lane's ldmatrix.x4.trans row address in the row-major V tile: lane
/// group m names key rows + 8 (m % 2) of dim tile d + m / 2, so thread (g, t)
/// gets keys 2t, 2t + 1 of dim g, the B fragments of dim tiles d and d + 1.
template <int HD>
__device__ __forceinline__ void add_pv(float (&o)[HD / 8][4], const std::uint32_t (&pa)[4],
                                       const __nv_bfloat16* vrow) {
#pragma unroll
  for (int d = 0; d < HD / 8; d += 2) {
    std::uint32_t b[4];
    ptx::ldmatrix_x4<true>(b, vrow + d * 8);
    ptx::mma_bf16(o[d], pa, b[0], b[1]);
    ptx::mma_bf16(o[d + 1], pa, b[2], b[3]);
  }
}

}  // namespace accellm::device::cuda::mma

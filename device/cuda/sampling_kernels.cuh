// The greedy sampling kernel of sampling.cu, in a header so that the host
// emulator (tests/device/cuda/emu/) runs its source: argmax of each row of
// fp32 logits, ties to the lowest index (as device/cpu's argmax).
//
// One block of `argmax_threads` per row. The row is a vocabulary's worth of
// logits (128256 floats, 501 KiB, for Llama-3), and one block reads it
// alone, so what bounds it is how many loads the block keeps in flight: each
// thread issues four 16-byte loads (float4; scalar loads when the row is not
// 16-byte aligned) before it compares any, 64 KiB in flight per block. The
// kernel this replaces had 256 threads with one 4-byte load each per step;
// it is the likely rest of the LM head's time in the H100 breakdown (0.147
// ms for Llama-2-7B at batch 1, where the gemv alone would stream the head's
// 262 MB in about 0.100 ms at the 2.62 TB/s bench_gpu_ceilings measured),
// and Llama-3's vocabulary is four times longer. The block's result is
// reduced over each warp by shuffles, then over the warps through shared
// memory.
//
// Device code, internal to device/cuda.
#pragma once

#include "device/cuda/ptx.cuh"

#include <cuda_runtime_api.h>

#include <cmath>
#include <cstdint>

namespace accellm::device::cuda::sampling_kernels {

/// Threads per block: a multiple of 32, at most 32 warps.
inline constexpr unsigned argmax_threads = 1024;

/// Keeps (value, index) with the larger value, the smaller index on ties:
/// the order candidates arrive in does not matter.
__device__ inline void better(float& v, int& i, float v2, int i2) {
  if (v2 > v || (v2 == v && i2 < i)) {
    v = v2;
    i = i2;
  }
}

/// Four consecutive logits from index `at` on.
__device__ inline void better4(float& v, int& i, const float4& f, int at) {
  better(v, i, f.x, at);
  better(v, i, f.y, at + 1);
  better(v, i, f.z, at + 2);
  better(v, i, f.w, at + 3);
}

/// The argmax of a block's rows: Vec4 reads float4s (vocab % 4 == 0 and
/// logits 16-byte aligned), else floats. blockDim.x is a multiple of 32 up
/// to 1024.
template <bool Vec4>
__global__ void __launch_bounds__(argmax_threads)
    argmax_kernel(const float* logits, std::uint32_t vocab, std::int32_t* out) {
  ptx::follow_previous_grid();
  const float* row = logits + static_cast<std::uint64_t>(blockIdx.x) * vocab;
  const std::uint32_t t = threadIdx.x, n = blockDim.x;
  float best = -INFINITY;
  int idx = 0x7fffffff;
  if constexpr (Vec4) {
    const auto* v = reinterpret_cast<const float4*>(row);
    const std::uint32_t vecs = vocab / 4;
    std::uint32_t i = t;
    for (; i + 3 * n < vecs; i += 4 * n) {
      const float4 a = v[i], b = v[i + n], c = v[i + 2 * n], d = v[i + 3 * n];
      better4(best, idx, a, static_cast<int>(4 * i));
      better4(best, idx, b, static_cast<int>(4 * (i + n)));
      better4(best, idx, c, static_cast<int>(4 * (i + 2 * n)));
      better4(best, idx, d, static_cast<int>(4 * (i + 3 * n)));
    }
    for (; i < vecs; i += n) better4(best, idx, v[i], static_cast<int>(4 * i));
  } else {
    std::uint32_t i = t;
    for (; i + 3 * n < vocab; i += 4 * n) {
      const float a = row[i], b = row[i + n], c = row[i + 2 * n], d = row[i + 3 * n];
      better(best, idx, a, static_cast<int>(i));
      better(best, idx, b, static_cast<int>(i + n));
      better(best, idx, c, static_cast<int>(i + 2 * n));
      better(best, idx, d, static_cast<int>(i + 3 * n));
    }
    for (; i < vocab; i += n) better(best, idx, row[i], static_cast<int>(i));
  }
  for (int o = 16; o > 0; o >>= 1)
    better(best, idx, __shfl_xor_sync(0xffffffffu, best, o), __shfl_xor_sync(0xffffffffu, idx, o));
  __shared__ float vals[32];
  __shared__ int idxs[32];
  const std::uint32_t warp = t / 32, lane = t % 32, warps = n / 32;
  if (lane == 0) {
    vals[warp] = best;
    idxs[warp] = idx;
  }
  __syncthreads();
  if (warp != 0) return;
  best = lane < warps ? vals[lane] : -INFINITY;
  idx = lane < warps ? idxs[lane] : 0x7fffffff;
  for (int o = 16; o > 0; o >>= 1)
    better(best, idx, __shfl_xor_sync(0xffffffffu, best, o), __shfl_xor_sync(0xffffffffu, idx, o));
  if (lane == 0) out[blockIdx.x] = idx;
}

}  // namespace accellm::device::cuda::sampling_kernels

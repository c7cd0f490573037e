#include "device/cuda/check.hpp"
#include "device/cuda/launch.cuh"
#include "device/cuda/ptx.cuh"
#include "device/cuda/rmsnorm.cuh"
#include "device/cuda/vec.cuh"

#include <algorithm>

namespace accellm::device::cuda {
namespace {

// Units (W elements each) a thread holds in registers from the sum of squares
// to the scaling, so that a row is read from memory once: with the block
// sized to the row (launcher), every row up to 4 * 512 units (16384 floats on
// the vector path) is held whole; wider rows read the rest twice.
constexpr std::uint32_t held = 4;

// At most 512 threads per block: the vector path holds 8 * 8 floats per
// thread (80 registers), too many for a block of 1024 (64 at most).
constexpr std::uint32_t max_threads = 512;

// Sum over the block (blockDim.x a multiple of 32, at most 1024), the same
// value in every thread. Called once per block.
__device__ float block_sum(float s) {
  for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
  __shared__ float warp_sums[32];
  if (threadIdx.x % 32 == 0) warp_sums[threadIdx.x / 32] = s;
  __syncthreads();
  float total = 0.0f;
  for (std::uint32_t w = 0; w < blockDim.x / 32; ++w) total += warp_sums[w];
  return total;
}

template <std::uint32_t W>
__device__ float sum_squares(const float (&v)[W]) {
  float s = 0.0f;
#pragma unroll
  for (std::uint32_t e = 0; e < W; ++e) s += v[e] * v[e];
  return s;
}

template <std::uint32_t W>
__device__ void scale_store(const float (&v)[W], float inv, const float (&g)[W], __nv_bfloat16* y) {
  float o[W];
#pragma unroll
  for (std::uint32_t e = 0; e < W; ++e) o[e] = v[e] * inv * g[e];
  vec::store(y, o);
}

// One block per output row; thread t owns units t, t + blockDim, ... of W
// elements. W = vec::width needs n % W == 0 and 16-byte aligned pointers.
template <std::uint32_t W>
__global__ void __launch_bounds__(max_threads)
    rmsnorm_kernel(const float* __restrict__ x, const __nv_bfloat16* __restrict__ gain,
                   std::uint32_t n, float eps, const std::int32_t* __restrict__ gather,
                   __nv_bfloat16* __restrict__ out) {
  ptx::follow_previous_grid();
  const std::uint32_t row = blockIdx.x;
  const std::uint32_t src = gather ? static_cast<std::uint32_t>(gather[row]) : row;
  const float* xr = x + static_cast<std::uint64_t>(src) * n;
  __nv_bfloat16* yr = out + static_cast<std::uint64_t>(row) * n;
  const std::uint32_t units = n / W;
  // All loads first (zeros past the row), so that they are in flight together.
  float v[held][W];
#pragma unroll
  for (std::uint32_t k = 0; k < held; ++k) {
    const std::uint32_t u = threadIdx.x + k * blockDim.x;
    if (u < units) {
      vec::load(xr + u * W, v[k]);
    } else {
#pragma unroll
      for (std::uint32_t e = 0; e < W; ++e) v[k][e] = 0.0f;
    }
  }
  float sum = 0.0f;
#pragma unroll
  for (std::uint32_t k = 0; k < held; ++k) sum += sum_squares(v[k]);
  for (std::uint32_t u = threadIdx.x + held * blockDim.x; u < units; u += blockDim.x) {
    float t[W];
    vec::load(xr + u * W, t);
    sum += sum_squares(t);
  }
  // The gains' loads (L2 hits: every row reads the same n) overlap the reduction.
  float g[held][W];
#pragma unroll
  for (std::uint32_t k = 0; k < held; ++k) {
    const std::uint32_t u = threadIdx.x + k * blockDim.x;
    if (u < units) vec::load(gain + u * W, g[k]);
  }
  const float inv = rsqrtf(block_sum(sum) / static_cast<float>(n) + eps);
#pragma unroll
  for (std::uint32_t k = 0; k < held; ++k) {
    const std::uint32_t u = threadIdx.x + k * blockDim.x;
    if (u < units) scale_store(v[k], inv, g[k], yr + u * W);
  }
  for (std::uint32_t u = threadIdx.x + held * blockDim.x; u < units; u += blockDim.x) {
    float t[W], tg[W];
    vec::load(xr + u * W, t);
    vec::load(gain + u * W, tg);
    scale_store(t, inv, tg, yr + u * W);
  }
}

// Threads for rows of `units`: enough warps that each thread holds at most
// `held` units (Llama hidden 4096 / 5120 / 8192: 128 / 160 / 256 threads),
// at least one warp, at most max_threads.
unsigned threads_for(std::uint32_t units) {
  const std::uint32_t per_thread = (units + held - 1) / held;
  return std::clamp<std::uint32_t>((per_thread + 31) / 32 * 32, 32, max_threads);
}

}  // namespace

status rmsnorm(const float* x, const __nv_bfloat16* gain, std::uint32_t rows, std::uint32_t n,
               float eps, const std::int32_t* gather, __nv_bfloat16* out, cudaStream_t s) {
  if (rows == 0) return {};
  if (n == 0 || x == nullptr || gain == nullptr || out == nullptr)
    return fail(errc::invalid_argument, "rmsnorm: empty row or null pointer");
  if (vec::fits(n, x, gain, out))
    return launch_kernel(rmsnorm_kernel<vec::width>, dim3(rows), dim3(threads_for(n / vec::width)),
                         0, s, x, gain, n, eps, gather, out);
  return launch_kernel(rmsnorm_kernel<1>, dim3(rows), dim3(threads_for(n)), 0, s, x, gain, n, eps,
                       gather, out);
}

}  // namespace accellm::device::cuda

#include "device/cuda/check.hpp"
#include "device/cuda/rmsnorm.cuh"

namespace accellm::device::cuda {
namespace {

constexpr int threads = 256;

__global__ void rmsnorm_kernel(const float* x, const __nv_bfloat16* gain, std::uint32_t n,
                               float eps, const std::int32_t* gather, __nv_bfloat16* out) {
  const std::uint32_t row = blockIdx.x;
  const std::uint32_t src = gather ? static_cast<std::uint32_t>(gather[row]) : row;
  const float* xr = x + static_cast<std::uint64_t>(src) * n;
  float sum = 0.0f;
  for (std::uint32_t i = threadIdx.x; i < n; i += threads) sum += xr[i] * xr[i];
  for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
  __shared__ float warp_sums[threads / 32];
  if (threadIdx.x % 32 == 0) warp_sums[threadIdx.x / 32] = sum;
  __syncthreads();
  float total = 0.0f;
  for (int w = 0; w < threads / 32; ++w) total += warp_sums[w];
  const float inv = rsqrtf(total / static_cast<float>(n) + eps);
  __nv_bfloat16* yr = out + static_cast<std::uint64_t>(row) * n;
  for (std::uint32_t i = threadIdx.x; i < n; i += threads)
    yr[i] = __float2bfloat16(xr[i] * inv * __bfloat162float(gain[i]));
}

}  // namespace

status rmsnorm(const float* x, const __nv_bfloat16* gain, std::uint32_t rows, std::uint32_t n,
               float eps, const std::int32_t* gather, __nv_bfloat16* out, cudaStream_t s) {
  if (rows == 0) return {};
  if (n == 0 || x == nullptr || gain == nullptr || out == nullptr)
    return fail(errc::invalid_argument, "rmsnorm: empty row or null pointer");
  rmsnorm_kernel<<<rows, threads, 0, s>>>(x, gain, n, eps, gather, out);
  ACCELLM_CUDA_TRY(cudaGetLastError());
  return {};
}

}  // namespace accellm::device::cuda

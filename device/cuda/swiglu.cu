#include "device/cuda/check.hpp"
#include "device/cuda/swiglu.cuh"

#include <algorithm>

namespace accellm::device::cuda {
namespace {

__global__ void swiglu_kernel(const __nv_bfloat16* gate_up, std::uint64_t total, std::uint32_t f,
                              __nv_bfloat16* out) {
  const std::uint64_t stride = static_cast<std::uint64_t>(gridDim.x) * blockDim.x;
  for (std::uint64_t i = static_cast<std::uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
       i < total; i += stride) {
    const std::uint64_t row = i / f;
    const std::uint64_t col = i - row * f;
    const float g = __bfloat162float(gate_up[row * 2 * f + col]);
    const float u = __bfloat162float(gate_up[row * 2 * f + f + col]);
    out[i] = __float2bfloat16(g / (1.0f + __expf(-g)) * u);
  }
}

}  // namespace

status swiglu(const __nv_bfloat16* gate_up, std::uint32_t rows, std::uint32_t f, __nv_bfloat16* out,
              cudaStream_t s) {
  if (rows == 0) return {};
  if (f == 0 || gate_up == nullptr || out == nullptr)
    return fail(errc::invalid_argument, "swiglu: empty row or null pointer");
  const std::uint64_t total = static_cast<std::uint64_t>(rows) * f;
  const auto blocks = static_cast<unsigned>(std::min<std::uint64_t>((total + 255) / 256, 8192));
  swiglu_kernel<<<blocks, 256, 0, s>>>(gate_up, total, f, out);
  ACCELLM_CUDA_TRY(cudaGetLastError());
  return {};
}

}  // namespace accellm::device::cuda

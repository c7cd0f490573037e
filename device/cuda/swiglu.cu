#include "device/cuda/check.hpp"
#include "device/cuda/launch.cuh"
#include "device/cuda/ptx.cuh"
#include "device/cuda/swiglu.cuh"
#include "device/cuda/vec.cuh"

#include <algorithm>

namespace accellm::device::cuda {
namespace {

constexpr unsigned threads = 128;

// Thread (blockIdx.x, threadIdx.x) owns W consecutive columns of rows
// blockIdx.y, blockIdx.y + gridDim.y, ...: no division per element. W =
// vec::width needs f % W == 0 and 16-byte aligned pointers. Every element is
// computed as the one-element-per-thread kernel did (fp32, __expf, IEEE
// division, one bf16 rounding), so both paths give the same bits.
template <std::uint32_t W>
__global__ void swiglu_kernel(const __nv_bfloat16* __restrict__ gate_up, std::uint32_t rows,
                              std::uint32_t f, __nv_bfloat16* __restrict__ out) {
  ptx::follow_previous_grid();
  const std::uint32_t col = (blockIdx.x * blockDim.x + threadIdx.x) * W;
  if (col >= f) return;
  for (std::uint32_t row = blockIdx.y; row < rows; row += gridDim.y) {
    const __nv_bfloat16* gr = gate_up + static_cast<std::uint64_t>(row) * 2 * f + col;
    float g[W], u[W], h[W];
    vec::load(gr, g);
    vec::load(gr + f, u);
#pragma unroll
    for (std::uint32_t e = 0; e < W; ++e) h[e] = g[e] / (1.0f + __expf(-g[e])) * u[e];
    vec::store(out + static_cast<std::uint64_t>(row) * f + col, h);
  }
}

template <std::uint32_t W>
status launch(const __nv_bfloat16* gate_up, std::uint32_t rows, std::uint32_t f, __nv_bfloat16* out,
              cudaStream_t s) {
  const std::uint32_t units = f / W;
  const dim3 grid((units + threads - 1) / threads, std::min<std::uint32_t>(rows, 65535));
  return launch_kernel(swiglu_kernel<W>, grid, dim3(threads), 0, s, gate_up, rows, f, out);
}

}  // namespace

status swiglu(const __nv_bfloat16* gate_up, std::uint32_t rows, std::uint32_t f, __nv_bfloat16* out,
              cudaStream_t s) {
  if (rows == 0) return {};
  if (f == 0 || gate_up == nullptr || out == nullptr)
    return fail(errc::invalid_argument, "swiglu: empty row or null pointer");
  if (vec::fits(f, gate_up, out)) return launch<vec::width>(gate_up, rows, f, out, s);
  return launch<1>(gate_up, rows, f, out, s);
}

}  // namespace accellm::device::cuda

#include "device/cuda/check.hpp"
#include "device/cuda/launch.cuh"
#include "device/cuda/ptx.cuh"
#include "device/cuda/sampling.cuh"
#include "device/cuda/sampling_kernels.cuh"
#include "device/cuda/vec.cuh"

namespace accellm::device::cuda {
namespace {

// One block per row, W elements per access: W = vec::width needs d % W == 0
// and 16-byte aligned pointers. bf16 to fp32 is exact either way.
template <std::uint32_t W>
__global__ void embed_kernel(const __nv_bfloat16* __restrict__ table,
                             const std::int32_t* __restrict__ tokens, std::uint32_t d,
                             float* __restrict__ x) {
  ptx::follow_previous_grid();
  const __nv_bfloat16* src = table + static_cast<std::uint64_t>(tokens[blockIdx.x]) * d;
  float* dst = x + static_cast<std::uint64_t>(blockIdx.x) * d;
  for (std::uint32_t u = threadIdx.x; u < d / W; u += blockDim.x) {
    float v[W];
    vec::load(src + u * W, v);
    vec::store(dst + u * W, v);
  }
}

}  // namespace

status embed(const __nv_bfloat16* table, const std::int32_t* tokens, std::uint32_t rows,
             std::uint32_t d, float* x, cudaStream_t s) {
  if (rows == 0) return {};
  if (d == 0 || !table || !tokens || !x)
    return fail(errc::invalid_argument, "embed: zero width or null pointer");
  if (vec::fits(d, table, x))
    return launch_kernel(embed_kernel<vec::width>, dim3(rows), dim3(128), 0, s, table, tokens, d,
                         x);
  return launch_kernel(embed_kernel<1>, dim3(rows), dim3(256), 0, s, table, tokens, d, x);
}

status argmax_rows(const float* logits, std::uint32_t rows, std::uint32_t vocab, std::int32_t* out,
                   cudaStream_t s) {
  if (rows == 0) return {};
  if (vocab == 0 || !logits || !out)
    return fail(errc::invalid_argument, "argmax_rows: empty vocabulary or null pointer");
  using sampling_kernels::argmax_kernel, sampling_kernels::argmax_threads;
  const bool vec4 = vocab % 4 == 0 && reinterpret_cast<std::uintptr_t>(logits) % 16 == 0;
  return launch_kernel(vec4 ? argmax_kernel<true> : argmax_kernel<false>, dim3(rows),
                       dim3(argmax_threads), 0, s, logits, vocab, out);
}

}  // namespace accellm::device::cuda

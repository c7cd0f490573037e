#include "device/cuda/check.hpp"
#include "device/cuda/launch.cuh"
#include "device/cuda/ptx.cuh"
#include "device/cuda/sampling.cuh"
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

// Keeps (value, index) with the larger value, the smaller index on ties.
__device__ inline void better(float& v, int& i, float v2, int i2) {
  if (v2 > v || (v2 == v && i2 < i)) {
    v = v2;
    i = i2;
  }
}

__global__ void argmax_kernel(const float* logits, std::uint32_t vocab, std::int32_t* out) {
  ptx::follow_previous_grid();
  const float* row = logits + static_cast<std::uint64_t>(blockIdx.x) * vocab;
  float best = -INFINITY;
  int idx = 0x7fffffff;
  for (std::uint32_t i = threadIdx.x; i < vocab; i += blockDim.x)
    better(best, idx, row[i], static_cast<int>(i));
  for (int o = 16; o > 0; o >>= 1)
    better(best, idx, __shfl_xor_sync(0xffffffffu, best, o), __shfl_xor_sync(0xffffffffu, idx, o));
  __shared__ float vals[32];
  __shared__ int idxs[32];
  if (threadIdx.x % 32 == 0) {
    vals[threadIdx.x / 32] = best;
    idxs[threadIdx.x / 32] = idx;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    for (unsigned w = 1; w < blockDim.x / 32; ++w) better(best, idx, vals[w], idxs[w]);
    out[blockIdx.x] = idx;
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
  return launch_kernel(argmax_kernel, dim3(rows), dim3(256), 0, s, logits, vocab, out);
}

}  // namespace accellm::device::cuda

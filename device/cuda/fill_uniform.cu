#include "device/cuda/check.hpp"
#include "device/cuda/fill_uniform.cuh"

namespace accellm::device::cuda {

namespace {

__host__ __device__ inline std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

__host__ __device__ inline float uniform_at(std::uint64_t seed, std::size_t i, float scale) {
  auto u = static_cast<float>(splitmix64(seed + i) >> 40) * (1.0f / 16777216.0f);
  return scale * (2.0f * u - 1.0f);
}

// Element i of device/cpu's per-tensor stream: the generator's state after
// i + 2 steps (the CPU discards the first output), in [-1, 1) with 24 bits,
// then offset + scale * u without contraction, as the CPU computes it.
__host__ __device__ inline float stream_at(std::uint64_t stream, std::size_t i, float scale,
                                           float offset) {
  const std::uint64_t z =
      splitmix64(stream + (static_cast<std::uint64_t>(i) + 1) * 0x9e3779b97f4a7c15ull);
  const auto bits = static_cast<std::int32_t>(z >> 40);
  const float u = static_cast<float>(bits - (1 << 23)) * (1.0f / static_cast<float>(1 << 23));
#ifdef __CUDA_ARCH__
  return __fadd_rn(offset, __fmul_rn(scale, u));
#else
  return offset + scale * u;
#endif
}

__global__ void stream_kernel(__nv_bfloat16* dst, std::size_t n, std::uint64_t stream, float scale,
                              float offset) {
  auto stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  for (auto i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    dst[i] = __float2bfloat16(stream_at(stream, i, scale, offset));
}

template <class T>
__global__ void fill_kernel(T* dst, std::size_t n, std::uint64_t seed, float scale) {
  auto stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  for (auto i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride) {
    if constexpr (std::is_same_v<T, float>) {
      dst[i] = uniform_at(seed, i, scale);
    } else {
      dst[i] = __float2bfloat16(uniform_at(seed, i, scale));
    }
  }
}

template <class T>
status launch(T* dst, std::size_t n, std::uint64_t seed, float scale, cudaStream_t s) {
  if (n == 0) return {};
  if (dst == nullptr) return fail(errc::invalid_argument, "fill_uniform: null destination");
  constexpr int threads = 256;
  auto blocks = static_cast<unsigned>(std::min<std::size_t>((n + threads - 1) / threads, 65535));
  fill_kernel<<<blocks, threads, 0, s>>>(dst, n, seed, scale);
  ACCELLM_CUDA_TRY(cudaGetLastError());
  return {};
}

}  // namespace

float uniform_value(std::uint64_t seed, std::size_t i, float scale) noexcept {
  return uniform_at(seed, i, scale);
}

float stream_value(std::uint64_t stream, std::size_t i, float scale, float offset) noexcept {
  return stream_at(stream, i, scale, offset);
}

status fill_stream(__nv_bfloat16* dst, std::size_t n, std::uint64_t stream, float scale,
                   float offset, cudaStream_t s) {
  if (n == 0) return {};
  if (dst == nullptr) return fail(errc::invalid_argument, "fill_stream: null destination");
  constexpr int threads = 256;
  auto blocks = static_cast<unsigned>(std::min<std::size_t>((n + threads - 1) / threads, 65535));
  stream_kernel<<<blocks, threads, 0, s>>>(dst, n, stream, scale, offset);
  ACCELLM_CUDA_TRY(cudaGetLastError());
  return {};
}

status fill_uniform(float* dst, std::size_t n, std::uint64_t seed, float scale, cudaStream_t s) {
  return launch(dst, n, seed, scale, s);
}

status fill_uniform(__nv_bfloat16* dst, std::size_t n, std::uint64_t seed, float scale,
                    cudaStream_t s) {
  return launch(dst, n, seed, scale, s);
}

}  // namespace accellm::device::cuda

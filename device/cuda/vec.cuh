// Vector access for the elementwise kernels (rmsnorm, swiglu, rope_append,
// embed): W consecutive elements of a row, converted to or from fp32 registers.
//
// W = 8 is the bandwidth path: one 16-byte access for bf16 (uint4), two for
// fp32 (float4), so the pointer must be 16-byte aligned. W = 1 is the
// fallback for widths that are not a multiple of 8 or pointers that are not
// aligned (small test shapes, offset views). Both paths convert element by
// element with the same functions (__bfloat162float, __float2bfloat16, round
// to nearest even), so a kernel written once over `float[W]` gives the same
// bits through either path. Device code only; no state.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace accellm::device::cuda::vec {

/// Elements per access on the vector path.
constexpr std::uint32_t width = 8;

/// Whether `p` may be read or written with 16-byte accesses.
inline bool aligned(const void* p) {
  return reinterpret_cast<std::uintptr_t>(p) % 16 == 0;
}

/// Whether rows of `n` elements starting at every pointer in `ps` can take the
/// vector path: n a multiple of `width` (so every row start stays aligned)
/// and every pointer 16-byte aligned.
template <class... P>
bool fits(std::uint64_t n, const P*... ps) {
  return n % width == 0 && (aligned(ps) && ...);
}

template <std::uint32_t W>
__device__ inline void load(const __nv_bfloat16* p, float (&f)[W]) {
  if constexpr (W == width) {
    const uint4 u = *reinterpret_cast<const uint4*>(p);
    const std::uint32_t w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
    for (int k = 0; k < 4; ++k) {  // element 2k is the low half (little-endian)
      f[2 * k] = __bfloat162float(__ushort_as_bfloat16(static_cast<unsigned short>(w[k])));
      f[2 * k + 1] =
          __bfloat162float(__ushort_as_bfloat16(static_cast<unsigned short>(w[k] >> 16)));
    }
  } else {
#pragma unroll
    for (std::uint32_t e = 0; e < W; ++e) f[e] = __bfloat162float(p[e]);
  }
}

template <std::uint32_t W>
__device__ inline void load(const float* p, float (&f)[W]) {
  if constexpr (W == width) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const float4 a = reinterpret_cast<const float4*>(p)[h];
      f[4 * h] = a.x;
      f[4 * h + 1] = a.y;
      f[4 * h + 2] = a.z;
      f[4 * h + 3] = a.w;
    }
  } else {
#pragma unroll
    for (std::uint32_t e = 0; e < W; ++e) f[e] = p[e];
  }
}

/// Two bf16 roundings packed as one word, element `lo` at the lower address.
__device__ inline std::uint32_t pack_bf16(float lo, float hi) {
  return static_cast<std::uint32_t>(__bfloat16_as_ushort(__float2bfloat16(lo))) |
         static_cast<std::uint32_t>(__bfloat16_as_ushort(__float2bfloat16(hi))) << 16;
}

template <std::uint32_t W>
__device__ inline void store(__nv_bfloat16* p, const float (&f)[W]) {
  if constexpr (W == width) {
    *reinterpret_cast<uint4*>(p) = make_uint4(pack_bf16(f[0], f[1]), pack_bf16(f[2], f[3]),
                                              pack_bf16(f[4], f[5]), pack_bf16(f[6], f[7]));
  } else {
#pragma unroll
    for (std::uint32_t e = 0; e < W; ++e) p[e] = __float2bfloat16(f[e]);
  }
}

template <std::uint32_t W>
__device__ inline void store(float* p, const float (&f)[W]) {
  if constexpr (W == width) {
    reinterpret_cast<float4*>(p)[0] = make_float4(f[0], f[1], f[2], f[3]);
    reinterpret_cast<float4*>(p)[1] = make_float4(f[4], f[5], f[6], f[7]);
  } else {
#pragma unroll
    for (std::uint32_t e = 0; e < W; ++e) p[e] = f[e];
  }
}

/// Copies W bf16 elements unchanged.
template <std::uint32_t W>
__device__ inline void copy(__nv_bfloat16* dst, const __nv_bfloat16* src) {
  if constexpr (W == width) {
    *reinterpret_cast<uint4*>(dst) = *reinterpret_cast<const uint4*>(src);
  } else {
#pragma unroll
    for (std::uint32_t e = 0; e < W; ++e) dst[e] = src[e];
  }
}

}  // namespace accellm::device::cuda::vec

// wgmma.cuh: Hopper's warpgroup MMA (wgmma.mma_async, sm_90a) as the
// prefill kernels use it (prefill_wgmma.cuh): bf16 m64nNk16 products with
// the left operand in registers and the right one read by the tensor cores
// from shared memory through a descriptor, fp32 accumulators; and, for
// skinny_gemm_tma, m64n128k16 with both operands in shared memory.
//
// Register fragments (PTX ISA, "Register Fragments and Shared Memory Matrix
// Layouts" for wgmma) are mma.sync's stacked over the warpgroup's 4 warps:
// warp w holds rows 16 w .. 16 w + 15; an A fragment is the m16n8k16 A
// fragment of those rows; the accumulator of an m64nN product holds, for
// each 8-column chunk j, d[j][0, 1] = (row g, cols 8 j + 2 t, + 1) and
// d[j][2, 3] = (row g + 8, same cols), lane = 4 g + t.
//
// Shared-memory operands have no swizzle, except skinny_gemm_tma's (TMA
// tiles with the 128-byte swizzle, wgmma_layout.cuh's descriptor_sw128):
// 8 x 8 core matrices of 128
// contiguous bytes (8 rows of 16 bytes). For a K-major B (N x K, K
// contiguous) element (n, k) of a k16 slice lies at
//   start + (n / 8) * stride + (k / 8) * leading + (n % 8) * 16 + (k % 8) * 2;
// for an MN-major B (transpose bit set) element (k, n) at
//   start + (k / 8) * leading + (n / 8) * stride + (k % 8) * 16 + (n % 8) * 2.
// That reading of the descriptor's two offsets is the one the wgmma64 kernel
// was verified with on an H200 (docs/cuda-kernels.md); the host emulator
// (tests/device/cuda/emu/) decodes the descriptors wgmma_layout.cuh encodes
// the same way.
//
// The products are asynchronous: between issuing one and the wait_group
// that retires its group, neither its accumulator nor its A registers may
// be touched, nor the shared memory it reads. pin() keeps the compiler from
// moving accumulator reads or writes across them. Device code for sm_90a
// only (ACCELLM_WGMMA); internal to device/cuda.
#pragma once

#include "device/cuda/wgmma_layout.cuh"

#include <cuda_bf16.h>

#include <cstdint>

#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define ACCELLM_WGMMA 1
#else
#define ACCELLM_WGMMA 0
#endif

namespace accellm::device::cuda::wg {

/// This thread's generic-proxy writes (cp.async) visible to the async proxy
/// (nothing in a build without sm_90a code, whose wgmma kernels are empty).
__device__ inline void proxy_fence() {
#if ACCELLM_WGMMA
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
#endif
}

#if ACCELLM_WGMMA
/// setmaxnreg: this warpgroup's threads give back registers down to N each
/// (dec), or take more, up to N (inc), from what the block holds; every
/// thread of the warpgroup runs it at the same point, N a multiple of 8 in
/// [24, 256]. A warp-specialised kernel moves its producer's registers to
/// its consumers this way (the launch gives every warp the same count).
template <int N>
__device__ inline void shrink_registers() {
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(N));
}
template <int N>
__device__ inline void grow_registers() {
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(N));
}

/// Orders this warpgroup's register writes before the products that follow.
__device__ inline void fence() {
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
}
/// Closes the group of the products issued since the last commit.
__device__ inline void commit() {
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
}
/// Waits until at most `pending` of this warpgroup's groups are in flight.
template <int pending>
__device__ inline void wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(pending) : "memory");
}
/// Keeps the compiler from moving reads or writes of an accumulator across
/// the asynchronous products that own it.
template <int N>
__device__ inline void pin(float (&r)[N][4]) {
#pragma unroll
  for (int i = 0; i < N; ++i)
#pragma unroll
    for (int e = 0; e < 4; ++e) asm volatile("" : "+f"(r[i][e])::"memory");
}

// The accumulator operands of an m64nN product: N / 8 chunks of 4 floats
// (the register fragments above), in the order the instruction lists them.
#define ACCELLM_WG_ACC4(d, j) "+f"(d[j][0]), "+f"(d[j][1]), "+f"(d[j][2]), "+f"(d[j][3])
#define ACCELLM_WG_ACC_N64(d)                                                                 \
  ACCELLM_WG_ACC4(d, 0), ACCELLM_WG_ACC4(d, 1), ACCELLM_WG_ACC4(d, 2), ACCELLM_WG_ACC4(d, 3), \
      ACCELLM_WG_ACC4(d, 4), ACCELLM_WG_ACC4(d, 5), ACCELLM_WG_ACC4(d, 6), ACCELLM_WG_ACC4(d, 7)
#define ACCELLM_WG_ACC_N128(d)                                                                 \
  ACCELLM_WG_ACC_N64(d), ACCELLM_WG_ACC4(d, 8), ACCELLM_WG_ACC4(d, 9), ACCELLM_WG_ACC4(d, 10), \
      ACCELLM_WG_ACC4(d, 11), ACCELLM_WG_ACC4(d, 12), ACCELLM_WG_ACC4(d, 13),                  \
      ACCELLM_WG_ACC4(d, 14), ACCELLM_WG_ACC4(d, 15)
// ... and the same operands as the instruction names them: %0 .. %31 / %63.
#define ACCELLM_WG_D_N64                                   \
  "%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15," \
  "%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31"
#define ACCELLM_WG_D_N128                                             \
  ACCELLM_WG_D_N64                                                    \
  ",%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47," \
  "%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63"

// d (m64 x N, f32) = a (m64 x k16, registers) * B (k16 x N, descriptor) + scale_d * d.
template <int trans_b>
__device__ inline void mma_n64(float (&d)[8][4], const std::uint32_t (&a)[4], std::uint64_t b,
                               int scale_d) {
  asm volatile(
      "{\n.reg .pred p;\n"
      "setp.ne.b32 p, %37, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 "
      "{" ACCELLM_WG_D_N64 "}, {%32,%33,%34,%35}, %36, p, 1, 1, %38;\n}\n"
      : ACCELLM_WG_ACC_N64(d)
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(scale_d), "n"(trans_b));
}

template <int trans_b>
__device__ inline void mma_n128(float (&d)[16][4], const std::uint32_t (&a)[4], std::uint64_t b,
                                int scale_d) {
  asm volatile(
      "{\n.reg .pred p;\n"
      "setp.ne.b32 p, %69, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 "
      "{" ACCELLM_WG_D_N128 "}, {%64,%65,%66,%67}, %68, p, 1, 1, %70;\n}\n"
      : ACCELLM_WG_ACC_N128(d)
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(scale_d), "n"(trans_b));
}

/// d (m64 x 128, f32) = A (m64 x k16) * B (k16 x 128) + scale_d * d with
/// both operands K-major in shared memory (descriptors, e.g. the 128-byte
/// swizzled tiles of descriptor_sw128).
__device__ inline void mma_ss_n128(float (&d)[16][4], std::uint64_t a, std::uint64_t b,
                                   int scale_d) {
  asm volatile(
      "{\n.reg .pred p;\n"
      "setp.ne.b32 p, %66, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 "
      "{" ACCELLM_WG_D_N128 "}, %64, %65, p, 1, 1, 0, 0;\n}\n"
      : ACCELLM_WG_ACC_N128(d)
      : "l"(a), "l"(b), "r"(scale_d));
}

/// Issues d += a * B (scale_d 1) or d = a * B (0) as one m64nNk16 product,
/// N = 64 or 128; B is MN-major (transposed) when trans_b.
template <int N>
__device__ inline void mma(float (&d)[N / 8][4], const std::uint32_t (&a)[4], std::uint64_t b,
                           int scale_d, bool trans_b) {
  if constexpr (N == 64) {
    if (trans_b)
      mma_n64<1>(d, a, b, scale_d);
    else
      mma_n64<0>(d, a, b, scale_d);
  } else {
    static_assert(N == 128, "wgmma: n64 or n128");
    if (trans_b)
      mma_n128<1>(d, a, b, scale_d);
    else
      mma_n128<0>(d, a, b, scale_d);
  }
}
#endif

}  // namespace accellm::device::cuda::wg

// tma.cuh: Hopper's tensor memory accelerator (TMA, sm_90) and the shared
// memory barriers (mbarrier) its copies complete on, as skinny_gemm_tma
// (skinny_kernels.cuh) uses them.
//
// A TMA copy moves a box of a 2-D tensor from global to shared memory on
// its own: one thread issues it with the tensor's map (a CUtensorMap,
// encoded on the host by cuTensorMapEncodeTiled, passed to the kernel as a
// __grid_constant__ parameter) and the box's coordinates. Elements outside
// the tensor arrive as zeros. With the 128-byte swizzle the box's rows are
// 128 bytes and row r's 16-byte chunk c lands at chunk c ^ (r % 8) of its
// row, i.e. byte address bits [4:6] are XORed with bits [7:9], which is the
// layout wgmma reads through a descriptor with the same swizzle
// (wgmma_layout.cuh); the destination must be 1024-byte aligned.
//
// Completion: the issuing thread first announces the bytes on a barrier
// (arrive_expect_tx, which is also its one arrival); each copy credits its
// bytes when it lands, and the barrier's phase completes when every
// expected arrival has come and every announced byte has landed. wait()
// blocks until the phase of the given parity completes: the i-th use of a
// barrier waits for parity i % 2. The copies write through the async proxy,
// which the tensor cores read too: no proxy fence between them.
//
// Device code for sm_90 (ACCELLM_TMA); the host emulator
// (tests/device/cuda/emu/) has a stand-in with the same functions.
#pragma once

#include <cuda.h>  // CUtensorMap (a type only: nothing from libcuda is linked)
#include <cuda_runtime_api.h>

#include <cstdint>

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
#define ACCELLM_TMA 1
#else
#define ACCELLM_TMA 0
#endif

namespace accellm::device::cuda::tma {

using tensor_map = CUtensorMap;

#if ACCELLM_TMA
__device__ inline std::uint32_t smem_address(const void* p) {
  return static_cast<std::uint32_t>(__cvta_generic_to_shared(p));
}

/// Initialises a barrier that expects `arrivals` arrivals per phase. One
/// thread initialises; fence_init() and a block barrier must follow before
/// any other use.
__device__ inline void init(std::uint64_t* bar, std::uint32_t arrivals) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(smem_address(bar)), "r"(arrivals)
               : "memory");
}

/// Makes the initialised barriers visible to the async proxy (the TMA unit).
__device__ inline void fence_init() {
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
}

/// This thread's arrival on `bar`, announcing `bytes` that copies will credit.
__device__ inline void arrive_expect_tx(std::uint64_t* bar, std::uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(smem_address(bar)),
               "r"(bytes)
               : "memory");
}

/// This thread's arrival on `bar`, announcing no bytes (a consumer saying it
/// is done with what the barrier guards).
__device__ inline void arrive(std::uint64_t* bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(smem_address(bar)) : "memory");
}

/// Copies the box at (c0, c1) (c0 the contiguous dimension) of `map`'s
/// tensor into `dst`; its bytes are credited to `bar` when they land.
__device__ inline void load_2d(void* dst, const tensor_map* map, int c0, int c1,
                               std::uint64_t* bar) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes"
      " [%0], [%1, {%2, %3}], [%4];\n" ::"r"(smem_address(dst)),
      "l"(reinterpret_cast<std::uint64_t>(map)), "r"(c0), "r"(c1), "r"(smem_address(bar))
      : "memory");
}

/// Waits until the phase of `bar` with parity `parity` has completed.
__device__ inline void wait(std::uint64_t* bar, std::uint32_t parity) {
  const std::uint32_t at = smem_address(bar);
  std::uint32_t done = 0;
  while (!done) {
    asm volatile(
        "{\n.reg .pred p;\n"
        "mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n"
        "selp.u32 %0, 1, 0, p;\n}\n"
        : "=r"(done)
        : "r"(at), "r"(parity)
        : "memory");
  }
}
#endif

}  // namespace accellm::device::cuda::tma

// ptx.cuh: the warp-level PTX the tensor-core kernels share (prefill and
// decode attention, skinny_gemm): mma.sync m16n8k16 (bf16 in, fp32
// accumulate), ldmatrix, and cp.async 16-byte copies, the block's dynamic shared memory. Fragment
// layouts are the PTX ISA's ("Matrix Fragments for mma.m16n8k16"): lane = 4 g + t; A regs a0..a3
// hold (row g | g + 8, cols 2t, 2t + 1 | + 8); B regs b0, b1 hold (k = 2t, 2t + 1 | + 8, col g); C
// holds (row g, cols 2t, 2t + 1) and (row g + 8, same cols). Device code only; no state.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace accellm::device::cuda::ptx {

/// The block's dynamic shared memory (128-byte aligned), as T.
template <class T>
__device__ inline T* dynamic_smem() {
  extern __shared__ __align__(128) unsigned char dynamic_smem_bytes[];
  return reinterpret_cast<T*>(dynamic_smem_bytes);
}

/// c += a * b on one m16n8k16 tile.
__device__ inline void mma_bf16(float (&c)[4], const std::uint32_t (&a)[4], std::uint32_t b0,
                                std::uint32_t b1) {
  // Not volatile: a pure register operation, so the compiler may interleave
  // independent products.
  asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

/// Two floats rounded to bf16, `lo` in the low half (the lower address).
__device__ inline std::uint32_t pack(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const std::uint32_t*>(&v);
}

/// Two consecutive bf16 as one register.
__device__ inline std::uint32_t word(const __nv_bfloat16* p) {
  return *reinterpret_cast<const std::uint32_t*>(p);
}

/// Four 8 x 8 b16 matrices from shared memory; lanes 8m .. 8m + 7 name the
/// rows of matrix m. `trans` loads each transposed.
template <bool trans = false>
__device__ inline void ldmatrix_x4(std::uint32_t (&r)[4], const __nv_bfloat16* p) {
  const auto a = static_cast<std::uint32_t>(__cvta_generic_to_shared(p));
  if constexpr (trans) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(a)
                 : "memory");
  } else {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(a)
                 : "memory");
  }
}

/// Two 8 x 8 b16 matrices; lanes 0-15 name the rows (16-31 are ignored).
__device__ inline void ldmatrix_x2(std::uint32_t (&r)[2], const __nv_bfloat16* p) {
  const auto a = static_cast<std::uint32_t>(__cvta_generic_to_shared(p));
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0, %1}, [%2];\n"
               : "=r"(r[0]), "=r"(r[1])
               : "r"(a)
               : "memory");
}

/// 16 bytes global -> shared, bypassing L1; zero-filled when !valid
/// (src-size 0; `src` must still be a valid address).
__device__ inline void cp16(__nv_bfloat16* dst, const __nv_bfloat16* src, bool valid) {
  const auto d = static_cast<std::uint32_t>(__cvta_generic_to_shared(dst));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(d), "l"(src),
               "r"(valid ? 16 : 0));
}

/// Closes the cp.async group of the copies issued since the last commit.
__device__ inline void commit() {
  asm volatile("cp.async.commit_group;\n" ::);
}

/// Waits until at most `pending` of this thread's groups are in flight; a
/// compiler barrier for memory, so no shared-memory read moves above it.
template <int pending>
__device__ inline void wait_group() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(pending) : "memory");
}

/// Programmatic dependent launch (sm_90; launch.cuh): waits until the grid
/// this one was launched behind has completed and its memory is visible.
/// Every kernel launched that way calls it in every thread before it reads
/// what an earlier kernel wrote, and before it exits, so that a later
/// kernel waiting on this one also waits on that one. A no-op for a kernel
/// launched the plain way, and before sm_90.
__device__ inline void grid_dependency_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}

/// Lets the grid launched behind this one be scheduled once every block of
/// this grid has called it (or exited): its blocks then take the SMs this
/// grid's last wave leaves free, and wait there (grid_dependency_wait).
__device__ inline void launch_dependents() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}

/// Both, at a kernel's start: what every kernel launch.cuh launches does
/// first, unless it has work that reads nothing an earlier kernel writes.
__device__ inline void follow_previous_grid() {
  grid_dependency_wait();
  launch_dependents();
}

/// Makes this thread's global-memory writes so far visible device-wide
/// before any it makes later (membar.gl): a block that counts itself on a
/// counter after it gives the block that reads the counter its writes.
__device__ inline void fence_device() {
  __threadfence();
}

/// Adds one to `*counter` (a device-scope atomic); the value before.
__device__ inline unsigned count_up(unsigned* counter) {
  return atomicAdd(counter, 1u);
}

/// 16 bytes of global memory read at L2 (ld.global.cg): what other blocks
/// wrote during this kernel, never a stale line of this SM's L1.
__device__ inline float4 load_cg(const float4* p) {
  return __ldcg(p);
}

/// Named barriers (bar.sync / bar.arrive) of `count` threads, a multiple of
/// 32 whose warps all take part: `sync` counts this thread's warp in and
/// waits until `count` threads have; `arrive` counts it in and goes on.
/// Barrier 0 is __syncthreads'.
__device__ inline void named_sync(unsigned id, unsigned count) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(count) : "memory");
}
__device__ inline void named_arrive(unsigned id, unsigned count) {
  asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "r"(count) : "memory");
}

}  // namespace accellm::device::cuda::ptx

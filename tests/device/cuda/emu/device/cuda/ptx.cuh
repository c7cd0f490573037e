// The host emulator's stand-in for device/cuda/ptx.cuh (emu.hpp): the same
// functions, with ldmatrix and mma.sync as exchanges among the warp's
// threads and cp.async copies that land only at the issuing thread's
// wait_group.
#pragma once

#include "emu.hpp"

#include <cuda_bf16.h>

#include <cstdint>
#include <cstring>

namespace accellm::device::cuda::ptx {

template <class T>
T* dynamic_smem() {
  return reinterpret_cast<T*>(emu::current->smem);
}

inline void mma_bf16(float (&c)[4], const std::uint32_t (&a)[4], std::uint32_t b0,
                     std::uint32_t b1) {
  emu::mma_m16n8k16(c, a, b0, b1);
}

inline std::uint32_t pack(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  std::uint32_t w;
  std::memcpy(&w, &v, 4);
  return w;
}

inline std::uint32_t word(const __nv_bfloat16* p) {
  std::uint32_t w;
  std::memcpy(&w, p, 4);
  return w;
}

template <bool trans = false>
void ldmatrix_x4(std::uint32_t (&r)[4], const __nv_bfloat16* p) {
  emu::ldmatrix(r, 4, p, trans);
}

inline void ldmatrix_x2(std::uint32_t (&r)[2], const __nv_bfloat16* p) {
  emu::ldmatrix(r, 2, p, false);
}

inline void cp16(__nv_bfloat16* dst, const __nv_bfloat16* src, bool valid) {
  emu::copy_issue(dst, src, valid);
}

inline void commit() {
  emu::copy_commit();
}

template <int pending>
void wait_group() {
  emu::copy_wait(pending);
}

// Kernels run one after the other here: nothing to wait for.
inline void grid_dependency_wait() {}
inline void launch_dependents() {}
inline void follow_previous_grid() {}

// Blocks run one after the other here: a block's global writes are
// visible to every later one, and no two count at once.
inline void fence_device() {}
inline unsigned count_up(unsigned* counter) {
  return (*counter)++;
}
inline float4 load_cg(const float4* p) {
  return *p;
}

inline void named_sync(unsigned id, unsigned count) {
  emu::named_barrier(id, count, true);
}
inline void named_arrive(unsigned id, unsigned count) {
  emu::named_barrier(id, count, false);
}

}  // namespace accellm::device::cuda::ptx

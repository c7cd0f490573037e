// The host emulator's stand-in for device/cuda/ptx.cuh (emu.hpp): what the
// wgmma prefill kernels use of it, with cp.async copies that land only at
// the issuing thread's wait_group.
#pragma once

#include "emu.hpp"

#include <cuda_bf16.h>

#include <cstdint>
#include <cstring>

namespace accellm::device::cuda::ptx {

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

}  // namespace accellm::device::cuda::ptx

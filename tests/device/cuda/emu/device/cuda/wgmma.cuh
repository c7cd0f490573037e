// The host emulator's stand-in for device/cuda/wgmma.cuh (emu.hpp): the
// real descriptors (wgmma_layout.cuh); products, with A in registers or in
// shared memory, that run when a wait_group retires them.
#pragma once

#include "emu.hpp"

#include "device/cuda/wgmma_layout.cuh"

#include <cstdint>

#define ACCELLM_WGMMA 1

namespace accellm::device::cuda::wg {

inline void fence() {}
// Registers are not modelled.
template <int N>
void shrink_registers() {}
template <int N>
void grow_registers() {}
inline void commit() {
  emu::product_commit();
}
template <int pending>
void wait() {
  emu::product_wait(pending);
}
template <int N>
void pin(float (&)[N][4]) {}
inline void proxy_fence() {
  emu::proxy_fence();
}

template <int N>
void mma(float (&d)[N / 8][4], const std::uint32_t (&a)[4], std::uint64_t b, int scale_d,
         bool trans_b) {
  emu::product_issue(&d[0][0], N, a, b, scale_d != 0, trans_b);
}

inline void mma_ss_n128(float (&d)[16][4], std::uint64_t a, std::uint64_t b, int scale_d) {
  emu::product_issue_ss(&d[0][0], 128, a, b, scale_d != 0);
}

}  // namespace accellm::device::cuda::wg

// The host emulator's stand-in for device/cuda/tma.cuh (emu.hpp): tensor
// maps as plain descriptions of a 2-D bf16 tensor, mbarriers and TMA copies
// that land when a thread waits on their barrier.
#pragma once

#include "emu.hpp"

#include <cstdint>

#define ACCELLM_TMA 1

namespace accellm::device::cuda::tma {

using tensor_map = emu::tensor_map_2d;

inline void init(std::uint64_t* bar, std::uint32_t arrivals) {
  emu::mbarrier_init(bar, arrivals);
}
inline void fence_init() {}
inline void arrive_expect_tx(std::uint64_t* bar, std::uint32_t bytes) {
  emu::mbarrier_arrive_expect_tx(bar, bytes);
}
inline void arrive(std::uint64_t* bar) {
  emu::mbarrier_arrive_expect_tx(bar, 0);
}
inline void load_2d(void* dst, const tensor_map* map, int c0, int c1, std::uint64_t* bar) {
  emu::tma_load_2d(dst, *map, c0, c1, bar);
}
inline void wait(std::uint64_t* bar, std::uint32_t parity) {
  emu::mbarrier_wait(bar, parity);
}

}  // namespace accellm::device::cuda::tma

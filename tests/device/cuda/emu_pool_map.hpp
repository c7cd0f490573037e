// The emulator's tensor map of a paged KV pool (emu/emu.hpp), as the
// launchers of the TMA kernels (tma128, the tma decode tiles) encode it with
// encode_bf16_sw128: the pool as [blocks x layers x 2 x 16, kv_width] bf16,
// boxes of one 16-token page by 64 head dims, the 128-byte swizzle.
#pragma once

#include "emu.hpp"

#include "device/cuda/paged_kv.hpp"

#include <cstdint>

namespace accellm::device::cuda::test {

inline emu::tensor_map_2d pool_map(const kv_pool_view& kv) {
  emu::tensor_map_2d m;
  m.base = kv.pool;
  m.dims[0] = kv.kv_width;
  m.dims[1] = kv.matrix_rows();
  m.row_bytes = std::uint64_t{kv.kv_width} * 2;
  m.box[0] = 64;
  m.box[1] = kv.block_tokens;
  return m;
}

}  // namespace accellm::device::cuda::test

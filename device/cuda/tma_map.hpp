// tma_map: encodes the tensor maps TMA copies read (tma.cuh) on the host,
// through the driver's cuTensorMapEncodeTiled, looked up once by entry
// point (nothing links libcuda). Internal to device/cuda: skinny_gemm_tma,
// the tma128 prefill kernel and the tma decode tiles.
#pragma once

#include "common/result.hpp"
#include "device/cuda/paged_kv.hpp"

#include <cuda.h>  // CUtensorMap

#include <cstdint>

namespace accellm::device::cuda {

/// The map of a bf16 matrix of `rows` rows of `cols` elements, rows
/// `row_bytes` apart (a multiple of 16), read in boxes of 64 columns x
/// `box_rows` rows with the 128-byte swizzle. device_failure naming `who`
/// when the driver has no cuTensorMapEncodeTiled or refuses the map.
status encode_bf16_sw128(CUtensorMap& map, const void* base, std::uint64_t rows, std::uint64_t cols,
                         std::uint64_t row_bytes, std::uint32_t box_rows, const char* who);

/// Whether the TMA attention kernels can map `kv`'s pool: blocks of 16
/// tokens, counted (kv.blocks), at most 2^31 rows (kv_pool_view::matrix_rows;
/// a TMA coordinate is a signed 32-bit integer).
bool tma_maps_pool(const kv_pool_view& kv) noexcept;

/// The map those kernels read `kv`'s pool through (tma_maps_pool): the
/// [matrix_rows x kv_width] bf16 matrix, boxes of one 16-token page by 64
/// head dims, with the 128-byte swizzle.
status encode_pool_map(CUtensorMap& map, const kv_pool_view& kv, const char* who);

}  // namespace accellm::device::cuda

// tma_map: encodes the tensor maps TMA copies read (tma.cuh) on the host,
// through the driver's cuTensorMapEncodeTiled, looked up once by entry
// point (nothing links libcuda). Internal to device/cuda: skinny_gemm_tma
// and the tma128 prefill kernel.
#pragma once

#include "common/result.hpp"

#include <cuda.h>  // CUtensorMap

#include <cstdint>

namespace accellm::device::cuda {

/// The map of a bf16 matrix of `rows` rows of `cols` elements, rows
/// `row_bytes` apart (a multiple of 16), read in boxes of 64 columns x
/// `box_rows` rows with the 128-byte swizzle. device_failure naming `who`
/// when the driver has no cuTensorMapEncodeTiled or refuses the map.
status encode_bf16_sw128(CUtensorMap& map, const void* base, std::uint64_t rows, std::uint64_t cols,
                         std::uint64_t row_bytes, std::uint32_t box_rows, const char* who);

}  // namespace accellm::device::cuda

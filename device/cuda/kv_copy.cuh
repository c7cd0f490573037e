// kv_copy: packs a request's KV slice (layers x tokens, K then V per layer)
// out of the paged pool into a contiguous buffer, and unpacks one back. The
// packed layout is kv_chunk::data's (device/backend.hpp) in bf16, so a
// slice moves with one memcpy: device to pinned host, or device to device.
#pragma once

#include "common/result.hpp"
#include "device/cuda/paged_kv.hpp"

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace accellm::device::cuda {

/// Direction of kv_copy.
enum class kv_direction : std::uint8_t { pack, unpack };

/// Copies layers [layer0, layer0 + layers) x tokens [tok0, tok0 + tokens) of
/// the request whose block table is `table` (device memory) between the pool
/// and `packed` ([layers][K, V][tokens][kv_width]). Fails on null pointers.
status kv_copy(const kv_pool_view& kv, const std::int32_t* table, std::uint32_t layer0,
               std::uint32_t layers, std::uint32_t tok0, std::uint32_t tokens,
               __nv_bfloat16* packed, kv_direction dir, cudaStream_t s);

}  // namespace accellm::device::cuda

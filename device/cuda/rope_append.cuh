// rope_append: RoPE on the fresh Q and K of every row ("rotate half"
// pairing i <-> i + head_dim/2, as device/cpu), then K and V appended to the
// paged cache at each row's position. Q leaves as bf16 for attention.
#pragma once

#include "common/result.hpp"
#include "device/cuda/paged_kv.hpp"

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <vector>

namespace accellm::device::cuda {

/// Per-row inputs of rope_append (device pointers, `rows` entries each).
struct row_tables {
  const std::int32_t* pos = nullptr;   ///< position of each row in its request
  const std::int32_t* slot = nullptr;  ///< block-table slot of each row's request
};

/// `qkv` is [rows x (q_width + 2 kv_width)] bf16 (Q, K, V per row, the QKV
/// GEMM's output); RoPE runs in fp32; `cos` and
/// `sin` are [positions x head_dim/2] tables (rope_table_host). Writes `q_out`
/// [rows x q_width] and the K/V rows of `layer` in `kv`. Fails on an odd or
/// zero head_dim, a shape not matching kv.kv_width, or null pointers.
status rope_append(const __nv_bfloat16* qkv, std::uint32_t rows, const attn_shape& shape,
                   const row_tables& t, const float* cos, const float* sin, __nv_bfloat16* q_out,
                   const kv_pool_view& kv, std::uint32_t layer, cudaStream_t s);

/// cos and sin of pos * theta^(-2i/head_dim), computed in double exactly as
/// device/cpu's fill_rope_table: [positions x head_dim/2] each, cos first.
std::vector<float> rope_table_host(std::uint32_t positions, std::uint32_t head_dim, double theta);

}  // namespace accellm::device::cuda

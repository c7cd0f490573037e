// prefill_attention: causal attention of prompt rows (a whole prompt or one
// chunk of it) against the request's paged KV, which already holds the rows'
// own K/V (rope_append runs first). Flash-attention style: a block takes up
// to 64 query rows of one head, walks the keys in tiles of 64 with an online
// softmax, and never materialises more than a 64 x 64 score tile, so memory
// stays linear in the sequence. Q K^T and P V run on the tensor cores
// (mma.sync m16n8k16, bf16 in, fp32 accumulation) with the scores kept in
// registers (FlashAttention-2's layout); softmax statistics are fp32.
#pragma once

#include "common/result.hpp"
#include "device/cuda/paged_kv.hpp"

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace accellm::device::cuda {

inline constexpr std::uint32_t prefill_tile_rows = 64;

struct prefill_attention_args {
  const __nv_bfloat16* q = nullptr;  ///< [rows x q_width], RoPE applied
  __nv_bfloat16* out = nullptr;      ///< [rows x q_width]; only the tiles' rows are written
  /// Any order gives the same result; blocks start in this order, so the
  /// tiles with the most keys (the latest positions) should come first.
  const prefill_tile* tiles = nullptr;
  std::uint32_t n_tiles = 0;  ///< at most 65535
  attn_shape shape;
  kv_pool_view kv;
  std::uint32_t layer = 0;
};

/// Fails (invalid_argument) when head_dim is not 16, 32, 64 or 128, kv_heads
/// does not divide heads, or a pointer is null.
status prefill_attention(const prefill_attention_args& a, cudaStream_t s);

}  // namespace accellm::device::cuda

// The paged KV pool as the kernels see it, and the per-iteration tables that
// say which rows belong to which request.
//
// Pool layout (bf16): [block][layer][K, V][block_tokens][kv_width]. A block
// holds `block_tokens` positions of every layer, like device/cpu's pool, so a
// request's block table is one list for all layers. The K row of position p
// in layer l of a request with block table T is
//   pool + ((T[p / bt] * layers + l) * 2 + 0) * bt * kv_width + (p % bt) * kv_width
// and its V row is bt * kv_width elements further.
//
// Value types, shared by host and device code; no ownership.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace accellm::device::cuda {

struct kv_pool_view {
  __nv_bfloat16* pool = nullptr;
  std::uint32_t layers = 0;
  std::uint32_t block_tokens = 16;
  std::uint32_t kv_width = 0;  ///< kv_heads * head_dim of this shard
  /// Block tables, one row of `table_stride` int32 per request slot.
  const std::int32_t* tables = nullptr;
  std::uint32_t table_stride = 0;
  /// Blocks in the pool (0: not said): the extent of the pool as the TMA
  /// attention kernels' tensor map sees it (matrix_rows).
  std::uint32_t blocks = 0;

  /// Elements of one block (all layers, K and V).
  __host__ __device__ std::uint64_t block_elems() const {
    return 2ull * layers * block_tokens * kv_width;
  }
  /// Rows of the pool seen as a [rows x kv_width] matrix, one per block,
  /// layer, K|V and position (what a TMA tensor map of it spans).
  __host__ __device__ std::uint64_t matrix_rows() const {
    return std::uint64_t{blocks} * layers * 2 * block_tokens;
  }
  /// The row of that matrix where K (kind 0) or V (kind 1) of `layer` in
  /// `block` starts (block_tokens rows, one per position).
  __host__ __device__ std::uint64_t page_row(std::uint64_t block, std::uint32_t layer,
                                             std::uint32_t kind) const {
    return ((block * layers + layer) * 2 + kind) * block_tokens;
  }
  /// First element of K (kind 0) or V (kind 1) of `pos` in `layer` for the
  /// request in table slot `slot`.
  __host__ __device__ std::uint64_t row_offset(std::uint32_t slot, std::uint32_t layer,
                                               std::uint32_t kind, std::uint32_t pos) const {
    // page_row's arithmetic, written out: the kernels measured on the GPU
    // were compiled from this form (through page_row ptxas allocates
    // differently, e.g. 128 registers for the decode 32x2 pass where 145).
    const auto block = static_cast<std::uint64_t>(tables[slot * table_stride + pos / block_tokens]);
    return ((block * layers + layer) * 2 + kind) * block_tokens * kv_width +
           static_cast<std::uint64_t>(pos % block_tokens) * kv_width;
  }
};

/// Attention shape of one shard: query heads, KV heads (GQA groups), head dim.
struct attn_shape {
  std::uint32_t heads = 0;
  std::uint32_t kv_heads = 0;
  std::uint32_t head_dim = 0;
  __host__ __device__ std::uint32_t q_width() const { return heads * head_dim; }
  __host__ __device__ std::uint32_t kv_width() const { return kv_heads * head_dim; }
};

/// One decode row: its row in the activations, its table slot and the
/// number of cached positions it attends to (its position + 1).
struct decode_item {
  std::int32_t row;
  std::int32_t slot;
  std::int32_t length;
};

/// Up to 64 consecutive query rows of one request (prefill or a chunk):
/// rows [row, row + count) at positions [pos, pos + count).
struct prefill_tile {
  std::int32_t row;
  std::int32_t count;
  std::int32_t pos;
  std::int32_t slot;
};

}  // namespace accellm::device::cuda

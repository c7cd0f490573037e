// decode_attention: one query row per request against its paged KV, split
// along the context (flash-decoding) so that a few long requests still fill
// the GPU, grouped-query aware: a block loads each K/V row once for all the
// query heads of its KV head.
//
// Pass 1: block (kv_head, split, item) walks its slice of positions with an
// online softmax in fp32 and writes an unnormalised partial (acc, max, sum).
// Pass 2: per (item, head), the partials of all splits are merged and the
// output row written as bf16. With one split the tensor-core pass 1 writes
// the output itself and pass 2 does not run.
#pragma once

#include "common/result.hpp"
#include "device/cuda/paged_kv.hpp"

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <optional>
#include <string_view>

namespace accellm::device::cuda {

/// Which pass-1 kernel: tensor cores with the query group as tile rows
/// (decode_kernels.cuh, the default), or plain CUDA cores with a key
/// split across lanes (kept as a cross-check and for head_dim 256).
enum class decode_kernel : std::uint8_t { mma, simt };

/// The mma pass 1's pipeline: keys per stage and stages (cp.async groups
/// in flight: stages - 1). keys32_stages2 is the default; the others
/// (head_dim 64 and 128 only) trade shared memory per warp, and so warps per
/// SM, against bytes in flight per warp, and are timed by
/// bench_gpu_ceilings and by the probe that picks one (decode_choice.hpp).
/// On the H100 (Nsight Compute, 2026-11-27) 32x2 runs 6 one-warp blocks an
/// SM, the shared-memory limit, with DRAM at 81% of peak; the tiles with
/// more bytes in flight per warp and fewer warps (32x4, 64x2: 3 an SM) were
/// slower. keys16_stages2 goes the other way: half the shared memory, so
/// about twice the warps, each with one 8 KB stage in flight (head_dim 128).
/// tma16_stages3 and tma16_stages5 are the same pass with Hopper's TMA
/// doing the copies (decode_kernels.cuh's tma_kernel): one 16-key page a
/// stage, 2 or 4 in flight, for a pool of 16-token blocks whose count
/// kv_pool_view::blocks says, on compute capability 9.0.
enum class decode_tile : std::uint8_t {
  keys32_stages2,
  keys16_stages4,
  keys32_stages4,
  keys64_stages2,
  keys16_stages2,
  tma16_stages3,
  tma16_stages5
};

/// Every tile, the default first.
inline constexpr decode_tile decode_tiles[] = {
    decode_tile::keys32_stages2, decode_tile::keys16_stages4, decode_tile::keys32_stages4,
    decode_tile::keys64_stages2, decode_tile::keys16_stages2, decode_tile::tma16_stages3,
    decode_tile::tma16_stages5};

/// Whether the mma pass 1 has tile `t` at head_dim `hd`: the default at
/// every head_dim, the others from 64 up.
constexpr bool decode_tile_built(decode_tile t, std::uint32_t hd) noexcept {
  return t == decode_tile::keys32_stages2 || hd >= 64;
}

/// Whether tile `t` copies with TMA (tma_kernel).
constexpr bool decode_tile_uses_tma(decode_tile t) noexcept {
  return t == decode_tile::tma16_stages3 || t == decode_tile::tma16_stages5;
}

/// "32x2", "16x4", "32x4", "64x2", "16x2", "tma16x3", "tma16x5".
inline const char* decode_tile_name(decode_tile t) noexcept {
  switch (t) {
    case decode_tile::keys32_stages2:
      return "32x2";
    case decode_tile::keys16_stages4:
      return "16x4";
    case decode_tile::keys32_stages4:
      return "32x4";
    case decode_tile::keys64_stages2:
      return "64x2";
    case decode_tile::keys16_stages2:
      return "16x2";
    case decode_tile::tma16_stages3:
      return "tma16x3";
    case decode_tile::tma16_stages5:
      return "tma16x5";
  }
  return "?";
}

/// The tile decode_tile_name calls `name`; nullopt for another name.
inline std::optional<decode_tile> decode_tile_named(std::string_view name) noexcept {
  for (decode_tile t : decode_tiles)
    if (name == decode_tile_name(t)) return t;
  return std::nullopt;
}

struct decode_attention_args {
  const __nv_bfloat16* q = nullptr;  ///< [rows x q_width], RoPE applied
  __nv_bfloat16* out = nullptr;      ///< [rows x q_width]; only the items' rows are written
  const decode_item* items = nullptr;
  std::uint32_t n_items = 0;
  attn_shape shape;
  kv_pool_view kv;
  std::uint32_t layer = 0;
  std::uint32_t splits = 1;  ///< context slices per item, 1..max_splits
  float* partial = nullptr;  ///< scratch of decode_partial_floats(n_items, heads, splits, hd)
  decode_kernel kernel = decode_kernel::mma;
  decode_tile tile = decode_tile::keys32_stages2;  ///< mma only
};

inline constexpr std::uint32_t max_decode_splits = 64;

/// Scratch floats pass 1 needs.
constexpr std::uint64_t decode_partial_floats(std::uint64_t items, std::uint64_t heads,
                                              std::uint64_t splits, std::uint64_t head_dim) {
  return items * heads * splits * (head_dim + 2);
}

/// A split count that gives about `target_blocks` blocks for `n_items` items
/// of up to `max_length` positions (at least 256 positions per split).
std::uint32_t choose_decode_splits(std::uint32_t n_items, std::uint32_t kv_heads,
                                   std::uint32_t max_length, std::uint32_t target_blocks);

/// How a decode step's split count is chosen: `blocks`, choose_decode_splits
/// aiming at 32 blocks per SM (the default); `waves`,
/// choose_decode_splits_by_waves over the blocks the GPU holds at once.
enum class decode_split_rule : std::uint8_t { blocks, waves };

/// "blocks", "waves"; and back (nullopt for another name).
const char* decode_split_rule_name(decode_split_rule r) noexcept;
std::optional<decode_split_rule> decode_split_rule_named(std::string_view name) noexcept;

/// A split count chosen by the waves of blocks it makes when `resident`
/// one-warp blocks run at once (decode_blocks_per_sm x SMs). Every block of
/// a wave is modelled as taking as long as its slice, ceil(max_length /
/// splits) positions, plus 32 (about one pipeline stage of start and end),
/// and a merge pass as 32 more when there are splits to merge; the count
/// with the least modelled time is chosen, the fewer splits on a tie, with
/// at least 256 positions per split (as choose_decode_splits). On the H100, 64 items of 512
/// positions in Llama-2-7B's shape make 2048 blocks of 792 resident: this rule takes one split (3
/// waves of 544), where choose_decode_splits takes two (6 waves of 288; Nsight Compute: 5.2 waves,
/// DRAM at 81% of peak).
std::uint32_t choose_decode_splits_by_waves(std::uint32_t n_items, std::uint32_t kv_heads,
                                            std::uint32_t max_length, std::uint32_t resident);

/// How many pass-1 blocks of the mma kernel with tile `t` at `head_dim` one
/// SM holds at once (the occupancy calculator); invalid_argument for a tile
/// not built at that head_dim, device_failure from the runtime.
result<std::uint32_t> decode_blocks_per_sm(decode_tile t, std::uint32_t head_dim);

/// Fails (invalid_argument) when head_dim is not one of 16, 32, 64, 128 (or
/// 256 with the simt kernel), heads / kv_heads is not 1, 2, 4 or 8, splits is
/// out of range, a pointer is null, a tile other than the default is asked
/// of head_dim 16 or 32, or a TMA tile of a pool it cannot map (blocks of
/// other than 16 tokens, kv.blocks 0, more than 2^31 rows of K or V).
status decode_attention(const decode_attention_args& a, cudaStream_t s);

}  // namespace accellm::device::cuda

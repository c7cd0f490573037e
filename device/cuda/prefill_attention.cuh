// prefill_attention: causal attention of prompt rows (a whole prompt or one
// chunk of it) against the request's paged KV, which already holds the rows'
// own K/V (rope_append runs first). Flash-attention style: a block takes up
// to 64 (or 128) query rows of one head, walks the keys in tiles of 64 (or
// 32) with an online softmax, and never materialises more than one score
// tile, so memory stays linear in the sequence. Q K^T and P V run on the
// tensor cores (bf16 in, fp32 accumulation) with the scores kept in
// registers (FlashAttention-2's layout); softmax statistics are fp32.
//
// Seven kernels with the same contract (prefill_kernel), device code in
// prefill_mma.cuh (mma.sync) and prefill_wgmma.cuh (wgmma):
// - rows64: 4 warps x 16 query rows, Q fragments in registers.
// - rows128: 4 warps x 32 query rows (two m16 tiles per warp), Q in shared
//   memory, FlashAttention-2's H100 configuration for head_dim 128. Every
//   K/V fragment read from shared memory feeds two products instead of one,
//   and a block loads each K/V tile once for 128 rows.
// - wgmma64: one warpgroup x 64 query rows on Hopper's wgmma.mma_async, K
//   and V read by the tensor cores from shared memory. Head dim 64 or 128,
//   sm_90a builds only (CMAKE_CUDA_ARCHITECTURES 90a, the default), compute
//   capability 9.0.
// - wgmma128: two warpgroups x 64 query rows sharing the K/V stages, each
//   overlapping its softmax with its products (FlashAttention-3's
//   intra-warpgroup pipelining); same limits as wgmma64.
// - tma128: wgmma128's warpgroups fed by a producer warp through TMA
//   (FlashAttention-3's warp specialisation, prefill_tma.cuh); same limits,
//   and a pool of 16-token blocks with kv_pool_view::blocks set.
// - tma128pp: tma128 with its two consumer warpgroups taking turns to issue
//   their products (FlashAttention-3's ping-pong, prefill_tma.cuh); same
//   limits.
// - tma128n: tma128 with 128-key steps and Q in shared memory (both of the
//   scores' operands read by the tensor cores from there: FlashAttention-3's
//   configuration at head_dim 128, prefill_tma.cuh); tma128's limits, and q
//   16-byte aligned (Q is copied with 16-byte cp.async).
// rows64, rows128, wgmma64 and wgmma128 have run on H100 and H200, tma128
// and tma128pp on the H100; tma128n only on the host emulator
// (tests/device/cuda/emu/) so far. forward_pass
// uses a kernel other than rows64 only after checking it against rows64 on
// the device and timing both (prefill_choice.hpp).
#pragma once

#include "common/result.hpp"
#include "device/cuda/paged_kv.hpp"

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <vector>

namespace accellm::device::cuda {

/// Which prefill kernel runs; each takes tiles of its own height.
enum class prefill_kernel : std::uint8_t {
  rows64,
  rows128,
  wgmma64,
  wgmma128,
  tma128,
  tma128pp,
  tma128n
};

/// The most rows a tile may hold for kernel `k` (64, or 128 for rows128,
/// wgmma128, tma128, tma128pp and tma128n). The host cuts prompts into tiles of this height
/// (the last one shorter).
constexpr std::uint32_t prefill_tile_rows_of(prefill_kernel k) noexcept {
  return k == prefill_kernel::rows64 || k == prefill_kernel::wgmma64 ? 64u : 128u;
}

/// Whether kernel `k` runs on Hopper's warpgroup MMA (sm_90a code only).
constexpr bool prefill_kernel_uses_wgmma(prefill_kernel k) noexcept {
  return k == prefill_kernel::wgmma64 || k == prefill_kernel::wgmma128 ||
         k == prefill_kernel::tma128 || k == prefill_kernel::tma128pp ||
         k == prefill_kernel::tma128n;
}

/// Whether kernel `k` reads the pool through TMA (tma128, tma128pp, tma128n).
constexpr bool prefill_kernel_uses_tma(prefill_kernel k) noexcept {
  return k == prefill_kernel::tma128 || k == prefill_kernel::tma128pp ||
         k == prefill_kernel::tma128n;
}

/// The shortest tile height of any kernel: bounds the number of tiles.
inline constexpr std::uint32_t prefill_min_tile_rows = 64;

/// Appends the tiles of `count` prompt rows that start at token row `row` and
/// position `pos` of the request in `slot`: prefill_tile_rows_of(k) rows
/// each, the last one shorter.
void append_prefill_tiles(std::vector<prefill_tile>& out, prefill_kernel k, std::int32_t row,
                          std::uint32_t count, std::uint32_t pos, std::int32_t slot);

/// Orders tiles longest first (a tile attends to pos + count keys), keeping
/// the order of equals: blocks start in this order, so the long tiles do not
/// end up in the tail.
void sort_longest_first(std::vector<prefill_tile>& tiles);

/// "rows64", "rows128", "wgmma64", "wgmma128", "tma128", "tma128pp",
/// "tma128n" ("?" for a value outside the enum).
const char* prefill_kernel_name(prefill_kernel k) noexcept;

struct prefill_attention_args {
  const __nv_bfloat16* q = nullptr;  ///< [rows x q_width], RoPE applied
  __nv_bfloat16* out = nullptr;      ///< [rows x q_width]; only the tiles' rows are written
  /// Tiles of at most prefill_tile_rows_of(kernel) rows. Any order gives the
  /// same result; blocks start in this order, so the tiles with the most
  /// keys (the latest positions) should come first.
  const prefill_tile* tiles = nullptr;
  std::uint32_t n_tiles = 0;  ///< at most 65535
  attn_shape shape;
  kv_pool_view kv;
  std::uint32_t layer = 0;
  prefill_kernel kernel = prefill_kernel::rows64;
};

/// Fails (invalid_argument), before any CUDA call, when head_dim is not 16,
/// 32, 64 or 128, kv_heads does not divide heads, a pointer is null, there
/// are more than 65535 tiles, the shape does not match the pool, the kernel
/// is not a prefill_kernel, or (rows128 and tma128n, which copy Q with
/// 16-byte cp.async) q is not 16-byte aligned, or (wgmma64, wgmma128,
/// tma128, tma128pp, tma128n) head_dim is not 64 or 128 or the build has no
/// sm_90a code, or (tma128, tma128pp, tma128n)
/// the pool's blocks are not 16 tokens, kv.blocks is 0 or the pool holds
/// more than 2^31 rows of K or V (blocks x layers x 32). A launch failure
/// is device_failure (tma128, tma128pp, tma128n: also a driver without
/// cuTensorMapEncodeTiled);
/// the wgmma kernels fail to launch on a device other than compute
/// capability 9.0.
status prefill_attention(const prefill_attention_args& a, cudaStream_t s);

}  // namespace accellm::device::cuda

// prefill_wgmma: the two prefill kernels on Hopper's warpgroup MMA
// (wgmma.cuh), wgmma64 and wgmma128 (prefill_attention.cuh), device code
// only: prefill_attention_wgmma.cu launches them and the host emulator
// (tests/device/cuda/emu/) runs this same source on the CPU.
//
// Both products are m64 wgmma with the left operand in registers and the
// right one read by the tensor cores straight from shared memory, so no warp
// copies K or V fragments through its registers (rows64 and rows128 read
// every K/V fragment with ldmatrix, once per warp: that shared-memory
// traffic is what bounds them):
//   S = Q K^T:  m64 n64 k16 x HD/16, A = Q (registers, loaded once), B = K;
//   O += P V:   m64 nHD k16 x 4,     A = P (registers), B = V (transposed).
// wgmma's fragments are mma.sync's stacked over a warpgroup's 4 warps, so
// the scores are rows64's, and P is packed into A fragments as there,
// without leaving registers (prefill_rows.cuh).
//
// Shared memory, no swizzle: a 64 x HD tile of K (or V) is stored as 8 x 8
// core matrices, 128 contiguous bytes each (8 keys x 8 dims, a key's 8 dims
// in 16 bytes), key group major:
//   element (key r, dim c) at ((r / 8) * (HD / 8) + c / 8) * 64 + (r % 8) * 8 + c % 8.
// The same tile serves both products:
// - K as the K-major B operand of S (N = keys, K = dims): the leading byte
//   offset (next 8 dims) is 128, the stride byte offset (next 8 keys) HD * 16;
// - V as the MN-major B operand of P V (N = dims, K = keys; transpose bit
//   set): the stride byte offset (next 8 dims) is 128, the leading byte
//   offset (next 8 keys) HD * 16.
// cp.async writes the tiles; each thread fences the generic-to-async proxy
// after its copies land and before the barrier, so the tensor cores see them.
//
// wgmma64: one warpgroup (128 threads) x 64 query rows of one head. Two
// stages of [K | V]; step i + 1's copies run while step i is computed; each
// product is waited for before the softmax that needs it. Three blocks per
// SM (64 KB of shared memory each at HD 128) overlap one block's softmax
// with another's products. Verified on an H200: equal to rows64 to the bit.
//
// wgmma128: two warpgroups (256 threads) x 64 query rows each, one tile of
// 128 rows of one head, sharing the K/V stages: each K/V tile comes from L2
// once for 128 rows (wgmma64: for 64). Within a warpgroup the products of
// step j overlap the softmax of step j (FlashAttention-3's intra-warpgroup
// pipelining): at step j it issues S_j = Q K_j^T, then O += P_(j-1) V_(j-1),
// waits for S_j alone, computes its softmax while P V runs, then waits for
// P V, rescales O and packs P_j, which step j + 1 multiplies. So the tensor
// cores hold two products of a warpgroup at once, and the two warpgroups'
// softmaxes interleave on the SM. Four stages, two steps prefetched: step
// j + 2 is copied into the stage of step j - 2, whose V the previous step's
// P V read and waited for before the barrier that opens step j. A warpgroup
// walks only the steps its rows can see (the first one skips the tile's
// last step or two), keeping the block's barriers and copies. One block per
// SM (128 KB of shared memory at HD 128).
//
// Built only for sm_90a (ACCELLM_WGMMA); elsewhere the kernels are empty and
// the launcher refuses them (prefill_wgmma_built()).
#pragma once

#include "device/cuda/prefill_attention.cuh"
#include "device/cuda/prefill_rows.cuh"
#include "device/cuda/ptx.cuh"
#include "device/cuda/wgmma.cuh"

#include <cuda_bf16.h>

#include <cstdint>

namespace accellm::device::cuda::prefill_wgmma {

constexpr int keys = 64;  // per step

/// Threads per block and shared-memory stages of each kernel.
struct wgmma64_shape {
  static constexpr int threads = 128, stages = 2, rows = 64;
};
struct wgmma128_shape {
  static constexpr int threads = 256, stages = 4, rows = 128;
};

template <int HD, class Shape>
constexpr std::size_t smem_bytes() {
  return static_cast<std::size_t>(Shape::stages) * 2 * keys * HD * sizeof(__nv_bfloat16);
}

/// Starts copying K and V rows [key0, key0 + 64) into the core-matrix layout
/// (wg::slot_of; rows past key_end zero) as one cp.async group.
template <int HD, int threads>
__device__ void stage(const prefill_attention_args& a, const prefill_tile& t, std::uint32_t col,
                      int key0, int key_end, __nv_bfloat16* Ks, __nv_bfloat16* Vs) {
  constexpr int vecs = HD / 8;
  const auto slot = static_cast<std::uint32_t>(t.slot);
  for (int e = static_cast<int>(threadIdx.x); e < keys * vecs; e += threads) {
    const wg::core_slot p = wg::slot_of(e, vecs);
    const bool valid = key0 + p.row < key_end;
    const auto key = static_cast<std::uint32_t>(valid ? key0 + p.row : 0);
    const std::uint32_t c = col + p.chunk * 8;
    ptx::cp16(Ks + p.at, a.kv.pool + a.kv.row_offset(slot, a.layer, 0, key) + c, valid);
    ptx::cp16(Vs + p.at, a.kv.pool + a.kv.row_offset(slot, a.layer, 1, key) + c, valid);
  }
  ptx::commit();
}

#if ACCELLM_WGMMA
/// Issues S = Q K^T for 64 keys (s zeroed first) as one group: HD / 16
/// k-steps of 16 dims, the K operand of step ks named by descriptor k(ks).
template <int HD, class K>
__device__ __forceinline__ void issue_scores_at(float (&s)[keys / 8][4],
                                                const std::uint32_t (&qa)[HD / 16][4], K&& k) {
#pragma unroll
  for (int j = 0; j < keys / 8; ++j) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.0f;
  wg::pin(s);
  wg::fence();
#pragma unroll
  for (int ks = 0; ks < HD / 16; ++ks) wg::mma<keys>(s, qa[ks], k(ks), 1, false);
  wg::commit();
}

/// Issues O += P V for 16 KK keys (64: KK 4; tma128n's 128: 8) as one
/// group: KK k-steps of 16 keys, the (MN-major) V operand of step kk named
/// by descriptor v(kk).
template <int HD, int KK, class V>
__device__ __forceinline__ void issue_values_at(float (&o)[HD / 8][4],
                                                const std::uint32_t (&pa)[KK][4], V&& v) {
  wg::pin(o);
  wg::fence();
#pragma unroll
  for (int kk = 0; kk < KK; ++kk) wg::mma<HD>(o, pa[kk], v(kk), 1, true);
  wg::commit();
}

/// issue_scores_at over the core-matrix tile Ks: core matrices 2 ks and
/// 2 ks + 1 of each key group, 64 elements apart.
template <int HD>
__device__ __forceinline__ void issue_scores(float (&s)[keys / 8][4],
                                             const std::uint32_t (&qa)[HD / 16][4],
                                             const __nv_bfloat16* Ks) {
  constexpr std::uint32_t group_bytes = HD * 16;  // one 8-key group of a tile
  issue_scores_at<HD>(s, qa,
                      [&](int ks) { return wg::descriptor(Ks + ks * 128, 128, group_bytes); });
}

/// issue_values_at over the core-matrix tile Vs: 16 keys (two 8-key groups)
/// a k-step.
template <int HD>
__device__ __forceinline__ void issue_values(float (&o)[HD / 8][4],
                                             const std::uint32_t (&pa)[keys / 16][4],
                                             const __nv_bfloat16* Vs) {
  constexpr std::uint32_t group_bytes = HD * 16;
  issue_values_at<HD>(
      o, pa, [&](int kk) { return wg::descriptor(Vs + kk * 2 * 8 * HD, group_bytes, 128); });
}
#endif

#if ACCELLM_WGMMA
/// A hook that does nothing (overlapped_step's and last_values' `issued`
/// when no other warpgroup waits for the products to be issued).
struct nothing {
  __device__ __forceinline__ void operator()() const {}
};

/// Key step j of a warpgroup that overlaps its softmax with its products
/// (wgmma128, tma128; tma128n with C 16 score chunks, 128 keys, where the
/// others take 8): `scores()` issues S_j = Q K_j^T into s and, for j >
/// 0, `values()` issues P_(j-1) V_(j-1) (pa) into o; `issued()` runs (the
/// ping-pong of tma128pp hands the tensor cores to the other warpgroup
/// there); S_j is waited for alone and its softmax computed while P V runs;
/// then P V is waited for, `retired()` runs (j > 0: nothing reads step j -
/// 1's tiles any more), o is rescaled and P_j packed into pa. The one
/// retirement of every product it issues keeps ptxas from serialising them.
template <int HD, int C, class Scores, class Values, class Retired, class Issued = nothing>
__device__ __forceinline__ void overlapped_step(
    int j, float (&s)[C][4], std::uint32_t (&pa)[C / 2][4], float (&o)[HD / 8][4],
    prefill_rows::running& run, bool unmasked, int key0, int qpos0, int qpos1, int key_end, int tq,
    float scale_log2, Scores&& scores, Values&& values, Retired&& retired, Issued issued = {}) {
  scores();
  if (j == 0) {
    issued();
    wg::wait<0>();
  } else {
    values();  // P_(j-1) V_(j-1)
    issued();
    wg::wait<1>();  // S_j retired; P V still runs
  }
  wg::pin(s);
  const prefill_rows::rescale_by f =
      prefill_rows::softmax_scores(s, run, unmasked, key0, qpos0, qpos1, key_end, tq, scale_log2,
                                   prefill_rows::keep_in_scores<C>{s});
  wg::wait<0>();
  wg::pin(o);
  if (j > 0) retired();
  prefill_rows::rescale<HD>(o, f);
#pragma unroll
  for (int kk = 0; kk < C / 2; ++kk) prefill_rows::p_fragment(pa[kk], s, kk);
}

/// The last P V of a warpgroup: `values()` issues it, `issued()` runs;
/// waited for.
template <int HD, class Values, class Issued = nothing>
__device__ __forceinline__ void last_values(float (&o)[HD / 8][4], Values&& values,
                                            Issued issued = {}) {
  values();
  issued();
  wg::wait<0>();
  wg::pin(o);
}
#endif

template <int HD>
__global__ void __launch_bounds__(wgmma64_shape::threads, 3)
    wgmma64_kernel(prefill_attention_args a, float scale_log2) {
#if ACCELLM_WGMMA
  using shape = wgmma64_shape;
  constexpr int tile_elems = keys * HD, stage_elems = 2 * tile_elems;
  __nv_bfloat16* smem = ptx::dynamic_smem<__nv_bfloat16>();
  std::uint32_t qa[HD / 16][4];
  float o[HD / 8][4];
  const auto [t, head, kvh, warp, lane, tq, r0, r1, qpos0, qpos1, key_end] =
      prefill_rows::begin<HD>(a, qa, o);
  const std::uint32_t hd = HD;
  prefill_rows::running run;

  stage<HD, shape::threads>(a, t, kvh * hd, 0, key_end, smem, smem + tile_elems);
  int buf = 0;
  for (int key0 = 0; key0 < key_end; key0 += keys, buf ^= 1) {
    if (key0 + keys < key_end) {
      __nv_bfloat16* next = smem + (buf ^ 1) * stage_elems;
      stage<HD, shape::threads>(a, t, kvh * hd, key0 + keys, key_end, next, next + tile_elems);
      ptx::wait_group<1>();
    } else {
      ptx::wait_group<0>();
    }
    wg::proxy_fence();
    __syncthreads();  // every thread's copies of this stage are visible to the tensor cores
    const __nv_bfloat16* Ks = smem + buf * stage_elems;
    const __nv_bfloat16* Vs = Ks + tile_elems;

    float s[keys / 8][4];
    issue_scores<HD>(s, qa, Ks);
    wg::wait<0>();
    wg::pin(s);

    std::uint32_t pa[keys / 16][4];
    prefill_rows::softmax_step<HD>(s, pa, o, run, key0 + keys <= t.pos + 1, key0, qpos0, qpos1,
                                   key_end, tq, scale_log2);
    issue_values<HD>(o, pa, Vs);
    wg::wait<0>();
    wg::pin(o);
    __syncthreads();  // every warp is done with this stage before it is refilled
  }
  prefill_rows::store<HD>(o, run, a, t, head, r0, r1, tq);
#else
  (void)a;
  (void)scale_log2;
#endif
}

template <int HD>
__global__ void __launch_bounds__(wgmma128_shape::threads, 1)
    wgmma128_kernel(prefill_attention_args a, float scale_log2) {
#if ACCELLM_WGMMA
  using shape = wgmma128_shape;
  constexpr int tile_elems = keys * HD, stage_elems = 2 * tile_elems;
  __nv_bfloat16* smem = ptx::dynamic_smem<__nv_bfloat16>();
  std::uint32_t qa[HD / 16][4];
  float o[HD / 8][4];
  // Warp w (0..7) holds rows 16 w .. 16 w + 15 of the tile, so warpgroup
  // wg = w / 4 holds rows 64 wg .. 64 wg + 63 in wgmma's layout.
  const auto [t, head, kvh, warp, lane, tq, r0, r1, qpos0, qpos1, key_end] =
      prefill_rows::begin<HD>(a, qa, o);
  const std::uint32_t col = kvh * static_cast<std::uint32_t>(HD);
  // The warpgroup's index through a shuffle, so that ptxas sees it uniform
  // across the warp and keeps the products below asynchronous (a branch on
  // threadIdx-derived values would make it serialise them, C7518).
  const int wg_row0 = __shfl_sync(0xffffffffu, warp / 4, 0) * shape::rows / 2;
  // The steps of keys this warpgroup's rows can see (none when the tile ends
  // before its rows), and the block's: the last warpgroup's.
  const int wg_key_end = t.pos + (t.count < wg_row0 + 64 ? t.count : wg_row0 + 64);
  const int wg_steps = t.count > wg_row0 ? (wg_key_end + keys - 1) / keys : 0;
  const int steps = (key_end + keys - 1) / keys;
  prefill_rows::running run;

  auto stage_of = [&](int j) { return smem + (j % shape::stages) * stage_elems; };
  stage<HD, shape::threads>(a, t, col, 0, key_end, stage_of(0), stage_of(0) + tile_elems);
  if (steps > 1)
    stage<HD, shape::threads>(a, t, col, keys, key_end, stage_of(1), stage_of(1) + tile_elems);
  else
    ptx::commit();  // an empty group: every step then waits for all but one

  float s[keys / 8][4];
  std::uint32_t pa[keys / 16][4];  // P of the step before, multiplied at this one
  for (int j = 0; j < steps; ++j) {
    ptx::wait_group<1>();  // step j's copies landed; j + 1's may be in flight
    wg::proxy_fence();
    // Step j's tiles are visible to the tensor cores, and every warpgroup
    // has retired step j - 1's products: step j - 2's stage is free.
    __syncthreads();
    if (j + 2 < steps) {
      __nv_bfloat16* next = stage_of(j + 2);
      stage<HD, shape::threads>(a, t, col, (j + 2) * keys, key_end, next, next + tile_elems);
    } else {
      ptx::commit();
    }
    // Each branch retires every product it issues, so ptxas sees no read of
    // an accumulator in flight on any path and keeps them asynchronous.
    const int key0 = j * keys;
    const bool unmasked = key0 + keys <= t.pos + wg_row0 + 1;
    const auto values_of = [&](int i) {
      return [&, i] { issue_values<HD>(o, pa, stage_of(i) + tile_elems); };
    };
    if (j < wg_steps) {
      overlapped_step<HD>(
          j, s, pa, o, run, unmasked, key0, qpos0, qpos1, key_end, tq, scale_log2,
          [&] { issue_scores<HD>(s, qa, stage_of(j)); }, values_of(j - 1), [] {});
    } else if (j == wg_steps && j > 0) {  // these rows' last P V
      last_values<HD>(o, values_of(j - 1));
    }
  }
  if (wg_steps == steps && steps > 0)  // the last step's P V
    last_values<HD>(o, [&] { issue_values<HD>(o, pa, stage_of(steps - 1) + tile_elems); });
  prefill_rows::store<HD>(o, run, a, t, head, r0, r1, tq);
#else
  (void)a;
  (void)scale_log2;
#endif
}

}  // namespace accellm::device::cuda::prefill_wgmma

// prefill_rows: the per-lane work that the rows64, wgmma64 and wgmma128
// prefill kernels share (prefill_attention.cu, prefill_wgmma.cuh), and the
// tma ones (prefill_tma.cuh). Each gives a warp 16 query rows of a 64-key
// score tile (tma128n's: 128 keys, s[16]) in mma.sync's C layout:
// lane 4 g + t holds rows r0 = 16 w + g and r1 = r0 + 8, s[j][0, 1] = (r0,
// keys 8 j + 2 t, + 1) and s[j][2, 3] = (r1, same keys); o[d] likewise over
// head dims. wgmma's m64 fragments are exactly these, warp w of a warpgroup
// holding rows 16 w .. 16 w + 15 of the warpgroup's 64 (in wgmma128 warp w
// of the block holds rows 16 w .. of the 128-row tile, so warpgroup w / 4
// holds rows 64 (w / 4) ..). Device code, and the softmax scale the
// launchers pass; internal to device/cuda.
#pragma once

#include "device/cuda/prefill_attention.cuh"
#include "device/cuda/ptx.cuh"

#include <cuda_bf16.h>

#include <cmath>
#include <cstdint>

namespace accellm::device::cuda::prefill_rows {

/// log2(e) / sqrt(HD): the kernels' softmax runs in the log2 domain.
template <int HD>
float scale_log2_of() {
  return 1.4426950408889634f / std::sqrt(static_cast<float>(HD));
}

/// The A fragments of rows r0, r1 of the tile's Q for `head`, one per
/// 16-dim k-step; zero for rows past the tile's count.
template <int HD>
__device__ __forceinline__ void load_q(std::uint32_t (&qa)[HD / 16][4],
                                       const prefill_attention_args& a, const prefill_tile& t,
                                       std::uint32_t head, int r0, int r1, int tq) {
  const std::uint32_t qw = a.shape.q_width();
  const __nv_bfloat16* q0 = a.q + static_cast<std::uint64_t>(t.row + r0) * qw + head * HD;
  const __nv_bfloat16* q1 = a.q + static_cast<std::uint64_t>(t.row + r1) * qw + head * HD;
  const bool v0 = r0 < t.count, v1 = r1 < t.count;
#pragma unroll
  for (int ks = 0; ks < HD / 16; ++ks) {
    const int c = ks * 16 + tq * 2;
    qa[ks][0] = v0 ? ptx::word(q0 + c) : 0u;
    qa[ks][1] = v1 ? ptx::word(q1 + c) : 0u;
    qa[ks][2] = v0 ? ptx::word(q0 + c + 8) : 0u;
    qa[ks][3] = v1 ? ptx::word(q1 + c + 8) : 0u;
  }
}

/// Where a lane of a 64-row kernel works. Heads vary fastest (blockIdx.x),
/// so blocks start in the order of the tile list: the caller puts the
/// longest tiles first (every head of them), which keeps the causal tail
/// short, and the heads sharing a KV head run side by side.
struct lane_rows {
  prefill_tile t;      ///< the block's tile (blockIdx.y)
  std::uint32_t head;  ///< its query head
  std::uint32_t kvh;   ///< the KV head that head reads
  int warp, lane, tq;  ///< tq = lane % 4
  int r0, r1;          ///< the lane's two query rows in the tile
  int qpos0, qpos1;    ///< their positions
  int key_end;         ///< one past the tile's last key
};

/// The lane's rows, with o zeroed; `load_q(l)` loads Q once the rows are
/// known (tma128n copies it into shared memory).
template <int HD, class LoadQ>
__device__ __forceinline__ lane_rows begin(const prefill_attention_args& a, float (&o)[HD / 8][4],
                                           LoadQ&& load_q) {
  lane_rows l;
  l.t = a.tiles[blockIdx.y];
  l.head = blockIdx.x;
  l.kvh = l.head / (a.shape.heads / a.shape.kv_heads);
  l.warp = static_cast<int>(threadIdx.x / 32);
  l.lane = static_cast<int>(threadIdx.x % 32);
  const int g = l.lane / 4;
  l.tq = l.lane % 4;
  l.r0 = l.warp * 16 + g;
  l.r1 = l.r0 + 8;
  load_q(static_cast<const lane_rows&>(l));
#pragma unroll
  for (int d = 0; d < HD / 8; ++d) o[d][0] = o[d][1] = o[d][2] = o[d][3] = 0.0f;
  l.qpos0 = l.t.pos + l.r0;
  l.qpos1 = l.t.pos + l.r1;
  l.key_end = l.t.pos + l.t.count;
  return l;
}

/// The lane's rows, with its Q fragments loaded (load_q) and o zeroed.
template <int HD>
__device__ __forceinline__ lane_rows begin(const prefill_attention_args& a,
                                           std::uint32_t (&qa)[HD / 16][4], float (&o)[HD / 8][4]) {
  return begin<HD>(a, o,
                   [&](const lane_rows& l) { load_q<HD>(qa, a, l.t, l.head, l.r0, l.r1, l.tq); });
}

/// A lane's running softmax state for its two rows (log2 domain); l0, l1
/// are per-lane partial sums, summed over the quad by store().
struct running {
  float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.0f, l1 = 0.0f;
};

/// The factors by which a softmax step rescales the lane's o rows.
struct rescale_by {
  float al0, al1;
};

/// One online-softmax step over the C chunks of 8 keys from key0 (64 keys,
/// or tma128n's 128): scales s (log2
/// domain), masks keys past a row's position or past key_end unless
/// `unmasked` (the whole step lies at or below the first position of the
/// rows this warp's group holds), takes the row maxima over the quad, hands
/// P = 2^(s - m) of chunk j to emit(j, p0, p1, p2, p3) as it is computed and
/// updates the running sums. o is not touched: the step returns the factors
/// it must be rescaled by (rescale), so that a kernel may compute the
/// scores while a product still accumulates into o (wgmma128).
template <int C, class Emit>
__device__ __forceinline__ rescale_by softmax_scores(float (&s)[C][4], running& r, bool unmasked,
                                                     int key0, int qpos0, int qpos1, int key_end,
                                                     int tq, float scale_log2, Emit&& emit) {
  float mx0 = -INFINITY, mx1 = -INFINITY;
  if (unmasked) {
#pragma unroll
    for (int j = 0; j < C; ++j) {
      s[j][0] *= scale_log2;
      s[j][1] *= scale_log2;
      s[j][2] *= scale_log2;
      s[j][3] *= scale_log2;
      mx0 = fmaxf(mx0, fmaxf(s[j][0], s[j][1]));
      mx1 = fmaxf(mx1, fmaxf(s[j][2], s[j][3]));
    }
  } else {
#pragma unroll
    for (int j = 0; j < C; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int key = key0 + j * 8 + tq * 2 + (e & 1);
        const int qp = e < 2 ? qpos0 : qpos1;
        const float v = (key <= qp && key < key_end) ? s[j][e] * scale_log2 : -INFINITY;
        s[j][e] = v;
        if (e < 2)
          mx0 = fmaxf(mx0, v);
        else
          mx1 = fmaxf(mx1, v);
      }
  }
#pragma unroll
  for (int off = 1; off < 4; off <<= 1) {
    mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, off));
    mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, off));
  }
  const float n0 = fmaxf(r.m0, mx0), n1 = fmaxf(r.m1, mx1);
  const float al0 = n0 == -INFINITY ? 1.0f : exp2f(r.m0 - n0);
  const float al1 = n1 == -INFINITY ? 1.0f : exp2f(r.m1 - n1);
  float sum0 = 0.0f, sum1 = 0.0f;
#pragma unroll
  for (int j = 0; j < C; ++j) {
    const float p0 = n0 == -INFINITY ? 0.0f : exp2f(s[j][0] - n0);
    const float p1 = n0 == -INFINITY ? 0.0f : exp2f(s[j][1] - n0);
    const float p2 = n1 == -INFINITY ? 0.0f : exp2f(s[j][2] - n1);
    const float p3 = n1 == -INFINITY ? 0.0f : exp2f(s[j][3] - n1);
    sum0 += p0 + p1;
    sum1 += p2 + p3;
    emit(j, p0, p1, p2, p3);
  }
  r.l0 = r.l0 * al0 + sum0;
  r.l1 = r.l1 * al1 + sum1;
  r.m0 = n0;
  r.m1 = n1;
  return {al0, al1};
}

/// o's two rows times the step's factors.
template <int HD>
__device__ __forceinline__ void rescale(float (&o)[HD / 8][4], rescale_by f) {
#pragma unroll
  for (int d = 0; d < HD / 8; ++d) {
    o[d][0] *= f.al0;
    o[d][1] *= f.al0;
    o[d][2] *= f.al1;
    o[d][3] *= f.al1;
  }
}

/// softmax_scores, then o rescaled: one whole step.
template <int HD, class Emit>
__device__ __forceinline__ void softmax_step(float (&s)[8][4], float (&o)[HD / 8][4], running& r,
                                             bool unmasked, int key0, int qpos0, int qpos1,
                                             int key_end, int tq, float scale_log2, Emit&& emit) {
  rescale<HD>(o, softmax_scores(s, r, unmasked, key0, qpos0, qpos1, key_end, tq, scale_log2,
                                static_cast<Emit&&>(emit)));
}

/// Stores P = emit's (j, p0..p3) back into s (C chunks), in fp32.
template <int C>
struct keep_in_scores {
  float (&s)[C][4];
  __device__ __forceinline__ void operator()(int j, float p0, float p1, float p2, float p3) const {
    s[j][0] = p0;
    s[j][1] = p1;
    s[j][2] = p2;
    s[j][3] = p3;
  }
};

/// softmax_step leaving P in s (fp32), packed later by p_fragment: rows64,
/// whose P V loop packs one 16-key fragment at a time.
template <int HD>
__device__ __forceinline__ void softmax_step(float (&s)[8][4], float (&o)[HD / 8][4], running& r,
                                             bool unmasked, int key0, int qpos0, int qpos1,
                                             int key_end, int tq, float scale_log2) {
  softmax_step<HD>(s, o, r, unmasked, key0, qpos0, qpos1, key_end, tq, scale_log2,
                   keep_in_scores<8>{s});
}

/// softmax_step packing P into pa[kk], the A fragments for keys 16 kk ..
/// 16 kk + 15, as it is computed: wgmma64, whose products take all four at
/// once.
template <int HD>
__device__ __forceinline__ void softmax_step(float (&s)[8][4], std::uint32_t (&pa)[4][4],
                                             float (&o)[HD / 8][4], running& r, bool unmasked,
                                             int key0, int qpos0, int qpos1, int key_end, int tq,
                                             float scale_log2) {
  softmax_step<HD>(s, o, r, unmasked, key0, qpos0, qpos1, key_end, tq, scale_log2,
                   [&pa](int j, float p0, float p1, float p2, float p3) {
                     // Score chunks 2 kk and 2 kk + 1 make the fragment for
                     // keys 16 kk ..: (row g | g + 8) x (keys 2 t, + 1 | + 8).
                     pa[j / 2][(j % 2) * 2 + 0] = ptx::pack(p0, p1);
                     pa[j / 2][(j % 2) * 2 + 1] = ptx::pack(p2, p3);
                   });
}

/// The A fragment of P (left in s by softmax_step) for keys 16 kk ..
/// 16 kk + 15: score chunks 2 kk and 2 kk + 1, rounded to bf16 pairs.
template <int C>
__device__ __forceinline__ void p_fragment(std::uint32_t (&pa)[4], const float (&s)[C][4], int kk) {
  pa[0] = ptx::pack(s[2 * kk][0], s[2 * kk][1]);
  pa[1] = ptx::pack(s[2 * kk][2], s[2 * kk][3]);
  pa[2] = ptx::pack(s[2 * kk + 1][0], s[2 * kk + 1][1]);
  pa[3] = ptx::pack(s[2 * kk + 1][2], s[2 * kk + 1][3]);
}

/// Normalises rows r0, r1 of o by their quad-summed sums and writes those
/// within the tile's count to `out` (bf16).
template <int HD>
__device__ __forceinline__ void store(const float (&o)[HD / 8][4], running r,
                                      const prefill_attention_args& a, const prefill_tile& t,
                                      std::uint32_t head, int r0, int r1, int tq) {
#pragma unroll
  for (int off = 1; off < 4; off <<= 1) {
    r.l0 += __shfl_xor_sync(0xffffffffu, r.l0, off);
    r.l1 += __shfl_xor_sync(0xffffffffu, r.l1, off);
  }
  const float inv0 = 1.0f / r.l0, inv1 = 1.0f / r.l1;
  const std::uint32_t qw = a.shape.q_width();
  __nv_bfloat16* out0 = a.out + static_cast<std::uint64_t>(t.row + r0) * qw + head * HD + tq * 2;
  __nv_bfloat16* out1 = a.out + static_cast<std::uint64_t>(t.row + r1) * qw + head * HD + tq * 2;
#pragma unroll
  for (int d = 0; d < HD / 8; ++d) {
    if (r0 < t.count)
      *reinterpret_cast<__nv_bfloat162*>(out0 + d * 8) =
          __floats2bfloat162_rn(o[d][0] * inv0, o[d][1] * inv0);
    if (r1 < t.count)
      *reinterpret_cast<__nv_bfloat162*>(out1 + d * 8) =
          __floats2bfloat162_rn(o[d][2] * inv1, o[d][3] * inv1);
  }
}

}  // namespace accellm::device::cuda::prefill_rows

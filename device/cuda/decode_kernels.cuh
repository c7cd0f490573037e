// decode_kernels: the default decode attention path (decode_attention.cuh),
// device code only: the tensor-core pass 1 (mma_kernel) and pass 2
// (combine_kernel), launched by decode_attention.cu; the host emulator
// (tests/device/cuda/emu/) runs the same source on the CPU.
//
// Pass 1, one warp per (KV head, context split, item): the G query heads of
// the KV head are the rows of an m16n8k16 tile (rows G..15 are zero), so
// each K/V row is read once for the whole group and Q K^T and P V cost almost
// nothing; the warp only streams K/V through shared memory with cp.async, in
// stages of KEYS keys, STAGES deep (32 x 2 by default; decode_tile), which
// keeps the loads in flight that the bandwidth needs. With one split it writes the output rows
// itself; with more, its partials, which pass 2 merges per (head, item).
#pragma once

#include "device/cuda/decode_attention.cuh"
#include "device/cuda/mma_scores.cuh"
#include "device/cuda/ptx.cuh"

#include <cuda_bf16.h>

#include <cmath>
#include <cstdint>

namespace accellm::device::cuda::decode_kernels {

// Shared memory of one pipeline: STAGES x (K, V) tiles of KEYS rows at a
// pitch of HD + 8 elements (rows shift 4 banks: conflict-free fragments and
// ldmatrix).
template <int HD, int KEYS, int STAGES>
constexpr int smem_bytes = STAGES * 2 * KEYS*(HD + 8) * 2;

// Starts copying keys [key0, key0 + KEYS) (zeros past `end`) of the item's
// K and V rows for this KV head into Ks, Vs; not committed.
template <int HD, int KEYS>
__device__ void stage(const decode_attention_args& a, const decode_item& it, std::uint32_t col,
                      int key0, int end, __nv_bfloat16* Ks, __nv_bfloat16* Vs) {
  constexpr int vecs = HD / 8, stride = HD + 8, keys = KEYS;
  const auto slot = static_cast<std::uint32_t>(it.slot);
  const int lane = threadIdx.x;
#pragma unroll
  for (int e = lane; e < keys * vecs; e += 32) {
    const int r = e / vecs, c = e % vecs;
    const bool valid = key0 + r < end;
    const int key = valid ? key0 + r : 0;
    const std::uint64_t k_at = a.kv.row_offset(slot, a.layer, 0, key) + col + c * 8;
    const std::uint64_t v_at = a.kv.row_offset(slot, a.layer, 1, key) + col + c * 8;
    ptx::cp16(Ks + r * stride + c * 8, a.kv.pool + k_at, valid);
    ptx::cp16(Vs + r * stride + c * 8, a.kv.pool + v_at, valid);
  }
}

template <int HD, int KEYS = 32, int STAGES = 2>
__global__ void __launch_bounds__(32) mma_kernel(decode_attention_args a, float scale_log2) {
  ptx::follow_previous_grid();
  constexpr int stride = HD + 8, keys = KEYS;
  static_assert(KEYS % 16 == 0 && STAGES >= 2, "whole k16 steps, one stage in flight at least");
  __nv_bfloat16* const smem = ptx::dynamic_smem<__nv_bfloat16>();
  // Stage st: K at smem + 2 st * tile, V right after it.
  constexpr int tile = KEYS * stride;
  const decode_item it = a.items[blockIdx.z];
  const std::uint32_t kvh = blockIdx.x, split = blockIdx.y;
  const std::uint32_t group = a.shape.heads / a.shape.kv_heads;
  const int lane = threadIdx.x, g = lane / 4, tq = lane % 4, lm = lane / 8, lr = lane % 8;
  const int chunk = (it.length + static_cast<int>(a.splits) - 1) / static_cast<int>(a.splits);
  const int begin = static_cast<int>(split) * chunk;
  const int end = min(it.length, begin + chunk);
  const std::uint32_t col = kvh * HD;

  // Q rows: head kvh * group + g for g < group, zero otherwise (rows g + 8 too).
  std::uint32_t qa[HD / 16][4];
  const bool row_valid = static_cast<std::uint32_t>(g) < group;
  const __nv_bfloat16* q = a.q + static_cast<std::uint64_t>(it.row) * a.shape.q_width() +
                           (kvh * group + (row_valid ? g : 0)) * HD;
#pragma unroll
  for (int ks = 0; ks < HD / 16; ++ks) {
    qa[ks][0] = row_valid ? ptx::word(q + ks * 16 + tq * 2) : 0u;
    qa[ks][2] = row_valid ? ptx::word(q + ks * 16 + tq * 2 + 8) : 0u;
    qa[ks][1] = qa[ks][3] = 0u;
  }
  float o[HD / 8][4];
#pragma unroll
  for (int d = 0; d < HD / 8; ++d) o[d][0] = o[d][1] = o[d][2] = o[d][3] = 0.0f;
  float m = -INFINITY, l = 0.0f;

  // Stages 0 .. STAGES - 2 in flight, one cp.async group each (empty past
  // the end); at step i the stage step i - 1 read receives step i + STAGES - 1.
#pragma unroll
  for (int st = 0; st < STAGES - 1; ++st) {
    const int key0 = begin + st * keys;
    if (key0 < end)
      stage<HD, KEYS>(a, it, col, key0, end, smem + 2 * st * tile, smem + (2 * st + 1) * tile);
    ptx::commit();
  }
  int buf = 0, refill = STAGES - 1;
  for (int key0 = begin; key0 < end; key0 += keys) {
    const int ahead = key0 + (STAGES - 1) * keys;
    if (ahead < end)
      stage<HD, KEYS>(a, it, col, ahead, end, smem + 2 * refill * tile,
                      smem + (2 * refill + 1) * tile);
    ptx::commit();
    ptx::wait_group<STAGES - 1>();  // this step's group (ours) landed
    __syncwarp();
    const __nv_bfloat16* K = smem + 2 * buf * tile;
    const __nv_bfloat16* V = smem + (2 * buf + 1) * tile;
    float s[keys / 8][4];
    mma::scores<HD, keys>(s, qa, K + (8 * (lm / 2) + lr) * stride + (lm % 2) * 8, stride);
    float mx = -INFINITY;
#pragma unroll
    for (int j = 0; j < keys / 8; ++j)
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int key = key0 + j * 8 + tq * 2 + e;
        s[j][e] = key < end ? s[j][e] * scale_log2 : -INFINITY;
        mx = fmaxf(mx, s[j][e]);
      }
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
    const float n = fmaxf(m, mx);  // finite: key0 < end, so one key is valid
    const float alpha = exp2f(m - n);
    float sum = 0.0f;
#pragma unroll
    for (int j = 0; j < keys / 8; ++j) {
      s[j][0] = exp2f(s[j][0] - n);
      s[j][1] = exp2f(s[j][1] - n);
      sum += s[j][0] + s[j][1];
    }
    l = l * alpha + sum;
    m = n;
#pragma unroll
    for (int d = 0; d < HD / 8; ++d) {
      o[d][0] *= alpha;
      o[d][1] *= alpha;
    }
#pragma unroll
    for (int kk = 0; kk < keys / 16; ++kk) {
      const std::uint32_t pa[4] = {ptx::pack(s[2 * kk][0], s[2 * kk][1]), 0u,
                                   ptx::pack(s[2 * kk + 1][0], s[2 * kk + 1][1]), 0u};
      mma::add_pv<HD>(o, pa, V + (kk * 16 + (lm % 2) * 8 + lr) * stride + (lm / 2) * 8);
    }
    __syncwarp();  // the buffer is refilled by a later step's stage()
    buf = buf + 1 == STAGES ? 0 : buf + 1;
    refill = refill + 1 == STAGES ? 0 : refill + 1;
  }
  ptx::wait_group<0>();  // no copy left in flight (only empty groups remain)
  l += __shfl_xor_sync(0xffffffffu, l, 1);
  l += __shfl_xor_sync(0xffffffffu, l, 2);
  if (!row_valid) return;
  const std::uint64_t head = kvh * group + g;
  if (a.splits == 1) {
    // The only split holds the whole context: its normalised row is the
    // output (what pass 2 would compute from it), and pass 2 is skipped.
    __nv_bfloat16* out =
        a.out + static_cast<std::uint64_t>(it.row) * a.shape.q_width() + head * HD + tq * 2;
#pragma unroll
    for (int d = 0; d < HD / 8; ++d)
      *reinterpret_cast<__nv_bfloat162*>(out + d * 8) =
          __floats2bfloat162_rn(o[d][0] / l, o[d][1] / l);
    return;
  }
  float* dst =
      a.partial +
      ((static_cast<std::uint64_t>(blockIdx.z) * a.shape.heads + head) * a.splits + split) *
          (HD + 2);
#pragma unroll
  for (int d = 0; d < HD / 8; ++d) {
    dst[d * 8 + tq * 2] = o[d][0];
    dst[d * 8 + tq * 2 + 1] = o[d][1];
  }
  if (tq == 0) {
    // Pass 2 works in natural-log units: exp2(m) = exp(m ln 2).
    dst[HD] = begin < end ? m * 0.6931471805599453f : -INFINITY;
    dst[HD + 1] = l;
  }
}

// One block per (head, item), one thread per dim. Static: each file that
// includes this header (decode_attention.cu, the emulator's test) has its
// own, so the two never meet in one link.
static __global__ void combine_kernel(decode_attention_args a) {
  ptx::follow_previous_grid();
  const std::uint32_t head = blockIdx.x, hd = a.shape.head_dim;
  const decode_item item = a.items[blockIdx.y];
  const float* base = a.partial + (static_cast<std::uint64_t>(blockIdx.y) * a.shape.heads + head) *
                                      a.splits * (hd + 2);
  float mx = -INFINITY;
  for (std::uint32_t sp = 0; sp < a.splits; ++sp) mx = fmaxf(mx, base[sp * (hd + 2) + hd]);
  for (std::uint32_t j = threadIdx.x; j < hd; j += blockDim.x) {
    float num = 0.0f, den = 0.0f;
    for (std::uint32_t sp = 0; sp < a.splits; ++sp) {
      const float* p = base + sp * (hd + 2);
      if (p[hd] == -INFINITY) continue;
      const float w = __expf(p[hd] - mx);
      num += p[j] * w;
      den += p[hd + 1] * w;
    }
    a.out[static_cast<std::uint64_t>(item.row) * a.shape.q_width() + head * hd + j] =
        __float2bfloat16(num / den);
  }
}

}  // namespace accellm::device::cuda::decode_kernels

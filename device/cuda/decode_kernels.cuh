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
//
// tma_kernel is the same pass 1 with the copies done by Hopper's TMA
// (decode_tile's tma16x3, tma16x5): lane 0 issues each 16-key page of K and
// V as boxes of 64 head dims (tma.cuh) into a ring of STAGES stages, each
// with a barrier its bytes complete; the warp waits on it and reads the page
// through the 128-byte swizzle. The 32 lanes no longer issue a 16-byte
// cp.async each per 256 bytes, with a paged address each (the copy
// instructions of 32x2 are most of what its warp issues), and the ring
// keeps STAGES - 1 pages in flight.
#pragma once

#include "device/cuda/decode_attention.cuh"
#include "device/cuda/mma_scores.cuh"
#include "device/cuda/ptx.cuh"
#include "device/cuda/tma.cuh"

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

/// The positions [begin, end) of `it` that split `split` of `splits` takes
/// (empty for a split past the item's length).
struct split_range {
  int begin, end;
};
__device__ __forceinline__ split_range split_of(const decode_item& it, std::uint32_t splits,
                                                std::uint32_t split) {
  const int chunk = (it.length + static_cast<int>(splits) - 1) / static_cast<int>(splits);
  const int begin = static_cast<int>(split) * chunk;
  return {begin, min(it.length, begin + chunk)};
}

/// The A fragments of the query group of KV head `kvh` for item `it` (head
/// kvh * group + g in row g for g < group, zero otherwise; rows g + 8 too),
/// and o zeroed. Whether this lane's row g is one of the group's.
template <int HD>
__device__ __forceinline__ bool begin_group(std::uint32_t (&qa)[HD / 16][4], float (&o)[HD / 8][4],
                                            const decode_attention_args& a, const decode_item& it,
                                            std::uint32_t kvh, std::uint32_t group, int g, int tq) {
#pragma unroll
  for (int d = 0; d < HD / 8; ++d) o[d][0] = o[d][1] = o[d][2] = o[d][3] = 0.0f;
  const bool row_valid = static_cast<std::uint32_t>(g) < group;
  const __nv_bfloat16* q = a.q + static_cast<std::uint64_t>(it.row) * a.shape.q_width() +
                           (kvh * group + (row_valid ? g : 0)) * HD;
#pragma unroll
  for (int ks = 0; ks < HD / 16; ++ks) {
    qa[ks][0] = row_valid ? ptx::word(q + ks * 16 + tq * 2) : 0u;
    qa[ks][2] = row_valid ? ptx::word(q + ks * 16 + tq * 2 + 8) : 0u;
    qa[ks][1] = qa[ks][3] = 0u;
  }
  return row_valid;
}

/// One online-softmax step over the KEYS keys from key0 of a score tile
/// (rows g: only s[j][0, 1] matter): keys outside [begin, end) masked, the
/// running max m and sum l updated, o rescaled, P left in s[j][0, 1]. At
/// least one of the keys lies in [begin, end).
template <int HD, int KEYS>
__device__ __forceinline__ void softmax_step(float (&s)[KEYS / 8][4], float (&o)[HD / 8][4],
                                             float& m, float& l, int key0, int begin, int end,
                                             int tq, float scale_log2) {
  float mx = -INFINITY;
#pragma unroll
  for (int j = 0; j < KEYS / 8; ++j)
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      const int key = key0 + j * 8 + tq * 2 + e;
      s[j][e] = key >= begin && key < end ? s[j][e] * scale_log2 : -INFINITY;
      mx = fmaxf(mx, s[j][e]);
    }
  mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
  mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
  const float n = fmaxf(m, mx);  // finite: one key is valid
  const float alpha = exp2f(m - n);
  float sum = 0.0f;
#pragma unroll
  for (int j = 0; j < KEYS / 8; ++j) {
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
}

/// Pass 1's end for this lane's row g (a valid one): with one split the
/// normalised output row, else the split's partial (acc, max in natural-log
/// units, sum) for pass 2. l is the row's quad-summed sum.
template <int HD>
__device__ __forceinline__ void store_split(const decode_attention_args& a, const decode_item& it,
                                            std::uint32_t kvh, std::uint32_t split,
                                            std::uint32_t group, int g, int tq,
                                            const float (&o)[HD / 8][4], float m, float l,
                                            bool any) {
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
    dst[HD] = any ? m * 0.6931471805599453f : -INFINITY;
    dst[HD + 1] = l;
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
  const auto [begin, end] = split_of(it, a.splits, split);
  const std::uint32_t col = kvh * HD;

  std::uint32_t qa[HD / 16][4];
  float o[HD / 8][4];
  const bool row_valid = begin_group<HD>(qa, o, a, it, kvh, group, g, tq);
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
    softmax_step<HD, keys>(s, o, m, l, key0, begin, end, tq, scale_log2);  // key0 < end
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
  if (row_valid) store_split<HD>(a, it, kvh, split, group, g, tq, o, m, l, begin < end);
}

// ---- tma_kernel -------------------------------------------------------------

namespace tma_decode {

constexpr int page = 16;                  // keys per stage: one block of the pool
constexpr int column_bytes = page * 128;  // one 64-dim column block of a page, swizzled
constexpr int align = 1024;               // the 128-byte swizzle's alignment

template <int HD>
constexpr int stage_bytes = 2 * HD / 64 * column_bytes;  // K then V

/// Dynamic shared memory of tma_kernel<HD, STAGES>: room to align the ring,
/// the ring, a barrier per stage.
template <int HD, int STAGES>
constexpr int smem_bytes = align + STAGES* stage_bytes<HD> + 8 * STAGES;

/// What tma_kernel takes: the pool as a 2-D tensor of [rows x kv_width]
/// bf16 (boxes of 64 columns x 16 rows, 128-byte swizzle) and pass 1's
/// arguments (a.kv is the same pool).
struct args {
  tma::tensor_map kv_map;
  decode_attention_args a;
};

/// Byte offset of 16-byte chunk `chunk` (dims 8 chunk ..) of row `r` in a
/// page laid out by the TMA: 64-dim column blocks of 16 rows x 128 bytes,
/// chunk c of row r at chunk c ^ (r % 8) of its row.
__device__ __forceinline__ int swizzled(int r, int chunk) {
  return chunk / 8 * column_bytes + r * 128 + ((chunk % 8) ^ (r % 8)) * 16;
}

}  // namespace tma_decode

template <int HD, int STAGES>
__global__ void __launch_bounds__(32)
    tma_kernel(const __grid_constant__ tma_decode::args p, float scale_log2) {
#if ACCELLM_TMA
  using namespace tma_decode;
  static_assert(HD % 64 == 0 && STAGES >= 2, "64-dim column blocks, one page in flight at least");
  ptx::follow_previous_grid();
  const decode_attention_args& a = p.a;
  unsigned char* const raw = ptx::dynamic_smem<unsigned char>();
  unsigned char* const ring = raw + (align - __cvta_generic_to_shared(raw) % align) % align;
  auto* full = reinterpret_cast<std::uint64_t*>(ring + STAGES * stage_bytes<HD>);
  const decode_item it = a.items[blockIdx.z];
  const std::uint32_t kvh = blockIdx.x, split = blockIdx.y;
  const std::uint32_t group = a.shape.heads / a.shape.kv_heads;
  const int lane = threadIdx.x, g = lane / 4, tq = lane % 4, lm = lane / 8, lr = lane % 8;
  const auto [begin, end] = split_of(it, a.splits, split);
  // Pages [first, last): a split's keys need not start on a page.
  const int first = begin / page, last = begin < end ? (end - 1) / page + 1 : first;
  const std::int32_t* table = a.kv.tables + static_cast<std::uint64_t>(it.slot) * a.kv.table_stride;

  if (lane == 0) {
    for (int st = 0; st < STAGES; ++st) tma::init(full + st, 1);
    tma::fence_init();
  }
  __syncwarp();
  // Page i into stage i % STAGES (lane 0): K's and V's column blocks.
  auto issue = [&](int i) {
    unsigned char* k = ring + (i % STAGES) * stage_bytes<HD>;
    std::uint64_t* bar = full + i % STAGES;
    const auto block = static_cast<std::uint64_t>(table[first + i]);
    const auto k_row = static_cast<int>(a.kv.page_row(block, a.layer, 0));
    const auto v_row = static_cast<int>(a.kv.page_row(block, a.layer, 1));
    tma::arrive_expect_tx(bar, stage_bytes<HD>);
#pragma unroll
    for (int c = 0; c < HD / 64; ++c) {
      const int col = static_cast<int>(kvh) * HD + c * 64;
      tma::load_2d(k + c * column_bytes, &p.kv_map, col, k_row, bar);
      tma::load_2d(k + (HD / 64 + c) * column_bytes, &p.kv_map, col, v_row, bar);
    }
  };
  const int pages = last - first;
  if (lane == 0)
    for (int i = 0; i < STAGES - 1 && i < pages; ++i) issue(i);

  std::uint32_t qa[HD / 16][4];
  float o[HD / 8][4];
  const bool row_valid = begin_group<HD>(qa, o, a, it, kvh, group, g, tq);
  float m = -INFINITY, l = 0.0f;

  for (int i = 0; i < pages; ++i) {
    // The stage page i - 1 used is free (every lane passed the __syncwarp
    // after reading it): page i + STAGES - 1 goes there.
    if (lane == 0 && i + STAGES - 1 < pages) issue(i + STAGES - 1);
    tma::wait(full + i % STAGES, static_cast<std::uint32_t>(i / STAGES) & 1u);
    const unsigned char* K = ring + (i % STAGES) * stage_bytes<HD>;
    const unsigned char* V = K + HD / 64 * column_bytes;
    const int key0 = (first + i) * page;
    // s = q K^T for the page's 16 keys: lane group lm names key rows 8 (lm /
    // 2) + lr, dims + 8 (lm % 2) of each k16 step (mma::scores' fragments).
    float s[2][4];
    s[0][0] = s[0][1] = s[0][2] = s[0][3] = s[1][0] = s[1][1] = s[1][2] = s[1][3] = 0.0f;
#pragma unroll
    for (int ks = 0; ks < HD / 16; ++ks) {
      std::uint32_t b[4];
      ptx::ldmatrix_x4(b, reinterpret_cast<const __nv_bfloat16*>(
                              K + swizzled(8 * (lm / 2) + lr, 2 * ks + lm % 2)));
      ptx::mma_bf16(s[0], qa[ks], b[0], b[1]);
      ptx::mma_bf16(s[1], qa[ks], b[2], b[3]);
    }
    // Every page holds a key of [begin, end).
    softmax_step<HD, page>(s, o, m, l, key0, begin, end, tq, scale_log2);
    // o += P V: lane group lm names key rows 8 (lm % 2) + lr of dim tile d
    // + lm / 2 (mma::add_pv's fragments).
    const std::uint32_t pa[4] = {ptx::pack(s[0][0], s[0][1]), 0u, ptx::pack(s[1][0], s[1][1]), 0u};
#pragma unroll
    for (int d = 0; d < HD / 8; d += 2) {
      std::uint32_t b[4];
      ptx::ldmatrix_x4<true>(
          b, reinterpret_cast<const __nv_bfloat16*>(V + swizzled(8 * (lm % 2) + lr, d + lm / 2)));
      ptx::mma_bf16(o[d], pa, b[0], b[1]);
      ptx::mma_bf16(o[d + 1], pa, b[2], b[3]);
    }
    __syncwarp();  // every lane is done with the stage before lane 0 refills it
  }
  l += __shfl_xor_sync(0xffffffffu, l, 1);
  l += __shfl_xor_sync(0xffffffffu, l, 2);
  if (row_valid) store_split<HD>(a, it, kvh, split, group, g, tq, o, m, l, begin < end);
#else
  (void)p;
  (void)scale_log2;
#endif
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

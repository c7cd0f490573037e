// skinny_kernels: the skinny GEMM's kernel (skinny_gemm.cuh), device code
// only: skinny_gemm.cu launches it and the host emulator
// (tests/device/cuda/emu/) runs the same source on the CPU. Design, for y = x w^T with few x rows:
//
// - The product is computed transposed, y^T = w x^T, on mma.sync m16n8k16
//   (bf16 in, fp32 accumulate): w is the A operand (M = 16 outputs; a w row
//   is contiguous along k, i.e. row-major A) and x the B operand (N = 8 x
//   rows; an x row is contiguous along k, i.e. "col" B). x rows are padded to
//   8 * NT (NT = 1, 2, 4, 8, 16: rows <= 8, 16, 32, 64, 128), so one row costs
//   one n8 tile, not a padded m16 tile.
// - A block is 4 warps and owns 128 outputs (32 per warp: two m16 tiles) and
//   one contiguous k range. Its weights and x go global -> shared in 64-wide k
//   tiles through a cp.async pipeline of `stages` (5 for rows <= 16, 4 up to
//   64, 3 up to 128) stages, sized so that two blocks fit on an SM
//   (<= 112 KiB each): 64-96 KiB of weights in flight per SM. Shared rows are
//   padded to 72 elements (144 bytes: consecutive rows start 4 banks apart),
//   so cp.async writes and ldmatrix reads are free of bank conflicts.
//   Fragments come from ldmatrix.x4 (A: lane l names row l % 16, column
//   8 (l / 16) of a 16 x 16 tile; B: two n8 tiles per x4, as in
//   prefill_attention.cu).
// - Split-K across a thread-block cluster: the `split` (1, 2, 4 or 8) blocks
//   of a cluster share one 128-output tile and take consecutive k ranges, so
//   even out = 4096 makes 32 x 8 = 256 blocks (132 SMs x 2). Each block writes
//   its fp32 partial [rows x 128] into its own shared memory (the pipeline's
//   buffers, drained), the cluster synchronises, and block b of the cluster
//   finishes the b-th slice of the tile's elements: it reads the partial of
//   every block through distributed shared memory, sums them in rank order
//   0, 1, ..., split - 1, adds beta * y, and stores. The order of every sum is
//   fixed by the shape, so the result is bitwise reproducible; no atomics.
//   A second cluster barrier keeps every block's shared memory alive until
//   all remote reads are done.
// - x (at most 128 x in bf16) is read from L2 by every 128-output tile:
//   rows / 128 bytes per weight byte, half the weight traffic at 64 rows.
// - Edges: weight rows past `out` and k chunks past `in` are zero-filled by
//   cp.async (src-size 0), x rows past `rows` too, so `out` need not be a
//   multiple of 128 nor `in` of 64 (only of 8: 16-byte chunks).
#pragma once

#include "device/cuda/gemm.hpp"
#include "device/cuda/ptx.cuh"
#include "device/cuda/skinny_gemm.cuh"
#include "device/cuda/tma.cuh"
#include "device/cuda/wgmma.cuh"

#include <cooperative_groups.h>
#include <cuda_bf16.h>

#include <algorithm>
#include <cstdint>

namespace accellm::device::cuda::skinny_kernels {

namespace cg = cooperative_groups;

constexpr int warps = 4;
constexpr int threads = warps * 32;
constexpr std::uint32_t block_n = skinny_tile_out;  // outputs per block: 32 per warp
constexpr std::uint32_t block_k = skinny_tile_k;    // k per pipeline stage
constexpr int stride = block_k + 8;                 // shared row pitch in elements (144 bytes)
constexpr int part_stride = block_n + 4;  // partial row pitch in floats: conflict-free stores
constexpr std::uint32_t max_split = skinny_max_split;  // portable cluster size
constexpr int smem_budget = 112 * 1024;  // two blocks per SM (228 KiB, 1 KiB reserved each)

// A kernel's shared memory: pipeline stages of [weight tile (w_elems_) | x
// tile (rows_pad_ rows, pitch `stride`)], as many as the budget allows (at
// most 6), which the fp32 partial [rows_pad_ x 128] reuses at the end.
template <int rows_pad_, int w_elems_>
struct budget {
  static constexpr int rows_pad = rows_pad_;
  static constexpr int w_elems = w_elems_;
  static constexpr int stage_elems = w_elems + rows_pad * stride;
  static constexpr int stage_bytes = stage_elems * 2;
  static constexpr int stages = std::min(6, smem_budget / stage_bytes);
  static constexpr int pipe_bytes = stages * stage_bytes;
  static constexpr int part_bytes = rows_pad * part_stride * 4;
  static constexpr int smem_bytes = std::max(pipe_bytes, part_bytes);
  static_assert(stages >= 3, "too few pipeline stages to hide latency");
  static_assert(smem_bytes <= smem_budget, "two blocks must fit on an SM");
};

// skinny_kernel: x rows padded to 8 NT, the weight tile row-major at pitch
// `stride` like x's.
template <int NT>
using config = budget<8 * NT, static_cast<int>(block_n) * stride>;

struct args {
  const __nv_bfloat16* x;
  const __nv_bfloat16* w;
  void* y;
  std::uint32_t rows, in, out;
  std::uint32_t k_tiles;  // ceil(in / block_k)
  float beta;
  gemm_out type;
};

// Starts copying the k tile from k0 of x (rows_pad rows, row-major at pitch
// `stride`, rows past a.rows zero) into xs; not committed.
template <int rows_pad>
__device__ void load_x(const args& a, __nv_bfloat16* xs, std::uint32_t k0) {
  constexpr int vecs = block_k / 8;  // 16-byte chunks per row
  constexpr int x_chunks = rows_pad * vecs;
#pragma unroll
  for (int i = 0; i < (x_chunks + threads - 1) / threads; ++i) {
    const int e = static_cast<int>(threadIdx.x) + i * threads, r = e / vecs, c = e % vecs;
    if (x_chunks % threads != 0 && e >= x_chunks) break;
    const std::uint32_t k = k0 + 8 * c;
    const bool valid = static_cast<std::uint32_t>(r) < a.rows && k < a.in;
    ptx::cp16(xs + r * stride + 8 * c, valid ? a.x + std::uint64_t(r) * a.in + k : a.x, valid);
  }
}

// Starts copying k tile `kt` of the block's weights (rows n0 .. n0 + 127)
// into stage `st`; not committed. place(e) says where copy e (of 128 rows x
// 8 16-byte chunks) reads and writes: its row, its chunk, its element offset.
template <class Place>
__device__ __forceinline__ void copy_weights(const args& a, __nv_bfloat16* st, std::uint32_t n0,
                                             std::uint32_t kt, Place&& place) {
  constexpr int vecs = block_k / 8;  // 16-byte chunks per row
  constexpr int w_chunks = block_n * vecs;
  static_assert(w_chunks % threads == 0, "every thread copies as many weight chunks");
  const std::uint32_t k0 = kt * block_k;
#pragma unroll
  for (int i = 0; i < w_chunks / threads; ++i) {
    const wg::core_slot p = place(static_cast<int>(threadIdx.x) + i * threads);
    const std::uint32_t n = n0 + static_cast<std::uint32_t>(p.row), k = k0 + 8 * p.chunk;
    const bool valid = n < a.out && k < a.in;
    ptx::cp16(st + p.at, valid ? a.w + std::uint64_t{n} * a.in + k : a.w, valid);
  }
}

// The weights row-major at pitch `stride` (x follows them there).
template <int NT>
__device__ void load_weights(const args& a, __nv_bfloat16* st, std::uint32_t n0, std::uint32_t kt) {
  constexpr int vecs = block_k / 8;
  copy_weights(a, st, n0, kt, [](int e) {
    const int r = e / vecs, c = e % vecs;
    return wg::core_slot{r, c, r * stride + 8 * c};
  });
}

// One stage's products: 4 k-steps of 16; warp w owns block outputs
// [32 w, 32 w + 32) as two m16 tiles, and every x row.
template <int NT>
__device__ inline void compute_stage(const __nv_bfloat16* st, float (&acc)[2][NT][4]) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const __nv_bfloat16* ws = st + (warp * 32 + lane % 16) * stride + 8 * (lane / 16);
  const __nv_bfloat16* xs = st + config<NT>::w_elems;
#pragma unroll
  for (int ks = 0; ks < static_cast<int>(block_k) / 16; ++ks) {
    std::uint32_t a0[4], a1[4];
    ptx::ldmatrix_x4(a0, ws + ks * 16);
    ptx::ldmatrix_x4(a1, ws + 16 * stride + ks * 16);
    if constexpr (NT == 1) {
      // x2: lanes 0-15 name rows lane % 8, columns + 8 ((lane / 8) % 2);
      // lanes 16-31 repeat them (their addresses are ignored).
      std::uint32_t b[2];
      ptx::ldmatrix_x2(b, xs + (lane % 8) * stride + 8 * ((lane / 8) % 2) + ks * 16);
      ptx::mma_bf16(acc[0][0], a0, b[0], b[1]);
      ptx::mma_bf16(acc[1][0], a1, b[0], b[1]);
    } else {
      // x4: lane group m = lane / 8 names rows of n tile j + m / 2, columns
      // + 8 (m % 2): the B fragments of n tiles j and j + 1.
      const __nv_bfloat16* xrow = xs + (8 * (lane / 16) + lane % 8) * stride + 8 * ((lane / 8) % 2);
#pragma unroll
      for (int j = 0; j < NT; j += 2) {
        std::uint32_t b[4];
        ptx::ldmatrix_x4(b, xrow + 8 * j * stride + ks * 16);
        ptx::mma_bf16(acc[0][j], a0, b[0], b[1]);
        ptx::mma_bf16(acc[0][j + 1], a0, b[2], b[3]);
        ptx::mma_bf16(acc[1][j], a1, b[0], b[1]);
        ptx::mma_bf16(acc[1][j + 1], a1, b[2], b[3]);
      }
    }
  }
}

// y[at] = s + beta * y[at] (y is never read with beta 0: it may hold NaN).
__device__ inline void store_y(const args& a, std::uint64_t at, float s) {
  if (a.type == gemm_out::fp32) {
    float* y = static_cast<float*>(a.y) + at;
    *y = a.beta == 0.0f ? s : s + a.beta * *y;
  } else {
    __nv_bfloat16* y = static_cast<__nv_bfloat16*>(a.y) + at;
    *y = __float2bfloat16(a.beta == 0.0f ? s : s + a.beta * __bfloat162float(*y));
  }
}

// Sums the cluster's partials of element `idx` in rank order and stores
// y[r][n] = sum + beta * y[r][n].
__device__ inline void finish(const args& a, cg::cluster_group& cluster, float* part,
                              std::uint32_t split, int idx, std::uint64_t at) {
  float v[max_split];
#pragma unroll
  for (std::uint32_t q = 0; q < max_split; ++q)
    v[q] = q < split ? cluster.map_shared_rank(part, q)[idx] : 0.0f;
  float s = v[0];
#pragma unroll
  for (std::uint32_t q = 1; q < max_split; ++q)
    if (q < split) s += v[q];
  store_y(a, at, s);
}

// The block's place: its cluster of `split` blocks sharing one 128-output
// tile (from output n0), its rank there and so its k tiles [kt0, kt0 + nk).
struct cluster_tile {
  cg::cluster_group cluster;
  std::uint32_t split, rank, n0, kt0;
  int nk;
};

__device__ inline cluster_tile tile_of(const args& a) {
  cluster_tile c{cg::this_cluster(), 0, 0, 0, 0, 0};
  c.split = c.cluster.num_blocks();
  c.rank = c.cluster.block_rank();
  c.n0 = (blockIdx.x / c.split) * block_n;
  c.kt0 = a.k_tiles * c.rank / c.split;
  c.nk = static_cast<int>(a.k_tiles * (c.rank + 1) / c.split - c.kt0);
  return c;
}

// The k-tile pipeline both cp.async kernels run over `stages` buffers of
// `stage_elems`: tiles 0 .. stages - 2 in flight from the start, one
// cp.async group per tile (empty past the end, so that wait_group counts stay
// uniform); at tile i, once everyone's copies of it landed, the buffer tile
// i - 1 used receives tile i + stages - 1 while compute(buffer) consumes tile
// i. weights(buffer, i) and x(buffer, i) start tile i's copies. The
// weights read nothing an earlier kernel wrote, so the first tiles' weights
// are in flight before the wait for the kernel this one was launched behind
// (launch.cuh), and group 0 holds them all. Copies the tensor cores read
// (wgmma) need each thread to fence the async proxy before the barrier.
// Returns with the pipeline drained and every warp done reading it.
enum class read_by : bool { cuda_cores, tensor_cores };

template <int stages, int stage_elems, read_by reader, class Weights, class X, class Compute>
__device__ __forceinline__ void pipeline(__nv_bfloat16* pipe, int nk, Weights&& weights, X&& x,
                                         Compute&& compute) {
#pragma unroll
  for (int i = 0; i < stages - 1; ++i)
    if (i < nk) weights(pipe + i * stage_elems, i);
  ptx::follow_previous_grid();
#pragma unroll
  for (int i = 0; i < stages - 1; ++i) {
    if (i < nk) x(pipe + i * stage_elems, i);
    ptx::commit();
  }
  int read = 0, write = stages - 1;
  for (int i = 0; i < nk; ++i) {
    ptx::wait_group<stages - 2>();  // tile i landed (ours)
    if constexpr (reader == read_by::tensor_cores) wg::proxy_fence();
    __syncthreads();  // everyone's copies of tile i landed; stage `write` is free
    if (i + stages - 1 < nk) {
      weights(pipe + write * stage_elems, i + stages - 1);
      x(pipe + write * stage_elems, i + stages - 1);
    }
    ptx::commit();
    compute(static_cast<const __nv_bfloat16*>(pipe + read * stage_elems));
    read = read + 1 == stages ? 0 : read + 1;
    write = write + 1 == stages ? 0 : write + 1;
  }
  ptx::wait_group<0>();
  __syncthreads();  // the pipeline is drained and every warp is done reading it
}

// With every block's partial [rows x 128] in `part`: block `rank` of the
// cluster sums slice `rank` of the tile's elements over all partials
// (finish) and stores it.
__device__ inline void reduce(const args& a, cg::cluster_group& cluster, float* part,
                              std::uint32_t split, std::uint32_t rank, std::uint32_t n0) {
  cluster.sync();  // every partial of the cluster is written and visible
  const std::uint32_t total = a.rows * block_n;
  const std::uint32_t lo = total * rank / split, hi = total * (rank + 1) / split;
  for (std::uint32_t e = lo + threadIdx.x; e < hi; e += threads) {
    const std::uint32_t r = e / block_n, o = e % block_n;
    if (n0 + o < a.out)
      finish(a, cluster, part, split, static_cast<int>(r * part_stride + o),
             std::uint64_t{r} * a.out + n0 + o);
  }
  cluster.sync();  // no block leaves while another still reads its partial
}

template <int NT>
__global__ void __launch_bounds__(threads, 2) skinny_kernel(args a) {
  using C = config<NT>;
  unsigned char* const smem = ptx::dynamic_smem<unsigned char>();
  auto* pipe = reinterpret_cast<__nv_bfloat16*>(smem);
  cluster_tile tile = tile_of(a);
  const std::uint32_t split = tile.split, rank = tile.rank, n0 = tile.n0, kt0 = tile.kt0;
  const int nk = tile.nk;

  float acc[2][NT][4] = {};

  pipeline<C::stages, C::stage_elems, read_by::cuda_cores>(
      pipe, nk, [&](__nv_bfloat16* st, int i) { load_weights<NT>(a, st, n0, kt0 + i); },
      [&](__nv_bfloat16* st, int i) {
        load_x<C::rows_pad>(a, st + C::w_elems, (kt0 + static_cast<std::uint32_t>(i)) * block_k);
      },
      [&](const __nv_bfloat16* st) { compute_stage<NT>(st, acc); });

  // The partial, [rows_pad x 128] fp32 over the pipeline's buffers. C
  // fragment: c0, c1 = (output g, rows 2t, 2t + 1), c2, c3 = output g + 8.
  auto* part = reinterpret_cast<float*>(smem);
  {
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
#pragma unroll
    for (int m = 0; m < 2; ++m)
#pragma unroll
      for (int j = 0; j < NT; ++j) {
        const int o = warp * 32 + m * 16 + g, r = j * 8 + 2 * t;
        part[r * part_stride + o] = acc[m][j][0];
        part[(r + 1) * part_stride + o] = acc[m][j][1];
        part[r * part_stride + o + 8] = acc[m][j][2];
        part[(r + 1) * part_stride + o + 8] = acc[m][j][3];
      }
  }
  reduce(a, tile.cluster, part, split, rank, n0);
}

// ---- skinny_wgmma ------------------------------------------------------------
//
// The same product, tiles, split-K cluster and reduction, on Hopper's
// wgmma (wgmma.cuh) instead of mma.sync: y = x w^T with x's rows as wgmma's
// M (padded to 64 per row block; RB = 1 or 2 blocks for up to 64 or 128
// rows) and the block's 128 outputs as N. Per 16-wide k-step a warpgroup
// issues one m64n128k16 product per row block: the weight tile is the K-major
// B operand, read by the tensor cores straight from shared memory (8 x 8 core
// matrices, as the prefill kernels' K tiles: element (output r, k c) at
// ((r / 8) * 8 + c / 8) * 64 + (r % 8) * 8 + c % 8), and x's A fragment comes
// from the padded row-major x tile with four 32-bit loads (conflict-free at
// the 144-byte pitch). So no warp reads a weight fragment through its
// registers: skinny_kernel's ldmatrix traffic grows with the rows, which is
// where its time went on the H100 (docs/cuda-kernels.md). A stage's products are
// waited for before the barrier that lets the stage be refilled; they are
// short next to the copies they wait on.

template <int RB>
__device__ inline void zero(float (&acc)[RB][block_n / 8][4]) {
#pragma unroll
  for (int rb = 0; rb < RB; ++rb)
#pragma unroll
    for (int j = 0; j < static_cast<int>(block_n) / 8; ++j)
      acc[rb][j][0] = acc[rb][j][1] = acc[rb][j][2] = acc[rb][j][3] = 0.0f;
}

#if ACCELLM_WGMMA
// One stage's products on wgmma: issue(ks, rb) issues k-step ks of row
// block rb (4 x RB products in all), with the accumulators pinned around
// them; all retired on return.
template <int RB, class Issue>
__device__ __forceinline__ void stage_products(float (&acc)[RB][block_n / 8][4], Issue&& issue) {
#pragma unroll
  for (int rb = 0; rb < RB; ++rb) wg::pin(acc[rb]);
  wg::fence();
#pragma unroll
  for (int ks = 0; ks < static_cast<int>(block_k) / 16; ++ks)
#pragma unroll
    for (int rb = 0; rb < RB; ++rb) issue(ks, rb);
  wg::commit();
  wg::wait<0>();
#pragma unroll
  for (int rb = 0; rb < RB; ++rb) wg::pin(acc[rb]);
}
#endif

// x rows padded to 64 RB, the weight tile in core matrices (unpadded).
template <int RB>
using wgmma_config = budget<64 * RB, static_cast<int>(block_n* block_k)>;

// The weights as core matrices (x follows them there, row-major at pitch
// `stride`).
template <int RB>
__device__ void load_weights_wgmma(const args& a, __nv_bfloat16* st, std::uint32_t n0,
                                   std::uint32_t kt) {
  static_assert(wgmma_config<RB>::stage_bytes % 128 == 0,
                "every stage's weight tile 128-byte aligned");
  copy_weights(a, st, n0, kt, [](int e) { return wg::slot_of(e, block_k / 8); });
}

// The partial, [64 RB x 128] fp32 at `part` (over the pipeline's drained
// buffers), from wgmma's accumulators: acc[rb][j][0, 1] = (row 64 rb +
// 16 warp + g, outputs 8 j + 2t, + 1), [2, 3] = row + 8.
template <int RB>
__device__ inline void store_partial(float* part, const float (&acc)[RB][block_n / 8][4]) {
  const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
  const int g = lane / 4, t = lane % 4;
#pragma unroll
  for (int rb = 0; rb < RB; ++rb)
#pragma unroll
    for (int j = 0; j < static_cast<int>(block_n) / 8; ++j) {
      const int r = rb * 64 + warp * 16 + g, o = j * 8 + 2 * t;
      part[r * part_stride + o] = acc[rb][j][0];
      part[r * part_stride + o + 1] = acc[rb][j][1];
      part[(r + 8) * part_stride + o] = acc[rb][j][2];
      part[(r + 8) * part_stride + o + 1] = acc[rb][j][3];
    }
}

template <int RB>
__global__ void __launch_bounds__(threads, 2) skinny_wgmma_kernel(args a) {
#if ACCELLM_WGMMA
  using C = wgmma_config<RB>;
  unsigned char* const smem = ptx::dynamic_smem<unsigned char>();
  auto* pipe = reinterpret_cast<__nv_bfloat16*>(smem);
  cluster_tile tile = tile_of(a);
  const std::uint32_t split = tile.split, rank = tile.rank, n0 = tile.n0, kt0 = tile.kt0;
  const int nk = tile.nk;
  const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
  const int g = lane / 4, t = lane % 4;

  float acc[RB][block_n / 8][4];
  zero(acc);

  pipeline<C::stages, C::stage_elems, read_by::tensor_cores>(
      pipe, nk, [&](__nv_bfloat16* st, int i) { load_weights_wgmma<RB>(a, st, n0, kt0 + i); },
      [&](__nv_bfloat16* st, int i) {
        load_x<C::rows_pad>(a, st + C::w_elems, (kt0 + static_cast<std::uint32_t>(i)) * block_k);
      },
      [&](const __nv_bfloat16* ws) {
        const __nv_bfloat16* xs = ws + C::w_elems;
        // x's A fragments for the 4 k-steps: rows 16 warp + g (+ 8) of each row
        // block, k 2t, 2t + 1 (+ 8). Loaded before the products, which read
        // them while they run.
        std::uint32_t xa[block_k / 16][RB][4];
#pragma unroll
        for (int ks = 0; ks < static_cast<int>(block_k) / 16; ++ks)
#pragma unroll
          for (int rb = 0; rb < RB; ++rb) {
            const __nv_bfloat16* r0 = xs + (rb * 64 + warp * 16 + g) * stride + ks * 16 + 2 * t;
            xa[ks][rb][0] = ptx::word(r0);
            xa[ks][rb][1] = ptx::word(r0 + 8 * stride);
            xa[ks][rb][2] = ptx::word(r0 + 8);
            xa[ks][rb][3] = ptx::word(r0 + 8 * stride + 8);
          }
        stage_products(acc, [&](int ks, int rb) {
          wg::mma<block_n>(acc[rb], xa[ks][rb], wg::descriptor(ws + ks * 16 * 8, 128, block_k * 16),
                           1, false);
        });
      });

  auto* part = reinterpret_cast<float*>(smem);
  store_partial<RB>(part, acc);
  reduce(a, tile.cluster, part, split, rank, n0);
#else
  (void)a;
#endif
}

// ---- skinny_tma ---------------------------------------------------------------
//
// skinny_wgmma's product, tiles, split-K cluster and reduction with the
// copies done by Hopper's TMA (tma.cuh) instead of cp.async: per k tile one
// thread issues two tensor copies, the block's 128 x 64 weight box and x's
// (64 RB) x 64 box, into a stage as the 128-byte swizzle lays them out, and
// both wgmma operands are read from there through swizzled descriptors
// (x's A fragments no longer pass through registers). The 128 threads no
// longer spend instructions on addresses and 16-byte copies (16 per thread
// per k tile in skinny_wgmma): what is left to them is waiting and issuing
// the products, the usual shape of a weight-streaming Hopper kernel. Rows
// past `rows`, outputs past `out` and k past `in` arrive as zeros (TMA's
// out-of-bounds fill), so the edges need no code. Each stage has a barrier
// that its copies complete; tile i waits for phase i / stages of its stage's
// barrier, and a block barrier after that wait says every thread is done
// with the stage that tile i + stages - 1 then refills.

template <int RB>
struct tma_config {
  static constexpr int rows_pad = 64 * RB;
  static constexpr int w_bytes = static_cast<int>(block_n * block_k) * 2;   // 16 KiB
  static constexpr int x_bytes = rows_pad * static_cast<int>(block_k) * 2;  // 8 KiB per row block
  static constexpr int stage_bytes = w_bytes + x_bytes;  // 1024-byte multiple: aligned stages
  static constexpr int wgs = 1;       // warpgroups, each with its 128 outputs of a tile
  static constexpr int align = 1024;  // the 128-byte swizzle's alignment; the start is rounded up
  static constexpr int stages = std::min(6, (smem_budget - align - 64) / stage_bytes);
  static constexpr int part_bytes = rows_pad * part_stride * 4;
  static constexpr int barriers_at = std::max(stages * stage_bytes, part_bytes);
  static constexpr int smem_bytes = align + barriers_at + 8 * stages;
  static_assert(stage_bytes % align == 0, "every stage 1024-byte aligned");
  static_assert(stages >= 3, "too few pipeline stages to hide latency");
  static_assert(smem_bytes <= smem_budget, "two blocks must fit on an SM");
};

/// What skinny_tma_kernel takes: the tensor maps of w ([out x in], box
/// 64 x 128) and x ([rows x in], box 64 x 64 RB), both bf16 with the
/// 128-byte swizzle, and the product's arguments.
struct tma_args {
  tma::tensor_map w_map;
  tma::tensor_map x_map;
  args a;
};

/// Where a tile's weight box starts: its k and its first output row.
struct w_box {
  int k, row;
};

#if ACCELLM_WGMMA
/// The TMA k-tile pipeline of skinny_tma and skinny_stream: `n` tiles
/// through C::stages stages at `smem` (barriers at `full`), tile i being
/// `w_at(i)`'s (128 C::wgs) x 64 weight box (its k and output row) and x's
/// box at the same k; warpgroup w multiplies rows 128 w .. of the box. One thread issues, the
/// weights of the first tiles before the wait for the kernel launched before (they read nothing it
/// writes), x after; each tile's products go into acc, then done(i) runs (every thread, the tile's
/// products retired).
template <class C, int RB, class At, class Done>
__device__ __forceinline__ void tma_tiles(const tma::tensor_map& w_map,
                                          const tma::tensor_map& x_map, unsigned char* smem,
                                          std::uint64_t* full, int n,
                                          float (&acc)[RB][block_n / 8][4], At&& w_at,
                                          Done&& done) {
  const bool issuer = threadIdx.x == 0;
  if (issuer) {
    for (int st = 0; st < C::stages; ++st) tma::init(full + st, 1);
    tma::fence_init();
  }
  __syncthreads();  // the barriers are initialised before anyone waits on them
  // Tile i into stage i % stages: the weights, announcing the whole stage,
  // then x.
  auto stage_of = [&](int i) { return smem + (i % C::stages) * C::stage_bytes; };
  auto issue_weights = [&](int i) {
    std::uint64_t* bar = full + i % C::stages;
    tma::arrive_expect_tx(bar, C::stage_bytes);
    const w_box at = w_at(i);
    tma::load_2d(stage_of(i), &w_map, at.k, at.row, bar);
  };
  auto issue_x = [&](int i) {
    tma::load_2d(stage_of(i) + C::w_bytes, &x_map, w_at(i).k, 0, full + i % C::stages);
  };
  if (issuer)
    for (int i = 0; i < C::stages - 1 && i < n; ++i) issue_weights(i);
  ptx::follow_previous_grid();
  if (issuer)
    for (int i = 0; i < C::stages - 1 && i < n; ++i) issue_x(i);
  for (int i = 0; i < n; ++i) {
    tma::wait(full + i % C::stages, static_cast<std::uint32_t>(i / C::stages) & 1u);
    __syncthreads();  // every thread is done with tile i - 1's stage: refill it
    if (issuer && i + C::stages - 1 < n) {
      issue_weights(i + C::stages - 1);
      issue_x(i + C::stages - 1);
    }
    const unsigned char* st = stage_of(i);
    const unsigned char* ws = st;
    if constexpr (C::wgs > 1) ws += threadIdx.x / 128 * (block_n * block_k * 2);
    stage_products(acc, [&](int ks, int rb) {
      wg::mma_ss_n128(acc[rb], wg::descriptor_sw128(st + C::w_bytes + rb * 64 * 128 + ks * 32),
                      wg::descriptor_sw128(ws + ks * 32), 1);
    });
    done(i);
  }
}
#endif

template <int RB>
__global__ void __launch_bounds__(threads, 2)
    skinny_tma_kernel(const __grid_constant__ tma_args p) {
#if ACCELLM_WGMMA
  using C = tma_config<RB>;
  const args& a = p.a;
  unsigned char* const raw = ptx::dynamic_smem<unsigned char>();
  unsigned char* const smem =
      raw + (C::align - __cvta_generic_to_shared(raw) % C::align) % C::align;
  auto* full = reinterpret_cast<std::uint64_t*>(smem + C::barriers_at);
  cluster_tile tile = tile_of(a);
  const std::uint32_t split = tile.split, rank = tile.rank, n0 = tile.n0, kt0 = tile.kt0;
  float acc[RB][block_n / 8][4];
  zero(acc);
  tma_tiles<C>(
      p.w_map, p.x_map, smem, full, tile.nk, acc,
      [&](int i) {
        return w_box{static_cast<int>((kt0 + static_cast<std::uint32_t>(i)) * block_k),
                     static_cast<int>(n0)};
      },
      [](int) {});
  __syncthreads();  // every product retired: the partial may overwrite the stages
  auto* part = reinterpret_cast<float*>(smem);
  store_partial<RB>(part, acc);
  reduce(a, tile.cluster, part, split, rank, n0);
#else
  (void)p;
#endif
}

// ---- skinny_stream ------------------------------------------------------------
//
// skinny_tma's stages and products over a stream-K partition of the work
// (CUTLASS's stream-K GEMM is the model). The cluster split cuts every
// 128-output tile into the same number of k ranges, so a shape makes
// whatever number of blocks its tiles times the split give: 0.3 to 1.7
// waves on an H100 for Llama's decode products, and the SMs that hold a
// block more than the others set the time. Here the product is
// tiles x k_tiles units (one 64-wide k tile of one 128-output tile), laid
// out tile after tile, and block c of `blocks` takes units
// [U c / blocks, U (c + 1) / blocks): every block streams the same weight
// bytes within one k tile, whatever the shape. The launcher runs one block
// an SM (stream_config: 8 stages of 16 KiB of weights at RB = 1, so about
// 112 KiB in flight an SM, as two skinny_tma blocks hold).
//
// W = 2 makes a tile 256 outputs, one warpgroup on each 128, so that every
// x box read from L2 serves twice the weights: each unit's x box is half
// its weights' bytes at 64 rows and as many at 128, and all of them come
// from L2, whose bandwidth the weights' stream needs too (skinny_tma, with
// 128-output tiles, slows from 2.2-2.4 TB/s at 1-16 rows to 1.5-1.9 at 128
// on the H100). At W = 2 the stages hold 32 KiB of weights (5 of them at
// RB = 1, 4 at RB = 2) and a partial is twice as large.
//
// A block's range crosses tile boundaries. A tile it covers whole it stores
// itself. A tile it covers in part is one of the tile's segments: the block
// writes its fp32 partial to a workspace in its accumulators' own layout
// (thread t's values at t, coalesced 16-byte stores), fences, and counts
// itself on the tile's counter; the block that counts last (the others go
// on at once: no block ever waits for another, so nothing needs the grid to
// be resident at once) reads every segment's partial at L2 and sums them in
// segment order, so the sum does not depend on which block came last: the
// result is bitwise reproducible for a given block count. It adds beta * y,
// stores, and sets the counter back to zero for the next launch. A block
// has at most two segments, its first tile and its last, so the workspace
// holds 2 x blocks partials of 64 RB x 128 fp32 (partial slot 2c for block
// c's first tile, 2c + 1 for its last), and one counter per tile. A block
// runs its two segments before the tiles between them (stream_order), so
// that the sums happen under the streaming, not in a tail at the end.

template <int RB, int W>
struct stream_config {
  static constexpr int wgs = W;  // warpgroups: a tile is 128 W outputs
  static constexpr int threads = 128 * W;
  static constexpr std::uint32_t tile_n = block_n * W;
  static constexpr int rows_pad = 64 * RB;
  static constexpr int w_bytes = W * tma_config<RB>::w_bytes;
  static constexpr int stage_bytes = w_bytes + tma_config<RB>::x_bytes;
  static constexpr int align = tma_config<RB>::align;
  static constexpr int smem_limit = 227 * 1024;  // an H100 block's opt-in shared memory
  static constexpr int stages = std::min(8, (smem_limit - align - 64) / stage_bytes);
  static constexpr int smem_bytes = align + stages * stage_bytes + 8 * stages;
  /// Floats of one partial: the block's accumulators, 64 RB a thread.
  static constexpr int partial_floats = threads * rows_pad;
  static_assert(stage_bytes % align == 0, "every stage 1024-byte aligned");
  static_assert(smem_bytes <= smem_limit, "the stages fit an SM");
  static_assert(stages >= 4, "enough weights in flight");
};

/// What skinny_stream_kernel takes: skinny_tma's tensor maps (the weights'
/// boxes 128 W rows high) and product, the grid's size, and the workspace
/// (above): `partials` holds 2 x blocks partials of
/// stream_config<RB, W>::partial_floats, `counters` one zero per tile (the
/// kernel leaves them zero).
struct stream_args {
  tma::tensor_map w_map;
  tma::tensor_map x_map;
  args a;
  std::uint32_t blocks;
  float* partials;
  unsigned* counters;
};

/// The stream-K partition (above) of `units` units over `blocks` blocks.
struct stream_partition {
  std::uint64_t units;
  std::uint32_t blocks, k_tiles;
  /// Block c's first unit (its range ends where c + 1's begins).
  __host__ __device__ std::uint64_t first(std::uint32_t c) const { return units * c / blocks; }
  /// The block whose range holds unit u: the last c with first(c) <= u.
  __host__ __device__ std::uint32_t owner(std::uint64_t u) const {
    return static_cast<std::uint32_t>(((u + 1) * blocks - 1) / units);
  }
  /// Where block c leaves its partial of tile t: 2c for its first tile,
  /// 2c + 1 for its last.
  __host__ __device__ std::uint64_t slot(std::uint32_t c, std::uint64_t t) const {
    return 2 * std::uint64_t{c} + (first(c) / k_tiles == t ? 0 : 1);
  }
};

/// The order block c runs its units in: the part of its last tile first,
/// then the part of its first tile (when that is another tile), then the
/// tiles between, whole. The parts other blocks share come first, so a
/// tile's partials are summed under the streaming of the block's other
/// units, not in a tail at the kernel's end (in range order the block that
/// counts last on a tile is usually the one that reaches it last: its range
/// ends there).
struct stream_order {
  std::uint64_t u0, u1;      // the block's units [u0, u1)
  std::uint64_t last_start;  // the first of them in their last tile
  std::uint64_t first_end;   // one past the last of them in their first tile
  __host__ __device__ stream_order(const stream_partition& p, std::uint32_t c)
      : u0(p.first(c)),
        u1(p.first(c + 1)),
        last_start(u1 > u0 ? (u1 - 1) / p.k_tiles * p.k_tiles : u0),
        first_end((u0 / p.k_tiles + 1) * p.k_tiles) {
    if (last_start < u0) last_start = u0;
    if (first_end > u1) first_end = u1;
  }
  /// The i-th unit the block runs.
  __host__ __device__ std::uint64_t unit(std::uint64_t i) const {
    const std::uint64_t n_last = u1 - last_start;
    if (i < n_last) return last_start + i;
    i -= n_last;
    const std::uint64_t n_first = last_start > u0 ? first_end - u0 : 0;
    if (i < n_first) return u0 + i;
    return first_end + (i - n_first);
  }
};

/// This thread's place in its warpgroup's accumulators: acc[rb][j][0, 1] =
/// (row 64 rb + 16 warp + g, outputs n0 + 8 j + 2t, + 1), [2, 3] = row + 8
/// (store_partial's layout), n0 the tile's first output plus 128 for each
/// warpgroup before this thread's.
struct fragment_place {
  int warp, g, t;
  std::uint32_t n0;
  __device__ fragment_place(std::uint32_t tile_n0)
      : warp(static_cast<int>(threadIdx.x % 128) / 32),
        g(static_cast<int>(threadIdx.x % 32) / 4),
        t(static_cast<int>(threadIdx.x % 4)),
        n0(tile_n0 + threadIdx.x / 128 * block_n) {}
  /// Stores element e of acc[rb][j] (value v) if it is in range.
  __device__ void store(const args& a, int rb, int j, int e, float v) const {
    const auto r = static_cast<std::uint32_t>(rb * 64 + warp * 16 + g + (e >= 2 ? 8 : 0));
    const std::uint32_t o = n0 + static_cast<std::uint32_t>(j * 8 + 2 * t + e % 2);
    if (r < a.rows && o < a.out) store_y(a, std::uint64_t{r} * a.out + o, v);
  }
};

/// Stores y = acc + beta y for the tile from output n0 (fragment_place).
template <int RB>
__device__ inline void store_tile(const args& a, const float (&acc)[RB][block_n / 8][4],
                                  std::uint32_t n0) {
  const fragment_place at(n0);
#pragma unroll
  for (int rb = 0; rb < RB; ++rb)
#pragma unroll
    for (int j = 0; j < static_cast<int>(block_n) / 8; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) at.store(a, rb, j, e, acc[rb][j][e]);
}

/// Where float4 i (of the 16 RB of acc) of this thread's partial lies: at
/// i * T + thread, T the block's threads, so that a warp's stores and loads
/// are 512 contiguous bytes.
template <int T>
__device__ inline int partial_at(int rb, int j) {
  return (rb * static_cast<int>(block_n) / 8 + j) * T + static_cast<int>(threadIdx.x);
}

/// This thread's accumulators into the partial at `p` (partial_at).
template <int T, int RB>
__device__ inline void write_partial(float* p, const float (&acc)[RB][block_n / 8][4]) {
  auto* v = reinterpret_cast<float4*>(p);
#pragma unroll
  for (int rb = 0; rb < RB; ++rb)
#pragma unroll
    for (int j = 0; j < static_cast<int>(block_n) / 8; ++j)
      v[partial_at<T>(rb, j)] = float4{acc[rb][j][0], acc[rb][j][1], acc[rb][j][2], acc[rb][j][3]};
}
// The last block of a tile: each element's partials summed in segment order
// (blocks c0 .. c1, from zero) and stored with beta * y, four elements (one
// float4 of each partial) at a time, so that nothing but those four sums is
// live.
template <class C, int RB>
__device__ inline void sum_and_store(const args& a, const float* partials,
                                     const stream_partition& part, std::uint32_t c0,
                                     std::uint32_t c1, std::uint64_t t) {
  const fragment_place at(static_cast<std::uint32_t>(t * C::tile_n));
#pragma unroll
  for (int rb = 0; rb < RB; ++rb)
#pragma unroll
    for (int j = 0; j < static_cast<int>(block_n) / 8; ++j) {
      float v[4] = {0.0f, 0.0f, 0.0f, 0.0f};
      for (std::uint32_t q = c0; q <= c1; ++q) {
        const float* slot = partials + part.slot(q, t) * C::partial_floats;
        const float4 f =
            ptx::load_cg(reinterpret_cast<const float4*>(slot) + partial_at<C::threads>(rb, j));
        v[0] += f.x;
        v[1] += f.y;
        v[2] += f.z;
        v[3] += f.w;
      }
#pragma unroll
      for (int e = 0; e < 4; ++e) at.store(a, rb, j, e, v[e]);
    }
}

template <int RB, int W>
__global__ void __launch_bounds__(128 * W, 1)
    skinny_stream_kernel(const __grid_constant__ stream_args p) {
#if ACCELLM_WGMMA
  using C = stream_config<RB, W>;
  const args& a = p.a;
  unsigned char* const raw = ptx::dynamic_smem<unsigned char>();
  unsigned char* const smem =
      raw + (C::align - __cvta_generic_to_shared(raw) % C::align) % C::align;
  auto* full = reinterpret_cast<std::uint64_t*>(smem + C::stages * C::stage_bytes);
  const std::uint32_t kt = a.k_tiles, c = blockIdx.x;
  const stream_partition part{std::uint64_t{(a.out + C::tile_n - 1) / C::tile_n} * kt, p.blocks,
                              kt};
  const stream_order order(part, c);
  const int n = static_cast<int>(order.u1 - order.u0);
  const bool issuer = threadIdx.x == 0;
  __shared__ unsigned last;  // whether this block counted last on a tile
  float acc[RB][block_n / 8][4];
  zero(acc);
  std::uint64_t seg_start = order.unit(0);  // the first unit of the segment being summed
  const auto w_at = [&](int i) {
    const std::uint64_t u = order.unit(i);
    return w_box{static_cast<int>(u % kt * block_k), static_cast<int>(u / kt * C::tile_n)};
  };
  tma_tiles<C>(p.w_map, p.x_map, smem, full, n, acc, w_at, [&](int i) {
    const std::uint64_t u = order.unit(i), t = u / kt;
    const std::uint64_t next = i + 1 < n ? order.unit(i + 1) : u;
    if (i + 1 < n && next == u + 1 && next % kt != 0) return;  // the segment goes on
    // A tile wholly this block's is stored from the accumulators; a segment
    // goes through the workspace, and the tile's last block stores the sum.
    const bool whole = seg_start % kt == 0 && u % kt == kt - 1;
    seg_start = next;
    if (whole) {
      store_tile(a, acc, static_cast<std::uint32_t>(t * C::tile_n));
    } else {
      write_partial<C::threads>(p.partials + part.slot(c, t) * C::partial_floats, acc);
      ptx::fence_device();
      __syncthreads();  // the block's partial is written and fenced
      const std::uint32_t c0 = part.owner(t * kt), c1 = part.owner(t * kt + kt - 1);
      if (issuer) last = ptx::count_up(p.counters + t) == c1 - c0 ? 1u : 0u;
      __syncthreads();
      if (last != 0) {
        ptx::fence_device();
        sum_and_store<C, RB>(a, p.partials, part, c0, c1, t);
        if (issuer) p.counters[t] = 0;  // for the next launch
      }
    }
    zero(acc);
  });
#else
  (void)p;
#endif
}

}  // namespace accellm::device::cuda::skinny_kernels

// The skinny GEMM (skinny_gemm.cuh). Design, for y = x w^T with few x rows:
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
#include "device/cuda/check.hpp"
#include "device/cuda/ptx.cuh"
#include "device/cuda/skinny_gemm.cuh"

#include <cooperative_groups.h>

#include <algorithm>

namespace accellm::device::cuda {
namespace {

namespace cg = cooperative_groups;

constexpr int warps = 4;
constexpr int threads = warps * 32;
constexpr std::uint32_t block_n = 128;    // outputs per block: 32 per warp
constexpr std::uint32_t block_k = 64;     // k per pipeline stage
constexpr int stride = block_k + 8;       // shared row pitch in elements (144 bytes)
constexpr int part_stride = block_n + 4;  // partial row pitch in floats: conflict-free stores
constexpr std::uint32_t max_split = 8;    // portable cluster size
constexpr std::uint32_t target_blocks = 256;
constexpr int smem_budget = 112 * 1024;  // two blocks per SM (228 KiB, 1 KiB reserved each)

template <int NT>
struct config {
  static constexpr int rows_pad = 8 * NT;
  static constexpr int stage_elems = (static_cast<int>(block_n) + rows_pad) * stride;
  static constexpr int stage_bytes = stage_elems * 2;
  static constexpr int stages = std::min(6, smem_budget / stage_bytes);
  static constexpr int pipe_bytes = stages * stage_bytes;
  static constexpr int part_bytes = rows_pad * part_stride * 4;
  static constexpr int smem_bytes = std::max(pipe_bytes, part_bytes);
  static_assert(stages >= 3, "too few pipeline stages to hide latency");
  static_assert(smem_bytes <= smem_budget, "two blocks must fit on an SM");
};

struct args {
  const __nv_bfloat16* x;
  const __nv_bfloat16* w;
  void* y;
  std::uint32_t rows, in, out;
  std::uint32_t k_tiles;  // ceil(in / block_k)
  float beta;
  gemm_out type;
};

// Starts copying k tile `kt` of the block's weights (rows n0 .. n0 + 127)
// and of x into stage `st` (weights then x, both row-major, pitch `stride`).
template <int NT>
__device__ void load_stage(const args& a, __nv_bfloat16* st, std::uint32_t n0, std::uint32_t kt) {
  constexpr int vecs = block_k / 8;  // 16-byte chunks per row
  constexpr int w_chunks = block_n * vecs, x_chunks = config<NT>::rows_pad * vecs;
  static_assert(w_chunks % threads == 0, "every thread copies as many weight chunks");
  const std::uint32_t k0 = kt * block_k;
#pragma unroll
  for (int i = 0; i < w_chunks / threads; ++i) {
    const int e = static_cast<int>(threadIdx.x) + i * threads, r = e / vecs, c = e % vecs;
    const std::uint32_t n = n0 + r, k = k0 + 8 * c;
    const bool valid = n < a.out && k < a.in;
    ptx::cp16(st + r * stride + 8 * c, valid ? a.w + std::uint64_t{n} * a.in + k : a.w, valid);
  }
  __nv_bfloat16* xs = st + block_n * stride;
#pragma unroll
  for (int i = 0; i < (x_chunks + threads - 1) / threads; ++i) {
    const int e = static_cast<int>(threadIdx.x) + i * threads, r = e / vecs, c = e % vecs;
    if (x_chunks % threads != 0 && e >= x_chunks) break;
    const std::uint32_t k = k0 + 8 * c;
    const bool valid = static_cast<std::uint32_t>(r) < a.rows && k < a.in;
    ptx::cp16(xs + r * stride + 8 * c, valid ? a.x + std::uint64_t(r) * a.in + k : a.x, valid);
  }
}

// One stage's products: 4 k-steps of 16; warp w owns block outputs
// [32 w, 32 w + 32) as two m16 tiles, and every x row.
template <int NT>
__device__ inline void compute_stage(const __nv_bfloat16* st, float (&acc)[2][NT][4]) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const __nv_bfloat16* ws = st + (warp * 32 + lane % 16) * stride + 8 * (lane / 16);
  const __nv_bfloat16* xs = st + block_n * stride;
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
  if (a.type == gemm_out::fp32) {
    float* y = static_cast<float*>(a.y) + at;
    *y = a.beta == 0.0f ? s : s + a.beta * *y;
  } else {
    __nv_bfloat16* y = static_cast<__nv_bfloat16*>(a.y) + at;
    *y = __float2bfloat16(a.beta == 0.0f ? s : s + a.beta * __bfloat162float(*y));
  }
}

template <int NT>
__global__ void __launch_bounds__(threads, 2) skinny_kernel(args a) {
  using C = config<NT>;
  extern __shared__ __align__(16) unsigned char smem[];
  auto* pipe = reinterpret_cast<__nv_bfloat16*>(smem);
  cg::cluster_group cluster = cg::this_cluster();
  const std::uint32_t split = cluster.num_blocks(), rank = cluster.block_rank();
  const std::uint32_t n0 = (blockIdx.x / split) * block_n;
  const std::uint32_t kt0 = a.k_tiles * rank / split, kt1 = a.k_tiles * (rank + 1) / split;
  const int nk = static_cast<int>(kt1 - kt0);

  float acc[2][NT][4] = {};

  // Prologue: tiles 0 .. stages - 2 in flight; one group per tile, empty
  // past the end, so that wait_group counts stay uniform.
#pragma unroll
  for (int i = 0; i < C::stages - 1; ++i) {
    if (i < nk) load_stage<NT>(a, pipe + i * C::stage_elems, n0, kt0 + i);
    ptx::commit();
  }
  int read = 0, write = C::stages - 1;
  for (int i = 0; i < nk; ++i) {
    ptx::wait_group<C::stages - 2>();  // tile i landed (ours)
    __syncthreads();                   // everyone's copies of tile i landed; stage `write` is free
    if (i + C::stages - 1 < nk)
      load_stage<NT>(a, pipe + write * C::stage_elems, n0, kt0 + i + C::stages - 1);
    ptx::commit();
    compute_stage<NT>(pipe + read * C::stage_elems, acc);
    read = read + 1 == C::stages ? 0 : read + 1;
    write = write + 1 == C::stages ? 0 : write + 1;
  }
  ptx::wait_group<0>();
  __syncthreads();  // the pipeline is drained and every warp is done reading it

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
status launch(const args& a, std::uint32_t split, cudaStream_t s) {
  using C = config<NT>;
  ACCELLM_CUDA_TRY(cudaFuncSetAttribute(
      skinny_kernel<NT>, cudaFuncAttributeMaxDynamicSharedMemorySize, C::smem_bytes));
  // All of L1 as shared memory, so that two blocks fit on an SM (cp.async.cg
  // and the partials do not use L1 anyway).
  ACCELLM_CUDA_TRY(cudaFuncSetAttribute(skinny_kernel<NT>,
                                        cudaFuncAttributePreferredSharedMemoryCarveout,
                                        cudaSharedmemCarveoutMaxShared));
  cudaLaunchAttribute cluster{};
  cluster.id = cudaLaunchAttributeClusterDimension;
  cluster.val.clusterDim.x = split;
  cluster.val.clusterDim.y = 1;
  cluster.val.clusterDim.z = 1;
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = dim3(split * ((a.out + block_n - 1) / block_n));
  cfg.blockDim = dim3(threads);
  cfg.dynamicSmemBytes = C::smem_bytes;
  cfg.stream = s;
  cfg.attrs = &cluster;
  cfg.numAttrs = 1;
  ACCELLM_CUDA_TRY(cudaLaunchKernelEx(&cfg, skinny_kernel<NT>, a));
  ACCELLM_CUDA_TRY(cudaGetLastError());
  return {};
}

}  // namespace

bool skinny_gemm_supports(std::uint32_t rows, std::uint32_t in, std::uint32_t out) noexcept {
  return rows >= 1 && rows <= skinny_max_rows && in > 0 && in % 8 == 0 && out > 0;
}

std::uint32_t skinny_gemm_split(std::uint32_t in, std::uint32_t out) noexcept {
  const std::uint32_t tiles = (out + block_n - 1) / block_n;
  const std::uint32_t k_tiles = (in + block_k - 1) / block_k;
  std::uint32_t split = 1;
  // Enough blocks for two per SM on an H100, each with at least 2 k tiles.
  while (split < max_split && std::uint64_t{tiles} * split < target_blocks && 4 * split <= k_tiles)
    split *= 2;
  return split;
}

status skinny_gemm(const __nv_bfloat16* x, std::uint32_t rows, std::uint32_t in,
                   const __nv_bfloat16* w, std::uint32_t out, void* y, gemm_out type, float beta,
                   cudaStream_t s) {
  if (rows == 0) return {};
  if (!skinny_gemm_supports(rows, in, out))
    return fail(errc::invalid_argument,
                "skinny_gemm: rows must be 1..128, in a positive multiple of 8, out positive");
  if (x == nullptr || w == nullptr || y == nullptr)
    return fail(errc::invalid_argument, "skinny_gemm: null pointer");
  if ((reinterpret_cast<std::uintptr_t>(x) | reinterpret_cast<std::uintptr_t>(w)) % 16 != 0)
    return fail(errc::invalid_argument, "skinny_gemm: x and w must be 16-byte aligned");
  const args a{x, w, y, rows, in, out, (in + block_k - 1) / block_k, beta, type};
  const std::uint32_t split = skinny_gemm_split(in, out);
  if (rows <= 8) return launch<1>(a, split, s);
  if (rows <= 16) return launch<2>(a, split, s);
  if (rows <= 32) return launch<4>(a, split, s);
  if (rows <= 64) return launch<8>(a, split, s);
  return launch<16>(a, split, s);
}

}  // namespace accellm::device::cuda

// prefill_attention_wgmma: the wgmma64 prefill kernel (prefill_attention.cuh),
// Hopper's warpgroup MMA (wgmma.mma_async, sm_90a) in place of mma.sync.
//
// A block is one warpgroup (4 warps, 128 threads) taking 64 query rows of one
// head; keys go in steps of 64. Both products are m64 wgmma with the left
// operand in registers and the right one read by the tensor cores straight
// from shared memory, so no warp copies K or V fragments through its
// registers (rows64 and rows128 read every K/V fragment with ldmatrix, once
// per warp: that shared-memory traffic is what bounds them):
//   S = Q K^T:  m64 n64 k16 x HD/16, A = Q (registers, loaded once), B = K;
//   O += P V:   m64 nHD k16 x 4,     A = P (registers), B = V (transposed).
// The register fragments are mma.sync's (PTX ISA, "Register Fragments and
// Shared Memory Matrix Layouts" for wgmma): warp w of the warpgroup holds rows
// 16 w .. 16 w + 15; an A fragment is the m16n8k16 A fragment of those rows;
// the f32 accumulator of an m64nN product holds, for each 8-column chunk j,
// d[4 j + 0, 1] = (row g, cols 8 j + 2 t, + 1) and d[4 j + 2, 3] = (row g + 8,
// same cols). So the scores are rows64's, and P is packed into A fragments
// as there, without leaving registers.
//
// Shared memory, no swizzle ("interleave" canonical layouts): a 64 x HD tile
// of K (or V) is stored as 8 x 8 core matrices, 128 contiguous bytes each
// (8 keys x 8 dims, a key's 8 dims in 16 bytes), key group major:
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
// Pipeline: two stages of [K | V]; step i + 1's copies run while step i is
// computed; every wgmma group is waited for before the barrier that lets its
// buffer be refilled. Three blocks per SM (64 KB of shared memory each at HD
// 128) overlap one block's softmax with another's products.
//
// Q fragments, softmax, masking and the output rows are rows64's
// (prefill_rows.cuh).
// Built only for sm_90a (__CUDA_ARCH_FEAT_SM90_ALL); elsewhere the launcher
// refuses (prefill_wgmma_built()).
#include "device/cuda/check.hpp"
#include "device/cuda/prefill_attention.cuh"
#include "device/cuda/prefill_attention_wgmma.cuh"
#include "device/cuda/prefill_rows.cuh"
#include "device/cuda/ptx.cuh"

#include <cmath>
#include <cstdint>

#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define ACCELLM_WGMMA 1
#else
#define ACCELLM_WGMMA 0
#endif

namespace accellm::device::cuda {
namespace {

constexpr int keys = 64, threads = 128, stages = 2;  // 64 query rows per block

template <int HD>
constexpr std::size_t smem_bytes() {
  return static_cast<std::size_t>(stages) * 2 * keys * HD * sizeof(__nv_bfloat16);
}

#if ACCELLM_WGMMA
// Shared-memory matrix descriptor, no swizzle: start address, leading and
// stride byte offsets, each in 16-byte units (PTX ISA, "Matrix Descriptor").
__device__ inline std::uint64_t descriptor(const void* smem, std::uint32_t leading,
                                           std::uint32_t stride) {
  const auto a = static_cast<std::uint32_t>(__cvta_generic_to_shared(smem));
  return static_cast<std::uint64_t>((a >> 4) & 0x3fff) |
         static_cast<std::uint64_t>((leading >> 4) & 0x3fff) << 16 |
         static_cast<std::uint64_t>((stride >> 4) & 0x3fff) << 32;
}

__device__ inline void fence() {
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
}
__device__ inline void commit() {
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
}
__device__ inline void wait_all() {
  asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
}
// Keeps the compiler from moving reads or writes of an accumulator across
// the asynchronous products that own it.
template <int N>
__device__ inline void pin(float (&r)[N][4]) {
#pragma unroll
  for (int i = 0; i < N; ++i)
#pragma unroll
    for (int e = 0; e < 4; ++e) asm volatile("" : "+f"(r[i][e])::"memory");
}
// Generic-proxy writes (cp.async) of this thread visible to the async proxy.
__device__ inline void proxy_fence() {
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}

// d (m64 x N, f32) = a (m64 x k16, registers) * B (k16 x N, descriptor) + scale_d * d.
template <int trans_b>
__device__ inline void wgmma_n64(float (&d)[8][4], const std::uint32_t (&a)[4], std::uint64_t b,
                                 int scale_d) {
  asm volatile(
      "{\n.reg .pred p;\n"
      "setp.ne.b32 p, %37, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 "
      "{"
      "%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,"
      "%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31"
      "}, {%32,%33,%34,%35}, %36, p, 1, 1, %38;\n}\n"
      : "+f"(d[0][0]), "+f"(d[0][1]), "+f"(d[0][2]), "+f"(d[0][3]), "+f"(d[1][0]), "+f"(d[1][1]),
        "+f"(d[1][2]), "+f"(d[1][3]), "+f"(d[2][0]), "+f"(d[2][1]), "+f"(d[2][2]), "+f"(d[2][3]),
        "+f"(d[3][0]), "+f"(d[3][1]), "+f"(d[3][2]), "+f"(d[3][3]), "+f"(d[4][0]), "+f"(d[4][1]),
        "+f"(d[4][2]), "+f"(d[4][3]), "+f"(d[5][0]), "+f"(d[5][1]), "+f"(d[5][2]), "+f"(d[5][3]),
        "+f"(d[6][0]), "+f"(d[6][1]), "+f"(d[6][2]), "+f"(d[6][3]), "+f"(d[7][0]), "+f"(d[7][1]),
        "+f"(d[7][2]), "+f"(d[7][3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(scale_d), "n"(trans_b));
}

template <int trans_b>
__device__ inline void wgmma_n128(float (&d)[16][4], const std::uint32_t (&a)[4], std::uint64_t b,
                                  int scale_d) {
  asm volatile(
      "{\n.reg .pred p;\n"
      "setp.ne.b32 p, %69, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 "
      "{"
      "%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,"
      "%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,"
      "%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,"
      "%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63"
      "}, {%64,%65,%66,%67}, %68, p, 1, 1, %70;\n}\n"
      : "+f"(d[0][0]), "+f"(d[0][1]), "+f"(d[0][2]), "+f"(d[0][3]), "+f"(d[1][0]), "+f"(d[1][1]),
        "+f"(d[1][2]), "+f"(d[1][3]), "+f"(d[2][0]), "+f"(d[2][1]), "+f"(d[2][2]), "+f"(d[2][3]),
        "+f"(d[3][0]), "+f"(d[3][1]), "+f"(d[3][2]), "+f"(d[3][3]), "+f"(d[4][0]), "+f"(d[4][1]),
        "+f"(d[4][2]), "+f"(d[4][3]), "+f"(d[5][0]), "+f"(d[5][1]), "+f"(d[5][2]), "+f"(d[5][3]),
        "+f"(d[6][0]), "+f"(d[6][1]), "+f"(d[6][2]), "+f"(d[6][3]), "+f"(d[7][0]), "+f"(d[7][1]),
        "+f"(d[7][2]), "+f"(d[7][3]), "+f"(d[8][0]), "+f"(d[8][1]), "+f"(d[8][2]), "+f"(d[8][3]),
        "+f"(d[9][0]), "+f"(d[9][1]), "+f"(d[9][2]), "+f"(d[9][3]), "+f"(d[10][0]), "+f"(d[10][1]),
        "+f"(d[10][2]), "+f"(d[10][3]), "+f"(d[11][0]), "+f"(d[11][1]), "+f"(d[11][2]),
        "+f"(d[11][3]), "+f"(d[12][0]), "+f"(d[12][1]), "+f"(d[12][2]), "+f"(d[12][3]),
        "+f"(d[13][0]), "+f"(d[13][1]), "+f"(d[13][2]), "+f"(d[13][3]), "+f"(d[14][0]),
        "+f"(d[14][1]), "+f"(d[14][2]), "+f"(d[14][3]), "+f"(d[15][0]), "+f"(d[15][1]),
        "+f"(d[15][2]), "+f"(d[15][3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(scale_d), "n"(trans_b));
}

template <int N>
__device__ inline void wgmma(float (&d)[N / 8][4], const std::uint32_t (&a)[4], std::uint64_t b,
                             int scale_d, bool trans_b) {
  if constexpr (N == 64) {
    if (trans_b)
      wgmma_n64<1>(d, a, b, scale_d);
    else
      wgmma_n64<0>(d, a, b, scale_d);
  } else {
    static_assert(N == 128, "wgmma: n64 or n128");
    if (trans_b)
      wgmma_n128<1>(d, a, b, scale_d);
    else
      wgmma_n128<0>(d, a, b, scale_d);
  }
}
#endif

// Starts copying K and V rows [key0, key0 + 64) into the core-matrix layout
// (rows past key_end zero) as one cp.async group. Consecutive threads take
// consecutive keys of a core matrix: their 16-byte writes are contiguous.
template <int HD>
__device__ void stage(const prefill_attention_args& a, const prefill_tile& t, std::uint32_t col,
                      int key0, int key_end, __nv_bfloat16* Ks, __nv_bfloat16* Vs) {
  constexpr int vecs = HD / 8;
  const auto slot = static_cast<std::uint32_t>(t.slot);
  for (int e = static_cast<int>(threadIdx.x); e < keys * vecs; e += threads) {
    const int group = e / (8 * vecs), c = (e / 8) % vecs, rr = e % 8;
    const int r = group * 8 + rr;
    const bool valid = key0 + r < key_end;
    const auto key = static_cast<std::uint32_t>(valid ? key0 + r : 0);
    const int at = (group * vecs + c) * 64 + rr * 8;
    ptx::cp16(Ks + at, a.kv.pool + a.kv.row_offset(slot, a.layer, 0, key) + col + c * 8, valid);
    ptx::cp16(Vs + at, a.kv.pool + a.kv.row_offset(slot, a.layer, 1, key) + col + c * 8, valid);
  }
  ptx::commit();
}

template <int HD>
__global__ void __launch_bounds__(threads, 3)
    prefill_wgmma_kernel(prefill_attention_args a, float scale_log2) {
#if ACCELLM_WGMMA
  constexpr int tile_elems = keys * HD, stage_elems = 2 * tile_elems;
  constexpr std::uint32_t group_bytes = HD * 16;  // one 8-key group of a tile
  extern __shared__ __align__(128) __nv_bfloat16 smem[];
  std::uint32_t qa[HD / 16][4];
  float o[HD / 8][4];
  const auto [t, head, kvh, warp, lane, tq, r0, r1, qpos0, qpos1, key_end] =
      prefill_rows::begin<HD>(a, qa, o);
  const std::uint32_t hd = HD;
  prefill_rows::running run;

  stage<HD>(a, t, kvh * hd, 0, key_end, smem, smem + tile_elems);
  int buf = 0;
  for (int key0 = 0; key0 < key_end; key0 += keys, buf ^= 1) {
    if (key0 + keys < key_end) {
      __nv_bfloat16* next = smem + (buf ^ 1) * stage_elems;
      stage<HD>(a, t, kvh * hd, key0 + keys, key_end, next, next + tile_elems);
      ptx::wait_group<1>();
    } else {
      ptx::wait_group<0>();
    }
    proxy_fence();
    __syncthreads();  // every thread's copies of this stage are visible to the tensor cores
    const __nv_bfloat16* Ks = smem + buf * stage_elems;
    const __nv_bfloat16* Vs = Ks + tile_elems;

    // S = Q K^T over HD / 16 k-steps of 16 dims: core matrices 2 ks, 2 ks + 1
    // of each key group, 64 elements apart.
    float s[keys / 8][4];
#pragma unroll
    for (int j = 0; j < keys / 8; ++j) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.0f;
    pin(s);
    fence();
#pragma unroll
    for (int ks = 0; ks < HD / 16; ++ks)
      wgmma<64>(s, qa[ks], descriptor(Ks + ks * 128, 128, group_bytes), 1, false);
    commit();
    wait_all();
    pin(s);

    std::uint32_t pa[keys / 16][4];
    prefill_rows::softmax_step<HD>(s, pa, o, run, key0 + keys <= t.pos + 1, key0, qpos0, qpos1,
                                   key_end, tq, scale_log2);
    // O += P V over 4 k-steps of 16 keys (two 8-key groups each).
    pin(o);
    fence();
#pragma unroll
    for (int kk = 0; kk < keys / 16; ++kk)
      wgmma<HD>(o, pa[kk], descriptor(Vs + kk * 2 * 8 * HD, group_bytes, 128), 1, true);
    commit();
    wait_all();
    pin(o);
    __syncthreads();  // every warp is done with this stage before it is refilled
  }
  prefill_rows::store<HD>(o, run, a, t, head, r0, r1, tq);
#else
  (void)a;
  (void)scale_log2;
#endif
}

template <int HD>
status launch(const prefill_attention_args& a, cudaStream_t s) {
  constexpr auto bytes = static_cast<int>(smem_bytes<HD>());
  ACCELLM_CUDA_TRY(cudaFuncSetAttribute(prefill_wgmma_kernel<HD>,
                                        cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
  ACCELLM_CUDA_TRY(cudaFuncSetAttribute(prefill_wgmma_kernel<HD>,
                                        cudaFuncAttributePreferredSharedMemoryCarveout,
                                        cudaSharedmemCarveoutMaxShared));
  prefill_wgmma_kernel<HD>
      <<<dim3(a.shape.heads, a.n_tiles), threads, bytes, s>>>(a, prefill_rows::scale_log2_of<HD>());
  ACCELLM_CUDA_TRY(cudaGetLastError());
  return {};
}

}  // namespace

bool prefill_wgmma_built() noexcept {
#ifdef ACCELLM_CUDA_SM90A
  return true;
#else
  return false;
#endif
}

status launch_prefill_wgmma(const prefill_attention_args& a, cudaStream_t s) {
  return a.shape.head_dim == 64 ? launch<64>(a, s) : launch<128>(a, s);
}

}  // namespace accellm::device::cuda

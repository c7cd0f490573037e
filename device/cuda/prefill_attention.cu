#include "device/cuda/check.hpp"
#include "device/cuda/prefill_attention.cuh"

#include <algorithm>
#include <cmath>

namespace accellm::device::cuda {
namespace {

// FlashAttention-2 style on mma.sync m16n8k16 (bf16 in, fp32 accumulate).
// Block: 4 warps, 64 query rows; warp w owns rows [16w, 16w + 16). Fragment
// layouts (PTX ISA, "Matrix Fragments for mma.m16n8k16"): lane = 4 g + t;
// A regs a0..a3 hold (row g | g+8, cols 2t, 2t+1 | +8); B regs b0, b1 hold
// (k = 2t, 2t+1 | +8, col g); C holds (row g, cols 2t, 2t+1) and (row g+8,
// same cols). The C fragments of two adjacent 8-key score tiles are exactly
// the A fragment of P for 16 keys, so P never leaves registers.
constexpr int tile = 64;  // query rows per block, keys per step
constexpr int warps = 4;

__device__ inline void mma_bf16(float (&c)[4], const std::uint32_t (&a)[4], std::uint32_t b0,
                                std::uint32_t b1) {
  // Not volatile: a pure register operation, so the compiler may interleave
  // independent products.
  asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ inline std::uint32_t pack(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const std::uint32_t*>(&v);
}

__device__ inline void ldmatrix_x4(std::uint32_t (&r)[4], const __nv_bfloat16* p) {
  const auto a = static_cast<std::uint32_t>(__cvta_generic_to_shared(p));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(a)
               : "memory");
}

__device__ inline void ldmatrix_x4_trans(std::uint32_t (&r)[4], const __nv_bfloat16* p) {
  const auto a = static_cast<std::uint32_t>(__cvta_generic_to_shared(p));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(a)
               : "memory");
}

__device__ inline std::uint32_t word(const __nv_bfloat16* p) {
  return *reinterpret_cast<const std::uint32_t*>(p);
}

// 16 bytes global -> shared, zero-filled when !valid (src-size 0).
__device__ inline void cp16(__nv_bfloat16* dst, const __nv_bfloat16* src, bool valid) {
  const auto d = static_cast<std::uint32_t>(__cvta_generic_to_shared(dst));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(d), "l"(src),
               "r"(valid ? 16 : 0));
}

// Starts copying K and V rows [key0, key0 + 64) row-major into Ks and Vs
// (rows past key_end zero) as one cp.async group.
template <int HD>
__device__ void stage(const prefill_attention_args& a, const prefill_tile& t, std::uint32_t col,
                      int key0, int key_end, __nv_bfloat16* Ks, __nv_bfloat16* Vs) {
  constexpr int vecs = HD / 8, stride = HD + 8;
  const auto slot = static_cast<std::uint32_t>(t.slot);
  for (int e = threadIdx.x; e < tile * vecs; e += warps * 32) {
    const int r = e / vecs, c = e % vecs;
    const bool valid = key0 + r < key_end;
    const int key = valid ? key0 + r : 0;
    cp16(Ks + r * stride + c * 8, a.kv.pool + a.kv.row_offset(slot, a.layer, 0, key) + col + c * 8,
         valid);
    cp16(Vs + r * stride + c * 8, a.kv.pool + a.kv.row_offset(slot, a.layer, 1, key) + col + c * 8,
         valid);
  }
  asm volatile("cp.async.commit_group;\n" ::);
}

template <int HD>
constexpr std::size_t smem_bytes() {
  return 2 * 2 * static_cast<std::size_t>(tile) * (HD + 8) * sizeof(__nv_bfloat16);
}

template <int HD>
__global__ void __launch_bounds__(warps * 32)
    prefill_kernel(prefill_attention_args a, float scale_log2) {
  constexpr int k_stride = HD + 8;  // (HD + 8) / 2 words: lanes hit distinct banks
  // Two stages of [K | V], each tile x k_stride, row-major.
  extern __shared__ __align__(16) __nv_bfloat16 smem[];
  // Heads vary fastest, so blocks start in the order of the tile list: the
  // caller puts the longest tiles first (every head of them), which keeps the
  // causal tail short; the heads sharing a KV head run side by side.
  const prefill_tile t = a.tiles[blockIdx.y];
  const std::uint32_t head = blockIdx.x, hd = HD;
  const std::uint32_t kvh = head / (a.shape.heads / a.shape.kv_heads);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, tq = lane % 4;
  const std::uint32_t qw = a.shape.q_width();
  const int r0 = warp * 16 + g, r1 = r0 + 8;  // this lane's two query rows in the tile

  std::uint32_t qa[HD / 16][4];
  {
    const __nv_bfloat16* q0 = a.q + static_cast<std::uint64_t>(t.row + r0) * qw + head * hd;
    const __nv_bfloat16* q1 = a.q + static_cast<std::uint64_t>(t.row + r1) * qw + head * hd;
    const bool v0 = r0 < t.count, v1 = r1 < t.count;
#pragma unroll
    for (int ks = 0; ks < HD / 16; ++ks) {
      const int c = ks * 16 + tq * 2;
      qa[ks][0] = v0 ? word(q0 + c) : 0u;
      qa[ks][1] = v1 ? word(q1 + c) : 0u;
      qa[ks][2] = v0 ? word(q0 + c + 8) : 0u;
      qa[ks][3] = v1 ? word(q1 + c + 8) : 0u;
    }
  }
  float o[HD / 8][4];
#pragma unroll
  for (int d = 0; d < HD / 8; ++d) o[d][0] = o[d][1] = o[d][2] = o[d][3] = 0.0f;
  float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.0f, l1 = 0.0f;
  const int qpos0 = t.pos + r0, qpos1 = t.pos + r1;
  const int key_end = t.pos + t.count;

  constexpr int stage_elems = 2 * tile * k_stride;
  stage<HD>(a, t, kvh * hd, 0, key_end, smem, smem + tile * k_stride);
  int buf = 0;
  for (int key0 = 0; key0 < key_end; key0 += tile, buf ^= 1) {
    if (key0 + tile < key_end) {
      __nv_bfloat16* next = smem + (buf ^ 1) * stage_elems;
      stage<HD>(a, t, kvh * hd, key0 + tile, key_end, next, next + tile * k_stride);
      asm volatile("cp.async.wait_group 1;\n" ::);
    } else {
      asm volatile("cp.async.wait_group 0;\n" ::);
    }
    __syncthreads();  // every thread's copies of this stage have landed
    const __nv_bfloat16* Ks = smem + buf * stage_elems;
    const __nv_bfloat16* Vs = Ks + tile * k_stride;
    float s[tile / 8][4];
    // ldmatrix.x4 gives the B fragments of two 8-key tiles for one k-step:
    // lane group m = lane / 8 names rows of key tile j + m / 2, dims + 8 (m % 2).
    const int lm = lane / 8, lr = lane % 8;
#pragma unroll
    for (int j = 0; j < tile / 8; ++j) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.0f;
    // k-steps outside, key tiles inside: eight independent accumulators per
    // k-step instead of one dependent chain per tile.
    const __nv_bfloat16* krow = Ks + (8 * (lm / 2) + lr) * k_stride + (lm % 2) * 8;
#pragma unroll
    for (int ks = 0; ks < HD / 16; ++ks)
#pragma unroll
      for (int j = 0; j < tile / 8; j += 2) {
        std::uint32_t b[4];
        ldmatrix_x4(b, krow + 8 * j * k_stride + ks * 16);
        mma_bf16(s[j], qa[ks], b[0], b[1]);
        mma_bf16(s[j + 1], qa[ks], b[2], b[3]);
      }
    // Scale (log2 domain), mask and the row maxima over the quad. Only the
    // tiles that reach past the block's first position need the mask; the
    // others (all but one or two for long prompts) skip its compares.
    float mx0 = -INFINITY, mx1 = -INFINITY;
    if (key0 + tile <= t.pos + 1) {
#pragma unroll
      for (int j = 0; j < tile / 8; ++j) {
        s[j][0] *= scale_log2;
        s[j][1] *= scale_log2;
        s[j][2] *= scale_log2;
        s[j][3] *= scale_log2;
        mx0 = fmaxf(mx0, fmaxf(s[j][0], s[j][1]));
        mx1 = fmaxf(mx1, fmaxf(s[j][2], s[j][3]));
      }
    } else {
#pragma unroll
      for (int j = 0; j < tile / 8; ++j)
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
    const float n0 = fmaxf(m0, mx0), n1 = fmaxf(m1, mx1);
    const float al0 = n0 == -INFINITY ? 1.0f : exp2f(m0 - n0);
    const float al1 = n1 == -INFINITY ? 1.0f : exp2f(m1 - n1);
    float sum0 = 0.0f, sum1 = 0.0f;
#pragma unroll
    for (int j = 0; j < tile / 8; ++j) {
      s[j][0] = n0 == -INFINITY ? 0.0f : exp2f(s[j][0] - n0);
      s[j][1] = n0 == -INFINITY ? 0.0f : exp2f(s[j][1] - n0);
      s[j][2] = n1 == -INFINITY ? 0.0f : exp2f(s[j][2] - n1);
      s[j][3] = n1 == -INFINITY ? 0.0f : exp2f(s[j][3] - n1);
      sum0 += s[j][0] + s[j][1];
      sum1 += s[j][2] + s[j][3];
    }
    l0 = l0 * al0 + sum0;  // per-lane partial sums; the quad is summed at the end
    l1 = l1 * al1 + sum1;
    m0 = n0;
    m1 = n1;
#pragma unroll
    for (int d = 0; d < HD / 8; ++d) {
      o[d][0] *= al0;
      o[d][1] *= al0;
      o[d][2] *= al1;
      o[d][3] *= al1;
    }
    // O += P V, 16 keys per k-step.
#pragma unroll
    for (int kk = 0; kk < tile / 16; ++kk) {
      const std::uint32_t pa[4] = {
          pack(s[2 * kk][0], s[2 * kk][1]), pack(s[2 * kk][2], s[2 * kk][3]),
          pack(s[2 * kk + 1][0], s[2 * kk + 1][1]), pack(s[2 * kk + 1][2], s[2 * kk + 1][3])};
      // ldmatrix.x4.trans: lane group m names key rows + 8 (m % 2) of dim
      // tile d + m / 2; thread (g, t) gets keys 2t, 2t+1 of dim g, i.e. the B
      // fragments of dim tiles d and d + 1.
      const __nv_bfloat16* vrow = Vs + (kk * 16 + (lm % 2) * 8 + lr) * k_stride + (lm / 2) * 8;
#pragma unroll
      for (int d = 0; d < HD / 8; d += 2) {
        std::uint32_t b[4];
        ldmatrix_x4_trans(b, vrow + d * 8);
        mma_bf16(o[d], pa, b[0], b[1]);
        mma_bf16(o[d + 1], pa, b[2], b[3]);
      }
    }
    __syncthreads();  // all warps are done with this stage before it is refilled
  }
#pragma unroll
  for (int off = 1; off < 4; off <<= 1) {
    l0 += __shfl_xor_sync(0xffffffffu, l0, off);
    l1 += __shfl_xor_sync(0xffffffffu, l1, off);
  }
  const float inv0 = 1.0f / l0, inv1 = 1.0f / l1;
  __nv_bfloat16* out0 = a.out + static_cast<std::uint64_t>(t.row + r0) * qw + head * hd + tq * 2;
  __nv_bfloat16* out1 = a.out + static_cast<std::uint64_t>(t.row + r1) * qw + head * hd + tq * 2;
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

template <int HD>
status launch(const prefill_attention_args& a, cudaStream_t s) {
  const float scale_log2 = 1.4426950408889634f / std::sqrt(static_cast<float>(HD));
  ACCELLM_CUDA_TRY(cudaFuncSetAttribute(prefill_kernel<HD>,
                                        cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        static_cast<int>(smem_bytes<HD>())));
  prefill_kernel<HD>
      <<<dim3(a.shape.heads, a.n_tiles), warps * 32, smem_bytes<HD>(), s>>>(a, scale_log2);
  ACCELLM_CUDA_TRY(cudaGetLastError());
  return {};
}

}  // namespace

status prefill_attention(const prefill_attention_args& a, cudaStream_t s) {
  if (a.n_tiles == 0) return {};
  if (a.n_tiles > 65535)
    return fail(errc::invalid_argument, "prefill_attention: more than 65535 tiles");
  if (a.shape.kv_heads == 0 || a.shape.heads % a.shape.kv_heads != 0)
    return fail(errc::invalid_argument, "prefill_attention: kv_heads must divide heads");
  if (!a.q || !a.out || !a.tiles || !a.kv.pool || !a.kv.tables)
    return fail(errc::invalid_argument, "prefill_attention: null pointer");
  if (a.shape.kv_width() != a.kv.kv_width || a.layer >= a.kv.layers)
    return fail(errc::invalid_argument, "prefill_attention: shape does not match the KV pool");
  switch (a.shape.head_dim) {
    case 16:
      return launch<16>(a, s);
    case 32:
      return launch<32>(a, s);
    case 64:
      return launch<64>(a, s);
    case 128:
      return launch<128>(a, s);
    default:
      return fail(errc::invalid_argument, "prefill_attention: head_dim must be 16, 32, 64 or 128");
  }
}

}  // namespace accellm::device::cuda

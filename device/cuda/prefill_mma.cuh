// prefill_mma: the rows64 and rows128 prefill kernels (prefill_attention.cuh)
// on mma.sync, device code only: prefill_attention.cu launches them and the
// host emulator (tests/device/cuda/emu/) runs this same source on the CPU.
#pragma once

#include "device/cuda/mma_scores.cuh"
#include "device/cuda/prefill_attention.cuh"
#include "device/cuda/prefill_rows.cuh"
#include "device/cuda/ptx.cuh"

#include <cuda_bf16.h>

#include <cmath>
#include <cstdint>

namespace accellm::device::cuda::prefill_mma {

// FlashAttention-2 style on mma.sync m16n8k16 (bf16 in, fp32 accumulate).
// Block: 4 warps, 64 query rows; warp w owns rows [16w, 16w + 16). Fragment
// layouts (PTX ISA, "Matrix Fragments for mma.m16n8k16"): lane = 4 g + t;
// A regs a0..a3 hold (row g | g+8, cols 2t, 2t+1 | +8); B regs b0, b1 hold
// (k = 2t, 2t+1 | +8, col g); C holds (row g, cols 2t, 2t+1) and (row g+8,
// same cols). The C fragments of two adjacent 8-key score tiles are exactly
// the A fragment of P for 16 keys, so P never leaves registers.
constexpr int tile = 64;  // query rows per block, keys per step
constexpr int warps = 4;

// ---- rows64 ------------------------------------------------------------------

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
    ptx::cp16(Ks + r * stride + c * 8,
              a.kv.pool + a.kv.row_offset(slot, a.layer, 0, key) + col + c * 8, valid);
    ptx::cp16(Vs + r * stride + c * 8,
              a.kv.pool + a.kv.row_offset(slot, a.layer, 1, key) + col + c * 8, valid);
  }
  ptx::commit();
}

template <int HD>
constexpr std::size_t smem_bytes() {
  return 2 * 2 * static_cast<std::size_t>(tile) * (HD + 8) * sizeof(__nv_bfloat16);
}

// Three blocks (12 warps) per SM: without the bound the two masking paths
// take 184 registers at HD 128 and only two blocks fit; with it, 168 and no
// spills.
template <int HD>
__global__ void __launch_bounds__(warps * 32, 3)
    prefill_rows64_kernel(prefill_attention_args a, float scale_log2) {
  constexpr int k_stride = HD + 8;  // (HD + 8) / 2 words: lanes hit distinct banks
  // Two stages of [K | V], each tile x k_stride, row-major.
  __nv_bfloat16* const smem = ptx::dynamic_smem<__nv_bfloat16>();
  std::uint32_t qa[HD / 16][4];
  float o[HD / 8][4];
  const auto [t, head, kvh, warp, lane, tq, r0, r1, qpos0, qpos1, key_end] =
      prefill_rows::begin<HD>(a, qa, o);
  const std::uint32_t hd = HD;
  prefill_rows::running run;

  constexpr int stage_elems = 2 * tile * k_stride;
  stage<HD>(a, t, kvh * hd, 0, key_end, smem, smem + tile * k_stride);
  int buf = 0;
  for (int key0 = 0; key0 < key_end; key0 += tile, buf ^= 1) {
    if (key0 + tile < key_end) {
      __nv_bfloat16* next = smem + (buf ^ 1) * stage_elems;
      stage<HD>(a, t, kvh * hd, key0 + tile, key_end, next, next + tile * k_stride);
      ptx::wait_group<1>();
    } else {
      ptx::wait_group<0>();
    }
    __syncthreads();  // every thread's copies of this stage have landed
    const __nv_bfloat16* Ks = smem + buf * stage_elems;
    const __nv_bfloat16* Vs = Ks + tile * k_stride;
    float s[tile / 8][4];
    const int lm = lane / 8, lr = lane % 8;
    mma::scores<HD, tile>(s, qa, Ks + (8 * (lm / 2) + lr) * k_stride + (lm % 2) * 8, k_stride);
    // Only the tiles that reach past the block's first position need the
    // mask; the others (all but one or two for long prompts) skip its compares.
    prefill_rows::softmax_step<HD>(s, o, run, key0 + tile <= t.pos + 1, key0, qpos0, qpos1, key_end,
                                   tq, scale_log2);
    // O += P V, 16 keys per k-step.
#pragma unroll
    for (int kk = 0; kk < tile / 16; ++kk) {
      std::uint32_t pa[4];
      prefill_rows::p_fragment(pa, s, kk);
      mma::add_pv<HD>(o, pa, Vs + (kk * 16 + (lm % 2) * 8 + lr) * k_stride + (lm / 2) * 8);
    }
    __syncthreads();  // all warps are done with this stage before it is refilled
  }
  prefill_rows::store<HD>(o, run, a, t, head, r0, r1, tq);
}

// ---- rows128 -----------------------------------------------------------------

// FlashAttention-2's block shape for head_dim 128 on sm80/sm90 (kBlockM 128,
// 4 warps, Q not in registers). Warp w owns query rows [32w, 32w + 32) of
// the tile as two m16 tiles (mt = 0, 1), so each K or V B fragment that
// ldmatrix reads from shared memory feeds two MMAs, and a block streams
// each K/V tile once for 128 rows. Per thread the o accumulators are
// 2 x HD/8 x 4 fp32 (128 at HD 128) and the scores 2 x keys/8 x 4, which
// leaves no room for Q: its A fragments are read from shared memory by
// ldmatrix at every k-step (Q is copied there once per block, with the
// first K/V stage). FA2's 64-key steps spill at HD 128 here (56 to 72
// bytes of spill stores at the 255-register cap in the variants tried), so
// HD 128 steps over 32 keys; smaller head dims over 64 (config below).
//
// Pipeline: `stages` buffers of [K | V], one __syncthreads per key step. At
// step i a thread waits until its copies of step i have landed
// (wait_group stages - 2), the barrier publishes everyone's copies and
// certifies that every warp is done with step i - 1, whose buffer
// ((i + stages - 1) % stages) then receives step i + stages - 1 while step i
// is computed. A group is committed every step, empty past the last, so the
// wait count holds to the end.
//
// Masking: a warp skips a key step none of its rows can see (its keys all
// lie beyond the warp's last row), and compares positions only on a step
// that reaches past the warp's first row (one to three per warp; the rest
// run unmasked). Rows past the tile's count read zeros for Q and are never
// stored; they may see keys past the chunk (zero-filled), which only they
// use. Softmax is in the log2 domain with the scale folded into one FMA:
// p = 2^(s * scale_log2 - m), m the running maximum of s * scale_log2.
//
// ptxas (sm_90, CUDA 13.0, -Xptxas -v), no spills, no stack:
//   HD 128: 242 registers, 87,040 B shared (32-key steps, 3 stages)
//   HD  64: 221 registers, 73,728 B shared (64-key steps, 3 stages)
//   HD  32: 166 registers, 40,960 B;  HD 16: 143 registers, 24,576 B.
// Occupancy on an H100 (64 Ki registers, 228 KB shared per SM): two blocks
// (8 warps) per SM at HD 128 and 64, bound by registers; three at HD 32, 16.
// rows64 at HD 128 runs 12 warps per SM (168 registers, its launch bound).
namespace r128 {

constexpr int rows = 128, warps = 4, threads = warps * 32;

// Keys per step and pipeline depth: at HD 128, 64-key steps (64 score
// registers on top of 128 for o) spill; 32-key steps, with three stages so
// that two steps of K/V are in flight while one is computed.
template <int HD>
struct config {
  static constexpr int keys = HD == 128 ? 32 : 64;
  static constexpr int stages = 3;
  static constexpr std::size_t smem_bytes =
      static_cast<std::size_t>(rows + stages * 2 * keys) * (HD + 8) * sizeof(__nv_bfloat16);
};

// Starts copying columns [col, col + HD) of the tile's Q rows (rows past
// count zero) into Qs, row stride HD + 8; not committed.
template <int HD>
__device__ void stage_q(const prefill_attention_args& a, const prefill_tile& t, std::uint32_t col,
                        __nv_bfloat16* Qs) {
  constexpr int vecs = HD / 8, stride = HD + 8;
  const std::uint32_t qw = a.shape.q_width();
  const int c = static_cast<int>(threadIdx.x) % vecs;
  for (int r = static_cast<int>(threadIdx.x) / vecs; r < rows; r += threads / vecs) {
    const bool valid = r < t.count;
    const __nv_bfloat16* src =
        a.q + static_cast<std::uint64_t>(t.row + (valid ? r : 0)) * qw + col + c * 8;
    ptx::cp16(Qs + r * stride + c * 8, src, valid);
  }
}

// Starts copying K and V rows [key0, key0 + keys) into Ks and Vs (rows past
// key_end zero); not committed.
template <int HD>
__device__ void stage_kv(const prefill_attention_args& a, const prefill_tile& t, std::uint32_t col,
                         int key0, int key_end, __nv_bfloat16* Ks, __nv_bfloat16* Vs) {
  constexpr int vecs = HD / 8, stride = HD + 8, keys = config<HD>::keys;
  const auto slot = static_cast<std::uint32_t>(t.slot);
  const int c = static_cast<int>(threadIdx.x) % vecs;
  for (int r = static_cast<int>(threadIdx.x) / vecs; r < keys; r += threads / vecs) {
    const bool valid = key0 + r < key_end;
    const auto key = static_cast<std::uint32_t>(valid ? key0 + r : 0);
    ptx::cp16(Ks + r * stride + c * 8,
              a.kv.pool + a.kv.row_offset(slot, a.layer, 0, key) + col + c * 8, valid);
    ptx::cp16(Vs + r * stride + c * 8,
              a.kv.pool + a.kv.row_offset(slot, a.layer, 1, key) + col + c * 8, valid);
  }
}

}  // namespace r128

template <int HD>
__global__ void __launch_bounds__(r128::threads, 2)
    prefill_rows128_kernel(prefill_attention_args a, float scale_log2) {
  constexpr int keys = r128::config<HD>::keys, stages = r128::config<HD>::stages;
  // Rows an odd number of 16-byte units apart: the 8 rows of an ldmatrix
  // hit distinct banks.
  constexpr int stride = HD + 8;
  constexpr int stage_elems = 2 * keys * stride;  // one stage: K, then V
  __nv_bfloat16* const smem = ptx::dynamic_smem<__nv_bfloat16>();
  __nv_bfloat16* const Qs = smem;  // rows x stride, then the stages
  __nv_bfloat16* const KVs = smem + r128::rows * stride;
  const prefill_tile t = a.tiles[blockIdx.y];
  const std::uint32_t head = blockIdx.x, hd = HD;
  const std::uint32_t kvh = head / (a.shape.heads / a.shape.kv_heads);
  const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
  const int g = lane / 4, tq = lane % 4, lm = lane / 8, lr = lane % 8;
  const int w0 = warp * 32;  // the warp's first row in the tile
  // Positions of the warp's first and last existing rows; a warp past the
  // count has no rows and only helps with the copies.
  const bool has_rows = w0 < t.count;
  const int first_pos = t.pos + w0, last_pos = t.pos + min(w0 + 31, t.count - 1);
  const int key_end = t.pos + t.count;
  const int steps = (key_end + keys - 1) / keys;

  r128::stage_q<HD>(a, t, head * hd, Qs);
#pragma unroll
  for (int i = 0; i < stages - 1; ++i) {
    if (i < steps) {
      __nv_bfloat16* buf = KVs + i * stage_elems;
      r128::stage_kv<HD>(a, t, kvh * hd, i * keys, key_end, buf, buf + keys * stride);
    }
    ptx::commit();  // Q joins the first group
  }

  float o[2][HD / 8][4];
#pragma unroll
  for (int mt = 0; mt < 2; ++mt)
#pragma unroll
    for (int d = 0; d < HD / 8; ++d) o[mt][d][0] = o[mt][d][1] = o[mt][d][2] = o[mt][d][3] = 0.0f;
  // Running maximum (log2 domain) and per-lane partial row sums of the
  // lane's four rows: m[mt][h] is row w0 + 16 mt + 8 h + g.
  float m[2][2] = {{-INFINITY, -INFINITY}, {-INFINITY, -INFINITY}};
  float l[2][2] = {{0.0f, 0.0f}, {0.0f, 0.0f}};
  // ldmatrix row addresses. Q (A operand, x4): lane group lm names rows
  // + 8 (lm % 2), dims + 8 (lm / 2) of the m16 x k16 tile. K (B operand of
  // S = Q K^T, x4): rows of key tile j + lm / 2, dims + 8 (lm % 2). V (B
  // operand of O += P V, x4.trans): key rows + 8 (lm % 2) of dim tile
  // d + lm / 2.
  const __nv_bfloat16* qrow = Qs + (w0 + (lm % 2) * 8 + lr) * stride + (lm / 2) * 8;
  const int krow = (8 * (lm / 2) + lr) * stride + (lm % 2) * 8;
  const int vrow = ((lm % 2) * 8 + lr) * stride + (lm / 2) * 8;

  for (int i = 0; i < steps; ++i) {
    ptx::wait_group<stages - 2>();
    __syncthreads();  // step i's copies visible to all; step i - 1's buffer free
    if (const int next = i + stages - 1; next < steps) {
      __nv_bfloat16* buf = KVs + (next % stages) * stage_elems;
      r128::stage_kv<HD>(a, t, kvh * hd, next * keys, key_end, buf, buf + keys * stride);
    }
    ptx::commit();
    const int key0 = i * keys;
    if (!has_rows || key0 > last_pos) continue;  // warp-uniform: nothing visible
    const __nv_bfloat16* Ks = KVs + (i % stages) * stage_elems;
    const __nv_bfloat16* Vs = Ks + keys * stride;

    // S = Q K^T: k-steps outside, so each Q fragment pair is read once and
    // each K fragment feeds both m16 tiles.
    float s[2][keys / 8][4];
#pragma unroll
    for (int mt = 0; mt < 2; ++mt)
#pragma unroll
      for (int j = 0; j < keys / 8; ++j)
        s[mt][j][0] = s[mt][j][1] = s[mt][j][2] = s[mt][j][3] = 0.0f;
#pragma unroll
    for (int ks = 0; ks < HD / 16; ++ks) {
      std::uint32_t qa[2][4];
      ptx::ldmatrix_x4(qa[0], qrow + ks * 16);
      ptx::ldmatrix_x4(qa[1], qrow + 16 * stride + ks * 16);
#pragma unroll
      for (int j = 0; j < keys / 8; j += 2) {
        std::uint32_t b[4];
        ptx::ldmatrix_x4(b, Ks + krow + 8 * j * stride + ks * 16);
        ptx::mma_bf16(s[0][j], qa[0], b[0], b[1]);
        ptx::mma_bf16(s[0][j + 1], qa[0], b[2], b[3]);
        ptx::mma_bf16(s[1][j], qa[1], b[0], b[1]);
        ptx::mma_bf16(s[1][j + 1], qa[1], b[2], b[3]);
      }
    }
    // Causal mask, only where some key of the step lies past the warp's
    // first row.
    if (key0 + keys - 1 > first_pos) {
#pragma unroll
      for (int mt = 0; mt < 2; ++mt)
#pragma unroll
        for (int j = 0; j < keys / 8; ++j)
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            const int key = key0 + j * 8 + tq * 2 + (e & 1);
            const int qpos = first_pos + mt * 16 + (e / 2) * 8 + g;
            if (key > qpos) s[mt][j][e] = -INFINITY;
          }
    }
    // Row maxima over the quad, the new running maxima, the factor
    // alpha = 2^(m_old - m_new) that rescales what was accumulated so far,
    // and P, packed to bf16 pairs as soon as it is computed (p[mt][j][h]:
    // row 8 h + g of m16 tile mt, keys 8 j + 2 tq, + 1), which frees the
    // fp32 scores early.
    float alpha[2][2];
    std::uint32_t p[2][keys / 8][2];
#pragma unroll
    for (int mt = 0; mt < 2; ++mt)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        float mx = -INFINITY;
#pragma unroll
        for (int j = 0; j < keys / 8; ++j)
          mx = fmaxf(mx, fmaxf(s[mt][j][2 * h], s[mt][j][2 * h + 1]));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
        const float n = fmaxf(m[mt][h], mx * scale_log2);
        // Every row sees key 0 at step 0, so n is finite from then on; the
        // guard keeps a row with no visible key at 0 rather than NaN.
        const float base = n == -INFINITY ? 0.0f : n;
        alpha[mt][h] = exp2f(m[mt][h] - base);
        m[mt][h] = n;
        float sum = 0.0f;
#pragma unroll
        for (int j = 0; j < keys / 8; ++j) {
          const float p0 = exp2f(fmaf(s[mt][j][2 * h], scale_log2, -base));
          const float p1 = exp2f(fmaf(s[mt][j][2 * h + 1], scale_log2, -base));
          sum += p0 + p1;
          p[mt][j][h] = ptx::pack(p0, p1);
        }
        l[mt][h] = l[mt][h] * alpha[mt][h] + sum;  // the quad is summed at the end
      }
#pragma unroll
    for (int mt = 0; mt < 2; ++mt)
#pragma unroll
      for (int d = 0; d < HD / 8; ++d) {
        o[mt][d][0] *= alpha[mt][0];
        o[mt][d][1] *= alpha[mt][0];
        o[mt][d][2] *= alpha[mt][1];
        o[mt][d][3] *= alpha[mt][1];
      }
      // O += P V, 16 keys per k-step: the C fragments of score tiles 2 kk and
      // 2 kk + 1 are the A fragment of P; each V fragment feeds both m16 tiles.
#pragma unroll
    for (int kk = 0; kk < keys / 16; ++kk) {
      const std::uint32_t pa[2][4] = {
          {p[0][2 * kk][0], p[0][2 * kk][1], p[0][2 * kk + 1][0], p[0][2 * kk + 1][1]},
          {p[1][2 * kk][0], p[1][2 * kk][1], p[1][2 * kk + 1][0], p[1][2 * kk + 1][1]}};
#pragma unroll
      for (int d = 0; d < HD / 8; d += 2) {
        std::uint32_t b[4];
        ptx::ldmatrix_x4<true>(b, Vs + vrow + kk * 16 * stride + d * 8);
        ptx::mma_bf16(o[0][d], pa[0], b[0], b[1]);
        ptx::mma_bf16(o[0][d + 1], pa[0], b[2], b[3]);
        ptx::mma_bf16(o[1][d], pa[1], b[0], b[1]);
        ptx::mma_bf16(o[1][d + 1], pa[1], b[2], b[3]);
      }
    }
  }
  if (!has_rows) return;
  const std::uint32_t qw = a.shape.q_width();
#pragma unroll
  for (int mt = 0; mt < 2; ++mt)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      float sum = l[mt][h];
      sum += __shfl_xor_sync(0xffffffffu, sum, 1);
      sum += __shfl_xor_sync(0xffffffffu, sum, 2);
      const float inv = 1.0f / sum;
      const int r = w0 + mt * 16 + h * 8 + g;
      if (r >= t.count) continue;
      __nv_bfloat16* dst = a.out + static_cast<std::uint64_t>(t.row + r) * qw + head * hd + tq * 2;
#pragma unroll
      for (int d = 0; d < HD / 8; ++d)
        *reinterpret_cast<__nv_bfloat162*>(dst + d * 8) =
            __floats2bfloat162_rn(o[mt][d][2 * h] * inv, o[mt][d][2 * h + 1] * inv);
    }
}

}  // namespace accellm::device::cuda::prefill_mma

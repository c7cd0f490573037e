#include "device/cuda/check.hpp"
#include "device/cuda/prefill_attention.cuh"

#include <mma.h>

#include <algorithm>
#include <cmath>

namespace accellm::device::cuda {
namespace {

namespace wmma = nvcuda::wmma;
constexpr int tile = 64;  // query rows and key rows per tile
constexpr int warps = 4;  // warp w owns query rows [16w, 16w + 16)

struct smem_layout {
  std::size_t q, k, v, s, p, o, stats, total;
  __host__ __device__ explicit smem_layout(std::uint32_t hd) {
    const std::size_t mat = static_cast<std::size_t>(tile) * hd;
    q = 0;
    k = q + mat * 2;
    v = k + mat * 2;
    s = v + mat * 2;
    p = s + tile * tile * 4;
    o = p + tile * tile * 2;
    stats = o + mat * 4;
    total = stats + 3 * tile * 4;
  }
};

// Copies 64 rows of head_dim bf16 (16-byte vectors); rows past `valid` are zero.
template <class RowPtr>
__device__ void load_rows(__nv_bfloat16* dst, std::uint32_t hd, int valid, const RowPtr& row_ptr) {
  const int vecs = static_cast<int>(hd / 8);
  for (int e = threadIdx.x; e < tile * vecs; e += warps * 32) {
    const int r = e / vecs, c = e % vecs;
    uint4 val = make_uint4(0, 0, 0, 0);
    if (r < valid) val = reinterpret_cast<const uint4*>(row_ptr(r))[c];
    reinterpret_cast<uint4*>(dst + static_cast<std::size_t>(r) * hd)[c] = val;
  }
}

struct q_rows {
  const __nv_bfloat16* base;
  std::uint32_t stride;
  __device__ const __nv_bfloat16* operator()(int r) const {
    return base + static_cast<std::uint64_t>(r) * stride;
  }
};
struct kv_rows {
  const kv_pool_view* kv;
  std::uint32_t slot, layer, kind, first, col;
  __device__ const __nv_bfloat16* operator()(int r) const {
    return kv->pool + kv->row_offset(slot, layer, kind, first + static_cast<std::uint32_t>(r)) +
           col;
  }
};

// Online-softmax update of the warp's 16 rows for one key tile: S -> P, the
// running max and sum, and O rescaled by exp(old max - new max).
__device__ void softmax_rows(float* S, __nv_bfloat16* P, float* O, float* m, float* l,
                             std::uint32_t hd, int warp, int lane, int q_pos0, int key0,
                             int key_end, float scale) {
  const int r = warp * 16 + lane / 2;
  const int c0 = (lane % 2) * 32;
  const int qp = q_pos0 + r;
  float* srow = S + r * tile;
  float mx = -INFINITY;
  for (int c = c0; c < c0 + 32; ++c) {
    const int t = key0 + c;
    const float v = (t <= qp && t < key_end) ? srow[c] * scale : -INFINITY;
    srow[c] = v;
    mx = fmaxf(mx, v);
  }
  mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
  const float m_new = fmaxf(m[r], mx);
  float sum = 0.0f;
  for (int c = c0; c < c0 + 32; ++c) {
    const float p = m_new == -INFINITY ? 0.0f : __expf(srow[c] - m_new);
    P[r * tile + c] = __float2bfloat16(p);
    sum += p;
  }
  sum += __shfl_xor_sync(0xffffffffu, sum, 1);
  const float alpha = m_new == -INFINITY ? 1.0f : __expf(m[r] - m_new);
  __syncwarp();
  if (lane % 2 == 0) {
    l[r] = l[r] * alpha + sum;
    m[r] = m_new;
  }
  // Each lane pair rescales its row of O.
  float* orow = O + static_cast<std::size_t>(r) * hd;
  for (std::uint32_t j = lane % 2; j < hd; j += 2) orow[j] *= alpha;
}

__global__ void __launch_bounds__(warps * 32)
    prefill_kernel(prefill_attention_args a, float scale) {
  extern __shared__ __align__(128) unsigned char raw[];
  const std::uint32_t hd = a.shape.head_dim;
  const smem_layout lay(hd);
  auto* Q = reinterpret_cast<__nv_bfloat16*>(raw + lay.q);
  auto* K = reinterpret_cast<__nv_bfloat16*>(raw + lay.k);
  auto* V = reinterpret_cast<__nv_bfloat16*>(raw + lay.v);
  auto* S = reinterpret_cast<float*>(raw + lay.s);
  auto* P = reinterpret_cast<__nv_bfloat16*>(raw + lay.p);
  auto* O = reinterpret_cast<float*>(raw + lay.o);
  float* m = reinterpret_cast<float*>(raw + lay.stats);
  float* l = m + tile;
  const prefill_tile t = a.tiles[blockIdx.x];
  const std::uint32_t head = blockIdx.y;
  const std::uint32_t kvh = head / (a.shape.heads / a.shape.kv_heads);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;

  const q_rows qc{a.q + static_cast<std::uint64_t>(t.row) * a.shape.q_width() + head * hd,
                  a.shape.q_width()};
  load_rows(Q, hd, t.count, qc);
  for (std::uint32_t e = threadIdx.x; e < tile * hd; e += warps * 32) O[e] = 0.0f;
  if (threadIdx.x < tile) {
    m[threadIdx.x] = -INFINITY;
    l[threadIdx.x] = 0.0f;
  }
  const int key_end = t.pos + t.count;
  for (int key0 = 0; key0 < key_end; key0 += tile) {
    __syncthreads();  // previous tile's K/V reads are done
    const int valid = min(tile, key_end - key0);
    const kv_rows kc{&a.kv, static_cast<std::uint32_t>(t.slot), a.layer,
                     0,     static_cast<std::uint32_t>(key0),   kvh * hd};
    load_rows(K, hd, valid, kc);
    kv_rows vc = kc;
    vc.kind = 1;
    load_rows(V, hd, valid, vc);
    __syncthreads();
    // S = Q K^T for the warp's 16 rows.
    for (int j = 0; j < tile / 16; ++j) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
      wmma::fill_fragment(acc, 0.0f);
      for (std::uint32_t kk = 0; kk < hd / 16; ++kk) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> fa;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major> fb;
        wmma::load_matrix_sync(fa, Q + warp * 16 * hd + kk * 16, hd);
        wmma::load_matrix_sync(fb, K + j * 16 * hd + kk * 16, hd);
        wmma::mma_sync(acc, fa, fb, acc);
      }
      wmma::store_matrix_sync(S + warp * 16 * tile + j * 16, acc, tile, wmma::mem_row_major);
    }
    __syncwarp();
    softmax_rows(S, P, O, m, l, hd, warp, lane, t.pos, key0, key_end, scale);
    __syncwarp();
    // O += P V for the warp's 16 rows.
    for (std::uint32_t j = 0; j < hd / 16; ++j) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
      float* o_tile = O + warp * 16 * hd + j * 16;
      wmma::load_matrix_sync(acc, o_tile, hd, wmma::mem_row_major);
      for (int kk = 0; kk < tile / 16; ++kk) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> fa;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::row_major> fb;
        wmma::load_matrix_sync(fa, P + warp * 16 * tile + kk * 16, tile);
        wmma::load_matrix_sync(fb, V + kk * 16 * hd + j * 16, hd);
        wmma::mma_sync(acc, fa, fb, acc);
      }
      wmma::store_matrix_sync(o_tile, acc, hd, wmma::mem_row_major);
    }
    __syncwarp();
  }
  __syncthreads();
  for (std::uint32_t e = threadIdx.x; e < tile * hd; e += warps * 32) {
    const int r = static_cast<int>(e / hd);
    if (r >= t.count) continue;
    const std::uint32_t j = e % hd;
    a.out[static_cast<std::uint64_t>(t.row + r) * a.shape.q_width() + head * hd + j] =
        __float2bfloat16(O[e] / l[r]);
  }
}

}  // namespace

status prefill_attention(const prefill_attention_args& a, cudaStream_t s) {
  if (a.n_tiles == 0) return {};
  const std::uint32_t hd = a.shape.head_dim;
  if (hd == 0 || hd % 16 != 0 || hd > 256)
    return fail(errc::invalid_argument,
                "prefill_attention: head_dim must be a multiple of 16 up to 256");
  if (a.shape.kv_heads == 0 || a.shape.heads % a.shape.kv_heads != 0)
    return fail(errc::invalid_argument, "prefill_attention: kv_heads must divide heads");
  if (!a.q || !a.out || !a.tiles || !a.kv.pool || !a.kv.tables)
    return fail(errc::invalid_argument, "prefill_attention: null pointer");
  if (a.shape.kv_width() != a.kv.kv_width || a.layer >= a.kv.layers)
    return fail(errc::invalid_argument, "prefill_attention: shape does not match the KV pool");
  const smem_layout lay(hd);
  ACCELLM_CUDA_TRY(cudaFuncSetAttribute(prefill_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        static_cast<int>(lay.total)));
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  prefill_kernel<<<dim3(a.n_tiles, a.shape.heads), warps * 32, lay.total, s>>>(a, scale);
  ACCELLM_CUDA_TRY(cudaGetLastError());
  return {};
}

}  // namespace accellm::device::cuda

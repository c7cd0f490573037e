// prefill_tma: the tma128 prefill kernel (prefill_attention.cuh), wgmma128's
// products and softmax fed by Hopper's TMA from a producer warpgroup: the
// warp-specialised shape of FlashAttention-3; and its variants tma128pp and
// tma128n (below), the same body (attend) made generic over the step's keys
// and where Q lives. Device code only:
// prefill_attention_wgmma.cu launches it and the host emulator
// (tests/device/cuda/emu/) runs this same source on the CPU.
//
// Why: on the H100 wgmma128 ran 13-36% slower than rows128, which Nsight
// Compute found latency-bound at 8 warps an SM. In wgmma128 the 256
// threads that issue the products also issue every 16-byte cp.async of the
// K/V tiles (paged addresses, 8 copies a thread a step) and meet at a
// block barrier every step, so one warpgroup's softmax holds the other's
// products back. Here a third warpgroup does all the copying: one thread issues
// a step's K/V as TMA boxes (16 keys, one page, by 64 head dims each) into
// a free stage and announces its bytes on the stage's `full` barrier (the
// producer's warpgroup gives its registers to the consumers: setmaxnreg); the
// two consumer warpgroups wait on that barrier alone and give the stage
// back on its `empty` barrier once the products reading it have retired.
// No block barrier after the start: each warpgroup runs at its own pace.
//
// Shared memory, 1024-byte aligned: `stages` stages of [K | V], each tile
// HD / 64 column blocks of [64 keys][64 dims] as the TMA's 128-byte
// swizzle lays them out (wgmma_layout.cuh), 16 KB a stage per 64 dims; then
// the barriers. The same tile serves both products:
// - K as the K-major B of S = Q K^T (descriptor_sw128, k16 slice s of
//   column block c at c * 8 KB + 32 s bytes);
// - V as the MN-major B of O += P V (descriptor_sw128_mn, keys 16 kk .. at
//   2 KB kk, the next 64 dims 8 KB further).
// Q's A fragments stay in registers, as in wgmma128; P too.
//
// Pages: a step's 64 keys are four 16-key pages of the request's block
// table, each a box at its pool row (kv_pool_view::page_row) of the pool
// seen as a [rows x kv_width] matrix (encode_pool_map's tensor map). A page past the tile's last
// key repeats the last page the tile sees: its keys are masked, and it holds finite values (as does
// the rest of a page past a request's last position: the pool is zeroed when it is allocated and
// written only with KV since).
//
// Phases: step j uses stage j % stages; its `full` barrier completes its
// phase j / stages when the step's bytes have landed, and its `empty`
// barrier (256 arrivals, every consumer thread) its phase j / stages when
// both warpgroups are done with it. The producer refills the stage for step
// j only after phase j / stages - 1 of `empty`. A consumer thread arrives
// for step j once, after it waited on `full` for step j (so its arrival
// cannot count towards the stage's previous phase) and after the last
// product reading step j retired: for a step its rows use, P_j V_j, issued
// at step j + 1; for a step its rows do not see (the first warpgroup's
// causal tail, a warpgroup with no rows), at once.
//
// tma128pp (PINGPONG): the same kernel with FlashAttention-3's ping-pong
// between the two consumer warpgroups. Left alone, both wait for the same
// stage, issue their products together and then both compute softmax while
// the tensor cores idle. Here they take turns to issue, through two named
// barriers (ids 1 and 2, 256 threads: a warpgroup's bar.sync and the other's
// bar.arrive): warpgroup w waits for its turn (bar.sync on 1 + w), issues
// the step's S = Q K^T and the previous step's P V, and hands the turn over
// (bar.arrive on 2 - w) before it waits for them; so the products alternate
// between the warpgroups, and one's softmax runs while the other's
// products do. The first warpgroup goes first (the second arrives on its
// barrier once at the start); every warpgroup takes one turn a step, with or
// without products (a causal tail, a warpgroup with no rows), so the turns
// stay paired; the first warpgroup's last bar.sync takes the second's last
// arrival, so no barrier is left part-way at the end. On the H100 it is
// correct but 3-5% slower than tma128 (docs/cuda-runs.md): the timed choice
// keeps it as a candidate and picks tma128 there.
//
// tma128n: tma128 with FlashAttention-3's configuration at head_dim 128:
// 128 keys a step (ring128) and Q in shared memory (q_in_smem). Nsight
// Compute found tma128 latency-bound (tensor pipe 29% busy): a step's fixed
// costs (the `full` wait, the row maxima's shuffles, rescaling o, the
// product waits) bought only 64 keys. Here S = Q K^T is m64n128 with both
// operands read by the tensor cores from shared memory (wg::mma_ss_n128, as
// in skinny_gemm_tma; the first k-step overwrites s, scale-d 0), and P V
// eight k-steps of m64nHDk16, P in registers: S 64 floats, P 32 registers
// and O 64 floats a thread fit the consumers' 240. Q's tile is [128 rows]
// [HD] as HD / 64 column blocks of [128 rows][64 dims] laid out as a TMA
// box with the 128-byte swizzle would be (16-byte chunk c of row r at chunk
// c ^ r % 8), after the stages. Each consumer warpgroup copies its own 64
// rows once, with 16-byte cp.async (zero past the tile's count, as
// load_q), then fences the async proxy and meets at its named barrier 3 + w
// (128 threads) before its first product. Not by TMA: that would need a
// second tensor map, of the Q buffer, which changes with every batch,
// encoded on the host at every launch; Q is read once per block (32 KB
// against 64 KB of K/V a step), so the copies cost little and overlap the
// producer's first loads. Hence q must be 16-byte aligned (prefill_attention
// refuses it otherwise, as for rows128). Stages: as many as fit in 227 KB
// beside Q, at most 4: 3 at HD 128 (Q 32 KB + 3 x 64 KB), 4 at 64. Not
// FlashAttention-3's 2: it releases K and V on pipelines of their own,
// while here (tma128's protocol) a stage is held from S_j until P_j V_j
// retires at step j + 1, so two are in use at every step and only a third
// lets step j + 1's loads run during step j.
//
// Built only for sm_90a (ACCELLM_WGMMA); elsewhere the kernel is empty and
// the launcher refuses it (prefill_wgmma_built()).
#pragma once

#include "device/cuda/prefill_attention.cuh"
#include "device/cuda/prefill_rows.cuh"
#include "device/cuda/prefill_wgmma.cuh"
#include "device/cuda/ptx.cuh"
#include "device/cuda/tma.cuh"
#include "device/cuda/wgmma.cuh"

#include <cuda_bf16.h>

#include <cstdint>

namespace accellm::device::cuda::prefill_tma {

constexpr int keys = prefill_wgmma::keys;  // tma128's step: four 16-key pages
constexpr int page = 16;                   // keys per TMA box: kv_pool_view::block_tokens

struct shape {
  static constexpr int consumers = 256;            // two warpgroups
  static constexpr int threads = consumers + 128;  // and the producer's
  static constexpr int producer_group = 2;         // its warpgroup index
  // setmaxnreg: a launch of 384 threads gives each 168 registers; the
  // producer needs few, the consumers' accumulators and fragments many
  // (with 168 ptxas spilled and serialised the products, C7512). 128 x 24 +
  // 256 x 240 fits the 64 K registers of an SM (FlashAttention-3's split).
  static constexpr int producer_registers = 24;
  static constexpr int consumer_registers = 240;
  static constexpr int stages = 4;
  static constexpr int rows = 128;
  static constexpr int align = 1024;           // the 128-byte swizzle's alignment
  static constexpr unsigned turn_barrier = 1;  // tma128pp: warpgroup w's turn is barrier 1 + w
  static constexpr unsigned q_barrier = 3;     // tma128n: warpgroup w's Q landed, barrier 3 + w
  static constexpr int max_smem = 227 * 1024;  // a block's dynamic shared memory on sm_90
};

/// A kernel's ring of K/V stages: `Stages` stages of [K | V] for steps of
/// `Keys` keys, each tile HD / 64 column blocks of [Keys keys][64 dims].
template <int HD, int Keys, int Stages>
struct ring {
  static constexpr int keys = Keys, stages = Stages;
  static constexpr int block_bytes = Keys * 64 * 2;
  static constexpr int tile_bytes = HD / 64 * block_bytes;
  static constexpr int stage_bytes = 2 * tile_bytes;
  static constexpr int bytes = Stages * stage_bytes;
};
template <int HD>
using ring64 = ring<HD, keys, shape::stages>;  // tma128, tma128pp

/// tma128n's Q tile: HD / 64 column blocks of [128 rows][64 dims], laid out
/// as the 128-byte swizzle lays out a TMA box (wgmma_layout.cuh).
template <int HD>
struct q_tile_layout {
  static constexpr int block_bytes = shape::rows * 64 * 2;
  static constexpr int bytes = HD / 64 * block_bytes;
};

/// tma128n's ring: 128-key stages, as many as fit beside Q (at most 4).
constexpr int keys_n = 128;
template <int HD>
constexpr int stages_n() {
  constexpr int fit = (shape::max_smem - shape::align - q_tile_layout<HD>::bytes - 2 * 4 * 8) /
                      ring<HD, keys_n, 1>::stage_bytes;
  return fit < 4 ? fit : 4;
}
template <int HD>
using ring128 = ring<HD, keys_n, stages_n<HD>()>;

/// Dynamic shared memory a kernel asks for: room to align the stages, the
/// stages, `q_bytes` of Q, and a `full` and an `empty` barrier per stage.
template <class Ring, int q_bytes>
constexpr std::size_t smem_bytes_of() {
  return static_cast<std::size_t>(shape::align + Ring::bytes + q_bytes + 2 * Ring::stages * 8);
}
template <int HD>
constexpr std::size_t smem_bytes() {  // tma128, tma128pp
  return smem_bytes_of<ring64<HD>, 0>();
}
template <int HD>
constexpr std::size_t smem_bytes_n() {  // tma128n
  return smem_bytes_of<ring128<HD>, q_tile_layout<HD>::bytes>();
}
static_assert(smem_bytes_n<128>() <= shape::max_smem && ring128<128>::stages == 3);
static_assert(smem_bytes_n<64>() <= shape::max_smem && ring128<64>::stages == 4);

/// What the kernel takes: the pool as a 2-D tensor of [kv_rows x kv_width]
/// bf16, boxes of 64 columns x 16 rows with the 128-byte swizzle, and the
/// attention's arguments (a.kv is the same pool).
struct args {
  tma::tensor_map kv_map;
  prefill_attention_args a;
};

#if ACCELLM_WGMMA
/// S = Q K^T for the 64 keys of the K tile at `k` (s zeroed first), one
/// group: k-step ks reads slice ks % 4 of column block ks / 4.
template <int HD>
__device__ __forceinline__ void issue_scores(float (&s)[keys / 8][4],
                                             const std::uint32_t (&qa)[HD / 16][4],
                                             const unsigned char* k) {
  prefill_wgmma::issue_scores_at<HD>(s, qa, [&](int ks) {
    return wg::descriptor_sw128(k + ks / 4 * ring64<HD>::block_bytes + ks % 4 * 32);
  });
}

/// S = Q K^T for the 128 keys of the K tile at `k`, Q's 64 rows at `q` in
/// shared memory (tma128n), one group: k-step ks reads slice ks % 4 of
/// column block ks / 4 of both; the first overwrites s (scale-d 0).
template <int HD>
__device__ __forceinline__ void issue_scores_ss(float (&s)[keys_n / 8][4], const unsigned char* q,
                                                const unsigned char* k) {
  wg::pin(s);
  wg::fence();
#pragma unroll
  for (int ks = 0; ks < HD / 16; ++ks)
    wg::mma_ss_n128(
        s, wg::descriptor_sw128(q + ks / 4 * q_tile_layout<HD>::block_bytes + ks % 4 * 32),
        wg::descriptor_sw128(k + ks / 4 * ring128<HD>::block_bytes + ks % 4 * 32), ks > 0);
  wg::commit();
}

/// O += P V for the keys of the V tile at `v`, one group: k-step kk reads
/// its 16 key rows, the next 64 dims a column block further.
template <int HD, class R>
__device__ __forceinline__ void issue_values(float (&o)[HD / 8][4],
                                             const std::uint32_t (&pa)[R::keys / 16][4],
                                             const unsigned char* v) {
  prefill_wgmma::issue_values_at<HD>(
      o, pa, [&](int kk) { return wg::descriptor_sw128_mn(v + kk * 16 * 128, R::block_bytes); });
}

/// tma128's Q: the lane's A fragments in registers, as wgmma128's.
template <int HD>
struct q_in_registers {
  static constexpr int bytes = 0;  // of shared memory
  std::uint32_t qa[HD / 16][4];
  __device__ __forceinline__ void load(const prefill_attention_args& a,
                                       const prefill_rows::lane_rows& l, unsigned char*) {
    prefill_rows::load_q<HD>(qa, a, l.t, l.head, l.r0, l.r1, l.tq);
  }
  __device__ __forceinline__ void scores(float (&s)[keys / 8][4], const unsigned char* k) const {
    issue_scores<HD>(s, qa, k);
  }
};

/// tma128n's Q: the tile's rows in shared memory (q_tile_layout), each
/// warpgroup copying its own 64 (zero past the tile's count) with cp.async,
/// then fencing the async proxy and meeting at its barrier (shape::q_barrier)
/// before its first product reads them.
template <int HD>
struct q_in_smem {
  using layout = q_tile_layout<HD>;
  static constexpr int bytes = layout::bytes;
  const unsigned char* rows = nullptr;  // the warpgroup's 64 rows
  __device__ __forceinline__ void load(const prefill_attention_args& a,
                                       const prefill_rows::lane_rows& l, unsigned char* tile) {
    constexpr int chunks = HD / 8;  // 16-byte chunks a row
    const int wg = l.warp / 4, first = wg * 64;
    const std::uint32_t qw = a.shape.q_width();
    const __nv_bfloat16* q = a.q + static_cast<std::uint64_t>(l.t.row) * qw + l.head * HD;
#pragma unroll
    for (int i = 0; i < 64 * chunks / 128; ++i) {
      // Consecutive threads copy consecutive chunks of a row.
      const int e = i * 128 + static_cast<int>(threadIdx.x % 128);
      const int r = first + e / chunks, ch = e % chunks;
      const bool valid = r < l.t.count;
      unsigned char* dst =
          tile + ch / 8 * layout::block_bytes + r * 128 + ((ch % 8) ^ (r % 8)) * 16;
      ptx::cp16(reinterpret_cast<__nv_bfloat16*>(dst),
                q + (valid ? static_cast<std::uint64_t>(r) * qw + ch * 8 : 0), valid);
    }
    ptx::commit();
    ptx::wait_group<0>();
    wg::proxy_fence();
    ptx::named_sync(shape::q_barrier + static_cast<unsigned>(wg), 128);
    rows = tile + first * 128;
  }
  __device__ __forceinline__ void scores(float (&s)[keys_n / 8][4], const unsigned char* k) const {
    issue_scores_ss<HD>(s, rows, k);
  }
};

/// The producer (one thread): every step's K and V pages into its stage.
template <int HD, class R>
__device__ void produce(const args& p, const prefill_tile& t, std::uint32_t kvh,
                        unsigned char* stages, std::uint64_t* full, std::uint64_t* empty, int steps,
                        int key_end) {
  const prefill_attention_args& a = p.a;
  const std::int32_t* table = a.kv.tables + static_cast<std::uint64_t>(t.slot) * a.kv.table_stride;
  const int last_page = (key_end - 1) / page;
  for (int j = 0; j < steps; ++j) {
    const int st = j % R::stages;
    if (j >= R::stages) tma::wait(empty + st, static_cast<std::uint32_t>(j / R::stages - 1) & 1u);
    unsigned char* k = stages + st * R::stage_bytes;
    unsigned char* v = k + R::tile_bytes;
    tma::arrive_expect_tx(full + st, R::stage_bytes);
#pragma unroll
    for (int pg = 0; pg < R::keys / page; ++pg) {
      const int at = min(j * (R::keys / page) + pg, last_page);
      const auto block = static_cast<std::uint64_t>(table[at]);
      const auto k_row = static_cast<int>(a.kv.page_row(block, a.layer, 0));
      const auto v_row = static_cast<int>(a.kv.page_row(block, a.layer, 1));
#pragma unroll
      for (int c = 0; c < HD / 64; ++c) {
        const int col = static_cast<int>(kvh) * HD + c * 64;
        const int to = c * R::block_bytes + pg * page * 128;
        tma::load_2d(k + to, &p.kv_map, col, k_row, full + st);
        tma::load_2d(v + to, &p.kv_map, col, v_row, full + st);
      }
    }
  }
}

/// The kernels' body: ring R of K/V stages, Q as Q (q_in_registers,
/// q_in_smem; its tile after the stages), ping-pong when PINGPONG.
template <int HD, class R, class Q, bool PINGPONG>
__device__ __forceinline__ void attend(const args& p, float scale_log2) {
  const prefill_attention_args& a = p.a;
  unsigned char* const raw = ptx::dynamic_smem<unsigned char>();
  unsigned char* const smem =
      raw + (shape::align - __cvta_generic_to_shared(raw) % shape::align) % shape::align;
  auto* full = reinterpret_cast<std::uint64_t*>(smem + R::bytes + Q::bytes);
  std::uint64_t* empty = full + R::stages;
  if (threadIdx.x == 0) {
    for (int st = 0; st < R::stages; ++st) {
      tma::init(full + st, 1);
      tma::init(empty + st, shape::consumers);
    }
    tma::fence_init();
  }
  __syncthreads();  // the barriers are initialised before anyone uses them; the last block barrier

  const prefill_tile t = a.tiles[blockIdx.y];
  const std::uint32_t head = blockIdx.x;
  const std::uint32_t kvh = head / (a.shape.heads / a.shape.kv_heads);
  const int key_end = t.pos + t.count;
  const int steps = (key_end + R::keys - 1) / R::keys;
  auto k_of = [&](int j) { return smem + j % R::stages * R::stage_bytes; };
  auto wait_full = [&](int j) {
    tma::wait(full + j % R::stages, static_cast<std::uint32_t>(j / R::stages) & 1u);
  };
  auto release = [&](int j) { tma::arrive(empty + j % R::stages); };

  // The warpgroup index through a shuffle, so that ptxas sees it uniform.
  if (__shfl_sync(0xffffffffu, static_cast<int>(threadIdx.x) / 128, 0) == shape::producer_group) {
    wg::shrink_registers<shape::producer_registers>();
    if (threadIdx.x == shape::consumers)
      produce<HD, R>(p, t, kvh, smem, full, empty, steps, key_end);
    return;
  }
  wg::grow_registers<shape::consumer_registers>();

  Q q;
  float o[HD / 8][4];
  // Warp w (0..7) holds rows 16 w .. 16 w + 15 of the tile, so warpgroup
  // w / 4 holds rows 64 (w / 4) .. in wgmma's layout (as in wgmma128).
  const prefill_rows::lane_rows l = prefill_rows::begin<HD>(
      a, o, [&](const prefill_rows::lane_rows& r) { q.load(a, r, smem + R::bytes); });
  const int tq = l.tq, qpos0 = l.qpos0, qpos1 = l.qpos1;
  // Uniform across the warp through a shuffle (wgmma128 says why).
  const int wg = __shfl_sync(0xffffffffu, l.warp / 4, 0);
  const int wg_row0 = wg * shape::rows / 2;
  const int wg_key_end = t.pos + (t.count < wg_row0 + 64 ? t.count : wg_row0 + 64);
  const int wg_steps = t.count > wg_row0 ? (wg_key_end + R::keys - 1) / R::keys : 0;
  prefill_rows::running run;

  // tma128pp's turns (above); no-ops in tma128 and tma128n.
  const auto my_turn = [&] {
    if constexpr (PINGPONG) ptx::named_sync(shape::turn_barrier + wg, shape::consumers);
  };
  const auto hand_over = [&] {
    if constexpr (PINGPONG) ptx::named_arrive(shape::turn_barrier + 1 - wg, shape::consumers);
  };
  if (wg == 1) hand_over();  // the first warpgroup's first turn

  float s[R::keys / 8][4] = {};       // tma128n's first product overwrites what it holds
  std::uint32_t pa[R::keys / 16][4];  // P of the step before, multiplied at this one
  for (int j = 0; j < steps; ++j) {
    wait_full(j);
    my_turn();
    const int key0 = j * R::keys;
    const bool unmasked = key0 + R::keys <= t.pos + wg_row0 + 1;
    const auto values_of = [&](int i) {
      return [&, i] { issue_values<HD, R>(o, pa, k_of(i) + R::tile_bytes); };
    };
    if (j < wg_steps) {
      // V_(j-1) read once its P V retired: the stage is done with here.
      prefill_wgmma::overlapped_step<HD>(
          j, s, pa, o, run, unmasked, key0, qpos0, qpos1, key_end, tq, scale_log2,
          [&] { q.scores(s, k_of(j)); }, values_of(j - 1), [&] { release(j - 1); }, hand_over);
    } else if (j == wg_steps && j > 0) {  // these rows' last P V
      prefill_wgmma::last_values<HD>(o, values_of(j - 1), hand_over);
      release(j - 1);
      release(j);  // a step these rows do not see
    } else {
      hand_over();
      release(j);
    }
  }
  if (wg == 0) my_turn();                // takes the second warpgroup's last hand-over
  if (wg_steps == steps && steps > 0) {  // the last step's P V
    prefill_wgmma::last_values<HD>(
        o, [&] { issue_values<HD, R>(o, pa, k_of(steps - 1) + R::tile_bytes); });
    release(steps - 1);
  }
  prefill_rows::store<HD>(o, run, a, t, head, l.r0, l.r1, tq);
}
#endif

template <int HD, bool PINGPONG = false>
__global__ void __launch_bounds__(shape::threads, 1)
    tma128_kernel(const __grid_constant__ args p, float scale_log2) {
#if ACCELLM_WGMMA
  attend<HD, ring64<HD>, q_in_registers<HD>, PINGPONG>(p, scale_log2);
#else
  (void)p;
  (void)scale_log2;
#endif
}

template <int HD>
__global__ void __launch_bounds__(shape::threads, 1)
    tma128n_kernel(const __grid_constant__ args p, float scale_log2) {
#if ACCELLM_WGMMA
  attend<HD, ring128<HD>, q_in_smem<HD>, false>(p, scale_log2);
#else
  (void)p;
  (void)scale_log2;
#endif
}

}  // namespace accellm::device::cuda::prefill_tma

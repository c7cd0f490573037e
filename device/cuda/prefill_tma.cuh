// prefill_tma: the tma128 prefill kernel (prefill_attention.cuh), wgmma128's
// products and softmax fed by Hopper's TMA from a producer warpgroup: the
// warp-specialised shape of FlashAttention-3. Device code only:
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
// correct but 3-5% slower than tma128 (docs/cuda.md): the timed choice
// keeps it as a candidate and picks tma128 there.
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

constexpr int keys = prefill_wgmma::keys;  // per step: four 16-key pages
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
};

/// Bytes of one [64 keys][64 dims] column block, of a K or V tile, of a stage.
constexpr int block_bytes = keys * 64 * 2;
template <int HD>
constexpr int tile_bytes = HD / 64 * block_bytes;
template <int HD>
constexpr int stage_bytes = 2 * tile_bytes<HD>;

/// Dynamic shared memory the kernel asks for: room to align the stages,
/// the stages, and a `full` and an `empty` barrier per stage.
template <int HD>
constexpr std::size_t smem_bytes() {
  return static_cast<std::size_t>(shape::align + shape::stages * stage_bytes<HD> +
                                  2 * shape::stages * 8);
}

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
  prefill_wgmma::issue_scores_at<HD>(
      s, qa, [&](int ks) { return wg::descriptor_sw128(k + ks / 4 * block_bytes + ks % 4 * 32); });
}

/// O += P V for the 64 keys of the V tile at `v`, one group: k-step kk
/// reads its 16 key rows, the next 64 dims a column block further.
template <int HD>
__device__ __forceinline__ void issue_values(float (&o)[HD / 8][4],
                                             const std::uint32_t (&pa)[keys / 16][4],
                                             const unsigned char* v) {
  prefill_wgmma::issue_values_at<HD>(
      o, pa, [&](int kk) { return wg::descriptor_sw128_mn(v + kk * 16 * 128, block_bytes); });
}

/// The producer (one thread): every step's K and V pages into its stage.
template <int HD>
__device__ void produce(const args& p, const prefill_tile& t, std::uint32_t kvh,
                        unsigned char* stages, std::uint64_t* full, std::uint64_t* empty, int steps,
                        int key_end) {
  const prefill_attention_args& a = p.a;
  const std::int32_t* table = a.kv.tables + static_cast<std::uint64_t>(t.slot) * a.kv.table_stride;
  const int last_page = (key_end - 1) / page;
  for (int j = 0; j < steps; ++j) {
    const int st = j % shape::stages;
    if (j >= shape::stages)
      tma::wait(empty + st, static_cast<std::uint32_t>(j / shape::stages - 1) & 1u);
    unsigned char* k = stages + st * stage_bytes<HD>;
    unsigned char* v = k + tile_bytes<HD>;
    tma::arrive_expect_tx(full + st, stage_bytes<HD>);
#pragma unroll
    for (int pg = 0; pg < keys / page; ++pg) {
      const int at = min(j * (keys / page) + pg, last_page);
      const auto block = static_cast<std::uint64_t>(table[at]);
      const auto k_row = static_cast<int>(a.kv.page_row(block, a.layer, 0));
      const auto v_row = static_cast<int>(a.kv.page_row(block, a.layer, 1));
#pragma unroll
      for (int c = 0; c < HD / 64; ++c) {
        const int col = static_cast<int>(kvh) * HD + c * 64;
        const int to = c * block_bytes + pg * page * 128;
        tma::load_2d(k + to, &p.kv_map, col, k_row, full + st);
        tma::load_2d(v + to, &p.kv_map, col, v_row, full + st);
      }
    }
  }
}
#endif

template <int HD, bool PINGPONG = false>
__global__ void __launch_bounds__(shape::threads, 1)
    tma128_kernel(const __grid_constant__ args p, float scale_log2) {
#if ACCELLM_WGMMA
  const prefill_attention_args& a = p.a;
  unsigned char* const raw = ptx::dynamic_smem<unsigned char>();
  unsigned char* const smem =
      raw + (shape::align - __cvta_generic_to_shared(raw) % shape::align) % shape::align;
  auto* full = reinterpret_cast<std::uint64_t*>(smem + shape::stages * stage_bytes<HD>);
  std::uint64_t* empty = full + shape::stages;
  if (threadIdx.x == 0) {
    for (int st = 0; st < shape::stages; ++st) {
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
  const int steps = (key_end + keys - 1) / keys;
  auto k_of = [&](int j) { return smem + j % shape::stages * stage_bytes<HD>; };
  auto wait_full = [&](int j) {
    tma::wait(full + j % shape::stages, static_cast<std::uint32_t>(j / shape::stages) & 1u);
  };
  auto release = [&](int j) { tma::arrive(empty + j % shape::stages); };

  // The warpgroup index through a shuffle, so that ptxas sees it uniform.
  if (__shfl_sync(0xffffffffu, static_cast<int>(threadIdx.x) / 128, 0) == shape::producer_group) {
    wg::shrink_registers<shape::producer_registers>();
    if (threadIdx.x == shape::consumers) produce<HD>(p, t, kvh, smem, full, empty, steps, key_end);
    return;
  }
  wg::grow_registers<shape::consumer_registers>();

  std::uint32_t qa[HD / 16][4];
  float o[HD / 8][4];
  // Warp w (0..7) holds rows 16 w .. 16 w + 15 of the tile, so warpgroup
  // w / 4 holds rows 64 (w / 4) .. in wgmma's layout (as in wgmma128).
  const prefill_rows::lane_rows l = prefill_rows::begin<HD>(a, qa, o);
  const int tq = l.tq, qpos0 = l.qpos0, qpos1 = l.qpos1;
  // Uniform across the warp through a shuffle (wgmma128 says why).
  const int wg = __shfl_sync(0xffffffffu, l.warp / 4, 0);
  const int wg_row0 = wg * shape::rows / 2;
  const int wg_key_end = t.pos + (t.count < wg_row0 + 64 ? t.count : wg_row0 + 64);
  const int wg_steps = t.count > wg_row0 ? (wg_key_end + keys - 1) / keys : 0;
  prefill_rows::running run;

  // tma128pp's turns (above); no-ops in tma128.
  const auto my_turn = [&] {
    if constexpr (PINGPONG) ptx::named_sync(shape::turn_barrier + wg, shape::consumers);
  };
  const auto hand_over = [&] {
    if constexpr (PINGPONG) ptx::named_arrive(shape::turn_barrier + 1 - wg, shape::consumers);
  };
  if (wg == 1) hand_over();  // the first warpgroup's first turn

  float s[keys / 8][4];
  std::uint32_t pa[keys / 16][4];  // P of the step before, multiplied at this one
  for (int j = 0; j < steps; ++j) {
    wait_full(j);
    my_turn();
    const int key0 = j * keys;
    const bool unmasked = key0 + keys <= t.pos + wg_row0 + 1;
    const auto values_of = [&](int i) {
      return [&, i] { issue_values<HD>(o, pa, k_of(i) + tile_bytes<HD>); };
    };
    if (j < wg_steps) {
      // V_(j-1) read once its P V retired: the stage is done with here.
      prefill_wgmma::overlapped_step<HD>(
          j, s, pa, o, run, unmasked, key0, qpos0, qpos1, key_end, tq, scale_log2,
          [&] { issue_scores<HD>(s, qa, k_of(j)); }, values_of(j - 1), [&] { release(j - 1); },
          hand_over);
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
        o, [&] { issue_values<HD>(o, pa, k_of(steps - 1) + tile_bytes<HD>); });
    release(steps - 1);
  }
  prefill_rows::store<HD>(o, run, a, t, head, l.r0, l.r1, tq);
#else
  (void)p;
  (void)scale_log2;
#endif
}

}  // namespace accellm::device::cuda::prefill_tma

// decode_choice: which decode attention pipeline (decode_tile) a forward
// pass runs, chosen once on the device at creation, by the verify-then-time
// rule of prefill_choice and gemm_planner.
//
// Decode attention is most of a large-batch decode step (66% of Llama-2-7B's
// at batch 64, context 1024, on the H100), and its tiles trade warps per SM
// for bytes in flight per warp, which is a question of the GPU, not of the
// code. The probe is a synthetic decode step in the model's attention shape:
// 64 requests of up to `context` positions (1024, fewer when the probe's KV
// would exceed `max_kv_bytes`; most of them up to 60 shorter, so that they
// end inside a pipeline stage), seeded Q in [-2, 2), K and V in [-1, 1) in a
// temporary one-layer pool whose blocks are handed out backwards, split as
// the forward pass would split it. The default tile (32x2, the one measured
// on H100 and H200) is the reference; each other tile the head_dim admits
// is *verified* when it launches: every output of both is finite and within
// 2e-2 of the largest |reference output| (both are bf16 rounding of fp32
// softmax over the same bf16 operands, only the order of the sums differs).
// Verified tiles are timed against the default (median of 7 samples of 2
// launches after 2 warm-ups) and the fastest is kept if it is a clear win,
// under 0.97 of the default's time. A tile that disagrees or fails to
// launch is never used.
//
// All probe memory is allocated and freed inside choose_decode_tile, before
// the KV pool takes what is left. A probe that cannot allocate its memory
// keeps the default and says so; only a fault (a sticky error) fails it.
#pragma once

#include "common/result.hpp"
#include "device/cuda/decode_attention.cuh"
#include "device/cuda/paged_kv.hpp"

#include <cuda_runtime_api.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace accellm::device::cuda {

/// How the tile is chosen: timed (the default), or one tile, no probe.
struct decode_tile_rule {
  std::optional<decode_tile> fixed;  ///< nullopt: timed
  friend bool operator==(const decode_tile_rule&, const decode_tile_rule&) = default;
};

/// "timed", or a tile's name (decode_tile_name); nullopt for another name.
std::optional<decode_tile_rule> decode_tile_rule_named(std::string_view name) noexcept;

/// A kernel with decode_attention's contract (tests substitute faulty ones).
using decode_fn = status (*)(const decode_attention_args& a, cudaStream_t s);

struct decode_probe_options {
  decode_tile_rule rule;
  std::uint32_t items = 64;                 ///< requests of the probe's step
  std::uint32_t context = 1024;             ///< positions each (capped by max_kv_bytes)
  std::uint64_t max_kv_bytes = 1ull << 30;  ///< the probe's KV pool at most
  std::uint32_t target_blocks = 0;          ///< choose_decode_splits' target; 0: one split
  decode_fn candidate = &decode_attention;  ///< runs the candidates' side of the probe
};

/// One tile's outcome on the probe.
struct decode_trial {
  decode_tile tile = decode_tile::keys32_stages2;
  bool verified = false;  ///< launched, finite, and agreed with the default
  double max_diff = 0.0;  ///< max |candidate - default| / max |default|
  float ms = 0.0f;        ///< median time on the probe
  std::string note;       ///< why it was not verified, in a few words
};

/// The outcome, for logs and benchmarks.
struct decode_choice {
  decode_tile tile = decode_tile::keys32_stages2;
  std::uint32_t items = 0, context = 0;  ///< the probe's step; 0 when no probe ran
  float default_ms = 0.0f;               ///< the default tile's median time on it
  std::vector<decode_trial> trials;      ///< the other tiles probed, in order
  std::string note;                      ///< why, in a few words
};

/// "16x4: verified (...), a clear win (16x4 0.105 ms, 32x4 ... vs 32x2 0.118
/// ms on 64 x 1024)" and the like, with each tile that failed and why.
std::string describe(const decode_choice& c);

/// Runs the probe (unless o.rule is fixed) in `shape` with `block_tokens`-token
/// blocks on stream `s` and chooses. Synchronises the stream; must not run
/// during graph capture. Errors only for a fault or a failing reference run.
result<decode_choice> choose_decode_tile(const attn_shape& shape, std::uint32_t block_tokens,
                                         cudaStream_t s, const decode_probe_options& o = {});

}  // namespace accellm::device::cuda

// cuda::forward_pass: one iteration of the decoder on the GPU over a set of
// token rows, the counterpart of device/cpu's forward_pass.
//
// Per layer: RMSNorm (bf16 out) -> fused QKV GEMM (bf16 out) -> RoPE + KV
// append into the paged cache -> decode attention for one-token items,
// tiled prefill attention for the others -> Wo GEMM added onto the fp32
// residual stream -> RMSNorm -> gate/up GEMM -> SwiGLU -> down GEMM added onto
// the residual. Then the final norm of the rows that want a token, the LM
// head and a greedy argmax. GEMMs are cuBLAS bf16 with fp32 accumulation;
// the residual stream and the logits stay fp32, every GEMM input and the
// QKV and gate/up outputs are bf16 (each of those is read and written once
// per layer, so bf16 halves the elementwise traffic of a prefill).
//
// An iteration is described by a step_plan (built by cuda_backend) that is
// copied to the device in one go; every kernel reads its row tables from
// fixed device addresses. Decode-only iterations are therefore captured once
// per (rows, context splits) as a CUDA graph and replayed, which keeps the
// ~10 launches per layer off the critical path of small batches. Before a
// decode step's first capture, gemm_planner times cuBLASLt's candidate
// algorithms for its products (they are bandwidth-bound at these shapes);
// a longer step's products are timed once per power-of-two bucket of rows.
// At creation, prefill_choice picks the prefill attention kernel (rows64,
// rows128, wgmma64, wgmma128, tma128, tma128pp or tma128n, verified against rows64 and timed on
// a synthetic prompt).
//
// Thread contract: one thread at a time; everything runs on the stream given
// at creation.
#pragma once

#include "common/result.hpp"
#include "device/cuda/decode_attention.cuh"
#include "device/cuda/decode_choice.hpp"
#include "device/cuda/gemm_planner.hpp"
#include "device/cuda/paged_kv.hpp"
#include "device/cuda/prefill_choice.hpp"
#include "device/cuda/runtime.hpp"
#include "device/cuda/weights.hpp"

#include <cuda_runtime_api.h>

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <utility>
#include <vector>

namespace accellm::device::cuda {

/// Whether decode-only iterations run as replayed CUDA graphs.
enum class use_graphs : bool { no, yes };

/// Capacity of one forward pass (sizes its scratch buffers).
struct forward_limits {
  std::uint32_t max_rows = 8192;     ///< token rows per iteration
  std::uint32_t max_items = 256;     ///< requests per iteration
  std::uint32_t max_context = 4096;  ///< positions per request
  std::uint32_t block_tokens = 16;
  std::uint32_t table_stride() const noexcept {
    return (max_context + block_tokens - 1) / block_tokens;
  }
  /// Prefill tiles of one iteration at most, at the shortest tile height of
  /// any kernel (each item's last tile may be partial).
  std::uint32_t max_tiles() const noexcept { return max_rows / prefill_min_tile_rows + max_items; }
};

/// What one iteration computes (host side). Rows are the tokens of all
/// items, item after item; item i uses block-table slot i.
struct step_plan {
  std::vector<std::int32_t> tokens;  ///< per row
  std::vector<std::int32_t> pos;     ///< per row
  std::vector<std::int32_t> slot;    ///< per row: its item
  std::vector<decode_item> decodes;
  std::vector<prefill_tile> tiles;
  std::vector<std::int32_t> out_rows;  ///< rows whose next token is wanted
  std::vector<std::int32_t> tables;    ///< [items x table_stride] block ids
  std::uint32_t items = 0;
  std::uint32_t max_decode_length = 0;
  void clear();
};

/// The operators of a forward pass, for a breakdown of its time.
enum class op : std::uint8_t {
  embed,
  norm,
  qkv,
  rope_append,
  decode_attention,
  prefill_attention,
  wo,
  gate_up,
  swiglu,
  down,
  head,  ///< final norm, LM head, argmax
};
inline constexpr std::size_t op_count = 11;
const char* op_name(op o) noexcept;
/// Device milliseconds per operator (indexed by op) over one iteration.
using op_breakdown = std::array<double, op_count>;

/// Host-side calls during forward_pass::run, for work that overlaps it.
struct layer_hooks {
  /// Right after layer `l`'s kernels are enqueued on the pass's stream (they
  /// have not run yet): the place to record an event and queue work behind it.
  std::function<status(std::uint32_t l)> enqueued;
  /// Once the whole iteration is enqueued, before the host waits for it.
  std::function<status()> before_wait;
};

class forward_pass {
 public:
  /// `w` and the pool behind `kv` must outlive the pass. Allocates scratch for
  /// `limits`, then chooses the prefill attention kernel by `prefill`
  /// (prefill_choice.hpp: a probe of min(1024, max_rows, max_context)
  /// tokens) and the decode attention tile by `decode` (decode_choice.hpp:
  /// a probe of 64 requests), each probe's memory freed before this
  /// returns; the products' planner takes `planner` (its skinny
  /// candidate, gemm_planner.hpp); fails with out_of_memory or
  /// device_failure.
  static result<std::unique_ptr<forward_pass>> create(const shard_shape& shape,
                                                      const model_spec& spec, const weights& w,
                                                      kv_pool_view kv, forward_limits limits,
                                                      use_graphs graphs, cudaStream_t s,
                                                      prefill_rule prefill = prefill_rule::timed,
                                                      gemm_planner_options planner = {},
                                                      decode_tile_rule decode = {});
  forward_pass(const forward_pass&) = delete;
  forward_pass& operator=(const forward_pass&) = delete;
  ~forward_pass();

  /// Runs `plan` and waits for it. Returns the greedy token of each out_rows
  /// entry and the device time between the first and last kernel. The caller
  /// has checked the plan against the limits. With `hooks` the iteration is
  /// launched kernel by kernel, never as a graph.
  result<std::pair<std::span<const std::int32_t>, float>> run(const step_plan& plan,
                                                              const layer_hooks* hooks = nullptr);

  /// Points the pass at the KV pool (allocated after the scratch, so that the
  /// pool can take the memory left). Call before the first run.
  void set_pool(__nv_bfloat16* pool, std::uint32_t blocks) noexcept {
    kv_.pool = pool;
    kv_.blocks = blocks;
  }

  /// With `on`, every run() launches kernel by kernel (never a graph) with an
  /// event after each operator, and last_breakdown() holds its time per
  /// operator (for benchmarks: the events cost a little).
  void set_breakdown(bool on) noexcept { breakdown_on_ = on; }
  /// With `on`, run() launches its own kernels with programmatic dependent
  /// launch (launch.cuh; compute capability 9.0 only), except with the
  /// breakdown on, whose events time each operator alone.
  void set_programmatic_launch(bool on) noexcept { programmatic_ = on; }
  bool programmatic_launch() const noexcept { return programmatic_; }
  /// How run() splits a decode step's context (decode_attention.cuh);
  /// `waves` asks the occupancy calculator how many blocks of the chosen
  /// tile an SM holds (an error from it leaves the rule as it was).
  status set_decode_split_rule(decode_split_rule rule);
  decode_split_rule decode_splits() const noexcept { return split_rule_; }
  const op_breakdown& last_breakdown() const noexcept { return breakdown_; }

  /// Logits of the last run ([out_rows x vocab shard]), copied to the host.
  result<std::vector<float>> last_logits() const;
  /// The block tables of the plan being run ([items x table_stride], item i
  /// in slot i), on the device from run()'s first kernel until the next run.
  const std::int32_t* device_tables() const noexcept { return d_tables_; }
  std::uint32_t graphs_cached() const noexcept {
    return static_cast<std::uint32_t>(graphs_.size());
  }
  /// The prefill attention kernel every run() uses, and why (chosen at
  /// creation; prompts are cut into tiles of prefill_tile_rows_of(kernel)).
  const prefill_choice& prefill_kernel_choice() const noexcept { return prefill_; }
  /// The decode attention tile every run() uses, and why (chosen at creation).
  const decode_choice& decode_tile_choice() const noexcept { return decode_; }
  /// The products' algorithm choices so far (benchmarks report them).
  const gemm_planner& planner() const noexcept { return planner_; }

 private:
  forward_pass(const shard_shape& shape, const model_spec& spec, const weights& w, kv_pool_view kv,
               forward_limits limits, use_graphs graphs, cudaStream_t s);
  status allocate(gemm_planner_options planner);
  status upload(const step_plan& plan);
  status launch(const step_plan& plan, std::uint32_t splits, const layer_hooks* hooks);
  status layer(std::uint32_t l, const step_plan& plan, std::uint32_t splits);
  status run_graph(const step_plan& plan, std::uint32_t splits);
  /// Breakdown on: an event after the operator `o` (the first, at the start).
  status mark(op o);
  /// Breakdown on: events for this iteration, and the first one recorded.
  status start_marks();
  /// Breakdown on, after the stream is synchronised: breakdown_ from the events.
  status read_marks();
  /// Lets the planner choose the algorithms of this step's products (a
  /// decode step's by its rows, a longer step's by their bucket).
  status prepare_products(std::uint32_t rows, std::uint32_t outs);
  /// y = x w^T + beta y through gemv, the planner or cuBLAS (forward.cpp).
  status linear(const __nv_bfloat16* x, std::uint32_t rows, std::uint32_t in,
                const __nv_bfloat16* w, std::uint32_t out, void* y, gemm_out type, float beta);

  shard_shape shape_;
  float eps_;
  const weights& w_;
  kv_pool_view kv_;
  forward_limits limits_;
  use_graphs graphs_mode_;
  cudaStream_t stream_;
  std::uint32_t sm_count_ = 132;
  cublas_handle blas_;
  device_buffer<std::uint8_t> blas_workspace_;
  gemm_planner planner_;
  device_buffer<std::uint8_t> planner_scratch_;  // outputs of the planner's timing runs
  // Row tables: one int32 device buffer, regions at fixed offsets.
  device_buffer<std::int32_t> meta_;
  pinned_buffer<std::int32_t> meta_host_;
  std::int32_t *d_tokens_ = nullptr, *d_pos_ = nullptr, *d_slot_ = nullptr, *d_out_rows_ = nullptr;
  std::int32_t *d_tables_ = nullptr, *d_next_ = nullptr;
  decode_item* d_decodes_ = nullptr;
  prefill_tile* d_tiles_ = nullptr;
  pinned_buffer<std::int32_t> next_host_;
  device_buffer<float> rope_;  // cos then sin, [max_context x head_dim/2] each
  prefill_choice prefill_;
  decode_choice decode_;
  // Activations.
  device_buffer<float> x_, logits_, partial_;  // residual stream, LM head, decode partials
  device_buffer<__nv_bfloat16> xn_, qkv_, q_, att_, gate_up_, act_;
  event start_, stop_;
  std::uint32_t last_outputs_ = 0;
  // The time breakdown (set_breakdown).
  bool breakdown_on_ = false;
  bool programmatic_ = false;
  decode_split_rule split_rule_ = decode_split_rule::blocks;
  std::uint32_t resident_blocks_ = 0;  // decode pass-1 blocks the GPU holds at once (waves)
  std::vector<event> marks_;
  std::vector<op> mark_ops_;
  std::size_t marks_used_ = 0;
  op_breakdown breakdown_{};
  // Decode-only graphs keyed by (rows, splits, outputs).
  std::map<std::array<std::uint32_t, 3>, cudaGraphExec_t> graphs_;
};

}  // namespace accellm::device::cuda

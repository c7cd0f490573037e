// cpu::cpu_backend: a real small Llama-style transformer behind device::backend.
//
// fp32 weights drawn from a seed (weights.hpp), a paged fp32 KV cache
// (kv_cache.hpp), and a forward pass that is batch invariant (forward.hpp):
// a request's greedy tokens are bit-identical whatever batch, batch position,
// prefill chunking or instance computes them, as long as the instances were
// built from the same spec and seed. That is what lets the tests check
// AcceLLM's promise exactly: a request prefilled on A, its KV copied layer by
// layer to B, decodes on B to the very tokens A would have produced.
//
// KV layout on the wire (kv_chunk::data): for each layer of the chunk, K then
// V, each tokens x kv_width fp32 values, row-major, native byte order.
//
// Errors are values: run() checks every item and the pool capacity before it
// touches any cache, so a failed run() changes nothing; export_kv and
// import_kv likewise check everything before copying.
//
// Thread contract: one thread at a time (device::backend's contract). Runs
// single-threaded.
#pragma once

#include "common/result.hpp"
#include "device/backend.hpp"
#include "device/cpu/forward.hpp"
#include "device/cpu/kv_cache.hpp"
#include "device/cpu/weights.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

namespace accellm::device::cpu {

/// A monotonic clock reading; run() reports the difference of two readings.
using clock_fn = std::function<std::chrono::nanoseconds()>;

/// Construction options.
struct cpu_options {
  std::uint64_t seed = 1;           ///< weights are a pure function of (spec, seed)
  std::uint64_t kv_blocks = 1024;   ///< KV pool capacity in blocks
  std::uint32_t block_tokens = 16;  ///< token positions per block
  /// Measures iteration_result::duration. Empty: std::chrono::steady_clock
  /// (the device time of a real device is a measurement, as on cuda).
  clock_fn clock;
};

class cpu_backend final : public backend {
  struct key {
    explicit key() = default;
  };

 public:
  /// Use make_cpu_backend, which checks the spec and options first.
  cpu_backend(key, model_spec spec, cpu_options options, weights w);
  cpu_backend(const cpu_backend&) = delete;
  cpu_backend& operator=(const cpu_backend&) = delete;

  /// "cpu".
  std::string_view name() const noexcept override { return "cpu"; }
  const model_spec& model() const noexcept override { return spec_; }
  /// fp32 KV; bytes_per_block covers all layers, K and V.
  kv_geometry kv() const noexcept override;

  /// Fails with invalid_argument (num_tokens 0 or != tokens.size(), decode with
  /// num_tokens != 1, a request twice in the batch, context != the tokens
  /// every layer holds), out_of_range (token
  /// id outside the vocabulary, context + num_tokens > max_context), not_found
  /// (decode, or prefill at context > 0, of an unknown request) or
  /// out_of_memory (pool too small for the whole batch). Prefill at context 0
  /// of an unknown request creates its cache.
  result<iteration_result> run(const batch& b) override;
  status check_item(const batch_item& item) const override;
  /// Hands each layer group over as soon as the forward pass has written it,
  /// before the next layer computes (the receiver works on it meanwhile).
  result<iteration_result> run_streaming(const batch& b, const kv_stream& stream) override;

  /// Fails with not_found (unknown request), out_of_range (layers outside the
  /// model, or tokens not cached in every layer of the range) or
  /// invalid_argument (a reversed range).
  result<kv_chunk> export_kv(request_id request, index_range layers, index_range tokens) override;

  /// Fails with out_of_range (layers outside the model, tokens beyond
  /// max_context, or a chunk that would leave a gap: tokens.begin greater than
  /// what a layer holds), invalid_argument (reversed range, data.size() or
  /// bytes not matching the shape) or out_of_memory. Overlapping tokens are
  /// overwritten.
  status import_kv(const kv_chunk& chunk) override;

  std::uint32_t cached_tokens(request_id request) const noexcept override;
  void release(request_id request) noexcept override;

  /// Logits of the last successful run(): one row of `vocab` floats per item
  /// that wanted output, in item order. For tests and diagnostics.
  std::span<const float> last_logits() const noexcept { return last_logits_; }
  /// The parameters (for reference implementations in tests).
  const weights& parameters() const noexcept { return weights_; }
  /// KV blocks not held by any request.
  std::uint64_t free_blocks() const noexcept { return cache_.free_blocks(); }

  friend result<std::unique_ptr<cpu_backend>> make_cpu_backend(const model_spec& spec,
                                                               cpu_options options);

 private:
  status check_cached(const batch_item& item) const;
  status check_batch(const batch& b);
  status grow_and_plan(const batch& b);
  status check_import(const kv_chunk& chunk) const;
  result<iteration_result> run_pass(const batch& b,
                                    const std::function<void(std::uint32_t)>& after_layer);
  std::chrono::nanoseconds now() const;

  model_spec spec_;
  cpu_options options_;
  weights weights_;
  kv_cache cache_;
  forward_pass pass_;
  // Reused per iteration so that steady-state runs do not allocate.
  std::vector<kv_cache::sequence*> seqs_;
  std::vector<token_row> rows_;
  std::vector<std::uint32_t> outputs_;
  std::vector<request_id> ids_;
  std::span<const float> last_logits_;
};

/// Builds a cpu backend: checks that `spec` is a shape this backend can run
/// (heads divide hidden, head_dim even for RoPE, kv_heads divide heads, all
/// sizes non-zero, parameters and pool under 1 Gi floats each) and that the
/// options are sane, then draws the weights from options.seed and allocates
/// the KV pool. Fails with errc::invalid_argument or errc::too_large.
result<std::unique_ptr<cpu_backend>> make_cpu_backend(const model_spec& spec,
                                                      cpu_options options = {});

}  // namespace accellm::device::cpu

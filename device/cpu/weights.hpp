// cpu::weights: the fp32 parameters of a Llama-style decoder, drawn from a seed.
//
// Layout (all row-major, contiguous; linear layers are [out x in], see
// kernels.hpp):
//   embedding  [vocab x hidden]
//   per layer: attn_norm [hidden]
//              wqkv      [(hidden + 2 * kv_width) x hidden]  rows: Wq, then Wk, then Wv
//              wo        [hidden x hidden]
//              mlp_norm  [hidden]
//              wgate_up  [2 * ffn x hidden]                  rows: W_gate, then W_up
//              wdown     [hidden x ffn]
//   final_norm [hidden]
//   lm_head    [vocab x hidden]  (untied from the embedding)
// Q, K and V (and gate and up) are stored fused so one matmul computes them;
// the result is the same as three separate ones.
//
// Initialisation: every tensor has its own splitmix64 stream derived from
// (seed, tensor index), uniform values. Linear layers have variance 1 / in (so
// activations stay O(1) through the stack), the embedding has variance 1,
// norm gains are 1 +- 0.2 (so a wrong gain shows in the reference test), and
// the LM head is scaled up so greedy tokens vary from step to step.
//
// Value type; immutable after make_weights, safe to read from any thread.
#pragma once

#include "device/model_spec.hpp"

#include <cstdint>
#include <vector>

namespace accellm::device::cpu {

/// One transformer block's parameters.
struct layer_weights {
  std::vector<float> attn_norm;
  std::vector<float> wqkv;
  std::vector<float> wo;
  std::vector<float> mlp_norm;
  std::vector<float> wgate_up;
  std::vector<float> wdown;
};

/// All parameters of a model.
struct weights {
  std::vector<float> embedding;
  std::vector<layer_weights> layers;
  std::vector<float> final_norm;
  std::vector<float> lm_head;

  /// Number of fp32 values over all tensors.
  std::uint64_t parameter_count() const noexcept;
};

/// Draws the weights of `spec` from `seed`. Same (spec, seed) -> same bits on
/// every platform. `spec` must be consistent (cpu_backend checks it first).
weights make_weights(const model_spec& spec, std::uint64_t seed);

/// splitmix64: a tiny, well-mixed 64-bit generator (Steele, Lea, Flood 2014).
class splitmix64 {
 public:
  explicit splitmix64(std::uint64_t seed) noexcept : state_(seed) {}
  std::uint64_t next() noexcept;
  /// Uniform in [-1, 1), 24 random bits, exactly representable in float.
  float uniform() noexcept;

 private:
  std::uint64_t state_;
};

}  // namespace accellm::device::cpu

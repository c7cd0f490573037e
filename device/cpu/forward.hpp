// cpu::forward_pass: one iteration of the decoder over a set of token rows.
//
// The rows of an iteration are the tokens of every batch item, laid out one
// after another. Each layer normalises all rows, computes Q, K and V with one
// matmul, applies RoPE, writes K and V into the paged cache at each row's
// position, lets every row attend to its own request's cache [0, pos], and runs
// the SwiGLU MLP. Rows of the same request are causal among themselves because
// all K/V of a layer are written before any row attends. Only the rows that
// want a next token go through the final norm and the LM head.
//
// Every step computes a row from that row alone (see kernels.hpp), so the
// logits of a row are bit-identical whatever other rows share the pass.
//
// Thread contract: not thread-safe; owned by one cpu_backend. The scratch
// buffers only grow, so steady-state iterations do not allocate.
#pragma once

#include "common/types.hpp"
#include "device/cpu/kv_cache.hpp"
#include "device/cpu/weights.hpp"
#include "device/model_spec.hpp"

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

namespace accellm::device::cpu {

/// One token of an iteration: its id, its position, and its request's cache
/// (already grown to hold the position).
struct token_row {
  token_id token = 0;
  std::uint32_t pos = 0;
  const kv_cache::sequence* seq = nullptr;
};

class forward_pass {
 public:
  /// `spec` and `w` must outlive the pass; `spec` must be consistent.
  forward_pass(const model_spec& spec, const weights& w);

  /// Runs `rows` through every layer, writing their K/V into `cache`, and
  /// returns the logits of the rows listed in `outputs` ([outputs.size() x
  /// vocab], valid until the next call). Cannot fail: the caller has checked
  /// token ids, positions and capacity. `after_layer`, when set, is called
  /// with each layer's index once that layer is done (its K/V written).
  std::span<const float> run(std::span<const token_row> rows,
                             std::span<const std::uint32_t> outputs, kv_cache& cache,
                             const std::function<void(std::uint32_t)>& after_layer = {});

 private:
  void reserve(std::size_t rows, std::size_t outputs);
  void attention_block(std::uint32_t layer, std::span<const token_row> rows, kv_cache& cache);
  void mlp_block(std::uint32_t layer, std::size_t rows);
  void add_residual(std::size_t rows) noexcept;

  const model_spec& spec_;
  const weights& w_;
  std::vector<float> rope_cos_;
  std::vector<float> rope_sin_;
  // Scratch, [rows x width] each.
  std::vector<float> x_;         // residual stream, hidden
  std::vector<float> xn_;        // normalised input, hidden
  std::vector<float> qkv_;       // hidden + 2 * kv_width
  std::vector<float> att_;       // attention output, hidden
  std::vector<float> proj_;      // output of Wo / W_down, hidden
  std::vector<float> gate_up_;   // 2 * ffn
  std::vector<float> act_;       // ffn
  std::vector<float> scores_;    // max_context
  std::vector<float> out_norm_;  // [outputs x hidden]
  std::vector<float> logits_;    // [outputs x vocab]
};

}  // namespace accellm::device::cpu

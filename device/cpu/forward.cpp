#include "device/cpu/forward.hpp"

#include "device/cpu/attention.hpp"
#include "device/cpu/kernels.hpp"

#include <algorithm>

namespace accellm::device::cpu {
namespace {

template <class T>
void grow_to(std::vector<T>& v, std::size_t n) {
  if (v.size() < n) v.resize(n);
}

}  // namespace

forward_pass::forward_pass(const model_spec& spec, const weights& w)
    : spec_(spec),
      w_(w),
      rope_cos_(static_cast<std::size_t>(spec.max_context) * (spec.head_dim() / 2)),
      rope_sin_(rope_cos_.size()),
      scores_(spec.max_context) {
  fill_rope_table(spec.max_context, spec.head_dim(), spec.rope_theta, rope_cos_.data(),
                  rope_sin_.data());
}

void forward_pass::reserve(std::size_t rows, std::size_t outputs) {
  const std::size_t d = spec_.hidden;
  grow_to(x_, rows * d);
  grow_to(xn_, rows * d);
  grow_to(qkv_, rows * (d + 2 * spec_.kv_width()));
  grow_to(att_, rows * d);
  grow_to(proj_, rows * d);
  grow_to(gate_up_, rows * 2 * spec_.ffn);
  grow_to(act_, rows * spec_.ffn);
  grow_to(out_norm_, outputs * d);
  grow_to(logits_, outputs * spec_.vocab);
}

std::span<const float> forward_pass::run(std::span<const token_row> rows,
                                         std::span<const std::uint32_t> outputs, kv_cache& cache,
                                         const std::function<void(std::uint32_t)>& after_layer) {
  const std::size_t d = spec_.hidden;
  reserve(rows.size(), outputs.size());
  for (std::size_t r = 0; r < rows.size(); ++r) {
    const float* e = w_.embedding.data() + static_cast<std::size_t>(rows[r].token) * d;
    std::copy(e, e + d, x_.data() + r * d);
  }
  for (std::uint32_t l = 0; l < spec_.layers; ++l) {
    attention_block(l, rows, cache);
    mlp_block(l, rows.size());
    if (after_layer) after_layer(l);
  }
  for (std::size_t i = 0; i < outputs.size(); ++i)
    rmsnorm(x_.data() + outputs[i] * d, w_.final_norm.data(), d, spec_.norm_eps,
            out_norm_.data() + i * d);
  matmul(out_norm_.data(), outputs.size(), d, w_.lm_head.data(), spec_.vocab, logits_.data());
  return {logits_.data(), outputs.size() * spec_.vocab};
}

void forward_pass::attention_block(std::uint32_t layer, std::span<const token_row> rows,
                                   kv_cache& cache) {
  const layer_weights& lw = w_.layers[layer];
  const std::size_t d = spec_.hidden;
  const std::size_t kvw = spec_.kv_width();
  const std::size_t width = d + 2 * kvw;
  for (std::size_t r = 0; r < rows.size(); ++r)
    rmsnorm(x_.data() + r * d, lw.attn_norm.data(), d, spec_.norm_eps, xn_.data() + r * d);
  matmul(xn_.data(), rows.size(), d, lw.wqkv.data(), width, qkv_.data());
  const rope_table table{spec_.head_dim() / 2, rope_cos_.data(), rope_sin_.data()};
  for (std::size_t r = 0; r < rows.size(); ++r) {
    float* q = qkv_.data() + r * width;
    float* k = q + d;
    const float* v = k + kvw;
    rope(q, spec_.heads, rows[r].pos, table);
    rope(k, spec_.kv_heads, rows[r].pos, table);
    std::copy(k, k + kvw, cache.k_row(*rows[r].seq, layer, rows[r].pos));
    std::copy(v, v + kvw, cache.v_row(*rows[r].seq, layer, rows[r].pos));
  }
  const attention_shape shape{spec_.heads, spec_.kv_heads, spec_.head_dim()};
  for (std::size_t r = 0; r < rows.size(); ++r)
    attend(qkv_.data() + r * width, rows[r].pos, cache.view(*rows[r].seq, layer), shape,
           scores_.data(), att_.data() + r * d);
  matmul(att_.data(), rows.size(), d, lw.wo.data(), d, proj_.data());
  add_residual(rows.size());
}

void forward_pass::mlp_block(std::uint32_t layer, std::size_t rows) {
  const layer_weights& lw = w_.layers[layer];
  const std::size_t d = spec_.hidden;
  const std::size_t f = spec_.ffn;
  for (std::size_t r = 0; r < rows; ++r)
    rmsnorm(x_.data() + r * d, lw.mlp_norm.data(), d, spec_.norm_eps, xn_.data() + r * d);
  matmul(xn_.data(), rows, d, lw.wgate_up.data(), 2 * f, gate_up_.data());
  for (std::size_t r = 0; r < rows; ++r) {
    const float* gate = gate_up_.data() + r * 2 * f;
    silu_mul(gate, gate + f, f, act_.data() + r * f);
  }
  matmul(act_.data(), rows, f, lw.wdown.data(), d, proj_.data());
  add_residual(rows);
}

void forward_pass::add_residual(std::size_t rows) noexcept {
  const std::size_t n = rows * spec_.hidden;
  for (std::size_t i = 0; i < n; ++i) x_[i] += proj_[i];
}

}  // namespace accellm::device::cpu

// model_spec: the shape of a Llama-family decoder-only transformer, and the
// catalogue of shapes accellm knows (Llama-2-7B/13B/70B, Llama-3-8B/70B, and
// small shapes for the cpu backend).
//
// Value type; the catalogue is immutable and safe to read from any thread.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace accellm::device {

/// Element type of weights, activations or KV cache.
enum class dtype : std::uint8_t { fp32, bf16, fp16, fp8 };

/// Bytes per element.
constexpr std::uint32_t dtype_bytes(dtype t) noexcept {
  switch (t) {
    case dtype::fp32:
      return 4;
    case dtype::bf16:
      return 2;
    case dtype::fp16:
      return 2;
    case dtype::fp8:
      return 1;
  }
  return 0;
}

/// Parses "fp32", "bf16", "fp16", "fp8"; returns false for anything else.
bool parse_dtype(std::string_view text, dtype& out) noexcept;
std::string_view to_string(dtype t) noexcept;

/// Llama-style model shape. Attention is grouped-query when kv_heads < heads.
struct model_spec {
  std::string name;               ///< catalogue key, e.g. "llama2-70b"
  std::uint32_t layers = 0;       ///< transformer blocks
  std::uint32_t hidden = 0;       ///< model width d
  std::uint32_t heads = 0;        ///< query heads
  std::uint32_t kv_heads = 0;     ///< key/value heads (GQA groups)
  std::uint32_t ffn = 0;          ///< SwiGLU intermediate size
  std::uint32_t vocab = 0;        ///< vocabulary size
  std::uint32_t max_context = 0;  ///< longest sequence the model supports
  double rope_theta = 10000.0;    ///< RoPE base frequency
  float norm_eps = 1e-5f;         ///< RMSNorm epsilon

  std::uint32_t head_dim() const noexcept { return heads ? hidden / heads : 0; }
  /// Width of K (and of V) per token per layer: kv_heads * head_dim.
  std::uint32_t kv_width() const noexcept { return kv_heads * head_dim(); }
  /// Parameters of one transformer block (attention + MLP + two norms).
  std::uint64_t layer_params() const noexcept;
  /// All parameters: blocks, embedding, final norm, untied LM head.
  std::uint64_t params() const noexcept;
  /// KV-cache bytes per token over all layers: 2 (K and V) * layers * kv_width * bytes.
  std::uint64_t kv_bytes_per_token(dtype kv) const noexcept {
    return 2ull * layers * kv_width() * dtype_bytes(kv);
  }
  /// KV-cache bytes per token for one layer.
  std::uint64_t kv_bytes_per_token_layer(dtype kv) const noexcept {
    return 2ull * kv_width() * dtype_bytes(kv);
  }
  /// Empty when the shape is consistent, otherwise what is wrong with it.
  std::string check() const;
};

/// Every model in the catalogue, in a stable order.
std::span<const model_spec> known_models() noexcept;

/// The catalogue entry called `name`, or nullptr.
const model_spec* find_model(std::string_view name) noexcept;

}  // namespace accellm::device

#include "device/model_spec.hpp"

#include <array>

namespace accellm::device {
namespace {

// Shapes from the Hugging Face config.json of each model (notes/hardware.md
// section 3, [S12] [S31]): num_hidden_layers, hidden_size, num_attention_heads,
// num_key_value_heads, intermediate_size, vocab_size, max_position_embeddings,
// rope_theta, rms_norm_eps.
model_spec make(const char* name, std::uint32_t layers, std::uint32_t hidden, std::uint32_t heads,
                std::uint32_t kv_heads, std::uint32_t ffn, std::uint32_t vocab,
                std::uint32_t max_context, double rope_theta) {
  model_spec m;
  m.name = name;
  m.layers = layers;
  m.hidden = hidden;
  m.heads = heads;
  m.kv_heads = kv_heads;
  m.ffn = ffn;
  m.vocab = vocab;
  m.max_context = max_context;
  m.rope_theta = rope_theta;
  m.norm_eps = 1e-5f;
  return m;
}

const std::array<model_spec, 7>& catalogue() {
  static const std::array<model_spec, 7> models{
      make("llama2-7b", 32, 4096, 32, 32, 11008, 32000, 4096, 10000.0),
      make("llama2-13b", 40, 5120, 40, 40, 13824, 32000, 4096, 10000.0),
      make("llama2-70b", 80, 8192, 64, 8, 28672, 32000, 4096, 10000.0),
      make("llama3-8b", 32, 4096, 32, 8, 14336, 128256, 8192, 500000.0),
      make("llama3-70b", 80, 8192, 64, 8, 28672, 128256, 8192, 500000.0),
      // Small shapes for the real cpu backend: same family, GQA 2:1 / 4:1.
      make("cpu-tiny", 2, 64, 4, 2, 176, 256, 512, 10000.0),
      make("cpu-small", 4, 256, 8, 2, 688, 512, 2048, 10000.0),
  };
  return models;
}

}  // namespace

bool parse_dtype(std::string_view text, dtype& out) noexcept {
  for (dtype t : {dtype::fp32, dtype::bf16, dtype::fp16, dtype::fp8}) {
    if (text == to_string(t)) {
      out = t;
      return true;
    }
  }
  return false;
}

std::string_view to_string(dtype t) noexcept {
  switch (t) {
    case dtype::fp32:
      return "fp32";
    case dtype::bf16:
      return "bf16";
    case dtype::fp16:
      return "fp16";
    case dtype::fp8:
      return "fp8";
  }
  return "unknown";
}

std::uint64_t model_spec::layer_params() const noexcept {
  const std::uint64_t h = hidden;
  const std::uint64_t q_width = std::uint64_t{heads} * head_dim();
  const std::uint64_t attention = h * q_width + 2 * h * kv_width() + q_width * h;
  const std::uint64_t mlp = 3 * h * ffn;  // SwiGLU: gate, up, down
  const std::uint64_t norms = 2 * h;      // attention and MLP RMSNorm weights
  return attention + mlp + norms;
}

std::uint64_t model_spec::params() const noexcept {
  const std::uint64_t h = hidden;
  // Embedding and untied LM head (both vocab x hidden), final RMSNorm.
  return std::uint64_t{layers} * layer_params() + 2 * std::uint64_t{vocab} * h + h;
}

std::string model_spec::check() const {
  if (name.empty()) return "name is empty";
  if (layers == 0) return "layers is 0";
  if (hidden == 0) return "hidden is 0";
  if (heads == 0) return "heads is 0";
  if (hidden % heads != 0) return "hidden is not a multiple of heads";
  if (head_dim() % 2 != 0) return "head_dim is odd (RoPE rotates pairs)";
  if (kv_heads == 0) return "kv_heads is 0";
  if (heads % kv_heads != 0) return "heads is not a multiple of kv_heads";
  if (ffn == 0) return "ffn is 0";
  if (vocab == 0) return "vocab is 0";
  if (max_context == 0) return "max_context is 0";
  if (!(rope_theta > 0.0)) return "rope_theta is not positive";
  if (!(norm_eps > 0.0f)) return "norm_eps is not positive";
  return {};
}

std::span<const model_spec> known_models() noexcept {
  return catalogue();
}

const model_spec* find_model(std::string_view name) noexcept {
  for (const model_spec& m : catalogue()) {
    if (m.name == name) return &m;
  }
  return nullptr;
}

}  // namespace accellm::device

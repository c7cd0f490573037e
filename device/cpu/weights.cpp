#include "device/cpu/weights.hpp"

#include <cmath>
#include <cstddef>

namespace accellm::device::cpu {
namespace {

// Uniform on [-a, a) has variance a^2 / 3; this is the a for a variance.
float half_width_for_variance(double variance) {
  return static_cast<float>(std::sqrt(3.0 * variance));
}

// Each tensor gets its own stream so that adding a tensor later does not
// shift the values of the others.
std::vector<float> draw(std::uint64_t seed, std::uint64_t tensor, std::size_t count, float scale,
                        float offset) {
  splitmix64 rng{seed ^ (0x9E3779B97F4A7C15ull * (tensor + 1))};
  rng.next();  // decorrelate nearby seeds
  std::vector<float> out(count);
  for (float& v : out) v = offset + scale * rng.uniform();
  return out;
}

std::vector<float> linear(std::uint64_t seed, std::uint64_t tensor, std::size_t out,
                          std::size_t in) {
  return draw(seed, tensor, out * in, half_width_for_variance(1.0 / static_cast<double>(in)), 0.0f);
}

std::vector<float> gain(std::uint64_t seed, std::uint64_t tensor, std::size_t n) {
  return draw(seed, tensor, n, 0.2f, 1.0f);
}

}  // namespace

std::uint64_t splitmix64::next() noexcept {
  std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

float splitmix64::uniform() noexcept {
  const auto bits = static_cast<std::int32_t>(next() >> 40);  // [0, 2^24)
  return static_cast<float>(bits - (1 << 23)) * (1.0f / static_cast<float>(1 << 23));
}

std::uint64_t weights::parameter_count() const noexcept {
  std::uint64_t n = embedding.size() + final_norm.size() + lm_head.size();
  for (const layer_weights& l : layers)
    n += l.attn_norm.size() + l.wqkv.size() + l.wo.size() + l.mlp_norm.size() + l.wgate_up.size() +
         l.wdown.size();
  return n;
}

weights make_weights(const model_spec& spec, std::uint64_t seed) {
  const std::size_t d = spec.hidden;
  const std::size_t kv = spec.kv_width();
  const std::size_t f = spec.ffn;
  weights w;
  w.embedding = draw(seed, 0, spec.vocab * d, half_width_for_variance(1.0), 0.0f);
  w.final_norm = gain(seed, 1, d);
  // Logits of std ~3 give a peaked but input-dependent next-token choice.
  w.lm_head =
      draw(seed, 2, spec.vocab * d, half_width_for_variance(9.0 / static_cast<double>(d)), 0.0f);
  w.layers.reserve(spec.layers);
  for (std::uint64_t l = 0; l < spec.layers; ++l) {
    const std::uint64_t t = 16 + 8 * l;  // 8 tensor slots per layer
    layer_weights lw;
    lw.attn_norm = gain(seed, t + 0, d);
    lw.wqkv = linear(seed, t + 1, d + 2 * kv, d);
    lw.wo = linear(seed, t + 2, d, d);
    lw.mlp_norm = gain(seed, t + 3, d);
    lw.wgate_up = linear(seed, t + 4, 2 * f, d);
    lw.wdown = linear(seed, t + 5, d, f);
    w.layers.push_back(std::move(lw));
  }
  return w;
}

}  // namespace accellm::device::cpu

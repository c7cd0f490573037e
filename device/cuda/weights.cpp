#include "device/cuda/weights.hpp"

#include "device/cuda/fill_uniform.cuh"

#include <cmath>
#include <string>

namespace accellm::device::cuda {
namespace {

constexpr std::uint64_t golden = 0x9E3779B97F4A7C15ull;

// The same constants as device/cpu/weights.cpp (tensor ids, variances), so
// that tp == 1 draws the bf16 rounding of the cpu model.
float half_width(double variance) {
  return static_cast<float>(std::sqrt(3.0 * variance));
}

result<device_buffer<__nv_bfloat16>> draw(std::uint64_t seed, std::uint64_t tensor,
                                          std::size_t count, float scale, float offset,
                                          cudaStream_t s) {
  auto buf = device_buffer<__nv_bfloat16>::allocate(count);
  if (!buf) return std::move(buf).err();
  if (auto st = fill_stream(buf->data(), count, seed ^ (golden * (tensor + 1)), scale, offset, s);
      !st)
    return std::move(st).err();
  return buf;
}

result<device_buffer<__nv_bfloat16>> linear(std::uint64_t seed, std::uint64_t tensor,
                                            std::size_t out, std::size_t in, cudaStream_t s) {
  return draw(seed, tensor, out * in, half_width(1.0 / static_cast<double>(in)), 0.0f, s);
}

result<device_buffer<__nv_bfloat16>> gain(std::uint64_t seed, std::uint64_t tensor, std::size_t n,
                                          cudaStream_t s) {
  return draw(seed, tensor, n, 0.2f, 1.0f, s);
}

bool power_of_two(std::uint32_t v) {
  return v != 0 && (v & (v - 1)) == 0;
}

}  // namespace

result<shard_shape> make_shard_shape(const model_spec& spec, std::uint32_t tp) {
  if (auto why = spec.check(); !why.empty())
    return fail(errc::invalid_argument, "model " + spec.name + ": " + why);
  if (tp == 0) return fail(errc::invalid_argument, "tensor-parallel degree must be at least 1");
  const std::uint32_t hd = spec.head_dim();
  if (hd < 16 || hd > 256 || !power_of_two(hd))
    return fail(errc::invalid_argument, "model " + spec.name + ": head_dim " + std::to_string(hd) +
                                            " is not a power of two in [16, 256]");
  const std::uint32_t group = spec.heads / spec.kv_heads;
  if (spec.heads % spec.kv_heads != 0 || (group != 1 && group != 2 && group != 4 && group != 8))
    return fail(errc::invalid_argument,
                "model " + spec.name + ": heads / kv_heads must be 1, 2, 4 or 8");
  if (spec.kv_heads % tp != 0 || spec.ffn % tp != 0 || spec.vocab % tp != 0)
    return fail(errc::invalid_argument, "model " + spec.name + " cannot be split " +
                                            std::to_string(tp) +
                                            " ways (kv_heads, ffn and vocab must divide)");
  shard_shape s;
  s.tp = tp;
  s.hidden = spec.hidden;
  s.attn = attn_shape{spec.heads / tp, spec.kv_heads / tp, hd};
  s.ffn = spec.ffn / tp;
  s.vocab = spec.vocab / tp;
  s.layers = spec.layers;
  return s;
}

std::uint64_t weights::bytes() const noexcept {
  return streamed_bytes() + embedding.bytes();
}

std::uint64_t weights::streamed_bytes() const noexcept {
  std::uint64_t n = final_norm.bytes() + lm_head.bytes();
  for (const layer_weights& l : layers)
    n += l.attn_norm.bytes() + l.wqkv.bytes() + l.wo.bytes() + l.mlp_norm.bytes() +
         l.wgate_up.bytes() + l.wdown.bytes();
  return n;
}

result<weights> make_weights(const shard_shape& sh, std::uint64_t seed, cudaStream_t s) {
  const std::size_t d = sh.hidden;
  weights w;
  ACCELLM_TRY_ASSIGN(w.embedding,
                     draw(seed, 0, std::size_t{sh.vocab} * sh.tp * d, half_width(1.0), 0.0f, s));
  ACCELLM_TRY_ASSIGN(w.final_norm, gain(seed, 1, d, s));
  ACCELLM_TRY_ASSIGN(w.lm_head, draw(seed, 2, std::size_t{sh.vocab} * d,
                                     half_width(9.0 / static_cast<double>(d)), 0.0f, s));
  w.layers.reserve(sh.layers);
  for (std::uint64_t l = 0; l < sh.layers; ++l) {
    const std::uint64_t t = 16 + 8 * l;  // 8 tensor slots per layer, as on the CPU
    layer_weights lw;
    ACCELLM_TRY_ASSIGN(lw.attn_norm, gain(seed, t + 0, d, s));
    ACCELLM_TRY_ASSIGN(lw.wqkv, linear(seed, t + 1, sh.qkv_width(), d, s));
    ACCELLM_TRY_ASSIGN(lw.wo, linear(seed, t + 2, d, sh.attn.q_width(), s));
    ACCELLM_TRY_ASSIGN(lw.mlp_norm, gain(seed, t + 3, d, s));
    ACCELLM_TRY_ASSIGN(lw.wgate_up, linear(seed, t + 4, 2 * std::size_t{sh.ffn}, d, s));
    ACCELLM_TRY_ASSIGN(lw.wdown, linear(seed, t + 5, d, sh.ffn, s));
    w.layers.push_back(std::move(lw));
  }
  return w;
}

}  // namespace accellm::device::cuda

// The cpu backend's math against a naive reference written from the formulas:
// plain loops in double, no paging, no fused weights beyond reading the
// documented layout. Tolerance: 1e-5 relative to the largest magnitude of the
// compared vector (fp32 against double).
#include "device/cpu/cpu_backend.hpp"
#include "tests/device/cpu/cpu_test_util.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>

namespace accellm::device::cpu {
namespace {

using vec = std::vector<double>;
constexpr double tolerance = 1e-5;

// Token by token, with an unpaged KV cache per layer.
class reference_model {
 public:
  reference_model(const model_spec& s, const weights& w)
      : s_(s), w_(w), k_(s.layers), v_(s.layers) {}

  vec step(token_id token, std::uint32_t pos) {
    const std::size_t d = s_.hidden;
    vec x(w_.embedding.begin() + token * d, w_.embedding.begin() + (token + 1) * d);
    for (std::uint32_t l = 0; l < s_.layers; ++l) {
      const layer_weights& lw = w_.layers[l];
      add(x, linear(lw.wo, attention(l, norm(x, lw.attn_norm), pos), 0, d));
      const vec xn = norm(x, lw.mlp_norm);
      const vec gate = linear(lw.wgate_up, xn, 0, s_.ffn);
      const vec up = linear(lw.wgate_up, xn, s_.ffn, s_.ffn);
      vec h(s_.ffn);
      for (std::size_t i = 0; i < h.size(); ++i) h[i] = gate[i] / (1 + std::exp(-gate[i])) * up[i];
      add(x, linear(lw.wdown, h, 0, d));
    }
    return linear(w_.lm_head, norm(x, w_.final_norm), 0, s_.vocab);
  }

  const vec& k(std::uint32_t layer) const { return k_[layer]; }
  const vec& v(std::uint32_t layer) const { return v_[layer]; }

 private:
  // Rows [first, first + count) of the [out x in] matrix w, times x.
  static vec linear(const std::vector<float>& w, const vec& x, std::size_t first,
                    std::size_t count) {
    vec y(count, 0.0);
    for (std::size_t o = 0; o < count; ++o)
      for (std::size_t k = 0; k < x.size(); ++k) y[o] += w[(first + o) * x.size() + k] * x[k];
    return y;
  }
  static void add(vec& x, const vec& y) {
    for (std::size_t i = 0; i < x.size(); ++i) x[i] += y[i];
  }
  vec norm(const vec& x, const std::vector<float>& gain) const {
    double ss = 0;
    for (const double v : x) ss += v * v;
    const double inv = 1 / std::sqrt(ss / static_cast<double>(x.size()) + s_.norm_eps);
    vec y(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) y[i] = x[i] * inv * gain[i];
    return y;
  }
  void rope(double* v, std::uint32_t pos) const {
    const std::size_t hd = s_.head_dim();
    for (std::size_t i = 0; i < hd / 2; ++i) {
      const double a =
          pos * std::pow(s_.rope_theta, -2.0 * static_cast<double>(i) / static_cast<double>(hd));
      const double x0 = v[i], x1 = v[i + hd / 2];
      v[i] = x0 * std::cos(a) - x1 * std::sin(a);
      v[i + hd / 2] = x0 * std::sin(a) + x1 * std::cos(a);
    }
  }
  vec attention(std::uint32_t l, const vec& xn, std::uint32_t pos) {
    const std::size_t d = s_.hidden, hd = s_.head_dim(), kvw = s_.kv_width();
    vec q = linear(w_.layers[l].wqkv, xn, 0, d);
    vec k = linear(w_.layers[l].wqkv, xn, d, kvw);
    const vec v = linear(w_.layers[l].wqkv, xn, d + kvw, kvw);
    for (std::size_t h = 0; h < s_.heads; ++h) rope(&q[h * hd], pos);
    for (std::size_t h = 0; h < s_.kv_heads; ++h) rope(&k[h * hd], pos);
    k_[l].insert(k_[l].end(), k.begin(), k.end());
    v_[l].insert(v_[l].end(), v.begin(), v.end());
    vec out(d, 0.0);
    for (std::size_t h = 0; h < s_.heads; ++h) {
      const std::size_t g = h / (s_.heads / s_.kv_heads);
      vec p(pos + 1);
      for (std::size_t t = 0; t <= pos; ++t) {
        for (std::size_t j = 0; j < hd; ++j) p[t] += q[h * hd + j] * k_[l][t * kvw + g * hd + j];
        p[t] /= std::sqrt(static_cast<double>(hd));
      }
      const double m = *std::max_element(p.begin(), p.end());
      double sum = 0;
      for (double& e : p) sum += (e = std::exp(e - m));
      for (std::size_t t = 0; t <= pos; ++t)
        for (std::size_t j = 0; j < hd; ++j)
          out[h * hd + j] += p[t] / sum * v_[l][t * kvw + g * hd + j];
    }
    return out;
  }

  const model_spec& s_;
  const weights& w_;
  std::vector<vec> k_, v_;  // [pos x kv_width] per layer
};

template <class A, class B>
double max_relative_error(const A& got, const B& want) {
  double scale = 0, err = 0;
  for (std::size_t i = 0; i < want.size(); ++i) {
    scale = std::max(scale, std::abs(double{want[i]}));
    err = std::max(err, std::abs(double{got[i]} - double{want[i]}));
  }
  return err / scale;
}

class CpuReference : public ::testing::TestWithParam<std::uint32_t> {};

TEST_P(CpuReference, ForwardMatchesNaiveReference) {
  auto spec = test::tiny_spec();
  spec.kv_heads = GetParam();
  auto b = test::make(spec, 5, 64, 3);  // 3-token blocks: the prompt spans 7 blocks
  reference_model ref{spec, b->parameters()};
  const auto p = test::prompt(21, 20, spec.vocab);
  vec logits;
  for (std::uint32_t i = 0; i < p.size(); ++i) logits = ref.step(p[i], i);
  token_id next = test::run_ok(*b, batch{{test::prefill(1, 0, p)}})[0];
  for (std::uint32_t pos = 20; pos < 24; ++pos) {
    SCOPED_TRACE("position " + std::to_string(pos));
    const auto got = b->last_logits();
    ASSERT_EQ(got.size(), spec.vocab);
    EXPECT_LT(max_relative_error(got, logits), tolerance);
    EXPECT_EQ(next, std::max_element(logits.begin(), logits.end()) - logits.begin());
    logits = ref.step(next, pos);
    next = test::run_ok(*b, batch{{test::decode(1, pos, next)}})[0];
  }
  EXPECT_LT(max_relative_error(b->last_logits(), logits), tolerance);
  for (std::uint32_t l = 0; l < spec.layers; ++l) {
    auto chunk = b->export_kv(1, {l, l + 1}, {0, 24});
    ASSERT_TRUE(chunk.ok());
    std::vector<float> kv(chunk->data.size() / sizeof(float));
    std::memcpy(kv.data(), chunk->data.data(), chunk->data.size());
    const std::size_t half = kv.size() / 2;
    EXPECT_LT(max_relative_error(
                  std::vector<float>(kv.begin(), kv.begin() + static_cast<long>(half)), ref.k(l)),
              tolerance);
    EXPECT_LT(max_relative_error(std::vector<float>(kv.begin() + static_cast<long>(half), kv.end()),
                                 ref.v(l)),
              tolerance);
  }
}

INSTANTIATE_TEST_SUITE_P(KvHeads, CpuReference, ::testing::Values(4u, 2u, 1u),
                         [](const auto& p) { return "kv_heads_" + std::to_string(p.param); });

}  // namespace
}  // namespace accellm::device::cpu

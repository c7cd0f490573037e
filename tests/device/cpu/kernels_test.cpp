// cpu kernels against plain double-precision loops (tolerance 1e-5 relative),
// plus the row-invariance property batch invariance is built on.
#include "device/cpu/kernels.hpp"

#include "device/cpu/weights.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

namespace accellm::device::cpu {
namespace {

std::vector<float> random(std::size_t n, std::uint64_t seed) {
  splitmix64 rng{seed};
  std::vector<float> v(n);
  for (float& x : v) x = rng.uniform();
  return v;
}

TEST(CpuKernels, MatmulMatchesNaiveLoops) {
  // Odd sizes exercise every tile shape and the k tail.
  for (const auto [rows, in, out] :
       {std::array<std::size_t, 3>{7, 13, 5}, {4, 64, 2}, {9, 176, 33}}) {
    const auto x = random(rows * in, 1);
    const auto w = random(out * in, 2);
    std::vector<float> y(rows * out);
    matmul(x.data(), rows, in, w.data(), out, y.data());
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t o = 0; o < out; ++o) {
        double ref = 0;
        for (std::size_t k = 0; k < in; ++k) ref += double{x[r * in + k]} * w[o * in + k];
        EXPECT_NEAR(y[r * out + o], ref, 1e-5 * (std::abs(ref) + 1)) << r << "," << o;
      }
  }
}

TEST(CpuKernels, MatmulRowIsBitIdenticalForAnyRowCountAndPosition) {
  const std::size_t in = 93, out = 37;
  const auto w = random(out * in, 3);
  const auto row = random(in, 4);
  std::vector<float> alone(out);
  matmul(row.data(), 1, in, w.data(), out, alone.data());
  for (std::size_t rows : {2u, 3u, 4u, 5u, 8u, 11u}) {
    for (std::size_t at = 0; at < rows; ++at) {
      auto x = random(rows * in, 5 + rows);
      std::copy(row.begin(), row.end(), x.begin() + static_cast<long>(at * in));
      std::vector<float> y(rows * out);
      matmul(x.data(), rows, in, w.data(), out, y.data());
      EXPECT_EQ(std::memcmp(y.data() + at * out, alone.data(), out * sizeof(float)), 0)
          << "rows " << rows << " at " << at;
    }
  }
}

TEST(CpuKernels, DotEqualsOneRowMatmul) {
  const auto a = random(71, 6), b = random(71, 7);
  float y = 0;
  matmul(a.data(), 1, 71, b.data(), 1, &y);
  EXPECT_EQ(dot(a.data(), b.data(), 71), y);
}

TEST(CpuKernels, RmsnormMatchesFormula) {
  const auto x = random(64, 8), g = random(64, 9);
  std::vector<float> y(64);
  rmsnorm(x.data(), g.data(), 64, 1e-5f, y.data());
  double ss = 0;
  for (const float v : x) ss += double{v} * v;
  const double inv = 1.0 / std::sqrt(ss / 64 + 1e-5);
  for (std::size_t i = 0; i < 64; ++i)
    EXPECT_NEAR(y[i], x[i] * inv * g[i], 1e-5 * std::abs(x[i] * inv * g[i]) + 1e-7);
}

TEST(CpuKernels, ExpFixedMatchesStdExp) {
  for (float x = -87.0f; x <= 88.0f; x += 0.0137f) {
    const double ref = std::exp(double{x});
    ASSERT_NEAR(exp_fixed(x), ref, 4e-7 * ref) << x;
  }
  EXPECT_EQ(exp_fixed(0.0f), 1.0f);
  EXPECT_GT(exp_fixed(-1000.0f), 0.0f);  // clamped, never a denormal or zero
  EXPECT_TRUE(std::isfinite(exp_fixed(1000.0f)));
}

TEST(CpuKernels, SoftmaxSumsToOneAndArgmaxTakesTheLowestTie) {
  std::vector<float> x{1.0f, 3.0f, -2.0f, 3.0f, 0.5f};
  EXPECT_EQ(argmax(x), 1u);
  softmax(x);
  double sum = 0;
  for (const float v : x) sum += v;
  EXPECT_NEAR(sum, 1.0, 1e-6);
  EXPECT_EQ(x[1], x[3]);
  EXPECT_EQ(argmax(std::vector<float>{}), 0u);
}

struct rope_fixture {
  std::size_t head_dim = 16, positions = 64;
  std::vector<float> cos = std::vector<float>(positions * head_dim / 2);
  std::vector<float> sin = std::vector<float>(positions * head_dim / 2);
  rope_fixture() { fill_rope_table(positions, head_dim, 10000.0, cos.data(), sin.data()); }
  rope_table table() const { return {head_dim / 2, cos.data(), sin.data()}; }
};

TEST(CpuKernels, RopeAtPositionZeroIsIdentity) {
  rope_fixture f;
  const auto x = random(3 * f.head_dim, 10);
  auto y = x;
  rope(y.data(), 3, 0, f.table());
  EXPECT_EQ(y, x);
}

TEST(CpuKernels, RopeRotatesPairsAndKeepsNorms) {
  rope_fixture f;
  const auto x = random(f.head_dim, 11);
  auto y = x;
  rope(y.data(), 1, 5, f.table());
  EXPECT_NE(y, x);
  for (std::size_t i = 0; i < f.head_dim / 2; ++i) {
    const double before = std::hypot(x[i], x[i + 8]), after = std::hypot(y[i], y[i + 8]);
    EXPECT_NEAR(after, before, 1e-6);
  }
  // Frequency 0 turns by exactly the position in radians.
  EXPECT_NEAR(y[0], x[0] * std::cos(5.0) - x[8] * std::sin(5.0), 1e-6);
}

TEST(CpuKernels, RopeScoresDependOnlyOnRelativePosition) {
  rope_fixture f;
  const auto q = random(f.head_dim, 12), k = random(f.head_dim, 13);
  auto score = [&](std::size_t m, std::size_t n) {
    auto a = q, b = k;
    rope(a.data(), 1, m, f.table());
    rope(b.data(), 1, n, f.table());
    return dot(a.data(), b.data(), f.head_dim);
  };
  EXPECT_NEAR(score(10, 7), score(3, 0), 1e-5);
  EXPECT_NEAR(score(40, 33), score(7, 0), 1e-5);
  EXPECT_GT(std::abs(score(10, 7) - score(10, 2)), 1e-4);
}

TEST(CpuKernels, SiluMulMatchesFormula) {
  const auto g = random(40, 14), u = random(40, 15);
  std::vector<float> h(40);
  silu_mul(g.data(), u.data(), 40, h.data());
  for (std::size_t i = 0; i < 40; ++i) {
    const double ref = g[i] / (1.0 + std::exp(-double{g[i]})) * u[i];
    EXPECT_NEAR(h[i], ref, 1e-6 * std::abs(ref) + 1e-7);
  }
}

}  // namespace
}  // namespace accellm::device::cpu

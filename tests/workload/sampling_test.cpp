#include "workload/sampling.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

namespace accellm::workload {
namespace {

constexpr int draws = 200'000;
constexpr std::uint64_t seed = 2024;

struct sample_moments {
  double mean = 0, variance = 0;
};

template <class Draw>
sample_moments sample(Draw draw) {
  double sum = 0, sum_sq = 0;
  for (int i = 0; i < draws; ++i) {
    const double x = draw();
    sum += x;
    sum_sq += x * x;
  }
  const double mean = sum / draws;
  return {mean, sum_sq / draws - mean * mean};
}

TEST(Sampling, UniformIsInUnitIntervalWithMeanHalf) {
  auto rng = seeded_engine(seed, 0);
  double lo = 1, hi = 0;
  const auto m = sample([&] {
    const double u = uniform01(rng);
    lo = std::min(lo, u);
    hi = std::max(hi, u);
    return u;
  });
  EXPECT_GE(lo, 0.0);
  EXPECT_LT(hi, 1.0);
  EXPECT_NEAR(m.mean, 0.5, 0.005);
  EXPECT_NEAR(m.variance, 1.0 / 12, 0.002);
}

TEST(Sampling, ExponentialHasItsMean) {
  auto rng = seeded_engine(seed, 1);
  const auto m = sample([&] { return exponential(rng, 2.5); });
  EXPECT_NEAR(m.mean, 2.5, 0.03);
  EXPECT_NEAR(m.variance, 6.25, 0.2);
}

TEST(Sampling, NormalIsStandard) {
  auto rng = seeded_engine(seed, 2);
  const auto m = sample([&] { return standard_normal(rng); });
  EXPECT_NEAR(m.mean, 0.0, 0.01);
  EXPECT_NEAR(m.variance, 1.0, 0.02);
}

// Mean k * scale, variance k * scale^2, for shapes below, at and above 1.
TEST(Sampling, GammaHasItsMoments) {
  for (const double k : {0.25, 1.0, 4.0}) {
    SCOPED_TRACE("k " + std::to_string(k) + ", seed " + std::to_string(seed));
    auto rng = seeded_engine(seed, 3);
    const double scale = 0.5;
    const auto m = sample([&] { return gamma(rng, k, scale); });
    EXPECT_NEAR(m.mean, k * scale, 0.02 * k * scale);
    EXPECT_NEAR(m.variance, k * scale * scale, 0.05 * k * scale * scale);
  }
}

TEST(Sampling, SeedsAndStreamsGiveDifferentSequences) {
  auto a = seeded_engine(1, 0), b = seeded_engine(1, 0);
  auto c = seeded_engine(2, 0), d = seeded_engine(1, 1);
  const auto first = a();
  EXPECT_EQ(first, b());
  EXPECT_NE(first, c());
  EXPECT_NE(first, d());
}

}  // namespace
}  // namespace accellm::workload

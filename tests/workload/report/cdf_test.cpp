#include "workload/report/cdf.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

namespace accellm::report {
namespace {

TEST(Cdf, KnownValuesGiveRankOverCount) {
  const std::vector<point> c = cdf({30.0, 10.0, 20.0, 20.0});
  ASSERT_EQ(c.size(), 4u);
  EXPECT_DOUBLE_EQ(c[0].x, 10.0);
  EXPECT_DOUBLE_EQ(c[0].y, 0.25);
  EXPECT_DOUBLE_EQ(c[1].x, 20.0);
  EXPECT_DOUBLE_EQ(c[1].y, 0.5);
  EXPECT_DOUBLE_EQ(c[2].x, 20.0);
  EXPECT_DOUBLE_EQ(c[2].y, 0.75);
  EXPECT_DOUBLE_EQ(c[3].x, 30.0);
  EXPECT_DOUBLE_EQ(c[3].y, 1.0);
}

TEST(Cdf, DropsNonFiniteValuesAndEmptyGivesNothing) {
  const double inf = std::numeric_limits<double>::infinity();
  const std::vector<point> c = cdf({5.0, std::nan(""), inf});
  ASSERT_EQ(c.size(), 1u);
  EXPECT_DOUBLE_EQ(c[0].x, 5.0);
  EXPECT_DOUBLE_EQ(c[0].y, 1.0);
  EXPECT_TRUE(cdf(std::vector<double>{}).empty());
}

TEST(Cdf, ThinningKeepsEvenlySpacedRanksWithBothEnds) {
  std::vector<double> v;
  for (int i = 1; i <= 1001; ++i) v.push_back(i);  // the i-th value is i
  const std::vector<point> c = cdf(v, 11);
  ASSERT_EQ(c.size(), 11u);
  for (std::size_t k = 0; k < c.size(); ++k) {
    const double rank = 1 + 100.0 * static_cast<double>(k);
    EXPECT_DOUBLE_EQ(c[k].x, rank) << k;
    EXPECT_DOUBLE_EQ(c[k].y, rank / 1001.0) << k;
  }
}

TEST(Cdf, HistogramGivesTheFractionBelowEachUpperEdge) {
  const std::vector<point> c = cdf(std::vector<bucket>{{.lo = 0, .hi = 1, .count = 1},
                                                       {.lo = 1, .hi = 2, .count = 0},
                                                       {.lo = 2, .hi = 4, .count = 3}});
  ASSERT_EQ(c.size(), 2u);
  EXPECT_DOUBLE_EQ(c[0].x, 1.0);
  EXPECT_DOUBLE_EQ(c[0].y, 0.25);
  EXPECT_DOUBLE_EQ(c[1].x, 4.0);
  EXPECT_DOUBLE_EQ(c[1].y, 1.0);
  EXPECT_TRUE(cdf(std::vector<bucket>{{.lo = 0, .hi = 1, .count = 0}}).empty());
}

}  // namespace
}  // namespace accellm::report

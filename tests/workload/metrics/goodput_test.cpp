#include "workload/metrics/goodput.hpp"

#include <gtest/gtest.h>

#include <cmath>

namespace accellm::metrics {
namespace {

// Attainment 1 up to `knee` req/s, 0.5 above it.
auto step_at(double knee) {
  return [knee](double rate) -> result<double> { return rate <= knee ? 1.0 : 0.5; };
}

TEST(SearchGoodput, FindsTheKneeWithinTolerance) {
  const auto r = search_goodput(step_at(7.3), 1, 100);
  ASSERT_TRUE(r.ok()) << r.err().what();
  EXPECT_LE(r->rate, 7.3);
  EXPECT_GE(r->rate, 7.3 * (1 - 0.02));
  // Doubling 1, 2, 4, 8, then bisection of [4, 8].
  ASSERT_GE(r->probes.size(), 5u);
  EXPECT_EQ(r->probes[3].rate, 8);
  EXPECT_EQ(r->probes[3].attainment, 0.5);
  EXPECT_EQ(r->probes[4].rate, 6);
  EXPECT_LE(r->probes.size(), 16u);
}

TEST(SearchGoodput, RespectsMaxProbes) {
  int calls = 0;
  const auto counting = [&calls](double rate) -> result<double> {
    ++calls;
    return rate <= 7.3 ? 1.0 : 0.0;
  };
  const auto r = search_goodput(counting, 1, 100, 0.9, 0.02, 5);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(calls, 5);
  EXPECT_EQ(r->probes.size(), 5u);
  EXPECT_EQ(r->rate, 6);  // 1, 2, 4, 8 (fails), 6
}

TEST(SearchGoodput, StopsAtHi) {
  const auto r = search_goodput(step_at(1000), 1, 10);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->rate, 10);
  ASSERT_EQ(r->probes.size(), 5u);  // 1, 2, 4, 8, 10
  EXPECT_EQ(r->probes.back().rate, 10);
}

TEST(SearchGoodput, BisectsBelowLoWhenLoFails) {
  const auto r = search_goodput(step_at(0.3), 1, 10);
  ASSERT_TRUE(r.ok());
  EXPECT_LE(r->rate, 0.3);
  EXPECT_GE(r->rate, 0.3 * (1 - 0.02));
  const auto never_good = search_goodput([](double) -> result<double> { return 0.0; }, 1, 10);
  ASSERT_TRUE(never_good.ok());
  EXPECT_EQ(never_good->rate, 0);
  EXPECT_EQ(never_good->probes.size(), 16u);
}

TEST(SearchGoodput, ErrorsPropagate) {
  const auto failing = [](double rate) -> result<double> {
    if (rate > 3) return fail(errc::device_failure, "simulation exploded");
    return 1.0;
  };
  const auto r = search_goodput(failing, 1, 100);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code(), errc::device_failure);
  EXPECT_NE(r.err().message().find("simulation exploded"), std::string::npos);
  EXPECT_NE(r.err().message().find("4 req/s"), std::string::npos) << r.err().message();
}

TEST(SearchGoodput, RejectsBadArguments) {
  const auto f = step_at(5);
  EXPECT_EQ(search_goodput(f, 0, 10).err().code(), errc::invalid_argument);
  EXPECT_EQ(search_goodput(f, 5, 1).err().code(), errc::invalid_argument);
  EXPECT_EQ(search_goodput(f, 1, INFINITY).err().code(), errc::invalid_argument);
  EXPECT_EQ(search_goodput(f, 1, 10, 0).err().code(), errc::invalid_argument);
  EXPECT_EQ(search_goodput(f, 1, 10, 1.5).err().code(), errc::invalid_argument);
  EXPECT_EQ(search_goodput(f, 1, 10, 0.9, 0).err().code(), errc::invalid_argument);
  EXPECT_EQ(search_goodput(f, 1, 10, 0.9, 0.02, 0).err().code(), errc::invalid_argument);
}

TEST(CostEfficiency, DividesByPriceAndPower) {
  const efficiency e = cost_efficiency(12, 4, 3);
  EXPECT_DOUBLE_EQ(e.per_dollar_hour, 3);
  EXPECT_DOUBLE_EQ(e.per_kw, 4);
  const efficiency zero = cost_efficiency(12, 0, 0);
  EXPECT_EQ(zero.per_dollar_hour, 0);
  EXPECT_EQ(zero.per_kw, 0);
}

}  // namespace
}  // namespace accellm::metrics

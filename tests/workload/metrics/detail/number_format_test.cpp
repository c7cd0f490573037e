#include "workload/metrics/detail/number_format.hpp"

#include <gtest/gtest.h>

#include <limits>

namespace accellm::metrics::detail {
namespace {

TEST(NumberFormat, FixedDecimals) {
  EXPECT_EQ(fixed(1.5, 2), "1.50");
  EXPECT_EQ(fixed(0.0005, 3), "0.001");
  EXPECT_EQ(fixed(123456.0, 0), "123456");
  EXPECT_EQ(fixed(-2.25, 1), "-2.2");  // round half to even, as printf
  EXPECT_EQ(fixed(-0.0001, 3), "0.000");
  EXPECT_EQ(fixed(1e300, 1).size(), 303u);
}

TEST(NumberFormat, NonFinite) {
  EXPECT_EQ(fixed(std::numeric_limits<double>::infinity(), 2), "inf");
  EXPECT_EQ(fixed(-std::numeric_limits<double>::infinity(), 2), "-inf");
  EXPECT_EQ(fixed(std::numeric_limits<double>::quiet_NaN(), 2), "nan");
  EXPECT_EQ(shortest(std::numeric_limits<double>::infinity()), "inf");
}

TEST(NumberFormat, Shortest) {
  EXPECT_EQ(shortest(7.3), "7.3");
  EXPECT_EQ(shortest(4), "4");
}

TEST(NumberFormat, CsvField) {
  EXPECT_EQ(csv_field("pair0"), "pair0");
  EXPECT_EQ(csv_field("a,b"), "\"a,b\"");
  EXPECT_EQ(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(csv_field("two\nlines"), "\"two\nlines\"");
}

}  // namespace
}  // namespace accellm::metrics::detail

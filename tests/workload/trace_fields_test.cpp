#include "workload/trace_fields.hpp"

#include <gtest/gtest.h>

#include <string>

namespace accellm::workload::fields {
namespace {

// Day counts checked against Python's datetime.date.
static_assert(days_from_civil(1970, 1, 1) == 0);
static_assert(days_from_civil(2000, 3, 1) == 11017);
static_assert(days_from_civil(2023, 11, 16) == 19677);
static_assert(days_from_civil(2024, 2, 29) == 19782);
static_assert(days_from_civil(1969, 12, 31) == -1);

TEST(TraceFields, AzureTimestampToNanoseconds) {
  const auto t = parse_date_time("2023-11-16 18:15:46.6805900");
  ASSERT_TRUE(t.ok()) << t.err().what();
  EXPECT_EQ(*t, 1'700'158'546'680'590'000);
  EXPECT_EQ(*parse_date_time("1970-01-01 00:00:00"), 0);
  EXPECT_EQ(*parse_date_time("1970-01-01T00:00:01.5"), 1'500'000'000);
  EXPECT_EQ(*parse_date_time("1970-01-01 00:00:00.000000001"), 1);
  EXPECT_EQ(*parse_date_time("2024-02-29 23:59:59"), (19782 * 86'400 + 86'399) * 1'000'000'000LL);
}

TEST(TraceFields, BadDateTimesFail) {
  for (const char* text : {"", "2023-11-16", "2023/11/16 18:15:46", "2023-11-16 18:15:46.",
                           "2023-11-16 18:15:46.0123456789", "2023-11-16 18:15:46Z",
                           "2023-11-16 18:15:4x", "2023-02-29 00:00:00", "2023-13-01 00:00:00",
                           "2023-11-00 00:00:00", "2023-11-16 24:00:00", "2023-11-16 23:60:00",
                           "2023-11-16 23:59:60", "1969-12-31 23:59:59", "2201-01-01 00:00:00"}) {
    const auto t = parse_date_time(text);
    EXPECT_FALSE(t.ok()) << text;
    if (!t.ok()) {
      EXPECT_EQ(t.err().code(), errc::malformed);
    }
  }
  EXPECT_EQ(parse_date_time("yesterday").err().message(),
            "\"yesterday\" is not a date and time like 2023-11-16 18:15:46.6805900");
}

TEST(TraceFields, Counts) {
  EXPECT_EQ(*parse_count("0"), 0u);
  EXPECT_EQ(*parse_count("17"), 17u);
  EXPECT_EQ(*parse_count("4294967295"), 4294967295u);
  EXPECT_EQ(parse_count("4294967296").err().message(), "\"4294967296\" is over 4294967295");
  EXPECT_EQ(parse_count("123456789012345678901234").err().message(),
            "\"123456789012345678901234\" is over 4294967295");
  for (const char* text : {"", "-1", "+1", "1.0", "1e3", "abc", "12abc", " 1"}) {
    const auto n = parse_count(text);
    ASSERT_FALSE(n.ok()) << text;
    EXPECT_EQ(n.err().message(), "\"" + std::string{text} + "\" is not a non-negative integer");
  }
}

TEST(TraceFields, Seconds) {
  EXPECT_EQ(*parse_seconds("0"), 0);
  EXPECT_EQ(*parse_seconds("1.25"), 1'250'000'000);
  EXPECT_EQ(*parse_seconds("0.000000001"), 1);
  EXPECT_EQ(*parse_seconds("1e3"), 1'000'000'000'000);
  for (const char* text : {"", "-1", "nan", "inf", "1e10", "1s", "x"}) {
    EXPECT_FALSE(parse_seconds(text).ok()) << text;
  }
  EXPECT_EQ(*milliseconds_to_ns(1.5), 1'500'000);
  EXPECT_FALSE(milliseconds_to_ns(-1).ok());
}

TEST(TraceFields, SplitTrimsEveryField) {
  const auto f = split_csv(" a ,b,\tc\t,,");
  ASSERT_EQ(f.size(), 5u);
  EXPECT_EQ(f[0], "a");
  EXPECT_EQ(f[1], "b");
  EXPECT_EQ(f[2], "c");
  EXPECT_EQ(f[3], "");
  EXPECT_EQ(f[4], "");
  EXPECT_EQ(split_csv("").size(), 1u);
  EXPECT_EQ(trim("  "), "");
}

}  // namespace
}  // namespace accellm::workload::fields

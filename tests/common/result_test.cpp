#include "common/result.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <set>
#include <string>

namespace accellm {
namespace {

result<int> parse_positive(int x) {
  if (x <= 0) return fail(errc::out_of_range, "x: " + std::to_string(x) + " is not positive");
  return x;
}

TEST(result, holds_a_value_or_an_error) {
  auto ok = parse_positive(3);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, 3);
  auto bad = parse_positive(-2);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.err().code(), errc::out_of_range);
  EXPECT_EQ(bad.err().what(), "out_of_range: x: -2 is not positive");
}

TEST(result, moves_move_only_values_out) {
  result<std::unique_ptr<int>> r{std::make_unique<int>(7)};
  auto p = std::move(r).value();
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(*p, 7);
}

TEST(result, status_is_ok_by_default) {
  status s;
  EXPECT_TRUE(s.ok());
  status f = fail(errc::io_failure, "cannot open x.toml");
  EXPECT_FALSE(f.ok());
  EXPECT_EQ(f.err().code(), errc::io_failure);
}

TEST(error, context_prefixes_the_message) {
  auto e = fail(errc::malformed, "line 3: expected 3 fields");
  e.context("trace.csv");
  EXPECT_EQ(e.message(), "trace.csv: line 3: expected 3 fields");
  EXPECT_NE(e, fail(errc::malformed, "line 3: expected 3 fields"));
}

TEST(errc, every_code_has_a_distinct_name) {
  std::set<std::string_view> names;
  for (int c = static_cast<int>(errc::invalid_argument); c <= static_cast<int>(errc::internal);
       ++c) {
    auto name = to_string(static_cast<errc>(c));
    EXPECT_NE(name, "unknown") << c;
    EXPECT_TRUE(names.insert(name).second) << name;
  }
  EXPECT_EQ(to_string(static_cast<errc>(0)), "unknown");
}

}  // namespace
}  // namespace accellm

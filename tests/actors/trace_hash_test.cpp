#include "actors/trace_hash.hpp"

#include <gtest/gtest.h>

namespace accellm::actors {
namespace {

TEST(trace_hash, empty_is_the_fnv_offset_basis) {
  EXPECT_EQ(trace_hash{}.value(), 14695981039346656037ull);
}

TEST(trace_hash, known_fnv1a_vector) {
  // FNV-1a 64 of the single byte 'a' is 0xaf63dc4c8601ec8c; add(text) also
  // folds in a 0xff separator, so compute the expected value by hand.
  std::uint64_t h = 14695981039346656037ull;
  for (std::uint8_t b : {std::uint8_t{'a'}, std::uint8_t{0xff}}) {
    h ^= b;
    h *= 1099511628211ull;
  }
  EXPECT_EQ(trace_hash{}.add("a").value(), h);
}

TEST(trace_hash, field_boundaries_matter) {
  EXPECT_NE(trace_hash{}.add("ab").add("c").value(), trace_hash{}.add("a").add("bc").value());
}

TEST(trace_hash, every_bit_of_an_integer_matters) {
  const std::uint64_t base = trace_hash{}.add(0).add(0).value();
  for (int bit = 0; bit < 64; ++bit) {
    SCOPED_TRACE(bit);
    const std::uint64_t one = std::uint64_t{1} << bit;
    EXPECT_NE(trace_hash{}.add(one).add(0).value(), base) << "in the first word";
    EXPECT_NE(trace_hash{}.add(0).add(one).value(), base) << "in the second word";
  }
}

TEST(trace_hash, order_matters) {
  auto x = trace_hash{}.add(1).event().add(2).event();
  auto y = trace_hash{}.add(2).event().add(1).event();
  EXPECT_NE(x.value(), y.value());
  EXPECT_EQ(x.events(), 2u);
}

}  // namespace
}  // namespace accellm::actors

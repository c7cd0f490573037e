// shared_bytes: copies share one buffer, which goes back to its owner with
// the last of them; a vector is taken without copying its bytes; sub-ranges
// are clamped; equality compares the bytes.
#include "common/shared_bytes.hpp"

#include <gtest/gtest.h>

#include <cstddef>
#include <memory>
#include <vector>

namespace accellm {
namespace {

std::vector<std::byte> counting(std::size_t n) {
  std::vector<std::byte> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::byte>(i);
  return v;
}

TEST(SharedBytes, TakesAVectorsBufferWithoutCopyingIt) {
  std::vector<std::byte> v = counting(100);
  const std::byte* where = v.data();
  const shared_bytes b{std::move(v)};
  EXPECT_EQ(b.data(), where);
  EXPECT_EQ(b.size(), 100u);
  EXPECT_EQ(b[42], std::byte{42});
  EXPECT_EQ(b.to_vector(), counting(100));
}

TEST(SharedBytes, CopiesAndSubRangesShareOneBuffer) {
  std::vector<std::byte> store = counting(64);
  const shared_bytes b{std::shared_ptr<const void>{store.data(), [](const void*) {}}, store.data(),
                       store.size()};
  const shared_bytes copy = b;  // NOLINT(performance-unnecessary-copy-initialization)
  const shared_bytes part = b.sub(8, 16);
  EXPECT_EQ(copy.data(), store.data());
  EXPECT_EQ(part.data(), store.data() + 8);
  EXPECT_EQ(part.size(), 16u);
  EXPECT_EQ(part[0], std::byte{8});
  EXPECT_EQ(b.use_count(), 3);
}

TEST(SharedBytes, TheKeeperRunsOnceTheLastShareIsGone) {
  int given_back = 0;
  std::vector<std::byte> store = counting(64);
  {
    shared_bytes b{
        std::shared_ptr<const void>{store.data(), [&given_back](const void*) { ++given_back; }},
        store.data(), store.size()};
    const shared_bytes copy = b;
    shared_bytes part = b.sub(0, 4);
    b = {};
    EXPECT_EQ(given_back, 0);
    part = {};
    EXPECT_EQ(given_back, 0);  // `copy` still holds it
    EXPECT_EQ(copy.size(), 64u);
  }
  EXPECT_EQ(given_back, 1);
}

TEST(SharedBytes, SubRangesAreClampedToWhatThereIs) {
  const shared_bytes b{counting(10)};
  EXPECT_EQ(b.sub(4, 100).size(), 6u);
  EXPECT_EQ(b.sub(4, 100)[0], std::byte{4});
  EXPECT_TRUE(b.sub(10, 1).empty());
  EXPECT_TRUE(b.sub(99, 1).empty());
  EXPECT_EQ(b.sub(99, 1).use_count(), 0);  // an empty share holds nothing
}

TEST(SharedBytes, EqualityComparesTheBytesNotTheBuffers) {
  const shared_bytes a{counting(32)}, b{counting(32)};
  EXPECT_NE(a.data(), b.data());
  EXPECT_EQ(a, b);
  EXPECT_NE(a, shared_bytes{counting(31)});
  std::vector<std::byte> other = counting(32);
  other[31] = std::byte{0xff};
  EXPECT_NE(a, shared_bytes{other});
  EXPECT_EQ(shared_bytes{}, shared_bytes{std::vector<std::byte>{}});
}

TEST(SharedBytes, AnEmptyVectorHoldsNothing) {
  const shared_bytes b{std::vector<std::byte>{}};
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(b.data(), nullptr);
  EXPECT_EQ(b.use_count(), 0);
}

}  // namespace
}  // namespace accellm

// cpu::kv_cache: block accounting, atomic growth, row addressing.
#include "device/cpu/kv_cache.hpp"

#include <gtest/gtest.h>

#include <set>

namespace accellm::device::cpu {
namespace {

kv_shape shape() {
  return kv_shape{3, 8, 4, 6};
}  // 3 layers, width 8, 4 tokens a block, 6 blocks

TEST(CpuKvCache, GrowsByWholeBlocksAndReleases) {
  kv_cache c{shape()};
  EXPECT_EQ(c.extra_blocks(1, 9), 3u);
  auto s = c.grow(1, 9);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ((*s)->table.size(), 3u);
  EXPECT_EQ((*s)->layer_tokens, (std::vector<std::uint32_t>{0, 0, 0}));
  EXPECT_EQ(c.free_blocks(), 3u);
  EXPECT_EQ(c.extra_blocks(1, 12), 0u);
  EXPECT_EQ(c.extra_blocks(1, 13), 1u);
  c.release(1);
  EXPECT_EQ(c.free_blocks(), 6u);
  EXPECT_EQ(c.find(1), nullptr);
}

TEST(CpuKvCache, FailedGrowChangesNothing) {
  kv_cache c{shape()};
  ASSERT_TRUE(c.grow(1, 16).ok());
  auto more = c.grow(1, 40);
  ASSERT_FALSE(more.ok());
  EXPECT_EQ(more.err().code(), errc::out_of_memory);
  EXPECT_EQ(c.find(1)->table.size(), 4u);
  auto fresh = c.grow(2, 9);
  ASSERT_FALSE(fresh.ok());
  EXPECT_EQ(c.find(2), nullptr);
  EXPECT_EQ(c.free_blocks(), 2u);
}

TEST(CpuKvCache, EveryRowHasItsOwnPlace) {
  kv_cache c{shape()};
  auto a = c.grow(1, 10);
  auto b = c.grow(2, 10);
  ASSERT_TRUE(a.ok() && b.ok());
  std::set<const float*> rows;
  for (const auto* s : {*a, *b})
    for (std::uint32_t l = 0; l < 3; ++l)
      for (std::uint32_t p = 0; p < 10; ++p) {
        EXPECT_TRUE(rows.insert(c.k_row(*s, l, p)).second);
        EXPECT_TRUE(rows.insert(c.v_row(*s, l, p)).second);
      }
  // The attention view finds the same rows.
  const auto v = c.view(**a, 2);
  EXPECT_EQ(v.block_k(2) + 1 * 8, c.k_row(**a, 2, 9));
  EXPECT_EQ(v.block_k(2) + v.v_shift() + 1 * 8, c.v_row(**a, 2, 9));
}

TEST(CpuKvCache, CompleteTokensIsTheMinimumOverLayers) {
  kv_cache c{shape()};
  auto s = c.grow(1, 8);
  ASSERT_TRUE(s.ok());
  (*s)->layer_tokens = {8, 5, 8};
  EXPECT_EQ(kv_cache::complete_tokens(**s), 5u);
  EXPECT_FALSE(kv_cache::uniform(**s));
  (*s)->layer_tokens = {8, 8, 8};
  EXPECT_TRUE(kv_cache::uniform(**s));
}

}  // namespace
}  // namespace accellm::device::cpu

// The kernel names a cluster file's [cuda] table takes (config/
// cluster_config.hpp) against the ones the backend knows: every name the
// config reader admits must map to a kernel, or a worker would start with
// a file the reader accepted and then refuse it. No GPU needed.
#include "config/cluster_config.hpp"
#include "device/cuda/decode_attention.cuh"
#include "device/cuda/decode_choice.hpp"
#include "device/cuda/prefill_choice.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <string_view>

namespace accellm::device::cuda {
namespace {

TEST(kernel_names, every_prefill_attention_name_the_config_takes_is_a_rule) {
  for (std::string_view name : config::cuda_prefill_attention_kernels)
    EXPECT_TRUE(prefill_rule_named(name)) << name;
  EXPECT_EQ(prefill_rule_named("timed"), prefill_rule::timed);
  EXPECT_EQ(prefill_rule_named("rows64"), prefill_rule::rows64);
  EXPECT_EQ(prefill_rule_named("rows128"), prefill_rule::rows128_if_verified);
  EXPECT_EQ(prefill_rule_named("wgmma64"), prefill_rule::wgmma64_if_verified);
  EXPECT_EQ(prefill_rule_named("wgmma128"), prefill_rule::wgmma128_if_verified);
  EXPECT_EQ(prefill_rule_named("tma128"), prefill_rule::tma128_if_verified);
  EXPECT_EQ(prefill_rule_named("tma128pp"), prefill_rule::tma128pp_if_verified);
  EXPECT_EQ(prefill_rule_named("tma128n"), prefill_rule::tma128n_if_verified);
  EXPECT_FALSE(prefill_rule_named("rows32"));
  EXPECT_FALSE(prefill_rule_named(""));
}

TEST(kernel_names, the_config_takes_timed_and_exactly_the_decode_tiles_there_are) {
  const auto& names = config::cuda_decode_attention_tiles;
  ASSERT_EQ(std::size(names), std::size(decode_tiles) + 1);  // and "timed"
  for (std::string_view name : names) EXPECT_TRUE(decode_tile_rule_named(name)) << name;
  for (decode_tile t : decode_tiles) {
    EXPECT_EQ(decode_tile_named(decode_tile_name(t)), t);
    EXPECT_EQ(decode_tile_rule_named(decode_tile_name(t)), decode_tile_rule{t});
    EXPECT_NE(std::find(std::begin(names), std::end(names), decode_tile_name(t)), std::end(names))
        << decode_tile_name(t);
  }
  EXPECT_EQ(decode_tile_rule_named(config::cuda_config{}.decode_attention_tile),
            decode_tile_rule{});  // timed by default, as cuda_options
  EXPECT_FALSE(decode_tile_named("timed"));
  EXPECT_FALSE(decode_tile_rule_named("32X2"));
  EXPECT_FALSE(decode_tile_rule_named("?"));
}

}  // namespace
}  // namespace accellm::device::cuda

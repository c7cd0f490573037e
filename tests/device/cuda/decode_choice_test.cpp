// decode_choice: the decode attention tiles other than 32x2 are verified
// against it before they are timed, and a tile that fails to launch or
// disagrees (an item left unwritten, a head zeroed) is never chosen; a
// probe without room keeps 32x2. The rule and argument checks need no GPU.
#include "device/cuda/decode_choice.hpp"

#include "tests/device/cuda/cuda_test_util.hpp"

#include <gtest/gtest.h>

#include <iostream>
#include <string>

namespace accellm::device::cuda {
namespace {

const attn_shape llama3_quarter{8, 2, 128};  // GQA 4:1 at head_dim 128

decode_probe_options with(decode_fn candidate = &decode_attention) {
  decode_probe_options o;
  o.items = 16;
  o.context = 512;
  o.target_blocks = 32 * 132;  // an H100's: a few splits per item at 512 positions
  o.candidate = candidate;
  return o;
}

// Faulty candidates, each run for the tiles other than 32x2.
status refuses(const decode_attention_args&, cudaStream_t) {
  return fail(errc::invalid_argument, "test: refused");
}
status leaves_an_item(const decode_attention_args& a, cudaStream_t s) {
  decode_attention_args b = a;
  b.n_items = a.n_items - 1;  // the last item's row keeps the probe's NaN bits
  return decode_attention(b, s);
}
status zeroes_one_head(const decode_attention_args& a, cudaStream_t s) {
  // Finite but wrong: head 0 of item 3's row (a softmax average of V rows
  // in [-1, 1)) set to zero.
  ACCELLM_TRY(decode_attention(a, s));
  ACCELLM_CUDA_TRY(cudaMemsetAsync(a.out + 3 * a.shape.q_width(), 0,
                                   a.shape.head_dim * sizeof(__nv_bfloat16), s));
  return {};
}

TEST(decode_choice, a_fixed_tile_runs_no_probe) {
  // No CUDA call: runs without a GPU.
  auto o = with();
  o.rule = decode_tile_rule{decode_tile::keys64_stages2};
  auto c = choose_decode_tile(llama3_quarter, 16, nullptr, o);
  ASSERT_TRUE(c.ok()) << c.err().what();
  EXPECT_EQ(c->tile, decode_tile::keys64_stages2);
  EXPECT_TRUE(c->trials.empty());
  EXPECT_EQ(c->items, 0u);
  EXPECT_NE(describe(*c).find("64x2: by rule"), std::string::npos) << describe(*c);
}

TEST(decode_choice, a_head_dim_with_one_tile_runs_no_probe) {
  auto c = choose_decode_tile(attn_shape{4, 2, 32}, 16, nullptr, with());
  ASSERT_TRUE(c.ok()) << c.err().what();
  EXPECT_EQ(c->tile, decode_tile::keys32_stages2);
  EXPECT_TRUE(c->trials.empty());
  EXPECT_NE(c->note.find("head_dim 32"), std::string::npos) << c->note;
}

TEST(decode_choice, refuses_an_empty_probe) {
  auto o = with();
  o.items = 0;
  auto c = choose_decode_tile(llama3_quarter, 16, nullptr, o);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.err().code(), errc::invalid_argument);
}

TEST(decode_choice, a_probe_without_room_keeps_the_default) {
  auto o = with();
  o.max_kv_bytes = 1024;  // not one block of 16 positions for 16 items
  auto c = choose_decode_tile(llama3_quarter, 16, nullptr, o);
  ASSERT_TRUE(c.ok()) << c.err().what();
  EXPECT_EQ(c->tile, decode_tile::keys32_stages2);
  EXPECT_TRUE(c->trials.empty());
  EXPECT_NE(c->note.find("no room"), std::string::npos) << c->note;
}

TEST(decode_choice, timed_rule_verifies_and_times_every_tile) {
  ACCELLM_REQUIRE_GPU();
  auto s = stream::create();
  ASSERT_TRUE(s.ok());
  auto c = choose_decode_tile(llama3_quarter, 16, s->get(), with());
  ASSERT_TRUE(c.ok()) << c.err().what();
  ASSERT_EQ(c->trials.size(), std::size(decode_tiles) - 1) << describe(*c);
  EXPECT_GT(c->default_ms, 0.0f);
  EXPECT_EQ(c->items, 16u);
  EXPECT_EQ(c->context, 512u);
  const decode_trial* fastest = nullptr;
  for (const decode_trial& t : c->trials) {
    EXPECT_TRUE(t.verified) << describe(*c);
    EXPECT_LE(t.max_diff, 2e-2);
    EXPECT_GT(t.ms, 0.0f);
    if (fastest == nullptr || t.ms < fastest->ms) fastest = &t;
  }
  ASSERT_NE(fastest, nullptr);
  // Whichever won, it won by the rule: kept only under 0.97 of 32x2's time.
  EXPECT_EQ(c->tile,
            fastest->ms < 0.97f * c->default_ms ? fastest->tile : decode_tile::keys32_stages2)
      << describe(*c);
  std::cout << "llama3 quarter shape, 16 x 512: " << describe(*c) << "\n";
}

TEST(decode_choice, a_cap_on_the_probe_shortens_its_context) {
  ACCELLM_REQUIRE_GPU();
  auto s = stream::create();
  ASSERT_TRUE(s.ok());
  auto o = with();
  // 16 items x 256 KV width x 4 bytes: 16 KiB a position; room for 200 -> 192.
  o.max_kv_bytes = 200 * 16 * 256 * 4;
  auto c = choose_decode_tile(llama3_quarter, 16, s->get(), o);
  ASSERT_TRUE(c.ok()) << c.err().what();
  EXPECT_EQ(c->context, 192u) << describe(*c);
  EXPECT_FALSE(c->trials.empty());
}

TEST(decode_choice, never_keeps_a_faulty_tile) {
  ACCELLM_REQUIRE_GPU();
  auto s = stream::create();
  ASSERT_TRUE(s.ok());
  struct faulty {
    const char* name;
    decode_fn fn;
    bool launches;
  };
  for (const faulty& f :
       {faulty{"refuses", &refuses, false}, faulty{"leaves_an_item", &leaves_an_item, true},
        faulty{"zeroes_one_head", &zeroes_one_head, true}}) {
    SCOPED_TRACE(f.name);
    auto c = choose_decode_tile(llama3_quarter, 16, s->get(), with(f.fn));
    ASSERT_TRUE(c.ok()) << c.err().what();
    EXPECT_EQ(c->tile, decode_tile::keys32_stages2) << describe(*c);
    ASSERT_FALSE(c->trials.empty());
    for (const decode_trial& t : c->trials) {
      EXPECT_FALSE(t.verified);
      EXPECT_EQ(t.ms, 0.0f);  // never timed
      EXPECT_NE(t.note.find(f.launches ? "disagrees" : "failed to launch"), std::string::npos)
          << t.note;
    }
    EXPECT_EQ(cudaGetLastError(), cudaSuccess);  // nothing left behind
  }
}

// The split rules need no GPU. On an H100 (132 SMs x 6 blocks of 32x2 at
// head_dim 128 = 792 at once): 64 requests of Llama-2-7B's 32 KV heads at
// 512 positions make 2048 blocks; two splits (choose_decode_splits) make
// 5.2 waves, modelled 6 x 288 + 32, one split 3 waves of 544: one split.
TEST(decode_splits, waves_rule_counts_waves_of_resident_blocks) {
  EXPECT_EQ(choose_decode_splits(64, 32, 512, 32 * 132), 2u);
  EXPECT_EQ(choose_decode_splits_by_waves(64, 32, 512, 792), 1u);
  // 1024 positions: 3 splits by either rule (8 waves of 342 + 32).
  EXPECT_EQ(choose_decode_splits(64, 32, 1024, 32 * 132), 3u);
  EXPECT_EQ(choose_decode_splits_by_waves(64, 32, 1024, 792), 3u);
  // Llama-3-8B (8 KV heads) at 4096: 9 splits are 5.8 waves, 3 splits 1.9.
  EXPECT_EQ(choose_decode_splits(64, 8, 4096, 32 * 132), 9u);
  EXPECT_EQ(choose_decode_splits_by_waves(64, 8, 4096, 792), 3u);
  // One long request: split as far as 256 positions a split allow, every
  // block in one wave.
  EXPECT_EQ(choose_decode_splits_by_waves(1, 8, 8192, 792), 32u);
  // At least 256 positions a split (2048: 8; 256: 1), as the blocks rule:
  // Llama-2-70B's TP-8 shard (one KV head, 1188 tma16x3 blocks at once) at
  // 64 x 512 positions takes 2 splits, not 16 of one wave, which ran 9%
  // slower on the H100; no resident count is not a division by 0.
  EXPECT_EQ(choose_decode_splits_by_waves(1, 1, 20, 792), 1u);
  EXPECT_EQ(choose_decode_splits_by_waves(1, 1, 2048, 792), 8u);
  EXPECT_EQ(choose_decode_splits_by_waves(1, 1, 256, 792), 1u);
  EXPECT_EQ(choose_decode_splits_by_waves(64, 1, 512, 1188), 2u);
  EXPECT_EQ(choose_decode_splits(64, 1, 512, 32 * 132), 2u);
  EXPECT_EQ(choose_decode_splits_by_waves(0, 8, 512, 0), 1u);
}

TEST(decode_splits, rule_names_round_trip) {
  for (decode_split_rule r : {decode_split_rule::blocks, decode_split_rule::waves})
    EXPECT_EQ(decode_split_rule_named(decode_split_rule_name(r)), r);
  EXPECT_FALSE(decode_split_rule_named("wave").has_value());
  EXPECT_FALSE(decode_split_rule_named("").has_value());
}

TEST(decode_splits, blocks_per_sm_refuses_a_tile_not_built) {
  auto r = decode_blocks_per_sm(decode_tile::keys16_stages2, 32);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.err().what().find("tile 16x2 is built for head_dim 64 and 128 only"),
            std::string::npos)
      << r.err().what();
}

// Half the shared memory of 32x2, so at least as many blocks on an SM.
TEST(decode_splits, blocks_per_sm_follows_the_tiles_shared_memory) {
  ACCELLM_REQUIRE_GPU();
  auto wide = decode_blocks_per_sm(decode_tile::keys32_stages2, 128);
  auto narrow = decode_blocks_per_sm(decode_tile::keys16_stages2, 128);
  ASSERT_TRUE(wide.ok() && narrow.ok());
  EXPECT_GE(*wide, 1u);
  EXPECT_GE(*narrow, *wide);
  std::cout << "decode pass-1 blocks per SM at head_dim 128: 32x2 " << *wide << ", 16x2 " << *narrow
            << "\n";
}

}  // namespace
}  // namespace accellm::device::cuda

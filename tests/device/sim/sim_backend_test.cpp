#include "device/sim/sim_backend.hpp"

#include "device/sim/roofline_model.hpp"
#include "device/sim/sim_factory.hpp"
#include "tests/device/sim/batches.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <vector>

namespace accellm::device::sim {
namespace {

using testing::decode_item;
using testing::prefill_item;

// cpu-tiny (2 layers, KV width 32) on an H100 roofline, with a pool of only
// 4 blocks of 16 tokens so that running out of memory is easy.
class SimBackend : public ::testing::Test {
 protected:
  static std::unique_ptr<sim_backend> make(std::uint64_t blocks = 4) {
    const model_spec& m = *find_model("cpu-tiny");
    auto cost = roofline_model::create(m, *find_hardware("h100"), {1});
    EXPECT_TRUE(cost.ok());
    kv_geometry kv;
    kv.block_tokens = 16;
    kv.total_blocks = blocks;
    kv.bytes_per_block = m.kv_bytes_per_token(dtype::bf16) * 16;
    return std::make_unique<sim_backend>("sim:test", m,
                                         std::make_unique<roofline_model>(std::move(*cost)), kv);
  }

  static batch one(batch_item it) { return batch{{std::move(it)}}; }

  std::unique_ptr<sim_backend> b_ = make();
};

TEST_F(SimBackend, PrefillThenDecode) {
  auto r = b_->run(one(prefill_item(7, 0, 20)));
  ASSERT_TRUE(r.ok()) << r.err().what();
  EXPECT_GT(r->duration.count(), 0);
  ASSERT_EQ(r->next_tokens.size(), 1u);
  EXPECT_EQ(r->next_tokens[0], pseudo_token(7, 20, 256));
  EXPECT_EQ(b_->cached_tokens(7), 20u);
  EXPECT_EQ(b_->used_blocks(), 2u);
  auto d = b_->run(one(decode_item(7, 20)));
  ASSERT_TRUE(d.ok()) << d.err().what();
  EXPECT_EQ(b_->cached_tokens(7), 21u);
  EXPECT_EQ(b_->name(), "sim:test");
}

TEST_F(SimBackend, PseudoTokensAreDeterministicAndSpread) {
  std::set<token_id> seen;
  for (request_id r = 1; r <= 200; ++r) {
    const token_id t = pseudo_token(r, 3, 256);
    EXPECT_GE(t, 0);
    EXPECT_LT(t, 256);
    EXPECT_EQ(t, pseudo_token(r, 3, 256));
    seen.insert(t);
  }
  EXPECT_GT(seen.size(), 100u);  // 200 draws from 256 values: ~136 distinct
  EXPECT_NE(pseudo_token(1, 3, 1u << 30), pseudo_token(1, 4, 1u << 30));
}

TEST_F(SimBackend, NoOutputForNonFinalChunks) {
  auto r = b_->run(one(prefill_item(1, 0, 8, false)));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->next_tokens.at(0), no_token);
}

TEST_F(SimBackend, ContextMismatchFailsAndChangesNothing) {
  ASSERT_TRUE(b_->run(one(prefill_item(1, 0, 20))).ok());
  auto r = b_->run(batch{{decode_item(1, 19)}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code(), errc::out_of_range);
  EXPECT_NE(r.err().message().find("context 19"), std::string::npos) << r.err().message();
  EXPECT_EQ(b_->cached_tokens(1), 20u);
  // A batch with one bad item runs none of its items.
  ASSERT_TRUE(b_->run(one(prefill_item(2, 0, 4))).ok());
  auto mixed = b_->run(batch{{decode_item(2, 4), decode_item(1, 25)}});
  EXPECT_EQ(mixed.err().code(), errc::out_of_range);
  EXPECT_EQ(b_->cached_tokens(2), 4u);
  // The bad item alone is what check_item (and so screen) refuses.
  EXPECT_TRUE(b_->check_item(decode_item(2, 4)).ok());
  EXPECT_EQ(b_->check_item(decode_item(1, 25)).err().code(), errc::out_of_range);
  const screened_batch s = screen(*b_, batch{{decode_item(2, 4), decode_item(1, 25)}});
  ASSERT_EQ(s.refused.size(), 1u);
  EXPECT_EQ(s.refused[0].index, 1u);
  ASSERT_EQ(s.runnable.items.size(), 1u);
  EXPECT_EQ(s.runnable.items[0].request, 2u);
}

TEST_F(SimBackend, UnknownRequests) {
  EXPECT_EQ(b_->run(one(decode_item(42, 0))).err().code(), errc::not_found);
  EXPECT_EQ(b_->run(one(prefill_item(42, 16, 16))).err().code(), errc::not_found);
  EXPECT_EQ(b_->cached_tokens(42), 0u);
  b_->release(42);  // ignored
}

TEST_F(SimBackend, MalformedBatches) {
  EXPECT_EQ(b_->run(batch{}).err().code(), errc::invalid_argument);
  EXPECT_EQ(b_->run(batch{{prefill_item(1, 0, 4), prefill_item(1, 0, 4)}}).err().code(),
            errc::invalid_argument);
  batch_item wrong_ids = prefill_item(1, 0, 4);
  wrong_ids.tokens = {1, 2, 3};
  EXPECT_EQ(b_->run(one(wrong_ids)).err().code(), errc::invalid_argument);
  EXPECT_EQ(b_->check_item(wrong_ids).err().code(), errc::invalid_argument);
  batch_item empty = prefill_item(1, 0, 4);
  empty.num_tokens = 0;
  EXPECT_EQ(b_->check_item(empty).err().code(), errc::invalid_argument);
  EXPECT_EQ(b_->used_blocks(), 0u);
}

TEST_F(SimBackend, OutOfMemoryUntilReleased) {
  ASSERT_TRUE(b_->run(one(prefill_item(1, 0, 20))).ok());  // 2 of 4 blocks
  auto r = b_->run(one(prefill_item(2, 0, 40)));           // needs 3
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code(), errc::out_of_memory);
  EXPECT_EQ(b_->cached_tokens(2), 0u);
  EXPECT_EQ(b_->used_blocks(), 2u);
  EXPECT_TRUE(b_->run(one(prefill_item(2, 0, 32))).ok());  // exactly 2 more fit
  EXPECT_EQ(b_->used_blocks(), 4u);
  EXPECT_EQ(b_->run(one(decode_item(2, 32))).err().code(), errc::out_of_memory);
  EXPECT_TRUE(b_->run(one(decode_item(1, 20))).ok());  // block 2 of request 1 has room
  b_->release(1);
  EXPECT_EQ(b_->used_blocks(), 2u);
  EXPECT_TRUE(b_->run(one(decode_item(2, 32))).ok());
}

// cpu-tiny: 2 * kv width 32 * 2 bytes = 128 bytes per token and layer.
TEST_F(SimBackend, ExportCarriesBytesButNoData) {
  ASSERT_TRUE(b_->run(one(prefill_item(5, 0, 20))).ok());
  auto c = b_->export_kv(5, {0, 2}, {0, 20});
  ASSERT_TRUE(c.ok()) << c.err().what();
  EXPECT_EQ(c->bytes, 2u * 20 * 128);
  EXPECT_TRUE(c->data.empty());
  EXPECT_EQ(c->request, 5u);
  EXPECT_EQ((c->tokens), (index_range{0, 20}));
  EXPECT_EQ(b_->export_kv(5, {1, 2}, {4, 8})->bytes, 4u * 128);
  EXPECT_EQ(b_->export_kv(5, {0, 2}, {0, 21}).err().code(), errc::out_of_range);
  EXPECT_EQ(b_->export_kv(5, {0, 3}, {0, 20}).err().code(), errc::out_of_range);
  EXPECT_EQ(b_->export_kv(5, {1, 1}, {0, 20}).err().code(), errc::out_of_range);
  EXPECT_EQ(b_->export_kv(6, {0, 2}, {0, 20}).err().code(), errc::not_found);
}

// A copy cut off between layers (layer 0 ahead by 20 tokens, past a block
// boundary) runs from what every layer holds; its blocks follow the layer
// holding most, and all go back on release.
TEST_F(SimBackend, ACopyCutOffBetweenLayersRunsFromWhatEveryLayerHolds) {
  ASSERT_TRUE(b_->run(one(prefill_item(5, 0, 10))).ok());
  auto replica = make();
  ASSERT_TRUE(replica->import_kv(*b_->export_kv(5, {0, 2}, {0, 10})).ok());
  ASSERT_TRUE(b_->run(one(prefill_item(5, 10, 20))).ok());
  ASSERT_TRUE(replica->import_kv(*b_->export_kv(5, {0, 1}, {10, 30})).ok());
  EXPECT_EQ(replica->cached_tokens(5), 10u);
  EXPECT_EQ(replica->used_blocks(), 2u);
  EXPECT_EQ(replica->run(one(decode_item(5, 30))).err().code(), errc::out_of_range);
  ASSERT_TRUE(replica->run(one(decode_item(5, 10))).ok());
  EXPECT_EQ(replica->cached_tokens(5), 11u);
  EXPECT_EQ(replica->used_blocks(), 1u) << "the cut-off rows' block is freed";
  replica->release(5);
  EXPECT_EQ(replica->used_blocks(), 0u);
}

// The default run_streaming: the whole iteration, then each layer group
// exported (sizes only on sim), in order.
TEST_F(SimBackend, DefaultStreamingExportsEachGroupAfterTheIteration) {
  std::vector<index_range> layers;
  std::vector<std::uint64_t> bytes, cached;
  kv_stream s;
  s.requests = {5};
  s.layers_per_chunk = 1;
  s.sink = [&](std::vector<kv_chunk> chunks) {
    ASSERT_EQ(chunks.size(), 1u);
    layers.push_back(chunks[0].layers);
    bytes.push_back(chunks[0].bytes);
    cached.push_back(b_->cached_tokens(5));
  };
  ASSERT_FALSE(b_->run_streaming(one(prefill_item(5, 0, 20)), kv_stream{{6}, 1, s.sink, {}}).ok());
  EXPECT_EQ(b_->cached_tokens(5), 0u) << "a refused stream runs nothing";
  auto r = b_->run_streaming(one(prefill_item(5, 0, 20)), s);
  ASSERT_TRUE(r.ok()) << r.err().what();
  EXPECT_EQ(layers, (std::vector<index_range>{{0, 1}, {1, 2}}));
  EXPECT_EQ(bytes, (std::vector<std::uint64_t>{20 * 128, 20 * 128}));
  EXPECT_EQ(cached, (std::vector<std::uint64_t>{20, 20}));
}

// A replica fed layer by layer can decode once every layer holds the
// prompt, and it produces the token the primary would have.
TEST_F(SimBackend, LayerWiseImportThenDecode) {
  ASSERT_TRUE(b_->run(one(prefill_item(9, 0, 20))).ok());
  auto replica = make();
  ASSERT_TRUE(replica->import_kv(*b_->export_kv(9, {0, 1}, {0, 20})).ok());
  EXPECT_EQ(replica->cached_tokens(9), 0u);  // layer 1 still empty
  EXPECT_EQ(replica->run(one(decode_item(9, 20))).err().code(), errc::out_of_range);
  ASSERT_TRUE(replica->import_kv(*b_->export_kv(9, {1, 2}, {0, 12})).ok());
  ASSERT_TRUE(replica->import_kv(*b_->export_kv(9, {1, 2}, {12, 20})).ok());
  EXPECT_EQ(replica->cached_tokens(9), 20u);
  EXPECT_EQ(replica->used_blocks(), 2u);
  auto mine = replica->run(one(decode_item(9, 20)));
  auto theirs = b_->run(one(decode_item(9, 20)));
  ASSERT_TRUE(mine.ok() && theirs.ok());
  EXPECT_EQ(mine->next_tokens, theirs->next_tokens);
}

TEST_F(SimBackend, ImportRejectsBadChunks) {
  kv_chunk c{3, {0, 2}, {0, 16}, 2u * 16 * 128, {}};
  kv_chunk wrong_bytes = c;
  wrong_bytes.bytes += 1;
  EXPECT_EQ(b_->import_kv(wrong_bytes).err().code(), errc::invalid_argument);
  kv_chunk wrong_data = c;
  wrong_data.data = std::vector<std::byte>(10);
  EXPECT_EQ(b_->import_kv(wrong_data).err().code(), errc::invalid_argument);
  kv_chunk gap{3, {0, 2}, {4, 16}, 2u * 12 * 128, {}};
  EXPECT_EQ(b_->import_kv(gap).err().code(), errc::out_of_range);
  kv_chunk bad_layers{3, {0, 5}, {0, 16}, 5u * 16 * 128, {}};
  EXPECT_EQ(b_->import_kv(bad_layers).err().code(), errc::out_of_range);
  EXPECT_EQ(b_->cached_tokens(3), 0u);
  kv_chunk too_big{3, {0, 2}, {0, 80}, 2u * 80 * 128, {}};  // 5 blocks of 4
  EXPECT_EQ(b_->import_kv(too_big).err().code(), errc::out_of_memory);
  EXPECT_EQ(b_->used_blocks(), 0u);
  EXPECT_TRUE(b_->import_kv(c).ok());
  EXPECT_EQ(b_->used_blocks(), 1u);
}

// --- Factory -------------------------------------------------------------

// Llama-2-70B on 8 H100s, by hand: per device 80 GiB * 0.9 = 77,309,411,328
// bytes, minus weights 68,976,648,192 * 2 / 8 = 17,244,162,048, leaves
// 60,065,249,280; one KV head per device: 2 * 80 * 128 * 2 = 40,960 bytes per
// token -> 1,466,436 tokens -> 91,652 blocks of 16.
TEST(SimFactory, H100CapacityByHand) {
  auto b = make_sim_backend("sim:h100", *find_model("llama2-70b"), 8);
  ASSERT_TRUE(b.ok()) << b.err().what();
  EXPECT_EQ((*b)->name(), "sim:h100");
  EXPECT_EQ((*b)->kv().total_blocks, 91'652u);
  EXPECT_EQ((*b)->kv().block_tokens, 16u);
  EXPECT_EQ((*b)->kv().bytes_per_block, 16u * 327'680);
}

TEST(SimFactory, BuildsEveryBuiltInDevice) {
  for (std::string_view name : known_sim_devices()) {
    auto b = make_sim_backend(name, *find_model("llama2-70b"), 8);
    ASSERT_TRUE(b.ok()) << name << ": " << b.err().what();
    EXPECT_EQ((*b)->name(), name);
    auto r = (*b)->run(batch{{prefill_item(1, 0, 2048)}});
    ASSERT_TRUE(r.ok());
    EXPECT_GT(r->duration, std::chrono::milliseconds(10)) << name;
  }
  auto profile = make_sim_device("sim:h100-splitwise2023", *find_model("llama2-70b"), 8);
  ASSERT_TRUE(profile.ok());
  EXPECT_EQ(profile->timing_tp, 2u);
  EXPECT_NE(profile->caveat, "");
}

TEST(SimFactory, ClearErrors) {
  const model_spec& l70 = *find_model("llama2-70b");
  auto unknown = make_sim_backend("sim:h200", l70, 8);
  EXPECT_EQ(unknown.err().code(), errc::not_found);
  EXPECT_NE(unknown.err().message().find("sim:h100"), std::string::npos);  // lists known ones
  EXPECT_EQ(make_sim_backend("cpu", l70, 8).err().code(), errc::not_found);
  EXPECT_EQ(make_sim_backend("sim:h100", l70, 0).err().code(), errc::invalid_argument);
  EXPECT_EQ(make_sim_backend("sim:h100", l70, 3).err().code(), errc::invalid_argument);
  EXPECT_EQ(make_sim_backend("sim:h100", l70, 1).err().code(), errc::out_of_memory);
  EXPECT_EQ(make_sim_backend("sim:h100-splitwise2023", *find_model("llama3-8b"), 1).err().code(),
            errc::unsupported);
  EXPECT_EQ(make_sim_backend("sim:file:/nonexistent/p.csv", l70, 8).err().code(), errc::io_failure);
}

TEST(SimFactory, UserProfileFromFile) {
  const std::string path = ::testing::TempDir() + "accellm_factory_profile.csv";
  const auto write = [&path](const std::string& text) {
    std::ofstream out{path};
    out << text;
  };
  const std::string rows = "kind,batch,tokens,time_ms\nprefill,1,100,10\ndecode,1,100,5\n";
  write(rows);
  const model_spec& l8 = *find_model("llama3-8b");
  EXPECT_EQ(make_sim_backend("sim:file:" + path, l8, 1).err().code(), errc::config);
  write("@hardware,a100\n" + rows);
  auto b = make_sim_backend("sim:file:" + path, l8, 1);
  ASSERT_TRUE(b.ok()) << b.err().what();
  EXPECT_EQ((*b)->run(batch{{prefill_item(1, 0, 100)}})->duration, std::chrono::milliseconds(10));
}

}  // namespace
}  // namespace accellm::device::sim

// cuda_backend's refusals: bad device strings, unknown models, shapes the
// kernels cannot run, bad device indices, and bad batches. The ones that
// need no GPU run everywhere.
#include "device/cuda/cuda_backend.hpp"
#include "tests/device/cuda/cuda_test_util.hpp"

#include <gtest/gtest.h>

namespace accellm::device::cuda {
namespace {

TEST(cuda_backend_errors, device_names_must_be_cuda_n) {
  for (const char* bad : {"", "cuda", "cuda:", "cuda:x", "cuda:-1", "cuda:1x", "gpu:0", "CUDA:0"}) {
    auto r = parse_cuda_device(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.err().code(), errc::invalid_argument) << bad;
  }
  auto ok = parse_cuda_device("cuda:12");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, 12);
  auto b = make_cuda_backend("cuda0", "cpu-tiny");
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.err().code(), errc::invalid_argument);
}

TEST(cuda_backend_errors, unknown_model_and_unsplittable_shapes) {
  auto b = make_cuda_backend("cuda:0", "llama9-1t");
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.err().code(), errc::not_found);
  EXPECT_NE(b.err().message().find("llama9-1t"), std::string::npos);
  cuda_options tp3;
  tp3.tp = 3;  // llama2-70b has 8 KV heads
  b = make_cuda_backend("cuda:0", "llama2-70b", tp3);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.err().code(), errc::invalid_argument);
  model_spec odd = *find_model("cpu-tiny");
  odd.name = "odd";
  odd.hidden = 48;  // head_dim 12
  b = make_cuda_backend("cuda:0", odd);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.err().code(), errc::invalid_argument);
  cuda_options zero;
  zero.max_batch = 0;
  b = make_cuda_backend("cuda:0", "cpu-tiny", zero);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.err().code(), errc::invalid_argument);
  cuda_options tile;
  tile.decode_attention_tile = {decode_tile::keys16_stages4};
  b = make_cuda_backend("cuda:0", "cpu-tiny", tile);  // head_dim 16
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.err().code(), errc::invalid_argument);
  EXPECT_NE(b.err().message().find("decode attention tile 16x4 needs head_dim 64 or 128"),
            std::string::npos)
      << b.err().message();
}

TEST(cuda_backend_errors, device_index_beyond_the_gpus) {
  auto s = probe();
  auto b = make_cuda_backend("cuda:" + std::to_string(s.device_count), "cpu-tiny");
  ASSERT_FALSE(b.ok());
  // Without a GPU the answer is that CUDA is unusable; with one, no such device.
  EXPECT_EQ(b.err().code(), s.usable() ? errc::not_found : errc::device_failure) << b.err().what();
}

TEST(cuda_backend_errors, bad_batches_change_nothing) {
  ACCELLM_REQUIRE_GPU();
  cuda_options o;
  o.kv_blocks = 4;  // 64 tokens
  o.max_batch = 4;
  o.max_rows = 100;
  auto b = make_cuda_backend("cuda:0", "cpu-tiny", o);
  ASSERT_TRUE(b.ok()) << b.err().what();
  auto& be = **b;
  auto expect = [&](const batch& bt, errc code, const char* what) {
    auto r = be.run(bt);
    ASSERT_FALSE(r.ok()) << what;
    EXPECT_EQ(r.err().code(), code) << what << ": " << r.err().what();
    EXPECT_EQ(be.free_blocks(), 4u) << what;
  };
  // An item that is wrong on its own: check_item says so with the same code.
  auto expect_item = [&](const batch_item& it, errc code, const char* what) {
    expect(batch{{it}}, code, what);
    const status alone = be.check_item(it);
    ASSERT_FALSE(alone.ok()) << what;
    EXPECT_EQ(alone.err().code(), code) << what << ": " << alone.err().what();
  };
  expect(batch{}, errc::invalid_argument, "empty batch");
  expect_item(batch_item{1, phase::prefill, 0, 2, {1}, true}, errc::invalid_argument, "count");
  expect_item(batch_item{1, phase::decode, 0, 1, {1}, true}, errc::not_found, "unknown decode");
  expect_item(batch_item{1, phase::prefill, 0, 1, {256}, true}, errc::out_of_range, "token id");
  EXPECT_TRUE(
      be.check_item(batch_item{1, phase::prefill, 0, 40, std::vector<token_id>(40, 1), true}).ok())
      << "an item that fits alone";
  expect(batch{{batch_item{1, phase::prefill, 0, 40, std::vector<token_id>(40, 1), true},
                batch_item{2, phase::prefill, 0, 40, std::vector<token_id>(40, 1), true}}},
         errc::out_of_memory, "pool");
  expect(batch{{batch_item{1, phase::prefill, 0, 101, std::vector<token_id>(101, 1), true}}},
         errc::too_large, "max_rows");
  batch five;
  for (request_id r = 0; r < 5; ++r)
    five.items.push_back(batch_item{r, phase::prefill, 0, 1, {1}, true});
  expect(five, errc::too_large, "max_batch");
  expect(batch{{batch_item{1, phase::prefill, 0, 1, {1}, true},
                batch_item{1, phase::prefill, 0, 1, {1}, true}}},
         errc::invalid_argument, "duplicate");
  auto ex = be.export_kv(42, {0, 1}, {0, 1});
  ASSERT_FALSE(ex.ok());
  EXPECT_EQ(ex.err().code(), errc::not_found);
  kv_chunk c{7, {0, 1}, {0, 2}, 3, std::vector<std::byte>(3)};
  EXPECT_EQ(be.import_kv(c).err().code(), errc::invalid_argument);
  c = kv_chunk{7, {0, 9}, {0, 1}, 0, {}};
  EXPECT_EQ(be.import_kv(c).err().code(), errc::out_of_range);
}

}  // namespace
}  // namespace accellm::device::cuda

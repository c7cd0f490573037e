// cpu_backend error paths: every failure is a value with the right code, and a
// failed call leaves every request's cache exactly as it was.
#include "device/cpu/cpu_backend.hpp"
#include "tests/device/cpu/cpu_test_util.hpp"

#include <gtest/gtest.h>

namespace accellm::device::cpu {
namespace {

using test::decode;
using test::make;
using test::prefill;
using test::prompt;

// Request 1 holds 32 tokens (2 full blocks), request 2 holds 5; 5 blocks free.
class CpuBackendErrors : public ::testing::Test {
 protected:
  void SetUp() override {
    b_ = make(test::tiny_spec(), 1, 8);
    next1_ = test::run_ok(
        *b_, batch{{prefill(1, 0, prompt(1, 32, 256)), prefill(2, 0, prompt(2, 5, 256))}})[0];
    snapshot_ = state();
  }

  struct snapshot {
    std::vector<std::byte> kv1, kv2;
    std::uint32_t cached1 = 0, cached2 = 0;
    std::uint64_t free = 0;
    bool operator==(const snapshot&) const = default;
  };
  snapshot state() {
    return {test::all_kv(*b_, 1), test::all_kv(*b_, 2), b_->cached_tokens(1), b_->cached_tokens(2),
            b_->free_blocks()};
  }

  // Runs `extra` after a valid decode of request 1 and expects `code` with no change.
  void expect_run_fails(batch_item extra, errc code) {
    auto r = b_->run(batch{{decode(1, 32, next1_), std::move(extra)}});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.err().code(), code) << r.err().what();
    EXPECT_FALSE(r.err().message().empty());
    EXPECT_TRUE(state() == snapshot_) << "a failed run changed a cache";
  }

  // expect_run_fails, and the item is one the device refuses alone: its
  // check_item fails with `code`, and screen() keeps request 1's decode.
  void expect_refused(const batch_item& extra, errc code) {
    expect_run_fails(extra, code);
    const status alone = b_->check_item(extra);
    ASSERT_FALSE(alone.ok());
    EXPECT_EQ(alone.err().code(), code) << alone.err().what();
    const screened_batch s = screen(*b_, batch{{decode(1, 32, next1_), extra}});
    ASSERT_EQ(s.refused.size(), 1u);
    EXPECT_EQ(s.refused[0].index, 1u);
    EXPECT_EQ(s.refused[0].why, alone.err());
    ASSERT_EQ(s.runnable.items.size(), 1u);
    EXPECT_EQ(s.runnable.items[0].request, 1u);
    EXPECT_EQ(s.from, (std::vector<std::size_t>{0}));
    EXPECT_TRUE(state() == snapshot_) << "screening changed a cache";
  }

  std::unique_ptr<cpu_backend> b_;
  token_id next1_ = 0;
  snapshot snapshot_;
};

TEST_F(CpuBackendErrors, ContextMismatch) {
  expect_refused(decode(2, 4, 7), errc::invalid_argument);
  expect_refused(prefill(2, 6, {1, 2}), errc::invalid_argument);
  expect_refused(prefill(2, 0, {1, 2}), errc::invalid_argument);  // restart of a cached request
}

TEST_F(CpuBackendErrors, UnknownRequest) {
  expect_refused(decode(77, 0, 3), errc::not_found);
  expect_refused(prefill(77, 4, {1}), errc::not_found);
}

TEST_F(CpuBackendErrors, TokenOutOfVocabulary) {
  expect_refused(decode(2, 5, 256), errc::out_of_range);
  expect_refused(prefill(3, 0, {1, -1, 2}), errc::out_of_range);
}

TEST_F(CpuBackendErrors, TokenCountMismatch) {
  auto it = prefill(3, 0, {1, 2, 3});
  it.num_tokens = 4;
  expect_refused(it, errc::invalid_argument);
  expect_refused(prefill(3, 0, {}), errc::invalid_argument);
  auto two = decode(2, 5, 1);
  two.tokens = {1, 2};
  two.num_tokens = 2;
  expect_refused(two, errc::invalid_argument);
}

TEST_F(CpuBackendErrors, BeyondMaxContext) {
  expect_refused(prefill(3, 0, prompt(3, 513, 256)), errc::out_of_range);
}

TEST_F(CpuBackendErrors, DuplicateRequestInBatch) {
  expect_run_fails(decode(1, 32, next1_), errc::invalid_argument);
  const screened_batch s = screen(*b_, batch{{decode(1, 32, next1_), decode(1, 32, next1_)}});
  ASSERT_EQ(s.refused.size(), 1u);
  EXPECT_EQ(s.refused[0].index, 1u) << "the second appearance";
  EXPECT_EQ(s.refused[0].why.code(), errc::invalid_argument);
  EXPECT_EQ(s.runnable.items.size(), 1u);
}

TEST_F(CpuBackendErrors, PoolExhaustedByTheWholeBatch) {
  // Each item alone fits (1 and 5 blocks of 5 free), together they do not.
  expect_run_fails(prefill(3, 0, prompt(3, 80, 256)), errc::out_of_memory);
  // Not an item's fault: screening refuses neither, the batch fails whole.
  EXPECT_TRUE(screen(*b_, batch{{decode(1, 32, next1_), prefill(3, 0, prompt(3, 80, 256))}})
                  .refused.empty());
  EXPECT_TRUE(b_->run(batch{{prefill(3, 0, prompt(3, 80, 256))}}).ok());
}

// The items around a refused one run as they would have without it: the
// same tokens as a twin backend given only the good items.
TEST_F(CpuBackendErrors, AScreenedBatchRunsTheRestAsIfTheRefusedWereNeverThere) {
  auto twin = make(test::tiny_spec(), 1, 8);
  test::run_ok(*twin, batch{{prefill(1, 0, prompt(1, 32, 256)), prefill(2, 0, prompt(2, 5, 256))}});
  const batch_item good1 = decode(1, 32, next1_), good2 = prefill(2, 5, {3, 4});
  const std::vector<token_id> want = test::run_ok(*twin, batch{{good1, good2}});
  const screened_batch s =
      screen(*b_, batch{{decode(77, 3, 1), good1, prefill(3, 4, {9}), good2, decode(1, 40, 2)}});
  ASSERT_EQ(s.refused.size(), 3u);
  EXPECT_EQ(s.refused[0].index, 0u);
  EXPECT_EQ(s.refused[0].why.code(), errc::not_found);
  EXPECT_EQ(s.refused[1].index, 2u);
  EXPECT_EQ(s.refused[2].index, 4u) << "1 is in the batch already";
  const std::vector<token_id> got = unscreen(s, 5, test::run_ok(*b_, s.runnable));
  EXPECT_EQ(got, (std::vector<token_id>{no_token, want[0], no_token, want[1], no_token}));
  EXPECT_EQ(b_->cached_tokens(1), 33u);
  EXPECT_EQ(b_->cached_tokens(2), 7u);
}

TEST_F(CpuBackendErrors, ExportOfUncachedRanges) {
  EXPECT_EQ(b_->export_kv(77, {0, 1}, {0, 1}).err().code(), errc::not_found);
  EXPECT_EQ(b_->export_kv(2, {0, 2}, {0, 6}).err().code(), errc::out_of_range);
  EXPECT_EQ(b_->export_kv(2, {0, 3}, {0, 5}).err().code(), errc::out_of_range);
  EXPECT_EQ(b_->export_kv(2, {1, 0}, {0, 5}).err().code(), errc::invalid_argument);
  EXPECT_EQ(b_->export_kv(2, {0, 1}, {4, 2}).err().code(), errc::invalid_argument);
  EXPECT_TRUE(b_->export_kv(2, {0, 2}, {5, 5}).ok());  // empty is fine
}

TEST_F(CpuBackendErrors, ImportOfWrongShape) {
  auto chunk = b_->export_kv(2, {0, 2}, {0, 5});
  ASSERT_TRUE(chunk.ok());
  kv_chunk c = *chunk;
  c.request = 9;
  kv_chunk wrong = c;
  wrong.data = wrong.data.sub(0, wrong.data.size() - 1);
  wrong.bytes = wrong.data.size();
  EXPECT_EQ(b_->import_kv(wrong).err().code(), errc::invalid_argument);
  wrong = c;
  wrong.bytes += 1;
  EXPECT_EQ(b_->import_kv(wrong).err().code(), errc::invalid_argument);
  wrong = c;
  wrong.tokens = {0, 4};  // data is for 5 tokens
  EXPECT_EQ(b_->import_kv(wrong).err().code(), errc::invalid_argument);
  wrong = c;
  wrong.layers = {1, 3};
  EXPECT_EQ(b_->import_kv(wrong).err().code(), errc::out_of_range);
  wrong = c;
  wrong.tokens = {3, 8};  // request 9 holds nothing: a gap
  EXPECT_EQ(b_->import_kv(wrong).err().code(), errc::out_of_range);
  EXPECT_EQ(b_->cached_tokens(9), 0u);
  EXPECT_TRUE(state() == snapshot_);
  EXPECT_TRUE(b_->import_kv(c).ok());
}

TEST_F(CpuBackendErrors, ImportPoolExhaustedCreatesNothing) {
  kv_chunk c{9, {0, 1}, {0, 100}, 0, {}};
  c.data = std::vector<std::byte>(2 * 100 * 32 * sizeof(float));
  c.bytes = c.data.size();
  EXPECT_EQ(b_->import_kv(c).err().code(), errc::out_of_memory);
  EXPECT_EQ(b_->export_kv(9, {0, 0}, {0, 0}).err().code(), errc::not_found);
  EXPECT_TRUE(state() == snapshot_);
}

TEST(CpuBackendFactory, RejectsShapesItCannotRun) {
  auto expect = [](model_spec s, errc code) {
    auto b = make_cpu_backend(s, {});
    ASSERT_FALSE(b.ok()) << s.name;
    EXPECT_EQ(b.err().code(), code) << b.err().what();
  };
  auto s = test::tiny_spec();
  s.heads = 3;  // 64 % 3 != 0
  expect(s, errc::invalid_argument);
  s = test::tiny_spec();
  s.kv_heads = 3;
  expect(s, errc::invalid_argument);
  s = test::tiny_spec();
  s.hidden = 4 * 5;  // odd head_dim
  expect(s, errc::invalid_argument);
  s = test::tiny_spec();
  s.vocab = 0;
  expect(s, errc::invalid_argument);
  s = test::tiny_spec();
  s.hidden = 8192;
  s.heads = 64;
  s.ffn = 28672;
  s.layers = 80;
  expect(s, errc::too_large);
}

TEST(CpuBackendFactory, RejectsBadOptions) {
  cpu_options o;
  o.block_tokens = 0;
  EXPECT_EQ(make_cpu_backend(test::tiny_spec(), o).err().code(), errc::invalid_argument);
  o = {};
  o.kv_blocks = 0;
  EXPECT_EQ(make_cpu_backend(test::tiny_spec(), o).err().code(), errc::invalid_argument);
  o = {};
  o.kv_blocks = 1ull << 40;
  EXPECT_EQ(make_cpu_backend(test::tiny_spec(), o).err().code(), errc::too_large);
}

}  // namespace
}  // namespace accellm::device::cpu

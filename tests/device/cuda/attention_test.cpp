// Decode and prefill attention against a double-precision CPU reference over
// the same paged bf16 cache: GQA groups 1..8, head dims 16..128, one and many
// context splits, both decode kernels (mma and simt), prefill chunks that start mid-sequence and do
// not fill a 64-row tile. Outputs are bf16: relative error under 1e-2.
#include "device/cuda/decode_attention.cuh"
#include "device/cuda/prefill_attention.cuh"
#include "tests/device/cuda/cuda_test_util.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>

namespace accellm::device::cuda {
namespace {

using namespace test;

// A pool with random K/V, `requests` block tables of shuffled blocks.
struct paged_fixture {
  attn_shape shape;
  std::uint32_t layers = 2, layer = 1, bt = 16, stride = 0;
  std::vector<__nv_bfloat16> pool;
  std::vector<std::int32_t> tables;
  device_buffer<__nv_bfloat16> dpool;
  device_buffer<std::int32_t> dtables;
  kv_pool_view kv;

  paged_fixture(attn_shape s, std::uint32_t requests, std::uint32_t max_len, std::uint64_t seed)
      : shape(s), stride((max_len + 15) / 16) {
    kv = kv_pool_view{nullptr, layers, bt, s.kv_width(), nullptr, stride};
    const std::uint64_t blocks = std::uint64_t{requests} * stride;
    pool = to_bf16(random_vector(blocks * kv.block_elems(), seed, 1.0f));
    for (std::uint64_t i = 0; i < blocks; ++i)  // a permutation: blocks are not in order
      tables.push_back(static_cast<std::int32_t>((i * 7 + 3) % blocks));
    dpool = to_device(pool);
    dtables = to_device(tables);
    kv.pool = dpool.data();
    kv.tables = dtables.data();
  }

  // Attention of query `q` (head_dim floats, head h) at position qpos of slot.
  std::vector<double> reference(const float* q, std::uint32_t h, std::uint32_t slot,
                                std::uint32_t qpos) const {
    kv_pool_view hk = kv;
    hk.tables = tables.data();
    const std::uint32_t hd = shape.head_dim, kvh = h / (shape.heads / shape.kv_heads);
    std::vector<double> scores(qpos + 1), out(hd, 0.0);
    double mx = -1e300;
    for (std::uint32_t t = 0; t <= qpos; ++t) {
      const auto* k = pool.data() + hk.row_offset(slot, layer, 0, t) + kvh * hd;
      double sc = 0;
      for (std::uint32_t i = 0; i < hd; ++i) sc += double(q[i]) * __bfloat162float(k[i]);
      scores[t] = sc / std::sqrt(double(hd));
      mx = std::max(mx, scores[t]);
    }
    double sum = 0;
    for (auto& sc : scores) sum += (sc = std::exp(sc - mx));
    for (std::uint32_t t = 0; t <= qpos; ++t) {
      const auto* v = pool.data() + hk.row_offset(slot, layer, 1, t) + kvh * hd;
      for (std::uint32_t i = 0; i < hd; ++i) out[i] += scores[t] / sum * __bfloat162float(v[i]);
    }
    return out;
  }
};

struct decode_case {
  attn_shape shape;
  std::vector<std::int32_t> lengths;
  std::uint32_t splits;
};

void PrintTo(const decode_case& c, std::ostream* os) {
  *os << c.shape.heads << " heads, " << c.shape.kv_heads << " KV heads, head_dim "
      << c.shape.head_dim << ", " << c.lengths.size() << " items, " << c.splits << " splits";
}

class decode_attention_test : public ::testing::TestWithParam<decode_case> {};

TEST_P(decode_attention_test, matches_reference) {
  ACCELLM_REQUIRE_GPU();
  const decode_case& c = GetParam();
  std::int32_t max_len = 0;
  for (auto l : c.lengths) max_len = std::max(max_len, l);
  const auto n = static_cast<std::uint32_t>(c.lengths.size());
  paged_fixture fx(c.shape, n, static_cast<std::uint32_t>(max_len), 11);
  const std::uint32_t qw = c.shape.q_width();
  // Rows in reverse slot order, so row != slot.
  std::vector<decode_item> items;
  for (std::uint32_t i = 0; i < n; ++i)
    items.push_back(decode_item{static_cast<std::int32_t>(n - 1 - i), static_cast<std::int32_t>(i),
                                c.lengths[i]});
  auto q = to_bf16(random_vector(n * qw, 12, 2.0f));
  auto dq = to_device(q);
  auto ditems = to_device(items);
  auto dpartial = to_device(
      std::vector<float>(decode_partial_floats(n, c.shape.heads, c.splits, c.shape.head_dim)));
  auto qf = to_float(q);
  for (decode_kernel kernel : {decode_kernel::mma, decode_kernel::simt}) {
    const char* name = kernel == decode_kernel::mma ? "mma" : "simt";
    auto dout = to_device(std::vector<__nv_bfloat16>(n * qw));
    decode_attention_args a{dq.data(), dout.data(), ditems.data(),   n,     c.shape, fx.kv,
                            fx.layer,  c.splits,    dpartial.data(), kernel};
    ASSERT_TRUE(decode_attention(a, nullptr).ok()) << name;
    auto out = to_float(to_host(dout));
    for (const decode_item& it : items)
      for (std::uint32_t h = 0; h < c.shape.heads; ++h) {
        const std::uint64_t at = std::uint64_t(it.row) * qw + h * c.shape.head_dim;
        auto ref = fx.reference(qf.data() + at, h, it.slot, it.length - 1);
        std::vector<float> got(out.begin() + at, out.begin() + at + c.shape.head_dim);
        std::vector<float> want(ref.begin(), ref.end());
        ASSERT_LT(rel_error(got, want), 1e-2) << name << " slot " << it.slot << " head " << h;
      }
  }
}

INSTANTIATE_TEST_SUITE_P(shapes, decode_attention_test,
                         ::testing::Values(decode_case{{4, 4, 128}, {1, 17, 300}, 1},
                                           decode_case{{4, 4, 128}, {1000, 5, 777}, 8},
                                           decode_case{{4, 2, 16}, {33, 1, 64}, 3},
                                           decode_case{{8, 2, 32}, {513, 2}, 4},
                                           decode_case{{16, 2, 64}, {257, 1024}, 16},
                                           decode_case{{8, 1, 128}, {2000}, 64}),
                         [](const ::testing::TestParamInfo<decode_case>& i) {
                           const decode_case& c = i.param;
                           return "h" + std::to_string(c.shape.heads) + "_kv" +
                                  std::to_string(c.shape.kv_heads) + "_d" +
                                  std::to_string(c.shape.head_dim) + "_splits" +
                                  std::to_string(c.splits) + "_n" + std::to_string(i.index);
                         });

// Fake but non-null pointers: every case must fail on its shape check,
// before anything is launched or dereferenced.
template <class T>
T* fake() {
  alignas(16) static unsigned char storage[16];
  return reinterpret_cast<T*>(storage);
}

void expect_refusal(const status& st, const char* what) {
  ASSERT_FALSE(st.ok()) << what;
  EXPECT_EQ(st.err().code(), errc::invalid_argument);
  EXPECT_NE(st.err().message().find(what), std::string::npos) << st.err().message();
}

TEST(decode_attention, rejects_bad_shapes) {
  decode_attention_args a;
  a.q = fake<const __nv_bfloat16>();
  a.out = fake<__nv_bfloat16>();
  a.items = fake<const decode_item>();
  a.partial = fake<float>();
  a.kv = kv_pool_view{fake<__nv_bfloat16>(), 2, 16, 4 * 48, fake<const std::int32_t>(), 1};
  a.n_items = 1;
  a.shape = attn_shape{4, 4, 48};
  a.splits = 1;
  expect_refusal(decode_attention(a, nullptr), "head_dim");
  a.shape = attn_shape{12, 4, 64};  // group of 3
  a.kv.kv_width = 4 * 64;
  expect_refusal(decode_attention(a, nullptr), "heads / kv_heads");
  a.shape = attn_shape{4, 4, 256};  // only the simt kernel takes 256
  a.kv.kv_width = 4 * 256;
  expect_refusal(decode_attention(a, nullptr), "head_dim must be 16, 32, 64 or 128");
  a.shape = attn_shape{4, 4, 64};
  a.kv.kv_width = 4 * 64;
  a.splits = max_decode_splits + 1;
  expect_refusal(decode_attention(a, nullptr), "splits");
  a.splits = 1;
  a.kv.kv_width = 64;
  expect_refusal(decode_attention(a, nullptr), "KV pool");
}

struct prefill_case {
  attn_shape shape;
  std::uint32_t context;       // positions cached before the chunk
  std::uint32_t count;         // rows of the chunk
  bool longest_first = false;  // the tile order cuda_backend uses
};

void PrintTo(const prefill_case& c, std::ostream* os) {
  *os << c.shape.heads << " heads, " << c.shape.kv_heads << " KV heads, head_dim "
      << c.shape.head_dim << ", " << c.count << " rows after " << c.context
      << (c.longest_first ? ", longest tile first" : "");
}

class prefill_attention_test : public ::testing::TestWithParam<prefill_case> {};

TEST_P(prefill_attention_test, matches_reference) {
  ACCELLM_REQUIRE_GPU();
  const prefill_case& c = GetParam();
  const std::uint32_t len = c.context + c.count;
  paged_fixture fx(c.shape, 2, len, 13);  // the chunk lives in slot 1
  const std::uint32_t qw = c.shape.q_width();
  std::vector<prefill_tile> tiles;
  const std::int32_t row0 = 3;  // rows before the chunk belong to nobody
  for (std::uint32_t j = 0; j < c.count; j += prefill_tile_rows)
    tiles.push_back(
        prefill_tile{row0 + static_cast<std::int32_t>(j),
                     static_cast<std::int32_t>(std::min(prefill_tile_rows, c.count - j)),
                     static_cast<std::int32_t>(c.context + j), 1});
  if (c.longest_first) std::reverse(tiles.begin(), tiles.end());
  const std::uint32_t rows = row0 + c.count;
  auto q = to_bf16(random_vector(rows * qw, 14, 2.0f));
  auto dq = to_device(q);
  auto dout = to_device(std::vector<__nv_bfloat16>(rows * qw));
  auto dtiles = to_device(tiles);
  prefill_attention_args a{
      dq.data(), dout.data(), dtiles.data(), static_cast<std::uint32_t>(tiles.size()),
      c.shape,   fx.kv,       fx.layer};
  ASSERT_TRUE(prefill_attention(a, nullptr).ok());
  auto out = to_float(to_host(dout));
  auto qf = to_float(q);
  for (std::uint32_t r = 0; r < c.count; ++r)
    for (std::uint32_t h = 0; h < c.shape.heads; ++h) {
      const std::uint64_t at = std::uint64_t(row0 + r) * qw + h * c.shape.head_dim;
      auto ref = fx.reference(qf.data() + at, h, 1, c.context + r);
      std::vector<float> got(out.begin() + at, out.begin() + at + c.shape.head_dim);
      std::vector<float> want(ref.begin(), ref.end());
      ASSERT_LT(rel_error(got, want), 1e-2) << "row " << r << " head " << h;
    }
}

INSTANTIATE_TEST_SUITE_P(
    shapes, prefill_attention_test,
    ::testing::Values(prefill_case{{4, 2, 16}, 0, 37}, prefill_case{{8, 2, 32}, 0, 200},
                      prefill_case{{4, 4, 128}, 0, 130}, prefill_case{{4, 4, 128}, 100, 64},
                      prefill_case{{8, 1, 128}, 70, 150}, prefill_case{{4, 1, 64}, 5, 1},
                      prefill_case{{8, 2, 128}, 30, 300, true}),
    [](const ::testing::TestParamInfo<prefill_case>& i) {
      const prefill_case& c = i.param;
      return "h" + std::to_string(c.shape.heads) + "_kv" + std::to_string(c.shape.kv_heads) + "_d" +
             std::to_string(c.shape.head_dim) + "_ctx" + std::to_string(c.context) + "_rows" +
             std::to_string(c.count) + (c.longest_first ? "_longest_first" : "");
    });

TEST(prefill_attention, rejects_bad_shapes) {
  prefill_attention_args a;
  a.q = fake<const __nv_bfloat16>();
  a.out = fake<__nv_bfloat16>();
  a.tiles = fake<const prefill_tile>();
  a.kv = kv_pool_view{fake<__nv_bfloat16>(), 2, 16, 4 * 40, fake<const std::int32_t>(), 1};
  a.n_tiles = 1;
  a.shape = attn_shape{4, 4, 40};
  expect_refusal(prefill_attention(a, nullptr), "head_dim");
  a.shape = attn_shape{4, 3, 64};
  a.kv.kv_width = 3 * 64;
  expect_refusal(prefill_attention(a, nullptr), "kv_heads must divide heads");
  a.shape = attn_shape{4, 4, 64};
  expect_refusal(prefill_attention(a, nullptr), "KV pool");
  a.kv.kv_width = 4 * 64;
  a.n_tiles = 70000;  // one grid dimension holds the tiles
  expect_refusal(prefill_attention(a, nullptr), "65535");
}

}  // namespace
}  // namespace accellm::device::cuda

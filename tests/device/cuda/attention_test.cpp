// Decode and prefill attention against a double-precision CPU reference over
// the same paged bf16 cache: GQA groups 1..8, head dims 16..128, one and many
// context splits, both decode kernels (mma with each pipeline tile, and
// simt), both prefill kernels
// (rows64, rows128) on chunks that start mid-sequence and do not fill a tile,
// in prompt order and longest first. Outputs are bf16: relative error under
// 1e-2. The prefill kernels also agree with each other on a 2048-row prompt,
// and refuse bad arguments before any CUDA call (those tests need no GPU).
#include "device/cuda/decode_attention.cuh"
#include "device/cuda/prefill_attention.cuh"
#include "tests/device/cuda/cuda_test_util.hpp"
#include "tests/device/cuda/paged_reference.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <string>
#include <tuple>
#include <vector>

namespace accellm::device::cuda {
namespace {

using namespace test;

// paged_host with the pool and tables on the device; kv is the device view.
struct paged_fixture : paged_host {
  device_buffer<__nv_bfloat16> dpool;
  device_buffer<std::int32_t> dtables;
  kv_pool_view kv;

  paged_fixture(attn_shape s, std::uint32_t requests, std::uint32_t max_len, std::uint64_t seed)
      : paged_host(s, requests, max_len, seed),
        dpool(to_device(pool)),
        dtables(to_device(tables)),
        kv(host_view()) {
    kv.pool = dpool.data();
    kv.tables = dtables.data();
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
  // simt, and mma with every pipeline tile its head_dim has.
  std::vector<std::pair<decode_kernel, decode_tile>> runs{
      {decode_kernel::simt, decode_tile::keys32_stages2}};
  for (decode_tile t : decode_tiles)
    if (decode_tile_built(t, c.shape.head_dim)) runs.emplace_back(decode_kernel::mma, t);
  for (const auto& [kernel, tile] : runs) {
    const std::string name = kernel == decode_kernel::mma
                                 ? std::string{"mma "} + decode_tile_name(tile)
                                 : std::string{"simt"};
    auto dout = to_device(std::vector<__nv_bfloat16>(n * qw));
    decode_attention_args a{dq.data(), dout.data(), ditems.data(),   n,     c.shape, fx.kv,
                            fx.layer,  c.splits,    dpartial.data(), kernel};
    a.tile = tile;
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
  a.shape = attn_shape{4, 4, 32};  // the mma kernel's other tiles: head_dim 64 and 128 only
  a.kv.kv_width = 4 * 32;
  a.tile = decode_tile::keys64_stages2;
  expect_refusal(decode_attention(a, nullptr), "tile 64x2 is built for head_dim 64 and 128 only");
  a.tile = decode_tile::keys32_stages2;
  a.shape = attn_shape{4, 4, 64};
  a.kv.kv_width = 4 * 64;
  a.splits = max_decode_splits + 1;
  expect_refusal(decode_attention(a, nullptr), "splits");
  a.splits = 1;
  a.kv.kv_width = 64;
  expect_refusal(decode_attention(a, nullptr), "KV pool");
  // The TMA tiles map the pool as whole 16-token pages, up to 2^31 rows.
  a.kv.kv_width = 4 * 64;
  for (const decode_tile t : {decode_tile::tma16_stages3, decode_tile::tma16_stages5}) {
    a.tile = t;
    a.kv.blocks = 0;  // not said
    expect_refusal(decode_attention(a, nullptr), "needs a pool of 16-token blocks");
    a.kv.blocks = 8;
    a.kv.block_tokens = 32;
    expect_refusal(decode_attention(a, nullptr), "needs a pool of 16-token blocks");
    a.kv.block_tokens = 16;
    a.kv.blocks = 0x7fffffffu;  // x 2 layers x 32 rows
    expect_refusal(decode_attention(a, nullptr), "at most 2^31 rows");
  }
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

// The chunk's tiles at kernel k's height, rows from row0, in prompt order or
// longest first.
std::vector<prefill_tile> chunk_tiles(prefill_kernel k, std::int32_t row0, std::uint32_t context,
                                      std::uint32_t count, bool longest_first) {
  const std::uint32_t h = prefill_tile_rows_of(k);
  std::vector<prefill_tile> tiles;
  for (std::uint32_t j = 0; j < count; j += h)
    tiles.push_back(prefill_tile{row0 + static_cast<std::int32_t>(j),
                                 static_cast<std::int32_t>(std::min(h, count - j)),
                                 static_cast<std::int32_t>(context + j), 1});
  if (longest_first) std::reverse(tiles.begin(), tiles.end());
  return tiles;
}

// Rows [row0, row0 + count) of `out` (all heads) against the reference for
// the chunk at `context` in slot 1; rows listed in `only` when not empty.
void expect_prefill_matches(const paged_fixture& fx, const std::vector<float>& qf,
                            const std::vector<float>& out, std::int32_t row0, std::uint32_t context,
                            std::uint32_t count, const char* kernel,
                            const std::vector<std::uint32_t>& only = {}) {
  const attn_shape& sh = fx.shape;
  const std::uint32_t qw = sh.q_width();
  std::vector<std::uint32_t> rows = only;
  if (rows.empty())
    for (std::uint32_t r = 0; r < count; ++r) rows.push_back(r);
  for (std::uint32_t r : rows)
    for (std::uint32_t h = 0; h < sh.heads; ++h) {
      const std::uint64_t at = std::uint64_t(row0 + r) * qw + h * sh.head_dim;
      auto ref = fx.reference(qf.data() + at, h, 1, context + r);
      std::vector<float> got(out.begin() + at, out.begin() + at + sh.head_dim);
      std::vector<float> want(ref.begin(), ref.end());
      ASSERT_LT(rel_error(got, want), 1e-2) << kernel << " row " << r << " head " << h;
    }
}

class prefill_attention_test
    : public ::testing::TestWithParam<std::tuple<prefill_case, prefill_kernel>> {};

TEST_P(prefill_attention_test, matches_reference) {
  ACCELLM_REQUIRE_GPU();
  const auto& [c, kernel] = GetParam();
  if (is_wgmma(kernel) && (c.shape.head_dim < 64 || !wgmma_runs_here()))
    GTEST_SKIP() << prefill_kernel_name(kernel)
                 << " runs head_dim 64 and 128 on compute capability 9.0 only";
  const std::uint32_t len = c.context + c.count;
  paged_fixture fx(c.shape, 2, len, 13);  // the chunk lives in slot 1
  const std::uint32_t qw = c.shape.q_width();
  const std::int32_t row0 = 3;  // rows before the chunk belong to nobody
  const auto tiles = chunk_tiles(kernel, row0, c.context, c.count, c.longest_first);
  const std::uint32_t rows = row0 + c.count + 2;  // and so do the last two
  auto q = to_bf16(random_vector(rows * qw, 14, 2.0f));
  auto dq = to_device(q);
  // NaN everywhere: a row that should be written and is not fails below.
  auto dout = to_device(std::vector<__nv_bfloat16>(rows * qw, __float2bfloat16(NAN)));
  auto dtiles = to_device(tiles);
  prefill_attention_args a{
      dq.data(), dout.data(), dtiles.data(), static_cast<std::uint32_t>(tiles.size()),
      c.shape,   fx.kv,       fx.layer,      kernel};
  ASSERT_TRUE(prefill_attention(a, nullptr).ok());
  auto out = to_float(to_host(dout));
  expect_prefill_matches(fx, to_float(q), out, row0, c.context, c.count,
                         prefill_kernel_name(kernel));
  // Rows outside the tiles are never written.
  for (std::uint32_t r : {0u, 1u, 2u, rows - 2, rows - 1})
    for (std::uint32_t e = 0; e < qw; ++e)
      ASSERT_TRUE(std::isnan(out[std::size_t{r} * qw + e])) << "row " << r << " written";
}

INSTANTIATE_TEST_SUITE_P(
    shapes, prefill_attention_test,
    ::testing::Combine(
        ::testing::Values(prefill_case{{4, 2, 16}, 0, 37}, prefill_case{{8, 2, 32}, 0, 200},
                          prefill_case{{4, 4, 128}, 0, 130}, prefill_case{{4, 4, 128}, 100, 64},
                          prefill_case{{8, 1, 128}, 70, 150}, prefill_case{{4, 1, 64}, 5, 1},
                          prefill_case{{8, 2, 128}, 30, 300, true},
                          // 128-row tiles exactly; not a multiple of 16 or 128
                          // (2 x 128 + 44); one row past a tile; GQA 8:1 and
                          // 4:1 at Llama-3's width, mid-sequence, longest first.
                          prefill_case{{4, 4, 128}, 0, 256}, prefill_case{{4, 2, 64}, 0, 300},
                          prefill_case{{4, 4, 64}, 1000, 129, true},
                          prefill_case{{16, 2, 128}, 333, 250, true},
                          prefill_case{{32, 8, 128}, 200, 333, true},
                          // a warp's last row on the first key of a step
                          prefill_case{{2, 1, 128}, 1, 100}),
        ::testing::Values(prefill_kernel::rows64, prefill_kernel::rows128, prefill_kernel::wgmma64,
                          prefill_kernel::wgmma128, prefill_kernel::tma128,
                          prefill_kernel::tma128pp, prefill_kernel::tma128n)),
    [](const ::testing::TestParamInfo<std::tuple<prefill_case, prefill_kernel>>& i) {
      // No structured binding: its comma would split the macro's arguments.
      const prefill_case& c = std::get<0>(i.param);
      return std::string{prefill_kernel_name(std::get<1>(i.param))} + "_h" +
             std::to_string(c.shape.heads) + "_kv" + std::to_string(c.shape.kv_heads) + "_d" +
             std::to_string(c.shape.head_dim) + "_ctx" + std::to_string(c.context) + "_rows" +
             std::to_string(c.count) + (c.longest_first ? "_longest_first" : "");
    });

// A 2048-row prompt (Llama-3-8B's GQA 4:1, a quarter of its heads), longest
// first: rows128, wgmma64, wgmma128, tma128, tma128pp and tma128n (where they
// run) within 2e-2 of max |rows64| (the rule prefill_choice applies), all
// finite everywhere, and each against the reference on a spread of rows.
// wgmma128 equals wgmma64 to the bit: each of its warpgroups sums wgmma64's
// products in the same order; tma128 equals wgmma128 (the same products, fed
// by TMA) and tma128pp tma128 (the same products, issued in turns); tma128n's
// 128-key steps sum in another order. The emulator checks the same,
// prefill_emu_test.cpp.
TEST(prefill_attention, kernels_agree_on_a_2048_row_prompt) {
  ACCELLM_REQUIRE_GPU();
  const attn_shape shape{8, 2, 128};
  const std::uint32_t len = 2048, qw = shape.q_width();
  paged_fixture fx(shape, 2, len, 21);
  auto q = to_bf16(random_vector(std::size_t{len} * qw, 22, 2.0f));
  auto dq = to_device(q);
  const auto qf = to_float(q);
  std::vector<std::vector<float>> outs;
  std::vector<prefill_kernel> kernels{prefill_kernel::rows64, prefill_kernel::rows128};
  if (wgmma_runs_here()) {
    kernels.push_back(prefill_kernel::wgmma64);
    kernels.push_back(prefill_kernel::wgmma128);
    kernels.push_back(prefill_kernel::tma128);
    kernels.push_back(prefill_kernel::tma128pp);
    kernels.push_back(prefill_kernel::tma128n);
  }
  for (prefill_kernel k : kernels) {
    const auto tiles = chunk_tiles(k, 0, 0, len, true);
    auto dtiles = to_device(tiles);
    auto dout = to_device(std::vector<__nv_bfloat16>(std::size_t{len} * qw));
    prefill_attention_args a{
        dq.data(), dout.data(), dtiles.data(), static_cast<std::uint32_t>(tiles.size()),
        shape,     fx.kv,       fx.layer,      k};
    ASSERT_TRUE(prefill_attention(a, nullptr).ok()) << prefill_kernel_name(k);
    outs.push_back(to_float(to_host(dout)));
    expect_prefill_matches(fx, qf, outs.back(), 0, 0, len, prefill_kernel_name(k),
                           {0, 1, 63, 64, 127, 128, 1000, 1500, 2046, 2047});
  }
  for (std::size_t k = 1; k < outs.size(); ++k) {
    double top = 0, diff = 0;
    for (std::size_t i = 0; i < outs[0].size(); ++i) {
      ASSERT_TRUE(std::isfinite(outs[0][i]) && std::isfinite(outs[k][i])) << "element " << i;
      top = std::max(top, std::fabs(double(outs[0][i])));
      diff = std::max(diff, std::fabs(double(outs[k][i]) - outs[0][i]));
    }
    EXPECT_LE(diff, 2e-2 * top) << "max |" << prefill_kernel_name(kernels[k]) << " - rows64| "
                                << diff << ", max |rows64| " << top;
  }
  if (outs.size() == 7) {
    std::size_t differ = 0, differ_tma = 0, differ_pp = 0;
    for (std::size_t i = 0; i < outs[2].size(); ++i) {
      differ += outs[2][i] != outs[3][i];
      differ_tma += outs[3][i] != outs[4][i];
      differ_pp += outs[4][i] != outs[5][i];
    }
    EXPECT_EQ(differ, 0u) << "elements where wgmma128 and wgmma64 differ";
    EXPECT_EQ(differ_tma, 0u) << "elements where tma128 and wgmma128 differ";
    EXPECT_EQ(differ_pp, 0u) << "elements where tma128pp and tma128 differ";
  }
}

// The host's tiling (cuda_backend::build_plan, the probe, the bench): no GPU.
TEST(prefill_attention, tiles_are_cut_at_the_kernels_height_and_sorted_longest_first) {
  std::vector<prefill_tile> t;
  append_prefill_tiles(t, prefill_kernel::rows64, 3, 150, 10, 1);  // rows 3.., positions 10..
  append_prefill_tiles(t, prefill_kernel::rows128, 153, 130, 0, 2);
  ASSERT_EQ(t.size(), 5u);
  const std::vector<std::array<std::int32_t, 4>> want{
      {3, 64, 10, 1}, {67, 64, 74, 1}, {131, 22, 138, 1}, {153, 128, 0, 2}, {281, 2, 128, 2}};
  for (std::size_t i = 0; i < t.size(); ++i)
    EXPECT_EQ((std::array<std::int32_t, 4>{t[i].row, t[i].count, t[i].pos, t[i].slot}), want[i])
        << "tile " << i;
  sort_longest_first(t);
  // Keys seen (pos + count): 74, 138, 160, 128, 130.
  std::vector<std::int32_t> rows;
  for (const prefill_tile& x : t) rows.push_back(x.row);
  EXPECT_EQ(rows, (std::vector<std::int32_t>{131, 67, 281, 153, 3}));
}

TEST(prefill_attention, rejects_bad_shapes) {
  for (prefill_kernel k : {prefill_kernel::rows64, prefill_kernel::rows128}) {
    SCOPED_TRACE(prefill_kernel_name(k));
    prefill_attention_args a;
    a.kernel = k;
    a.q = fake<const __nv_bfloat16>();
    a.out = fake<__nv_bfloat16>();
    a.tiles = fake<const prefill_tile>();
    a.kv = kv_pool_view{fake<__nv_bfloat16>(), 2, 16, 4 * 40, fake<const std::int32_t>(), 1};
    a.n_tiles = 1;
    a.shape = attn_shape{4, 4, 40};
    expect_refusal(prefill_attention(a, nullptr), "head_dim");
    a.shape = attn_shape{4, 4, 256};
    a.kv.kv_width = 4 * 256;
    expect_refusal(prefill_attention(a, nullptr), "head_dim must be 16, 32, 64 or 128");
    a.shape = attn_shape{4, 3, 64};
    a.kv.kv_width = 3 * 64;
    expect_refusal(prefill_attention(a, nullptr), "kv_heads must divide heads");
    a.shape = attn_shape{4, 4, 64};
    expect_refusal(prefill_attention(a, nullptr), "KV pool");
    a.kv.kv_width = 4 * 64;
    a.n_tiles = 70000;  // one grid dimension holds the tiles
    expect_refusal(prefill_attention(a, nullptr), "65535");
    a.n_tiles = 65536;
    expect_refusal(prefill_attention(a, nullptr), "65535");
    a.n_tiles = 1;
    a.q = nullptr;
    expect_refusal(prefill_attention(a, nullptr), "null pointer");
    a.q = fake<const __nv_bfloat16>();
    a.tiles = nullptr;
    expect_refusal(prefill_attention(a, nullptr), "null pointer");
    a.tiles = fake<const prefill_tile>();
    a.kv.tables = nullptr;
    expect_refusal(prefill_attention(a, nullptr), "null pointer");
    a.kv.tables = fake<const std::int32_t>();
    a.out = nullptr;
    expect_refusal(prefill_attention(a, nullptr), "null pointer");
    a.out = fake<__nv_bfloat16>();
    a.kv.pool = nullptr;
    const status st = prefill_attention(a, nullptr);
    expect_refusal(st, "null pointer");
    EXPECT_NE(st.err().message().find(prefill_kernel_name(k)), std::string::npos)
        << "the message names the kernel: " << st.err().message();
  }
}

TEST(prefill_attention, rows128_refuses_what_it_cannot_run) {
  prefill_attention_args a;
  a.kernel = prefill_kernel::rows128;
  a.out = fake<__nv_bfloat16>();
  a.tiles = fake<const prefill_tile>();
  a.kv = kv_pool_view{fake<__nv_bfloat16>(), 2, 16, 4 * 128, fake<const std::int32_t>(), 1};
  a.n_tiles = 1;
  a.shape = attn_shape{4, 4, 128};
  // Q is copied by 16-byte cp.async: 2 bytes off alignment is refused.
  a.q = fake<const __nv_bfloat16>() + 1;
  expect_refusal(prefill_attention(a, nullptr), "q must be 16-byte aligned");
  a.q = fake<const __nv_bfloat16>();
  a.kernel = static_cast<prefill_kernel>(7);
  expect_refusal(prefill_attention(a, nullptr), "unknown kernel");
  EXPECT_EQ(prefill_tile_rows_of(prefill_kernel::rows64), 64u);
  EXPECT_EQ(prefill_tile_rows_of(prefill_kernel::rows128), 128u);
  EXPECT_EQ(prefill_tile_rows_of(prefill_kernel::wgmma64), 64u);
  EXPECT_EQ(prefill_tile_rows_of(prefill_kernel::wgmma128), 128u);
  EXPECT_EQ(prefill_tile_rows_of(prefill_kernel::tma128), 128u);
  EXPECT_EQ(prefill_tile_rows_of(prefill_kernel::tma128pp), 128u);
  EXPECT_EQ(prefill_tile_rows_of(prefill_kernel::tma128n), 128u);
  EXPECT_STREQ(prefill_kernel_name(prefill_kernel::rows128), "rows128");
  EXPECT_STREQ(prefill_kernel_name(prefill_kernel::wgmma64), "wgmma64");
  EXPECT_STREQ(prefill_kernel_name(prefill_kernel::wgmma128), "wgmma128");
  EXPECT_STREQ(prefill_kernel_name(prefill_kernel::tma128), "tma128");
  EXPECT_STREQ(prefill_kernel_name(prefill_kernel::tma128pp), "tma128pp");
  EXPECT_STREQ(prefill_kernel_name(prefill_kernel::tma128n), "tma128n");
}

// tma128n copies Q with 16-byte cp.async too: 2 bytes off alignment is
// refused, before any CUDA call and in any build (the check comes before
// the sm_90a one), and an aligned q goes on to the checks after it.
TEST(prefill_attention, tma128n_refuses_an_unaligned_q) {
  prefill_attention_args a;
  a.kernel = prefill_kernel::tma128n;
  a.out = fake<__nv_bfloat16>();
  a.tiles = fake<const prefill_tile>();
  a.kv = kv_pool_view{fake<__nv_bfloat16>(), 2, 32, 4 * 128, fake<const std::int32_t>(), 1, 8};
  a.n_tiles = 1;
  a.shape = attn_shape{4, 4, 128};
  a.q = fake<const __nv_bfloat16>() + 1;
  expect_refusal(prefill_attention(a, nullptr), "q must be 16-byte aligned");
  a.q = fake<const __nv_bfloat16>();
  expect_refusal(prefill_attention(a, nullptr),
                 prefill_wgmma_built() ? "blocks must be 16 tokens" : "sm_90a");
}

// tma128, tma128pp and tma128n read the pool through a tensor map of whole
// 16-token pages: a pool of other blocks, one whose extent is not said, or one too
// large for TMA's coordinates is refused (before any CUDA call: runs without
// a GPU).
class prefill_tma_refusals : public ::testing::TestWithParam<prefill_kernel> {};

TEST_P(prefill_tma_refusals, refuse_a_pool_they_cannot_map) {
  prefill_attention_args a;
  a.kernel = GetParam();
  a.q = fake<const __nv_bfloat16>();
  a.out = fake<__nv_bfloat16>();
  a.tiles = fake<const prefill_tile>();
  a.n_tiles = 1;
  a.shape = attn_shape{4, 4, 128};
  a.kv = kv_pool_view{fake<__nv_bfloat16>(), 2, 16, 4 * 128, fake<const std::int32_t>(), 1, 0};
  const char* why = prefill_wgmma_built() ? "blocks must be 16 tokens" : "sm_90a";
  expect_refusal(prefill_attention(a, nullptr), why);
  a.kv.blocks = 8;
  a.kv.block_tokens = 32;
  expect_refusal(prefill_attention(a, nullptr), why);
  a.kv.block_tokens = 16;
  a.kv.blocks = 0x7fffffffu;  // x 2 layers x 32 rows: past a TMA coordinate
  expect_refusal(prefill_attention(a, nullptr),
                 prefill_wgmma_built() ? "more than 2^31 rows" : "sm_90a");
}

// Checked before any CUDA call: runs without a GPU.
class prefill_wgmma_refusals : public ::testing::TestWithParam<prefill_kernel> {};

TEST_P(prefill_wgmma_refusals, refuse_what_they_cannot_run) {
  prefill_attention_args a;
  a.kernel = GetParam();
  a.q = fake<const __nv_bfloat16>();
  a.out = fake<__nv_bfloat16>();
  a.tiles = fake<const prefill_tile>();
  a.n_tiles = 1;
  a.shape = attn_shape{4, 4, 32};
  a.kv = kv_pool_view{fake<__nv_bfloat16>(), 2, 16, 4 * 32, fake<const std::int32_t>(), 1};
  // head_dim 16 and 32 run on rows64 and rows128 only; a build without
  // sm_90a code refuses every shape.
  expect_refusal(prefill_attention(a, nullptr),
                 prefill_wgmma_built() ? "head_dim must be 64 or 128" : "sm_90a");
  a.shape = attn_shape{4, 3, 128};
  a.kv.kv_width = 3 * 128;
  expect_refusal(prefill_attention(a, nullptr), "kv_heads must divide heads");
  a.shape = attn_shape{4, 4, 128};
  a.kv.kv_width = 4 * 128;
  a.q = nullptr;
  expect_refusal(prefill_attention(a, nullptr), "null pointer");
}

INSTANTIATE_TEST_SUITE_P(kernels, prefill_tma_refusals,
                         ::testing::Values(prefill_kernel::tma128, prefill_kernel::tma128pp,
                                           prefill_kernel::tma128n),
                         [](const ::testing::TestParamInfo<prefill_kernel>& i) {
                           return std::string{prefill_kernel_name(i.param)};
                         });

INSTANTIATE_TEST_SUITE_P(kernels, prefill_wgmma_refusals,
                         ::testing::Values(prefill_kernel::wgmma64, prefill_kernel::wgmma128,
                                           prefill_kernel::tma128, prefill_kernel::tma128pp,
                                           prefill_kernel::tma128n),
                         [](const ::testing::TestParamInfo<prefill_kernel>& i) {
                           return std::string{prefill_kernel_name(i.param)};
                         });

}  // namespace
}  // namespace accellm::device::cuda

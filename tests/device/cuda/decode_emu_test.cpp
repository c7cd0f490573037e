// The default decode attention path's source (decode_kernels.cuh: the mma
// pass 1 and the split merge of pass 2) run on the host emulator
// (emu/emu.hpp) against the double-precision reference (paged_reference.hpp),
// GPU or not: GQA groups 1 to 8, head_dim 16 to 128, one context split (pass
// 1 writes the output) and many (pass 2 merges), splits that hold no
// position, items whose rows are not their slots; at head_dim 64 and 128 with
// every pipeline tile (decode_tile), the TMA ones (tma_kernel) included.
// Outputs are bf16: relative
// error under 1e-2, as on the GPU (attention_test.cpp); rows of no item are
// never written.
#include "device/cuda/decode_kernels.cuh"
#include "tests/device/cuda/emu_pool_map.hpp"
#include "tests/device/cuda/paged_reference.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace accellm::device::cuda {
namespace {

using namespace test;

struct emu_decode_case {
  attn_shape shape;
  std::vector<std::int32_t> lengths;
  std::uint32_t splits;
};

void PrintTo(const emu_decode_case& c, std::ostream* os) {
  *os << c.shape.heads << " heads, " << c.shape.kv_heads << " KV heads, head_dim "
      << c.shape.head_dim << ", " << c.lengths.size() << " items, " << c.splits << " splits";
}

template <int HD, int KEYS, int STAGES>
void run_passes(const decode_attention_args& a) {
  const float scale_log2 = 1.4426950408889634f / std::sqrt(static_cast<float>(HD));
  emu::launch({a.shape.kv_heads, a.splits, a.n_items}, 32,
              decode_kernels::smem_bytes<HD, KEYS, STAGES>,
              [&] { decode_kernels::mma_kernel<HD, KEYS, STAGES>(a, scale_log2); });
  if (a.splits > 1)  // as decode_attention launches it: one split needs no merge
    emu::launch({a.shape.heads, a.n_items, 1}, std::min(a.shape.head_dim, 128u), 0,
                [&] { decode_kernels::combine_kernel(a); });
}

// The TMA pass 1 (tma_kernel) and pass 2, the pool mapped as
// decode_attention maps it.
template <int HD, int STAGES>
void run_tma_passes(const decode_attention_args& a) {
  const float scale_log2 = 1.4426950408889634f / std::sqrt(static_cast<float>(HD));
  const decode_kernels::tma_decode::args p{test::pool_map(a.kv), a};
  emu::launch({a.shape.kv_heads, a.splits, a.n_items}, 32,
              decode_kernels::tma_decode::smem_bytes<HD, STAGES>,
              [&] { decode_kernels::tma_kernel<HD, STAGES>(p, scale_log2); });
  if (a.splits > 1)
    emu::launch({a.shape.heads, a.n_items, 1}, std::min(a.shape.head_dim, 128u), 0,
                [&] { decode_kernels::combine_kernel(a); });
}

// head_dim HD's pass 1 with a.tile, as decode_attention dispatches it.
template <int HD>
void run_tile(const decode_attention_args& a) {
  switch (a.tile) {
    case decode_tile::tma16_stages3:
      return run_tma_passes<HD, 3>(a);
    case decode_tile::tma16_stages5:
      return run_tma_passes<HD, 5>(a);
    case decode_tile::keys32_stages2:
      return run_passes<HD, 32, 2>(a);
    case decode_tile::keys16_stages4:
      return run_passes<HD, 16, 4>(a);
    case decode_tile::keys32_stages4:
      return run_passes<HD, 32, 4>(a);
    case decode_tile::keys64_stages2:
      return run_passes<HD, 64, 2>(a);
    case decode_tile::keys16_stages2:
      return run_passes<HD, 16, 2>(a);
  }
}

class decode_emu_test : public ::testing::TestWithParam<emu_decode_case> {};

TEST_P(decode_emu_test, mma_path_matches_the_reference) {
  const emu_decode_case& c = GetParam();
  const auto n = static_cast<std::uint32_t>(c.lengths.size());
  const auto max_len = *std::max_element(c.lengths.begin(), c.lengths.end());
  const paged_host fx(c.shape, n, static_cast<std::uint32_t>(max_len), 11);
  const std::uint32_t qw = c.shape.q_width(), hd = c.shape.head_dim;
  // Item i in slot i at row n - i (row 0 belongs to nobody), so row != slot.
  std::vector<decode_item> items;
  for (std::uint32_t i = 0; i < n; ++i)
    items.push_back(
        decode_item{static_cast<std::int32_t>(n - i), static_cast<std::int32_t>(i), c.lengths[i]});
  const std::uint32_t rows = n + 1;
  const auto q = to_bf16(random_vector(std::size_t{rows} * qw, 12, 2.0f));
  const auto qf = to_float(q);
  for (const decode_tile tile : decode_tiles) {
    if (!decode_tile_built(tile, hd)) continue;
    SCOPED_TRACE(std::string{"tile "} + decode_tile_name(tile));
    std::vector<__nv_bfloat16> out(std::size_t{rows} * qw, __float2bfloat16(NAN));
    std::vector<float> partial(decode_partial_floats(n, c.shape.heads, c.splits, hd), NAN);
    decode_attention_args a{q.data(),       out.data(),        items.data(), n,
                            c.shape,        fx.host_view(),    fx.layer,     c.splits,
                            partial.data(), decode_kernel::mma};
    a.tile = tile;
    switch (hd) {
      case 16:
        run_passes<16, 32, 2>(a);
        break;
      case 32:
        run_passes<32, 32, 2>(a);
        break;
      case 64:
        run_tile<64>(a);
        break;
      default:
        run_tile<128>(a);
    }
    const auto got_all = to_float(out);
    for (std::uint32_t e = 0; e < qw; ++e) ASSERT_TRUE(std::isnan(got_all[e])) << "row 0 written";
    for (const decode_item& it : items)
      for (std::uint32_t h = 0; h < c.shape.heads; ++h) {
        const std::size_t at = std::size_t(it.row) * qw + h * hd;
        const auto ref = fx.reference(qf.data() + at, h, static_cast<std::uint32_t>(it.slot),
                                      static_cast<std::uint32_t>(it.length - 1));
        const std::vector<float> got(got_all.begin() + at, got_all.begin() + at + hd);
        ASSERT_LT(rel_error(got, std::vector<float>(ref.begin(), ref.end())), 1e-2)
            << "slot " << it.slot << " head " << h;
      }
  }
}

INSTANTIATE_TEST_SUITE_P(shapes, decode_emu_test,
                         // Lengths of 1 with 3 or 8 splits leave splits with no position.
                         ::testing::Values(emu_decode_case{{4, 4, 128}, {1, 17, 300}, 1},
                                           emu_decode_case{{4, 4, 128}, {100, 5, 77}, 8},
                                           emu_decode_case{{4, 2, 16}, {33, 1, 64}, 3},
                                           emu_decode_case{{8, 2, 32}, {513, 2}, 4},
                                           emu_decode_case{{16, 2, 64}, {257, 100}, 16},
                                           emu_decode_case{{8, 1, 128}, {400}, 5},
                                           // 69 and 34 pages in one split: each
                                           // tile's ring wraps many times.
                                           emu_decode_case{{2, 1, 128}, {1100, 530}, 1}),
                         [](const ::testing::TestParamInfo<emu_decode_case>& i) {
                           const emu_decode_case& c = i.param;
                           return "h" + std::to_string(c.shape.heads) + "_kv" +
                                  std::to_string(c.shape.kv_heads) + "_d" +
                                  std::to_string(c.shape.head_dim) + "_splits" +
                                  std::to_string(c.splits) + "_n" + std::to_string(i.index);
                         });

}  // namespace
}  // namespace accellm::device::cuda

// The skinny GEMM's kernels' source (skinny_kernels.cuh: skinny_kernel on
// mma.sync, skinny_wgmma_kernel on wgmma, skinny_tma_kernel on wgmma with
// TMA copies) on the host emulator (emu/emu.hpp), thread-block clusters
// included: every row tier (8 to 128 padded rows; 64 and 128 for the wgmma
// kernels), cluster splits 1, 2, 4 and 8 (skinny_gemm_split, as the
// launcher picks them), `in` not a multiple of the 64-wide k tile, `out` not
// a multiple of the 128-output tile, fp32 and bf16 y, beta 0 (y starts NaN:
// never read) and 1. Against a double-precision reference, with the GPU
// test's tolerances (skinny_gemm_test.cpp): fp32 y within 1e-4 (1 + |ref|),
// bf16 y within 1e-2 (1 + |ref|).
#include "device/cuda/skinny_gemm.cuh"
#include "device/cuda/skinny_kernels.cuh"
#include "tests/device/cuda/cuda_test_util.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <tuple>
#include <vector>

namespace accellm::device::cuda {
namespace {

using namespace test;

// body() on the grid skinny_gemm.cu launches for `a`: `split` blocks per
// 128-output tile, in clusters of `split`.
void launch(const skinny_kernels::args& a, std::uint32_t split, int smem_bytes,
            const std::function<void()>& body) {
  using namespace skinny_kernels;
  const emu_dim3 grid{split * ((a.out + block_n - 1) / block_n), 1, 1};
  emu::launch(grid, threads, static_cast<std::size_t>(smem_bytes), body, split);
}

template <int NT>
void launch_tier(const skinny_kernels::args& a, std::uint32_t split) {
  launch(a, split, skinny_kernels::config<NT>::smem_bytes,
         [&] { skinny_kernels::skinny_kernel<NT>(a); });
}

template <int RB>
void launch_wgmma(const skinny_kernels::args& a, std::uint32_t split) {
  launch(a, split, skinny_kernels::wgmma_config<RB>::smem_bytes,
         [&] { skinny_kernels::skinny_wgmma_kernel<RB>(a); });
}

// The emulator's tensor map of a row-major bf16 [rows x in] matrix read in
// boxes of 64 x box_rows, as skinny_gemm_tma encodes it.
emu::tensor_map_2d map_of(const __nv_bfloat16* base, std::uint32_t rows, std::uint32_t in,
                          std::uint32_t box_rows) {
  emu::tensor_map_2d m;
  m.base = base;
  m.dims[0] = in;
  m.dims[1] = rows;
  m.row_bytes = std::uint64_t{in} * 2;
  m.box[0] = skinny_kernels::block_k;
  m.box[1] = box_rows;
  return m;
}

template <int RB>
void launch_tma(const skinny_kernels::args& a, std::uint32_t split) {
  using namespace skinny_kernels;
  tma_args p;
  p.a = a;
  p.w_map = map_of(a.w, a.out, a.in, block_n);
  p.x_map = map_of(a.x, a.rows, a.in, 64 * RB);
  launch(a, split, tma_config<RB>::smem_bytes, [&] { skinny_tma_kernel<RB>(p); });
}

// skinny_stream_kernel at `blocks` blocks and tiles of 128 W outputs, its
// workspace's partials NaN (a slot read before it is written shows) and
// its counters zero; the counters must be zero again after it. Blocks run
// last to first when `blocks` is odd, so that the block that counts last
// on a tile, and sums it, is the tile's first as often as its last.
template <int RB, int W>
void launch_stream(const skinny_kernels::args& a, std::uint32_t blocks) {
  using namespace skinny_kernels;
  using C = stream_config<RB, W>;
  stream_args p;
  p.a = a;
  p.w_map = map_of(a.w, a.out, a.in, C::tile_n);
  p.x_map = map_of(a.x, a.rows, a.in, 64 * RB);
  p.blocks = blocks;
  std::vector<float> partials(
      skinny_stream_partial_bytes(blocks, a.rows, C::tile_n) / sizeof(float),
      std::numeric_limits<float>::quiet_NaN());
  std::vector<unsigned> counters(skinny_stream_counters(a.out, C::tile_n), 0u);
  p.partials = partials.data();
  p.counters = counters.data();
  emu::launch(
      emu_dim3{blocks, 1, 1}, C::threads, C::smem_bytes, [&] { skinny_stream_kernel<RB, W>(p); }, 1,
      blocks % 2 == 1 ? emu::block_order::backward : emu::block_order::forward);
  for (std::size_t t = 0; t < counters.size(); ++t)
    EXPECT_EQ(counters[t], 0u) << "tile " << t << "'s counter left set";
}

enum class kernel { mma, wgmma, tma, stream, stream256 };

// y = x w^T + beta y on the emulator, as skinny_gemm, skinny_gemm_wgmma or
// skinny_gemm_tma launches it (at `split` blocks a tile, as
// skinny_gemm_tma_split does, when not 0), or skinny_gemm_stream at `split`
// blocks.
void run(const skinny_kernels::args& a, kernel k, std::uint32_t split = 0) {
  if (k == kernel::stream || k == kernel::stream256) {
    const bool wide = k == kernel::stream256;
    if (a.rows <= 64)
      wide ? launch_stream<1, 2>(a, split) : launch_stream<1, 1>(a, split);
    else
      wide ? launch_stream<2, 2>(a, split) : launch_stream<2, 1>(a, split);
    return;
  }
  if (split == 0) split = skinny_gemm_split(a.in, a.out);
  if (k == kernel::wgmma) {
    if (a.rows <= 64)
      launch_wgmma<1>(a, split);
    else
      launch_wgmma<2>(a, split);
  } else if (k == kernel::tma) {
    if (a.rows <= 64)
      launch_tma<1>(a, split);
    else
      launch_tma<2>(a, split);
  } else if (a.rows <= 8)
    launch_tier<1>(a, split);
  else if (a.rows <= 16)
    launch_tier<2>(a, split);
  else if (a.rows <= 32)
    launch_tier<4>(a, split);
  else if (a.rows <= 64)
    launch_tier<8>(a, split);
  else
    launch_tier<16>(a, split);
}

struct shape {
  std::uint32_t rows, in, out;
};

// Checks `k` on `sh` (at `split`, 0: the rule's) for fp32 and bf16 y, beta 0
// (y starts NaN: never read) and 1.
void check_shape(const shape& sh, kernel k, std::uint32_t split, std::uint64_t& seed) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const auto x = to_bf16(random_vector(std::size_t{sh.rows} * sh.in, ++seed, 1.0f));
  const auto w = to_bf16(random_vector(std::size_t{sh.out} * sh.in, ++seed, 1.0f));
  const auto xf = to_float(x), wf = to_float(w);
  for (gemm_out type : {gemm_out::fp32, gemm_out::bf16})
    for (float beta : {0.0f, 1.0f}) {
      const std::size_t n = std::size_t{sh.rows} * sh.out;
      const auto y0 = beta == 0.0f ? std::vector<float>(n, nan) : random_vector(n, ++seed, 1.0f);
      std::vector<float> y32 = y0;
      std::vector<__nv_bfloat16> y16 = to_bf16(y0);
      void* y = type == gemm_out::fp32 ? static_cast<void*>(y32.data()) : y16.data();
      run(skinny_kernels::args{x.data(), w.data(), y, sh.rows, sh.in, sh.out,
                               (sh.in + skinny_kernels::block_k - 1) / skinny_kernels::block_k,
                               beta, type},
          k, split);
      const std::vector<float> got = type == gemm_out::fp32 ? y32 : to_float(y16);
      ASSERT_NO_FATAL_FAILURE(
          expect_product(got, xf, wf, y0, sh.rows, sh.in, sh.out, type, beta,
                         std::string{k == kernel::mma      ? "skinny "
                                     : k == kernel::wgmma  ? "skinny_wgmma "
                                     : k == kernel::tma    ? "skinny_tma "
                                     : k == kernel::stream ? "skinny_stream "
                                                           : "skinny_stream 256 "} +
                             std::to_string(sh.rows) + "x" + std::to_string(sh.in) + "x" +
                             std::to_string(sh.out) + " split " + std::to_string(split)));
    }
}

TEST(skinny_emu, matches_a_double_reference) {
  // Splits: 1 (64 x 128, 65 x 136, 128 x 264), 2 (3 x 200), 4 (16 x 1000,
  // 17 x 520), 8 (33 x 4096 x 64).
  const std::vector<shape> shapes = {{1, 64, 128},   {3, 200, 200},  {16, 1000, 300},
                                     {17, 520, 130}, {65, 136, 129}, {128, 264, 250},
                                     {33, 4096, 64}};
  std::uint64_t seed = 100;
  for (const shape& sh : shapes)
    for (const kernel k : {kernel::mma, kernel::wgmma, kernel::tma})
      ASSERT_NO_FATAL_FAILURE(check_shape(sh, k, 0, seed));
}

// skinny_gemm_tma_split's counts: every split of k from 1 to 8 blocks,
// the ones no rule picks (3, 5, 6, 7) included, with one wgmma row block,
// and 3 and 6 with two; 1000 is not a multiple of the 64-wide k tile, so
// the blocks' ranges differ by a tile.
TEST(skinny_emu, tma_matches_a_double_reference_at_every_split) {
  std::uint64_t seed = 300;
  for (std::uint32_t split = 1; split <= skinny_max_split; ++split) {
    ASSERT_TRUE(skinny_split_fits(1000, split)) << split;
    ASSERT_NO_FATAL_FAILURE(check_shape({20, 1000, 130}, kernel::tma, split, seed));
  }
  for (std::uint32_t split : {3u, 6u})
    ASSERT_NO_FATAL_FAILURE(check_shape({70, 1000, 129}, kernel::tma, split, seed));
  EXPECT_FALSE(skinny_split_fits(1000, 9));
  EXPECT_FALSE(skinny_split_fits(1000, 0));
  EXPECT_FALSE(skinny_split_fits(256, 3));  // 4 k tiles: one a block
  EXPECT_TRUE(skinny_split_fits(256, 2));
}

// skinny_stream at block counts that cut the work every way: one block
// (every tile whole, one after the other), fewer blocks than tiles (whole
// tiles and segments), more (every tile shared by 2 to 3 blocks), and one
// block a unit (a tile of 16 segments); 1000 is not a multiple of the k
// tile, 130 and 300 not of the output tile; one and two row blocks.
TEST(skinny_emu, stream_matches_a_double_reference_at_every_partition) {
  std::uint64_t seed = 500;
  for (std::uint32_t blocks : {1u, 3u, 5u, 7u, 32u})  // 2 tiles x 16 k tiles
    ASSERT_NO_FATAL_FAILURE(check_shape({20, 1000, 130}, kernel::stream, blocks, seed));
  for (std::uint32_t blocks : {2u, 5u, 48u})  // 3 tiles x 16 k tiles, 70 rows
    ASSERT_NO_FATAL_FAILURE(check_shape({70, 1000, 300}, kernel::stream, blocks, seed));
  ASSERT_NO_FATAL_FAILURE(check_shape({1, 64, 128}, kernel::stream, 1, seed));  // one unit
  // 5 tiles: a block runs 3 (one block) or 1 (two) whole tiles in a row.
  for (std::uint32_t blocks : {1u, 2u})
    ASSERT_NO_FATAL_FAILURE(check_shape({9, 1000, 600}, kernel::stream, blocks, seed));
}

// The same at tiles of 256 outputs (two warpgroups a block, each on its
// 128): 600 outputs are 3 tiles, the last 88 wide; 300 are 2, the second
// 44 wide (its second warpgroup's outputs all past the end).
TEST(skinny_emu, stream_256_wide_matches_a_double_reference_at_every_partition) {
  std::uint64_t seed = 900;
  for (std::uint32_t blocks : {1u, 2u, 5u, 48u})  // 3 tiles x 16 k tiles
    ASSERT_NO_FATAL_FAILURE(check_shape({20, 1000, 600}, kernel::stream256, blocks, seed));
  for (std::uint32_t blocks : {3u, 32u})  // 2 tiles x 16 k tiles, 70 rows
    ASSERT_NO_FATAL_FAILURE(check_shape({70, 1000, 300}, kernel::stream256, blocks, seed));
}

// What launch_stream relies on: the emulator runs blocks last to first
// when asked.
TEST(skinny_emu, the_emulator_runs_blocks_in_the_order_asked) {
  for (const auto order : {emu::block_order::forward, emu::block_order::backward}) {
    std::vector<unsigned> seen;
    emu::launch(
        emu_dim3{4, 1, 1}, 32, 0,
        [&] {
          if (threadIdx.x == 0) seen.push_back(blockIdx.x);
        },
        1, order);
    const std::vector<unsigned> want = order == emu::block_order::forward
                                           ? std::vector<unsigned>{0, 1, 2, 3}
                                           : std::vector<unsigned>{3, 2, 1, 0};
    EXPECT_EQ(seen, want);
  }
}

// The partition itself: contiguous ranges that cover every unit once, each
// unit's owner the block whose range holds it, a block's partial slots 2c
// (its first tile) and 2c + 1 (its last), and the order it runs its units.
TEST(skinny_emu, stream_partition_covers_every_unit_once) {
  for (const auto& [units, blocks, k_tiles] :
       {std::tuple{32u, 3u, 16u}, std::tuple{48u, 48u, 16u}, std::tuple{11008u, 132u, 64u},
        std::tuple{5u, 5u, 1u}, std::tuple{96u, 2u, 16u}, std::tuple{2048u, 132u, 64u}}) {
    const skinny_kernels::stream_partition part{units, blocks, k_tiles};
    EXPECT_EQ(part.first(0), 0u);
    EXPECT_EQ(part.first(blocks), units);
    for (std::uint32_t c = 0; c < blocks; ++c) {
      ASSERT_LT(part.first(c), part.first(c + 1)) << "block " << c << " has no unit";
      for (std::uint64_t u = part.first(c); u < part.first(c + 1); ++u)
        ASSERT_EQ(part.owner(u), c) << "unit " << u;
      // stream_order: every unit of the range once, its last tile's part
      // first, then its first tile's, then the tiles between.
      const skinny_kernels::stream_order order(part, c);
      std::vector<std::uint64_t> seen;
      for (std::uint64_t i = 0; i < part.first(c + 1) - part.first(c); ++i)
        seen.push_back(order.unit(i));
      const std::uint64_t t0 = part.first(c) / k_tiles, t1 = (part.first(c + 1) - 1) / k_tiles;
      EXPECT_EQ(seen.front() / k_tiles, t1) << "block " << c << " starts elsewhere";
      if (t1 > t0 + 1) {
        const std::uint64_t shared =
            (part.first(c + 1) - t1 * k_tiles) + ((t0 + 1) * k_tiles - part.first(c));
        EXPECT_EQ(seen[shared] % k_tiles, 0u) << "block " << c << ": the middle starts mid-tile";
      }
      std::sort(seen.begin(), seen.end());
      for (std::size_t i = 0; i < seen.size(); ++i)
        ASSERT_EQ(seen[i], part.first(c) + i) << "block " << c << " runs unit " << i << " twice";
      EXPECT_EQ(part.slot(c, t0), 2u * c);
      if (t1 != t0) {
        EXPECT_EQ(part.slot(c, t1), 2u * c + 1);
      }
    }
  }
}

}  // namespace
}  // namespace accellm::device::cuda

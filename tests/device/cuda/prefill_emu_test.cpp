// The prefill attention kernels' source (prefill_mma.cuh: rows64, rows128;
// prefill_wgmma.cuh: wgmma64, wgmma128) run on the host emulator
// (emu/emu.hpp), one fiber per CUDA thread, against the double-precision
// reference (paged_reference.hpp), on every machine with the CUDA toolkit,
// GPU or not. What the emulator checks is the kernels' logic: tiles, warp and
// warpgroup rows, causal steps, the cp.async and wgmma pipelines and their
// barriers (a stage read before it lands, refilled while still read, or an
// accumulator read while its product is in flight turns NaN). Fragment
// layouts are the PTX ISA's as the emulator reads them; rows64 and wgmma64,
// verified on H100 and H200, check that reading here.
//
// Shapes: head_dim 16 to 128 (the wgmma kernels take 64 and 128), GQA 1:1 to
// 4:1, chunks at position 0 and mid-sequence, tiles of 64 and 128 rows full
// and partial (the second warpgroup with no rows), one row, longest first.
// Every kernel is within 1e-2 of the reference; rows128 within 2e-2 of
// rows64's largest output (prefill_choice's rule); wgmma64 equals rows64 to
// the bit (on the H200 too: the same products summed in the same order),
// wgmma128 equals wgmma64, tma128 (prefill_tma.cuh) wgmma128, and tma128pp
// (its warpgroups taking turns through named barriers) tma128; tma128n (128-key
// steps, Q in shared memory: another order of sums, other bf16 roundings of P)
// is within 2e-2 of tma128's largest output, rows128's rule. The longest
// chunks take tma128n's 3 (head_dim 128) or 4 (64) stages round twice.
#include "device/cuda/prefill_mma.cuh"
#include "device/cuda/prefill_tma.cuh"
#include "device/cuda/prefill_wgmma.cuh"
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

struct emu_case {
  attn_shape shape;
  std::uint32_t context;  // positions cached before the chunk
  std::uint32_t count;    // rows of the chunk
  bool longest_first;
};

void PrintTo(const emu_case& c, std::ostream* os) {
  *os << c.shape.heads << " heads, " << c.shape.kv_heads << " KV heads, head_dim "
      << c.shape.head_dim << ", " << c.count << " rows after " << c.context
      << (c.longest_first ? ", longest tile first" : "");
}

// Launches kernel `k` at head_dim HD on the emulator.
template <int HD>
void launch(const prefill_attention_args& a) {
  const emu_dim3 grid{a.shape.heads, a.n_tiles, 1};
  const float scale = prefill_rows::scale_log2_of<HD>();
  switch (a.kernel) {
    case prefill_kernel::rows64:
      emu::launch(grid, prefill_mma::warps * 32, prefill_mma::smem_bytes<HD>(),
                  [&] { prefill_mma::prefill_rows64_kernel<HD>(a, scale); });
      return;
    case prefill_kernel::rows128:
      emu::launch(grid, prefill_mma::r128::threads, prefill_mma::r128::config<HD>::smem_bytes,
                  [&] { prefill_mma::prefill_rows128_kernel<HD>(a, scale); });
      return;
    case prefill_kernel::tma128:
    case prefill_kernel::tma128pp:
    case prefill_kernel::tma128n:
      if constexpr (HD == 64 || HD == 128) {
        const prefill_tma::args p{test::pool_map(a.kv), a};
        if (a.kernel == prefill_kernel::tma128)
          emu::launch(grid, prefill_tma::shape::threads, prefill_tma::smem_bytes<HD>(),
                      [&] { prefill_tma::tma128_kernel<HD>(p, scale); });
        else if (a.kernel == prefill_kernel::tma128n)
          emu::launch(grid, prefill_tma::shape::threads, prefill_tma::smem_bytes_n<HD>(),
                      [&] { prefill_tma::tma128n_kernel<HD>(p, scale); });
        else
          emu::launch(grid, prefill_tma::shape::threads, prefill_tma::smem_bytes<HD>(),
                      [&] { prefill_tma::tma128_kernel<HD, true>(p, scale); });
        return;
      }
      break;
    case prefill_kernel::wgmma64:
    case prefill_kernel::wgmma128:
      if constexpr (HD == 64 || HD == 128) {
        using namespace prefill_wgmma;
        if (a.kernel == prefill_kernel::wgmma64)
          emu::launch(grid, wgmma64_shape::threads, smem_bytes<HD, wgmma64_shape>(),
                      [&] { wgmma64_kernel<HD>(a, scale); });
        else
          emu::launch(grid, wgmma128_shape::threads, smem_bytes<HD, wgmma128_shape>(),
                      [&] { wgmma128_kernel<HD>(a, scale); });
        return;
      }
      break;
  }
  FAIL() << prefill_kernel_name(a.kernel) << " does not take head_dim " << HD;
}

// Runs `kernel` over `tiles` (at its own height); returns the output rows
// (NaN where nothing was written).
std::vector<float> run_tiles(const paged_host& fx, const std::vector<__nv_bfloat16>& q,
                             std::uint32_t rows, const attn_shape& shape, prefill_kernel kernel,
                             const std::vector<prefill_tile>& tiles) {
  std::vector<__nv_bfloat16> out(std::size_t{rows} * shape.q_width(), __float2bfloat16(NAN));
  const prefill_attention_args a{
      q.data(), out.data(),     tiles.data(), static_cast<std::uint32_t>(tiles.size()),
      shape,    fx.host_view(), fx.layer,     kernel};
  switch (shape.head_dim) {
    case 16:
      launch<16>(a);
      break;
    case 32:
      launch<32>(a);
      break;
    case 64:
      launch<64>(a);
      break;
    default:
      launch<128>(a);
  }
  return to_float(out);
}

// Runs `kernel` over the chunk's tiles (slot 1, rows from row0).
std::vector<float> run(const paged_host& fx, const std::vector<__nv_bfloat16>& q,
                       std::uint32_t rows, std::int32_t row0, const emu_case& c,
                       prefill_kernel kernel) {
  std::vector<prefill_tile> tiles;
  append_prefill_tiles(tiles, kernel, row0, c.count, c.context, 1);
  if (c.longest_first) sort_longest_first(tiles);
  return run_tiles(fx, q, rows, c.shape, kernel, tiles);
}

// The kernels that take head_dim hd.
std::vector<prefill_kernel> kernels_for(std::uint32_t hd) {
  std::vector<prefill_kernel> kernels{prefill_kernel::rows64, prefill_kernel::rows128};
  if (hd == 64 || hd == 128) {
    kernels.push_back(prefill_kernel::wgmma64);
    kernels.push_back(prefill_kernel::wgmma128);
    kernels.push_back(prefill_kernel::tma128);
    kernels.push_back(prefill_kernel::tma128pp);
    kernels.push_back(prefill_kernel::tma128n);
  }
  return kernels;
}

class prefill_emu_test : public ::testing::TestWithParam<emu_case> {};

TEST_P(prefill_emu_test, kernels_match_the_reference_and_each_other) {
  const emu_case& c = GetParam();
  const paged_host fx(c.shape, 2, c.context + c.count, 13);  // the chunk lives in slot 1
  const std::uint32_t qw = c.shape.q_width(), hd = c.shape.head_dim;
  const std::int32_t row0 = 3;                    // rows before the chunk belong to nobody
  const std::uint32_t rows = row0 + c.count + 2;  // and so do the last two
  const auto q = to_bf16(random_vector(std::size_t{rows} * qw, 14, 2.0f));
  const auto qf = to_float(q);
  const std::vector<prefill_kernel> kernels = kernels_for(hd);
  std::vector<std::vector<float>> outs;
  for (const prefill_kernel k : kernels) {
    outs.push_back(run(fx, q, rows, row0, c, k));
    ASSERT_FALSE(HasFatalFailure());
    const std::vector<float>& out = outs.back();
    for (std::uint32_t r = 0; r < rows; ++r) {
      const bool in_chunk = r >= static_cast<std::uint32_t>(row0) && r < row0 + c.count;
      for (std::uint32_t h = 0; h < c.shape.heads; ++h) {
        const std::size_t at = std::size_t{r} * qw + h * hd;
        const std::vector<float> got(out.begin() + at, out.begin() + at + hd);
        if (!in_chunk) {  // never written
          ASSERT_TRUE(std::all_of(got.begin(), got.end(), [](float x) { return std::isnan(x); }))
              << prefill_kernel_name(k) << " wrote row " << r;
          continue;
        }
        const auto ref = fx.reference(qf.data() + at, h, 1, c.context + r - row0);
        ASSERT_LT(rel_error(got, std::vector<float>(ref.begin(), ref.end())), 1e-2)
            << prefill_kernel_name(k) << " row " << r - row0 << " head " << h;
      }
    }
  }
  double top = 0, diff = 0;
  for (std::size_t i = 0; i < outs[0].size(); ++i)
    if (!std::isnan(outs[0][i])) {
      top = std::max(top, std::fabs(double(outs[0][i])));
      diff = std::max(diff, std::fabs(double(outs[1][i]) - outs[0][i]));
    }
  EXPECT_LE(diff, 2e-2 * top) << "max |rows128 - rows64| " << diff << ", max |rows64| " << top;
  if (outs.size() == 7) {
    std::size_t differ64 = 0, differ128 = 0, differ_tma = 0, differ_pp = 0;
    double diff_n = 0;
    for (std::size_t i = 0; i < outs[0].size(); ++i)
      if (!std::isnan(outs[0][i])) {
        differ64 += outs[2][i] != outs[0][i];
        differ128 += outs[3][i] != outs[2][i];
        differ_tma += outs[4][i] != outs[3][i];
        differ_pp += outs[5][i] != outs[4][i];
        diff_n = std::max(diff_n, std::fabs(double(outs[6][i]) - outs[4][i]));
      }
    EXPECT_LE(diff_n, 2e-2 * top) << "max |tma128n - tma128| " << diff_n << ", max |rows64| "
                                  << top;
    EXPECT_EQ(differ64, 0u) << "elements where wgmma64 and rows64 differ";
    EXPECT_EQ(differ128, 0u) << "elements where wgmma128 and wgmma64 differ";
    EXPECT_EQ(differ_tma, 0u) << "elements where tma128 and wgmma128 differ";
    EXPECT_EQ(differ_pp, 0u) << "elements where tma128pp and tma128 differ";
  }
}

INSTANTIATE_TEST_SUITE_P(
    shapes, prefill_emu_test,
    // 37 rows at head_dim 16; 200 at 32 with GQA 4:1; 72 rows past a
    // 128-row tile (its second warpgroup holds 8 rows); 64 rows (it holds
    // none); 256: two full tiles; one row; GQA 4:1 at position 333 with the
    // first warpgroup ending mid-step; a chunk at position 1, where a warp's
    // last row is the first key of a step (rows128's 32-key steps at head_dim
    // 128: skipping that step loses one key of one row).
    ::testing::Values(emu_case{{2, 1, 16}, 0, 37, false}, emu_case{{4, 1, 32}, 0, 200, false},
                      emu_case{{2, 2, 64}, 0, 200, false}, emu_case{{2, 1, 128}, 100, 64, false},
                      emu_case{{2, 2, 128}, 30, 150, true}, emu_case{{2, 1, 64}, 5, 1, false},
                      emu_case{{2, 2, 128}, 0, 256, false}, emu_case{{4, 1, 64}, 333, 130, true},
                      emu_case{{2, 1, 128}, 1, 100, false},
                      // 900 keys: tma128n's 7 steps (8 for the second
                      // warpgroup, whose last holds 4 keys) round 3 stages
                      // twice; 1140 keys: 9 steps round 4 stages twice.
                      emu_case{{2, 1, 128}, 800, 100, true},
                      emu_case{{2, 2, 64}, 1000, 140, false}),
    [](const ::testing::TestParamInfo<emu_case>& i) {
      const emu_case& c = i.param;
      return "h" + std::to_string(c.shape.heads) + "_kv" + std::to_string(c.shape.kv_heads) + "_d" +
             std::to_string(c.shape.head_dim) + "_ctx" + std::to_string(c.context) + "_rows" +
             std::to_string(c.count) + (c.longest_first ? "_longest_first" : "");
    });

// Two requests in one launch, as cuda_backend plans a batch: a 150-row
// prompt in slot 0 (rows 0..149, positions 0..) and a 70-row chunk in slot 1
// (rows 150..219, positions 90..), tiles of both longest first. Every row
// against the reference of its own request.
TEST(prefill_emu, two_requests_in_one_launch_see_only_their_own_keys) {
  const attn_shape shape{4, 2, 128};
  const std::uint32_t qw = shape.q_width(), rows = 220;
  const paged_host fx(shape, 2, 160, 17);
  const auto q = to_bf16(random_vector(std::size_t{rows} * qw, 18, 2.0f));
  const auto qf = to_float(q);
  for (const prefill_kernel k : kernels_for(shape.head_dim)) {
    std::vector<prefill_tile> tiles;
    append_prefill_tiles(tiles, k, 0, 150, 0, 0);
    append_prefill_tiles(tiles, k, 150, 70, 90, 1);
    sort_longest_first(tiles);
    const std::vector<float> out = run_tiles(fx, q, rows, shape, k, tiles);
    ASSERT_FALSE(HasFatalFailure());
    for (std::uint32_t r = 0; r < rows; ++r)
      for (std::uint32_t h = 0; h < shape.heads; ++h) {
        const std::size_t at = std::size_t{r} * qw + h * shape.head_dim;
        const std::uint32_t slot = r < 150 ? 0 : 1, pos = r < 150 ? r : 90 + (r - 150);
        const auto ref = fx.reference(qf.data() + at, h, slot, pos);
        const std::vector<float> got(out.begin() + at, out.begin() + at + shape.head_dim);
        ASSERT_LT(rel_error(got, std::vector<float>(ref.begin(), ref.end())), 1e-2)
            << prefill_kernel_name(k) << " row " << r << " (slot " << slot << ") head " << h;
      }
  }
}

}  // namespace
}  // namespace accellm::device::cuda

// The wgmma prefill kernels (prefill_wgmma.cuh) run on the host emulator
// (emu/emu.hpp): their source, one std::thread per CUDA thread, against the
// double-precision reference (paged_reference.hpp), on every machine with
// the CUDA toolkit, GPU or not. What the emulator checks is the kernels'
// logic: tiles, warpgroup rows, causal steps, the cp.async and wgmma
// pipelines and their barriers (a stage read before it lands, refilled while
// still read, or an accumulator read while its product is in flight turns
// NaN). wgmma's fragment layouts are the PTX ISA's, as the emulator reads
// them; wgmma64, verified on an H200, checks that reading here.
//
// Shapes: head_dim 64 and 128, GQA 1:1 to 4:1, chunks at position 0 and
// mid-sequence, tiles of 128 rows full and partial (the second warpgroup
// with no rows), one row, longest first. wgmma128 gives the same bits as
// wgmma64: each warpgroup sums the same products in the same order.
#include "device/cuda/prefill_wgmma.cuh"
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

// Runs `kernel` on the emulator over the chunk's tiles; returns the output
// rows (NaN where nothing was written).
std::vector<float> run(const paged_host& fx, const std::vector<__nv_bfloat16>& q,
                       std::uint32_t rows, std::int32_t row0, const emu_case& c,
                       prefill_kernel kernel) {
  std::vector<prefill_tile> tiles;
  append_prefill_tiles(tiles, kernel, row0, c.count, c.context, 1);
  if (c.longest_first) sort_longest_first(tiles);
  std::vector<__nv_bfloat16> out(std::size_t{rows} * c.shape.q_width(), __float2bfloat16(NAN));
  const prefill_attention_args a{
      q.data(), out.data(),     tiles.data(), static_cast<std::uint32_t>(tiles.size()),
      c.shape,  fx.host_view(), fx.layer,     kernel};
  const emu_dim3 grid{c.shape.heads, a.n_tiles, 1};
  const bool wide = kernel == prefill_kernel::wgmma128;
  const float scale = prefill_rows::scale_log2_of<128>();
  const float scale64 = prefill_rows::scale_log2_of<64>();
  using namespace prefill_wgmma;
  if (c.shape.head_dim == 128) {
    if (wide)
      emu::launch(grid, wgmma128_shape::threads, smem_bytes<128, wgmma128_shape>(),
                  [&] { wgmma128_kernel<128>(a, scale); });
    else
      emu::launch(grid, wgmma64_shape::threads, smem_bytes<128, wgmma64_shape>(),
                  [&] { wgmma64_kernel<128>(a, scale); });
  } else {
    if (wide)
      emu::launch(grid, wgmma128_shape::threads, smem_bytes<64, wgmma128_shape>(),
                  [&] { wgmma128_kernel<64>(a, scale64); });
    else
      emu::launch(grid, wgmma64_shape::threads, smem_bytes<64, wgmma64_shape>(),
                  [&] { wgmma64_kernel<64>(a, scale64); });
  }
  return to_float(out);
}

class prefill_emu_test : public ::testing::TestWithParam<emu_case> {};

TEST_P(prefill_emu_test, kernels_match_the_reference_and_each_other) {
  const emu_case& c = GetParam();
  const paged_host fx(c.shape, 2, c.context + c.count, 13);  // the chunk lives in slot 1
  const std::uint32_t qw = c.shape.q_width();
  const std::int32_t row0 = 3;                    // rows before the chunk belong to nobody
  const std::uint32_t rows = row0 + c.count + 2;  // and so do the last two
  const auto q = to_bf16(random_vector(std::size_t{rows} * qw, 14, 2.0f));
  const auto qf = to_float(q);
  const auto narrow = run(fx, q, rows, row0, c, prefill_kernel::wgmma64);
  const auto wide = run(fx, q, rows, row0, c, prefill_kernel::wgmma128);
  for (std::uint32_t r = 0; r < rows; ++r) {
    const bool in_chunk = r >= static_cast<std::uint32_t>(row0) && r < row0 + c.count;
    for (std::uint32_t h = 0; h < c.shape.heads; ++h) {
      const std::size_t at = std::size_t{r} * qw + h * c.shape.head_dim;
      const std::vector<float> got64(narrow.begin() + at, narrow.begin() + at + c.shape.head_dim);
      const std::vector<float> got128(wide.begin() + at, wide.begin() + at + c.shape.head_dim);
      if (!in_chunk) {  // never written
        ASSERT_TRUE(
            std::all_of(got128.begin(), got128.end(), [](float x) { return std::isnan(x); }))
            << "row " << r << " written";
        continue;
      }
      const auto ref = fx.reference(qf.data() + at, h, 1, c.context + r - row0);
      const std::vector<float> want(ref.begin(), ref.end());
      ASSERT_LT(rel_error(got64, want), 1e-2) << "wgmma64 row " << r - row0 << " head " << h;
      ASSERT_LT(rel_error(got128, want), 1e-2) << "wgmma128 row " << r - row0 << " head " << h;
      for (std::uint32_t d = 0; d < c.shape.head_dim; ++d)
        ASSERT_EQ(got64[d], got128[d]) << "row " << r - row0 << " head " << h << " dim " << d;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    shapes, prefill_emu_test,
    // 72 rows: the second 128-row tile's second warpgroup holds 8 rows; 64
    // rows: it holds none; 256: two full tiles; one row; GQA 4:1 at position
    // 333 with the first warpgroup ending mid-step.
    ::testing::Values(emu_case{{2, 2, 64}, 0, 200, false}, emu_case{{2, 1, 128}, 100, 64, false},
                      emu_case{{2, 2, 128}, 30, 150, true}, emu_case{{2, 1, 64}, 5, 1, false},
                      emu_case{{2, 2, 128}, 0, 256, false}, emu_case{{4, 1, 64}, 333, 130, true}),
    [](const ::testing::TestParamInfo<emu_case>& i) {
      const emu_case& c = i.param;
      return "h" + std::to_string(c.shape.heads) + "_kv" + std::to_string(c.shape.kv_heads) + "_d" +
             std::to_string(c.shape.head_dim) + "_ctx" + std::to_string(c.context) + "_rows" +
             std::to_string(c.count) + (c.longest_first ? "_longest_first" : "");
    });

}  // namespace
}  // namespace accellm::device::cuda

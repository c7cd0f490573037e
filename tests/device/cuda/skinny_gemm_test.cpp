// skinny_gemm, skinny_gemm_wgmma, skinny_gemm_tma and skinny_gemm_stream
// (the last three on compute capability 9.0) against a
// double-precision CPU reference of the bf16 operands, at shapes that reach
// every row tier (8, 16, 32, 64, 128 padded rows), every cluster split (1, 2,
// 4, 8), `in` not a multiple of the 64-wide k tile and `out` not a multiple
// of the 128-output tile; fp32 and bf16 y, beta 0 and 1. Tolerances: fp32 y
// within 1e-4 (1 + |ref|) (exact bf16 products, fp32 sums); bf16 y within
// 1e-2 (1 + |ref|) (STYLE.md; one rounding of the sum). The input checks run
// without a GPU.
#include "device/cuda/skinny_gemm.cuh"

#include "device/cuda/fill_uniform.cuh"
#include "device/cuda/programmatic.hpp"
#include "tests/device/cuda/cuda_test_util.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <ostream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace accellm::device::cuda {
namespace {

using namespace test;

TEST(skinny_gemm, refuses_unsupported_shapes_and_pointers_before_any_cuda_call) {
  // Never dereferenced: every check comes before the launch.
  const auto* x = reinterpret_cast<const __nv_bfloat16*>(std::uintptr_t{0x1000});
  const auto* w = reinterpret_cast<const __nv_bfloat16*>(std::uintptr_t{0x2000});
  void* y = reinterpret_cast<void*>(std::uintptr_t{0x3000});
  auto code = [](status s) { return s.ok() ? errc{} : s.err().code(); };
  EXPECT_TRUE(skinny_gemm(x, 0, 64, w, 64, y, gemm_out::fp32, 0.0f, nullptr).ok());  // no-op
  EXPECT_EQ(code(skinny_gemm(x, skinny_max_rows + 1, 64, w, 64, y, gemm_out::fp32, 0.0f, nullptr)),
            errc::invalid_argument);
  EXPECT_EQ(code(skinny_gemm(x, 4, 100, w, 64, y, gemm_out::fp32, 0.0f, nullptr)),
            errc::invalid_argument);  // in not a multiple of 8
  EXPECT_EQ(code(skinny_gemm(x, 4, 0, w, 64, y, gemm_out::bf16, 0.0f, nullptr)),
            errc::invalid_argument);
  EXPECT_EQ(code(skinny_gemm(x, 4, 64, w, 0, y, gemm_out::bf16, 0.0f, nullptr)),
            errc::invalid_argument);
  EXPECT_EQ(code(skinny_gemm(nullptr, 4, 64, w, 64, y, gemm_out::fp32, 0.0f, nullptr)),
            errc::invalid_argument);
  EXPECT_EQ(code(skinny_gemm(x, 4, 64, nullptr, 64, y, gemm_out::fp32, 0.0f, nullptr)),
            errc::invalid_argument);
  EXPECT_EQ(code(skinny_gemm(x, 4, 64, w, 64, nullptr, gemm_out::fp32, 0.0f, nullptr)),
            errc::invalid_argument);
  EXPECT_EQ(code(skinny_gemm(x + 1, 4, 64, w, 64, y, gemm_out::fp32, 0.0f, nullptr)),
            errc::invalid_argument);  // x 2 bytes off 16-byte alignment
  EXPECT_EQ(code(skinny_gemm(x, 4, 64, w + 4, 64, y, gemm_out::fp32, 0.0f, nullptr)),
            errc::invalid_argument);

  EXPECT_TRUE(skinny_gemm_supports(1, 8, 1));
  EXPECT_TRUE(skinny_gemm_supports(skinny_max_rows, 4096, 22016));
  EXPECT_FALSE(skinny_gemm_supports(0, 64, 64));
  EXPECT_FALSE(skinny_gemm_supports(skinny_max_rows + 1, 64, 64));
  EXPECT_FALSE(skinny_gemm_supports(4, 12, 64));
  EXPECT_FALSE(skinny_gemm_supports(4, 64, 0));
}

// skinny_gemm, skinny_gemm_wgmma or skinny_gemm_tma.
using kernel_fn = status (*)(const __nv_bfloat16*, std::uint32_t, std::uint32_t,
                             const __nv_bfloat16*, std::uint32_t, void*, gemm_out, float,
                             cudaStream_t);

struct variant {
  const char* name;
  kernel_fn kernel;
  bool hopper;  ///< wgmma: sm_90a code and a compute capability 9.0 device
};

void PrintTo(const variant& v, std::ostream* os) {
  *os << v.name;
}

const variant variants[] = {{"skinny_gemm", &skinny_gemm, false},
                            {"skinny_gemm_wgmma", &skinny_gemm_wgmma, true},
                            {"skinny_gemm_tma", &skinny_gemm_tma, true}};

// Checked before any CUDA call: runs without a GPU.
TEST(skinny_gemm_hopper, refuse_what_skinny_gemm_refuses_and_builds_without_sm90a) {
  const auto* x = reinterpret_cast<const __nv_bfloat16*>(std::uintptr_t{0x1000});
  const auto* w = reinterpret_cast<const __nv_bfloat16*>(std::uintptr_t{0x2000});
  void* y = reinterpret_cast<void*>(std::uintptr_t{0x3000});
  auto message = [](status st) { return st.ok() ? std::string{} : st.err().message(); };
  for (const variant& v : variants) {
    if (!v.hopper) continue;
    SCOPED_TRACE(v.name);
    EXPECT_TRUE(v.kernel(x, 0, 64, w, 64, y, gemm_out::fp32, 0.0f, nullptr).ok());
    EXPECT_NE(message(v.kernel(x, 129, 64, w, 64, y, gemm_out::fp32, 0.0f, nullptr))
                  .find(std::string{v.name} + ": rows must be 1..128"),
              std::string::npos);
    EXPECT_NE(message(v.kernel(x, 4, 64, nullptr, 64, y, gemm_out::fp32, 0.0f, nullptr))
                  .find("null pointer"),
              std::string::npos);
    EXPECT_NE(message(v.kernel(x, 4, 64, w + 4, 64, y, gemm_out::bf16, 0.0f, nullptr))
                  .find("16-byte aligned"),
              std::string::npos);
    if (!skinny_wgmma_built()) {
      EXPECT_NE(message(v.kernel(x, 4, 64, w, 64, y, gemm_out::fp32, 0.0f, nullptr)).find("sm_90a"),
                std::string::npos);
    }
  }
}

// skinny_gemm_tma_split refuses a count the shape does not fit, naming it,
// before any CUDA call (after the refusals it shares with skinny_gemm_tma).
TEST(skinny_gemm_hopper, tma_split_refuses_a_count_that_does_not_fit) {
  if (!skinny_wgmma_built()) GTEST_SKIP() << "built without sm_90a code: refused before the split";
  const auto* x = reinterpret_cast<const __nv_bfloat16*>(std::uintptr_t{0x1000});
  const auto* w = reinterpret_cast<const __nv_bfloat16*>(std::uintptr_t{0x2000});
  void* y = reinterpret_cast<void*>(std::uintptr_t{0x3000});
  auto message = [&](std::uint32_t in, std::uint32_t split) {
    const status st =
        skinny_gemm_tma_split(x, 4, in, w, 64, y, gemm_out::fp32, 0.0f, split, nullptr);
    return st.ok() ? std::string{} : st.err().message();
  };
  EXPECT_NE(message(4096, 0).find("skinny_gemm_tma: a split of 0 does not fit k = 4096"),
            std::string::npos);
  EXPECT_NE(message(4096, 9).find("a split of 9 does not fit"), std::string::npos);
  EXPECT_NE(message(256, 3).find("a split of 3 does not fit k = 256"), std::string::npos);
  EXPECT_TRUE(skinny_split_fits(4096, 7));
  EXPECT_FALSE(skinny_split_fits(64, 1));  // one k tile: only the rule's own count
}

// The planner's split counts: every one that fits but the rule's.
TEST(skinny_gemm, split_candidates_are_the_other_counts_that_fit) {
  EXPECT_EQ(skinny_split_candidates(11008, 4096),
            (std::vector<std::uint32_t>{1, 2, 3, 4, 5, 6, 7}));  // Llama-2-7B down: rule 8
  EXPECT_EQ(skinny_split_candidates(4096, 22016),
            (std::vector<std::uint32_t>{1, 3, 4, 5, 6, 7, 8}));
  EXPECT_EQ(skinny_split_candidates(256, 64), (std::vector<std::uint32_t>{1}));  // 4 k tiles
  EXPECT_TRUE(skinny_split_candidates(64, 64).empty());                          // one k tile
}

TEST(skinny_gemm, splits_k_over_enough_blocks_as_a_function_of_the_shape) {
  // 128-output tiles x split >= 256 blocks where k allows, split <= 8, and
  // every block keeps at least two 64-wide k tiles.
  EXPECT_EQ(skinny_gemm_split(4096, 4096), 8u);   // Llama-2-7B wo: 32 tiles
  EXPECT_EQ(skinny_gemm_split(11008, 4096), 8u);  // down
  EXPECT_EQ(skinny_gemm_split(4096, 12288), 4u);  // qkv: 96 tiles
  EXPECT_EQ(skinny_gemm_split(4096, 22016), 2u);  // gate/up: 172 tiles
  EXPECT_EQ(skinny_gemm_split(4096, 32000), 2u);  // LM head: 250 tiles
  EXPECT_EQ(skinny_gemm_split(4096, 65536), 1u);  // 512 tiles
  EXPECT_EQ(skinny_gemm_split(64, 64), 1u);       // one k tile
  EXPECT_EQ(skinny_gemm_split(256, 64), 2u);      // 4 k tiles: 2 each
  EXPECT_EQ(skinny_gemm_split(520, 130), 4u);     // 9 k tiles
}

struct shape {
  std::uint32_t rows, in, out;
};

// y as floats, whatever its type on the device.
std::vector<float> run_skinny(kernel_fn kernel, const shape& sh,
                              const device_buffer<__nv_bfloat16>& x,
                              const device_buffer<__nv_bfloat16>& w, gemm_out type, float beta,
                              const std::vector<float>& y0) {
  if (type == gemm_out::fp32) {
    auto dy = to_device(y0);
    EXPECT_TRUE(
        kernel(x.data(), sh.rows, sh.in, w.data(), sh.out, dy.data(), type, beta, nullptr).ok());
    return to_host(dy);
  }
  auto dy = to_device(to_bf16(y0));
  EXPECT_TRUE(
      kernel(x.data(), sh.rows, sh.in, w.data(), sh.out, dy.data(), type, beta, nullptr).ok());
  return to_float(to_host(dy));
}

class skinny_kernels_test : public ::testing::TestWithParam<variant> {
 protected:
  // The kernel under test, or null (and the test skipped) where it cannot run.
  kernel_fn kernel_here() const {
    const variant& v = GetParam();
    if (v.hopper && !(skinny_wgmma_built() && wgmma_runs_here())) return nullptr;
    return v.kernel;
  }
};

TEST_P(skinny_kernels_test, match_a_double_reference) {
  ACCELLM_REQUIRE_GPU();
  const kernel_fn kernel = kernel_here();
  if (kernel == nullptr) GTEST_SKIP() << GetParam().name << " runs on compute capability 9.0 only";
  // rows: 1, 3 (8-row tier), 16, 17 (32), 64, 65 and 128; in % 64 != 0 for
  // most; out % 128 != 0 for most; splits 1 (in 8), 2, 4 and 8 (in 4096).
  const std::vector<shape> shapes = {{1, 64, 128},    {3, 200, 200},   {16, 1000, 300},
                                     {17, 520, 130},  {64, 256, 1000}, {65, 136, 129},
                                     {128, 264, 250}, {8, 8, 5},       {33, 4096, 64}};
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::uint64_t seed = 100;
  for (const shape& sh : shapes) {
    auto x = to_bf16(random_vector(std::size_t{sh.rows} * sh.in, ++seed, 1.0f));
    auto w = to_bf16(random_vector(std::size_t{sh.out} * sh.in, ++seed, 1.0f));
    auto dx = to_device(x);
    auto dw = to_device(w);
    auto xf = to_float(x), wf = to_float(w);
    for (gemm_out type : {gemm_out::fp32, gemm_out::bf16})
      for (float beta : {0.0f, 1.0f}) {
        // With beta = 0, y starts as NaN: it must not be read.
        auto y0 = beta == 0.0f ? std::vector<float>(std::size_t{sh.rows} * sh.out, nan)
                               : random_vector(std::size_t{sh.rows} * sh.out, ++seed, 1.0f);
        const std::vector<float> got = run_skinny(kernel, sh, dx, dw, type, beta, y0);
        ASSERT_NO_FATAL_FAILURE(expect_product(
            got, xf, wf, y0, sh.rows, sh.in, sh.out, type, beta,
            std::to_string(sh.rows) + "x" + std::to_string(sh.in) + "x" + std::to_string(sh.out)));
      }
  }
}

// skinny_gemm_tma_split at every count from 1 to 8 blocks a tile, on one
// and two wgmma row blocks.
TEST(skinny_gemm_hopper, tma_split_matches_a_double_reference_at_every_count) {
  ACCELLM_REQUIRE_GPU();
  if (!(skinny_wgmma_built() && wgmma_runs_here()))
    GTEST_SKIP() << "skinny_gemm_tma runs on compute capability 9.0 only";
  std::uint64_t seed = 400;
  for (const shape& sh : {shape{20, 1000, 300}, shape{70, 1000, 129}}) {
    auto x = to_bf16(random_vector(std::size_t{sh.rows} * sh.in, ++seed, 1.0f));
    auto w = to_bf16(random_vector(std::size_t{sh.out} * sh.in, ++seed, 1.0f));
    auto dx = to_device(x);
    auto dw = to_device(w);
    const auto xf = to_float(x), wf = to_float(w);
    const auto y0 = random_vector(std::size_t{sh.rows} * sh.out, ++seed, 1.0f);
    for (std::uint32_t split = 1; split <= skinny_max_split; ++split) {
      auto dy = to_device(y0);
      ASSERT_TRUE(skinny_gemm_tma_split(dx.data(), sh.rows, sh.in, dw.data(), sh.out, dy.data(),
                                        gemm_out::fp32, 1.0f, split, nullptr)
                      .ok())
          << split;
      ASSERT_NO_FATAL_FAILURE(
          expect_product(to_host(dy), xf, wf, y0, sh.rows, sh.in, sh.out, gemm_out::fp32, 1.0f,
                         std::to_string(sh.rows) + " rows, split " + std::to_string(split)));
    }
  }
}

// skinny_gemm_stream refuses, before any CUDA call, what skinny_gemm_tma
// refuses, a block count of 0 or past one a unit, and a workspace too small
// for the shape, naming each.
TEST(skinny_gemm_hopper, stream_refuses_bad_blocks_and_a_short_workspace) {
  if (!skinny_wgmma_built()) GTEST_SKIP() << "built without sm_90a code: refused before the rest";
  const auto* x = reinterpret_cast<const __nv_bfloat16*>(std::uintptr_t{0x1000});
  const auto* w = reinterpret_cast<const __nv_bfloat16*>(std::uintptr_t{0x2000});
  void* y = reinterpret_cast<void*>(std::uintptr_t{0x3000});
  skinny_stream_space space{reinterpret_cast<float*>(std::uintptr_t{0x4000}),
                            skinny_stream_partial_bytes(8, 4, 128),
                            reinterpret_cast<unsigned*>(std::uintptr_t{0x5000}), 1};
  auto message = [&](std::uint32_t rows, std::uint32_t in, std::uint32_t out, std::uint32_t blocks,
                     std::uint32_t width = 128) {
    const status st = skinny_gemm_stream(x, rows, in, w, out, y, gemm_out::fp32, 0.0f, blocks,
                                         width, space, nullptr);
    return st.ok() ? std::string{} : st.err().message();
  };
  EXPECT_NE(message(129, 512, 128, 4).find("skinny_gemm_stream: rows must be 1..128"),
            std::string::npos);
  EXPECT_NE(message(4, 512, 128, 0).find("0 blocks for 8 units"), std::string::npos);
  EXPECT_NE(message(4, 512, 128, 9).find("9 blocks for 8 units"), std::string::npos);
  EXPECT_NE(message(4, 512, 256, 4).find("workspace is too small"), std::string::npos);  // 2 tiles
  EXPECT_NE(message(70, 512, 128, 8).find("workspace is too small"),
            std::string::npos);  // 128 rows
  EXPECT_NE(message(4, 512, 128, 4, 192).find("tiles of 192 outputs (128 or 256)"),
            std::string::npos);
  EXPECT_NE(message(4, 512, 128, 5, 256).find("workspace is too small"), std::string::npos);
  space.counters = nullptr;
  EXPECT_NE(message(4, 512, 128, 4).find("workspace is too small"), std::string::npos);
  EXPECT_EQ(skinny_stream_counters(129, 128), 2u);
  EXPECT_EQ(skinny_stream_counters(257, 256), 2u);
  EXPECT_EQ(skinny_stream_units(1000, 300, 256), 2u * 16);
  EXPECT_EQ(skinny_stream_partial_bytes(3, 64, 128) * 2, skinny_stream_partial_bytes(3, 65, 128));
  EXPECT_EQ(skinny_stream_partial_bytes(3, 64, 128) * 2, skinny_stream_partial_bytes(3, 64, 256));
}

// skinny_gemm_stream at block counts that cut the tiles every way (one
// block, with whole tiles in a row; fewer blocks than tiles; more; one a
// unit), one and two row blocks, fp32 and bf16 y, beta 0 and 1; the
// workspace's counters are zero again after each launch, and the same
// block count gives the same bits.
TEST(skinny_gemm_hopper, stream_matches_a_double_reference_at_every_partition) {
  ACCELLM_REQUIRE_GPU();
  if (!(skinny_wgmma_built() && wgmma_runs_here()))
    GTEST_SKIP() << "skinny_gemm_stream runs on compute capability 9.0 only";
  const float nan = std::numeric_limits<float>::quiet_NaN();
  auto partials = device_buffer<float>::allocate(skinny_stream_partial_bytes(48, 128, 256) / 4);
  auto counters = to_device(std::vector<unsigned>(5, 0u));
  ASSERT_TRUE(partials.ok());
  const skinny_stream_space space{partials->data(), partials->bytes(), counters.data(), 5};
  std::uint64_t seed = 700;
  for (const auto& [sh, blocks, width] :
       {std::tuple{shape{20, 1000, 300}, 1u, 128u}, std::tuple{shape{20, 1000, 300}, 2u, 128u},
        std::tuple{shape{20, 1000, 300}, 7u, 128u}, std::tuple{shape{20, 1000, 300}, 48u, 128u},
        std::tuple{shape{70, 1000, 129}, 5u, 128u}, std::tuple{shape{1, 64, 128}, 1u, 128u},
        std::tuple{shape{9, 1000, 600}, 1u, 128u}, std::tuple{shape{20, 1000, 600}, 5u, 256u},
        std::tuple{shape{70, 1000, 300}, 32u, 256u}}) {
    auto x = to_bf16(random_vector(std::size_t{sh.rows} * sh.in, ++seed, 1.0f));
    auto w = to_bf16(random_vector(std::size_t{sh.out} * sh.in, ++seed, 1.0f));
    auto dx = to_device(x);
    auto dw = to_device(w);
    const auto xf = to_float(x), wf = to_float(w);
    const std::string what = std::to_string(sh.rows) + "x" + std::to_string(sh.in) + "x" +
                             std::to_string(sh.out) + " at " + std::to_string(blocks) +
                             " blocks, " + std::to_string(width) + " wide";
    for (gemm_out type : {gemm_out::fp32, gemm_out::bf16})
      for (float beta : {0.0f, 1.0f}) {
        const auto y0 = beta == 0.0f ? std::vector<float>(std::size_t{sh.rows} * sh.out, nan)
                                     : random_vector(std::size_t{sh.rows} * sh.out, ++seed, 1.0f);
        std::vector<float> got[2];
        for (std::vector<float>& g : got) {
          if (type == gemm_out::fp32) {
            auto dy = to_device(y0);
            ASSERT_TRUE(skinny_gemm_stream(dx.data(), sh.rows, sh.in, dw.data(), sh.out, dy.data(),
                                           type, beta, blocks, width, space, nullptr)
                            .ok());
            g = to_host(dy);
          } else {
            auto dy = to_device(to_bf16(y0));
            ASSERT_TRUE(skinny_gemm_stream(dx.data(), sh.rows, sh.in, dw.data(), sh.out, dy.data(),
                                           type, beta, blocks, width, space, nullptr)
                            .ok());
            g = to_float(to_host(dy));
          }
        }
        ASSERT_NO_FATAL_FAILURE(
            expect_product(got[0], xf, wf, y0, sh.rows, sh.in, sh.out, type, beta, what));
        EXPECT_EQ(std::memcmp(got[0].data(), got[1].data(), got[0].size() * sizeof(float)), 0)
            << what << ": two launches differ";
        EXPECT_EQ(to_host(counters), std::vector<unsigned>(5, 0u)) << what;
      }
  }
}

TEST_P(skinny_kernels_test, are_bitwise_deterministic_at_a_decode_shape) {
  ACCELLM_REQUIRE_GPU();
  const kernel_fn kernel = kernel_here();
  if (kernel == nullptr) GTEST_SKIP() << GetParam().name << " runs on compute capability 9.0 only";
  // Llama-2-7B's wo at batch 64: 32 tiles x 8-block clusters.
  const shape sh{64, 4096, 4096};
  auto x = to_bf16(random_vector(std::size_t{sh.rows} * sh.in, 7, 1.0f));
  auto w = to_bf16(random_vector(std::size_t{sh.out} * sh.in, 8, 0.05f));
  auto dx = to_device(x);
  auto dw = to_device(w);
  const auto y0 = random_vector(std::size_t{sh.rows} * sh.out, 9, 1.0f);
  for (gemm_out type : {gemm_out::fp32, gemm_out::bf16}) {
    const std::vector<float> a = run_skinny(kernel, sh, dx, dw, type, 1.0f, y0);
    const std::vector<float> b = run_skinny(kernel, sh, dx, dw, type, 1.0f, y0);
    ASSERT_EQ(a.size(), b.size());
    EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0)
        << (type == gemm_out::fp32 ? "fp32" : "bf16") << " outputs differ between two runs";
    // And right, on a sample of outputs (every 61st).
    auto xf = to_float(x), wf = to_float(w);
    for (std::size_t i = 0; i < a.size(); i += 61) {
      const std::size_t r = i / sh.out, o = i % sh.out;
      double ref = type == gemm_out::fp32 ? y0[i] : round_bf16(y0[i]);
      for (std::uint32_t k = 0; k < sh.in; ++k)
        ref += double(xf[r * sh.in + k]) * wf[o * sh.in + k];
      const double tol = (type == gemm_out::fp32 ? 1e-4 : 1e-2) * (1.0 + std::fabs(ref));
      ASSERT_NEAR(a[i], ref, tol) << "row " << r << ", output " << o;
    }
  }
}

// Launched programmatically (launch.cuh) right behind the kernel that writes
// x: a kernel that read x before waiting for that one would read what x held
// before (zeros here). Its weights may be read early: nothing writes them.
TEST_P(skinny_kernels_test, read_x_only_after_the_kernel_before_them) {
  ACCELLM_REQUIRE_GPU();
  const kernel_fn kernel = kernel_here();
  if (kernel == nullptr) GTEST_SKIP() << GetParam().name << " runs on compute capability 9.0 only";
  const shape sh{64, 4096, 4096};  // Llama-2-7B's wo at batch 64
  auto w = to_bf16(random_vector(std::size_t{sh.out} * sh.in, 21, 0.05f));
  auto dw = to_device(w);
  auto dx = to_device(std::vector<__nv_bfloat16>(std::size_t{sh.rows} * sh.in));  // zeros
  auto dy = to_device(std::vector<float>(std::size_t{sh.rows} * sh.out, 0.0f));
  ASSERT_TRUE(fill_uniform(dx.data(), dx.size(), 22, 1.0f, nullptr).ok());
  {
    const programmatic_launch_scope programmatic(true);
    ASSERT_TRUE(kernel(dx.data(), sh.rows, sh.in, dw.data(), sh.out, dy.data(), gemm_out::fp32,
                       0.0f, nullptr)
                    .ok());
  }
  const std::vector<float> got = to_host(dy);
  const std::vector<float> xf = to_float(to_host(dx)), wf = to_float(w);
  for (std::size_t i = 0; i < got.size(); i += 97) {
    const std::size_t r = i / sh.out, o = i % sh.out;
    double ref = 0.0;
    for (std::uint32_t k = 0; k < sh.in; ++k) ref += double(xf[r * sh.in + k]) * wf[o * sh.in + k];
    ASSERT_NEAR(got[i], ref, 1e-4 * (1.0 + std::fabs(ref))) << "row " << r << ", output " << o;
  }
}

INSTANTIATE_TEST_SUITE_P(kernels, skinny_kernels_test, ::testing::ValuesIn(variants),
                         [](const ::testing::TestParamInfo<variant>& i) {
                           return std::string{i.param.name};
                         });

}  // namespace
}  // namespace accellm::device::cuda

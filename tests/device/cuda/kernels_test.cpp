// Every elementwise kernel and the GEMM wrapper against a CPU reference
// (device/cpu's kernels where they exist). Tolerances follow STYLE.md: bf16
// outputs within 1e-2 relative; fp32 paths tighter where stated.
#include "device/cpu/kernels.hpp"

#include "device/cpu/weights.hpp"
#include "device/cuda/candidate_check.hpp"
#include "device/cuda/fill_uniform.cuh"
#include "device/cuda/gemm.hpp"
#include "device/cuda/gemm_planner.hpp"
#include "device/cuda/gemv.cuh"
#include "device/cuda/kv_copy.cuh"
#include "device/cuda/lt_search.hpp"
#include "device/cuda/rmsnorm.cuh"
#include "device/cuda/rope_append.cuh"
#include "device/cuda/sampling.cuh"
#include "device/cuda/skinny_gemm.cuh"
#include "device/cuda/swiglu.cuh"
#include "device/cuda/weights.hpp"
#include "device/model_spec.hpp"
#include "tests/device/cuda/cuda_test_util.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <iostream>
#include <tuple>
#include <vector>

namespace accellm::device::cuda {
namespace {

using namespace test;

TEST(cuda_kernels, rmsnorm_matches_cpu_and_gathers_rows) {
  ACCELLM_REQUIRE_GPU();
  constexpr std::uint32_t rows = 5, n = 1000;  // n not a multiple of the block size
  auto x = random_vector(rows * n, 1, 3.0f);
  auto g = to_bf16(random_vector(n, 2, 1.0f));
  auto dx = to_device(x);
  auto dg = to_device(g);
  auto dout = to_device(std::vector<__nv_bfloat16>(rows * n));
  std::vector<std::int32_t> gather{4, 0, 2};
  auto dgather = to_device(gather);
  ASSERT_TRUE(
      rmsnorm(dx.data(), dg.data(), 3, n, 1e-5f, dgather.data(), dout.data(), nullptr).ok());
  auto out = to_float(to_host(dout));
  auto gf = to_float(g);
  for (std::uint32_t i = 0; i < 3; ++i) {
    std::vector<float> ref(n);
    cpu::rmsnorm(x.data() + gather[i] * n, gf.data(), n, 1e-5f, ref.data());
    std::vector<float> got(out.begin() + i * n, out.begin() + (i + 1) * n);
    EXPECT_LT(rel_error(got, ref), 1e-2) << "row " << i;
  }
  EXPECT_EQ(rmsnorm(dx.data(), dg.data(), 1, 0, 1e-5f, nullptr, dout.data(), nullptr).err().code(),
            errc::invalid_argument);
}

TEST(cuda_kernels, swiglu_matches_cpu) {
  ACCELLM_REQUIRE_GPU();
  constexpr std::uint32_t rows = 3, f = 333;
  auto gu_bf16 = to_bf16(random_vector(rows * 2 * f, 3, 4.0f));
  auto gu = to_float(gu_bf16);  // the values the GPU reads
  auto dgu = to_device(gu_bf16);
  auto dout = to_device(std::vector<__nv_bfloat16>(rows * f));
  ASSERT_TRUE(swiglu(dgu.data(), rows, f, dout.data(), nullptr).ok());
  auto out = to_float(to_host(dout));
  std::vector<float> ref(rows * f);
  for (std::uint32_t r = 0; r < rows; ++r)
    cpu::silu_mul(gu.data() + r * 2 * f, gu.data() + r * 2 * f + f, f, ref.data() + r * f);
  EXPECT_LT(rel_error(out, ref), 1e-2);
  for (std::size_t i = 0; i < ref.size(); ++i)
    ASSERT_NEAR(out[i], ref[i], 1e-2 * (1 + std::fabs(ref[i])));
}

TEST(cuda_kernels, rope_append_rotates_and_writes_the_paged_cache) {
  ACCELLM_REQUIRE_GPU();
  const attn_shape shape{8, 2, 32};
  const std::uint32_t rows = 4, layers = 3, layer = 1, bt = 16, qw = shape.q_width(),
                      kvw = shape.kv_width(), width = qw + 2 * kvw;
  const std::vector<std::int32_t> pos{0, 17, 33, 5}, slot{0, 0, 1, 1};
  // Two requests; slot 0 uses blocks {3, 1, 0}, slot 1 uses {2, 4, 5}.
  const std::uint32_t stride = 3;
  const std::vector<std::int32_t> tables{3, 1, 0, 2, 4, 5};
  auto qkv_bf16 = to_bf16(random_vector(rows * width, 4, 2.0f));
  auto qkv = to_float(qkv_bf16);  // the values the GPU reads
  auto table = rope_table_host(64, shape.head_dim, 10000.0);
  std::vector<float> cpu_table(table.size());
  cpu::fill_rope_table(64, shape.head_dim, 10000.0, cpu_table.data(),
                       cpu_table.data() + table.size() / 2);
  ASSERT_EQ(std::memcmp(table.data(), cpu_table.data(), table.size() * 4), 0)
      << "RoPE tables differ";
  const std::uint64_t blocks = 6;
  kv_pool_view kv{nullptr, layers, bt, kvw, nullptr, stride};
  auto dpool = to_device(std::vector<__nv_bfloat16>(blocks * kv.block_elems()));
  auto dtables = to_device(tables);
  kv.pool = dpool.data();
  kv.tables = dtables.data();
  auto dqkv = to_device(qkv_bf16);
  auto dpos = to_device(pos);
  auto dslot = to_device(slot);
  auto drope = to_device(table);
  auto dq = to_device(std::vector<__nv_bfloat16>(rows * qw));
  ASSERT_TRUE(rope_append(dqkv.data(), rows, shape, row_tables{dpos.data(), dslot.data()},
                          drope.data(), drope.data() + table.size() / 2, dq.data(), kv, layer,
                          nullptr)
                  .ok());
  auto q = to_float(to_host(dq));
  auto pool = to_float(to_host(dpool));
  const cpu::rope_table rt{shape.head_dim / 2u, cpu_table.data(),
                           cpu_table.data() + table.size() / 2};
  kv_pool_view host_kv = kv;
  host_kv.tables = tables.data();
  for (std::uint32_t r = 0; r < rows; ++r) {
    std::vector<float> ref(qkv.begin() + r * width, qkv.begin() + (r + 1) * width);
    cpu::rope(ref.data(), shape.heads, pos[r], rt);
    cpu::rope(ref.data() + qw, shape.kv_heads, pos[r], rt);
    for (std::uint32_t i = 0; i < qw; ++i)
      ASSERT_NEAR(q[r * qw + i], ref[i], 1e-2 * (1 + std::fabs(ref[i])));
    const auto k_at = host_kv.row_offset(slot[r], layer, 0, pos[r]);
    const auto v_at = host_kv.row_offset(slot[r], layer, 1, pos[r]);
    for (std::uint32_t i = 0; i < kvw; ++i) {
      ASSERT_NEAR(pool[k_at + i], ref[qw + i], 1e-2 * (1 + std::fabs(ref[qw + i])))
          << "K row " << r;
      ASSERT_EQ(pool[v_at + i], round_bf16(ref[qw + kvw + i])) << "V row " << r;
    }
  }
  EXPECT_EQ(
      rope_append(dqkv.data(), rows, attn_shape{8, 2, 31}, row_tables{dpos.data(), dslot.data()},
                  drope.data(), drope.data(), dq.data(), kv, layer, nullptr)
          .err()
          .code(),
      errc::invalid_argument);
}

TEST(cuda_kernels, gemm_bf16_matches_a_double_reference) {
  ACCELLM_REQUIRE_GPU();
  auto s = stream::create();
  ASSERT_TRUE(s.ok());
  auto h = cublas_handle::create(s->get());
  ASSERT_TRUE(h.ok());
  constexpr std::uint32_t rows = 7, in = 96, out = 40;
  auto x = to_bf16(random_vector(rows * in, 5, 1.0f));
  auto w = to_bf16(random_vector(out * in, 6, 1.0f));
  auto y0 = random_vector(rows * out, 7, 1.0f);
  auto dx = to_device(x);
  auto dw = to_device(w);
  auto dy = to_device(y0);
  ASSERT_TRUE(
      gemm(h->get(), dx.data(), rows, in, dw.data(), out, dy.data(), gemm_out::fp32, 1.0f).ok());
  auto y = to_host(dy);
  auto xf = to_float(x), wf = to_float(w);
  for (std::uint32_t r = 0; r < rows; ++r)
    for (std::uint32_t o = 0; o < out; ++o) {
      double ref = y0[r * out + o];
      for (std::uint32_t k = 0; k < in; ++k) ref += double(xf[r * in + k]) * wf[o * in + k];
      // Exact bf16 products, fp32 accumulation of 96 terms of magnitude <= 1.
      ASSERT_NEAR(y[r * out + o], ref, 1e-4) << r << "," << o;
    }
  EXPECT_EQ(gemm(h->get(), dx.data(), rows, 0, dw.data(), out, dy.data(), gemm_out::fp32, 0.0f)
                .err()
                .code(),
            errc::invalid_argument);
}

// A planner with what it uses; members in this order, so the planner goes
// first.
struct planned {
  stream s;
  cublas_handle h;
  device_buffer<std::uint8_t> ws;
  gemm_planner p;
};

// Prepares and runs the planner on two shapes (fp32 y with beta 1, bf16 y
// with beta 0) and checks run()'s product against a double reference
// whichever candidate won; returns the planner for its counts.
planned plan_and_check(gemm_planner_options options) {
  auto s = stream::create();
  EXPECT_TRUE(s.ok());
  auto h = cublas_handle::create(s->get());
  EXPECT_TRUE(h.ok());
  auto ws = device_buffer<std::uint8_t>::allocate(std::size_t{4} << 20);
  EXPECT_TRUE(ws.ok());
  auto planner = gemm_planner::create(s->get(), ws->data(), ws->size(), options);
  EXPECT_TRUE(planner.ok()) << planner.err().what();
  constexpr std::uint32_t rows = 7, in = 96, out = 40;
  auto x = to_bf16(random_vector(rows * in, 40, 1.0f));
  auto w = to_bf16(random_vector(out * in, 41, 1.0f));
  auto y0 = random_vector(rows * out, 42, 1.0f);
  auto dx = to_device(x);
  auto dw = to_device(w);
  auto scratch = to_device(std::vector<float>(rows * out));
  auto xf = to_float(x), wf = to_float(w);
  for (gemm_out type : {gemm_out::fp32, gemm_out::bf16}) {
    const float beta = type == gemm_out::fp32 ? 1.0f : 0.0f;
    EXPECT_TRUE(
        planner->prepare(h->get(), dx.data(), rows, in, dw.data(), out, type, beta, scratch.data())
            .ok());
    std::vector<float> got(rows * out);
    if (type == gemm_out::fp32) {
      auto dy = to_device(y0);
      EXPECT_TRUE(
          planner->run(h->get(), dx.data(), rows, in, dw.data(), out, dy.data(), type, beta).ok());
      got = to_host(dy);
    } else {
      auto dy = to_device(std::vector<__nv_bfloat16>(rows * out));
      EXPECT_TRUE(
          planner->run(h->get(), dx.data(), rows, in, dw.data(), out, dy.data(), type, beta).ok());
      got = to_float(to_host(dy));
    }
    for (std::uint32_t r = 0; r < rows; ++r)
      for (std::uint32_t o = 0; o < out; ++o) {
        double ref = beta * y0[r * out + o];
        for (std::uint32_t k = 0; k < in; ++k) ref += double(xf[r * in + k]) * wf[o * in + k];
        // fp32: exact bf16 products summed in fp32; bf16: one rounding of the result.
        const double tol = type == gemm_out::fp32 ? 1e-4 : 1e-2 * (1.0 + std::fabs(ref));
        EXPECT_NEAR(got[r * out + o], ref, tol) << r << "," << o;
      }
  }
  EXPECT_EQ(planner->prepared(), 2u);
  return planned{std::move(*s), std::move(*h), std::move(*ws), std::move(*planner)};
}

// The counts and choice() tell the same story.
void expect_consistent(const gemm_planner& p) {
  std::size_t lt = 0, skinny = 0, skinny_wgmma = 0, skinny_tma = 0, skinny_stream = 0;
  for (auto [type, beta] : {std::pair{gemm_out::fp32, 1.0f}, std::pair{gemm_out::bf16, 0.0f}}) {
    const gemm_choice c = p.choice(7, 96, 40, type, beta);
    lt += c == gemm_choice::lt;
    skinny += c == gemm_choice::skinny;
    skinny_wgmma += c == gemm_choice::skinny_wgmma;
    skinny_tma += c == gemm_choice::skinny_tma;
    skinny_stream += c == gemm_choice::skinny_stream;
  }
  EXPECT_EQ(p.using_lt(), lt);
  EXPECT_LE(p.using_lt_variant(), p.using_lt());
  EXPECT_EQ(p.using_skinny(), skinny);
  EXPECT_EQ(p.using_skinny_wgmma(), skinny_wgmma);
  EXPECT_EQ(p.using_skinny_tma(), skinny_tma);
  EXPECT_EQ(p.using_skinny_stream(), skinny_stream);
  EXPECT_EQ(p.choice(7, 96, 41, gemm_out::fp32, 1.0f), gemm_choice::cublas);  // not prepared
}

// What the planner's and the prefill probe's checks read (no GPU).
TEST(cuda_kernels, deviation_gives_the_largest_difference_and_reference_and_sees_non_finite) {
  const deviation d = deviation_of({1.0f, -2.5f, 3.0f}, {1.5f, -2.0f, -4.0f});
  EXPECT_TRUE(d.finite);
  EXPECT_DOUBLE_EQ(d.max_diff, 7.0);
  EXPECT_DOUBLE_EQ(d.max_ref, 4.0);
  EXPECT_FALSE(deviation_of({1.0f, NAN}, {1.0f, 1.0f}).finite);
  EXPECT_FALSE(deviation_of({1.0f, 1.0f}, {INFINITY, 1.0f}).finite);
}

// Every cuBLASLt candidate, the heuristic's and the split-K variants,
// computes the product; the variants are what lt_search says they are.
TEST(cuda_kernels, lt_candidates_each_compute_the_product) {
  ACCELLM_REQUIRE_GPU();
  auto s = stream::create();
  ASSERT_TRUE(s.ok());
  cublasLtHandle_t lt = nullptr;
  ASSERT_EQ(cublasLtCreate(&lt), CUBLAS_STATUS_SUCCESS);
  auto ws = device_buffer<std::uint8_t>::allocate(std::size_t{8} << 20);
  ASSERT_TRUE(ws.ok());
  // A decode-like product: few rows, k long enough to split 8 ways.
  constexpr std::uint32_t rows = 16, in = 2048, out = 256;
  auto x = to_bf16(random_vector(rows * in, 50, 1.0f));
  auto w = to_bf16(random_vector(out * in, 51, 1.0f));
  auto y0 = random_vector(rows * out, 52, 1.0f);
  auto dx = to_device(x);
  auto dw = to_device(w);
  const auto xf = to_float(x), wf = to_float(w);
  for (const float beta : {0.0f, 1.0f}) {
    auto product = lt_product::create(rows, in, out, gemm_out::fp32);
    ASSERT_TRUE(product.ok()) << product.err().what();
    const lt_search search;
    const std::vector<lt_candidate> cands = lt_candidates(lt, *product, ws->size(), search);
    ASSERT_FALSE(cands.empty());
    EXPECT_TRUE(cands.front().proposed);
    EXPECT_LE(lt_candidates(lt, *product, ws->size(), lt_search{.varied = 0}).size(), cands.size());
    std::size_t variants = 0;
    bool seen_variant = false;
    for (std::size_t i = 0; i < cands.size(); ++i) {
      const lt_candidate& cand = cands[i];
      EXPECT_FALSE(cand.proposed && seen_variant) << "a proposal after a variant, #" << i;
      seen_variant |= !cand.proposed;
      for (std::size_t j = 0; j < i; ++j)
        EXPECT_NE(std::memcmp(&cand.algo, &cands[j].algo, sizeof cand.algo), 0) << i << " = " << j;
      if (!cand.proposed) {
        ++variants;
        EXPECT_NE(std::find(search.splits.begin(), search.splits.end(), cand.split_k),
                  search.splits.end());
      }
      auto dy = to_device(y0);
      ASSERT_EQ(product->run(lt, cand.algo, dx.data(), dw.data(), dy.data(), beta, ws->data(),
                             ws->size(), s->get()),
                CUBLAS_STATUS_SUCCESS)
          << "candidate " << i << " (split " << cand.split_k << ")";
      ASSERT_TRUE(s->synchronize().ok());
      const std::vector<float> y = to_host(dy);
      double worst = 0;
      for (std::uint32_t r = 0; r < rows; ++r)
        for (std::uint32_t o = 0; o < out; ++o) {
          double ref = beta * y0[r * out + o];
          for (std::uint32_t k = 0; k < in; ++k) ref += double(xf[r * in + k]) * wf[o * in + k];
          worst = std::max(worst, std::fabs(y[r * out + o] - ref));
        }
      // Exact bf16 products of magnitude <= 1, 2048 of them summed in fp32
      // in some order: |ref| <~ 60, fp32 rounding ~1e-5 of it.
      EXPECT_LT(worst, 2e-3) << "candidate " << i << " (split " << cand.split_k
                             << (cand.proposed ? ", proposed)" : ", variant)");
    }
    std::cout << "beta " << beta << ": " << cands.size() - variants << " proposals, " << variants
              << " split-K variants, all correct\n";
  }
  cublasLtDestroy(lt);
}

// How prefill_choice and decode_choice describe themselves (no GPU).
TEST(cuda_kernels, a_choice_describes_its_times_and_its_failures) {
  const std::vector<trial_summary> trials{{"16x4", true, 0.105f, "verified"},
                                          {"64x2", false, 0.0f, "failed to launch (x)"},
                                          {"32x4", true, 0.125f, "verified"}};
  EXPECT_EQ(describe_choice("16x4", "verified, a clear win", trials, "vs 32x2 0.118 ms"),
            "16x4: verified, a clear win (16x4 0.105 ms, 32x4 0.125 ms vs 32x2 0.118 ms); 64x2 "
            "failed to launch (x)");
  EXPECT_EQ(describe_choice("32x2", "by rule, no probe", {}, ""), "32x2: by rule, no probe");
  // Times without the reference's are left out.
  EXPECT_EQ(describe_choice("rows64", "no clear win", trials, ""),
            "rows64: no clear win; 64x2 failed to launch (x)");
}

TEST(cuda_kernels, gemm_planner_runs_the_product_it_timed) {
  ACCELLM_REQUIRE_GPU();
  const planned run = plan_and_check({});
  const gemm_planner& p = run.p;
  EXPECT_LE(p.using_lt() + p.using_skinny() + p.using_skinny_wgmma() + p.using_skinny_tma(), 2u);
  expect_consistent(p);
}

// Prefill-sized products are planned by power-of-two bucket of rows (no GPU).
TEST(cuda_kernels, gemm_planner_buckets_rows_past_exact_rows_by_powers_of_two) {
  static_assert(gemm_planner::exact_rows == 256);
  for (std::uint32_t r : {1u, 7u, 64u, 255u, 256u}) EXPECT_EQ(gemm_planner::bucket_of(r), r);
  EXPECT_EQ(gemm_planner::bucket_of(257), 512u);
  EXPECT_EQ(gemm_planner::bucket_of(512), 512u);
  EXPECT_EQ(gemm_planner::bucket_of(513), 1024u);
  EXPECT_EQ(gemm_planner::bucket_of(2048), 2048u);
  EXPECT_EQ(gemm_planner::bucket_of(2049), 4096u);
}

// A bucket is timed at its first row count; the others of the bucket share
// its choice (cuBLAS's default where cuBLASLt refuses the algorithm there)
// and still compute the product; the next bucket is timed anew.
TEST(cuda_kernels, gemm_planner_shares_a_buckets_choice_and_computes_each_row_count) {
  ACCELLM_REQUIRE_GPU();
  auto s = stream::create();
  ASSERT_TRUE(s.ok());
  auto h = cublas_handle::create(s->get());
  ASSERT_TRUE(h.ok());
  auto ws = device_buffer<std::uint8_t>::allocate(std::size_t{4} << 20);
  ASSERT_TRUE(ws.ok());
  auto planner = gemm_planner::create(s->get(), ws->data(), ws->size());
  ASSERT_TRUE(planner.ok()) << planner.err().what();
  constexpr std::uint32_t max_rows = 600, in = 256, out = 384;
  const auto x = to_bf16(random_vector(max_rows * in, 60, 1.0f));
  const auto w = to_bf16(random_vector(out * in, 61, 1.0f));
  auto dx = to_device(x);
  auto dw = to_device(w);
  auto scratch = to_device(std::vector<float>(max_rows * out));
  const auto xf = to_float(x), wf = to_float(w);
  // rows, then the shapes timed, timed by bucket and sharing after it.
  const std::vector<std::tuple<std::uint32_t, std::size_t, std::size_t, std::size_t>> steps{
      {300, 1, 1, 0}, {500, 1, 1, 1}, {600, 2, 2, 1}, {100, 3, 2, 1}};
  for (const auto& [rows, timed, by_bucket, sharing] : steps) {
    ASSERT_TRUE(planner
                    ->prepare(h->get(), dx.data(), rows, in, dw.data(), out, gemm_out::fp32, 0.0f,
                              scratch.data())
                    .ok());
    EXPECT_EQ(planner->prepared(), timed) << rows;
    EXPECT_EQ(planner->prepared_by_bucket(), by_bucket) << rows;
    EXPECT_EQ(planner->sharing(), sharing) << rows;
    auto dy = to_device(std::vector<float>(rows * out));
    ASSERT_TRUE(
        planner->run(h->get(), dx.data(), rows, in, dw.data(), out, dy.data(), gemm_out::fp32, 0.0f)
            .ok());
    const std::vector<float> y = to_host(dy);
    double worst = 0.0;
    for (std::uint32_t r = 0; r < rows; ++r)
      for (std::uint32_t o = 0; o < out; ++o) {
        double ref = 0.0;
        for (std::uint32_t k = 0; k < in; ++k) ref += double(xf[r * in + k]) * wf[o * in + k];
        worst = std::max(worst, std::fabs(y[r * out + o] - ref));
      }
    // Exact bf16 products of magnitude <= 1, 256 of them summed in fp32.
    EXPECT_LT(worst, 1e-3) << rows << " rows";
  }
  const gemm_choice first = planner->choice(300, in, out, gemm_out::fp32, 0.0f);
  const gemm_choice shared = planner->choice(500, in, out, gemm_out::fp32, 0.0f);
  EXPECT_TRUE(shared == first || shared == gemm_choice::cublas);
  EXPECT_TRUE(first == gemm_choice::lt || first == gemm_choice::cublas);  // no skinny past 256
}

TEST(cuda_kernels, gemm_planner_without_variants_keeps_none) {
  ACCELLM_REQUIRE_GPU();
  gemm_planner_options o;
  o.lt.varied = 0;
  const planned run = plan_and_check(o);
  EXPECT_EQ(run.p.using_lt_variant(), 0u);
  expect_consistent(run.p);
}

TEST(cuda_kernels, gemm_planner_runs_a_verified_skinny_kernel) {
  ACCELLM_REQUIRE_GPU();
  gemm_planner_options o;
  o.keep = skinny_rule::if_verified;  // whatever the timings
  o.skinny_wgmma = o.skinny_tma = nullptr;
  o.skinny_stream = nullptr;
  const planned run = plan_and_check(o);
  const gemm_planner& p = run.p;
  EXPECT_EQ(p.using_skinny(), 2u);
  expect_consistent(p);
}

// The Hopper candidate `o` offers alone, kept whenever it verifies: used
// for both shapes where it runs (compute capability 9.0, sm_90a code);
// elsewhere it fails its check and is never used.
void expect_hopper_candidate_used(gemm_planner_options o, gemm_choice c) {
  o.keep = skinny_rule::if_verified;
  const planned run = plan_and_check(o);
  const gemm_planner& p = run.p;
  const std::size_t used = c == gemm_choice::skinny_tma      ? p.using_skinny_tma()
                           : c == gemm_choice::skinny_stream ? p.using_skinny_stream()
                                                             : p.using_skinny_wgmma();
  EXPECT_EQ(used, skinny_wgmma_built() && wgmma_runs_here() ? 2u : 0u);
  expect_consistent(p);
}

TEST(cuda_kernels, gemm_planner_runs_a_verified_skinny_wgmma_kernel_where_it_runs) {
  ACCELLM_REQUIRE_GPU();
  gemm_planner_options o;
  o.skinny = o.skinny_tma = nullptr;
  o.skinny_stream = nullptr;
  expect_hopper_candidate_used(o, gemm_choice::skinny_wgmma);
}

TEST(cuda_kernels, gemm_planner_runs_a_verified_skinny_tma_kernel_where_it_runs) {
  ACCELLM_REQUIRE_GPU();
  gemm_planner_options o;
  o.skinny = o.skinny_wgmma = nullptr;
  o.skinny_stream = nullptr;
  expect_hopper_candidate_used(o, gemm_choice::skinny_tma);
}

// skinny_gemm_stream, kept whenever it verifies: plan_and_check's shapes are
// one tile of two k tiles, so two blocks share it through the workspace.
TEST(cuda_kernels, gemm_planner_runs_a_verified_skinny_stream_kernel_where_it_runs) {
  ACCELLM_REQUIRE_GPU();
  gemm_planner_options o;
  o.skinny = o.skinny_wgmma = o.skinny_tma = nullptr;
  o.skinny_tma_split = nullptr;
  expect_hopper_candidate_used(o, gemm_choice::skinny_stream);
}

// Faulty candidates, each caught by the planner's check.
status zeroes_y(const __nv_bfloat16*, std::uint32_t rows, std::uint32_t, const __nv_bfloat16*,
                std::uint32_t out, void* y, gemm_out type, float, cudaStream_t s) {
  const std::size_t bytes = std::size_t{rows} * out * (type == gemm_out::fp32 ? 4 : 2);
  if (cudaMemsetAsync(y, 0, bytes, s) != cudaSuccess) return fail(errc::device_failure, "memset");
  return {};
}

status ignores_beta(const __nv_bfloat16* x, std::uint32_t rows, std::uint32_t in,
                    const __nv_bfloat16* w, std::uint32_t out, void* y, gemm_out type, float,
                    cudaStream_t s) {
  return skinny_gemm(x, rows, in, w, out, y, type, 0.0f, s);
}

status refuses(const __nv_bfloat16*, std::uint32_t, std::uint32_t, const __nv_bfloat16*,
               std::uint32_t, void*, gemm_out, float, cudaStream_t) {
  return fail(errc::device_failure, "no launch");
}

status stream_zeroes_y(const __nv_bfloat16* x, std::uint32_t rows, std::uint32_t in,
                       const __nv_bfloat16* w, std::uint32_t out, void* y, gemm_out type,
                       float beta, std::uint32_t, std::uint32_t, const skinny_stream_space&,
                       cudaStream_t s) {
  return zeroes_y(x, rows, in, w, out, y, type, beta, s);
}

TEST(cuda_kernels, gemm_planner_never_keeps_a_skinny_kernel_that_disagrees_or_fails) {
  ACCELLM_REQUIRE_GPU();
  for (skinny_fn f : {&zeroes_y, &refuses}) {
    gemm_planner_options o;
    o.skinny = o.skinny_wgmma = o.skinny_tma = f;
    o.skinny_stream = &stream_zeroes_y;
    o.keep = skinny_rule::if_verified;
    const planned run = plan_and_check(o);
    const gemm_planner& p = run.p;
    EXPECT_EQ(
        p.using_skinny() + p.using_skinny_wgmma() + p.using_skinny_tma() + p.using_skinny_stream(),
        0u);
    expect_consistent(p);
  }
  // Right from y = 0, wrong on top of y: caught where beta != 0 (fp32 y).
  gemm_planner_options o;
  o.skinny = &ignores_beta;
  o.skinny_wgmma = o.skinny_tma = nullptr;
  o.skinny_stream = nullptr;
  o.keep = skinny_rule::if_verified;
  const planned run = plan_and_check(o);
  const gemm_planner& p = run.p;
  EXPECT_NE(p.choice(7, 96, 40, gemm_out::fp32, 1.0f), gemm_choice::skinny);
  EXPECT_EQ(p.choice(7, 96, 40, gemm_out::bf16, 0.0f), gemm_choice::skinny);
  EXPECT_EQ(p.using_skinny(), 1u);
}

// skinny_gemm_tma at split counts of its own: offered where k fits more
// than one count, kept (if_verified) and run through skinny_gemm_tma_split
// with the right product; a faulty one is never kept.
status split_zeroes_y(const __nv_bfloat16* x, std::uint32_t rows, std::uint32_t in,
                      const __nv_bfloat16* w, std::uint32_t out, void* y, gemm_out type, float beta,
                      std::uint32_t, cudaStream_t s) {
  return zeroes_y(x, rows, in, w, out, y, type, beta, s);
}

TEST(cuda_kernels, gemm_planner_times_skinny_tma_at_split_counts_of_its_own) {
  ACCELLM_REQUIRE_GPU();
  if (!(skinny_wgmma_built() && wgmma_runs_here()))
    GTEST_SKIP() << "skinny_gemm_tma runs on compute capability 9.0 only";
  constexpr std::uint32_t rows = 16, in = 2048, out = 256;  // 32 k tiles: 1..8 fit
  auto s = stream::create();
  auto h = cublas_handle::create(s->get());
  auto ws = device_buffer<std::uint8_t>::allocate(std::size_t{8} << 20);
  ASSERT_TRUE(s.ok() && h.ok() && ws.ok());
  const auto x = to_bf16(random_vector(rows * in, 60, 1.0f));
  const auto w = to_bf16(random_vector(out * in, 61, 1.0f));
  auto dx = to_device(x);
  auto dw = to_device(w);
  const auto xf = to_float(x), wf = to_float(w);
  for (const bool faulty : {false, true}) {
    gemm_planner_options o;
    o.skinny = o.skinny_wgmma = o.skinny_tma = nullptr;
    o.skinny_stream = nullptr;
    o.lt.varied = 0;
    o.keep = skinny_rule::if_verified;
    if (faulty) o.skinny_tma_split = &split_zeroes_y;
    auto planner = gemm_planner::create(s->get(), ws->data(), ws->size(), o);
    ASSERT_TRUE(planner.ok());
    auto scratch = device_buffer<float>::allocate(rows * out);
    ASSERT_TRUE(scratch.ok());
    ASSERT_TRUE(planner
                    ->prepare(h->get(), dx.data(), rows, in, dw.data(), out, gemm_out::fp32, 0.0f,
                              scratch->data())
                    .ok());
    EXPECT_EQ(planner->choice(rows, in, out, gemm_out::fp32, 0.0f) == gemm_choice::skinny_tma,
              !faulty);
    EXPECT_EQ(planner->using_skinny_tma_split(), faulty ? 0u : 1u);
    auto dy = to_device(std::vector<float>(rows * out, 0.0f));
    ASSERT_TRUE(
        planner->run(h->get(), dx.data(), rows, in, dw.data(), out, dy.data(), gemm_out::fp32, 0.0f)
            .ok());
    const std::vector<float> got = to_host(dy);
    for (std::uint32_t r = 0; r < rows; ++r)
      for (std::uint32_t c = 0; c < out; ++c) {
        double ref = 0;
        for (std::uint32_t k = 0; k < in; ++k) ref += double(xf[r * in + k]) * wf[c * in + k];
        ASSERT_NEAR(got[r * out + c], ref, 1e-4 * (1.0 + std::fabs(ref))) << r << "," << c;
      }
  }
}

TEST(cuda_kernels, gemv_matches_a_double_reference_for_1_to_8_rows) {
  ACCELLM_REQUIRE_GPU();
  constexpr std::uint32_t in = 200, out = 37;  // out not a multiple of a warp's 4 rows
  auto w = to_bf16(random_vector(out * in, 16, 1.0f));
  auto dw = to_device(w);
  auto wf = to_float(w);
  for (std::uint32_t rows = 1; rows <= gemv_max_rows; ++rows)
    for (float beta : {0.0f, 1.0f}) {
      auto x = to_bf16(random_vector(rows * in, 17 + rows, 1.0f));
      auto y0 = random_vector(rows * out, 30 + rows, 1.0f);
      auto dx = to_device(x);
      auto dy = to_device(y0);
      ASSERT_TRUE(gemv(dx.data(), rows, in, dw.data(), out, dy.data(), beta, nullptr).ok());
      auto y = to_host(dy);
      auto xf = to_float(x);
      for (std::uint32_t r = 0; r < rows; ++r)
        for (std::uint32_t o = 0; o < out; ++o) {
          double ref = beta * y0[r * out + o];
          for (std::uint32_t k = 0; k < in; ++k) ref += double(xf[r * in + k]) * wf[o * in + k];
          // Exact bf16 products, fp32 accumulation of 200 terms of magnitude <= 1.
          ASSERT_NEAR(y[r * out + o], ref, 1e-4) << rows << " rows, beta " << beta;
        }
    }
  auto dx = to_device(to_bf16(random_vector(9 * in, 18, 1.0f)));
  auto dy = to_device(std::vector<float>(9 * out));
  EXPECT_EQ(gemv(dx.data(), 9, in, dw.data(), out, dy.data(), 0.0f, nullptr).err().code(),
            errc::invalid_argument);
  EXPECT_EQ(gemv(dx.data(), 1, 100, dw.data(), out, dy.data(), 0.0f, nullptr).err().code(),
            errc::invalid_argument);  // in not a multiple of 8
}

TEST(cuda_kernels, embed_and_argmax) {
  ACCELLM_REQUIRE_GPU();
  constexpr std::uint32_t vocab = 1000, d = 70;
  auto table = to_bf16(random_vector(vocab * d, 8, 1.0f));
  const std::vector<std::int32_t> tokens{999, 0, 500};
  auto dtable = to_device(table);
  auto dtokens = to_device(tokens);
  auto dx = to_device(std::vector<float>(tokens.size() * d));
  ASSERT_TRUE(embed(dtable.data(), dtokens.data(), 3, d, dx.data(), nullptr).ok());
  auto x = to_host(dx);
  for (std::size_t r = 0; r < tokens.size(); ++r)
    for (std::uint32_t i = 0; i < d; ++i)
      ASSERT_EQ(x[r * d + i], __bfloat162float(table[tokens[r] * d + i]));
  auto logits = random_vector(3 * vocab, 9, 5.0f);
  logits[vocab + 10] = 100.0f;  // row 1: a tie between 10 and 700, lowest wins
  logits[vocab + 700] = 100.0f;
  auto dl = to_device(logits);
  auto dout = to_device(std::vector<std::int32_t>(3));
  ASSERT_TRUE(argmax_rows(dl.data(), 3, vocab, dout.data(), nullptr).ok());
  auto got = to_host(dout);
  for (std::uint32_t r = 0; r < 3; ++r)
    EXPECT_EQ(static_cast<std::uint32_t>(got[r]),
              cpu::argmax(std::span<const float>{logits.data() + r * vocab, vocab}))
        << "row " << r;
  EXPECT_EQ(got[1], 10);
}

// Greedy sampling at Llama-3's vocabulary, both paths of the kernel: rows
// 16-byte aligned (float4 loads) and a vocabulary of odd length (scalar).
TEST(cuda_kernels, argmax_over_a_long_vocabulary_matches_the_cpu_backend) {
  ACCELLM_REQUIRE_GPU();
  for (const std::uint32_t vocab : {128256u, 128255u}) {
    constexpr std::uint32_t rows = 4;
    auto logits = random_vector(rows * vocab, 21, 8.0f);
    logits[vocab - 1] = 50.0f;                              // row 0: the very last entry
    logits[vocab + 3] = logits[vocab + vocab - 2] = 50.0f;  // row 1: a tie, lowest wins
    for (std::uint32_t i = 0; i < vocab; ++i) logits[2 * vocab + i] = -INFINITY;  // row 2
    auto dl = to_device(logits);
    auto dout = to_device(std::vector<std::int32_t>(rows, -1));
    ASSERT_TRUE(argmax_rows(dl.data(), rows, vocab, dout.data(), nullptr).ok());
    const auto got = to_host(dout);
    for (std::uint32_t r = 0; r < rows; ++r)
      EXPECT_EQ(static_cast<std::uint32_t>(got[r]),
                cpu::argmax(std::span<const float>{logits.data() + r * vocab, vocab}))
          << "vocab " << vocab << ", row " << r;
  }
}

TEST(cuda_kernels, weights_are_the_bf16_rounding_of_the_cpu_weights) {
  ACCELLM_REQUIRE_GPU();
  const model_spec* spec = find_model("cpu-tiny");
  ASSERT_NE(spec, nullptr);
  auto shape = make_shard_shape(*spec, 1);
  ASSERT_TRUE(shape.ok()) << shape.err().what();
  for (std::uint64_t seed : {1ull, 77ull}) {
    auto w = make_weights(*shape, seed, nullptr);
    ASSERT_TRUE(w.ok()) << w.err().what();
    const cpu::weights ref = cpu::make_weights(*spec, seed);
    auto same = [](const device_buffer<__nv_bfloat16>& got, const std::vector<float>& want) {
      auto g = to_float(to_host(got));
      if (g.size() != want.size()) return false;
      for (std::size_t i = 0; i < g.size(); ++i)
        if (g[i] != round_bf16(want[i])) return false;
      return true;
    };
    EXPECT_TRUE(same(w->embedding, ref.embedding)) << "seed " << seed;
    EXPECT_TRUE(same(w->lm_head, ref.lm_head)) << "seed " << seed;
    EXPECT_TRUE(same(w->final_norm, ref.final_norm)) << "seed " << seed;
    for (std::size_t l = 0; l < ref.layers.size(); ++l) {
      EXPECT_TRUE(same(w->layers[l].wqkv, ref.layers[l].wqkv)) << "layer " << l;
      EXPECT_TRUE(same(w->layers[l].wo, ref.layers[l].wo)) << "layer " << l;
      EXPECT_TRUE(same(w->layers[l].attn_norm, ref.layers[l].attn_norm)) << "layer " << l;
      EXPECT_TRUE(same(w->layers[l].mlp_norm, ref.layers[l].mlp_norm)) << "layer " << l;
      EXPECT_TRUE(same(w->layers[l].wgate_up, ref.layers[l].wgate_up)) << "layer " << l;
      EXPECT_TRUE(same(w->layers[l].wdown, ref.layers[l].wdown)) << "layer " << l;
    }
  }
}

TEST(cuda_kernels, kv_copy_packs_and_unpacks_a_slice) {
  ACCELLM_REQUIRE_GPU();
  const std::uint32_t layers = 3, bt = 16, kvw = 64;
  kv_pool_view kv{nullptr, layers, bt, kvw, nullptr, 4};
  const std::uint64_t blocks = 5;
  auto pool = to_bf16(random_vector(blocks * kv.block_elems(), 10, 1.0f));
  auto dpool = to_device(pool);
  const std::vector<std::int32_t> table{4, 0, 2};
  auto dtable = to_device(table);
  kv.pool = dpool.data();
  const std::uint32_t l0 = 1, nl = 2, t0 = 5, nt = 30;
  auto dpacked = to_device(std::vector<__nv_bfloat16>(2ull * nl * nt * kvw));
  ASSERT_TRUE(
      kv_copy(kv, dtable.data(), l0, nl, t0, nt, dpacked.data(), kv_direction::pack, nullptr).ok());
  auto packed = to_host(dpacked);
  kv_pool_view hk = kv;
  hk.tables = table.data();
  for (std::uint32_t l = 0; l < nl; ++l)
    for (std::uint32_t kind = 0; kind < 2; ++kind)
      for (std::uint32_t t = 0; t < nt; ++t)
        for (std::uint32_t i = 0; i < kvw; ++i)
          ASSERT_EQ(__bfloat162float(packed[((l * 2 + kind) * nt + t) * kvw + i]),
                    __bfloat162float(pool[hk.row_offset(0, l0 + l, kind, t0 + t) + i]));
  // Unpack into a zeroed pool: exactly the slice comes back, nothing else.
  auto dzero = to_device(std::vector<__nv_bfloat16>(pool.size(), __float2bfloat16(0.0f)));
  kv.pool = dzero.data();
  ASSERT_TRUE(
      kv_copy(kv, dtable.data(), l0, nl, t0, nt, dpacked.data(), kv_direction::unpack, nullptr)
          .ok());
  auto back = to_float(to_host(dzero));
  std::size_t nonzero = 0;
  for (float v : back) nonzero += v != 0.0f;
  EXPECT_LE(nonzero, 2ull * nl * nt * kvw);
  EXPECT_GT(nonzero, 2ull * nl * nt * kvw * 9 / 10);
  EXPECT_EQ(kv_copy(kv, dtable.data(), 2, 2, 0, 1, dpacked.data(), kv_direction::pack, nullptr)
                .err()
                .code(),
            errc::invalid_argument);
}

}  // namespace
}  // namespace accellm::device::cuda

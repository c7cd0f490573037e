// prefill_choice: the candidates (rows128, wgmma64, wgmma128, tma128, tma128pp, tma128n) are
// verified against rows64 before they are timed, and a candidate that fails to launch or
// disagrees (a row left unwritten, the rows64 kernel on 128-row tiles, wrong values) is never
// chosen. The rule and argument checks need no GPU.
#include "device/cuda/prefill_choice.hpp"

#include "tests/device/cuda/cuda_test_util.hpp"

#include <gtest/gtest.h>

#include <iostream>
#include <string>

namespace accellm::device::cuda {
namespace {

const attn_shape llama3_quarter{8, 2, 128};  // GQA 4:1 at head_dim 128

prefill_probe_options with(prefill_rule rule, prefill_fn candidate = &prefill_attention) {
  prefill_probe_options o;
  o.rule = rule;
  o.tokens = 300;  // 3 tiles of rows128 (the last of 44 rows), 5 of rows64
  o.candidate = candidate;
  return o;
}

// The trial of `k`, failing the test when there is none.
const prefill_trial& trial_of(const prefill_choice& c, prefill_kernel k) {
  const prefill_trial* t = c.trial(k);
  EXPECT_NE(t, nullptr) << prefill_kernel_name(k) << " was not probed: " << describe(c);
  static const prefill_trial none;
  return t ? *t : none;
}

// Faulty candidates, each run on the rows128 side of the probe.
status refuses(const prefill_attention_args&, cudaStream_t) {
  return fail(errc::invalid_argument, "test: refused");
}
status leaves_a_row(const prefill_attention_args& a, cudaStream_t s) {
  ACCELLM_TRY(prefill_attention(a, s));
  // Row 5 back to what the probe filled it with (NaN bits).
  const std::size_t qw = a.shape.q_width();
  ACCELLM_CUDA_TRY(cudaMemsetAsync(a.out + 5 * qw, 0xff, qw * sizeof(__nv_bfloat16), s));
  return {};
}
status rows64_on_128_row_tiles(const prefill_attention_args& a, cudaStream_t s) {
  prefill_attention_args b = a;
  b.kernel = prefill_kernel::rows64;  // computes only the first 64 rows of each tile
  return prefill_attention(b, s);
}
status zeroes_one_head(const prefill_attention_args& a, cudaStream_t s) {
  // Finite but wrong: head 0 of row 7 (an average of 8 V rows in [-1, 1))
  // set to zero.
  ACCELLM_TRY(prefill_attention(a, s));
  ACCELLM_CUDA_TRY(
      cudaMemsetAsync(a.out + 7 * a.shape.q_width(), 0, 128 * sizeof(__nv_bfloat16), s));
  return {};
}

TEST(prefill_choice, rows64_rule_runs_no_probe) {
  // No CUDA call: runs without a GPU.
  auto c = choose_prefill_kernel(llama3_quarter, 16, nullptr, with(prefill_rule::rows64));
  ASSERT_TRUE(c.ok()) << c.err().what();
  EXPECT_EQ(c->kernel, prefill_kernel::rows64);
  EXPECT_TRUE(c->trials.empty());
  EXPECT_EQ(c->tokens, 0u);
  EXPECT_NE(describe(*c).find("rows64"), std::string::npos);
}

TEST(prefill_choice, refuses_an_empty_probe) {
  auto o = with(prefill_rule::timed);
  o.tokens = 0;
  auto c = choose_prefill_kernel(llama3_quarter, 16, nullptr, o);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.err().code(), errc::invalid_argument);
}

TEST(prefill_choice, keeps_a_verified_rows128_by_rule) {
  ACCELLM_REQUIRE_GPU();
  auto s = stream::create();
  ASSERT_TRUE(s.ok());
  auto c =
      choose_prefill_kernel(llama3_quarter, 16, s->get(), with(prefill_rule::rows128_if_verified));
  ASSERT_TRUE(c.ok()) << c.err().what();
  ASSERT_EQ(c->trials.size(), 1u) << describe(*c);
  const prefill_trial& t = trial_of(*c, prefill_kernel::rows128);
  EXPECT_TRUE(t.verified) << describe(*c);
  EXPECT_EQ(c->kernel, prefill_kernel::rows128) << describe(*c);
  EXPECT_LE(t.max_diff, 2e-2);
  EXPECT_EQ(t.ms, 0.0f);  // not timed by this rule
  EXPECT_EQ(c->tokens, 300u);
}

class prefill_choice_wgmma : public ::testing::TestWithParam<prefill_kernel> {};

TEST_P(prefill_choice_wgmma, keeps_a_verified_kernel_by_rule_where_it_runs) {
  ACCELLM_REQUIRE_GPU();
  const prefill_kernel kernel = GetParam();
  auto s = stream::create();
  ASSERT_TRUE(s.ok());
  auto c = choose_prefill_kernel(
      llama3_quarter, 16, s->get(),
      with(*prefill_rule_named(prefill_kernel_name(kernel))));  // that kernel when verified
  ASSERT_TRUE(c.ok()) << c.err().what();
  const prefill_trial& t = trial_of(*c, kernel);
  if (!test::wgmma_runs_here()) {
    // Off Hopper the launch fails, the error is cleared, rows64 stays.
    EXPECT_FALSE(t.verified);
    EXPECT_NE(t.note.find("failed to launch"), std::string::npos) << t.note;
    EXPECT_EQ(c->kernel, prefill_kernel::rows64);
    EXPECT_EQ(cudaGetLastError(), cudaSuccess);
    return;
  }
  EXPECT_TRUE(t.verified) << describe(*c);
  EXPECT_EQ(c->kernel, kernel) << describe(*c);
  EXPECT_LE(t.max_diff, 2e-2);
}

INSTANTIATE_TEST_SUITE_P(kernels, prefill_choice_wgmma,
                         ::testing::Values(prefill_kernel::wgmma64, prefill_kernel::wgmma128,
                                           prefill_kernel::tma128, prefill_kernel::tma128pp,
                                           prefill_kernel::tma128n),
                         [](const ::testing::TestParamInfo<prefill_kernel>& i) {
                           return std::string{prefill_kernel_name(i.param)};
                         });

TEST(prefill_choice, timed_rule_verifies_and_times_every_candidate) {
  ACCELLM_REQUIRE_GPU();
  auto s = stream::create();
  ASSERT_TRUE(s.ok());
  auto o = with(prefill_rule::timed);
  o.tokens = 1024;
  auto c = choose_prefill_kernel(attn_shape{32, 32, 128}, 16, s->get(), o);
  ASSERT_TRUE(c.ok()) << c.err().what();
  ASSERT_EQ(c->trials.size(), 6u) << describe(*c);
  EXPECT_GT(c->rows64_ms, 0.0f);
  const prefill_trial& r128 = trial_of(*c, prefill_kernel::rows128);
  EXPECT_TRUE(r128.verified) << describe(*c);
  EXPECT_GT(r128.ms, 0.0f);
  // Whichever won, it won by the rule: the fastest verified candidate, kept
  // only under 0.97 of rows64's time.
  float best = r128.ms;
  prefill_kernel fastest = prefill_kernel::rows128;
  for (const prefill_kernel k :
       {prefill_kernel::wgmma64, prefill_kernel::wgmma128, prefill_kernel::tma128,
        prefill_kernel::tma128pp, prefill_kernel::tma128n}) {
    const prefill_trial& wg = trial_of(*c, k);
    EXPECT_EQ(wg.verified, test::wgmma_runs_here()) << describe(*c);
    EXPECT_EQ(wg.ms > 0.0f, wg.verified);  // timed exactly when verified
    if (wg.verified && wg.ms < best) best = wg.ms, fastest = k;
  }
  EXPECT_EQ(c->kernel, best < 0.97f * c->rows64_ms ? fastest : prefill_kernel::rows64)
      << describe(*c);
  std::cout << "llama2-7b shape, 1024 tokens: " << describe(*c) << "\n";
}

TEST(prefill_choice, never_keeps_a_faulty_candidate) {
  ACCELLM_REQUIRE_GPU();
  auto s = stream::create();
  ASSERT_TRUE(s.ok());
  struct faulty {
    const char* name;
    prefill_fn fn;
    bool launches;
  };
  for (const faulty& f :
       {faulty{"refuses", &refuses, false}, faulty{"leaves_a_row", &leaves_a_row, true},
        faulty{"rows64_on_128_row_tiles", &rows64_on_128_row_tiles, true},
        faulty{"zeroes_one_head", &zeroes_one_head, true}}) {
    SCOPED_TRACE(f.name);
    // Even the rule that keeps whatever is verified must refuse it.
    auto c = choose_prefill_kernel(llama3_quarter, 16, s->get(),
                                   with(prefill_rule::rows128_if_verified, f.fn));
    ASSERT_TRUE(c.ok()) << c.err().what();
    EXPECT_EQ(c->kernel, prefill_kernel::rows64) << describe(*c);
    const prefill_trial& t = trial_of(*c, prefill_kernel::rows128);
    EXPECT_FALSE(t.verified);
    EXPECT_NE(t.note.find(f.launches ? "disagrees" : "failed to launch"), std::string::npos)
        << t.note;
    EXPECT_EQ(cudaGetLastError(), cudaSuccess);  // nothing left behind
  }
}

}  // namespace
}  // namespace accellm::device::cuda

// The whole CUDA model against device/cpu's forward pass with the same
// seed (with each prefill attention kernel), the two prefill kernels against
// each other, CUDA graphs against plain launches, and KV moved between two
// instances.
//
// The reference is device/cpu's forward_pass run on the bf16 rounding of the
// cpu weights (exactly what the GPU holds, see weights.hpp), so what differs
// is only the GPU's bf16 activations at the GEMM inputs and in the KV cache.
// Decoding is teacher-forced with the reference's tokens for 64 steps; the
// GPU must pick the same greedy token at every step, except where the
// reference's best two logits are within `near_tie` (a difference that bf16
// rounding of the activations can flip), and at most `max_ties` such steps.
#include "device/cuda/cuda_backend.hpp"

#include "device/cpu/forward.hpp"
#include "device/cpu/kernels.hpp"
#include "device/cpu/kv_cache.hpp"
#include "device/cpu/weights.hpp"
#include "tests/device/cuda/backend_test_util.hpp"
#include "tests/device/cuda/cuda_test_util.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <tuple>
#include <vector>

namespace accellm::device::cuda {
namespace {

using namespace test;

constexpr float near_tie = 0.1f;  // logits have std ~3 (cpu weights.hpp)
constexpr std::uint32_t max_ties = 6;
constexpr float logit_tol = 0.25f;  // max |gpu - cpu| logit over a step
constexpr std::uint32_t prompt_len = 16, steps = 64;

void round_all(std::vector<float>& v) {
  for (float& x : v) x = round_bf16(x);
}

cpu::weights rounded_cpu_weights(const model_spec& spec, std::uint64_t seed) {
  cpu::weights w = cpu::make_weights(spec, seed);
  round_all(w.embedding);
  round_all(w.final_norm);
  round_all(w.lm_head);
  for (auto& l : w.layers) {
    round_all(l.attn_norm);
    round_all(l.wqkv);
    round_all(l.wo);
    round_all(l.mlp_norm);
    round_all(l.wgate_up);
    round_all(l.wdown);
  }
  return w;
}

// device/cpu's forward pass over one request.
class cpu_reference {
 public:
  cpu_reference(const model_spec& spec, std::uint64_t seed)
      : spec_(spec),
        w_(rounded_cpu_weights(spec, seed)),
        cache_(cpu::kv_shape{spec.layers, spec.kv_width(), 16, 256}),
        pass_(spec_, w_) {}

  std::vector<float> run(const std::vector<token_id>& tokens, std::uint32_t context) {
    auto seq = cache_.grow(1, context + static_cast<std::uint32_t>(tokens.size()));
    EXPECT_TRUE(seq.ok());
    std::vector<cpu::token_row> rows;
    for (std::size_t i = 0; i < tokens.size(); ++i)
      rows.push_back(cpu::token_row{tokens[i], context + static_cast<std::uint32_t>(i), *seq});
    const std::uint32_t out = static_cast<std::uint32_t>(tokens.size() - 1);
    auto logits = pass_.run(rows, std::span<const std::uint32_t>{&out, 1}, cache_);
    return {logits.begin(), logits.end()};
  }

 private:
  model_spec spec_;
  cpu::weights w_;
  cpu::kv_cache cache_;
  cpu::forward_pass pass_;
};

// Fails the test unless `b` runs `want` for prompts (a rows128 that failed
// its check would fall back to rows64 silently).
void expect_prefill_kernel(const cuda_backend& b, prefill_kernel want) {
  EXPECT_EQ(b.prefill_kernel_choice().kernel, want) << describe(b.prefill_kernel_choice());
}

// The kernel an `_if_verified` rule (or rows64) must end up running.
prefill_kernel kernel_of(prefill_rule r) {
  switch (r) {
    case prefill_rule::rows128_if_verified:
      return prefill_kernel::rows128;
    case prefill_rule::wgmma64_if_verified:
      return prefill_kernel::wgmma64;
    case prefill_rule::wgmma128_if_verified:
      return prefill_kernel::wgmma128;
    case prefill_rule::tma128_if_verified:
      return prefill_kernel::tma128;
    case prefill_rule::tma128pp_if_verified:
      return prefill_kernel::tma128pp;
    case prefill_rule::tma128n_if_verified:
      return prefill_kernel::tma128n;
    case prefill_rule::rows64:
    case prefill_rule::timed:
      break;
  }
  return prefill_kernel::rows64;
}

class cuda_model_vs_cpu : public ::testing::TestWithParam<std::tuple<const char*, prefill_rule>> {};

TEST_P(cuda_model_vs_cpu, greedy_tokens_match_for_64_steps) {
  ACCELLM_REQUIRE_GPU();
  const auto& [model, rule] = GetParam();
  model_spec spec = *find_model(model);
  const prefill_kernel kernel = kernel_of(rule);
  if (is_wgmma(kernel)) {
    if (!wgmma_runs_here())
      GTEST_SKIP() << prefill_kernel_name(kernel) << " runs on compute capability 9.0 only";
    // The wgmma kernels take head_dim 64 or 128: the same width in fewer, wider heads
    // (cpu-tiny: 1 x 64, cpu-small: 2 x 128).
    spec.heads = spec.kv_heads = spec.hidden >= 256 ? spec.hidden / 128 : spec.hidden / 64;
    spec.name += "-wide-heads";
  }
  constexpr std::uint64_t seed = 5;
  cuda_options o = small_options(seed);
  o.prefill = rule;
  auto gpu = make_cuda_backend("cuda:0", spec, o);
  ASSERT_TRUE(gpu.ok()) << gpu.err().what();
  expect_prefill_kernel(**gpu, kernel);
  cpu_reference ref(spec, seed);
  auto tokens = prompt(prompt_len, spec.vocab, seed);
  std::uint32_t context = 0, ties = 0, exact = 0;
  float worst = 0.0f;
  for (std::uint32_t step = 0; step <= steps; ++step) {
    const phase kind = step == 0 ? phase::prefill : phase::decode;
    batch b{
        {batch_item{1, kind, context, static_cast<std::uint32_t>(tokens.size()), tokens, true}}};
    auto r = (*gpu)->run(b);
    ASSERT_TRUE(r.ok()) << r.err().what();
    auto gl = (*gpu)->last_logits();
    ASSERT_TRUE(gl.ok());
    auto cl = ref.run(tokens, context);
    for (std::size_t i = 0; i < cl.size(); ++i)
      worst = std::max(worst, std::fabs((*gl)[i] - cl[i]));
    const auto want = static_cast<token_id>(cpu::argmax(cl));
    const token_id got = r->next_tokens[0];
    if (got == want) {
      ++exact;
    } else {
      ++ties;
      EXPECT_LT(cl[want] - cl[got], near_tie)
          << "step " << step << ": gpu " << got << ", cpu " << want;
    }
    context += static_cast<std::uint32_t>(tokens.size());
    tokens = {want};
  }
  EXPECT_LE(ties, max_ties);
  EXPECT_LT(worst, logit_tol);
  std::cout << spec.name << " (" << prefill_kernel_name((*gpu)->prefill_kernel_choice().kernel)
            << "): " << exact << " of " << steps + 1
            << " greedy tokens identical, worst logit difference " << worst << "\n";
}

// What a worker logs at start-up says what the backend chose, options included.
TEST(cuda_backend, describes_its_setup_as_it_chose_it) {
  ACCELLM_REQUIRE_GPU();
  cuda_options o = small_options();
  o.graphs = use_graphs::no;
  o.skinny_gemm = false;
  o.cublaslt_split_k = false;
  o.programmatic_launch = false;
  auto gpu = make_cuda_backend("cuda:0", "cpu-tiny", o);
  ASSERT_TRUE(gpu.ok()) << gpu.err().what();
  const std::vector<std::string> lines = (*gpu)->describe_setup();
  ASSERT_EQ(lines.size(), 5u);
  std::string all;
  for (const std::string& l : lines) all += l + "\n";
  for (const std::string& part :
       {std::string{"cuda:0 ("}, std::string{"cpu-tiny, KV pool 64 blocks of 16 tokens"},
        "prefill attention " +
            std::string{prefill_kernel_name((*gpu)->prefill_kernel_choice().kernel)},
        std::string{"decode attention tile 32x2: "}, std::string{"; context splits by waves"},
        std::string{"CUDA graphs off, programmatic launch off (asked off)"},
        std::string{"decode products: cuBLAS(Lt) proposals only, the fastest"},
        std::string{"prompts' products: cuBLASLt's proposals, timed once per power-of-two"}})
    EXPECT_NE(all.find(part), std::string::npos) << "'" << part << "' not in:\n" << all;
}

INSTANTIATE_TEST_SUITE_P(
    models, cuda_model_vs_cpu,
    ::testing::Combine(::testing::Values("cpu-tiny", "cpu-small"),
                       ::testing::Values(prefill_rule::rows64, prefill_rule::rows128_if_verified,
                                         prefill_rule::wgmma64_if_verified,
                                         prefill_rule::wgmma128_if_verified,
                                         prefill_rule::tma128_if_verified,
                                         prefill_rule::tma128pp_if_verified,
                                         prefill_rule::tma128n_if_verified)),
    [](const ::testing::TestParamInfo<std::tuple<const char*, prefill_rule>>& i) {
      std::string n = std::get<0>(i.param);
      std::replace(n.begin(), n.end(), '-', '_');
      return n + "_" + prefill_kernel_name(kernel_of(std::get<1>(i.param)));
    });

// The prefill kernels inside the model: prompts of 300 and 45 tokens in
// one batch (tiles of both requests, longest first), then a 100-token chunk
// of the first at position 300. Every wanted logit within logit_tol of
// rows64's (they differ only by bf16 roundings of attention outputs).
// rows128 runs cpu-small (head_dim 32); wgmma64, wgmma128, tma128, tma128pp and tma128n,
// which need head_dim 64 or 128, the same model with 2 heads of 128.
class cuda_prefill_kernels : public ::testing::TestWithParam<prefill_kernel> {};

TEST_P(cuda_prefill_kernels, give_the_logits_of_rows64) {
  ACCELLM_REQUIRE_GPU();
  const prefill_kernel kernel = GetParam();
  if (is_wgmma(kernel) && !wgmma_runs_here())
    GTEST_SKIP() << prefill_kernel_name(kernel) << " runs on compute capability 9.0 only";
  model_spec spec = *find_model("cpu-small");
  if (is_wgmma(kernel)) {
    spec.name = "cpu-small-hd128";
    spec.heads = spec.kv_heads = 2;
  }
  cuda_options o = small_options(3);
  o.max_rows = 512;
  o.prefill = prefill_rule::rows64;
  auto a = make_cuda_backend("cuda:0", spec, o);
  o.prefill = *prefill_rule_named(prefill_kernel_name(kernel));  // that kernel when verified
  auto b = make_cuda_backend("cuda:0", spec, o);
  ASSERT_TRUE(a.ok() && b.ok());
  expect_prefill_kernel(**a, prefill_kernel::rows64);
  expect_prefill_kernel(**b, kernel);
  const auto p1 = prompt(400, 512, 11);
  const std::vector<token_id> head(p1.begin(), p1.begin() + 300), tail(p1.begin() + 300, p1.end());
  const batch first{{batch_item{1, phase::prefill, 0, 300, head, true},
                     batch_item{2, phase::prefill, 0, 45, prompt(45, 512, 12), true}}};
  const batch chunk{{batch_item{1, phase::prefill, 300, 100, tail, true}}};
  for (const batch* bt : {&first, &chunk}) {
    auto ra = (*a)->run(*bt);
    auto rb = (*b)->run(*bt);
    ASSERT_TRUE(ra.ok() && rb.ok());
    auto la = (*a)->last_logits();
    auto lb = (*b)->last_logits();
    ASSERT_TRUE(la.ok() && lb.ok());
    ASSERT_EQ(la->size(), lb->size());
    float worst = 0.0f;
    for (std::size_t i = 0; i < la->size(); ++i) {
      ASSERT_TRUE(std::isfinite((*lb)[i])) << "logit " << i;
      worst = std::max(worst, std::fabs((*la)[i] - (*lb)[i]));
    }
    EXPECT_LT(worst, logit_tol);
    std::cout << (bt == &first ? "two prompts" : "chunk at 300") << ": worst logit difference "
              << prefill_kernel_name(kernel) << " vs rows64 " << worst << "\n";
  }
}

INSTANTIATE_TEST_SUITE_P(kernels, cuda_prefill_kernels,
                         ::testing::Values(prefill_kernel::rows128, prefill_kernel::wgmma64,
                                           prefill_kernel::wgmma128, prefill_kernel::tma128,
                                           prefill_kernel::tma128pp, prefill_kernel::tma128n),
                         [](const ::testing::TestParamInfo<prefill_kernel>& i) {
                           return std::string{prefill_kernel_name(i.param)};
                         });

// Runs three requests (prompts of 70, 5 and 1 tokens) for `steps` decode steps.
std::vector<token_id> decode_three(cuda_backend& b, std::uint32_t n) {
  const std::uint32_t lens[3] = {70, 5, 1};
  batch pre;
  for (request_id r = 0; r < 3; ++r)
    pre.items.push_back(
        batch_item{r, phase::prefill, 0, lens[r], prompt(lens[r], 256, r + 1), true});
  auto first = b.run(pre);
  EXPECT_TRUE(first.ok());
  if (!first.ok()) return {};
  std::vector<token_id> all = first->next_tokens;
  for (std::uint32_t s = 0; s < n; ++s) {
    batch d;
    for (request_id r = 0; r < 3; ++r)
      d.items.push_back(
          batch_item{r, phase::decode, lens[r] + s, 1, {all[all.size() - 3 + r]}, true});
    auto out = b.run(d);
    EXPECT_TRUE(out.ok()) << out.err().what();
    if (!out.ok()) return {};
    all.insert(all.end(), out->next_tokens.begin(), out->next_tokens.end());
  }
  return all;
}

TEST(cuda_backend, graphs_give_the_tokens_of_plain_launches) {
  ACCELLM_REQUIRE_GPU();
  const cuda_options o = small_options();
  auto plain_opts = o;
  plain_opts.graphs = use_graphs::no;
  auto g = make_cuda_backend("cuda:0", "cpu-tiny", o);
  auto p = make_cuda_backend("cuda:0", "cpu-tiny", plain_opts);
  ASSERT_TRUE(g.ok() && p.ok());
  auto a = decode_three(**g, 12);
  auto b = decode_three(**p, 12);
  ASSERT_EQ(a.size(), 39u);
  EXPECT_EQ(a, b);
}

// A prompt longer than gemm_planner::exact_rows has its four layer products
// timed once for its power-of-two bucket of rows; a prompt of another length
// in the same bucket shares those choices without timing; every one's logits
// still match the cpu backend's.
TEST(cuda_backend, prefill_products_are_timed_once_per_bucket_of_rows) {
  ACCELLM_REQUIRE_GPU();
  constexpr std::uint64_t seed = 3;
  cuda_options o = small_options(seed);
  o.max_rows = 512;
  const model_spec spec = *find_model("cpu-tiny");
  auto gpu = make_cuda_backend("cuda:0", spec, o);
  ASSERT_TRUE(gpu.ok()) << gpu.err().what();
  const gemm_planner& plans = (*gpu)->planner();
  // Rows 300 and 400 share the bucket of 512, 260 too; 200 is planned exactly.
  const std::vector<std::tuple<std::uint32_t, std::size_t, std::size_t>> prompts{
      {300, 4, 0}, {400, 4, 4}, {260, 4, 8}, {200, 4, 8}};
  request_id id = 1;
  for (const auto& [n, by_bucket, sharing] : prompts) {
    const auto tokens = prompt(n, spec.vocab, seed + n);
    batch b{{batch_item{id, phase::prefill, 0, n, tokens, true}}};
    auto r = (*gpu)->run(b);
    ASSERT_TRUE(r.ok()) << r.err().what();
    auto gl = (*gpu)->last_logits();
    ASSERT_TRUE(gl.ok());
    cpu_reference ref(spec, seed);
    const std::vector<float> cl = ref.run(tokens, 0);
    float worst = 0.0f;
    for (std::size_t i = 0; i < cl.size(); ++i)
      worst = std::max(worst, std::fabs((*gl)[i] - cl[i]));
    EXPECT_LT(worst, logit_tol) << n << " tokens";
    EXPECT_EQ(plans.prepared_by_bucket(), by_bucket) << n << " tokens";
    EXPECT_EQ(plans.sharing(), sharing) << n << " tokens";
    (*gpu)->release(id++);
  }
  EXPECT_EQ(gemm_planner::bucket_of(300), 512u);
}

// Programmatic dependent launch (launch.cuh) changes when kernels start, not
// what they compute: the same tokens, graphs or not.
TEST(cuda_backend, programmatic_launch_gives_the_tokens_of_plain_launches) {
  ACCELLM_REQUIRE_GPU();
  cuda_options on = small_options();
  on.programmatic_launch = true;
  cuda_options off = on;
  off.programmatic_launch = false;
  auto a = make_cuda_backend("cuda:0", "cpu-tiny", on);
  auto b = make_cuda_backend("cuda:0", "cpu-tiny", off);
  ASSERT_TRUE(a.ok() && b.ok());
  int major = 0;
  ASSERT_EQ(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0), cudaSuccess);
  EXPECT_EQ((*a)->programmatic_launch(), major >= 9);
  EXPECT_FALSE((*b)->programmatic_launch());
  auto ta = decode_three(**a, 12);
  auto tb = decode_three(**b, 12);
  ASSERT_EQ(ta.size(), 39u);
  EXPECT_EQ(ta, tb);
}

// Splitting decode steps by blocks instead of by waves (the default;
// decode_attention.cuh) changes how the context is cut, not what attention
// computes: the same tokens, and the start-up log says which rule is in use.
TEST(cuda_backend, blocks_split_rule_gives_the_tokens_of_the_default) {
  ACCELLM_REQUIRE_GPU();
  cuda_options waves = small_options();
  ASSERT_EQ(waves.decode_splits, decode_split_rule::waves);
  cuda_options blocks = waves;
  blocks.decode_splits = decode_split_rule::blocks;
  auto a = make_cuda_backend("cuda:0", "cpu-tiny", blocks);
  auto b = make_cuda_backend("cuda:0", "cpu-tiny", waves);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE((*a)->describe_setup()[2].find("context splits by blocks"), std::string::npos)
      << (*a)->describe_setup()[2];
  EXPECT_NE((*b)->describe_setup()[2].find("context splits by waves"), std::string::npos)
      << (*b)->describe_setup()[2];
  auto ta = decode_three(**a, 12);
  auto tb = decode_three(**b, 12);
  ASSERT_EQ(ta.size(), 39u);
  EXPECT_EQ(ta, tb);
}

TEST(cuda_backend, kv_exported_layer_by_layer_decodes_the_same_elsewhere) {
  ACCELLM_REQUIRE_GPU();
  const cuda_options o = small_options(9);
  auto a = make_cuda_backend("cuda:0", "cpu-small", o);
  auto b = make_cuda_backend("cuda:0", "cpu-small", o);
  ASSERT_TRUE(a.ok() && b.ok());
  const std::uint32_t n = 40;
  auto p = prompt(n, 512, 3);
  auto first = (*a)->run(batch{{batch_item{7, phase::prefill, 0, n, p, true}}});
  ASSERT_TRUE(first.ok());
  const std::uint32_t layers = (*a)->model().layers;
  for (std::uint32_t l = 0; l < layers; ++l) {
    auto c = (*a)->export_kv(7, {l, l + 1}, {0, n});
    ASSERT_TRUE(c.ok()) << c.err().what();
    EXPECT_EQ(c->bytes, 2ull * n * (*a)->model().kv_width() * 2);
    EXPECT_EQ((*b)->cached_tokens(7), 0u);  // not every layer yet
    ASSERT_TRUE((*b)->import_kv(*c).ok());
  }
  EXPECT_EQ((*b)->cached_tokens(7), n);
  auto whole_a = (*a)->export_kv(7, {0, layers}, {0, n});
  auto whole_b = (*b)->export_kv(7, {0, layers}, {0, n});
  ASSERT_TRUE(whole_a.ok() && whole_b.ok());
  EXPECT_TRUE(whole_a->data == whole_b->data);
  expect_same_decodes(**a, **b, 7, n, first->next_tokens[0], first->next_tokens[0], 16);
  auto bad = (*a)->export_kv(7, {0, 1}, {0, n + 100});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.err().code(), errc::out_of_range);
}

TEST(cuda_backend, kv_copied_device_to_device_decodes_the_same) {
  ACCELLM_REQUIRE_GPU();
  const cuda_options o = small_options(4);
  auto a = make_cuda_backend("cuda:0", "cpu-small", o);
  auto b = make_cuda_backend("cuda:0", "cpu-small", o);
  auto tiny = make_cuda_backend("cuda:0", "cpu-tiny", o);
  ASSERT_TRUE(a.ok() && b.ok() && tiny.ok());
  const std::uint32_t n = 33, layers = (*a)->model().layers;
  auto first = (*a)->run(batch{{batch_item{3, phase::prefill, 0, n, prompt(n, 512, 8), true}}});
  ASSERT_TRUE(first.ok());
  // Errors first: nothing may change on either side.
  EXPECT_EQ((*a)->copy_kv_to(**a, 3, {0, layers}, {0, n}).err().code(), errc::invalid_argument);
  EXPECT_EQ((*a)->copy_kv_to(**tiny, 3, {0, 1}, {0, n}).err().code(), errc::invalid_argument);
  EXPECT_EQ((*a)->copy_kv_to(**b, 99, {0, 1}, {0, n}).err().code(), errc::not_found);
  EXPECT_EQ((*a)->copy_kv_to(**b, 3, {0, 1}, {5, n}).err().code(), errc::out_of_range);  // a gap
  EXPECT_EQ((*b)->cached_tokens(3), 0u);
  // Two layer ranges, as a layer-wise stream would send them.
  ASSERT_TRUE((*a)->copy_kv_to(**b, 3, {0, layers / 2}, {0, n}).ok());
  EXPECT_EQ((*b)->cached_tokens(3), 0u);
  ASSERT_TRUE((*a)->copy_kv_to(**b, 3, {layers / 2, layers}, {0, n}).ok());
  EXPECT_EQ((*b)->cached_tokens(3), n);
  expect_same_decodes(**a, **b, 3, n, first->next_tokens[0], first->next_tokens[0], 12);
}

// run_streaming on the GPU: each layer group reaches the sink with the rows
// export_kv gives after the iteration, the tokens are run()'s, and a partner
// that imports the groups decodes like the source.
TEST(cuda_backend, streamed_layer_groups_hold_the_kv_and_decode_the_same_elsewhere) {
  ACCELLM_REQUIRE_GPU();
  const cuda_options o = small_options(6);
  auto a = make_cuda_backend("cuda:0", "cpu-small", o);
  auto b = make_cuda_backend("cuda:0", "cpu-small", o);
  auto ref = make_cuda_backend("cuda:0", "cpu-small", o);
  ASSERT_TRUE(a.ok() && b.ok() && ref.ok());
  const std::uint32_t layers = (*a)->model().layers;
  const batch first{{batch_item{7, phase::prefill, 0, 40, prompt(40, 512, 1), true},
                     batch_item{8, phase::prefill, 0, 17, prompt(17, 512, 2), true}}};
  std::vector<std::vector<kv_chunk>> calls;
  kv_stream s;
  s.requests = {8, 7};
  s.layers_per_chunk = 1;
  s.sink = [&](std::vector<kv_chunk> c) { calls.push_back(std::move(c)); };
  // Refused before anything runs.
  auto refused = (*a)->run_streaming(first, kv_stream{{9}, 1, s.sink, {}});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.err().code(), errc::invalid_argument);
  EXPECT_TRUE(calls.empty());
  EXPECT_EQ((*a)->cached_tokens(7), 0u);

  auto r = (*a)->run_streaming(first, s);
  ASSERT_TRUE(r.ok()) << r.err().what();
  auto want = (*ref)->run(first);
  ASSERT_TRUE(want.ok());
  EXPECT_EQ(r->next_tokens, want->next_tokens);
  ASSERT_EQ(calls.size(), layers);
  for (std::uint32_t l = 0; l < layers; ++l) {
    ASSERT_EQ(calls[l].size(), 2u);
    EXPECT_EQ(calls[l][0].request, 8u);
    EXPECT_EQ(calls[l][1].request, 7u);
    for (const kv_chunk& c : calls[l]) {
      EXPECT_EQ(c.layers, (index_range{l, l + 1}));
      auto direct = (*a)->export_kv(c.request, c.layers, c.tokens);
      ASSERT_TRUE(direct.ok()) << direct.err().what();
      EXPECT_EQ(c.bytes, direct->bytes);
      EXPECT_TRUE(c.data == direct->data) << "request " << c.request << " layer " << l;
      ASSERT_TRUE((*b)->import_kv(c).ok());
    }
  }
  EXPECT_EQ((*b)->cached_tokens(7), 40u);

  // Groups of 3 over 4 layers: [0, 3) and [3, 4); a decode-only batch is one
  // group, after the (graph-captured) iteration.
  calls.clear();
  s.requests = {9};
  s.layers_per_chunk = 3;
  ASSERT_TRUE(
      (*a)->run_streaming(batch{{batch_item{9, phase::prefill, 0, 5, prompt(5, 512, 3), true}}}, s)
          .ok());
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0].at(0).layers, (index_range{0, 3}));
  EXPECT_EQ(calls[1].at(0).layers, (index_range{3, 4}));
  calls.clear();
  s.requests = {7};
  s.layers_per_chunk = 1;
  const token_id t7 = r->next_tokens[1];
  auto step = (*a)->run_streaming(batch{{batch_item{7, phase::decode, 40, 1, {t7}, true}}}, s);
  ASSERT_TRUE(step.ok()) << step.err().what();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].at(0).layers, (index_range{0, layers}));
  EXPECT_EQ(calls[0].at(0).tokens, (index_range{40, 41}));
  // b decodes from the streamed copy (40 tokens) as a did.
  auto on_b = (*b)->run(batch{{batch_item{7, phase::decode, 40, 1, {t7}, true}}});
  ASSERT_TRUE(on_b.ok()) << on_b.err().what();
  ASSERT_EQ(on_b->next_tokens[0], step->next_tokens[0]);
  expect_same_decodes(**a, **b, 7, 41, step->next_tokens[0], on_b->next_tokens[0], 11);
}

// The chunks run_streaming hands out share the pinned memory lent for their
// layer group (no copy on the device thread), which goes back to the pool
// with the last of them. Where a pool is full (a cap of one group while that
// group's chunks are held) the groups that do not fit are dropped: chunks
// with no bytes, marked so, whose copies the worker gives up. Without a
// pool (cap 0) every group is copied out of the stage. Each chunk with bytes
// holds export_kv's.
TEST(cuda_backend, streamed_chunks_share_lent_pinned_memory_or_are_dropped_without_room) {
  ACCELLM_REQUIRE_GPU();
  const batch first{{batch_item{7, phase::prefill, 0, 40, prompt(40, 512, 1), true},
                     batch_item{8, phase::prefill, 0, 17, prompt(17, 512, 2), true}}};
  cuda_options o = small_options(6);
  auto probe = make_cuda_backend("cuda:0", "cpu-small", o);
  ASSERT_TRUE(probe.ok()) << probe.err().what();
  const std::uint32_t layers = (*probe)->model().layers;
  const std::uint64_t group = (*probe)->slice_bytes({0, 1}, {0, 57});  // both requests, one layer
  const std::uint64_t one_group = host_pool::rounded(group);
  probe->reset();
  // Cap per backend, and how many groups it must refuse while all are held.
  const std::vector<std::pair<std::uint64_t, std::uint64_t>> cases = {
      {std::uint64_t{64} << 20, 0}, {one_group, layers - 1}, {0, layers}};
  for (const auto& [cap, refused] : cases) {
    SCOPED_TRACE("pinned_kv_bytes " + std::to_string(cap));
    o.pinned_kv_bytes = cap;
    auto a = make_cuda_backend("cuda:0", "cpu-small", o);
    ASSERT_TRUE(a.ok()) << a.err().what();
    std::vector<kv_chunk> held;
    kv_stream s{{8, 7},
                1,
                [&](std::vector<kv_chunk> c) {
                  for (kv_chunk& k : c) held.push_back(std::move(k));
                },
                {}};
    ASSERT_TRUE((*a)->run_streaming(first, s).ok());
    ASSERT_EQ(held.size(), 2u * layers);
    const host_pool& pool = (*a)->lent_kv();
    EXPECT_EQ(pool.refusals(), refused);
    EXPECT_EQ(pool.lent_bytes(), (layers - refused) * one_group);
    const std::uint64_t dropped = cap == 0 ? 0 : refused;
    for (std::size_t k = 0; k < held.size(); ++k) {
      const kv_chunk& c = held[k];
      EXPECT_EQ(c.dropped, k / 2 >= layers - dropped)
          << "request " << c.request << " layer " << c.layers.begin;
      EXPECT_EQ(c.bytes, (*a)->slice_bytes(c.layers, c.tokens));
      if (c.dropped) {
        EXPECT_TRUE(c.data.empty());
        continue;
      }
      auto direct = (*a)->export_kv(c.request, c.layers, c.tokens);
      ASSERT_TRUE(direct.ok()) << direct.err().what();
      EXPECT_TRUE(c.data == direct->data) << "request " << c.request << " layer " << c.layers.begin;
    }
    // The two chunks of a lent group share one lease; a copied one owns its vector.
    const bool first_lent = refused < layers;
    EXPECT_EQ(held[0].data.use_count(), first_lent ? 2 : 1);
    held.clear();
    EXPECT_EQ(pool.lent_bytes(), 0u);
  }
}

// import_kv queues its copy on the copy stream and returns. A decode of the
// request right after waits for it on the GPU; a request released right
// after one gives its blocks to a new prefill only once it has landed; its
// pinned memory is back after the next calls. A chunk already in the
// backend's pinned memory (host_buffers: where a worker puts rows on
// arrival) is read from there, and with no pool the import goes through the
// stage. Every way, the partner decodes the source's tokens.
TEST(cuda_backend, imports_queued_on_the_copy_stream_land_before_what_needs_them) {
  ACCELLM_REQUIRE_GPU();
  cuda_options o = small_options(11);
  auto a = make_cuda_backend("cuda:0", "cpu-small", o);
  ASSERT_TRUE(a.ok()) << a.err().what();
  const std::uint32_t n = 48, layers = (*a)->model().layers, decodes = 8;
  auto first = (*a)->run(batch{{batch_item{7, phase::prefill, 0, n, prompt(n, 512, 4), true}}});
  ASSERT_TRUE(first.ok());
  auto whole = (*a)->export_kv(7, {0, layers}, {0, n});
  ASSERT_TRUE(whole.ok()) << whole.err().what();
  // The source's decodes of request 7, and its prefill of request 9.
  std::vector<token_id> want{first->next_tokens[0]};
  for (std::uint32_t s = 0; s < decodes; ++s) {
    auto r = (*a)->run(batch{{batch_item{7, phase::decode, n + s, 1, {want.back()}, true}}});
    ASSERT_TRUE(r.ok());
    want.push_back(r->next_tokens[0]);
  }
  const batch nine{{batch_item{9, phase::prefill, 0, 40, prompt(40, 512, 5), true}}};
  auto nine_first = (*a)->run(nine);
  ASSERT_TRUE(nine_first.ok());
  std::vector<token_id> want_nine{nine_first->next_tokens[0]};
  for (std::uint32_t s = 0; s < decodes; ++s) {
    auto r = (*a)->run(batch{{batch_item{9, phase::decode, 40 + s, 1, {want_nine.back()}, true}}});
    ASSERT_TRUE(r.ok());
    want_nine.push_back(r->next_tokens[0]);
  }
  const char* ways[] = {"leased here", "already pinned", "no pool"};
  for (int way = 0; way < 3; ++way) {
    SCOPED_TRACE(ways[way]);
    o.pinned_kv_bytes = way == 2 ? 0 : std::uint64_t{64} << 20;
    auto b = make_cuda_backend("cuda:0", "cpu-small", o);
    ASSERT_TRUE(b.ok()) << b.err().what();
    kv_chunk c = *whole;
    if (way == 1) {
      auto lease = (*b)->host_buffers()->take(c.bytes);
      ASSERT_TRUE(lease);
      std::memcpy(lease->data(), whole->data.data(), c.bytes);
      c.data = lease->share(0, c.bytes);
    }
    ASSERT_TRUE((*b)->import_kv(c).ok());
    c.data = {};  // the backend holds what it still reads
    // Request 8 imported and released at once: request 9 gets its blocks.
    kv_chunk eight = *whole;
    eight.request = 8;
    ASSERT_TRUE((*b)->import_kv(eight).ok());
    (*b)->release(8);
    auto got_nine = (*b)->run(nine);
    ASSERT_TRUE(got_nine.ok());
    EXPECT_EQ(got_nine->next_tokens[0], want_nine[0]);
    // Each on its own: a batch of one, as on the source.
    token_id t7 = want[0], t9 = want_nine[0];
    for (std::uint32_t s = 0; s < decodes; ++s) {
      auto r7 = (*b)->run(batch{{batch_item{7, phase::decode, n + s, 1, {t7}, true}}});
      auto r9 = (*b)->run(batch{{batch_item{9, phase::decode, 40 + s, 1, {t9}, true}}});
      ASSERT_TRUE(r7.ok() && r9.ok());
      t7 = r7->next_tokens[0];
      t9 = r9->next_tokens[0];
      ASSERT_EQ(t7, want[s + 1]) << "request 7, step " << s;
      ASSERT_EQ(t9, want_nine[s + 1]) << "request 9, step " << s;
    }
    EXPECT_EQ((*b)->lent_kv().lent_bytes(), 0u);
  }
}

// The per-operator breakdown (benchmarks): the same tokens as without it, a
// time for each operator that ran and none for the one that did not.
TEST(cuda_backend, breakdown_times_each_operator_and_changes_no_token) {
  ACCELLM_REQUIRE_GPU();
  const cuda_options o = small_options();
  auto a = make_cuda_backend("cuda:0", "cpu-small", o);
  auto b = make_cuda_backend("cuda:0", "cpu-small", o);
  ASSERT_TRUE(a.ok() && b.ok());
  const batch p{{batch_item{1, phase::prefill, 0, 30, prompt(30, 512, 5), true}}};
  (*a)->set_breakdown(true);
  auto with = (*a)->run(p);
  auto without = (*b)->run(p);
  ASSERT_TRUE(with.ok() && without.ok());
  EXPECT_EQ(with->next_tokens, without->next_tokens);
  const op_breakdown& t = (*a)->last_breakdown();
  for (std::size_t i = 0; i < op_count; ++i) {
    const auto which = static_cast<op>(i);
    if (which == op::decode_attention)
      EXPECT_EQ(t[i], 0.0) << "no decode item";
    else
      EXPECT_GT(t[i], 0.0) << op_name(which);
  }
  // A decode step (a graph without the breakdown) is launched plainly: the
  // decode attention is timed now, the prefill attention not.
  auto d = (*a)->run(batch{{batch_item{1, phase::decode, 30, 1, {with->next_tokens[0]}, true}}});
  ASSERT_TRUE(d.ok()) << d.err().what();
  EXPECT_GT((*a)->last_breakdown()[static_cast<std::size_t>(op::decode_attention)], 0.0);
  EXPECT_EQ((*a)->last_breakdown()[static_cast<std::size_t>(op::prefill_attention)], 0.0);
}

}  // namespace
}  // namespace accellm::device::cuda

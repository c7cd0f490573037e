// cpu_backend: batch invariance, chunked prefill, determinism, shapes.
#include "device/cpu/cpu_backend.hpp"

#include "tests/device/cpu/cpu_test_util.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <set>

namespace accellm::device::cpu {
namespace {

using test::decode;
using test::generate_alone;
using test::make;
using test::prefill;
using test::prompt;
using test::run_ok;

constexpr int steps = 40;  // decode steps per request (>= 32)

// One request of the mixed-batch schedule.
struct scheduled {
  request_id id;
  std::uint32_t prompt_len;
  int start;  // iteration at which its prefill joins the batch
  std::vector<token_id> prompt;
  std::vector<token_id> out;
};

// Runs the requests together: prefills join while others decode, the order of
// items changes every iteration (rotated, and reversed on odd iterations), and
// requests leave as soon as they have steps + 1 tokens.
void run_mixed(backend& b, std::vector<scheduled>& reqs) {
  for (int it = 0;; ++it) {
    batch bt;
    std::vector<scheduled*> who;
    for (scheduled& r : reqs) {
      if (it < r.start || r.out.size() > steps) continue;
      const auto ctx = r.prompt_len + static_cast<std::uint32_t>(r.out.size());
      bt.items.push_back(r.out.empty() ? prefill(r.id, 0, r.prompt)
                                       : decode(r.id, ctx - 1, r.out.back()));
      who.push_back(&r);
    }
    if (bt.items.empty() && it > reqs.back().start) break;
    const std::size_t n = bt.items.size();
    std::vector<std::size_t> order(n);
    for (std::size_t i = 0; i < n; ++i) order[i] = (i + static_cast<std::size_t>(it)) % n;
    if (it % 2) std::reverse(order.begin(), order.end());
    batch shuffled;
    for (const std::size_t i : order) shuffled.items.push_back(bt.items[i]);
    const auto next = run_ok(b, shuffled);
    ASSERT_EQ(next.size(), n);
    for (std::size_t k = 0; k < n; ++k) who[order[k]]->out.push_back(next[k]);
  }
}

void expect_batch_invariant(const model_spec& spec) {
  std::vector<scheduled> reqs;
  const std::uint32_t lens[] = {5, 17, 33, 1, 12, 40};
  const int starts[] = {0, 0, 3, 5, 11, 20};
  for (std::size_t i = 0; i < 6; ++i)
    reqs.push_back({i + 1, lens[i], starts[i], prompt(i + 1, lens[i], spec.vocab), {}});
  auto batched = make(spec);
  run_mixed(*batched, reqs);
  auto alone = make(spec);
  for (const scheduled& r : reqs) {
    SCOPED_TRACE("request " + std::to_string(r.id));
    ASSERT_EQ(r.out.size(), steps + 1u);
    EXPECT_EQ(r.out, generate_alone(*alone, r.id, r.prompt, steps));
    // Tokens survive last-bit differences; the cached K/V bytes do not.
    EXPECT_TRUE(test::all_kv(*batched, r.id) == test::all_kv(*alone, r.id));
  }
}

TEST(CpuBackend, RequestAloneEqualsMixedBatchesTiny) {
  expect_batch_invariant(test::tiny_spec());
}
TEST(CpuBackend, RequestAloneEqualsMixedBatchesSmall) {
  expect_batch_invariant(test::small_spec());
}

TEST(CpuBackend, LogitsAreBitIdenticalInAnyBatchPosition) {
  const auto spec = test::small_spec();
  auto b = make(spec);
  const auto p = prompt(9, 23, spec.vocab);
  run_ok(*b, batch{{prefill(1, 0, p)}});
  const std::vector<float> alone(b->last_logits().begin(), b->last_logits().end());
  for (int pos = 0; pos < 3; ++pos) {
    batch bt;
    for (int k = 0; k < 3; ++k) {
      const request_id r = k == pos ? 100 + static_cast<request_id>(pos) : 200 + 10 * pos + k;
      bt.items.push_back(prefill(r, 0, k == pos ? p : prompt(r, 3 + 7 * k, spec.vocab)));
    }
    run_ok(*b, bt);
    const float* got = b->last_logits().data() + static_cast<std::size_t>(pos) * spec.vocab;
    EXPECT_EQ(std::memcmp(got, alone.data(), alone.size() * sizeof(float)), 0)
        << "position " << pos;
  }
}

TEST(CpuBackend, ChunkedPrefillEqualsUnchunked) {
  const auto spec = test::small_spec();
  const auto p = prompt(3, 50, spec.vocab);
  auto whole = make(spec);
  const auto expected = generate_alone(*whole, 1, p, 32);
  auto chunked = make(spec, 1, 256, 16);
  const std::uint32_t cuts[] = {0, 7, 23, 24, 50};  // chunks of 7, 16, 1, 26 tokens
  token_id first = no_token;
  for (std::size_t c = 0; c + 1 < std::size(cuts); ++c) {
    const bool last = c + 2 == std::size(cuts);
    std::vector<token_id> part(p.begin() + cuts[c], p.begin() + cuts[c + 1]);
    // Another request rides along in every chunk's batch, at varying places.
    batch bt{{prefill(1, cuts[c], part, last), prefill(50 + c, 0, prompt(50 + c, 9, spec.vocab))}};
    if (c % 2) std::swap(bt.items[0], bt.items[1]);
    const auto next = run_ok(*chunked, bt);
    const token_id mine = next[c % 2 ? 1 : 0];
    EXPECT_EQ(mine == no_token, !last) << "chunk " << c;
    first = mine;
  }
  std::vector<token_id> got{first};
  const auto rest = test::decode_alone(*chunked, 1, 50, first, 32);
  got.insert(got.end(), rest.begin(), rest.end());
  EXPECT_EQ(got, expected);
  EXPECT_TRUE(test::all_kv(*chunked, 1) == test::all_kv(*whole, 1));
}

TEST(CpuBackend, ChunkedPrefillWritesTheSameKvBytes) {
  const auto spec = test::tiny_spec();
  const auto p = prompt(4, 37, spec.vocab);
  auto whole = make(spec);
  run_ok(*whole, batch{{prefill(1, 0, p)}});
  auto chunked = make(spec);
  for (std::uint32_t at = 0; at < p.size(); at += 5) {
    const auto end = std::min<std::size_t>(at + 5, p.size());
    run_ok(*chunked, batch{{prefill(1, at, {p.begin() + at, p.begin() + static_cast<long>(end)},
                                    end == p.size())}});
  }
  EXPECT_EQ(test::all_kv(*chunked, 1), test::all_kv(*whole, 1));
}

TEST(CpuBackend, GreedyTokensVary) {
  for (const auto& spec : {test::tiny_spec(), test::small_spec()}) {
    auto b = make(spec);
    const auto out = generate_alone(*b, 1, prompt(5, 8, spec.vocab), 32);
    const std::set<token_id> distinct(out.begin(), out.end());
    EXPECT_GE(distinct.size(), 8u) << spec.name << ": the model collapsed to few tokens";
  }
}

TEST(CpuBackend, SameSeedSameTokensDifferentSeedDifferentTokens) {
  const auto spec = test::tiny_spec();
  const auto p = prompt(6, 12, spec.vocab);
  auto a = make(spec, 42);
  auto a2 = make(spec, 42);
  auto c = make(spec, 43);
  EXPECT_EQ(a->parameters().lm_head, a2->parameters().lm_head);
  EXPECT_EQ(a->parameters().layers[1].wqkv, a2->parameters().layers[1].wqkv);
  EXPECT_NE(a->parameters().layers[1].wqkv, c->parameters().layers[1].wqkv);
  const auto ta = generate_alone(*a, 1, p, 32);
  EXPECT_EQ(ta, generate_alone(*a2, 1, p, 32));
  EXPECT_NE(ta, generate_alone(*c, 1, p, 32));
}

TEST(CpuBackend, AttentionShapesMhaGqaMqaAllRun) {
  for (const std::uint32_t kv_heads : {4u, 2u, 1u}) {
    auto spec = test::tiny_spec();
    spec.kv_heads = kv_heads;
    auto b = make(spec);
    ASSERT_NE(b, nullptr);
    EXPECT_EQ(b->kv().bytes_per_block, 16ull * 2 * spec.layers * spec.kv_width() * 4);
    const auto out = generate_alone(*b, 1, prompt(7, 10, spec.vocab), 8);
    EXPECT_EQ(b->cached_tokens(1), 18u) << "kv_heads " << kv_heads;
    for (const token_id t : out) EXPECT_LT(static_cast<std::uint32_t>(t), spec.vocab);
  }
}

TEST(CpuBackend, CatalogueModelsRunAndMatchTheTestShapes) {
  for (const auto& mine : {test::tiny_spec(), test::small_spec()}) {
    const model_spec* spec = find_model(mine.name);
    ASSERT_NE(spec, nullptr) << mine.name;
    EXPECT_EQ(spec->layers, mine.layers);
    EXPECT_EQ(spec->hidden, mine.hidden);
    EXPECT_EQ(spec->heads, mine.heads);
    EXPECT_EQ(spec->kv_heads, mine.kv_heads);
    EXPECT_EQ(spec->ffn, mine.ffn);
    EXPECT_EQ(spec->vocab, mine.vocab);
    EXPECT_EQ(spec->max_context, mine.max_context);
    auto b = make_cpu_backend(*spec, {});
    ASSERT_TRUE(b.ok()) << b.err().what();
    EXPECT_EQ(generate_alone(**b, 1, prompt(8, 16, spec->vocab), 4).size(), 5u);
  }
}

TEST(CpuBackend, EmptyBatchRunsAndProducesNothing) {
  auto b = make(test::tiny_spec());
  auto r = b->run(batch{});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->next_tokens.empty());
}

TEST(CpuBackend, DescribesItself) {
  auto b = make(test::tiny_spec(), 1, 100, 8);
  EXPECT_EQ(b->name(), "cpu");
  EXPECT_EQ(b->model().name, "cpu-tiny");
  EXPECT_EQ(b->kv().block_tokens, 8u);
  EXPECT_EQ(b->kv().total_blocks, 100u);
  EXPECT_EQ(b->kv().kv_dtype, dtype::fp32);
}

TEST(CpuBackend, ReportsDurationFromInjectedClock) {
  cpu_options o;
  std::int64_t ticks = 0;
  o.clock = [&ticks] { return std::chrono::nanoseconds{ticks += 1000}; };
  auto b = make_cpu_backend(test::tiny_spec(), o);
  ASSERT_TRUE(b.ok());
  auto r = (*b)->run(batch{{prefill(1, 0, {1, 2, 3})}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->duration, std::chrono::nanoseconds{1000});
}

TEST(CpuBackend, ReleaseFreesBlocksAndForgetsTheRequest) {
  auto b = make(test::tiny_spec(), 1, 10);
  run_ok(*b, batch{{prefill(1, 0, prompt(1, 40, 256))}});
  EXPECT_EQ(b->free_blocks(), 7u);
  b->release(1);
  b->release(1);  // unknown ids are ignored
  EXPECT_EQ(b->free_blocks(), 10u);
  EXPECT_EQ(b->cached_tokens(1), 0u);
}

}  // namespace
}  // namespace accellm::device::cpu

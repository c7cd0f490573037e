// cpu_backend KV export/import: the AcceLLM replica. A request prefilled on A
// and copied layer by layer to B decodes on B exactly as on A; KV deltas keep
// the replica current, so B can take over mid-decode.
#include "device/cpu/cpu_backend.hpp"
#include "tests/device/cpu/cpu_test_util.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

namespace accellm::device::cpu {
namespace {

using test::decode;
using test::decode_alone;
using test::make;
using test::prefill;
using test::prompt;
using test::run_ok;

// Copies tokens [begin, end) of every layer from `from` to `to`, one chunk per
// layer, in reverse layer order (import must accept any order).
void copy_layers(backend& from, backend& to, request_id r, std::uint32_t begin, std::uint32_t end) {
  for (std::uint32_t l = from.model().layers; l-- > 0;) {
    auto chunk = from.export_kv(r, index_range{l, l + 1}, index_range{begin, end});
    ASSERT_TRUE(chunk.ok()) << chunk.err().what();
    EXPECT_EQ(chunk->bytes, chunk->data.size());
    EXPECT_EQ(chunk->bytes,
              std::uint64_t{end - begin} * from.model().kv_bytes_per_token_layer(dtype::fp32));
    const auto s = to.import_kv(*chunk);
    ASSERT_TRUE(s.ok()) << s.err().what();
  }
}

TEST(CpuBackendKv, LayerByLayerReplicaDecodesLikeThePrimary) {
  const auto spec = test::small_spec();
  auto a = make(spec);
  auto b = make(spec);
  const auto p = prompt(11, 45, spec.vocab);
  const token_id first = run_ok(*a, batch{{prefill(1, 0, p)}})[0];
  // Layer by layer, as the prefill would stream them; B is partial meanwhile.
  for (std::uint32_t l = 0; l < spec.layers; ++l) {
    auto chunk = a->export_kv(1, index_range{l, l + 1}, index_range{0, 45});
    ASSERT_TRUE(chunk.ok()) << chunk.err().what();
    EXPECT_EQ(b->cached_tokens(1), 0u) << "layer " << l << ": replica must not look complete";
    ASSERT_TRUE(b->import_kv(*chunk).ok());
  }
  EXPECT_EQ(b->cached_tokens(1), 45u);
  EXPECT_EQ(test::all_kv(*b, 1), test::all_kv(*a, 1));
  EXPECT_EQ(decode_alone(*b, 1, 45, first, 32), decode_alone(*a, 1, 45, first, 32));
}

TEST(CpuBackendKv, ReplicaImportedInAnyLayerOrderDecodesLikeThePrimary) {
  const auto spec = test::tiny_spec();
  auto a = make(spec);
  auto b = make(spec, 1, 64, 16);
  const auto p = prompt(12, 21, spec.vocab);
  const token_id first = run_ok(*a, batch{{prefill(1, 0, p)}})[0];
  copy_layers(*a, *b, 1, 0, 21);
  EXPECT_EQ(decode_alone(*b, 1, 21, first, 32), decode_alone(*a, 1, 21, first, 32));
}

TEST(CpuBackendKv, PartialReplicaCannotDecode) {
  const auto spec = test::tiny_spec();
  auto a = make(spec);
  auto b = make(spec);
  const token_id first = run_ok(*a, batch{{prefill(1, 0, prompt(1, 10, spec.vocab))}})[0];
  auto chunk = a->export_kv(1, index_range{0, 1}, index_range{0, 10});
  ASSERT_TRUE(chunk.ok());
  ASSERT_TRUE(b->import_kv(*chunk).ok());
  EXPECT_EQ(b->cached_tokens(1), 0u);
  auto r = b->run(batch{{decode(1, 10, first)}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code(), errc::invalid_argument);
}

// A layer-wise copy whose sender was lost between two layers: the replica's
// first layer holds a row more than the other. It runs from what every layer
// holds, overwriting that row, and decodes as the primary does.
TEST(CpuBackendKv, ACopyCutOffBetweenLayersRunsFromWhatEveryLayerHolds) {
  const auto spec = test::tiny_spec();  // 2 layers
  auto a = make(spec);
  auto b = make(spec);
  const token_id first = run_ok(*a, batch{{prefill(1, 0, prompt(2, 10, spec.vocab))}})[0];
  copy_layers(*a, *b, 1, 0, 10);
  const token_id second = run_ok(*a, batch{{decode(1, 10, first)}})[0];
  auto cut = a->export_kv(1, index_range{0, 1}, index_range{10, 11});  // layer 0 only
  ASSERT_TRUE(cut.ok());
  ASSERT_TRUE(b->import_kv(*cut).ok());
  EXPECT_EQ(b->cached_tokens(1), 10u);
  auto ahead = b->run(batch{{decode(1, 11, second)}});
  ASSERT_FALSE(ahead.ok());
  EXPECT_EQ(ahead.err().code(), errc::invalid_argument);
  EXPECT_NE(ahead.err().what().find("10 tokens cached in every layer (11 in some)"),
            std::string::npos)
      << ahead.err().what();
  EXPECT_EQ(run_ok(*b, batch{{decode(1, 10, first)}})[0], second);
  EXPECT_EQ(b->cached_tokens(1), 11u);
  EXPECT_EQ(test::all_kv(*b, 1), test::all_kv(*a, 1));
}

// A decodes and streams a delta [n, n + 1) of every layer after each step; at
// `fail_at` A is gone and B continues. Expected: the tokens of an
// uninterrupted run on a third instance.
TEST(CpuBackendKv, DeltasKeepTheReplicaCurrentForATakeover) {
  const auto spec = test::small_spec();
  auto a = make(spec);
  auto b = make(spec);
  auto reference = make(spec);
  const auto p = prompt(13, 30, spec.vocab);
  const auto expected = test::generate_alone(*reference, 1, p, 40);
  token_id last = run_ok(*a, batch{{prefill(1, 0, p)}})[0];
  copy_layers(*a, *b, 1, 0, 30);
  std::vector<token_id> got{last};
  std::uint32_t n = 30;
  for (int step = 0; step < 16; ++step, ++n) {
    last = run_ok(*a, batch{{decode(1, n, last)}})[0];
    got.push_back(last);
    copy_layers(*a, *b, 1, n, n + 1);
  }
  a.reset();  // the primary dies
  ASSERT_EQ(b->cached_tokens(1), n);
  const auto rest = decode_alone(*b, 1, n, last, 24);
  got.insert(got.end(), rest.begin(), rest.end());
  EXPECT_EQ(got, expected);
}

// The replica lags by a few tokens (deltas lost with the primary): the partner
// recomputes them as a prefill chunk, then continues (DESIGN.md "Takeover").
TEST(CpuBackendKv, LaggingReplicaRecomputesAndContinues) {
  const auto spec = test::tiny_spec();
  auto a = make(spec);
  auto b = make(spec);
  auto p = prompt(14, 20, spec.vocab);
  auto seq = test::generate_alone(*a, 1, p, 12);  // A cached 20 + 12, knows one more
  copy_layers(*a, *b, 1, 0, 27);                  // B holds only 27 of the 32
  std::vector<token_id> lagging(p.begin(), p.end());
  lagging.insert(lagging.end(), seq.begin(), seq.end() - 1);  // 32 cached on A
  const std::vector<token_id> redo(lagging.begin() + 27, lagging.end());
  const token_id next = run_ok(*b, batch{{prefill(1, 27, redo)}})[0];
  EXPECT_EQ(next, seq.back());
  EXPECT_EQ(test::all_kv(*b, 1), test::all_kv(*a, 1));
  EXPECT_EQ(decode_alone(*b, 1, 32, next, 32), decode_alone(*a, 1, 32, next, 32));
}

TEST(CpuBackendKv, ReimportOverwritesOverlapWithoutShrinking) {
  const auto spec = test::tiny_spec();
  auto a = make(spec);
  auto b = make(spec);
  run_ok(*a, batch{{prefill(1, 0, prompt(15, 20, spec.vocab))}});
  copy_layers(*a, *b, 1, 0, 20);
  copy_layers(*a, *b, 1, 4, 9);
  EXPECT_EQ(b->cached_tokens(1), 20u);
  EXPECT_EQ(test::all_kv(*b, 1), test::all_kv(*a, 1));
}

TEST(CpuBackendKv, ExportLayoutIsKThenVPerLayer) {
  const auto spec = test::tiny_spec();
  auto a = make(spec);
  run_ok(*a, batch{{prefill(1, 0, prompt(16, 6, spec.vocab))}});
  auto both = a->export_kv(1, index_range{0, 2}, index_range{2, 5});
  auto l1 = a->export_kv(1, index_range{1, 2}, index_range{2, 5});
  auto t3 = a->export_kv(1, index_range{1, 2}, index_range{3, 4});
  ASSERT_TRUE(both.ok() && l1.ok() && t3.ok());
  const std::size_t row = spec.kv_width() * sizeof(float);
  const std::size_t layer_bytes = 2 * 3 * row;
  ASSERT_EQ(both->data.size(), 2 * layer_bytes);
  EXPECT_EQ(std::memcmp(both->data.data() + layer_bytes, l1->data.data(), layer_bytes), 0);
  // Token 3 is row 1 of K and row 1 of V (V starts after 3 K rows).
  EXPECT_EQ(std::memcmp(l1->data.data() + row, t3->data.data(), row), 0);
  EXPECT_EQ(std::memcmp(l1->data.data() + 4 * row, t3->data.data() + row, row), 0);
}

// run_streaming: what each layer group's sink call saw.
struct streamed {
  std::vector<index_range> layers;           // per call
  std::vector<std::vector<kv_chunk>> calls;  // per call, the chunks
  std::vector<std::uint32_t> cached_then;    // per call: cached_tokens(1) at that moment
};

kv_stream stream_into(streamed& out, const backend& b, std::vector<request_id> requests,
                      std::uint32_t per) {
  kv_stream s;
  s.requests = std::move(requests);
  s.layers_per_chunk = per;
  s.sink = [&out, &b](std::vector<kv_chunk> chunks) {
    out.layers.push_back(chunks.empty() ? index_range{} : chunks.front().layers);
    out.cached_then.push_back(b.cached_tokens(1));
    out.calls.push_back(std::move(chunks));
  };
  return s;
}

TEST(CpuBackendKv, StreamingHandsEachLayerOverBeforeTheNextComputes) {
  const auto spec = test::small_spec();  // 4 layers
  auto a = make(spec);
  auto ref = make(spec);
  // Request 2 decodes in the same batch; request 1 and 3 are prompts.
  const auto p2 = prompt(30, 9, spec.vocab);
  const token_id t2 = run_ok(*a, batch{{prefill(2, 0, p2)}})[0];
  run_ok(*ref, batch{{prefill(2, 0, p2)}});
  const batch b{{prefill(1, 0, prompt(31, 23, spec.vocab)), decode(2, 9, t2),
                 prefill(3, 0, prompt(32, 5, spec.vocab))}};
  streamed got;
  auto r = a->run_streaming(b, stream_into(got, *a, {3, 1, 2}, 1));
  ASSERT_TRUE(r.ok()) << r.err().what();
  EXPECT_EQ(r->next_tokens, run_ok(*ref, b)) << "streaming must not change the tokens";
  ASSERT_EQ(got.calls.size(), spec.layers);
  for (std::uint32_t l = 0; l < spec.layers; ++l) {
    EXPECT_EQ(got.layers[l], (index_range{l, l + 1}));
    // Handed over mid-iteration: the request is not complete in every layer yet.
    EXPECT_EQ(got.cached_then[l], l + 1 < spec.layers ? 0u : 23u) << "layer " << l;
    ASSERT_EQ(got.calls[l].size(), 3u);
    const std::array<std::pair<request_id, index_range>, 3> want{
        {{3, {0, 5}}, {1, {0, 23}}, {2, {9, 10}}}};
    for (std::size_t i = 0; i < 3; ++i) {
      const kv_chunk& c = got.calls[l][i];
      EXPECT_EQ(c.request, want[i].first);
      EXPECT_EQ(c.tokens, want[i].second);
      EXPECT_EQ(c.bytes, c.data.size());
      auto direct = a->export_kv(c.request, c.layers, c.tokens);
      ASSERT_TRUE(direct.ok()) << direct.err().what();
      EXPECT_EQ(c.data, direct->data) << "request " << c.request << " layer " << l;
    }
  }
}

TEST(CpuBackendKv, StreamedLayerGroupsMakeAReplicaThatDecodesLikeThePrimary) {
  const auto spec = test::small_spec();
  auto a = make(spec);
  auto b = make(spec);
  streamed got;
  auto r = a->run_streaming(batch{{prefill(1, 0, prompt(33, 37, spec.vocab))}},
                            stream_into(got, *a, {1}, 3));
  ASSERT_TRUE(r.ok()) << r.err().what();
  // 4 layers by 3: [0, 3) then the shorter [3, 4).
  ASSERT_EQ(got.layers.size(), 2u);
  EXPECT_EQ(got.layers[0], (index_range{0, 3}));
  EXPECT_EQ(got.layers[1], (index_range{3, 4}));
  for (const auto& call : got.calls) {
    ASSERT_EQ(call.size(), 1u);
    ASSERT_TRUE(b->import_kv(call[0]).ok());
  }
  EXPECT_EQ(b->cached_tokens(1), 37u);
  const token_id first = r->next_tokens[0];
  EXPECT_EQ(decode_alone(*b, 1, 37, first, 24), decode_alone(*a, 1, 37, first, 24));
}

TEST(CpuBackendKv, StreamingAllLayersAtOnceIsOneGroup) {
  const auto spec = test::small_spec();
  for (const std::uint32_t per : {0u, 4u, 9u}) {
    auto a = make(spec);
    streamed got;
    auto r = a->run_streaming(batch{{prefill(1, 0, prompt(34, 6, spec.vocab))}},
                              stream_into(got, *a, {1}, per));
    ASSERT_TRUE(r.ok()) << r.err().what();
    ASSERT_EQ(got.layers.size(), 1u) << "layers_per_chunk " << per;
    EXPECT_EQ(got.layers[0], (index_range{0, 4}));
    EXPECT_EQ(got.calls[0][0].data, test::all_kv(*a, 1));
  }
}

TEST(CpuBackendKv, StreamingRefusesRequestsOutsideTheBatchBeforeRunning) {
  const auto spec = test::tiny_spec();
  auto a = make(spec);
  const batch b{{prefill(1, 0, prompt(35, 6, spec.vocab))}};
  for (const std::vector<request_id>& bad :
       {std::vector<request_id>{7}, std::vector<request_id>{1, 1}}) {
    streamed got;
    auto r = a->run_streaming(b, stream_into(got, *a, bad, 1));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.err().code(), errc::invalid_argument);
    EXPECT_NE(r.err().what().find(bad.size() == 1 ? "request 7 is not in the batch"
                                                  : "request 1 is streamed twice"),
              std::string::npos)
        << r.err().what();
    EXPECT_TRUE(got.calls.empty());
    EXPECT_EQ(a->cached_tokens(1), 0u) << "nothing may run";
  }
  // A batch the backend refuses streams nothing either.
  streamed got;
  auto r = a->run_streaming(batch{{decode(9, 4, 1)}}, stream_into(got, *a, {9}, 1));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code(), errc::not_found);
  EXPECT_TRUE(got.calls.empty());
}

}  // namespace
}  // namespace accellm::device::cpu

// Cost of the wire format: encode and validated decode of the messages on the
// hot path (Execute per iteration, KvLayer per layer of every prefill).
//
//   build/release/bench/bench_codec
//
// Napkin math: an iteration of a 64-request decode batch on H100 takes ~15 ms
// (accellm model), so even 10 us of encoding per Execute is < 0.1 %. A
// Llama-2-70B layer of a 2048-token prompt is 2048 * 4 KiB = 8 MiB of KV;
// copying it once at ~10 GB/s costs ~0.8 ms, so KvLayer must not copy twice.
#include "messages/codec.hpp"

#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace {

using namespace accellm;

messages::execute make_execute(int items) {
  messages::execute x;
  x.epoch = 3;
  x.instance = 1;
  x.iteration = 1000;
  for (int i = 0; i < items; ++i) {
    messages::execute_item it;
    it.request = static_cast<request_id>(i + 1);
    it.phase = messages::phase::decode;
    it.context = 2048;
    it.num_tokens = 1;
    it.tokens = {static_cast<token_id>(i)};
    it.replica_to = 2;
    x.items.push_back(std::move(it));
  }
  return x;
}

void BM_execute_encode(benchmark::State& state) {
  auto x = make_execute(static_cast<int>(state.range(0)));
  for (auto _ : state) benchmark::DoNotOptimize(messages::encode(x));
  state.counters["bytes"] = static_cast<double>(messages::encode(x).bytes.size());
}
BENCHMARK(BM_execute_encode)->Arg(1)->Arg(64)->Arg(256);

void BM_execute_decode(benchmark::State& state) {
  auto blob = messages::encode(make_execute(static_cast<int>(state.range(0))));
  for (auto _ : state) {
    auto x = messages::decode<messages::execute>(blob);
    if (!x) state.SkipWithError("decode failed");
    benchmark::DoNotOptimize(x);
  }
}
BENCHMARK(BM_execute_decode)->Arg(1)->Arg(64)->Arg(256);

messages::kv_layer make_layer(std::size_t bytes) {
  messages::kv_layer k;
  k.epoch = 3;
  k.request = 42;
  k.from_instance = 0;
  k.layer = 7;
  k.token_begin = 0;
  k.token_end = 2048;
  k.size_bytes = bytes;
  k.data.assign(bytes, std::byte{0x5a});
  return k;
}

void BM_kv_layer_encode(benchmark::State& state) {
  auto k = make_layer(static_cast<std::size_t>(state.range(0)));
  for (auto _ : state) benchmark::DoNotOptimize(messages::encode(k));
  state.SetBytesProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_kv_layer_encode)->Arg(64 << 10)->Arg(8 << 20);

void BM_kv_layer_decode(benchmark::State& state) {
  auto blob = messages::encode(make_layer(static_cast<std::size_t>(state.range(0))));
  for (auto _ : state) {
    auto k = messages::decode<messages::kv_layer>(blob);
    if (!k) state.SkipWithError("decode failed");
    benchmark::DoNotOptimize(k);
  }
  state.SetBytesProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_kv_layer_decode)->Arg(64 << 10)->Arg(8 << 20);

}  // namespace

BENCHMARK_MAIN();

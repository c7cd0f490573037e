// bench_cpu_backend: tokens/s of the cpu backend for prefill and decode at a
// few batch sizes, with napkin math: FLOP per token from the model shape, so
// the FLOP/s counter says how close the fp32 kernels get to the core's peak.
//
//   build-cpu/bench/bench_cpu_backend [--benchmark_filter=small]
//
// FLOP per token = 2 x (parameters of every matmul a token passes through:
// QKV, O, gate/up, down in every layer; the LM head only for rows that want a
// token) + attention 4 x hidden x context per layer (scores and weighted V).
// Peak for comparison: the kernels use 4-wide SSE vectors with a separate
// multiply and add, so one core does at most 8 FLOP/cycle (2 pipes x 4 lanes):
// about 20-25 GFLOP/s at 2.5-3 GHz. Single-threaded.
#include "device/cpu/cpu_backend.hpp"
#include "device/model_spec.hpp"

#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdio>
#include <memory>
#include <vector>

namespace {

using namespace accellm;
using namespace accellm::device;

constexpr std::uint32_t prompt_len = 128;

std::unique_ptr<cpu::cpu_backend> make_backend(const char* model) {
  const model_spec* spec = find_model(model);
  if (!spec) return nullptr;
  cpu::cpu_options o;
  o.kv_blocks = 4096;
  auto b = cpu::make_cpu_backend(*spec, o);
  return b.ok() ? std::move(b).value() : nullptr;
}

// FLOP of one token at position `pos` (its attention spans pos + 1 tokens).
double token_flop(const model_spec& s, double pos, bool output) {
  const double d = s.hidden, kv = s.kv_width(), f = s.ffn;
  const double matmul_params = s.layers * (d * (d + 2 * kv) + d * d + 3 * d * f);
  const double attention = s.layers * 4.0 * d * (pos + 1);
  return 2 * matmul_params + attention + (output ? 2.0 * s.vocab * d : 0.0);
}

std::vector<token_id> tokens(std::uint32_t n, std::uint32_t vocab, std::uint64_t seed) {
  cpu::splitmix64 rng{seed};
  std::vector<token_id> out(n);
  for (token_id& t : out) t = static_cast<token_id>(rng.next() % vocab);
  return out;
}

batch prefill_batch(std::uint32_t requests, std::uint32_t vocab) {
  batch b;
  for (std::uint32_t r = 0; r < requests; ++r) {
    batch_item it;
    it.request = r + 1;
    it.kind = phase::prefill;
    it.num_tokens = prompt_len;
    it.tokens = tokens(prompt_len, vocab, r + 1);
    b.items.push_back(std::move(it));
  }
  return b;
}

void set_counters(benchmark::State& state, double tokens_per_iter, double flop_per_iter) {
  const auto iters = static_cast<double>(state.iterations());
  state.counters["tok/s"] =
      benchmark::Counter(tokens_per_iter * iters, benchmark::Counter::kIsRate);
  state.counters["FLOP/s"] = benchmark::Counter(flop_per_iter * iters, benchmark::Counter::kIsRate,
                                                benchmark::Counter::kIs1000);
}

// `requests` prompts of prompt_len tokens in one iteration.
void prefill(benchmark::State& state, const char* model) {
  auto b = make_backend(model);
  if (!b) return state.SkipWithError("model not in the catalogue");
  const auto requests = static_cast<std::uint32_t>(state.range(0));
  const batch work = prefill_batch(requests, b->model().vocab);
  double flop = 0;
  for (std::uint32_t p = 0; p < prompt_len; ++p)
    flop += requests * token_flop(b->model(), p, p + 1 == prompt_len);
  for (auto _ : state) {
    if (!b->run(work).ok()) return state.SkipWithError("prefill failed");
    for (std::uint32_t r = 1; r <= requests; ++r) b->release(r);
  }
  set_counters(state, static_cast<double>(requests) * prompt_len, flop);
}

// One decode step of `requests` requests at context ~prompt_len + 16: each
// benchmark iteration is 32 steps after an untimed prefill.
void decode(benchmark::State& state, const char* model) {
  auto b = make_backend(model);
  if (!b) return state.SkipWithError("model not in the catalogue");
  const auto requests = static_cast<std::uint32_t>(state.range(0));
  constexpr std::uint32_t steps = 32;
  double flop = 0;
  for (std::uint32_t s = 0; s < steps; ++s)
    flop += requests * token_flop(b->model(), prompt_len + s, true);
  batch step;
  for (std::uint32_t r = 1; r <= requests; ++r)
    step.items.push_back(batch_item{r, phase::decode, 0, 1, {1}, true});
  for (auto _ : state) {
    state.PauseTiming();
    for (std::uint32_t r = 1; r <= requests; ++r) b->release(r);
    auto first = b->run(prefill_batch(requests, b->model().vocab));
    state.ResumeTiming();
    if (!first.ok()) return state.SkipWithError("prefill failed");
    for (std::uint32_t s = 0; s < steps; ++s) {
      for (std::uint32_t r = 0; r < requests; ++r) {
        step.items[r].context = prompt_len + s;
        step.items[r].tokens[0] = s == 0 ? first->next_tokens[r] : step.items[r].tokens[0];
      }
      auto next = b->run(step);
      if (!next.ok()) return state.SkipWithError("decode failed");
      for (std::uint32_t r = 0; r < requests; ++r) step.items[r].tokens[0] = next->next_tokens[r];
    }
  }
  set_counters(state, static_cast<double>(requests) * steps, flop);
}

BENCHMARK_CAPTURE(prefill, tiny, "cpu-tiny")->Arg(1)->Arg(4)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(prefill, small, "cpu-small")->Arg(1)->Arg(4)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(decode, tiny, "cpu-tiny")->Arg(1)->Arg(8)->Arg(32)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(decode, small, "cpu-small")
    ->Arg(1)
    ->Arg(8)
    ->Arg(32)
    ->Arg(64)
    ->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
  for (const char* name : {"cpu-tiny", "cpu-small"}) {
    if (const model_spec* s = find_model(name))
      std::printf("%-10s %8.2f M params, %6.2f MFLOP/token at context %u (fp32 weights %.1f MiB)\n",
                  name, static_cast<double>(s->params()) / 1e6,
                  token_flop(*s, prompt_len, true) / 1e6, prompt_len,
                  static_cast<double>(s->params()) * 4 / (1 << 20));
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

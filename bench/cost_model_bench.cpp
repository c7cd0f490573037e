// How fast the cost models answer: a simulation asks once per iteration of
// every instance, so this bounds simulated iterations per second. Counters:
// `modelled_ms` is the iteration time the model predicts (napkin check: a
// Llama-2-70B TP8 H100 decode step of 256 requests at context 2048 should
// read ~43 GB per device: 17 GB of weights at 90 % and 21.5 GB of KV at 82 %
// of 3.35 TB/s, ~13.5 ms, plus 5.6 ms of all-reduce and 5.3 ms of per-layer
// overhead: ~26 ms).
//
//   build-sim/bench/bench_cost_model [--benchmark_filter=Roofline]
#include "device/sim/embedded_profiles.hpp"
#include "device/sim/profile_model.hpp"
#include "device/sim/roofline_model.hpp"

#include <benchmark/benchmark.h>

#include <chrono>

namespace {

using namespace accellm::device;

sim::roofline_model roofline() {
  return std::move(
      *sim::roofline_model::create(*find_model("llama2-70b"), *find_hardware("h100"), {8}));
}

batch decode_batch(std::uint32_t n, std::uint32_t context) {
  batch b;
  for (std::uint32_t i = 0; i < n; ++i) {
    batch_item it;
    it.request = i + 1;
    it.kind = phase::decode;
    it.context = context;
    it.num_tokens = 1;
    b.items.push_back(it);
  }
  return b;
}

void report(benchmark::State& state, const sim::cost_model& m, const batch& b) {
  std::chrono::nanoseconds t{0};
  for (auto _ : state) {
    t = *m.iteration_time(b);
    benchmark::DoNotOptimize(t);
  }
  state.counters["modelled_ms"] = std::chrono::duration<double, std::milli>(t).count();
  state.counters["estimates_per_s"] =
      benchmark::Counter(double(state.iterations()), benchmark::Counter::kIsRate);
}

void Roofline_Decode(benchmark::State& state) {
  const auto m = roofline();
  report(state, m, decode_batch(static_cast<std::uint32_t>(state.range(0)), 2048));
}
BENCHMARK(Roofline_Decode)->Arg(1)->Arg(32)->Arg(256);

void Roofline_Prefill(benchmark::State& state) {
  const auto m = roofline();
  batch b;
  b.items.push_back({1, phase::prefill, 0, static_cast<std::uint32_t>(state.range(0)), {}, true});
  report(state, m, b);
}
BENCHMARK(Roofline_Prefill)->Arg(512)->Arg(2048)->Arg(8192);

void Profile_Decode(benchmark::State& state) {
  const auto* p = sim::find_embedded_profile("h100-splitwise2023");
  const auto m = std::move(*sim::profile_model::create(*sim::parse_profile(p->csv, "bench"), "p"));
  report(state, m, decode_batch(static_cast<std::uint32_t>(state.range(0)), 576));
}
BENCHMARK(Profile_Decode)->Arg(1)->Arg(256);

}  // namespace

BENCHMARK_MAIN();

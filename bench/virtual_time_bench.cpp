// How fast actors/virtual_time runs a simulation: messages and timers per
// second of wall time on one core. The simulator's speed (simulated seconds
// per wall second) follows from this and the messages per simulated request.
//
//   build/release/bench/bench_virtual_time
//
// Napkin math: CAF's testing scheduler delivers one message per
// try_run_once(); the stack notes measured 2.0-3.6 M msg/s for ping-pong and
// ~1.9 M timer messages/s with 1,000 actors, on the 2-core build machine.
#include "actors/atoms.hpp"
#include "actors/system_config.hpp"
#include "actors/virtual_time.hpp"

#include <benchmark/benchmark.h>
#include <caf/all.hpp>

#include <chrono>
#include <cstdint>
#include <vector>

namespace {

using accellm::actors::ping_atom;
using accellm::actors::tick_atom;

// Two actors bounce a counter until it reaches `rounds`.
caf::behavior bouncer(caf::event_based_actor* self, std::int64_t rounds) {
  return {[self, rounds](ping_atom, std::int64_t n, caf::actor peer) {
    if (n < rounds) self->send(peer, ping_atom::value, n + 1, caf::actor_cast<caf::actor>(self));
  }};
}

void BM_ping_pong(benchmark::State& state) {
  const auto rounds = state.range(0);
  for (auto _ : state) {
    accellm::actors::system_config cfg{accellm::actors::clock_mode::virtual_time};
    caf::actor_system sys{cfg};
    auto vt = accellm::actors::virtual_time::attach(sys);
    auto a = sys.spawn(bouncer, rounds);
    auto b = sys.spawn(bouncer, rounds);
    caf::anon_send(a, ping_atom::value, std::int64_t{0}, b);
    benchmark::DoNotOptimize(vt->run());
    std::vector<caf::actor> roots{a, b};
    if (!vt->shutdown(roots)) state.SkipWithError("shutdown failed");
  }
  state.SetItemsProcessed(state.iterations() * rounds);
  state.counters["msg/s"] = benchmark::Counter(static_cast<double>(rounds),
                                               benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_ping_pong)->Arg(200'000)->Unit(benchmark::kMillisecond);

// `actors` actors each re-arm a timer `timers` times with a pseudo-random
// delay: the clock's schedule holds one entry per actor.
caf::behavior ticker(caf::event_based_actor* self, int timers, std::uint64_t seed) {
  auto left = std::make_shared<int>(timers);
  auto x = std::make_shared<std::uint64_t>(seed | 1);
  return {[self, left, x](tick_atom) {
    if (--*left <= 0) return;
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    self->delayed_send(self, std::chrono::microseconds{1 + *x % 10'000}, tick_atom::value);
  }};
}

void BM_timers(benchmark::State& state) {
  const auto actors = static_cast<int>(state.range(0));
  constexpr int timers = 100;
  for (auto _ : state) {
    accellm::actors::system_config cfg{accellm::actors::clock_mode::virtual_time};
    caf::actor_system sys{cfg};
    auto vt = accellm::actors::virtual_time::attach(sys);
    std::vector<caf::actor> all;
    for (int i = 0; i < actors; ++i) {
      all.push_back(sys.spawn(ticker, timers, static_cast<std::uint64_t>(i) * 7919));
      caf::anon_send(all.back(), tick_atom::value);
    }
    benchmark::DoNotOptimize(vt->run());
    if (!vt->shutdown(all)) state.SkipWithError("shutdown failed");
  }
  state.counters["timer msg/s"] = benchmark::Counter(static_cast<double>(actors) * timers,
                                                     benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_timers)->Arg(100)->Arg(1'000)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();

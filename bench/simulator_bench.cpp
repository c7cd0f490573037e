// Simulator speed (issue 4): simulated seconds and requests per wall second
// for 16 instances of 8 H100 running Llama-2-70B under the accellm policy on
// the conversation workload near saturation.
//
//   bench_simulator [rate req/s = 150] [simulated seconds = 3600] [policy = accellm]
//                   [decode_steps = cluster default (16)] [token times = 0]
//
// Token times off (as for a long run): the coordinator keeps each request's
// first and last token time only; 1 keeps every token's time (TBT metrics).
//
// Target: one simulated hour in under 12 wall seconds on the 2-core build
// machine. Napkin math: ~16 instances x ~47 decode steps/s x 3600 s = 2.7 M
// steps and 114 M tokens (540 k requests of 211 tokens); 12 s leaves ~4 us
// per step and ~100 ns per token for everything. One message per step
// (Execute, IterationDone, KvDeltaBatch, IterationReport each) costs ~1 us
// of actor dispatch alone, hence multi-step decoding (decode_steps): one set
// of messages per up to 16 steps.
#include "bench/sim_setup.hpp"
#include "config/cluster_config.hpp"
#include "simulator/sim_cluster.hpp"
#include "workload/generator.hpp"
#include "workload/metrics/summary.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

int main(int argc, char** argv) {
  using namespace accellm;
  const double rate = argc > 1 ? std::atof(argv[1]) : 150.0;
  const double seconds = argc > 2 ? std::atof(argv[2]) : 3600.0;
  const std::string policy = argc > 3 ? argv[3] : "accellm";
  const int decode_steps = argc > 4 ? std::atoi(argv[4]) : 0;    // 0: the cluster default
  const bool token_times = argc > 5 && std::atoi(argv[5]) != 0;  // every token's time (for TBT)
  auto setup = bench::sixteen_h100(rate, seconds, 7);
  if (!setup) {
    std::fprintf(stderr, "%s\n", setup.err().what().c_str());
    return 1;
  }
  simulator::run_options& o = *setup;
  if (decode_steps > 0) o.cluster.batching.decode_steps = static_cast<std::uint32_t>(decode_steps);
  o.policy.name = policy;
  o.token_times = token_times;
  const auto t0 = std::chrono::steady_clock::now();
  auto r = simulator::run_simulation(o);
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!r) {
    std::fprintf(stderr, "%s\n", r.err().what().c_str());
    return 1;
  }
  const double simulated = std::chrono::duration<double>(r->simulated).count();
  const auto sum = metrics::summarize(r->record, {});
  std::printf("policy %s, 16 x sim:h100 tp8 llama2-70b, conv at %.0f req/s for %.0f s\n",
              policy.c_str(), rate, seconds);
  std::printf(
      "requests %zu (completed %zu), iterations %llu, events %llu, drained %s, "
      "trace hash %016llx\n",
      sum.requests, sum.completed, static_cast<unsigned long long>(r->iterations),
      static_cast<unsigned long long>(r->events), r->drained ? "yes" : "no",
      static_cast<unsigned long long>(r->trace_hash));
  std::printf("TTFT mean %.1f ms, JCT mean %.0f ms, idle %.1f %%\n", sum.ttft.mean, sum.jct.mean,
              sum.idle_fraction.value_or(0) * 100);
  std::printf(
      "wall %.2f s: %.0f simulated s per wall s, %.0f requests per wall s, %.2f us per "
      "iteration; one simulated hour takes %.1f wall s\n",
      wall, simulated / wall, static_cast<double>(sum.requests) / wall,
      wall * 1e6 / static_cast<double>(r->iterations), 3600.0 * wall / simulated);
  return 0;
}

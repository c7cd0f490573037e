// The simulated cluster of the simulator benchmarks (bench_simulator,
// bench_tracer): 16 instances of 8 H100 serving Llama-2-70B, a conversation
// workload at `rate` req/s for `seconds`, the accellm policy.
//
// Header-only; plain functions.
#pragma once

#include "common/result.hpp"
#include "config/cluster_config.hpp"
#include "simulator/sim_cluster.hpp"
#include "workload/generator.hpp"

#include <chrono>
#include <cstdint>
#include <utility>

namespace accellm::bench {

inline result<simulator::run_options> sixteen_h100(double rate, double seconds,
                                                   std::uint64_t seed) {
  auto cluster = config::parse_cluster_config(R"(
[cluster]
model = "llama2-70b"
device = "sim:h100"
tp = 8
instances = 16
)",
                                              "bench");
  if (!cluster) return std::move(cluster).err();
  workload::generator_options g;
  g.kind = workload::shape::conversation;
  g.rate = rate;
  g.duration = std::chrono::nanoseconds{static_cast<std::int64_t>(seconds * 1e9)};
  g.seed = seed;
  auto trace = workload::generate(g);
  if (!trace) return std::move(trace).err();
  simulator::run_options o;
  o.cluster = std::move(*cluster);
  o.policy = {.name = "accellm", .chunked_prefill = false, .prompt_instances = 0};
  o.trace = std::move(*trace);
  o.offered_rate = rate;
  return o;
}

}  // namespace accellm::bench

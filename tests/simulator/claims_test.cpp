// The paper's qualitative claims (notes/paper.md section 7, items 1-3) at one
// moderate load on a small cluster: 4 instances of 8 H100 (Llama-2-70B, TP 8)
// on the conversation workload at 30 req/s, every policy on the same
// requests, each baseline at its best setting (simulator/compare).
#include "config/cluster_config.hpp"
#include "simulator/compare.hpp"
#include "workload/generator.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

namespace accellm::simulator {
namespace {

TEST(Claims, AccellmBeatsBothBaselinesAtModerateLoad) {
  auto cluster = config::parse_cluster_config(R"(
[cluster]
model = "llama2-70b"
device = "sim:h100"
tp = 8
instances = 4
[policy.splitwise]
prompt_instances = [1, 2]
)",
                                              "claims");
  ASSERT_TRUE(cluster) << cluster.err().what();
  workload::generator_options g;
  g.kind = workload::shape::conversation;
  g.rate = 30;
  g.duration = std::chrono::seconds(30);
  g.seed = 11;
  SCOPED_TRACE("seed 11");
  auto trace = workload::generate(g);
  ASSERT_TRUE(trace) << trace.err().what();
  compare_options o;
  o.cluster = *cluster;
  o.trace = *trace;
  o.offered_rate = g.rate;
  auto runs = compare(o);
  ASSERT_TRUE(runs) << runs.err().what();
  ASSERT_EQ(runs->size(), 3u);
  const auto& vllm = (*runs)[0].best_summary;
  const auto& splitwise = (*runs)[1].best_summary;
  const auto& accellm = (*runs)[2].best_summary;
  for (const auto& r : *runs) {
    EXPECT_TRUE(r.best.drained) << r.best.record.policy;
    EXPECT_EQ(r.best_summary.completed, trace->size()) << r.best.record.policy;
  }
  // Item 3: no prefill ever joins a decode batch, so the TBT tail stays low.
  EXPECT_LT(accellm.tbt.p99, vllm.tbt.p99);
  EXPECT_LT(accellm.tbt.p99, splitwise.tbt.p99);
  // Item 1: lower mean job completion time than either baseline.
  EXPECT_LT(accellm.jct.mean, vllm.jct.mean);
  EXPECT_LT(accellm.jct.mean, splitwise.jct.mean);
  // Item 2: the pools of Splitwise sit idle; AcceLLM's pairs do not.
  ASSERT_TRUE(accellm.idle_fraction && splitwise.idle_fraction);
  EXPECT_LT(*accellm.idle_fraction, *splitwise.idle_fraction);
}

}  // namespace
}  // namespace accellm::simulator

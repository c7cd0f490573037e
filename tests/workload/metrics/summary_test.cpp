#include "workload/metrics/summary.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace accellm::metrics {
namespace {

using namespace std::chrono_literals;

// Designated initializers would warn (-Wmissing-field-initializers) as
// fields are appended, so records are built field by field.
request_record request(request_id id, std::uint32_t prompt, std::uint32_t max, nanos arrival) {
  request_record r;
  r.id = id;
  r.prompt_tokens = prompt;
  r.max_tokens = max;
  r.arrival = arrival;
  return r;
}

slo_options slo(double ttft_ms, double tbt_ms) {
  slo_options o;
  o.ttft_ms = ttft_ms;
  o.tbt_ms = tbt_ms;
  return o;
}

instance_record instance(instance_id id, std::string name, std::string pool, nanos busy) {
  instance_record i;
  i.id = id;
  i.name = std::move(name);
  i.pool = std::move(pool);
  i.busy = busy;
  return i;
}

constexpr double eps = 1e-9;

// Four requests with hand-checkable times (ms):
//   r1 arrives 0, tokens 100 120 140 160, done; baselines 50 / 20
//   r2 arrives 10, tokens 60 90, done; baselines 25 / 10
//   r3 arrives 20, one token at 320, done; baselines unknown
//   r4 arrives 30, tokens 200 240 of 5, unfinished; baselines 100 / 10
run_record four_requests() {
  run_record run;
  run.policy = "accellm";
  run.makespan = 400ms;
  request_record r1 = request(1, 8, 4, 0ms);
  r1.token_times = {100ms, 120ms, 140ms, 160ms};
  r1.first_token = 100ms;
  r1.finish = 160ms;
  r1.completed = true;
  r1.baseline_ttft = 50ms;
  r1.baseline_tbt = 20ms;
  r1.moves = 1;
  request_record r2 = request(2, 8, 2, 10ms);
  r2.token_times = {60ms, 90ms};
  r2.first_token = 60ms;
  r2.finish = 90ms;
  r2.completed = true;
  r2.baseline_ttft = 25ms;
  r2.baseline_tbt = 10ms;
  request_record r3 = request(3, 8, 1, 20ms);
  r3.token_times = {320ms};
  r3.first_token = 320ms;
  r3.finish = 320ms;
  r3.completed = true;
  request_record r4 = request(4, 8, 5, 30ms);
  r4.token_times = {200ms, 240ms};
  r4.first_token = 200ms;
  r4.baseline_ttft = 100ms;
  r4.baseline_tbt = 10ms;
  r4.moves = 2;
  run.requests = {r1, r2, r3, r4};
  return run;
}

// Two instances over 400 ms: busy 300 and 100 ms, replicas up to 30 of 100.
void add_instances(run_record& run) {
  instance_record i0 = instance(0, "i0", "pair0", 300ms);
  i0.total_blocks = 100;
  i0.memory = {{0ms, 10, 5}, {100ms, 40, 30}};
  i0.price_per_hour = 10;
  i0.power_watts = 700;
  i0.kv_bytes_sent = 1000;
  i0.replicas_evicted = 2;
  i0.preemptions = 1;
  instance_record i1 = instance(1, "i1", "pair0", 100ms);
  i1.total_blocks = 200;
  i1.memory = {{50ms, 20, 50}};
  i1.price_per_hour = 20;
  i1.power_watts = 1300;
  i1.kv_bytes_sent = 500;
  i1.replicas_evicted = 3;
  run.instances = {i0, i1};
}

const slowdown_slo& check(const summary& s, const std::string& metric, double p) {
  const auto it = std::find_if(s.slowdown.begin(), s.slowdown.end(), [&](const slowdown_slo& c) {
    return c.metric == metric && c.percentile == p;
  });
  EXPECT_NE(it, s.slowdown.end()) << metric << " p" << p;
  return *it;
}

TEST(Describe, OneToHundredMatchesNumpy) {
  std::vector<double> v(100);
  std::iota(v.begin(), v.end(), 1.0);
  std::mt19937 rng(7);  // order must not matter
  std::shuffle(v.begin(), v.end(), rng);
  const stats s = describe(v);
  EXPECT_EQ(s.count, 100u);
  EXPECT_NEAR(s.mean, 50.5, eps);
  EXPECT_NEAR(s.p50, 50.5, eps);  // numpy.percentile(range(1, 101), 50)
  EXPECT_NEAR(s.p90, 90.1, eps);
  EXPECT_NEAR(s.p99, 99.01, eps);
  EXPECT_EQ(s.max, 100.0);
}

TEST(Describe, EmptyAndSingle) {
  const stats e = describe({});
  EXPECT_EQ(e.count, 0u);
  EXPECT_EQ(e.mean, 0);
  EXPECT_EQ(e.p99, 0);
  EXPECT_EQ(e.max, 0);
  const stats one = describe({4.5});
  EXPECT_EQ(one.count, 1u);
  EXPECT_EQ(one.p50, 4.5);
  EXPECT_EQ(one.p99, 4.5);
}

TEST(Percentile, InfinityPropagatesWithoutNan) {
  const double inf = std::numeric_limits<double>::infinity();
  const std::vector<double> v{1, 2, inf};
  EXPECT_EQ(percentile(v, 50), 2);
  EXPECT_EQ(percentile(v, 90), inf);
  EXPECT_EQ(percentile(v, 0), 1);
}

TEST(Summarize, LatenciesByHand) {
  const summary s = summarize(four_requests(), {});
  EXPECT_EQ(s.requests, 4u);
  EXPECT_EQ(s.completed, 3u);
  EXPECT_NEAR(s.duration_s, 0.4, eps);
  EXPECT_NEAR(s.throughput_rps, 7.5, eps);
  EXPECT_NEAR(s.output_tok_per_s, 22.5, eps);  // 4 + 2 + 1 + 2 tokens
  // TTFT 100, 50, 300, 170.
  EXPECT_EQ(s.ttft.count, 4u);
  EXPECT_NEAR(s.ttft.mean, 155, eps);
  EXPECT_NEAR(s.ttft.p50, 135, eps);
  EXPECT_NEAR(s.ttft.p90, 261, eps);
  EXPECT_NEAR(s.ttft.p99, 296.1, eps);
  EXPECT_NEAR(s.ttft.max, 300, eps);
  // Gaps 20, 20, 20, 30, 40 (r4's gap counts though it is unfinished).
  EXPECT_EQ(s.tbt.count, 5u);
  EXPECT_NEAR(s.tbt.mean, 26, eps);
  EXPECT_NEAR(s.tbt.p50, 20, eps);
  EXPECT_NEAR(s.tbt.p90, 36, eps);
  EXPECT_NEAR(s.tbt.p99, 39.6, eps);
  EXPECT_NEAR(s.tbt.max, 40, eps);
  // TPOT of finished multi-token requests: 20, 30.
  EXPECT_EQ(s.tpot.count, 2u);
  EXPECT_NEAR(s.tpot.mean, 25, eps);
  EXPECT_NEAR(s.tpot.p90, 29, eps);
  // JCT of finished requests: 160, 80, 300.
  EXPECT_EQ(s.jct.count, 3u);
  EXPECT_NEAR(s.jct.mean, 180, eps);
  EXPECT_NEAR(s.jct.p50, 160, eps);
  EXPECT_NEAR(s.jct.p90, 272, eps);
  EXPECT_NEAR(s.jct.p99, 297.2, eps);
  EXPECT_EQ(s.moves, 3u);
}

// TTFT slowdowns 2, 2, 1.7 (r3 has no baseline); TBT slowdowns 1, 1, 1, 3,
// 4; E2E slowdowns 160/110, 80/35 and infinity for unfinished r4.
TEST(Summarize, SplitwiseSlowdowns) {
  const summary s = summarize(four_requests(), {});
  ASSERT_EQ(s.slowdown.size(), 9u);
  EXPECT_NEAR(check(s, "ttft", 50).measured, 2.0, eps);
  EXPECT_TRUE(check(s, "ttft", 50).met);  // at the 2x limit
  EXPECT_EQ(check(s, "ttft", 90).target, 3.0);
  EXPECT_TRUE(check(s, "ttft", 99).met);
  EXPECT_NEAR(check(s, "tbt", 50).measured, 1.0, eps);
  EXPECT_TRUE(check(s, "tbt", 50).met);
  EXPECT_NEAR(check(s, "tbt", 90).measured, 3.6, eps);
  EXPECT_FALSE(check(s, "tbt", 90).met);
  EXPECT_NEAR(check(s, "tbt", 99).measured, 3.96, eps);
  EXPECT_TRUE(check(s, "tbt", 99).met);
  EXPECT_NEAR(check(s, "e2e", 50).measured, 80.0 / 35.0, eps);
  EXPECT_FALSE(check(s, "e2e", 50).met);
  EXPECT_TRUE(std::isinf(check(s, "e2e", 99).measured));
  EXPECT_FALSE(s.slowdown_all_met);
}

TEST(Summarize, AllSlowdownsMetWhenUncontended) {
  run_record run;
  run.makespan = 1s;
  request_record r = request(1, 0, 3, 0ms);
  r.token_times = {10ms, 15ms, 20ms};
  r.first_token = 10ms;
  r.finish = 20ms;
  r.completed = true;
  r.baseline_ttft = 10ms;
  r.baseline_tbt = 5ms;
  run.requests = {r};
  const summary s = summarize(run, {});
  EXPECT_TRUE(s.slowdown_all_met);
  for (const slowdown_slo& c : s.slowdown) EXPECT_NEAR(c.measured, 1.0, eps) << c.metric;
  // Without baselines nothing can be checked, so nothing is met.
  run.requests[0].baseline_ttft = 0ms;
  run.requests[0].baseline_tbt = 0ms;
  EXPECT_FALSE(summarize(run, {}).slowdown_all_met);
}

TEST(Summarize, AttainmentCountsUnfinishedAsFailing) {
  const run_record run = four_requests();
  EXPECT_EQ(summarize(run, {}).attainment, 1.0);  // no SLO set
  // r1 meets both; r2 TPOT 30 > 25; r3 TTFT 300 > 150; r4 unfinished.
  EXPECT_NEAR(summarize(run, slo(150, 25)).attainment, 0.25, eps);
  // TTFT only: all three finished ones pass, r4 still fails.
  EXPECT_NEAR(summarize(run, slo(400, 0)).attainment, 0.75, eps);
  // TBT only: r1 and the one-token r3 pass.
  EXPECT_NEAR(summarize(run, slo(0, 25)).attainment, 0.5, eps);
}

TEST(Summarize, InstancesIdleCostAndReplicas) {
  run_record run = four_requests();
  add_instances(run);
  const summary s = summarize(run, {});
  EXPECT_NEAR(s.idle_fraction.value_or(-1), 0.5, eps);  // (0.25 + 0.75) / 2
  EXPECT_NEAR(s.peak_replica_fraction, 0.3, eps);
  EXPECT_NEAR(s.price_per_hour, 30, eps);
  EXPECT_NEAR(s.power_kw, 2.0, eps);
  EXPECT_EQ(s.kv_bytes_sent, 1500u);
  EXPECT_EQ(s.replicas_evicted, 5u);
  EXPECT_EQ(s.preemptions, 1u);
  // Busy longer than the makespan (an iteration past the end) is not negative idle.
  run.instances[1].busy = 500ms;
  EXPECT_NEAR(summarize(run, {}).idle_fraction.value_or(-1), 0.125, eps);
  // Iterations without busy time (a live instance whose coordinator does not
  // export it): not counted as idle; none known, no idle fraction.
  run.instances[0].busy = 0ms;
  run.instances[0].iterations = 10;
  EXPECT_NEAR(summarize(run, {}).idle_fraction.value_or(-1), 0.0, eps);  // instance 1 alone
  run.instances[1].busy = 0ms;
  run.instances[1].iterations = 10;
  EXPECT_FALSE(summarize(run, {}).idle_fraction.has_value());
}

TEST(Summarize, EmptyRunIsAllZeros) {
  const summary s = summarize(run_record{}, slo(100, 0));
  EXPECT_EQ(s.requests, 0u);
  EXPECT_EQ(s.throughput_rps, 0);
  EXPECT_EQ(s.attainment, 0);
  EXPECT_FALSE(s.idle_fraction.has_value());
  EXPECT_EQ(s.slowdown.size(), 9u);
}

}  // namespace
}  // namespace accellm::metrics

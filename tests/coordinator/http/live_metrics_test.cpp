// live_metrics from hand-made IterationReports and request timelines: the
// values must show up in the rendered exposition.
#include "coordinator/http/live_metrics.hpp"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

namespace accellm::coordinator::http {
namespace {

constexpr std::uint64_t ms = 1'000'000;  // ns

bool has_line(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos || text.rfind(line + "\n", 0) == 0;
}

std::size_t occurrences(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

messages::iteration_report report(instance_id id, std::uint32_t decodes, std::uint32_t prefill) {
  messages::iteration_report r;
  r.instance = id;
  r.role = messages::role::mixed;
  r.decode_requests = decodes;
  r.prefill_tokens = prefill;
  r.load.instance = id;
  r.load.kv_blocks_total = 100;
  r.load.primary_blocks = 10;
  r.load.replica_blocks = 4;
  r.load.free_blocks = 86;
  r.load.kv_bytes_sent = 5000;
  r.load.kv_bytes_shared = 1000;
  r.load.kv_bytes_copied = 300;
  r.load.kv_bytes_dropped = 700;
  r.load.iterations = 7;
  r.load.busy_ns = 2500 * ms;
  r.duration_ns = 40 * ms;
  return r;
}

request_timeline finished(request_id id, std::vector<std::uint64_t> token_ns) {
  request_timeline t;
  t.id = id;
  t.prompt_len = 12;
  t.max_tokens = 3;
  t.arrival_ns = 0;
  t.tokens = static_cast<std::uint32_t>(token_ns.size());
  t.first_token_ns = token_ns.front();
  t.last_token_ns = token_ns.back();
  t.token_ns = std::move(token_ns);
  t.completed = true;
  return t;
}

TEST(LiveMetrics, RequestCountersAndLatencyHistograms) {
  live_metrics m;
  m.on_accepted(1);
  m.on_accepted(1);
  m.on_finished(finished(1, {20 * ms, 30 * ms, 45 * ms}));
  request_timeline failed;
  failed.id = 2;
  failed.prompt_len = 5;
  m.on_finished(failed);
  m.on_takeover(
      {.request = 3, .lost = 0, .to = 1, .from_replica = true, .context_len = 40, .time_ns = 0});
  m.on_takeover(
      {.request = 4, .lost = 0, .to = 2, .from_replica = false, .context_len = 40, .time_ns = 0});
  m.on_takeover(
      {.request = 5, .lost = 0, .to = 2, .from_replica = false, .context_len = 0, .time_ns = 0});
  m.on_takeover(
      {.request = 6, .lost = 0, .to = 1, .from_replica = true, .context_len = 9, .time_ns = 0});
  m.on_resumed(3, 4 * ms);
  const std::string text = m.render();
  SCOPED_TRACE(text);
  EXPECT_TRUE(has_line(text, "accellm_requests_submitted_total 2"));
  EXPECT_TRUE(has_line(text, "accellm_requests_finished_total 1"));
  EXPECT_TRUE(has_line(text, "accellm_requests_failed_total 1"));
  EXPECT_TRUE(has_line(text, "accellm_prompt_tokens_total 17"));
  EXPECT_TRUE(has_line(text, "accellm_generation_tokens_total 3"));
  EXPECT_TRUE(has_line(text, "accellm_takeovers_total{resumed_from=\"replica\"} 2"));
  EXPECT_TRUE(has_line(text, "accellm_takeovers_total{resumed_from=\"recompute\"} 1"));
  EXPECT_TRUE(has_line(text, "accellm_takeovers_total{resumed_from=\"prompt\"} 1"));
  EXPECT_TRUE(has_line(text, "accellm_takeover_resume_seconds_bucket{le=\"0.005\"} 1"));
  EXPECT_TRUE(has_line(text, "accellm_takeover_resume_seconds_count 1"));
  // TTFT 20 ms.
  EXPECT_TRUE(has_line(text, "accellm_time_to_first_token_seconds_bucket{le=\"0.01\"} 0"));
  EXPECT_TRUE(has_line(text, "accellm_time_to_first_token_seconds_bucket{le=\"0.025\"} 1"));
  EXPECT_TRUE(has_line(text, "accellm_time_to_first_token_seconds_count 1"));
  // TBT 10 ms and 15 ms.
  EXPECT_TRUE(has_line(text, "accellm_inter_token_latency_seconds_bucket{le=\"0.01\"} 1"));
  EXPECT_TRUE(has_line(text, "accellm_inter_token_latency_seconds_bucket{le=\"0.025\"} 2"));
  EXPECT_TRUE(has_line(text, "accellm_inter_token_latency_seconds_count 2"));
  // JCT 45 ms, of the completed request only.
  EXPECT_TRUE(has_line(text, "accellm_e2e_request_latency_seconds_bucket{le=\"0.025\"} 0"));
  EXPECT_TRUE(has_line(text, "accellm_e2e_request_latency_seconds_bucket{le=\"0.05\"} 1"));
  EXPECT_TRUE(has_line(text, "accellm_e2e_request_latency_seconds_sum 0.045"));
  EXPECT_TRUE(has_line(text, "accellm_e2e_request_latency_seconds_bucket{le=\"+Inf\"} 1"));
  EXPECT_TRUE(has_line(text, "# TYPE accellm_e2e_request_latency_seconds histogram"));
}

TEST(LiveMetrics, NoTbtWithoutTokenTimes) {
  live_metrics m;
  request_timeline t = finished(1, {10 * ms, 50 * ms});
  t.token_ns.clear();
  m.on_finished(t);
  const std::string text = m.render();
  EXPECT_TRUE(has_line(text, "accellm_inter_token_latency_seconds_count 0")) << text;
  EXPECT_TRUE(has_line(text, "accellm_time_to_first_token_seconds_count 1")) << text;
}

TEST(LiveMetrics, PerInstanceGauges) {
  live_metrics m;
  m.set_instance(0, "w1", 1024);
  m.on_role(0, messages::role::decode, "pair0", 5);
  messages::iteration_report dropping = report(0, 3, 100);
  dropping.evicted_replicas = {41, 42};
  m.on_iteration(dropping);
  dropping.evicted_replicas = {43};
  m.on_iteration(dropping);
  const std::string text = m.render();
  SCOPED_TRACE(text);
  EXPECT_TRUE(has_line(text, "accellm_instances 1"));
  EXPECT_TRUE(has_line(text, "accellm_instance_replicas_dropped_total{instance=\"w1\"} 3"));
  EXPECT_TRUE(has_line(text, "accellm_instance_role{instance=\"w1\",role=\"decode\"} 1"));
  EXPECT_TRUE(has_line(text, "accellm_instance_role{instance=\"w1\",role=\"prefill\"} 0"));
  EXPECT_TRUE(has_line(text, "accellm_instance_role{instance=\"w1\",role=\"mixed\"} 0"));
  EXPECT_TRUE(has_line(text, "accellm_instance_batch_decode_requests{instance=\"w1\"} 3"));
  EXPECT_TRUE(has_line(text, "accellm_instance_batch_prefill_tokens{instance=\"w1\"} 100"));
  EXPECT_TRUE(has_line(text, "accellm_instance_kv_bytes{instance=\"w1\",copy=\"primary\"} 10240"));
  EXPECT_TRUE(has_line(text, "accellm_instance_kv_bytes{instance=\"w1\",copy=\"replica\"} 4096"));
  EXPECT_TRUE(has_line(text, "accellm_kv_cache_usage_perc{instance=\"w1\"} 0.14"));
  EXPECT_TRUE(has_line(text, "accellm_instance_kv_sent_bytes_total{instance=\"w1\"} 5000"));
  EXPECT_TRUE(has_line(text, "accellm_instance_kv_shared_bytes_total{instance=\"w1\"} 1000"));
  EXPECT_TRUE(has_line(text, "accellm_instance_kv_copied_bytes_total{instance=\"w1\"} 300"));
  EXPECT_TRUE(has_line(text, "accellm_instance_kv_dropped_bytes_total{instance=\"w1\"} 700"));
  EXPECT_TRUE(has_line(text, "accellm_instance_iterations_total{instance=\"w1\"} 7"));
  EXPECT_TRUE(has_line(text, "accellm_instance_busy_seconds_total{instance=\"w1\"} 2.5"));
}

// Busy time is the worker's running total (load.busy_ns), not the sum of the
// reports' duration_ns seen here; a rejoin under a new id with the same name
// starts one fresh series (a counter reset), never a second one.
TEST(LiveMetrics, BusySecondsFollowTheWorkersTotalAndRestartOnRejoin) {
  live_metrics m;
  m.on_joined(0, "w0", 1024);
  std::string text = m.render();
  EXPECT_EQ(text.find("accellm_instance_busy_seconds_total"), std::string::npos)
      << "no series before the first report\n"
      << text;
  messages::iteration_report r = report(0, 1, 0);
  r.load.busy_ns = 1500 * ms;
  m.on_iteration(r);
  r.load.busy_ns = 2250 * ms;  // this report's duration_ns is 40 ms: not added
  m.on_iteration(r);
  text = m.render();
  EXPECT_TRUE(has_line(text, "accellm_instance_busy_seconds_total{instance=\"w0\"} 2.25")) << text;
  EXPECT_TRUE(has_line(text, "# TYPE accellm_instance_busy_seconds_total counter")) << text;
  m.on_lost(0);
  EXPECT_EQ(m.render().find("accellm_instance_busy_seconds_total{"), std::string::npos)
      << m.render();
  m.on_joined(1, "w0", 1024);
  r = report(1, 1, 0);
  r.load.busy_ns = 125 * ms;
  m.on_iteration(r);
  text = m.render();
  EXPECT_TRUE(has_line(text, "accellm_instance_busy_seconds_total{instance=\"w0\"} 0.125")) << text;
  EXPECT_EQ(occurrences(text, "accellm_instance_busy_seconds_total{"), 1u) << text;
}

// /health's count: instances that joined and were not lost since.
TEST(LiveMetrics, LiveInstancesCountJoinsLessLosses) {
  live_metrics m;
  EXPECT_EQ(m.live_instances(), 0u);
  m.on_joined(0, "w0", 1024);
  m.on_joined(1, "w1", 1024);
  m.on_iteration(report(2, 1, 0));  // a report alone is no join
  EXPECT_EQ(m.live_instances(), 2u);
  m.on_lost(0);
  m.on_lost(0);  // once only
  EXPECT_EQ(m.live_instances(), 1u);
  EXPECT_TRUE(has_line(m.render(), "accellm_instances_lost_total 1")) << m.render();
}

// Fencing: late messages from lost instances are counted, whatever their type.
TEST(LiveMetrics, FencedMessagesAreCounted) {
  live_metrics m;
  EXPECT_TRUE(has_line(m.render(), "accellm_fenced_messages_total 0")) << m.render();
  observer& obs = m;
  obs.on_fenced(2, messages::msg_type::iteration_report);
  obs.on_fenced(2, messages::msg_type::request_done);
  EXPECT_TRUE(has_line(m.render(), "accellm_fenced_messages_total 2")) << m.render();
}

TEST(LiveMetrics, UnnamedInstancesUseTheirIdAndCanBeRemoved) {
  live_metrics m;
  m.set_instance(0, "w1", 1024);
  m.on_iteration(report(0, 1, 0));
  m.on_iteration(report(5, 2, 0));  // reports before registering
  std::string text = m.render();
  EXPECT_TRUE(has_line(text, "accellm_instances 2")) << text;
  EXPECT_TRUE(has_line(text, "accellm_instance_batch_decode_requests{instance=\"5\"} 2")) << text;
  EXPECT_TRUE(has_line(text, "accellm_instance_kv_bytes{instance=\"5\",copy=\"primary\"} 0"))
      << text;
  // The role from the report until on_role says otherwise.
  EXPECT_TRUE(has_line(text, "accellm_instance_role{instance=\"5\",role=\"mixed\"} 1")) << text;
  EXPECT_EQ(occurrences(text, "# TYPE accellm_instance_role gauge"), 1u) << text;
  m.remove_instance(5);
  text = m.render();
  EXPECT_TRUE(has_line(text, "accellm_instances 1")) << text;
  EXPECT_EQ(text.find("instance=\"5\""), std::string::npos) << text;
  EXPECT_NE(text.find("instance=\"w1\""), std::string::npos) << text;
}

TEST(LiveMetrics, TheCoordinatorNamesAndForgetsInstancesAsAnObserver) {
  live_metrics m;
  observer& obs = m;
  obs.on_joined(3, "gpu-a", 2048);
  obs.on_iteration(report(3, 1, 0));
  std::string text = m.render();
  EXPECT_TRUE(
      has_line(text, "accellm_instance_kv_bytes{instance=\"gpu-a\",copy=\"primary\"} 20480"))
      << text;
  obs.on_lost(3);
  text = m.render();
  EXPECT_TRUE(has_line(text, "accellm_instances 0")) << text;
  EXPECT_EQ(text.find("gpu-a"), std::string::npos) << text;
}

TEST(LiveMetrics, CallsFromManyThreadsAreAllCounted) {
  live_metrics m;
  constexpr int threads = 4;
  constexpr int calls = 2000;
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&m] {
      for (int i = 0; i < calls; ++i) {
        m.on_accepted(1);
        if (i % 100 == 0) (void)m.render();
      }
    });
  }
  for (int i = 0; i < calls; ++i) m.on_iteration(report(static_cast<instance_id>(i % 3), 1, 0));
  for (std::thread& t : pool) t.join();
  EXPECT_TRUE(has_line(m.render(), "accellm_requests_submitted_total 8000"));
}

}  // namespace
}  // namespace accellm::coordinator::http

// sim_helpers: cluster files, traces and record checks shared by the
// simulator tests.
//
// Plain functions; each test builds its own cluster and trace.
#pragma once

#include "config/cluster_config.hpp"
#include "simulator/sim_cluster.hpp"
#include "workload/request_spec.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <string>

namespace accellm::simulator::testing {

/// A cluster of `instances` instances of `device` running `model` at `tp`.
inline config::cluster_config cluster(std::uint32_t instances,
                                      const std::string& model = "llama2-70b", std::uint32_t tp = 8,
                                      const std::string& device = "sim:h100") {
  const std::string toml = "[cluster]\nmodel = \"" + model + "\"\ndevice = \"" + device +
                           "\"\ntp = " + std::to_string(tp) +
                           "\ninstances = " + std::to_string(instances) + "\n";
  auto c = config::parse_cluster_config(toml, "test");
  EXPECT_TRUE(c.ok()) << (c ? "" : c.err().what());
  return c ? *c : config::cluster_config{};
}

/// `n` identical requests, `gap` apart, the first at `gap`.
inline workload::trace spaced(std::size_t n, std::chrono::nanoseconds gap, std::uint32_t prompt,
                              std::uint32_t output) {
  workload::trace t;
  for (std::size_t i = 0; i < n; ++i) {
    t.push_back({.id = i + 1,
                 .arrival = gap * static_cast<std::int64_t>(i + 1),
                 .prompt_tokens = prompt,
                 .output_tokens = output});
  }
  return t;
}

/// Two instances and 20 overlapping requests (20 ms apart, each ~0.5 s), so
/// that prefill, decode, copies and moves interleave: a run of milliseconds.
inline run_options two_instances_twenty_requests(const std::string& policy) {
  run_options o;
  o.cluster = cluster(2);
  o.policy.name = policy;
  o.trace = spaced(20, std::chrono::milliseconds{20}, 300, 12);
  return o;
}

/// Every request of `trace` finished with all of its tokens, in order.
inline void expect_all_completed(const run_result& r, const workload::trace& trace) {
  EXPECT_TRUE(r.drained);
  ASSERT_EQ(r.record.requests.size(), trace.size());
  const auto n = static_cast<instance_id>(r.record.instances.size());
  for (std::size_t i = 0; i < trace.size(); ++i) {
    const metrics::request_record& q = r.record.requests[i];
    SCOPED_TRACE("request " + std::to_string(q.id));
    ASSERT_EQ(q.id, trace[i].id);
    EXPECT_TRUE(q.completed);
    EXPECT_EQ(q.prompt_tokens, trace[i].prompt_tokens);
    EXPECT_EQ(q.max_tokens, trace[i].output_tokens);
    EXPECT_EQ(metrics::output_tokens(q), trace[i].output_tokens);
    EXPECT_EQ(q.arrival, trace[i].arrival);
    EXPECT_GT(q.first_token, q.arrival);
    EXPECT_GE(q.finish, q.first_token);
    EXPECT_LT(q.prefill_instance, n);
    EXPECT_LT(q.decode_instance, n);
    for (std::size_t k = 1; k < q.token_times.size(); ++k) {
      EXPECT_LE(q.token_times[k - 1], q.token_times[k]) << "token " << k;
    }
  }
}

}  // namespace accellm::simulator::testing

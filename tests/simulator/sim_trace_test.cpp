// The message trace of a simulated run (simulate --trace): tracing leaves the
// run as it was, records every request's messages and every iteration, and
// its Perfetto export holds a known request's story.
#include "actors/tracer.hpp"
#include "simulator/sim_cluster.hpp"
#include "tests/simulator/sim_helpers.hpp"
#include "tests/support/temp_dir.hpp"
#include "tracing/merge.hpp"
#include "tracing/perfetto.hpp"
#include "workload/generator.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <string>

namespace accellm::simulator {
namespace {

using messages::msg_type;
using messages::trace_kind;
using namespace std::chrono_literals;

run_options small_run() {
  run_options o;
  o.cluster = testing::cluster(4);
  workload::generator_options g;
  g.kind = workload::shape::conversation;
  g.rate = 3.0;
  g.duration = 4s;
  g.seed = 5;
  auto t = workload::generate(g);
  EXPECT_TRUE(t.ok());
  if (t.ok()) o.trace = *t;
  o.policy = {.name = "accellm", .chunked_prefill = false, .prompt_instances = 0};
  return o;
}

class SimTrace : public ::testing::Test {
 protected:
  accellm::testing::temp_dir dir_;
  std::string file_ = dir_.file("run.trace");
};

std::uint16_t type(msg_type t) {
  return static_cast<std::uint16_t>(t);
}

TEST_F(SimTrace, TracingLeavesTheRunAsItWasAndRecordsEveryRequest) {
  run_options o = small_run();
  ASSERT_GE(o.trace.size(), 5u);
  auto plain = run_simulation(o);
  ASSERT_TRUE(plain) << plain.err().what();
  o.trace_file = file_;
  auto traced = run_simulation(o);
  ASSERT_TRUE(traced) << traced.err().what();
  EXPECT_EQ(traced->trace_hash, plain->trace_hash);
  EXPECT_EQ(traced->iterations, plain->iterations);
  EXPECT_EQ(plain->traced, 0u);

  auto log = actors::read_trace_log(file_);
  ASSERT_TRUE(log) << log.err().what();
  EXPECT_EQ(log->clock, "virtual");
  EXPECT_EQ(log->node, "sim");
  EXPECT_TRUE(log->complete);
  EXPECT_EQ(log->dropped, 0u);
  EXPECT_EQ(log->events.size(), traced->traced);

  std::uint64_t spans = 0, samples = 0, reports = 0, copies = 0;
  std::map<request_id, std::set<std::uint16_t>> seen;  // message types per request
  for (const auto& e : log->events) {
    if (e.kind == trace_kind::iteration_span) {
      ++spans;
      EXPECT_EQ(e.sender, "im:" + std::to_string(e.instance));
      EXPECT_EQ(e.sender_node, "i" + std::to_string(e.instance));
      EXPECT_GT(e.duration_ns, 0u);
      continue;
    }
    if (e.kind == trace_kind::clock_sample) {
      ++samples;
      continue;
    }
    ASSERT_EQ(e.kind, trace_kind::message);
    if (e.request != 0) seen[e.request].insert(e.message_type);
    if (e.message_type == type(msg_type::iteration_report)) ++reports;
    if (e.message_type == type(msg_type::kv_delta_batch) && e.sender.starts_with("worker:")) {
      ++copies;
      EXPECT_TRUE(e.receiver.starts_with("kv:")) << e.receiver;
      EXPECT_GT(e.bytes, 0u);
      EXPECT_GT(e.duration_ns, 0u) << "a simulated KV copy has a modelled transit";
    }
  }
  // One span and one IterationReport per iteration (a multi-step one runs
  // several of the decode steps run_result counts); a clock sample per report.
  EXPECT_GT(spans, 0u);
  EXPECT_LE(spans, traced->iterations);
  EXPECT_EQ(reports, spans);
  EXPECT_EQ(samples, reports);
  EXPECT_GT(copies, 0u);
  for (const auto& r : o.trace) {
    SCOPED_TRACE("request " + std::to_string(r.id));
    const auto& types = seen[r.id];
    EXPECT_TRUE(types.contains(type(msg_type::submit_request)));
    EXPECT_TRUE(types.contains(type(msg_type::assign_prefill)));
    EXPECT_TRUE(types.contains(type(msg_type::request_done)));
  }
}

TEST_F(SimTrace, ThePerfettoExportHoldsAKnownRequestsStory) {
  run_options o = small_run();
  o.trace_file = file_;
  auto r = run_simulation(o);
  ASSERT_TRUE(r) << r.err().what();
  auto m = tracing::load({file_}, {});
  ASSERT_TRUE(m) << m.err().what();
  // Through text, as a viewer gets it.
  const auto json = nlohmann::json::parse(tracing::perfetto_json(*m).dump());
  ASSERT_TRUE(json.contains("traceEvents"));

  const request_id known = o.trace.front().id;
  std::ostringstream hex;
  hex << "0x" << std::hex << known;
  int begins = 0, ends = 0, iterations = 0;
  std::set<std::string> phases;
  std::map<std::string, int> flows;  // bind id -> out (+1) and in (+2)
  std::set<std::string> iteration_threads;
  std::map<std::pair<int, int>, std::string> thread_names;
  for (const auto& e : json["traceEvents"]) {
    const std::string ph = e.value("ph", "");
    if (ph == "M" && e.value("name", "") == "thread_name") {
      thread_names[{e.value("pid", -1), e.value("tid", -1)}] = e["args"].value("name", "");
    }
    if ((ph == "b" || ph == "e") && e.value("cat", "") == "request") {
      const auto id = e["id"].is_string() ? e["id"].get<std::string>() : e["id"].dump();
      if (id != hex.str() && id != std::to_string(known)) continue;
      (ph == "b" ? begins : ends) += 1;
      phases.insert(e.value("name", ""));
    }
    if (ph == "X" && e.value("cat", "") == "iteration") {
      ++iterations;
      iteration_threads.insert(std::to_string(e.value("pid", -1)) + "/" +
                               std::to_string(e.value("tid", -1)));
    }
    if (ph == "X" && e.contains("bind_id")) {
      const std::string bind = e["bind_id"].dump();
      if (e.value("flow_out", false)) flows[bind] += 1;
      if (e.value("flow_in", false)) flows[bind] += 2;
    }
  }
  // The request: an async span with its phases, each begun and ended.
  EXPECT_GE(begins, 3) << "the request and at least its queued, prefill and decode phases";
  EXPECT_EQ(begins, ends);
  EXPECT_TRUE(phases.contains("queued")) << "phases seen: " << phases.size();
  EXPECT_TRUE(phases.contains("prefill"));
  EXPECT_TRUE(phases.contains("decode"));
  // Every iteration is on an instance's track; four instances, four tracks.
  std::size_t spans = 0;
  for (const auto& e : m->events) spans += e.ev.kind == trace_kind::iteration_span ? 1 : 0;
  EXPECT_GT(spans, 0u);
  EXPECT_EQ(static_cast<std::size_t>(iterations), spans);
  EXPECT_EQ(iteration_threads.size(), 4u);
  // KV copies and moves are flows whose both ends exist.
  ASSERT_FALSE(flows.empty());
  for (const auto& [bind, ends_seen] : flows) EXPECT_EQ(ends_seen, 3) << "flow " << bind;
}

TEST_F(SimTrace, AnUnwritableTraceFileFailsTheRunNamingIt) {
  run_options o = small_run();
  o.trace_file = "/nonexistent/dir/run.trace";
  auto r = run_simulation(o);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err().code(), errc::io_failure);
  EXPECT_NE(r.err().message().find("/nonexistent/dir/run.trace"), std::string::npos);
}

}  // namespace
}  // namespace accellm::simulator

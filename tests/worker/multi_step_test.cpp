// Multi-step decoding (instance_options::decode_steps) with the real sim
// worker, in virtual time: a decode-only batch runs several steps per
// Execute, a prompt arriving mid-way cuts it at the next step boundary, and
// every token is produced at the same instant as with one step per Execute.
#include "actors/atoms.hpp"
#include "actors/system_config.hpp"
#include "actors/virtual_time.hpp"
#include "device/model_spec.hpp"
#include "device/sim/sim_factory.hpp"
#include "messages/codec.hpp"
#include "worker/instance_manager.hpp"
#include "worker/worker.hpp"

#include <caf/all.hpp>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <vector>

namespace accellm::worker {
namespace {

using namespace std::chrono_literals;
using actors::msg_atom;
using messages::capnp_blob;

struct transcript {
  std::vector<messages::iteration_report> reports;
  std::vector<request_id> done;
};

caf::behavior recording_coordinator(caf::event_based_actor*, transcript* log) {
  return {[log](msg_atom, const capnp_blob& b) {
    if (auto r = messages::decode<messages::iteration_report>(b)) log->reports.push_back(*r);
    if (auto d = messages::decode<messages::request_done>(b)) log->done.push_back(d->request);
  }};
}

/// What one run produced: each request's token times, and how it got there.
struct outcome {
  std::map<request_id, std::vector<std::uint64_t>> token_ns;
  std::size_t reports = 0;
  std::size_t multi_step_reports = 0;
  std::size_t done = 0;
  std::vector<messages::iteration_report> all;
};

struct arrival {
  std::chrono::nanoseconds at;
  request_id id;
  std::uint32_t prompt;
  std::uint32_t max_tokens;
  /// Not a prompt: the partner prefilled it (its copy is complete here) and
  /// it decodes here from that copy, as after an AcceLLM hand-off.
  bool from_copy = false;
};

void send_arrival(caf::actor manager, const arrival& a) {
  using messages::encode;
  if (!a.from_copy) {
    messages::assign_prefill m;
    m.epoch = 1;
    m.request = a.id;
    m.instance = 0;
    m.prompt_len = a.prompt;
    m.max_tokens = a.max_tokens;
    m.then_decode = true;
    caf::anon_send(manager, msg_atom::value, encode(m));
    return;
  }
  messages::kv_delta_batch rows;
  rows.epoch = 1;
  rows.from_instance = 1;
  rows.layer_begin = 0;
  rows.layer_end = 1;
  rows.phase = messages::phase::prefill;
  rows.rows.push_back(
      {.request = a.id, .token_begin = 0, .token_end = a.prompt, .size_bytes = 1, .data = {}});
  caf::anon_send(manager, msg_atom::value, encode(rows));
  messages::start_decode d;
  d.epoch = 1;
  d.request = a.id;
  d.instance = 0;
  d.context_len = a.prompt;
  d.last_token = 3;
  d.from_replica = true;
  d.generated = 1;
  d.max_tokens = a.max_tokens;
  caf::anon_send(manager, msg_atom::value, encode(d));
}

// One instance (manager + sim worker on sim:h100, Llama-2-7B) serving
// `arrivals` with `decode_steps`, every request prefilled and decoded there.
outcome run(std::uint32_t decode_steps, const std::vector<arrival>& arrivals) {
  const device::model_spec* model = device::find_model("llama2-7b");
  EXPECT_NE(model, nullptr);
  auto dev = device::sim::make_sim_device("sim:h100", *model, 1);
  EXPECT_TRUE(dev.ok()) << (dev ? "" : dev.err().what());
  actors::system_config cfg{actors::clock_mode::virtual_time};
  caf::actor_system sys{cfg};
  auto vt = actors::virtual_time::attach(sys);
  transcript log;
  auto coordinator = sys.spawn(recording_coordinator, &log);
  instance_options o;
  o.total_blocks = 4096;
  o.block_tokens = 16;
  o.decode_steps = decode_steps;
  auto manager = spawn_instance_manager(sys, o);
  auto worker = spawn_sim_worker(sys, {.id = 0,
                                       .cost = std::move(dev->cost),
                                       .model = *model,
                                       .tp = 1,
                                       .kv_bytes_per_token = 1024,
                                       .link = {},
                                       .trace = {}});
  caf::anon_send(manager, actors::peers_atom::value, coordinator, worker);
  caf::anon_send(worker, actors::peers_atom::value, manager, std::vector<caf::actor>{});
  vt->run();
  for (const arrival& a : arrivals) {
    vt->run_until(actors::time_point{a.at});
    send_arrival(manager, a);
  }
  vt->run_until(actors::time_point{10s});
  EXPECT_TRUE(vt->shutdown(std::vector<caf::actor>{manager, worker, coordinator}).ok());

  outcome out;
  out.done = log.done.size();
  out.all = log.reports;
  std::map<request_id, std::uint32_t> first_index;  // 1 for a decode handed over
  for (const auto& r : log.reports) {
    ++out.reports;
    if (!r.step_ends_ns.empty()) ++out.multi_step_reports;
    for (const auto& run : r.runs) {
      for (std::uint32_t k = 0; k < run.count; ++k) {
        const std::uint64_t at = r.step_ends_ns.empty()
                                     ? r.start_ns + r.duration_ns
                                     : r.start_ns + r.step_ends_ns[run.first_step + k];
        auto& times = out.token_ns[run.request];
        const std::uint32_t base = first_index.emplace(run.request, run.first_index).first->second;
        EXPECT_EQ(run.first_index + k, base + times.size()) << "request " << run.request;
        times.push_back(at);
      }
    }
  }
  return out;
}

// Three requests; the second and third arrive while the first decodes alone,
// the third while the first two decode together.
const std::vector<arrival> staggered = {{0ms, 1, 300, 60}, {93ms, 2, 500, 40}, {517ms, 3, 128, 50}};

TEST(MultiStep, DecodeOnlyBatchesRunSeveralStepsPerExecute) {
  const outcome one = run(1, staggered);
  const outcome eight = run(8, staggered);
  ASSERT_EQ(one.done, 3u);
  ASSERT_EQ(eight.done, 3u);
  EXPECT_EQ(one.multi_step_reports, 0u);
  EXPECT_GT(eight.multi_step_reports, 0u);
  // 150 tokens, most of them decoded in windows of up to 8 steps.
  EXPECT_LT(eight.reports * 3, one.reports) << one.reports << " vs " << eight.reports;
}

// Request 2 arrives at 93 ms while request 1 (60 tokens) decodes alone in
// windows of 8 steps: the window then running ends early, at the first step
// boundary after 93 ms, and request 2's prefill starts right there.
TEST(MultiStep, APromptCutsTheRunningStepsAtTheNextBoundary) {
  const outcome eight = run(8, staggered);
  const auto& rs = eight.all;
  std::size_t k = 0;
  while (k < rs.size() && rs[k].prefill_tokens != 500) ++k;
  ASSERT_LT(k, rs.size()) << "no prefill of request 2";
  ASSERT_GT(k, 0u);
  const auto& before = rs[k - 1];
  ASSERT_FALSE(before.step_ends_ns.empty()) << "request 1 was not decoding in a window";
  const std::uint64_t arrival = 93'000'000;
  EXPECT_LT(before.start_ns, arrival);
  EXPECT_GE(before.start_ns + before.step_ends_ns.back(), arrival);
  EXPECT_LT(before.step_ends_ns.size(), 8u) << "the window ran to its end";
  if (before.step_ends_ns.size() > 1) {  // it ended at the first boundary past the arrival
    EXPECT_LT(before.start_ns + before.step_ends_ns[before.step_ends_ns.size() - 2], arrival);
  }
  EXPECT_EQ(rs[k].start_ns, before.start_ns + before.duration_ns);
}

// The cut makes multi-step exact on one instance: every token of every
// request is produced at the same virtual instant as with one step per
// Execute, including those of the prompts that arrived mid-window.
// Decodes handed over from the partner mid-window (requests 2 and 3) join
// the running steps at the next boundary instead of cutting them: no prefill
// here, so the only Executes are the windows, and every token still comes at
// its one-step time. The hand-offs fall half a step past the third step of
// request 1's first and third windows when it runs alone, so that they land
// mid-window whatever sim:h100's step time.
std::vector<arrival> hand_offs() {
  const arrival first{0ms, 1, 300, 80};
  const outcome alone = run(8, {first});
  std::vector<std::chrono::nanoseconds> mid;
  for (const auto& r : alone.all) {
    if (r.step_ends_ns.size() < 4) continue;
    mid.emplace_back(r.start_ns + (r.step_ends_ns[2] + r.step_ends_ns[3]) / 2);
  }
  EXPECT_GE(mid.size(), 3u) << "request 1 alone ran fewer than three windows of 4+ steps";
  if (mid.size() < 3) return {first};
  return {first, {mid[0], 2, 700, 40, true}, {mid[2], 3, 90, 60, true}};
}

TEST(MultiStep, HandedOverDecodesJoinAtTheNextBoundary) {
  const std::vector<arrival> arrivals = hand_offs();
  ASSERT_EQ(arrivals.size(), 3u);
  const outcome one = run(1, arrivals);
  const outcome eight = run(8, arrivals);
  ASSERT_EQ(one.done, 3u);
  ASSERT_EQ(eight.done, 3u);
  EXPECT_EQ(eight.token_ns, one.token_ns);
  // Request 2's first decoded token comes from a step after the first of its
  // report: it joined a window already running.
  bool joined = false;
  for (const auto& r : eight.all) {
    for (const auto& run : r.runs) {
      joined = joined || (run.request == 2 && run.first_index == 1 && run.first_step > 0);
    }
  }
  EXPECT_TRUE(joined);
  EXPECT_LT(eight.reports * 4, one.reports) << one.reports << " vs " << eight.reports;
}

TEST(MultiStep, EveryTokenTimeEqualsOneStepPerExecute) {
  const outcome one = run(1, staggered);
  for (const std::uint32_t steps : {2u, 8u, 64u}) {
    const outcome many = run(steps, staggered);
    EXPECT_EQ(many.token_ns, one.token_ns) << steps << " steps";
  }
  EXPECT_EQ(one.token_ns.at(1).size(), 60u);
  EXPECT_EQ(one.token_ns.at(3).size(), 50u);
}

}  // namespace
}  // namespace accellm::worker

// vllm policy alone: join the shortest queue in tokens, prefer instances with
// room, decode where it prefilled, never copy.
#include "coordinator/policies/vllm.hpp"

#include "tests/coordinator/policies/view_builder.hpp"

#include <gtest/gtest.h>

#include <algorithm>

namespace accellm::coordinator {
namespace {

using testing::add_request;
using testing::make_view;
using testing::only;

TEST(VllmPolicy, InitMakesEveryInstanceMixedAndUnpaired) {
  cluster_view v = make_view(4);
  v.at(1).partner = 0;
  v.at(2).role = messages::role::prefill;
  vllm_policy p{false};
  p.init(v);
  for (const instance_view& inst : v.instances) {
    SCOPED_TRACE(inst.id);
    EXPECT_EQ(inst.role, messages::role::mixed);
    EXPECT_EQ(inst.partner, no_instance);
    EXPECT_EQ(inst.pool, "mixed");
  }
  EXPECT_EQ(p.name(), "vllm");
  EXPECT_NE(p.setting(), vllm_policy{true}.setting());
}

TEST(VllmPolicy, JoinsTheShortestQueueInTokens) {
  cluster_view v = make_view(3);
  vllm_policy p{false};
  p.init(v);
  v.at(0).pending_prefill_tokens = 500;
  v.at(1).pending_prefill_tokens = 40;
  v.at(1).decode_requests = 30;  // queue 70 tokens
  v.at(2).pending_prefill_tokens = 60;
  v.at(2).decode_requests = 20;  // queue 80 tokens
  const request_view& r = add_request(v, 7, 100, 10);
  const auto a = only<assign_prefill_d>(p.on_arrival(v, r));
  EXPECT_EQ(a.request, 7u);
  EXPECT_EQ(a.instance, 1u);
}

TEST(VllmPolicy, CountsEachDecodeAsOneQueuedToken) {
  cluster_view v = make_view(2);
  vllm_policy p{true};
  p.init(v);
  v.at(0).decode_requests = 10;        // queue 10
  v.at(1).pending_prefill_tokens = 9;  // queue 9
  const request_view& r = add_request(v, 1, 100, 10);
  EXPECT_EQ(only<assign_prefill_d>(p.on_arrival(v, r)).instance, 1u);
  v.at(1).pending_prefill_tokens = 11;
  EXPECT_EQ(only<assign_prefill_d>(p.on_arrival(v, r)).instance, 0u);
}

TEST(VllmPolicy, PrefersAnInstanceWithMemoryOverAShorterQueue) {
  cluster_view v = make_view(2, 100);
  vllm_policy p{false};
  p.init(v);
  v.at(0).free_blocks = 3;  // empty queue, but no room for a 100-token prompt (7 blocks)
  v.at(1).pending_prefill_tokens = 900;
  v.at(1).pending_prefills = 3;
  v.at(1).free_blocks = 100;
  const request_view& r = add_request(v, 1, 100, 10);
  EXPECT_EQ(only<assign_prefill_d>(p.on_arrival(v, r)).instance, 1u);
  // Evictable replicas count as room.
  v.at(0).replica_blocks = 10;
  EXPECT_EQ(only<assign_prefill_d>(p.on_arrival(v, r)).instance, 0u);
}

TEST(VllmPolicy, WhenNothingHasRoomTheShortestQueueStillWins) {
  cluster_view v = make_view(3, 100);
  vllm_policy p{false};
  p.init(v);
  for (instance_view& inst : v.instances) inst.free_blocks = 0;
  v.at(0).decode_requests = 5;
  v.at(1).decode_requests = 2;
  v.at(2).decode_requests = 9;
  const request_view& r = add_request(v, 1, 1000, 10);
  EXPECT_EQ(only<assign_prefill_d>(p.on_arrival(v, r)).instance, 1u);
}

TEST(VllmPolicy, SkipsDeadInstances) {
  cluster_view v = make_view(3);
  vllm_policy p{false};
  p.init(v);
  v.at(0).alive = false;
  v.at(1).decode_requests = 4;
  v.at(2).decode_requests = 3;
  const request_view& r = add_request(v, 1, 10, 10);
  EXPECT_EQ(only<assign_prefill_d>(p.on_arrival(v, r)).instance, 2u);
}

TEST(VllmPolicy, AlwaysThenDecodeAndNeverCopies) {
  cluster_view v = make_view(4);
  vllm_policy p{false};
  p.init(v);
  for (request_id id = 1; id <= 20; ++id) {
    SCOPED_TRACE(id);
    const request_view& r = add_request(v, id, static_cast<std::uint32_t>(id * 37), 10);
    const decisions ds = p.on_arrival(v, r);
    ASSERT_EQ(ds.size(), 1u);
    const auto a = only<assign_prefill_d>(ds);
    EXPECT_TRUE(a.then_decode);
    EXPECT_EQ(a.copy_to, no_instance);
    v.at(a.instance).pending_prefill_tokens += r.prompt_len;  // as the coordinator does
    ++v.at(a.instance).pending_prefills;
  }
  // The load spread: nobody holds more than twice the fair share of prompt tokens.
  std::uint64_t total = 0, most = 0;
  for (const instance_view& inst : v.instances) {
    total += inst.pending_prefill_tokens;
    most = std::max(most, inst.pending_prefill_tokens);
  }
  EXPECT_LE(most, total / 2);
}

TEST(VllmPolicy, DecodesWhereItPrefilledAndNeverRebalances) {
  cluster_view v = make_view(2);
  vllm_policy p{false};
  p.init(v);
  request_view& r = add_request(v, 3, 100, 10, request_phase::parked);
  r.prefill_instance = 1;
  const auto d = only<decode_here_d>(p.on_prefill_done(v, r));
  EXPECT_EQ(d.request, 3u);
  EXPECT_EQ(d.replica, no_instance);
  v.at(0).decode_requests = 50;
  EXPECT_TRUE(p.on_report(v, 0).empty());
  EXPECT_TRUE(p.on_report(v, 1).empty());
}

}  // namespace
}  // namespace accellm::coordinator

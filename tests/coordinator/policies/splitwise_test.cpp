// splitwise policy alone: prompt and token pools, saturation, borrowing into
// the mixed pool and returning home, the KV handoff after prefill.
#include "coordinator/policies/splitwise.hpp"

#include "tests/coordinator/policies/view_builder.hpp"

#include <gtest/gtest.h>

namespace accellm::coordinator {
namespace {

using messages::role;
using testing::add_request;
using testing::all_of;
using testing::make_view;
using testing::only;

TEST(SplitwisePolicy, InitSplitsThePoolsByPromptInstances) {
  cluster_view v = make_view(4);
  splitwise_policy p{1, 8192};
  p.init(v);
  EXPECT_EQ(v.at(0).role, role::prefill);
  EXPECT_EQ(v.at(0).pool, "prompt");
  for (instance_id i = 1; i < 4; ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(v.at(i).role, role::decode);
    EXPECT_EQ(v.at(i).pool, "token");
    EXPECT_EQ(v.at(i).partner, no_instance);
  }
  EXPECT_EQ(p.setting(), "prompt:token 1:3");
}

TEST(SplitwisePolicy, InitDefaultsToHalfThePool) {
  for (const std::uint32_t asked : {0u, 4u, 9u}) {  // 0 and out of range: half
    SCOPED_TRACE(asked);
    cluster_view v = make_view(4);
    splitwise_policy p{asked, 8192};
    p.init(v);
    EXPECT_EQ(v.at(0).role, role::prefill);
    EXPECT_EQ(v.at(1).role, role::prefill);
    EXPECT_EQ(v.at(2).role, role::decode);
    EXPECT_EQ(v.at(3).role, role::decode);
    EXPECT_EQ(p.setting(), "prompt:token 2:2");
  }
}

TEST(SplitwisePolicy, PromptInstanceHasTheFewestPendingPrefillTokens) {
  cluster_view v = make_view(5);
  splitwise_policy p{3, 100000};
  p.init(v);
  v.at(0).pending_prefill_tokens = 900;
  v.at(0).pending_prefills = 2;
  v.at(1).pending_prefill_tokens = 300;
  v.at(1).pending_prefills = 1;
  v.at(2).pending_prefill_tokens = 700;
  v.at(2).pending_prefills = 1;
  const request_view& r = add_request(v, 1, 100, 10);
  const decisions ds = p.on_arrival(v, r);
  EXPECT_TRUE(all_of<set_role_d>(ds).empty()) << "nothing to borrow";
  const auto a = only<assign_prefill_d>(ds);
  EXPECT_EQ(a.instance, 1u);
  EXPECT_FALSE(a.then_decode);
  EXPECT_TRUE(a.copy_to == 3u || a.copy_to == 4u) << a.copy_to;
}

TEST(SplitwisePolicy, TokenInstanceUsesTheLeastMemoryAmongThoseWithRoom) {
  cluster_view v = make_view(4);
  splitwise_policy p{1, 8192};
  p.init(v);
  v.at(1).free_blocks = 400;  // 600 used
  v.at(2).free_blocks = 700;  // 300 used: least
  v.at(3).free_blocks = 500;
  const request_view& r = add_request(v, 1, 1000, 200);
  EXPECT_EQ(only<assign_prefill_d>(p.on_arrival(v, r)).copy_to, 2u);
  // A big instance with little in use but no room for this request is skipped.
  v.at(2).total_blocks = 100;
  v.at(2).free_blocks = 60;  // 40 used, but 1200 tokens need 75 blocks
  EXPECT_EQ(only<assign_prefill_d>(p.on_arrival(v, r)).copy_to, 3u);
  // Replicas are evictable, so they count as room.
  v.at(1).replica_blocks = 500;
  EXPECT_EQ(only<assign_prefill_d>(p.on_arrival(v, r)).copy_to, 1u);
}

TEST(SplitwisePolicy, SaturationSkipsABusyPromptInstanceAndBorrowsAToken) {
  cluster_view v = make_view(4);
  splitwise_policy p{1, 1000};
  p.init(v);
  v.at(0).pending_prefill_tokens = 600;
  v.at(0).pending_prefills = 1;  // 600 + 500 > 1000: saturated
  v.at(1).decode_tokens = 900;
  v.at(2).decode_tokens = 100;  // least loaded token instance
  v.at(3).decode_tokens = 500;
  const request_view& r = add_request(v, 1, 500, 10);
  const decisions ds = p.on_arrival(v, r);
  const auto role_change = only<set_role_d>(ds);
  EXPECT_EQ(role_change.instance, 2u);
  EXPECT_EQ(role_change.role, role::mixed);
  ASSERT_NE(role_change.pool, nullptr);
  EXPECT_STREQ(role_change.pool, "mixed");
  const auto a = only<assign_prefill_d>(ds);
  EXPECT_EQ(a.instance, 2u);
  // The role change comes before the assignment that needs it.
  ASSERT_FALSE(ds.empty());
  EXPECT_TRUE(std::holds_alternative<set_role_d>(ds.front()));
}

TEST(SplitwisePolicy, AnIdlePromptInstanceTakesAPromptOverTheLimit) {
  cluster_view v = make_view(2);
  splitwise_policy p{1, 1000};
  p.init(v);
  const request_view& r = add_request(v, 1, 5000, 10);
  const decisions ds = p.on_arrival(v, r);
  EXPECT_TRUE(all_of<set_role_d>(ds).empty());
  const auto a = only<assign_prefill_d>(ds);
  EXPECT_EQ(a.instance, 0u);
  EXPECT_EQ(a.copy_to, 1u);
}

TEST(SplitwisePolicy, NoRoomInTheTokenPoolBorrowsAPromptInstance) {
  cluster_view v = make_view(4, 100);
  splitwise_policy p{2, 100000};
  p.init(v);
  v.at(2).free_blocks = 0;
  v.at(3).free_blocks = 0;
  v.at(0).pending_prefill_tokens = 50;
  v.at(0).pending_prefills = 1;
  v.at(1).pending_prefill_tokens = 300;  // more pending, so inst 0 prefills
  v.at(1).pending_prefills = 1;
  const request_view& r = add_request(v, 1, 100, 10);
  const decisions ds = p.on_arrival(v, r);
  const auto borrowed = only<set_role_d>(ds);
  EXPECT_EQ(borrowed.role, role::mixed);
  const auto a = only<assign_prefill_d>(ds);
  EXPECT_EQ(a.instance, 0u);
  // The borrowed (least loaded prompt) instance decodes; when it is also the
  // prefill instance it keeps decoding without a copy.
  EXPECT_EQ(borrowed.instance, 0u);
  EXPECT_TRUE(a.then_decode);
  EXPECT_EQ(a.copy_to, no_instance);
}

TEST(SplitwisePolicy, ABorrowedInstanceReturnsHomeWhenIdle) {
  cluster_view v = make_view(4);
  splitwise_policy p{1, 1000};
  p.init(v);
  v.at(0).pending_prefill_tokens = 900;
  v.at(0).pending_prefills = 1;
  v.at(2).decode_tokens = 1;
  v.at(3).decode_tokens = 2;  // inst 1 is the least loaded token instance
  const request_view& r = add_request(v, 1, 500, 10);
  const auto borrowed = only<set_role_d>(p.on_arrival(v, r));
  ASSERT_EQ(borrowed.instance, 1u);
  v.at(1).role = role::mixed;  // as the coordinator applies it
  v.at(1).pending_prefills = 1;
  EXPECT_TRUE(p.on_report(v, 1).empty()) << "busy: stays borrowed";
  EXPECT_TRUE(p.on_report(v, 0).empty()) << "never borrowed: nothing to return";
  v.at(1).pending_prefills = 0;
  v.at(1).decode_requests = 2;
  EXPECT_TRUE(p.on_report(v, 1).empty()) << "still decoding: stays borrowed";
  v.at(1).decode_requests = 0;
  const auto home = only<set_role_d>(p.on_report(v, 1));
  EXPECT_EQ(home.instance, 1u);
  EXPECT_EQ(home.role, role::decode);
  ASSERT_NE(home.pool, nullptr);
  EXPECT_STREQ(home.pool, "token");
  EXPECT_TRUE(p.on_report(v, 1).empty()) << "home already";
}

TEST(SplitwisePolicy, ABorrowedPromptInstanceReturnsToThePromptPool) {
  cluster_view v = make_view(2, 100);
  splitwise_policy p{1, 100000};
  p.init(v);
  v.at(1).free_blocks = 0;  // the token instance has no room
  const request_view& r = add_request(v, 1, 100, 10);
  const auto borrowed = only<set_role_d>(p.on_arrival(v, r));
  ASSERT_EQ(borrowed.instance, 0u);
  const auto home = only<set_role_d>(p.on_report(v, 0));
  EXPECT_EQ(home.role, role::prefill);
  ASSERT_NE(home.pool, nullptr);
  EXPECT_STREQ(home.pool, "prompt");
}

TEST(SplitwisePolicy, PrefillDoneHandsTheDecodeToTheTokenInstance) {
  cluster_view v = make_view(4);
  splitwise_policy p{2, 8192};
  p.init(v);
  request_view& r = add_request(v, 9, 300, 20);
  const auto a = only<assign_prefill_d>(p.on_arrival(v, r));
  ASSERT_NE(a.copy_to, no_instance);
  r.phase = request_phase::parked;
  r.prefill_instance = a.instance;
  r.replica_instance = a.copy_to;
  r.generated = 1;
  const auto m = only<move_decode_d>(p.on_prefill_done(v, r));
  EXPECT_EQ(m.request, 9u);
  EXPECT_EQ(m.to, a.copy_to);
  EXPECT_EQ(m.reason, messages::move_reason::handoff);
  EXPECT_FALSE(m.keep_copy);
}

TEST(SplitwisePolicy, PrefillDoneDecodesHereWhenTheShippedCopyIsGone) {
  cluster_view v = make_view(4);
  splitwise_policy p{2, 8192};
  p.init(v);
  request_view& r = add_request(v, 9, 300, 20);
  const auto a = only<assign_prefill_d>(p.on_arrival(v, r));
  r.phase = request_phase::parked;
  r.prefill_instance = a.instance;
  r.replica_instance = no_instance;  // evicted under memory pressure
  const auto d = only<decode_here_d>(p.on_prefill_done(v, r));
  EXPECT_EQ(d.request, 9u);
  EXPECT_EQ(d.replica, no_instance);
}

}  // namespace
}  // namespace accellm::coordinator

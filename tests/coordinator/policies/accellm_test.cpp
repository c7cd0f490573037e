// accellm policy alone: pairs, prefill placement and role switching with the
// decodes moving to the partner, copies only to a partner with room, decode
// placement after prefill, switching back and rebalancing on reports, and the
// degenerate one-pair case (paper.md 7.9).
#include "coordinator/policies/accellm.hpp"

#include "tests/coordinator/policies/view_builder.hpp"

#include <gtest/gtest.h>

#include <set>

namespace accellm::coordinator {
namespace {

using messages::move_reason;
using messages::role;
using testing::add_decoding;
using testing::add_request;
using testing::all_of;
using testing::make_view;
using testing::only;

TEST(AccellmPolicy, InitPairsNeighboursAllDecoding) {
  cluster_view v = make_view(4);
  accellm_policy p;
  p.init(v);
  const instance_id partner[] = {1, 0, 3, 2};
  const char* pool[] = {"pair0", "pair0", "pair1", "pair1"};
  for (instance_id i = 0; i < 4; ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(v.at(i).partner, partner[i]);
    EXPECT_EQ(v.at(i).role, role::decode);
    EXPECT_EQ(v.at(i).pool, pool[i]);
  }
  EXPECT_EQ(p.name(), "accellm");
}

// Live clusters grow one instance at a time (daemons register).
TEST(AccellmPolicy, JoiningInstancesFormTheSamePairsAsInit) {
  cluster_view v;
  accellm_policy p;
  p.init(v);
  for (instance_id i = 0; i < 4; ++i) {
    v.instances.emplace_back().id = i;
    p.join(v, i);
  }
  const instance_id partner[] = {1, 0, 3, 2};
  for (instance_id i = 0; i < 4; ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(v.at(i).partner, partner[i]);
    EXPECT_EQ(v.at(i).role, role::decode);
  }
  EXPECT_EQ(v.at(3).pool, "pair1");
}

// A worker that comes back (a new instance) pairs with the one whose partner
// was lost, wherever it is.
TEST(AccellmPolicy, ANewcomerPairsWithAnOrphan) {
  cluster_view v = make_view(4);
  accellm_policy p;
  p.init(v);
  v.at(1).alive = false;  // lost: 0 is an orphan
  v.at(1).partner = no_instance;
  v.at(0).partner = no_instance;
  v.instances.emplace_back().id = 4;
  p.join(v, 4);  // 4 ^ 1 = 5 does not exist
  EXPECT_EQ(v.at(4).partner, 0u);
  EXPECT_EQ(v.at(0).partner, 4u);
  EXPECT_EQ(v.at(4).pool, "pair0");
  v.instances.emplace_back().id = 5;
  p.join(v, 5);  // nobody is left single
  EXPECT_EQ(v.at(5).partner, no_instance);
}

TEST(AccellmPolicy, AnOddInstanceOutIsUnpaired) {
  cluster_view v = make_view(3);
  accellm_policy p;
  p.init(v);
  EXPECT_EQ(v.at(2).partner, no_instance);
  const request_view& r = add_request(v, 1, 100, 10);
  v.at(0).pending_prefill_tokens = 10;
  v.at(0).pending_prefills = 1;
  v.at(1).pending_prefill_tokens = 10;
  v.at(1).pending_prefills = 1;
  const auto a = only<assign_prefill_d>(p.on_arrival(v, r));
  EXPECT_EQ(a.instance, 2u);
  EXPECT_EQ(a.copy_to, no_instance);
}

TEST(AccellmPolicy, ArrivalPicksTheMemberWithFewestPendingPrefillTokens) {
  cluster_view v = make_view(4);
  accellm_policy p;
  p.init(v);
  const std::uint64_t pending[] = {300, 500, 100, 200};
  for (instance_id i = 0; i < 4; ++i) {
    v.at(i).role = role::prefill;
    v.at(i).pending_prefill_tokens = pending[i];
    v.at(i).pending_prefills = 1;
  }
  const request_view& r = add_request(v, 1, 100, 10);
  const decisions ds = p.on_arrival(v, r);
  EXPECT_TRUE(all_of<set_role_d>(ds).empty()) << "already a prefill instance";
  const auto a = only<assign_prefill_d>(ds);
  EXPECT_EQ(a.instance, 2u);
  EXPECT_EQ(a.copy_to, 3u);
  EXPECT_FALSE(a.then_decode);
}

TEST(AccellmPolicy, SwitchingToPrefillMovesTheDecodesWithAReplicaToThePartner) {
  cluster_view v = make_view(2);
  accellm_policy p;
  p.init(v);
  add_decoding(v, 1, 0, 1);            // replica on the partner: moves
  add_decoding(v, 2, 0, no_instance);  // no copy anywhere: stays
  add_decoding(v, 3, 0, 1);            // moves
  for (request_id id = 4; id <= 7; ++id) add_decoding(v, id, 1, 0);  // the partner's own
  request_view& parked = add_request(v, 8, 100, 10, request_phase::parked);
  parked.prefill_instance = 0;
  parked.replica_instance = 1;
  const request_view& r = add_request(v, 9, 100, 10);
  const decisions ds = p.on_arrival(v, r);
  const auto sw = only<set_role_d>(ds);
  EXPECT_EQ(sw.instance, 0u) << "the lighter decoder switches";
  EXPECT_EQ(sw.role, role::prefill);
  const auto moves = all_of<move_decode_d>(ds);
  std::set<request_id> moved;
  for (const move_decode_d& m : moves) {
    SCOPED_TRACE(m.request);
    EXPECT_EQ(m.to, 1u);
    EXPECT_EQ(m.reason, move_reason::role_switch);
    EXPECT_TRUE(m.keep_copy);
    moved.insert(m.request);
  }
  EXPECT_EQ(moved, (std::set<request_id>{1, 3}));
  const auto a = only<assign_prefill_d>(ds);
  EXPECT_EQ(a.instance, 0u);
  EXPECT_EQ(a.copy_to, 1u);
  EXPECT_TRUE(std::holds_alternative<set_role_d>(ds.front())) << "the switch comes first";
}

TEST(AccellmPolicy, TheHeavierDecoderKeepsDecoding) {
  cluster_view v = make_view(2);
  accellm_policy p;
  p.init(v);
  for (request_id id = 1; id <= 5; ++id) add_decoding(v, id, 0, 1);
  for (request_id id = 6; id <= 8; ++id) add_decoding(v, id, 1, 0);
  const request_view& r = add_request(v, 9, 100, 10);
  const decisions ds = p.on_arrival(v, r);
  EXPECT_EQ(only<assign_prefill_d>(ds).instance, 1u);
  EXPECT_EQ(only<set_role_d>(ds).instance, 1u);
  for (const move_decode_d& m : all_of<move_decode_d>(ds)) {
    EXPECT_EQ(m.to, 0u);
    EXPECT_GE(m.request, 6u);
  }
  EXPECT_EQ(all_of<move_decode_d>(ds).size(), 3u);
}

TEST(AccellmPolicy, APairHasOnePrefillerWhileTheOtherDecodes) {
  cluster_view v = make_view(2);
  accellm_policy p;
  p.init(v);
  v.at(0).role = role::prefill;
  v.at(0).pending_prefill_tokens = 8000;
  v.at(0).pending_prefills = 4;
  add_decoding(v, 1, 1, 0);  // the decoder is busy: it does not switch too
  const request_view& r = add_request(v, 2, 100, 10);
  const decisions ds = p.on_arrival(v, r);
  EXPECT_TRUE(all_of<set_role_d>(ds).empty());
  EXPECT_TRUE(all_of<move_decode_d>(ds).empty());
  EXPECT_EQ(only<assign_prefill_d>(ds).instance, 0u);
}

TEST(AccellmPolicy, CopiesOnlyToAPartnerWithMemory) {
  cluster_view v = make_view(2, 100);
  accellm_policy p;
  p.init(v);
  v.at(1).pending_prefill_tokens = 50;
  v.at(1).pending_prefills = 1;
  const request_view& r = add_request(v, 1, 320, 10);  // 20 blocks
  v.at(1).free_blocks = 23;                            // 23 - 4 reserved = 19 < 20
  auto a = only<assign_prefill_d>(p.on_arrival(v, r));
  EXPECT_EQ(a.instance, 0u);
  EXPECT_EQ(a.copy_to, no_instance);
  v.at(1).free_blocks = 24;  // 24 - 4 = 20: just enough
  a = only<assign_prefill_d>(p.on_arrival(v, r));
  EXPECT_EQ(a.copy_to, 1u);
  v.at(1).free_blocks = 0;
  v.at(1).replica_blocks = 30;  // evictable replicas count as room
  a = only<assign_prefill_d>(p.on_arrival(v, r));
  EXPECT_EQ(a.copy_to, 1u);
  v.at(1).alive = false;
  a = only<assign_prefill_d>(p.on_arrival(v, r));
  EXPECT_EQ(a.copy_to, no_instance) << "no copy to a dead partner";
}

TEST(AccellmPolicy, PrefersAMemberWithRoomForThePrompt) {
  cluster_view v = make_view(4, 100);
  accellm_policy p;
  p.init(v);
  v.at(0).free_blocks = 1;
  v.at(1).free_blocks = 1;
  v.at(2).pending_prefill_tokens = 64;  // more pending, but room
  v.at(2).pending_prefills = 1;
  v.at(3).pending_prefill_tokens = 64;
  v.at(3).pending_prefills = 1;
  const request_view& r = add_request(v, 1, 160, 10);
  EXPECT_EQ(only<assign_prefill_d>(p.on_arrival(v, r)).instance, 2u);
}

// A parked request on `at` (prefilled there) with its replica on `replica`.
request_view& park(cluster_view& v, request_id id, instance_id at, instance_id replica) {
  request_view& r = add_request(v, id, 200, 20, request_phase::parked);
  r.prefill_instance = at;
  r.replica_instance = replica;
  ++v.at(at).parked;
  return r;
}

TEST(AccellmPolicy, PrefillDoneMovesAwayFromABusyPrefiller) {
  cluster_view v = make_view(2);
  accellm_policy p;
  p.init(v);
  v.at(0).role = role::prefill;
  v.at(0).pending_prefills = 2;
  for (request_id id = 10; id < 20; ++id) add_decoding(v, id, 1, 0);  // heavier, still preferred
  const request_view& r = park(v, 1, 0, 1);
  const auto m = only<move_decode_d>(p.on_prefill_done(v, r));
  EXPECT_EQ(m.request, 1u);
  EXPECT_EQ(m.to, 1u);
  EXPECT_EQ(m.reason, move_reason::balance);
  EXPECT_TRUE(m.keep_copy);
}

TEST(AccellmPolicy, PrefillDoneStaysWhenThePartnerIsBusyPrefilling) {
  cluster_view v = make_view(2);
  accellm_policy p;
  p.init(v);
  v.at(1).role = role::prefill;
  v.at(1).pending_prefills = 1;
  for (request_id id = 10; id < 20; ++id) add_decoding(v, id, 0, 1);
  const request_view& r = park(v, 1, 0, 1);
  const auto d = only<decode_here_d>(p.on_prefill_done(v, r));
  EXPECT_EQ(d.replica, 1u) << "the partner keeps the copy";
}

TEST(AccellmPolicy, PrefillDonePicksTheLessLoadedSide) {
  cluster_view v = make_view(2);
  accellm_policy p;
  p.init(v);
  for (request_id id = 10; id < 13; ++id) add_decoding(v, id, 0, 1);
  for (request_id id = 20; id < 22; ++id) add_decoding(v, id, 1, 0);
  const request_view& r = park(v, 1, 0, 1);
  EXPECT_EQ(only<move_decode_d>(p.on_prefill_done(v, r)).to, 1u);
  for (request_id id = 22; id < 26; ++id) add_decoding(v, id, 1, 0);
  EXPECT_EQ(only<decode_here_d>(p.on_prefill_done(v, r)).replica, 1u);
}

TEST(AccellmPolicy, PrefillDoneWithoutACopyDecodesHere) {
  cluster_view v = make_view(2);
  accellm_policy p;
  p.init(v);
  v.at(0).role = role::prefill;
  v.at(0).pending_prefills = 5;
  const request_view& r = park(v, 1, 0, no_instance);
  EXPECT_EQ(only<decode_here_d>(p.on_prefill_done(v, r)).replica, no_instance);
  request_view& r2 = park(v, 2, 0, 1);
  v.at(1).alive = false;
  EXPECT_EQ(only<decode_here_d>(p.on_prefill_done(v, r2)).request, 2u);
}

TEST(AccellmPolicy, AnIdlePrefillInstanceSwitchesBackToDecode) {
  cluster_view v = make_view(2);
  accellm_policy p;
  p.init(v);
  v.at(0).role = role::prefill;
  v.at(0).pending_prefills = 1;
  EXPECT_TRUE(all_of<set_role_d>(p.on_report(v, 0)).empty()) << "still prefilling";
  v.at(0).pending_prefills = 0;
  const auto sw = only<set_role_d>(p.on_report(v, 0));
  EXPECT_EQ(sw.instance, 0u);
  EXPECT_EQ(sw.role, role::decode);
  v.at(0).role = role::decode;
  EXPECT_TRUE(p.on_report(v, 0).empty()) << "decoding already, nothing to balance";
}

TEST(AccellmPolicy, ReportRebalancesAnUnevenPairTowardsTheReplicas) {
  cluster_view v = make_view(2);
  accellm_policy p;
  p.init(v);
  const request_id n = accellm_policy::rebalance_slack + 10;  // past the slack
  for (request_id id = 1; id <= n; ++id) add_decoding(v, id, 0, 1);
  add_decoding(v, n + 1, 0, no_instance);  // youngest, but no replica on the partner
  const decisions ds = p.on_report(v, 0);
  const auto moves = all_of<move_decode_d>(ds);
  ASSERT_EQ(moves.size(), (n + 1) / 2);
  for (const move_decode_d& m : moves) {
    SCOPED_TRACE(m.request);
    EXPECT_EQ(m.to, 1u);
    EXPECT_EQ(m.reason, move_reason::balance);
    EXPECT_TRUE(m.keep_copy);
    EXPECT_GT(m.request, n - (n + 1) / 2) << "the youngest move";
    EXPECT_LE(m.request, n);
  }
  EXPECT_TRUE(p.on_report(v, 1).empty()) << "the lighter side does not push";
}

TEST(AccellmPolicy, ReportLeavesANearlyEvenPairAlone) {
  cluster_view v = make_view(2);
  accellm_policy p;
  p.init(v);
  const request_id n = accellm_policy::rebalance_slack;  // n vs 0: within the slack
  for (request_id id = 1; id <= n; ++id) add_decoding(v, id, 0, 1);
  EXPECT_TRUE(p.on_report(v, 0).empty());
  for (request_id id = n + 1; id <= n + 8; ++id) add_decoding(v, id, 1, 0);
  for (request_id id = n + 9; id <= n + 16; ++id) add_decoding(v, id, 0, 1);
  EXPECT_TRUE(p.on_report(v, 0).empty()) << n + 8 << " vs 8: within the slack";
  v.at(1).role = role::prefill;
  v.at(1).pending_prefills = 1;
  for (request_id id = n + 17; id <= 3 * n; ++id) add_decoding(v, id, 0, 1);
  EXPECT_TRUE(all_of<move_decode_d>(p.on_report(v, 0)).empty())
      << "no rebalancing towards a prefilling partner";
}

// Paper 7.9: one pair, no load. The first prompt goes to one member with the
// copy to the other, and its decode goes to the less loaded member.
TEST(AccellmPolicy, DegenerateOnePairNoLoad) {
  cluster_view v = make_view(2);
  accellm_policy p;
  p.init(v);
  request_view& r = add_request(v, 1, 500, 30);
  const decisions ds = p.on_arrival(v, r);
  const auto a = only<assign_prefill_d>(ds);
  ASSERT_LT(a.instance, 2u);
  const instance_id mate = a.instance ^ 1u;
  EXPECT_EQ(a.copy_to, mate) << "the partner receives the copy";
  EXPECT_TRUE(all_of<move_decode_d>(ds).empty()) << "nothing to move";
  // Apply it as the coordinator does, then finish the prefill.
  v.at(a.instance).role = role::prefill;
  r.prefill_instance = a.instance;
  r.replica_instance = a.copy_to;
  r.phase = request_phase::parked;
  r.generated = 1;
  ++v.at(a.instance).parked;
  const decisions done = p.on_prefill_done(v, r);
  const auto m = only<move_decode_d>(done);
  EXPECT_EQ(m.to, mate) << "the idle partner is the less loaded member";
  EXPECT_TRUE(m.keep_copy);
  // After the prefill the prefiller goes back to decoding: both members decode.
  --v.at(a.instance).parked;
  ++v.at(mate).decode_requests;
  const auto back = only<set_role_d>(p.on_report(v, a.instance));
  EXPECT_EQ(back.role, role::decode);
}

// Paper 7.9, continued: an idle pair takes turns. Between two otherwise equal
// members the one that prefilled least recently gets the prompt, so both
// prefill and both decode instead of a fixed 1:1 split.
TEST(AccellmPolicy, AnIdlePairTakesTurnsPrefilling) {
  cluster_view v = make_view(2);
  accellm_policy p;
  p.init(v);
  const request_view& first = add_request(v, 1, 500, 30);
  EXPECT_EQ(only<assign_prefill_d>(p.on_arrival(v, first)).instance, 0u) << "ties go to id 0";
  v.at(0).last_assigned = ++v.assignments;  // as the coordinator records it
  v.requests.erase(1);                      // the request finished: the pair is idle again
  const request_view& second = add_request(v, 2, 500, 30);
  EXPECT_EQ(only<assign_prefill_d>(p.on_arrival(v, second)).instance, 1u);
  v.at(1).last_assigned = ++v.assignments;
  v.requests.erase(2);
  const request_view& third = add_request(v, 3, 500, 30);
  EXPECT_EQ(only<assign_prefill_d>(p.on_arrival(v, third)).instance, 0u);
}

}  // namespace
}  // namespace accellm::coordinator

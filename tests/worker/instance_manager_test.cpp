// instance_manager alone, in virtual time, between a recording coordinator
// and a scripted worker: replicas are evicted before any primary is
// preempted, a decode placed on a copy that stops growing recomputes the
// missing tail (copy_stall), and malformed or misaddressed messages are
// dropped and counted in the next report.
#include "worker/instance_manager.hpp"

#include "actors/atoms.hpp"
#include "actors/system_config.hpp"
#include "actors/virtual_time.hpp"
#include "messages/codec.hpp"

#include <caf/all.hpp>
#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <vector>

namespace accellm::worker {
namespace {

using namespace std::chrono_literals;
using actors::msg_atom;
using messages::capnp_blob;

constexpr instance_id self_id = 0;
constexpr instance_id partner_id = 1;

/// What the instance sent, in order.
struct transcript {
  std::vector<messages::execute> executes;
  std::vector<messages::iteration_report> reports;
};

// Records the reports the instance sends to the coordinator.
caf::behavior recording_coordinator(caf::event_based_actor*, transcript* log) {
  return {[log](msg_atom, const capnp_blob& b) {
    if (auto r = messages::decode<messages::iteration_report>(b)) log->reports.push_back(*r);
  }};
}

// Answers every Execute after 1 ms with token 7 for each item.
caf::behavior scripted_worker(caf::event_based_actor* self, transcript* log) {
  return {[self, log](msg_atom, const capnp_blob& b) {
    auto ex = messages::decode<messages::execute>(b);
    if (!ex) return;
    log->executes.push_back(*ex);
    messages::iteration_done done;
    done.epoch = ex->epoch;
    done.instance = ex->instance;
    done.iteration = ex->iteration;
    done.duration_ns = 1'000'000;
    done.next_tokens.assign(ex->items.size(), 7);
    self->delayed_send(caf::actor_cast<caf::actor>(self->current_sender()), 1ms, msg_atom::value,
                       messages::encode(done));
  }};
}

class InstanceManager : public ::testing::Test {
 protected:
  void start(std::uint64_t blocks) {
    instance_options o;
    o.id = self_id;
    o.total_blocks = blocks;
    o.block_tokens = 16;
    o.bytes_per_block = 1024;
    o.copy_stall = 10ms;
    coordinator_ = sys_.spawn(recording_coordinator, &log_);
    worker_ = sys_.spawn(scripted_worker, &log_);
    manager_ = spawn_instance_manager(sys_, o);
    caf::anon_send(manager_, actors::peers_atom::value, coordinator_, worker_);
    vt_->run();
  }

  void TearDown() override {
    if (manager_) {
      EXPECT_TRUE(vt_->shutdown(std::vector<caf::actor>{manager_, worker_, coordinator_}).ok());
    }
  }

  template <class T>
  void deliver(const T& m) {
    caf::anon_send(manager_, msg_atom::value, messages::encode(m));
  }
  void deliver_raw(capnp_blob b) { caf::anon_send(manager_, msg_atom::value, std::move(b)); }

  void assign(request_id id, std::uint32_t prompt, std::uint32_t max_tokens, bool then_decode,
              instance_id partner = no_instance) {
    messages::assign_prefill a;
    a.epoch = 1;
    a.request = id;
    a.instance = self_id;
    a.partner = partner;
    a.prompt_len = prompt;
    a.max_tokens = max_tokens;
    a.then_decode = then_decode;
    deliver(a);
  }

  // A replica of `tokens` tokens of the partner's request `id`.
  void replica_rows(request_id id, std::uint32_t begin, std::uint32_t end,
                    instance_id from = partner_id) {
    messages::kv_delta_batch k;
    k.epoch = 1;
    k.from_instance = from;
    k.layer_begin = 0;
    k.layer_end = 1;
    k.phase = messages::phase::prefill;
    k.rows.push_back({.request = id,
                      .token_begin = begin,
                      .token_end = end,
                      .size_bytes = std::uint64_t{end - begin} * 64,
                      .data = {}});
    deliver(k);
  }

  const messages::iteration_report& last_report() const {
    EXPECT_FALSE(log_.reports.empty());
    return log_.reports.back();
  }

  actors::system_config cfg_{actors::clock_mode::virtual_time};
  caf::actor_system sys_{cfg_};
  std::optional<actors::virtual_time> vt_{*actors::virtual_time::attach(sys_)};
  transcript log_;
  caf::actor coordinator_, worker_, manager_;
};

// Paper 7.8: a primary that needs blocks takes them from replicas first;
// no decode is preempted while a replica could be dropped.
TEST_F(InstanceManager, ReplicasAreEvictedBeforeAnyPrimaryIsPreempted) {
  start(20);                 // 320 tokens
  replica_rows(100, 0, 96);  // 6 blocks
  replica_rows(101, 0, 96);  // 6 blocks: 12 of 20 used by replicas
  assign(1, 64, 60, true);   // 4 blocks, then decodes up to 123 tokens = 8 blocks
  assign(2, 64, 60, true);   // the same: 16 + 12 > 20, 16 + 6 > 20, 16 fits
  vt_->run_for(200ms);
  std::uint64_t evicted = 0, preempted = 0;
  for (const auto& r : log_.reports) {
    evicted += r.evicted_replicas.size();
    preempted += r.preempted.size();
    EXPECT_LE(r.load.primary_blocks + r.load.replica_blocks, r.load.kv_blocks_total);
    if (!r.preempted.empty()) {
      EXPECT_EQ(r.load.replica_blocks, 0u) << "preempted while a replica was held";
    }
  }
  EXPECT_EQ(evicted, 2u) << "both replicas made room for the primaries";
  EXPECT_EQ(preempted, 0u) << "16 blocks of primaries fit once the replicas are gone";
  EXPECT_EQ(last_report().load.primary_blocks, 0u) << "both requests finished";
}

// A decode placed here on a copy that never completes (its source stopped
// syncing) recomputes the missing tail after copy_stall instead of waiting
// forever.
TEST_F(InstanceManager, AStalledCopyIsCompletedByRecomputingItsTail) {
  start(100);
  replica_rows(5, 0, 48);  // the copy holds 48 tokens
  vt_->run();
  messages::start_decode d;
  d.epoch = 1;
  d.request = 5;
  d.instance = self_id;
  d.context_len = 50;  // the source had 50: two rows never arrive
  d.last_token = 3;
  d.from_replica = true;
  d.generated = 3;
  d.partner = partner_id;
  d.max_tokens = 6;
  deliver(d);
  vt_->run_for(5ms);
  EXPECT_TRUE(log_.executes.empty()) << "waits for the copy's rows first";
  vt_->run_for(100ms);
  ASSERT_FALSE(log_.executes.empty());
  const messages::execute_item& tail = log_.executes.front().items.at(0);
  EXPECT_EQ(tail.request, 5u);
  EXPECT_EQ(tail.phase, messages::phase::prefill);
  EXPECT_EQ(tail.context, 48u) << "only the tail is recomputed";
  EXPECT_EQ(tail.num_tokens, 2u);
  EXPECT_FALSE(tail.wants_output);
  // Then it decodes the remaining 3 tokens, syncing its new partner.
  std::size_t decodes = 0;
  for (const auto& ex : log_.executes) {
    for (const auto& it : ex.items) {
      if (it.phase != messages::phase::decode) continue;
      ++decodes;
      EXPECT_EQ(it.replica_to, partner_id);
    }
  }
  EXPECT_EQ(decodes, 3u);
}

// Rows that keep arriving hold the stall timer off: no recompute.
TEST_F(InstanceManager, ACopyStillReceivingRowsIsNotRecomputed) {
  start(100);
  replica_rows(5, 0, 40);
  vt_->run();
  messages::start_decode d;
  d.epoch = 1;
  d.request = 5;
  d.instance = self_id;
  d.context_len = 48;
  d.last_token = 3;
  d.from_replica = true;
  d.generated = 1;
  d.partner = no_instance;
  d.max_tokens = 2;
  deliver(d);
  vt_->run_for(8ms);
  replica_rows(5, 40, 44);  // progress, but not complete
  vt_->run_for(8ms);
  replica_rows(5, 44, 48);  // complete after 16 ms, past one copy_stall from the start
  vt_->run_for(100ms);
  for (const auto& ex : log_.executes) {
    for (const auto& it : ex.items) EXPECT_EQ(it.phase, messages::phase::decode);
  }
  EXPECT_EQ(log_.executes.size(), 1u) << "one decode step finishes the request";
}

TEST_F(InstanceManager, MalformedAndMisaddressedMessagesAreDroppedAndCounted) {
  start(100);
  deliver_raw(capnp_blob{.type = 9999, .bytes = {1, 2, 3}});  // unknown type
  deliver_raw(capnp_blob{.type = static_cast<std::uint16_t>(messages::msg_type::assign_prefill),
                         .bytes = {0, 0, 0, 0, 1, 0, 0, 0}});  // truncated
  replica_rows(9, 0, 16, self_id);                             // KV "from" the instance itself
  vt_->run();
  EXPECT_TRUE(log_.executes.empty()) << "nothing was accepted";
  assign(1, 16, 1, false);  // a valid request still runs
  vt_->run_for(10ms);
  ASSERT_EQ(log_.executes.size(), 1u);
  EXPECT_EQ(last_report().load.rejected_messages, 3u);
}

}  // namespace
}  // namespace accellm::worker

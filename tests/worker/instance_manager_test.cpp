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
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
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
  std::size_t rejected_executes = 0;  ///< the worker could not decode (e.g. a duplicate item)
  std::vector<messages::request_done> done;
  std::string fail_next;  ///< the worker answers the next Execute with this error
  request_id refuse = 0;  ///< the worker refuses this request's items (IterationDone.refused)
  std::vector<messages::iteration_report> reports;
};

// Records the reports the instance sends to the coordinator.
caf::behavior recording_coordinator(caf::event_based_actor*, transcript* log) {
  return {[log](msg_atom, const capnp_blob& b) {
    if (auto r = messages::decode<messages::iteration_report>(b)) log->reports.push_back(*r);
    if (auto d = messages::decode<messages::request_done>(b)) log->done.push_back(*d);
  }};
}

// Answers every Execute after 1 ms with token 7 for each item.
caf::behavior scripted_worker(caf::event_based_actor* self, transcript* log) {
  return {[self, log](msg_atom, const capnp_blob& b) {
    auto ex = messages::decode<messages::execute>(b);
    if (!ex) {
      ++log->rejected_executes;
      return;
    }
    log->executes.push_back(*ex);
    messages::iteration_done done;
    done.epoch = ex->epoch;
    done.instance = ex->instance;
    done.iteration = ex->iteration;
    done.duration_ns = 1'000'000;
    done.next_tokens.assign(ex->items.size(), 7);
    if (!log->fail_next.empty()) {
      done.error = std::exchange(log->fail_next, {});
      done.next_tokens.clear();
    }
    for (std::size_t i = 0; i < ex->items.size(); ++i) {
      if (ex->items[i].request != log->refuse) continue;
      done.next_tokens[i] = no_token;
      done.refused.push_back(
          {.item = static_cast<std::uint32_t>(i), .reason = "not_found: request 2: not cached"});
    }
    self->delayed_send(caf::actor_cast<caf::actor>(self->current_sender()), 1ms, msg_atom::value,
                       messages::encode(done));
  }};
}

class InstanceManager : public ::testing::Test {
 protected:
  // (layer, token_begin) of every row in `kept`, in order.
  static std::vector<std::pair<std::uint32_t, std::uint32_t>> kept_ranges(
      const std::vector<messages::kv_delta_batch>& kept) {
    std::vector<std::pair<std::uint32_t, std::uint32_t>> ranges;
    for (const auto& k : kept)
      for (const auto& r : k.rows) ranges.emplace_back(k.layer_begin, r.token_begin);
    return ranges;
  }

  // A manager of a real device (2 layers, 100 blocks of 16 tokens) whose
  // worker records the KV rows the manager keeps for the device in `kept`.
  void start_on_a_device(std::vector<messages::kv_delta_batch>& kept) {
    instance_options o;
    o.id = self_id;
    o.total_blocks = 100;
    o.block_tokens = 16;
    o.layers = 2;
    o.device_memory = true;
    o.copy_stall = 50ms;
    coordinator_ = sys_.spawn(recording_coordinator, &log_);
    worker_ = sys_.spawn([&kept](caf::event_based_actor*) -> caf::behavior {
      return {
          [&kept](msg_atom, const capnp_blob& b) {
            if (auto k = messages::decode<messages::kv_delta_batch>(b)) kept.push_back(*k);
          },
          [](actors::release_atom, const std::vector<request_id>&) {},
      };
    });
    manager_ = spawn_instance_manager(sys_, o);
    caf::anon_send(manager_, actors::peers_atom::value, coordinator_, worker_);
  }

  // A manager of a real device (100 blocks) whose worker records each
  // Execute, answers it at once as `answer` fills its IterationDone (tokens,
  // refusals), and appends the ids it is told to free to `released`.
  void start_real_device(
      std::function<void(const messages::execute&, messages::iteration_done&)> answer,
      std::vector<request_id>& released) {
    instance_options o;
    o.id = self_id;
    o.total_blocks = 100;
    o.device_memory = true;
    coordinator_ = sys_.spawn(recording_coordinator, &log_);
    worker_ = sys_.spawn([this, answer = std::move(answer),
                          &released](caf::event_based_actor* self) -> caf::behavior {
      return {
          [this, self, answer](msg_atom, const capnp_blob& b) {
            auto ex = messages::decode<messages::execute>(b);
            if (!ex) return;
            log_.executes.push_back(*ex);
            messages::iteration_done d;
            d.epoch = ex->epoch;
            d.instance = ex->instance;
            d.iteration = ex->iteration;
            d.duration_ns = 1000;
            answer(*ex, d);
            self->send(caf::actor_cast<caf::actor>(self->current_sender()), msg_atom::value,
                       messages::encode(d));
          },
          [&released](actors::release_atom, const std::vector<request_id>& ids) {
            released.insert(released.end(), ids.begin(), ids.end());
          },
      };
    });
    manager_ = spawn_instance_manager(sys_, o);
    caf::anon_send(manager_, actors::peers_atom::value, coordinator_, worker_);
  }

  // Request `id` with the token ids {5, 6, 7}, to decode here after them.
  static messages::assign_prefill prompt_of_ids(request_id id, std::uint32_t max_tokens) {
    messages::assign_prefill a;
    a.epoch = 1;
    a.request = id;
    a.instance = self_id;
    a.prompt = {5, 6, 7};
    a.prompt_len = 3;
    a.max_tokens = max_tokens;
    a.then_decode = true;
    return a;
  }

  void start(std::uint64_t blocks, std::uint32_t layers = 0) {
    instance_options o;
    o.id = self_id;
    o.layers = layers;
    o.total_blocks = blocks;
    o.block_tokens = 16;
    o.bytes_per_block = 1024;
    o.copy_stall = 10ms;
    o.max_batch_tokens = 2048;
    o.chunk_tokens = 256;
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
  void set_role(messages::role r) {
    deliver(messages::set_role{
        .epoch = 1, .instance = self_id, .role = r, .partner = partner_id, .fenced = false});
  }

  void deliver_raw(capnp_blob b) { caf::anon_send(manager_, msg_atom::value, std::move(b)); }

  void assign(request_id id, std::uint32_t prompt, std::uint32_t max_tokens, bool then_decode,
              instance_id partner = no_instance, std::vector<token_id> stop = {}) {
    messages::assign_prefill a;
    a.epoch = 1;
    a.request = id;
    a.instance = self_id;
    a.partner = partner;
    a.prompt_len = prompt;
    a.max_tokens = max_tokens;
    a.then_decode = then_decode;
    a.stop_tokens = std::move(stop);
    deliver(a);
  }

  // A replica of `tokens` tokens of the partner's request `id`.
  void replica_rows(request_id id, std::uint32_t begin, std::uint32_t end,
                    instance_id from = partner_id, std::uint32_t layer_begin = 0,
                    std::uint32_t layer_end = 1) {
    messages::kv_delta_batch k;
    k.epoch = 1;
    k.from_instance = from;
    k.layer_begin = layer_begin;
    k.layer_end = layer_end;
    k.phase = messages::phase::prefill;
    k.rows.push_back({.request = id,
                      .token_begin = begin,
                      .token_end = end,
                      .size_bytes = std::uint64_t{end - begin} * 64,
                      .data = {}});
    deliver(k);
  }

  // The coordinator places request `id`'s decode here, on the copy it holds
  // (after a takeover: its decoding instance was lost).
  void start_decode_from_copy(request_id id, std::uint32_t context, std::uint32_t generated,
                              instance_id partner, std::uint32_t max_tokens,
                              bool takeover = false) {
    messages::start_decode d;
    d.takeover = takeover;
    d.epoch = 1;
    d.request = id;
    d.instance = self_id;
    d.context_len = context;
    d.last_token = 3;
    d.from_replica = true;
    d.generated = generated;
    d.partner = partner;
    d.max_tokens = max_tokens;
    deliver(d);
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

// Fencing: a SetRole with `fenced` (the coordinator declared this instance
// lost) ends the manager at once, with a reason naming the instance; it
// runs nothing more of what it held.
// A ping is answered (once what came before it has been handled: the
// bench_kv_receive fence).
TEST_F(InstanceManager, APingIsAnsweredAfterWhatCameBefore) {
  std::vector<messages::kv_delta_batch> kept;
  start_on_a_device(kept);
  messages::kv_delta_batch rows{.epoch = 1,
                                .from_instance = partner_id,
                                .layer_begin = 0,
                                .layer_end = 2,
                                .rows = {{.request = 5,
                                          .token_begin = 0,
                                          .token_end = 16,
                                          .size_bytes = 64,
                                          .data = std::vector<std::byte>(64),
                                          .ring_pos = 0}},
                                .phase = messages::phase::prefill,
                                .ring = 0,
                                .abandoned = {}};
  deliver(rows);
  auto answered = std::make_shared<bool>(false);
  sys_.spawn([m = manager_, answered](caf::event_based_actor* self) {
    self->request(m, std::chrono::seconds{1}, actors::ping_atom::value)
        .then([answered](actors::pong_atom) { *answered = true; });
  });
  vt_->run_for(1ms);
  EXPECT_TRUE(*answered);
  EXPECT_EQ(kept.size(), 1u) << "the rows sent ahead went on to the worker";
}

TEST_F(InstanceManager, AFencedSetRoleEndsItWithAReasonNamingTheInstance) {
  start(64);
  set_role(messages::role::decode);
  assign(1, 32, 8, true);
  vt_->run_for(500us);  // the prefill is running
  const std::size_t executes = log_.executes.size();
  ASSERT_GE(executes, 1u);
  caf::error reason;
  auto watcher = sys_.spawn([&reason, m = manager_](caf::event_based_actor* self) {
    self->monitor(m);
    self->set_down_handler([&reason](caf::down_msg& dm) { reason = dm.reason; });
    return caf::behavior{[](int) {}};
  });
  vt_->run_for(100us);
  deliver(messages::set_role{.epoch = 3,
                             .instance = self_id,
                             .role = messages::role::decode,
                             .partner = no_instance,
                             .fenced = true});
  vt_->run();
  ASSERT_TRUE(reason) << "the manager did not end";
  EXPECT_NE(sys_.render(reason).find("fenced: the coordinator declared instance 0 lost (epoch 3)"),
            std::string::npos)
      << sys_.render(reason);
  EXPECT_EQ(log_.executes.size(), executes) << "it went on executing after the fence";
  caf::anon_send_exit(watcher, caf::exit_reason::user_shutdown);
  vt_->run();
}

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

// When a decode cannot grow, the request preempted for it is never one
// already in the batch being formed (that left a decode item of a request
// whose KV was just freed, and later a duplicate item the worker rejects).
TEST_F(InstanceManager, PreemptionSparesRequestsAlreadyInTheBatch) {
  start(10);               // 160 tokens
  assign(1, 70, 4, true);  // 5 blocks, room for 80 tokens: it never needs a sixth
  assign(2, 80, 4, true);  // 5 blocks; its first decode step needs a sixth, and the
                           // only other request, 1, is already in that batch
  vt_->run_for(500ms);
  EXPECT_EQ(log_.rejected_executes, 0u);
  for (const auto& ex : log_.executes) {
    for (std::size_t i = 0; i < ex.items.size(); ++i) {
      for (std::size_t j = 0; j < i; ++j) EXPECT_NE(ex.items[i].request, ex.items[j].request);
    }
  }
  std::map<request_id, std::vector<std::uint32_t>> indices;
  std::uint64_t preempted = 0;
  for (const auto& r : log_.reports) {
    preempted += r.preempted.size();
    for (const auto& run : r.runs) {
      for (std::uint32_t k = 0; k < run.count; ++k) {
        indices[run.request].push_back(run.first_index + k);
      }
    }
  }
  EXPECT_EQ(preempted, 0u) << "2 waits a step for a block instead: 1 is in the batch";
  // A report lists the preemptions made while forming its own iteration's
  // batch: none of them may be in that batch.
  for (const auto& r : log_.reports) {
    for (const auto& ex : log_.executes) {
      if (ex.iteration != r.iteration) continue;
      for (const auto& it : ex.items) {
        for (const request_id gone : r.preempted) {
          EXPECT_NE(it.request, gone)
              << "iteration " << ex.iteration << " runs a preempted request";
        }
      }
    }
  }
  for (const request_id id : {request_id{1}, request_id{2}}) {
    SCOPED_TRACE(id);
    EXPECT_EQ(indices[id], (std::vector<std::uint32_t>{0, 1, 2, 3}))
        << "every token once, in order";
  }
  EXPECT_EQ(last_report().load.primary_blocks, 0u);
}

// One kind of work: a prefill instance runs whole prompts (up to
// max_batch_tokens), a decode instance decode steps; no batch mixes them.
TEST_F(InstanceManager, OneKindOfWorkRunsInSinglePhaseBatches) {
  start(1000);
  set_role(messages::role::prefill);
  assign(1, 1000, 1, false);
  assign(2, 900, 1, false);
  vt_->run_for(100ms);
  set_role(messages::role::decode);
  assign(3, 100, 5, true);
  vt_->run_for(100ms);
  ASSERT_GE(log_.executes.size(), 4u);
  EXPECT_EQ(log_.executes[0].items.size(), 1u) << "1000 tokens: alone";
  EXPECT_EQ(log_.executes[0].items[0].num_tokens, 1000u) << "whole, not chunked";
  for (const auto& ex : log_.executes) {
    const bool prefill = ex.items.front().phase == messages::phase::prefill;
    for (const auto& it : ex.items) EXPECT_EQ(it.phase == messages::phase::prefill, prefill);
  }
}

// Both kinds of work in one instance (a saturated pair), whatever its role:
// each iteration runs every decode plus one chunk_tokens chunk of prompt, so
// no decode waits behind the whole 1000-token prompt.
class InstanceManagerBothKinds : public InstanceManager,
                                 public ::testing::WithParamInterface<messages::role> {};

TEST_P(InstanceManagerBothKinds, DecodesRunWithPromptChunks) {
  start(1000);
  set_role(GetParam());
  assign(1, 100, 20, true);
  assign(3, 50, 20, true);
  vt_->run_for(3ms);  // both prefilled, now decoding here
  assign(2, 1000, 2, false);
  vt_->run_for(100ms);
  std::uint32_t chunked = 0;
  std::size_t iterations_with_prompt = 0;
  for (const auto& ex : log_.executes) {
    std::uint32_t prompt = 0, decodes = 0;
    for (const auto& it : ex.items) {
      if (it.request == 2) prompt += it.num_tokens;
      if (it.phase == messages::phase::decode) ++decodes;
    }
    if (prompt == 0) continue;
    ++iterations_with_prompt;
    chunked += prompt;
    EXPECT_LE(prompt, 256u) << "one chunk per iteration";
    EXPECT_EQ(decodes, 2u) << "every decode rides along with the chunk";
  }
  EXPECT_EQ(chunked, 1000u);
  EXPECT_EQ(iterations_with_prompt, 4u) << "1000 tokens in chunks of 256";
}

INSTANTIATE_TEST_SUITE_P(Roles, InstanceManagerBothKinds,
                         ::testing::Values(messages::role::prefill, messages::role::decode));

// A decode placed here on a copy that never completes (its source stopped
// syncing) recomputes the missing tail after copy_stall instead of waiting
// forever.
TEST_F(InstanceManager, AStalledCopyIsCompletedByRecomputingItsTail) {
  start(100);
  replica_rows(5, 0, 48);  // the copy holds 48 tokens
  vt_->run();
  start_decode_from_copy(5, 50, 3, partner_id, 6);  // the source had 50: two rows never arrive
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

// Takeover: the source is gone, so the copy's missing tail is recomputed at
// once, not after copy_stall; then it decodes on from the given token.
TEST_F(InstanceManager, ATakeoverRecomputesWhatTheCopyLacksAtOnce) {
  start(100);
  replica_rows(5, 0, 48);
  vt_->run();
  start_decode_from_copy(5, 50, 3, no_instance, 6, true);
  vt_->run_for(1500us);  // one iteration, well under copy_stall
  ASSERT_FALSE(log_.executes.empty()) << "no wait for rows that will not come";
  const messages::execute_item& tail = log_.executes.front().items.at(0);
  EXPECT_EQ(tail.phase, messages::phase::prefill);
  EXPECT_EQ(tail.context, 48u);
  EXPECT_EQ(tail.num_tokens, 2u);
  EXPECT_FALSE(tail.wants_output) << "no token is produced twice";
  vt_->run_for(100ms);
  std::uint32_t first_index = 0, tokens = 0;
  for (const auto& r : log_.reports) {
    for (const auto& run : r.runs) {
      if (tokens == 0) first_index = run.first_index;
      tokens += run.count;
    }
  }
  EXPECT_EQ(first_index, 3u) << "goes on after the 3 tokens the client has";
  EXPECT_EQ(tokens, 3u);
}

// Takeover without a copy here: the whole context (prompt and generated
// tokens) is recomputed, then decoding goes on; a copy that ran ahead of the
// coordinator is cut back to what the coordinator knows.
TEST_F(InstanceManager, ATakeoverWithoutACopyRecomputesTheContext) {
  start(100);
  replica_rows(6, 0, 40);  // ahead: the coordinator knows of 30 tokens only
  vt_->run();
  start_decode_from_copy(7, 20, 2, no_instance, 4, true);  // no copy of 7 here
  start_decode_from_copy(6, 30, 2, no_instance, 4, true);
  vt_->run_for(1500us);
  ASSERT_FALSE(log_.executes.empty()) << "no wait for rows that will not come";
  vt_->run_for(100ms);
  bool recomputed_7 = false, first_decode_6 = true;
  for (const auto& ex : log_.executes) {
    for (const auto& it : ex.items) {
      if (it.request == 7 && it.phase == messages::phase::prefill) {
        EXPECT_EQ(it.context, 0u);
        EXPECT_EQ(it.num_tokens, 20u);
        recomputed_7 = true;
      }
      if (it.request == 6) {
        EXPECT_EQ(it.phase, messages::phase::decode) << "its copy holds all it needs";
        if (first_decode_6) {
          EXPECT_EQ(it.context, 30u) << "the rows past 30 are not used";
        }
        first_decode_6 = false;
      }
    }
  }
  EXPECT_TRUE(recomputed_7);
  ASSERT_EQ(log_.done.size(), 2u);
  for (const auto& d : log_.done) EXPECT_EQ(d.output_tokens, 4u);
}

// Rows that keep arriving hold the stall timer off: no recompute.
TEST_F(InstanceManager, ACopyStillReceivingRowsIsNotRecomputed) {
  start(100);
  replica_rows(5, 0, 40);
  vt_->run();
  start_decode_from_copy(5, 48, 1, no_instance, 2);
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

// A real device streams a prompt's rows layer by layer: they count as copied
// only once the batch holding the last layer arrives, so a decode placed on
// the copy waits for it instead of reading layers that are not there yet.
TEST_F(InstanceManager, RowsCountOnlyOnceTheirLastLayerArrives) {
  start(100, 4);
  for (std::uint32_t l = 0; l < 3; ++l) replica_rows(5, 0, 48, partner_id, l, l + 1);
  vt_->run();
  start_decode_from_copy(5, 48, 1, no_instance, 2);
  vt_->run_for(5ms);  // under copy_stall: waiting, not recomputing
  EXPECT_TRUE(log_.executes.empty()) << "3 of 4 layers is not a copy of 48 tokens";
  replica_rows(5, 0, 48, partner_id, 3, 4);
  vt_->run_for(100ms);
  ASSERT_FALSE(log_.executes.empty());
  for (const auto& ex : log_.executes) {
    for (const auto& it : ex.items) EXPECT_EQ(it.phase, messages::phase::decode);
  }
  EXPECT_EQ(log_.executes.front().items.at(0).context, 48u);
}

// The sender's flow control gave up copies (KvDeltaBatch.abandoned): the
// replicas held here are dropped and reported as evicted, one never seen is
// reported too, later rows of them are ignored, and a copy waiting to become
// a primary recomputes what it lacks at once, not after copy_stall.
TEST_F(InstanceManager, AbandonedCopiesAreDroppedAndReported) {
  start(100, 4);
  for (std::uint32_t l = 0; l < 4; ++l) replica_rows(5, 0, 48, partner_id, l, l + 1);
  replica_rows(6, 0, 32, partner_id, 0, 1);  // one layer of four so far
  replica_rows(7, 0, 40, partner_id, 0, 4);
  vt_->run();
  start_decode_from_copy(7, 48, 1, no_instance, 2);  // waits for rows 40..48
  vt_->run_for(1ms);
  EXPECT_TRUE(log_.executes.empty());
  messages::kv_delta_batch notice;
  notice.epoch = 1;
  notice.from_instance = partner_id;
  notice.layer_begin = 0;
  notice.layer_end = 1;
  notice.abandoned = {5, 6, 9, 7};
  deliver(notice);
  vt_->run_for(1500us);  // one iteration, well under copy_stall (10 ms)
  ASSERT_FALSE(log_.executes.empty()) << "7 no longer waits for its copy";
  const messages::execute_item& tail = log_.executes.front().items.at(0);
  EXPECT_EQ(tail.request, 7u);
  EXPECT_EQ(tail.phase, messages::phase::prefill);
  EXPECT_EQ(tail.context, 40u);
  EXPECT_EQ(tail.num_tokens, 8u);
  ASSERT_FALSE(log_.reports.empty());
  EXPECT_EQ(log_.reports.front().evicted_replicas, (std::vector<request_id>{5, 6, 9}));
  replica_rows(5, 48, 49, partner_id, 0, 4);  // late rows of a dropped copy
  vt_->run_for(100ms);
  EXPECT_EQ(last_report().load.replica_blocks, 0u) << "no copy is held any more";
}

// A device error ends the requests of that iteration as failed, naming the
// device's message; the others, and later ones, go on.
TEST_F(InstanceManager, ADeviceErrorFailsThatIterationsRequestsOnly) {
  start(100);
  assign(1, 16, 3, true);
  vt_->run_for(10ms);  // 1 is decoding
  log_.fail_next = "out of device memory";
  assign(2, 16, 3, true);  // joins 1's next iteration
  vt_->run_for(50ms);
  assign(3, 16, 3, true);
  vt_->run_for(50ms);
  std::map<request_id, messages::request_done> by_id;
  for (const auto& d : log_.done) by_id[d.request] = d;
  ASSERT_EQ(by_id.size(), 3u);
  std::size_t failed = 0;
  for (const auto& [id, d] : by_id) {
    SCOPED_TRACE(id);
    if (d.status == messages::request_status::failed) {
      ++failed;
      EXPECT_EQ(d.error, "instance 0: out of device memory");
      EXPECT_EQ(d.finish, messages::finish_reason::none);
    } else {
      EXPECT_EQ(d.status, messages::request_status::ok);
      EXPECT_EQ(d.output_tokens, 3u);
    }
  }
  EXPECT_GE(failed, 1u);
  EXPECT_EQ(by_id.at(3).status, messages::request_status::ok) << "later requests run";
  EXPECT_EQ(last_report().load.primary_blocks, 0u) << "nothing leaked";
}

// One item the device refused (IterationDone.refused) fails its own request,
// with the device's words; the others in that iteration ran and go on.
TEST_F(InstanceManager, ARefusedItemFailsOnlyItsOwnRequest) {
  start(100);
  log_.refuse = 2;
  for (const request_id id : {1, 2, 3}) assign(id, 16, 3, true);  // one prefill batch
  vt_->run_for(50ms);
  bool refused_beside_another = false;
  for (const auto& ex : log_.executes) {
    bool has_2 = false, has_other = false;
    for (const auto& it : ex.items) (it.request == 2 ? has_2 : has_other) = true;
    refused_beside_another |= has_2 && has_other;
  }
  EXPECT_TRUE(refused_beside_another) << "2 was batched with another request";
  std::map<request_id, messages::request_done> by_id;
  for (const auto& d : log_.done) by_id[d.request] = d;
  ASSERT_EQ(by_id.size(), 3u);
  EXPECT_EQ(by_id.at(2).status, messages::request_status::failed);
  EXPECT_EQ(by_id.at(2).error, "instance 0: not_found: request 2: not cached");
  for (const request_id id : {1, 3}) {
    SCOPED_TRACE(id);
    EXPECT_EQ(by_id.at(id).status, messages::request_status::ok);
    EXPECT_EQ(by_id.at(id).output_tokens, 3u);
  }
  EXPECT_EQ(last_report().load.primary_blocks, 0u) << "nothing leaked";
}

// A stop token ends its request as complete (finish "stop") right after it,
// first token or later; a request without one runs to max_tokens.
TEST_F(InstanceManager, AStopTokenEndsTheRequestThere) {
  start(100);
  assign(1, 16, 10, true, no_instance, {3, 7});  // the worker's tokens are all 7
  assign(2, 16, 3, true, no_instance, {8});
  vt_->run_for(50ms);
  std::map<request_id, messages::request_done> by_id;
  for (const auto& d : log_.done) by_id[d.request] = d;
  ASSERT_EQ(by_id.size(), 2u);
  EXPECT_EQ(by_id.at(1).status, messages::request_status::ok);
  EXPECT_EQ(by_id.at(1).finish, messages::finish_reason::stop);
  EXPECT_EQ(by_id.at(1).output_tokens, 1u);
  EXPECT_EQ(by_id.at(2).finish, messages::finish_reason::length);
  EXPECT_EQ(by_id.at(2).output_tokens, 3u);
  for (const auto& ex : log_.executes) {
    for (const auto& it : ex.items) {
      EXPECT_FALSE(it.request == 1 && it.phase == messages::phase::decode) << "decoded past stop";
    }
  }
  EXPECT_EQ(last_report().load.primary_blocks, 0u) << "nothing leaked";
}

// A client gave up: a queued request ends at once, a running one when its
// iteration lands (that token dropped); both as cancelled, KV freed, and the
// other requests go on.
TEST_F(InstanceManager, ACancelledRequestEndsAsCancelledAndFreesItsKv) {
  start(100);
  assign(1, 16, 50, true);
  vt_->run_for(10ms);  // 1 is decoding, an iteration in flight
  const std::size_t in_flight = log_.executes.size();
  deliver(messages::cancel{.epoch = 1, .request = 1, .reason = "client left"});
  assign(2, 16, 3, true);
  vt_->run_for(50ms);
  std::map<request_id, messages::request_done> by_id;
  for (const auto& d : log_.done) by_id[d.request] = d;
  ASSERT_EQ(by_id.count(1), 1u);
  EXPECT_EQ(by_id.at(1).status, messages::request_status::cancelled);
  EXPECT_LT(by_id.at(1).output_tokens, 50u);
  ASSERT_EQ(by_id.count(2), 1u);
  EXPECT_EQ(by_id.at(2).status, messages::request_status::ok);
  ASSERT_GT(log_.executes.size(), in_flight);
  for (std::size_t k = in_flight; k < log_.executes.size(); ++k) {  // after the one in flight
    for (const auto& it : log_.executes[k].items) EXPECT_NE(it.request, 1u) << "Execute " << k;
  }
  EXPECT_EQ(last_report().load.primary_blocks, 0u) << "nothing leaked";
}

// Real devices: Execute items carry the token ids (the prompt, then each
// output token as the next decode's input), and the worker is told to free
// a finished request's KV.
TEST_F(InstanceManager, OnARealDeviceItemsCarryTokenIdsAndKvIsReleased) {
  std::vector<request_id> released;
  start_real_device(
      [this](const messages::execute& ex, messages::iteration_done& d) {
        d.next_tokens.assign(ex.items.size(), 40 + static_cast<token_id>(log_.executes.size()));
      },
      released);
  deliver(prompt_of_ids(9, 3));
  vt_->run_for(10ms);
  ASSERT_EQ(log_.executes.size(), 3u);
  EXPECT_EQ(log_.executes[0].items[0].tokens, (std::vector<token_id>{5, 6, 7}));
  EXPECT_EQ(log_.executes[1].items[0].tokens, (std::vector<token_id>{41}));  // the first token
  EXPECT_EQ(log_.executes[2].items[0].tokens, (std::vector<token_id>{42}));
  EXPECT_EQ(released, (std::vector<request_id>{9}));
}

// The KV counters of each IterationDone add up in the instance's load: sent,
// through a same-node ring, and copied out for want of pinned memory.
TEST_F(InstanceManager, KvByteCountersAddUpAcrossIterations) {
  std::vector<request_id> released;
  start_real_device(
      [](const messages::execute& ex, messages::iteration_done& d) {
        d.next_tokens.assign(ex.items.size(), 40);
        d.kv_bytes_sent = 1000;
        d.kv_bytes_shared = 300;
        d.kv_bytes_copied = 200;
        d.kv_bytes_dropped = 50;
      },
      released);
  deliver(prompt_of_ids(9, 3));
  vt_->run_for(10ms);
  ASSERT_EQ(log_.executes.size(), 3u);
  const messages::instance_report& load = last_report().load;
  EXPECT_EQ(load.kv_bytes_sent, 3000u);
  EXPECT_EQ(load.kv_bytes_shared, 900u);
  EXPECT_EQ(load.kv_bytes_copied, 600u);
  EXPECT_EQ(load.kv_bytes_dropped, 150u);
}

// On a real device a refused item is rebuilt once from the token ids the
// manager keeps: the device frees the request's KV, the whole context
// (prompt and output so far) is prefilled again without output, and decoding
// goes on from the last token; a second refusal fails the request.
TEST_F(InstanceManager, OnARealDeviceARefusedRequestIsRebuiltOnceThenFails) {
  std::vector<request_id> released;
  int refusals_left = 0;  // of request 9's decodes, from the second one on
  start_real_device(
      [&refusals_left](const messages::execute& ex, messages::iteration_done& d) {
        for (std::size_t i = 0; i < ex.items.size(); ++i) {
          const auto& it = ex.items[i];
          const bool refuse = it.request == 9 && it.phase == messages::phase::decode &&
                              it.context > 3 && refusals_left > 0;
          d.next_tokens.push_back(refuse ? no_token : 40 + static_cast<token_id>(it.context));
          if (!refuse) continue;
          --refusals_left;
          d.refused.push_back({.item = static_cast<std::uint32_t>(i),
                               .reason = "invalid_argument: request 9: context 4 but 0 cached"});
        }
      },
      released);
  const messages::assign_prefill a = prompt_of_ids(9, 4);

  refusals_left = 1;
  deliver(a);
  vt_->run_for(10ms);
  ASSERT_EQ(log_.done.size(), 1u);
  EXPECT_EQ(log_.done[0].status, messages::request_status::ok) << log_.done[0].error;
  EXPECT_EQ(log_.done[0].output_tokens, 4u);
  // (token = 40 + context) prefill [5 6 7] -> 40; decode 40 at 3 -> 43;
  // decode 43 at 4 refused; rebuild [5 6 7 40] without output; decode 43 at 4
  // -> 44; decode 44 at 5 -> 45.
  std::vector<messages::execute_item> seen;
  for (const auto& ex : log_.executes) seen.push_back(ex.items.at(0));
  ASSERT_EQ(seen.size(), 6u);
  EXPECT_EQ(seen[3].phase, messages::phase::prefill);
  EXPECT_EQ(seen[3].context, 0u);
  EXPECT_EQ(seen[3].tokens, (std::vector<token_id>{5, 6, 7, 40}));
  EXPECT_FALSE(seen[3].wants_output);
  EXPECT_EQ(seen[4].context, 4u) << "decoding goes on after the rebuilt context";
  EXPECT_EQ(seen[4].tokens, (std::vector<token_id>{43}));
  EXPECT_EQ(seen[5].tokens, (std::vector<token_id>{44}));
  ASSERT_GE(released.size(), 1u);
  EXPECT_EQ(released[0], 9u) << "the device's KV of it was freed before the rebuild";
  bool reported = false;
  for (const auto& r : log_.reports) reported |= !r.preempted.empty() && r.preempted[0] == 9;
  EXPECT_TRUE(reported) << "the rebuild is reported as a preemption";

  refusals_left = 2;  // refused again after its rebuild: it fails
  log_.done.clear();
  log_.executes.clear();
  deliver(a);
  vt_->run_for(10ms);
  ASSERT_EQ(log_.done.size(), 1u);
  EXPECT_EQ(log_.done[0].status, messages::request_status::failed);
  EXPECT_EQ(log_.done[0].error, "instance 0: invalid_argument: request 9: context 4 but 0 cached");
}

// A copy becoming the primary on a real device: a layer's rows that come in
// pieces (the sender's flow control cuts large ones by token range) are all
// kept for the device, not only those that start within what the copy held.
TEST_F(InstanceManager, ACopysRowsInPiecesAreAllKeptForTheDevice) {
  std::vector<messages::kv_delta_batch> kept;
  start_on_a_device(kept);
  for (std::uint32_t l = 0; l < 2; ++l) replica_rows(5, 0, 40, partner_id, l, l + 1);
  vt_->run();
  start_decode_from_copy(5, 48, 1, no_instance, 2);  // waits for rows 40..48
  vt_->run_for(1ms);
  kept.clear();
  replica_rows(5, 40, 44, partner_id, 0, 1);
  replica_rows(5, 44, 48, partner_id, 0, 1);  // starts past what the copy held
  replica_rows(5, 50, 52, partner_id, 0, 1);  // a gap: not kept
  replica_rows(5, 40, 44, partner_id, 1, 2);
  replica_rows(5, 44, 48, partner_id, 1, 2);
  vt_->run_for(1ms);
  EXPECT_EQ(kept_ranges(kept), (std::vector<std::pair<std::uint32_t, std::uint32_t>>{
                                   {0, 40}, {0, 44}, {1, 40}, {1, 44}}));
}

// Found on an H200 with llama2-7b: a StartDecode that lands between two
// pieces of a layer group (the first kept while the request was a copy) must
// not lose the rest of that group, or the device decodes from a cache with a
// hole ("context 2048 but 1536 cached in every layer").
TEST_F(InstanceManager, ACopyBecomingThePrimaryMidLayerKeepsTheRestOfItsPieces) {
  std::vector<messages::kv_delta_batch> kept;
  start_on_a_device(kept);
  for (std::uint32_t l = 0; l < 2; ++l) replica_rows(5, 0, 40, partner_id, l, l + 1);
  replica_rows(5, 40, 44, partner_id, 0, 1);  // layer 0's first piece, still a copy
  vt_->run();
  start_decode_from_copy(5, 48, 1, no_instance, 2);  // waits for rows 40..48
  vt_->run_for(1ms);
  kept.clear();
  replica_rows(5, 44, 48, partner_id, 0, 1);  // continues the piece kept as a copy
  replica_rows(5, 40, 44, partner_id, 1, 2);
  replica_rows(5, 44, 48, partner_id, 1, 2);
  vt_->run_for(1ms);
  EXPECT_EQ(kept_ranges(kept),
            (std::vector<std::pair<std::uint32_t, std::uint32_t>>{{0, 44}, {1, 40}, {1, 44}}));
}

TEST_F(InstanceManager, MalformedAndMisaddressedMessagesAreDroppedAndCounted) {
  start(100);
  deliver_raw(capnp_blob{.type = 9999, .bytes = {1, 2, 3}, .local = {}});  // unknown type
  deliver_raw(capnp_blob{.type = static_cast<std::uint16_t>(messages::msg_type::assign_prefill),
                         .bytes = {0, 0, 0, 0, 1, 0, 0, 0},
                         .local = {}});  // truncated
  replica_rows(9, 0, 16, self_id);       // KV "from" the instance itself
  vt_->run();
  EXPECT_TRUE(log_.executes.empty()) << "nothing was accepted";
  assign(1, 16, 1, false);  // a valid request still runs
  vt_->run_for(10ms);
  ASSERT_EQ(log_.executes.size(), 1u);
  EXPECT_EQ(last_report().load.rejected_messages, 3u);
}

}  // namespace
}  // namespace accellm::worker

// device_worker on real backends, with CAF's real scheduler: its tokens are
// the backend's own, it answers while the device computes, KV rows it exports
// let a partner decode the same tokens, and an Execute a real device cannot
// run is answered with an error that names the item.
#include "worker/device_worker.hpp"

#include "actors/atoms.hpp"
#include "actors/system_config.hpp"
#include "device/cpu/cpu_backend.hpp"
#include "messages/codec.hpp"
#include "worker/batch_item.hpp"
#include "worker/kv_replica.hpp"

#include <caf/all.hpp>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

namespace accellm::worker {
namespace {

using namespace std::chrono_literals;
using actors::msg_atom;
using messages::capnp_blob;

constexpr auto patience = 30s;  // every wait below is bounded

std::unique_ptr<device::backend> cpu_tiny(std::uint64_t seed = 1) {
  device::cpu::cpu_options o;
  o.seed = seed;
  o.kv_blocks = 256;
  auto b = device::cpu::make_cpu_backend(*device::find_model("cpu-tiny"), o);
  EXPECT_TRUE(b.ok()) << (b.ok() ? "" : b.err().what());
  return b.ok() ? std::move(b).value() : nullptr;
}

// Default options with `set` applied.
template <class Set>
device_worker_options with(Set set) {
  device_worker_options o;
  set(o);
  return o;
}

std::vector<token_id> prompt(std::uint32_t n) {
  std::vector<token_id> out(n);
  for (std::uint32_t i = 0; i < n; ++i) out[i] = static_cast<token_id>((i * 37 + 11) % 200);
  return out;
}

messages::execute_item prefill(request_id id, std::vector<token_id> tokens,
                               instance_id replica_to = no_instance) {
  const auto n = static_cast<std::uint32_t>(tokens.size());
  return {.request = id,
          .phase = messages::phase::prefill,
          .context = 0,
          .num_tokens = n,
          .tokens = std::move(tokens),
          .wants_output = true,
          .replica_to = replica_to};
}

messages::execute_item decode(request_id id, std::uint32_t context, token_id last) {
  return {.request = id,
          .phase = messages::phase::decode,
          .context = context,
          .num_tokens = 1,
          .tokens = {last},
          .wants_output = true,
          .replica_to = no_instance};
}

messages::execute execute(instance_id instance, std::uint64_t iteration,
                          std::vector<messages::execute_item> items) {
  return {.epoch = 1, .instance = instance, .iteration = iteration, .items = std::move(items)};
}

// What an Execute sent to the test, standing in for both the manager and a
// partner's kv_replica: KvDeltaBatches in arrival order, then IterationDone.
struct sent {
  std::vector<messages::kv_delta_batch> kv;
  messages::iteration_done done;
};

class DeviceWorker : public ::testing::Test {
 protected:
  // The next IterationDone sent to the test (standing in for the manager).
  messages::iteration_done next_done() {
    std::optional<messages::iteration_done> out;
    while (!out) {
      bool timed_out = false;
      self_->receive(
          [&](msg_atom, const capnp_blob& b) {
            if (auto d = messages::decode<messages::iteration_done>(b)) out = *d;
          },
          caf::after(patience) >> [&] { timed_out = true; });
      if (timed_out) {
        ADD_FAILURE() << "no IterationDone within " << patience.count() << " s";
        return {};
      }
    }
    return *out;
  }

  // Runs one Execute on `w` (whose manager and partner is the test): what
  // it sent, up to IterationDone.
  sent send_execute(const caf::actor& w, const messages::execute& ex) {
    self_->send(w, msg_atom::value, messages::encode(ex));
    sent out;
    for (bool done = false; !done;) {
      bool timed_out = false;
      self_->receive(
          [&](msg_atom, const capnp_blob& b) {
            if (auto k = messages::decode<messages::kv_delta_batch>(b)) out.kv.push_back(*k);
            if (auto d = messages::decode<messages::iteration_done>(b)) {
              out.done = *d;
              done = true;
            }
          },
          caf::after(patience) >> [&] { timed_out = true; });
      if (timed_out) {
        ADD_FAILURE() << "no IterationDone within " << patience.count() << " s";
        break;
      }
    }
    return out;
  }

  // Runs one Execute on `w` and waits for its IterationDone.
  messages::iteration_done run(const caf::actor& w, const messages::execute& ex) {
    self_->send(w, msg_atom::value, messages::encode(ex));
    return next_done();
  }

  // The flow control's state of worker `w`: (in flight, queued, abandoned).
  std::array<std::uint64_t, 3> flow(const caf::actor& w) {
    std::array<std::uint64_t, 3> out{~0ull, ~0ull, ~0ull};
    self_->request(w, patience, actors::report_atom::value)
        .receive(
            [&](std::uint64_t f, std::uint64_t q, std::uint64_t a) {
              out = {f, q, a};
            },
            [&](caf::error& e) { ADD_FAILURE() << sys_.render(e); });
    return out;
  }

  // The same batch straight on a backend.
  std::vector<token_id> direct(device::backend& b, const messages::execute& ex) {
    device::batch batch;
    for (const auto& in : ex.items) to_batch_item(in, batch.items.emplace_back());
    auto r = b.run(batch);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.err().what());
    return r.ok() ? r->next_tokens : std::vector<token_id>{};
  }

  actors::system_config cfg_{actors::clock_mode::real};
  caf::actor_system sys_{cfg_};
  caf::scoped_actor self_{sys_};
};

TEST_F(DeviceWorker, TokensAreTheBackendsOwn) {
  auto reference = cpu_tiny();
  ASSERT_NE(reference, nullptr);
  const caf::actor w = spawn_device_worker(sys_, 0, cpu_tiny());
  self_->send(w, actors::peers_atom::value, caf::actor{self_}, std::vector<caf::actor>{});
  auto ex = execute(0, 1, {prefill(1, prompt(20)), prefill(2, prompt(7))});
  messages::iteration_done d = run(w, ex);
  ASSERT_TRUE(d.error.empty()) << d.error;
  EXPECT_EQ(d.iteration, 1u);
  EXPECT_GT(d.duration_ns, 0u) << "measured";
  std::vector<token_id> want = direct(*reference, ex);
  EXPECT_EQ(d.next_tokens, want);
  std::uint32_t context = 20;
  for (std::uint64_t step = 2; step <= 6; ++step, ++context) {
    ex = execute(0, step, {decode(1, context, want[0])});
    d = run(w, ex);
    want = direct(*reference, ex);
    ASSERT_TRUE(d.error.empty()) << d.error;
    EXPECT_EQ(d.next_tokens, want) << "step " << step;
  }
  self_->send_exit(w, caf::exit_reason::user_shutdown);
}

// A backend that hands every call to a cpu-tiny one: the test backends
// below change what they need of it.
class forwarding_backend : public device::backend {
 public:
  forwarding_backend() : inner_(cpu_tiny()) {}
  const device::model_spec& model() const noexcept override { return inner_->model(); }
  device::kv_geometry kv() const noexcept override { return inner_->kv(); }
  result<device::iteration_result> run(const device::batch& b) override { return inner_->run(b); }
  status check_item(const device::batch_item& item) const override {
    return inner_->check_item(item);
  }
  result<device::kv_chunk> export_kv(request_id r, device::index_range l,
                                     device::index_range t) override {
    return inner_->export_kv(r, l, t);
  }
  status import_kv(const device::kv_chunk& c) override { return inner_->import_kv(c); }
  std::uint32_t cached_tokens(request_id r) const noexcept override {
    return inner_->cached_tokens(r);
  }
  void release(request_id r) noexcept override { inner_->release(r); }

 protected:
  std::unique_ptr<device::backend> inner_;
};

// A backend whose run() waits until the test lets it go; it also records
// the nice value and scheduling policy of the thread that runs it.
class gated_backend final : public forwarding_backend {
 public:
  explicit gated_backend(std::shared_future<void> gate, std::promise<void>& entered,
                         std::atomic<int>* nice = nullptr, std::atomic<int>* policy = nullptr)
      : gate_(std::move(gate)), entered_(entered), nice_(nice), policy_(policy) {}
  std::string_view name() const noexcept override { return "gated"; }
  result<device::iteration_result> run(const device::batch& b) override {
    if (nice_ != nullptr) nice_->store(getpriority(PRIO_PROCESS, static_cast<id_t>(gettid())));
    if (policy_ != nullptr) policy_->store(sched_getscheduler(0));
    entered_.set_value();
    gate_.wait();
    return inner_->run(b);
  }

 private:
  std::shared_future<void> gate_;
  std::promise<void>& entered_;
  std::atomic<int>* nice_;
  std::atomic<int>* policy_;
};

// compute_priority::background lowers the device thread, and only it, to
// background_nice; idle also puts it under SCHED_IDLE.
TEST_F(DeviceWorker, BackgroundComputeRunsAtALowerPriority) {
  for (auto priority :
       {compute_priority::normal, compute_priority::background, compute_priority::idle}) {
    std::promise<void> open, entered;
    open.set_value();
    std::atomic<int> nice{-100}, policy{-1};
    const caf::actor w = spawn_device_worker(
        sys_, 0,
        std::make_unique<gated_backend>(open.get_future().share(), entered, &nice, &policy),
        with([&](device_worker_options& o) { o.priority = priority; }));
    self_->send(w, actors::peers_atom::value, caf::actor{self_}, std::vector<caf::actor>{});
    self_->send(w, msg_atom::value, messages::encode(execute(0, 1, {prefill(1, prompt(8))})));
    EXPECT_TRUE(next_done().error.empty());
    EXPECT_EQ(nice.load(), priority == compute_priority::normal ? 0 : background_nice);
    EXPECT_EQ(policy.load(), priority == compute_priority::idle ? SCHED_IDLE : SCHED_OTHER);
    EXPECT_EQ(getpriority(PRIO_PROCESS, static_cast<id_t>(gettid())), 0)
        << "the test's own thread is untouched";
    self_->send_exit(w, caf::exit_reason::user_shutdown);
  }
}

// The actor scheduler never waits for the device: while run() is blocked,
// the worker still answers.
TEST_F(DeviceWorker, AnswersWhileTheDeviceComputes) {
  std::promise<void> open, entered;
  const caf::actor w = spawn_device_worker(
      sys_, 0, std::make_unique<gated_backend>(open.get_future().share(), entered));
  self_->send(w, actors::peers_atom::value, caf::actor{self_}, std::vector<caf::actor>{});
  self_->send(w, msg_atom::value, messages::encode(execute(0, 1, {prefill(1, prompt(8))})));
  ASSERT_EQ(entered.get_future().wait_for(patience), std::future_status::ready);
  bool pong = false;
  self_->request(w, 5s, actors::ping_atom::value)
      .receive([&](actors::pong_atom) { pong = true; },
               [&](caf::error& e) { ADD_FAILURE() << sys_.render(e); });
  EXPECT_TRUE(pong) << "the worker answered while its device was busy";
  open.set_value();
  const messages::iteration_done d = next_done();
  EXPECT_TRUE(d.error.empty()) << d.error;
  EXPECT_EQ(d.next_tokens.size(), 1u);
  self_->send_exit(w, caf::exit_reason::user_shutdown);
}

// The takeover invariant across actors: A prefills with its KV streamed to B
// (through B's kv_replica into B's device); B then decodes the request to the
// tokens A produces. With a ring size, A offers B's worker a shared ring (B's
// replica is in this process, so on this node) and the rows that fit it
// travel as positions in it; with 0, every row travels in the message.
// With a window of one byte, A sends one layer at a time: each waits for the
// KvAck of B's replica for the one before. With pieces of 1000 bytes, each
// layer's rows of the prompt go in 11 pieces of 3 tokens, which B imports in
// turn.
struct pair_case {
  std::uint64_t ring_bytes = 0;
  std::uint64_t window_bytes = default_kv_window_bytes;
  std::uint64_t piece_bytes = default_kv_piece_bytes;
  const char* name = "";
};

class DeviceWorkerPair : public DeviceWorker, public ::testing::WithParamInterface<pair_case> {};

TEST_P(DeviceWorkerPair, RowsSentToThePartnerDecodeToTheSameTokens) {
  const std::uint64_t ring_bytes = GetParam().ring_bytes;
  const caf::actor a = spawn_device_worker(sys_, 0, cpu_tiny(), with([&](device_worker_options& o) {
                                             o.kv_ring_bytes = ring_bytes;
                                             o.kv_flow.window_bytes = GetParam().window_bytes;
                                             o.kv_flow.piece_bytes = GetParam().piece_bytes;
                                           }));
  const caf::actor b = spawn_device_worker(sys_, 1, cpu_tiny());
  const caf::actor b_replica = spawn_kv_replica(sys_, 1);
  // B's manager: counts the rows that arrive in a ring and in the message.
  auto in_ring = std::make_shared<std::atomic<int>>(0);
  auto in_message = std::make_shared<std::atomic<int>>(0);
  const caf::actor b_manager = sys_.spawn([in_ring, in_message] {
    return caf::behavior{[in_ring, in_message](msg_atom, const capnp_blob& blob) {
                           auto m = messages::decode<messages::kv_delta_batch>(blob);
                           if (!m) return;
                           for (const messages::kv_rows& row : m->rows)
                             ++*(m->ring != 0 && row.data.empty() ? in_ring : in_message);
                         },
                         [](actors::ping_atom) { return actors::pong_atom::value; }};
  });
  const caf::actor none = sys_.spawn([] { return caf::behavior{[](msg_atom, capnp_blob) {}}; });
  self_->send(b_replica, actors::peers_atom::value, b_manager, b);
  self_->send(a, actors::peers_atom::value, caf::actor{self_},
              std::vector<caf::actor>{none, b_replica});
  self_->send(b, actors::peers_atom::value, caf::actor{self_}, std::vector<caf::actor>{});
  // B listens once its replica has told it where (ring_atom): a ping through
  // the replica and B orders that before the prefill.
  for (const caf::actor& x : {b_replica, b}) {
    self_->request(x, patience, actors::ping_atom::value)
        .receive([](actors::pong_atom) {}, [&](caf::error& e) { ADD_FAILURE() << sys_.render(e); });
  }
  const messages::iteration_done first = run(a, execute(0, 1, {prefill(7, prompt(33), 1)}));
  ASSERT_TRUE(first.error.empty()) << first.error;
  EXPECT_GT(first.kv_bytes_sent, 0u);
  // Every row has left A once its flow control holds nothing (at once
  // unless the window is small: then each layer waited for an ack; bounded);
  // once B's kv_replica answers a ping it has handed them to B, so B imports
  // them before it runs the decodes sent below.
  std::array<std::uint64_t, 3> state = flow(a);
  for (int i = 0; i < 3000 && (state[0] != 0 || state[1] != 0); ++i) state = flow(a);
  EXPECT_EQ(state, (std::array<std::uint64_t, 3>{0, 0, 0}))
      << "in flight, queued, abandoned: every message acknowledged, no copy given up";
  bool pong = false;
  self_->request(b_replica, patience, actors::ping_atom::value)
      .receive([&](actors::pong_atom) { pong = true; },
               [&](caf::error& e) { ADD_FAILURE() << sys_.render(e); });
  ASSERT_TRUE(pong);
  token_id last_a = first.next_tokens.at(0), last_b = last_a;
  for (std::uint32_t context = 33; context < 38; ++context) {
    const auto on_a = run(a, execute(0, context, {decode(7, context, last_a)}));
    const auto on_b = run(b, execute(1, context, {decode(7, context, last_b)}));
    ASSERT_TRUE(on_a.error.empty()) << on_a.error;
    ASSERT_TRUE(on_b.error.empty()) << "B must hold the copy: " << on_b.error;
    EXPECT_EQ(on_b.next_tokens, on_a.next_tokens) << "context " << context;
    last_a = on_a.next_tokens.at(0);
    last_b = on_b.next_tokens.at(0);
  }
  // The replica handed every batch to the manager before it answered the
  // ping; they are counted once the manager answers one too (it runs on its
  // own, and under load had not yet read them).
  self_->request(b_manager, patience, actors::ping_atom::value)
      .receive([](actors::pong_atom) {}, [&](caf::error& e) { ADD_FAILURE() << sys_.render(e); });
  const int layers = static_cast<int>(device::find_model("cpu-tiny")->layers);
  if (GetParam().piece_bytes < default_kv_piece_bytes) {
    EXPECT_EQ(*in_message, layers * 11) << "33 tokens in pieces of 3, per layer";
  } else {
    EXPECT_EQ(*in_ring + *in_message, layers);
  }
  if (ring_bytes == 0) {
    EXPECT_EQ(*in_ring, 0);
    EXPECT_EQ(first.kv_bytes_shared, 0u);
  } else if (ring_bytes >= (1u << 20)) {
    EXPECT_EQ(*in_ring, layers) << "every layer fits the ring";
    EXPECT_EQ(first.kv_bytes_shared, first.kv_bytes_sent);
  } else {
    EXPECT_EQ(first.kv_bytes_shared, 0u);
    EXPECT_EQ(*in_message, layers) << "a layer's rows do not fit the ring: they overflow";
  }
  for (const auto& x : {a, b, b_replica, b_manager, none})
    self_->send_exit(x, caf::exit_reason::user_shutdown);
}

INSTANTIATE_TEST_SUITE_P(
    RingBytes, DeviceWorkerPair,
    ::testing::Values(pair_case{0, default_kv_window_bytes, default_kv_piece_bytes, "NoRing"},
                      pair_case{std::uint64_t{1} << 20, default_kv_window_bytes,
                                default_kv_piece_bytes, "Ring"},
                      pair_case{4096, default_kv_window_bytes, default_kv_piece_bytes, "SmallRing"},
                      pair_case{0, 1, default_kv_piece_bytes, "NoRingAckEach"},
                      pair_case{0, default_kv_window_bytes, 1000, "NoRingInPieces"}),
    [](const auto& param) { return std::string{param.param.name}; });

// A prompt's rows leave layer by layer, before IterationDone; a decode-only
// iteration's rows leave once, every layer together.
TEST_F(DeviceWorker, APromptsRowsLeaveLayerByLayer) {
  const caf::actor w = spawn_device_worker(sys_, 0, cpu_tiny());
  const caf::actor none = sys_.spawn([] { return caf::behavior{[](msg_atom, capnp_blob) {}}; });
  self_->send(w, actors::peers_atom::value, caf::actor{self_},
              std::vector<caf::actor>{none, caf::actor{self_}});
  const std::uint32_t layers = device::find_model("cpu-tiny")->layers;
  const std::uint64_t row_bytes =
      device::find_model("cpu-tiny")->kv_bytes_per_token_layer(device::dtype::fp32);
  auto exchange = [&](const messages::execute& ex) { return send_execute(w, ex); };
  auto total = [](const sent& s) {
    std::uint64_t n = 0;
    for (const auto& k : s.kv)
      for (const auto& r : k.rows) n += r.data.size();
    return n;
  };

  const sent p = exchange(execute(0, 1, {prefill(7, prompt(19), 1)}));
  ASSERT_TRUE(p.done.error.empty()) << p.done.error;
  ASSERT_EQ(p.kv.size(), layers) << "one KvDeltaBatch per layer";
  for (std::uint32_t l = 0; l < layers; ++l) {
    EXPECT_EQ(p.kv[l].layer_begin, l);
    EXPECT_EQ(p.kv[l].layer_end, l + 1);
    EXPECT_EQ(p.kv[l].from_instance, 0u);
    ASSERT_EQ(p.kv[l].rows.size(), 1u);
    EXPECT_EQ(p.kv[l].rows[0].token_begin, 0u);
    EXPECT_EQ(p.kv[l].rows[0].token_end, 19u);
    EXPECT_EQ(p.kv[l].rows[0].data.size(), 19 * row_bytes);
  }
  EXPECT_EQ(p.done.kv_bytes_sent, total(p));

  // A decode of 7 beside a new prompt (8, not replicated): still per layer,
  // each batch with 7's one new row.
  messages::execute_item d7 = decode(7, 19, p.done.next_tokens.at(0));
  d7.replica_to = 1;
  const sent mixed = exchange(execute(0, 2, {d7, prefill(8, prompt(5))}));
  ASSERT_TRUE(mixed.done.error.empty()) << mixed.done.error;
  ASSERT_EQ(mixed.kv.size(), layers);
  for (const auto& k : mixed.kv) {
    ASSERT_EQ(k.rows.size(), 1u);
    EXPECT_EQ(k.rows[0].request, 7u);
    EXPECT_EQ(k.rows[0].token_begin, 19u);
    EXPECT_EQ(k.rows[0].token_end, 20u);
  }

  // Decodes only: one batch, every layer.
  d7 = decode(7, 20, mixed.done.next_tokens.at(0));
  d7.replica_to = 1;
  const sent step = exchange(execute(0, 3, {d7}));
  ASSERT_TRUE(step.done.error.empty()) << step.done.error;
  ASSERT_EQ(step.kv.size(), 1u);
  EXPECT_EQ(step.kv[0].layer_begin, 0u);
  EXPECT_EQ(step.kv[0].layer_end, layers);
  EXPECT_EQ(step.kv[0].rows.at(0).data.size(), layers * row_bytes);
  EXPECT_EQ(step.done.kv_bytes_sent, total(step));
  for (const auto& x : {w, none}) self_->send_exit(x, caf::exit_reason::user_shutdown);
}

// The flow control in the actor: with a window of one byte one message is on
// the way until the receiver (the test) acknowledges it; IterationDone does
// not wait for the window; a receiver with more queued for it than allowed
// loses a copy (the only one not started: the newest), is told so after
// what was queued, and gets no further rows of it until the request is
// released.
TEST_F(DeviceWorker, RowsWaitForTheWindowAndAFarBehindReceiverLosesTheCopy) {
  const caf::actor w = spawn_device_worker(sys_, 0, cpu_tiny(), with([](device_worker_options& o) {
                                             o.kv_flow = {.window_bytes = 1, .queue_bytes = 1};
                                           }));
  const caf::actor none = sys_.spawn([] { return caf::behavior{[](msg_atom, capnp_blob) {}}; });
  self_->send(w, actors::peers_atom::value, caf::actor{self_},
              std::vector<caf::actor>{none, caf::actor{self_}});
  ASSERT_EQ(device::find_model("cpu-tiny")->layers, 2u);
  // The next message to the test: a KvDeltaBatch or an IterationDone.
  struct next {
    std::optional<messages::kv_delta_batch> kv;
    std::optional<messages::iteration_done> done;
  };
  auto receive = [&] {
    next out;
    self_->receive(
        [&](msg_atom, const capnp_blob& b) {
          if (auto k = messages::decode<messages::kv_delta_batch>(b)) out.kv = *k;
          if (auto d = messages::decode<messages::iteration_done>(b)) out.done = *d;
        },
        caf::after(patience) >> [] { ADD_FAILURE() << "nothing came"; });
    return out;
  };
  auto rows_of = [](const messages::kv_delta_batch& k) {
    std::vector<request_id> out;
    for (const auto& r : k.rows) out.push_back(r.request);
    return out;
  };
  auto ack = [&] {
    self_->send(w, msg_atom::value, messages::encode(messages::kv_ack{.epoch = 0, .batches = 1}));
  };

  // Two prompts: layer 0 of both goes, layer 1 waits; IterationDone comes.
  self_->send(
      w, msg_atom::value,
      messages::encode(execute(0, 1, {prefill(7, prompt(9), 1), prefill(8, prompt(5), 1)})));
  next n = receive();
  ASSERT_TRUE(n.kv.has_value());
  EXPECT_EQ(n.kv->layer_begin, 0u);
  EXPECT_EQ(rows_of(*n.kv), (std::vector<request_id>{7, 8}));
  n = receive();
  ASSERT_TRUE(n.done.has_value()) << "IterationDone does not wait for the window";
  EXPECT_TRUE(n.done->error.empty()) << n.done->error;
  // A third prompt finds layer 1 queued: the queue allows no more, so 9's
  // copy is abandoned; the iteration is not.
  self_->send(w, msg_atom::value, messages::encode(execute(0, 2, {prefill(9, prompt(6), 1)})));
  n = receive();
  ASSERT_TRUE(n.done.has_value()) << "no rows of 9 while layer 0 is unacknowledged";
  const token_id next9 = n.done->next_tokens.at(0);
  std::array<std::uint64_t, 3> state = flow(w);
  EXPECT_GT(state[0], 0u) << "layer 0 on the way";
  EXPECT_GT(state[1], 0u) << "layer 1 and the notice queued";
  EXPECT_EQ(state[2], 1u) << "one copy abandoned";
  // Acks that are not a receiver's credit open nothing: from an actor that
  // is not the receiver, and a malformed one (no batches).
  {
    caf::scoped_actor stranger{sys_};
    stranger->send(w, msg_atom::value,
                   messages::encode(messages::kv_ack{.epoch = 0, .batches = 1}));
  }
  self_->send(w, msg_atom::value, messages::encode(messages::kv_ack{.epoch = 0, .batches = 0}));
  EXPECT_EQ(flow(w), state) << "nothing was released";

  ack();
  n = receive();
  ASSERT_TRUE(n.kv.has_value());
  EXPECT_EQ(n.kv->layer_begin, 1u);
  EXPECT_EQ(rows_of(*n.kv), (std::vector<request_id>{7, 8}));
  ack();
  n = receive();
  ASSERT_TRUE(n.kv.has_value());
  EXPECT_TRUE(n.kv->rows.empty());
  EXPECT_EQ(n.kv->abandoned, std::vector<request_id>{9});
  EXPECT_EQ(n.kv->from_instance, 0u);
  ack();
  EXPECT_EQ(flow(w), (std::array<std::uint64_t, 3>{0, 0, 1}));

  // 9 decodes here, still marked for replication: its rows stay here.
  messages::execute_item d9 = decode(9, 6, next9);
  d9.replica_to = 1;
  self_->send(w, msg_atom::value, messages::encode(execute(0, 3, {d9})));
  n = receive();
  ASSERT_TRUE(n.done.has_value()) << "no rows of an abandoned copy";
  EXPECT_TRUE(n.done->error.empty()) << n.done->error;
  // Released (it ended here), 9 is forgotten; a request reusing nothing of
  // it sends rows again.
  self_->send(w, actors::release_atom::value, std::vector<request_id>{9});
  self_->send(w, msg_atom::value, messages::encode(execute(0, 4, {prefill(9, prompt(4), 1)})));
  n = receive();
  ASSERT_TRUE(n.kv.has_value());
  EXPECT_EQ(rows_of(*n.kv), std::vector<request_id>{9});
  for (const auto& x : {w, none}) self_->send_exit(x, caf::exit_reason::user_shutdown);
}

// An item the device cannot run on its own (here a decode of a request it
// never saw) is refused alone: the others run to the tokens they give
// without it, and only their rows go to the partner.
TEST_F(DeviceWorker, AnItemTheDeviceCannotRunIsRefusedAlone) {
  auto reference = cpu_tiny();
  ASSERT_NE(reference, nullptr);
  const caf::actor w = spawn_device_worker(sys_, 0, cpu_tiny());
  const caf::actor none = sys_.spawn([] { return caf::behavior{[](msg_atom, capnp_blob) {}}; });
  self_->send(w, actors::peers_atom::value, caf::actor{self_},
              std::vector<caf::actor>{none, caf::actor{self_}});
  messages::execute_item stranger = decode(9, 4, 3);
  stranger.replica_to = 1;
  const sent s = send_execute(
      w, execute(0, 1, {prefill(1, prompt(6), 1), stranger, prefill(2, prompt(5), 1)}));
  ASSERT_TRUE(s.done.error.empty()) << s.done.error;
  ASSERT_EQ(s.done.refused.size(), 1u);
  EXPECT_EQ(s.done.refused[0].item, 1u);
  EXPECT_NE(s.done.refused[0].reason.find("request 9"), std::string::npos)
      << s.done.refused[0].reason;
  const std::vector<token_id> want =
      direct(*reference, execute(0, 1, {prefill(1, prompt(6)), prefill(2, prompt(5))}));
  ASSERT_EQ(want.size(), 2u);
  EXPECT_EQ(s.done.next_tokens, (std::vector<token_id>{want[0], no_token, want[1]}));
  ASSERT_FALSE(s.kv.empty());
  for (const auto& k : s.kv) {
    ASSERT_EQ(k.rows.size(), 2u);
    EXPECT_EQ(k.rows[0].request, 1u);
    EXPECT_EQ(k.rows[1].request, 2u);
  }
  // Every item refused: nothing runs, and the answer still comes.
  const messages::iteration_done all = run(w, execute(0, 2, {decode(9, 4, 3), decode(1, 2, 3)}));
  EXPECT_TRUE(all.error.empty()) << all.error;
  EXPECT_EQ(all.refused.size(), 2u);
  EXPECT_EQ(all.next_tokens, (std::vector<token_id>{no_token, no_token}));
  for (const auto& x : {w, none}) self_->send_exit(x, caf::exit_reason::user_shutdown);
}

// A cpu backend with pinned host memory (plain memory in a host_pool here)
// that counts where the chunks it imports lie.
class pinned_backend final : public forwarding_backend {
 public:
  struct counts {
    std::atomic<int> in_pool{0}, elsewhere{0};
  };
  /// `lend`: exported chunks are lent from the pool where it has room (as a
  /// cuda backend's are), else copied into vectors.
  pinned_backend(std::uint64_t cap, std::shared_ptr<counts> seen, bool lend = false)
      : lend_(lend),
        pool_(cap, cap,
              {[](std::size_t n) { return std::aligned_alloc(device::host_pool::alignment, n); },
               [](void* p) { std::free(p); }}),
        seen_(std::move(seen)) {
    (void)pool_.take(cap);  // its one arena, as a GPU backend's grows on its device thread
  }
  std::string_view name() const noexcept override { return "pinned"; }
  result<device::kv_chunk> export_kv(request_id r, device::index_range l,
                                     device::index_range t) override {
    auto c = inner_->export_kv(r, l, t);
    if (!c || !lend_) return c;
    if (auto lease = pool_.take(c->data.size())) {
      std::memcpy(lease->data(), c->data.data(), c->data.size());
      c->data = lease->share(0, c->data.size());
    }
    return c;
  }
  status import_kv(const device::kv_chunk& c) override {
    ++*(pool_.owns(c.data.data(), c.data.size()) ? &seen_->in_pool : &seen_->elsewhere);
    return inner_->import_kv(c);
  }
  device::host_pool* host_buffers() noexcept override { return &pool_; }

 private:
  bool lend_;
  device::host_pool pool_;
  std::shared_ptr<counts> seen_;
};

// A partner's rows reach a device with pinned host memory already in it:
// the worker copied them there on its actor's thread, and the device thread
// only reads them. Without room in that memory (none, or rows that would
// take more than half of it) they come as they arrived. Either way they hold
// the sender's KV: the receiver decodes its tokens.
TEST_F(DeviceWorker, RowsForADeviceWithPinnedMemoryArriveInIt) {
  auto source = cpu_tiny();
  ASSERT_NE(source, nullptr);
  const std::uint32_t layers = source->model().layers;
  const std::vector<token_id> first = direct(*source, execute(0, 1, {prefill(7, prompt(33))}));
  ASSERT_EQ(first.size(), 1u);
  auto kv = source->export_kv(7, {0, layers}, {0, 33});
  ASSERT_TRUE(kv.ok());
  const token_id t = first[0];
  const std::vector<token_id> next = direct(*source, execute(0, 2, {decode(7, 33, t)}));
  messages::kv_delta_batch rows{.epoch = 1,
                                .from_instance = 0,
                                .layer_begin = 0,
                                .layer_end = layers,
                                .rows = {{.request = 7,
                                          .token_begin = 0,
                                          .token_end = 33,
                                          .size_bytes = kv->bytes,
                                          .data = kv->data,
                                          .ring_pos = 0}},
                                .phase = messages::phase::prefill,
                                .ring = 0,
                                .abandoned = {}};
  // Pools of 1 MiB, of just under twice the rows, and none.
  for (const std::uint64_t cap :
       {std::uint64_t{1} << 20, 2 * kv->data.size() - 512, std::uint64_t{0}}) {
    SCOPED_TRACE("pool of " + std::to_string(cap) + " bytes");
    auto seen = std::make_shared<pinned_backend::counts>();
    const caf::actor w =
        spawn_device_worker(sys_, 1, std::make_unique<pinned_backend>(cap, seen), {});
    self_->send(w, actors::peers_atom::value, caf::actor{self_}, std::vector<caf::actor>{});
    self_->send(w, msg_atom::value, messages::encode(rows));
    // Jobs run in order: the import is done once this decode is.
    const messages::iteration_done d = run(w, execute(1, 1, {decode(7, 33, t)}));
    ASSERT_TRUE(d.error.empty()) << d.error;
    EXPECT_EQ(d.next_tokens, next);
    const bool fits = cap >= 2 * kv->data.size();
    EXPECT_EQ(seen->in_pool, fits ? 1 : 0);
    EXPECT_EQ(seen->elsewhere, fits ? 0 : 1);
    self_->send_exit(w, caf::exit_reason::user_shutdown);
  }
}

// IterationDone counts the KV bytes a device with a pinned pool sent from
// elsewhere (copied out on its thread for want of room there): none when
// every chunk was lent from the pool, all of them when the pool has none,
// and none on a device without a pool.
TEST_F(DeviceWorker, KvCopiedOutForWantOfPinnedRoomIsCounted) {
  const caf::actor none = sys_.spawn([] { return caf::behavior{[](msg_atom, capnp_blob) {}}; });
  struct device_case {
    std::unique_ptr<device::backend> backend;
    bool all_copied;
  };
  std::vector<device_case> cases;
  cases.push_back({std::make_unique<pinned_backend>(
                       std::uint64_t{1} << 20, std::make_shared<pinned_backend::counts>(), true),
                   false});
  cases.push_back(
      {std::make_unique<pinned_backend>(0, std::make_shared<pinned_backend::counts>(), true),
       true});
  cases.push_back({cpu_tiny(), false});
  for (device_case& d : cases) {
    SCOPED_TRACE(std::string{d.backend->name()});
    const caf::actor w = spawn_device_worker(sys_, 0, std::move(d.backend), {});
    self_->send(w, actors::peers_atom::value, caf::actor{self_},
                std::vector<caf::actor>{none, caf::actor{self_}});
    const sent s = send_execute(w, execute(0, 1, {prefill(1, prompt(20), 1)}));
    ASSERT_TRUE(s.done.error.empty()) << s.done.error;
    EXPECT_GT(s.done.kv_bytes_sent, 0u);
    EXPECT_EQ(s.done.kv_bytes_copied, d.all_copied ? s.done.kv_bytes_sent : 0u);
    self_->send_exit(w, caf::exit_reason::user_shutdown);
  }
  self_->send_exit(none, caf::exit_reason::user_shutdown);
}

// A backend whose run_streaming() has no room for the layer groups from
// `from_layer` on (as a cuda backend whose pinned pool is full): it hands
// them over dropped, without bytes.
class dropping_backend final : public forwarding_backend {
 public:
  explicit dropping_backend(std::uint32_t from_layer) : from_layer_(from_layer) {}
  std::string_view name() const noexcept override { return "dropping"; }
  result<device::iteration_result> run_streaming(const device::batch& b,
                                                 const device::kv_stream& stream) override {
    device::kv_stream s = stream;
    s.sink = [&](std::vector<device::kv_chunk> chunks) {
      for (device::kv_chunk& c : chunks)
        if (c.layers.begin >= from_layer_) {
          c.dropped = true;
          c.data = {};
        }
      stream.sink(std::move(chunks));
    };
    return inner_->run_streaming(b, s);
  }

 private:
  std::uint32_t from_layer_;
};

// Chunks the device had no room for give up the copy: the partner gets the
// rows before them, then a notice that the copy is abandoned, and no rows
// after; IterationDone counts the bytes sent and, apart, those dropped, and
// the flow control one copy abandoned.
TEST_F(DeviceWorker, ChunksTheDeviceHadNoRoomForGiveUpTheCopy) {
  const std::uint32_t layers = device::find_model("cpu-tiny")->layers;
  ASSERT_GE(layers, 2u);
  const std::uint32_t from = layers / 2;
  const caf::actor w = spawn_device_worker(sys_, 0, std::make_unique<dropping_backend>(from), {});
  const caf::actor none = sys_.spawn([] { return caf::behavior{[](msg_atom, capnp_blob) {}}; });
  self_->send(w, actors::peers_atom::value, caf::actor{self_},
              std::vector<caf::actor>{none, caf::actor{self_}});
  const sent s = send_execute(w, execute(0, 1, {prefill(7, prompt(19), 1)}));
  ASSERT_TRUE(s.done.error.empty()) << s.done.error;
  const std::vector<messages::kv_delta_batch>& kv = s.kv;  // the window holds them all
  ASSERT_EQ(kv.size(), from + 1u);
  std::uint64_t sent_bytes = 0;
  for (std::uint32_t l = 0; l < from; ++l) {
    ASSERT_EQ(kv[l].rows.size(), 1u);
    EXPECT_EQ(kv[l].layer_begin, l);
    EXPECT_TRUE(kv[l].abandoned.empty());
    sent_bytes += kv[l].rows[0].size_bytes;
  }
  EXPECT_TRUE(kv[from].rows.empty());
  EXPECT_EQ(kv[from].abandoned, std::vector<request_id>{7});
  EXPECT_EQ(s.done.kv_bytes_sent, sent_bytes);
  // The layers not sent are counted apart: every layer's rows are the same size.
  EXPECT_EQ(s.done.kv_bytes_dropped, (layers - from) * kv[0].rows[0].size_bytes);
  EXPECT_EQ(flow(w)[2], 1u);
  self_->send_exit(w, caf::exit_reason::user_shutdown);
  self_->send_exit(none, caf::exit_reason::user_shutdown);
}

TEST_F(DeviceWorker, AnItemWithoutTokenIdsIsAnsweredWithAnError) {
  const caf::actor w = spawn_device_worker(sys_, 0, cpu_tiny());
  self_->send(w, actors::peers_atom::value, caf::actor{self_}, std::vector<caf::actor>{});
  messages::execute_item sim_style = prefill(3, prompt(4));
  sim_style.tokens.clear();  // as the simulator sends them
  const messages::iteration_done d =
      run(w, execute(0, 9, {prefill(1, prompt(4)), std::move(sim_style)}));
  EXPECT_EQ(d.iteration, 9u);
  EXPECT_NE(d.error.find("execute.items[1]"), std::string::npos) << d.error;
  EXPECT_NE(d.error.find("request 3"), std::string::npos) << d.error;
  EXPECT_TRUE(d.next_tokens.empty());
  // Nothing ran: request 1 is unknown to the device afterwards, so a valid
  // prefill of it from position 0 works.
  const messages::iteration_done ok = run(w, execute(0, 10, {prefill(1, prompt(4))}));
  EXPECT_TRUE(ok.error.empty()) << ok.error;
  self_->send_exit(w, caf::exit_reason::user_shutdown);
}

}  // namespace
}  // namespace accellm::worker

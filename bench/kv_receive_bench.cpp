// bench_kv_receive: what a worker process spends taking a partner's KV in,
// from the encoded KvDeltaBatch messages CAF hands its kv_replica to the
// device holding every row (docs/cuda.md, "KV cache, export, import").
//
// One actor system on the real clock, wired as a daemon wires a real-device
// instance (daemon/instance_host.cpp): the kv_replica hands each message to
// the instance_manager, which keeps the rows (new replicas) and forwards
// them to the device_worker, which imports them into a `cpu` backend
// (cpu-small, fp32 KV: 512 bytes per token and layer) on its device thread.
// The burst is a prefill stream: per round, REQUESTS new requests of TOKENS
// tokens, one message per layer (REQUESTS x TOKENS x 512 bytes each). The
// clock runs from the first message handed to the replica until an Execute
// sent after all of them, decoding the last request (which fails unless
// every layer of it was imported), comes back from the device thread.
//
// Napkin math: a memcpy runs at ~5-14 GB/s on the 2-core build machine
// (bench_copy_out), so each copy of the KV on the way adds ~70-200 ms per
// GiB; the import itself is one more copy into the cpu backend's pool.
//
//   bench_kv_receive [TOKENS [REQUESTS [ROUNDS [REPEATS]]]]
//   (default: 1024 tokens, 16 requests (8 MiB messages), 8 rounds (256 MiB), 3 repeats)
#include "actors/atoms.hpp"
#include "actors/system_config.hpp"
#include "device/cpu/cpu_backend.hpp"
#include "messages/codec.hpp"
#include "worker/device_worker.hpp"
#include "worker/instance_manager.hpp"
#include "worker/kv_replica.hpp"

#include <caf/all.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

using namespace accellm;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

constexpr auto patience = 120s;  // every wait below is bounded

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "bench_kv_receive: %s\n", what.c_str());
  std::exit(1);
}

std::uint32_t arg(int argc, char** argv, int i, std::uint32_t fallback, std::uint32_t most) {
  if (argc <= i) return fallback;
  char* end = nullptr;
  const unsigned long v = std::strtoul(argv[i], &end, 10);
  if (end == argv[i] || *end != '\0' || v == 0 || v > most)
    die(std::string{"argument "} + std::to_string(i) + " '" + argv[i] + "' is not in 1.." +
        std::to_string(most));
  return static_cast<std::uint32_t>(v);
}

// The coordinator's stand-in: takes whatever the manager reports. Spawned
// with an argument: CAF 0.17 binds a null reference for functions without one.
caf::behavior drop_all(caf::event_based_actor* self, int) {
  self->set_default_handler(caf::drop);
  return {[](actors::ping_atom) {}};
}

struct burst {
  std::vector<messages::capnp_blob> messages;  ///< encoded, as they come off the network
  std::uint64_t bytes = 0;                     ///< KV bytes in them
  request_id last = 0;
};

burst make_burst(std::uint32_t layers, std::uint32_t tokens, std::uint32_t requests,
                 std::uint32_t rounds, std::uint64_t per_token_layer) {
  burst b;
  request_id next = 1;
  for (std::uint32_t r = 0; r < rounds; ++r, next += requests) {
    for (std::uint32_t l = 0; l < layers; ++l) {
      messages::kv_delta_batch m{.epoch = 1,
                                 .from_instance = 0,
                                 .layer_begin = l,
                                 .layer_end = l + 1,
                                 .rows = {},
                                 .phase = messages::phase::prefill,
                                 .ring = 0,
                                 .abandoned = {}};
      for (std::uint32_t q = 0; q < requests; ++q) {
        const std::uint64_t bytes = per_token_layer * tokens;
        m.rows.push_back({.request = next + q,
                          .token_begin = 0,
                          .token_end = tokens,
                          .size_bytes = bytes,
                          .data = std::vector<std::byte>(bytes, std::byte{0x11}),
                          .ring_pos = 0});
        b.bytes += bytes;
      }
      b.messages.push_back(messages::encode(m));
    }
  }
  b.last = next - 1;
  return b;
}

// One burst into a fresh instance; milliseconds until the device holds it.
double receive_once(const device::model_spec& model, std::uint32_t tokens, burst b) {
  actors::system_config cfg{actors::clock_mode::real};
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};
  const std::uint64_t blocks = (b.last + 1) * ((tokens + 16) / 16 + 1);
  device::cpu::cpu_options o;
  o.kv_blocks = blocks;
  auto backend = device::cpu::make_cpu_backend(model, o);
  if (!backend) die(backend.err().what());
  const caf::actor worker = worker::spawn_device_worker(sys, 1, std::move(*backend), {});
  self->send(worker, actors::peers_atom::value, caf::actor{self}, std::vector<caf::actor>{});
  const caf::actor coordinator = sys.spawn(drop_all, 0);
  worker::instance_options io;
  io.id = 1;
  io.total_blocks = blocks;
  io.device_memory = true;
  io.layers = model.layers;
  const caf::actor manager = worker::spawn_instance_manager(sys, io);
  self->send(manager, actors::peers_atom::value, coordinator, worker);
  const caf::actor replica = worker::spawn_kv_replica(sys, 1);
  self->send(replica, actors::peers_atom::value, manager);
  const auto ping = [&](const caf::actor& a) {
    self->request(a, patience, actors::ping_atom::value)
        .receive([](actors::pong_atom) {}, [&](caf::error& e) { die(sys.render(e)); });
  };
  for (const caf::actor& a : {worker, manager, replica}) ping(a);

  const auto t0 = steady::now();
  for (messages::capnp_blob& m : b.messages)
    self->send(replica, actors::msg_atom::value, std::move(m));
  ping(replica);  // all handed to the manager
  ping(manager);  // all forwarded to the worker, ahead of what follows
  const messages::execute probe{.epoch = 0,
                                .instance = 1,
                                .iteration = 1,
                                .items = {{.request = b.last,
                                           .phase = messages::phase::decode,
                                           .context = tokens,
                                           .num_tokens = 1,
                                           .tokens = {1},
                                           .wants_output = true,
                                           .replica_to = no_instance}}};
  self->send(worker, actors::msg_atom::value, messages::encode(probe));
  std::optional<messages::iteration_done> done;
  while (!done) {
    bool timed_out = false;
    self->receive(
        [&](actors::msg_atom, const messages::capnp_blob& blob) {
          if (auto d = messages::decode<messages::iteration_done>(blob)) done = *d;
        },
        caf::after(patience) >> [&] { timed_out = true; });
    if (timed_out) die("no IterationDone");
  }
  const double ms = std::chrono::duration<double, std::milli>(steady::now() - t0).count();
  if (!done->error.empty() || !done->refused.empty())
    die("the last request was not imported: " +
        (done->error.empty() ? done->refused.front().reason : done->error));
  for (const caf::actor& a : {worker, coordinator, manager, replica})
    self->send_exit(a, caf::exit_reason::user_shutdown);
  return ms;
}

}  // namespace

int main(int argc, char** argv) {
  const std::uint32_t tokens = arg(argc, argv, 1, 1024, 2047);  // the probe decodes one more
  const std::uint32_t requests = arg(argc, argv, 2, 16, 256);
  const std::uint32_t rounds = arg(argc, argv, 3, 8, 1024);
  const std::uint32_t repeats = arg(argc, argv, 4, 3, 100);
  const device::model_spec* model = device::find_model("cpu-small");
  if (model == nullptr) die("no cpu-small in the catalogue");
  const std::uint64_t per_token_layer = model->kv_bytes_per_token_layer(device::dtype::fp32);
  std::vector<double> ms;
  std::uint64_t bytes = 0;
  for (std::uint32_t i = 0; i < repeats; ++i) {
    burst b = make_burst(model->layers, tokens, requests, rounds, per_token_layer);
    bytes = b.bytes;
    ms.push_back(receive_once(*model, tokens, std::move(b)));
  }
  std::sort(ms.begin(), ms.end());
  const double median = ms[ms.size() / 2];
  std::printf(
      "kv_replica -> instance_manager -> device_worker -> cpu import: %.0f MiB in %u messages "
      "of %.1f MiB: median %.1f ms (%.2f GB/s; runs %.1f..%.1f ms)\n",
      static_cast<double>(bytes) / (1 << 20), model->layers * rounds,
      static_cast<double>(bytes) / (model->layers * rounds) / (1 << 20), median,
      static_cast<double>(bytes) / median / 1e6, ms.front(), ms.back());
  return 0;
}

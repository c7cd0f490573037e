// bench_kv_burst: how much KV a daemon can hand CAF in one burst before its
// heartbeats to a third node starve, and what the KV flow control
// (worker/kv_send_queue.hpp) changes (docs/cuda.md, "The daemons on a GPU":
// two llama2-7b workers lost their registration once a prompt's KV, 1 GiB,
// went to the partner as 32 MiB KvDeltaBatch messages).
//
// Three actor systems in this process, each set up by actors::apply() with
// the daemons' defaults (heartbeat 100 ms, connection timeout 500 ms): the
// sender connects to a "coordinator" node and to a "partner" node running a
// real kv_replica, and sends the burst there as KvDeltaBatch messages of MIB
// MiB. Without flow control (window 0) every message goes at once; with a
// window, a sender actor keeps at most that many MiB unacknowledged (KvAck
// from the kv_replica) and sends the rest as acks come, in pieces of at most
// 8 MiB (default_kv_piece_bytes), as a worker does. Reported: when the
// partner had acknowledged them all, and whether the coordinator node
// dropped the sender.
//
//   bench_kv_burst [MIB [WINDOW_MIB [BURST_MIB ...]]]
//   (default: 32 MiB messages; windows 0 and 64; bursts 64 256 512 1024)
#include "actors/atoms.hpp"
#include "actors/system_config.hpp"
#include "actors/transport.hpp"
#include "messages/codec.hpp"
#include "worker/kv_replica.hpp"
#include "worker/kv_send_queue.hpp"

#include <caf/all.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

namespace {

using namespace accellm;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

double ms_since(steady::time_point t0) {
  return std::chrono::duration<double, std::milli>(steady::now() - t0).count();
}

// The coordinator's stand-in, and the partner's instance_manager: only there
// to take messages. Spawned with an argument: CAF 0.17 binds a null
// reference for functions without one.
caf::behavior sink(int) {
  return {[](const std::string&) {}, [](actors::msg_atom, const messages::capnp_blob&) {}};
}

// One prefill layer of `bytes` for request `layer + 1`.
messages::capnp_blob layer_rows(std::uint32_t layer, std::size_t bytes) {
  messages::kv_delta_batch m;
  m.epoch = 1;
  m.from_instance = 0;
  m.layer_begin = layer;
  m.layer_end = layer + 1;
  m.phase = messages::phase::prefill;
  m.rows.push_back({.request = layer + 1,
                    .token_begin = 0,
                    .token_end = 2048,
                    .size_bytes = bytes,
                    .data = std::vector<std::byte>(bytes, std::byte{0x5a}),
                    .ring_pos = 0});
  return messages::pack(std::move(m));
}

struct sender_state {
  worker::kv_send_queue queue;
  caf::actor receiver;
  caf::actor report;  ///< gets the count once every message is acknowledged
  std::size_t expected = 0, acked = 0;
  static inline const char* name = "bench_kv_sender";
};

void pump(caf::stateful_actor<sender_state>* self) {
  for (auto& m : self->state.queue.take_ready())
    self->send(self->state.receiver, actors::msg_atom::value, std::move(m.blob));
}

// Sends `n` layers through a flow control of `window` bytes (0: no window,
// everything at once) and counts the acks.
caf::behavior sender(caf::stateful_actor<sender_state>* self, caf::actor receiver,
                     caf::actor report, std::size_t n, std::size_t bytes, std::uint64_t window) {
  auto& s = self->state;
  // Without a window, as before the flow control: whole messages, at once.
  s.queue =
      worker::kv_send_queue{{.window_bytes = window == 0 ? ~0ull : window,
                             .queue_bytes = ~0ull,
                             .piece_bytes = window == 0 ? ~0ull : worker::default_kv_piece_bytes}};
  s.receiver = std::move(receiver);
  s.report = std::move(report);
  s.expected = n;
  for (std::size_t i = 0; i < n; ++i)
    (void)s.queue.push(1, layer_rows(static_cast<std::uint32_t>(i), bytes));
  pump(self);
  return {[self](actors::msg_atom, const messages::capnp_blob& b) {
    auto ack = messages::decode<messages::kv_ack>(b);
    if (!ack) return;
    auto& st = self->state;
    (void)st.queue.acked(1, ack->batches);
    st.acked += ack->batches;
    pump(self);
    if (st.acked == st.expected) self->send(st.report, static_cast<std::uint64_t>(st.acked));
  }};
}

struct outcome {
  double acked_ms = -1;    ///< when the last ack came; -1: not all came
  std::size_t acked = 0;   ///< how many came
  double dropped_ms = -1;  ///< when the coordinator node dropped the sender; -1: never
};

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "bench_kv_burst: %s\n", what.c_str());
  std::exit(1);
}

// One burst of `total_mib` in messages of `mib`, on three fresh nodes.
outcome burst(std::size_t mib, std::size_t total_mib, std::size_t window_mib) {
  const actors::transport_options opts;
  actors::system_config coord_cfg, sender_cfg, partner_cfg;
  for (actors::system_config* c : {&coord_cfg, &sender_cfg, &partner_cfg}) {
    if (auto st = actors::apply(opts, *c); !st) die(st.err().what());
  }
  caf::actor_system coord{coord_cfg}, sending{sender_cfg}, partner{partner_cfg};
  const caf::actor coordinator = coord.spawn(sink, 0), manager = partner.spawn(sink, 0);
  const caf::actor replica = worker::spawn_kv_replica(partner, 1);
  caf::anon_send(replica, actors::peers_atom::value, manager);
  outcome out;
  caf::actor kv_sender;
  {
    auto cport = actors::publish(coord, coordinator, "127.0.0.1", 0, opts);
    auto pport = actors::publish(partner, replica, "127.0.0.1", 0, opts);
    if (!cport || !pport) die((cport ? pport.err() : cport.err()).what());
    auto to_coord = actors::connect(sending, "127.0.0.1", *cport, opts);
    auto to_partner = actors::connect(sending, "127.0.0.1", *pport, opts);
    if (!to_coord || !to_partner) die((to_coord ? to_partner.err() : to_coord.err()).what());
    caf::scoped_actor self{sending};
    self->monitor(*to_coord);
    const std::size_t n = total_mib / mib;
    const auto t0 = steady::now();
    kv_sender = sending.spawn(sender, *to_partner, caf::actor{self}, n, mib << 20,
                              std::uint64_t{window_mib} << 20);
    // Every wait is bounded: 30 s for the acks, then 1 s for a late drop.
    bool waiting = true;
    while (waiting && out.acked_ms < 0) {
      self->receive(
          [&](std::uint64_t acked) {
            out.acked = acked;
            out.acked_ms = ms_since(t0);
          },
          [&](const caf::down_msg&) {
            if (out.dropped_ms < 0) out.dropped_ms = ms_since(t0);
          },
          caf::after(30s) >> [&] { waiting = false; });
    }
    if (out.dropped_ms < 0) {
      self->receive([&](const caf::down_msg&) { out.dropped_ms = ms_since(t0); },
                    caf::after(1s) >> [] {});
    }
  }
  for (const caf::actor& a : {coordinator, manager, replica, kv_sender})
    caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  return out;
}

std::size_t mib_arg(const char* text, unsigned long least) {
  char* end = nullptr;
  const unsigned long v = std::strtoul(text, &end, 10);
  if (end == text || *end != '\0' || v < least || v > (1ul << 16)) {
    std::fprintf(stderr, "bench_kv_burst: '%s' is not a MiB count in %lu..65536\n", text, least);
    std::exit(2);
  }
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t mib = argc > 1 ? mib_arg(argv[1], 1) : 32;
  std::vector<std::size_t> windows = {0, 64};
  if (argc > 2) windows = {mib_arg(argv[2], 0)};
  std::vector<std::size_t> bursts;
  for (int i = 3; i < argc; ++i) bursts.push_back(mib_arg(argv[i], 1));
  if (bursts.empty()) bursts = {64, 256, 512, 1024};
  std::printf(
      "KvDeltaBatch messages of %zu MiB to a kv_replica; heartbeat 100 ms, connection "
      "timeout 500 ms\n",
      mib);
  std::printf("%10s %10s %9s %22s %28s\n", "window MiB", "burst MiB", "messages",
              "all acked after ms", "coordinator dropped sender");
  for (const std::size_t window : windows) {
    for (const std::size_t total : bursts) {
      if (total < mib) continue;
      const outcome o = burst(mib, total, window);
      char acked[32], dropped[48];
      if (o.acked_ms >= 0)
        std::snprintf(acked, sizeof acked, "%.0f", o.acked_ms);
      else
        std::snprintf(acked, sizeof acked, "not all");
      if (o.dropped_ms >= 0)
        std::snprintf(dropped, sizeof dropped, "yes, after %.0f ms", o.dropped_ms);
      else
        std::snprintf(dropped, sizeof dropped, "no");
      std::printf("%10s %10zu %9zu %22s %28s\n",
                  window == 0 ? "none" : std::to_string(window).c_str(), total, total / mib, acked,
                  dropped);
      std::fflush(stdout);
    }
  }
  return 0;
}

// bench_kv_burst: how much a daemon can hand CAF in one burst of messages
// before its heartbeats to a third node starve (docs/cuda.md, "The daemons
// on a GPU": two llama2-7b workers lost their registration once a prompt's
// KV, 1 GiB, went to the partner as 32 MiB KvDeltaBatch messages). Three
// actor systems in this process, each set up by actors::apply() with the
// daemons' defaults (heartbeat 100 ms, connection timeout 500 ms): the
// sender connects to a "coordinator" node and to a "partner" node, sends the
// burst to the partner in messages of MIB MiB, and reports when the partner
// had answered them all and whether the coordinator node dropped the sender.
// The largest burst that keeps the sender up bounds the window a flow
// control of KV messages may leave in flight.
//
//   bench_kv_burst [MIB [BURST_MIB ...]]   (default: 32, bursts 64 128 256 512 1024)
#include "actors/system_config.hpp"
#include "actors/transport.hpp"

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

// The partner: answers each message with its size. Spawned with an argument:
// CAF 0.17 binds a null reference for functions without one.
caf::behavior sizer(int) {
  return {[](const std::vector<char>& b) { return static_cast<std::uint64_t>(b.size()); }};
}

// The coordinator's stand-in: only there to be connected to.
caf::behavior quiet(int) {
  return {[](const std::string&) {}};
}

struct outcome {
  std::size_t answered = 0;
  double answered_ms = -1;  ///< when the last answer came; -1: not all came
  double dropped_ms = -1;   ///< when the coordinator node dropped the sender; -1: never
};

// One burst of `total_mib` in messages of `mib`, on three fresh nodes.
outcome burst(std::size_t mib, std::size_t total_mib) {
  const actors::transport_options opts;
  actors::system_config coord_cfg, sender_cfg, partner_cfg;
  for (actors::system_config* c : {&coord_cfg, &sender_cfg, &partner_cfg}) {
    if (auto st = actors::apply(opts, *c); !st) {
      std::fprintf(stderr, "bench_kv_burst: %s\n", st.err().what().c_str());
      std::exit(1);
    }
  }
  caf::actor_system coord{coord_cfg}, sender{sender_cfg}, partner{partner_cfg};
  const caf::actor coordinator = coord.spawn(quiet, 0), receiver = partner.spawn(sizer, 0);
  outcome out;
  {
    auto cport = actors::publish(coord, coordinator, "127.0.0.1", 0, opts);
    auto pport = actors::publish(partner, receiver, "127.0.0.1", 0, opts);
    if (!cport || !pport) {
      std::fprintf(stderr, "bench_kv_burst: %s\n",
                   (cport ? pport.err() : cport.err()).what().c_str());
      std::exit(1);
    }
    auto to_coord = actors::connect(sender, "127.0.0.1", *cport, opts);
    auto to_partner = actors::connect(sender, "127.0.0.1", *pport, opts);
    if (!to_coord || !to_partner) {
      std::fprintf(stderr, "bench_kv_burst: %s\n",
                   (to_coord ? to_partner.err() : to_coord.err()).what().c_str());
      std::exit(1);
    }
    caf::scoped_actor self{sender};
    self->monitor(*to_coord);
    const std::size_t n = total_mib / mib;
    const auto t0 = steady::now();
    for (std::size_t i = 0; i < n; ++i) self->send(*to_partner, std::vector<char>(mib << 20, 'x'));
    // Every wait is bounded: 30 s for the answers, then 1 s for a late drop.
    bool waiting = true;
    while (waiting && out.answered < n) {
      self->receive(
          [&](std::uint64_t) {
            if (++out.answered == n) out.answered_ms = ms_since(t0);
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
  caf::anon_send_exit(coordinator, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(receiver, caf::exit_reason::user_shutdown);
  return out;
}

std::size_t positive(const char* text) {
  char* end = nullptr;
  const unsigned long v = std::strtoul(text, &end, 10);
  if (end == text || *end != '\0' || v == 0 || v > (1ul << 16)) {
    std::fprintf(stderr, "bench_kv_burst: '%s' is not a MiB count in 1..65536\n", text);
    std::exit(2);
  }
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t mib = argc > 1 ? positive(argv[1]) : 32;
  std::vector<std::size_t> bursts;
  for (int i = 2; i < argc; ++i) bursts.push_back(positive(argv[i]));
  if (bursts.empty()) bursts = {64, 128, 256, 512, 1024};
  std::printf("messages of %zu MiB; heartbeat 100 ms, connection timeout 500 ms\n", mib);
  std::printf("%10s %9s %22s %28s\n", "burst MiB", "messages", "all answered after ms",
              "coordinator dropped sender");
  for (const std::size_t total : bursts) {
    if (total < mib) continue;
    const outcome o = burst(mib, total);
    char answered[32], dropped[48];
    if (o.answered_ms >= 0)
      std::snprintf(answered, sizeof answered, "%.0f", o.answered_ms);
    else
      std::snprintf(answered, sizeof answered, "%zu answered", o.answered);
    if (o.dropped_ms >= 0)
      std::snprintf(dropped, sizeof dropped, "yes, after %.0f ms", o.dropped_ms);
    else
      std::snprintf(dropped, sizeof dropped, "no");
    std::printf("%10zu %9zu %22s %28s\n", total, total / mib, answered, dropped);
  }
  return 0;
}

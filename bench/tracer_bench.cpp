// What --trace costs (issue 7): the sending actor's share (one
// trace_point::message call) and a whole simulation with and without a log.
//
//   bench_tracer [events per thread = 1000000] [simulated seconds = 300]
//
// 1. Hot path: calls of trace_point::message with a packed AssignPrefill
//    from 1 and from 2 threads into one tracer writing to $TMPDIR; the
//    figure is wall ns per call on the calling thread (queueing only: the
//    writer thread encodes and writes), then how long close() waits for the
//    writer to drain, and the bytes per event on disk. Paced: N/10 events
//    per thread in bursts of 1000, 2 ms apart (the writer keeps up, as in
//    a cluster); flat out: N per thread (the queue grows). Napkin math: a call
//    copies four short strings and a shared_ptr under a mutex, ~50-100 ns;
//    the writer encodes a ~100-byte TraceEvent (~300 ns) and writes it.
// 2. Simulation: 16 instances of 8 H100 (Llama-2-70B, accellm, conversation
//    at 150 req/s) for the given simulated seconds, best of 3 without and
//    with a trace file; the trace hash must be the same.
#include "actors/tracer.hpp"
#include "bench/sim_setup.hpp"
#include "config/cluster_config.hpp"
#include "messages/codec.hpp"
#include "simulator/sim_cluster.hpp"
#include "workload/generator.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace accellm;
using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

std::string temp_file(const std::string& name) {
  return (std::filesystem::temp_directory_path() /
          ("accellm-bench-" + std::to_string(::getpid()) + "-" + name))
      .string();
}

// `burst` > 0: the senders pause 2 ms after every `burst` events, so the
// writer keeps up (a cluster's rate); 0: flat out (the writer falls behind
// and the queue grows).
int hot_path(long per_thread, int threads, long burst) {
  const std::string path = temp_file("hot.trace");
  auto t = actors::tracer::open({.path = path,
                                 .node = "bench",
                                 .clock = "steady",
                                 .origin = {},
                                 .opened = {},
                                 .block_when_full = false,
                                 .queue_limit = std::size_t{1} << 22});
  if (!t) {
    std::fprintf(stderr, "%s\n", t.err().what().c_str());
    return 1;
  }
  const auto msg = messages::pack(messages::assign_prefill{.epoch = 3,
                                                           .request = 42,
                                                           .instance = 3,
                                                           .partner = 2,
                                                           .prompt = {},
                                                           .prompt_len = 1000,
                                                           .already_generated = {},
                                                           .already_generated_len = 0,
                                                           .max_tokens = 200,
                                                           .chunk_tokens = 0,
                                                           .arrival_ns = 0,
                                                           .stop_tokens = {},
                                                           .then_decode = false});
  std::vector<double> ns(static_cast<std::size_t>(threads));
  std::vector<std::thread> pool;
  const auto t0 = clock_type::now();
  for (int i = 0; i < threads; ++i) {
    pool.emplace_back([&, i] {
      const auto p = (*t)->point("coordinator", "coordinator");
      const auto start = clock_type::now();
      for (long k = 0; k < per_thread; ++k) {
        p.message("im:3", "w3", msg, actors::time_point{std::chrono::nanoseconds{k}});
      }
      ns[static_cast<std::size_t>(i)] =
          seconds_since(start) * 1e9 / static_cast<double>(per_thread);
    });
  }
  for (auto& th : pool) th.join();
  const double produced = seconds_since(t0);
  const auto t1 = clock_type::now();
  if (auto ok = (*t)->close(); !ok) {
    std::fprintf(stderr, "%s\n", ok.err().what().c_str());
    return 1;
  }
  const double drain = seconds_since(t1);
  const auto c = (*t)->totals();
  std::filesystem::remove(path);
  const double worst = *std::max_element(ns.begin(), ns.end());
  std::printf(
      "hot path, %d thread(s), %s: %.0f ns per traced message on the sender (worst thread); "
      "%llu written, %llu dropped; writer done %.2f s after the senders (%.2f s), "
      "%.0f k events/s end to end; %.1f bytes per event\n",
      threads, burst > 0 ? "paced" : "flat out", worst, static_cast<unsigned long long>(c.events),
      static_cast<unsigned long long>(c.dropped), drain, produced,
      static_cast<double>(c.events) / (produced + drain) / 1e3,
      static_cast<double>(c.bytes) / static_cast<double>(std::max<std::uint64_t>(1, c.events)));
  return 0;
}

int simulation(double seconds) {
  auto setup = bench::sixteen_h100(150, seconds, 1);
  if (!setup) {
    std::fprintf(stderr, "%s\n", setup.err().what().c_str());
    return 1;
  }
  simulator::run_options& o = *setup;
  o.token_times = false;
  const std::string path = temp_file("sim.trace");
  double best[2] = {1e30, 1e30};
  std::uint64_t hash[2] = {0, 0};
  std::uint64_t events = 0;
  std::uintmax_t bytes = 0;
  for (int round = 0; round < 3; ++round) {
    for (int traced = 0; traced < 2; ++traced) {
      o.trace_file = traced != 0 ? path : std::string{};
      const auto t0 = clock_type::now();
      auto r = simulator::run_simulation(o);
      const double wall = seconds_since(t0);
      if (!r) {
        std::fprintf(stderr, "%s\n", r.err().what().c_str());
        return 1;
      }
      best[traced] = std::min(best[traced], wall);
      hash[traced] = r->trace_hash;
      if (traced != 0) {
        events = r->traced;
        bytes = std::filesystem::file_size(path);
      }
    }
  }
  std::filesystem::remove(path);
  std::printf(
      "simulation, 16 x 8 H100, %zu requests, %.0f simulated s: %.2f s without a trace, "
      "%.2f s with one (+%.0f%%, %.2f us per traced event); %llu events, %.1f MB, %.0f bytes per "
      "event; trace hash %s (%016llx)\n",
      o.trace.size(), seconds, best[0], best[1], (best[1] / best[0] - 1) * 100,
      (best[1] - best[0]) * 1e6 / static_cast<double>(std::max<std::uint64_t>(1, events)),
      static_cast<unsigned long long>(events), static_cast<double>(bytes) / 1e6,
      static_cast<double>(bytes) / static_cast<double>(std::max<std::uint64_t>(1, events)),
      hash[0] == hash[1] ? "unchanged" : "CHANGED", static_cast<unsigned long long>(hash[1]));
  return hash[0] == hash[1] ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const long per_thread = argc > 1 ? std::atol(argv[1]) : 1'000'000;
  const double seconds = argc > 2 ? std::atof(argv[2]) : 300.0;
  if (per_thread <= 0 || seconds <= 0) {
    std::fprintf(stderr, "usage: bench_tracer [events per thread > 0] [simulated seconds > 0]\n");
    return 2;
  }
  for (long burst : {1000L, 0L}) {
    for (int threads : {1, 2}) {
      if (int rc = hot_path(burst > 0 ? per_thread / 10 : per_thread, threads, burst); rc != 0)
        return rc;
    }
  }
  return simulation(seconds);
}

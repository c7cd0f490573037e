// sim_cluster: one simulated run. It builds the cluster of a cluster file
// (coordinator, and per instance an instance_manager and a sim worker),
// replays a trace into the coordinator, runs everything in deterministic
// virtual time (actors/virtual_time) until every request is done or the drain
// limit passes, and returns what metrics:: needs.
//
// The actors are the ones the daemons run; only the clock and the device are
// simulated. A simulated device has no KV bytes for a kv_replica to import:
// its rows go to the partner's instance_manager directly (which keeps the
// replica's blocks, as on a real device after the kv_replica's import). The same options give the
// same events, so the same trace hash.
//
// Thread contract: run_simulation() builds its own actor system; calls from
// different threads do not interact.
#pragma once

#include "common/result.hpp"
#include "common/types.hpp"
#include "config/cluster_config.hpp"
#include "workload/metrics/records.hpp"
#include "workload/request_spec.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace accellm::simulator {

/// The policy and its setting for one run.
struct policy_choice {
  std::string name = "accellm";        ///< "vllm", "splitwise", "accellm"
  bool chunked_prefill = false;        ///< vllm
  std::uint32_t prompt_instances = 0;  ///< splitwise (0 = half)
};

/// Where a run is: passed to run_options::progress.
struct run_progress {
  std::chrono::nanoseconds simulated{0};  ///< virtual time reached
  std::chrono::nanoseconds horizon{0};    ///< the last arrival (past it, requests drain)
  std::size_t finished = 0;               ///< requests done
  std::size_t total = 0;                  ///< requests in the trace
  std::uint64_t events = 0;               ///< messages and timers so far
};

/// A failure injected into a simulated run: the cluster file's [[faults]]
/// entry (config/cluster_config.hpp), or one parse_fault() reads.
using fault = config::fault_config;

/// Parses "kill:3@10" or "stop:0@2.5" (instance 3 at 10 s); the error names
/// the text and what is wrong with it.
result<fault> parse_fault(std::string_view text);

struct run_options {
  config::cluster_config cluster;
  policy_choice policy;
  workload::trace trace;
  double offered_rate = 0;  ///< for the record only
  /// After the last arrival, how long requests may still run.
  std::chrono::nanoseconds drain_limit = std::chrono::minutes(30);
  /// Keep every token's time (for TBT); off = first and last only (long runs).
  bool token_times = true;
  /// Called after every hundredth of the trace's span and once at the end.
  /// The run stops at those instants and goes on: the events and their order
  /// are those of a run without it (same trace hash).
  std::function<void(const run_progress&)> progress;
  /// Failures to inject; each instance below cluster.instances, at most once.
  std::vector<fault> faults;
  /// Write the message trace here (actors/tracer.hpp; "": none). The log's
  /// nodes are "coordinator", "i<id>" per simulated host and "client". The
  /// run is the same with or without it (same trace hash).
  std::string trace_file;
};

struct run_result {
  metrics::run_record record;
  std::uint64_t trace_hash = 0;  ///< over iterations and request completions
  std::uint64_t events = 0;      ///< messages and timers processed
  std::uint64_t iterations = 0;
  std::chrono::nanoseconds simulated{0};
  bool drained = true;       ///< every request finished before the drain limit
  std::uint64_t traced = 0;  ///< events written to trace_file
};

/// Runs one simulation. Errors: config (unknown policy, a device the cost
/// model cannot build, a fault naming no instance of the cluster or one
/// instance twice), internal (the actor system would not shut down).
result<run_result> run_simulation(const run_options& options);

/// Uncontended times of one request on the cluster's device (the baselines of
/// Splitwise's slowdown SLOs): its prompt alone, one decode step alone at
/// the mean context.
struct baseline {
  std::chrono::nanoseconds ttft{0};
  std::chrono::nanoseconds tbt{0};
};

}  // namespace accellm::simulator

// worker_process: `accellm worker --coordinator HOST:PORT --instance NAME
// --device D`, the daemon that hosts one instance (DESIGN.md "worker").
//
//   start ──> connect to the coordinator (retried until connect_wait)
//         ──> spawn the instance's actors, publish its kv_replica
//         ──> RegisterWorker ──refused──> exit 1, the coordinator's reason logged
//                            ──accepted─> serving (instance id, role, partner logged)
//   serving ──SIGINT/SIGTERM──> exit 0
//           ──cut off (coordinator lost) or fenced (SetRole fenced)──>
//               stop the instance's actors, drop the device's state, and
//               start over from "connect" as a new instance; a coordinator
//               gone for good ends it after connect_wait with exit 1
//
// Settings come from the cluster file when one is given (model, batching,
// token, transport, [worker] host and kv_port), flags override them; the
// token may also come from ACCELLM_CLUSTER_TOKEN.
//
// Thread contract: run_worker() is main()'s; it blocks until stopped.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

namespace accellm::daemon {

struct worker_flags {
  std::string coordinator;               ///< HOST:PORT of the coordinator's CAF port
  std::string instance;                  ///< this instance's name (unique in the cluster)
  std::optional<std::string> device;     ///< cpu, cuda:N, sim:h100, ...
  std::filesystem::path config;          ///< cluster file; empty = defaults
  std::optional<std::string> model;      ///< overrides [cluster] model
  std::optional<std::string> host;       ///< overrides [worker] host
  std::optional<std::uint16_t> kv_port;  ///< overrides [worker] kv_port
  std::optional<std::string> log_level;
  std::chrono::seconds connect_wait{30};  ///< how long to retry the coordinator
  /// Write the message trace here (node: the instance name); empty: none.
  std::filesystem::path trace;
};

/// Runs the daemon until stopped; returns the process exit code.
int run_worker(const worker_flags& flags);

}  // namespace accellm::daemon

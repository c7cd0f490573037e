// worker_node: the process-level actor of a worker daemon. It is what the
// coordinator knows the process by (RegisterWorker's `node`):
//
//   coordinator --(peers_atom, endpoints, kv_replicas by instance id)--> worker_node
//        worker_node --(peers_atom, kv_replicas)--> worker   (where KV rows go)
//        worker_node --connect endpoint (instances with a lower id)--> middleman
//
// The kv_replica handles come from the coordinator, so rows can flow at
// once; the direct connections make them flow straight from worker to
// worker rather than through the coordinator's node: CAF routes to a node
// over a direct connection when there is one, in both directions whoever
// opened it. Each pair of workers opens one connection, from the later
// instance to the earlier, and a node opens one at a time: with TLS, CAF
// 0.17 performs a handshake while blocking its network thread, and two
// nodes connecting to each other at once stall until their peers time out.
// A connect that fails is retried every retry_interval, up to
// connect_attempts times, with a warning each time.
//
// It also monitors the coordinator and the instance's manager: when the
// coordinator goes down (this worker was cut off, or the coordinator died) or
// the manager ends (the coordinator fenced it: SetRole fenced), the node
// logs why and sets `lost`; main() then drops the instance and joins again.
//
// Thread contract: an actor; `lost` is written by it and read by main().
#pragma once

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/io/middleman_actor.hpp>
#include <spdlog/logger.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

namespace accellm::daemon {

struct worker_node_options {
  caf::actor worker;                   ///< gets the KV receivers
  caf::actor manager;                  ///< watched: it ends when fenced
  caf::actor replica;                  ///< this instance's kv_replica
  std::string own_endpoint;            ///< "host:port" it was published at
  caf::io::middleman_actor connector;  ///< plain or TLS, as the transport is
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds retry_interval{1000};
  std::uint32_t connect_attempts = 10;
  std::shared_ptr<spdlog::logger> log;      ///< may be null
  std::shared_ptr<std::atomic<bool>> lost;  ///< set when cut off or fenced
};

/// Spawns the node; send it (peers_atom, coordinator) to monitor the coordinator.
caf::actor spawn_worker_node(caf::actor_system& sys, worker_node_options options);

}  // namespace accellm::daemon

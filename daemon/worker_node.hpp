// worker_node: the process-level actor of a worker daemon. It is what the
// coordinator knows the process by (RegisterWorker's `node`):
//
//   coordinator --(peers_atom, endpoints by instance id)--> worker_node
//        worker_node --connect host:port (async, per new endpoint)--> middleman
//        worker_node --(peers_atom, KV receivers by instance id)--> worker
//
// Each endpoint is a partner's published kv_replica; connecting to it opens
// a direct connection to that process, so KV rows go straight to the partner
// and never through the coordinator. The instance's own endpoint resolves to
// its local kv_replica. An endpoint that cannot be reached is logged and
// retried at the next update; meanwhile rows for it are dropped (the
// partner's copy then stalls and is recomputed where it is used).
//
// It also monitors the coordinator: when the coordinator goes down, the
// node sets `lost` (main() then shuts the process down with an error).
//
// Thread contract: an actor; `lost` is written by it and read by main().
#pragma once

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/io/middleman_actor.hpp>
#include <spdlog/logger.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

namespace accellm::daemon {

struct worker_node_options {
  caf::actor worker;                   ///< gets the KV receivers
  caf::actor replica;                  ///< this instance's kv_replica
  std::string own_endpoint;            ///< "host:port" it was published at
  caf::io::middleman_actor connector;  ///< plain or TLS, as the transport is
  std::chrono::milliseconds connect_timeout{5000};
  std::shared_ptr<spdlog::logger> log;      ///< may be null
  std::shared_ptr<std::atomic<bool>> lost;  ///< set when the coordinator is gone
};

/// Spawns the node; send it (peers_atom, coordinator) to monitor the coordinator.
caf::actor spawn_worker_node(caf::actor_system& sys, worker_node_options options);

}  // namespace accellm::daemon

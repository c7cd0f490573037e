// coordinator_process: `accellm coordinator --config C.toml`, the daemon
// that runs the coordinator actor (DESIGN.md "coordinator").
//
// It publishes the coordinator on the cluster file's CAF address (workers
// register there; load drivers submit there), serves HTTP on its HTTP
// address (POST /v1/requests, GET /health, GET /metrics:
// coordinator/http/http_server.hpp), logs joins, refusals and losses, and
// stops on SIGINT or SIGTERM. A bad config, a missing cluster token or an
// address it cannot listen on ends it at once with a message naming the
// problem (process.hpp's exit codes).
//
// Thread contract: run_coordinator() is main()'s; it blocks until stopped.
#pragma once

#include "actors/tracer.hpp"
#include "config/cluster_config.hpp"
#include "coordinator/observer.hpp"
#include "coordinator/policies/policy.hpp"

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <spdlog/logger.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

namespace accellm::daemon {

struct coordinator_flags {
  std::filesystem::path config;            ///< the cluster file (required)
  std::optional<std::string> log_level;    ///< overrides [log] level
  std::optional<std::uint16_t> port;       ///< overrides [coordinator] port
  std::optional<std::uint16_t> http_port;  ///< overrides [coordinator] http_port
  /// Written once both ports listen: "CAF_PORT HTTP_PORT\n" (for launchers
  /// and tests that ask for ephemeral ports).
  std::filesystem::path ready_file;
  /// Write the message trace here (node "coordinator"); empty: none.
  std::filesystem::path trace;
};

/// Runs the daemon until a stop signal; returns the process exit code.
int run_coordinator(const coordinator_flags& flags);

/// The policy the cluster's [coordinator] policy names (vllm, splitwise,
/// accellm; anything else: accellm), with the file's knobs.
std::shared_ptr<coordinator::policy> make_policy(const config::cluster_config& c);

/// The coordinator actor of a live cluster `c`: token ids on, workers
/// admitted with `token`, the cluster's model and limits, its [coordinator]
/// policy; `obs` (may be null) must outlive it. (The daemon's, and the
/// coordination benchmark's.)
caf::actor spawn_live_coordinator(caf::actor_system& sys, const config::cluster_config& c,
                                  std::string token, coordinator::observer* obs,
                                  std::shared_ptr<spdlog::logger> log,
                                  actors::trace_point trace = {});

}  // namespace accellm::daemon

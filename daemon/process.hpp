// process: what every accellm daemon's main() needs around its actors:
// a logger, the stop signals, the exit codes, and the message trace.
//
//   exit 0  stopped by SIGINT or SIGTERM (or a launcher's request)
//   exit 1  failed at run time (cannot listen or connect, refused, lost the coordinator)
//   exit 2  bad configuration or flags (the message names the problem)
//
// Thread contract: block_stop_signals() must run in main() before any
// thread starts (every thread then inherits the mask, so only
// wait_for_stop() sees the signals); the rest is for main()'s thread.
#pragma once

#include "actors/tracer.hpp"
#include "common/result.hpp"

#include <spdlog/logger.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

namespace accellm::daemon {

inline constexpr int exit_ok = 0;
inline constexpr int exit_failure = 1;
inline constexpr int exit_config = 2;

/// A logger named `name` writing to stderr at `level` ("trace", "debug",
/// "info", "warn", "error", "off"); invalid_argument for another level.
result<std::shared_ptr<spdlog::logger>> make_logger(std::string name, std::string_view level);

/// Blocks SIGINT and SIGTERM in the calling thread (and those it starts).
void block_stop_signals();

/// Waits until SIGINT or SIGTERM arrives (returns the signal) or `give_up`
/// becomes true (returns 0); checks the flag a few times a second.
int wait_for_stop(const std::atomic<bool>* give_up = nullptr);

/// Waits at most `limit` for SIGINT or SIGTERM: the signal, or 0.
int wait_for_signal(std::chrono::milliseconds limit);

/// A daemon's message trace (--trace FILE) under node name `node`: none
/// (null) for an empty path. Real time (the steady clock), and events are
/// dropped and counted rather than stall an actor when the disk falls
/// behind. Open it before the actor_system, so that it outlives the actors.
result<std::unique_ptr<actors::tracer>> open_trace(const std::filesystem::path& file,
                                                   std::string node);

/// Closes `t` (may be null) and logs what it wrote; false when writing failed.
bool close_trace(actors::tracer* t, spdlog::logger& log);

/// A daemon's serving with its trace around it: opens `file` (open_trace),
/// runs `serve(tracer*)` (null without a file), closes the trace. exit_config
/// when it cannot be opened, exit_failure when writing it failed, else what
/// `serve` returned.
template <class Serve>
int with_trace(const std::filesystem::path& file, std::string node, spdlog::logger& log,
               Serve&& serve) {
  auto trace = open_trace(file, std::move(node));
  if (!trace) {
    log.error("{}", trace.err().what());
    return exit_config;
  }
  const int code = serve(trace->get());
  return close_trace(trace->get(), log) ? code : exit_failure;
}

/// The cluster token: ACCELLM_CLUSTER_TOKEN when set and non-empty, else
/// `from_config`.
std::string cluster_token(const std::string& from_config);

}  // namespace accellm::daemon

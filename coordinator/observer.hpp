// observer: what the coordinator tells whoever records a run (the simulator's
// metrics, later the daemon's Prometheus counters). Injected at spawn, never
// global (STYLE.md rule 9). Times are nanoseconds of the actor clock.
//
// Thread contract: called from the coordinator actor only, one call at a time.
#pragma once

#include "common/types.hpp"
#include "messages/enums.hpp"
#include "messages/structs.hpp"

#include <cstdint>
#include <string_view>
#include <vector>

namespace accellm::coordinator {

/// A finished (or abandoned) request's life, as the coordinator saw it.
struct request_timeline {
  request_id id = 0;
  std::uint32_t prompt_len = 0;
  std::uint32_t max_tokens = 0;
  std::uint64_t arrival_ns = 0;
  std::uint32_t tokens = 0;          ///< output tokens produced
  std::uint64_t first_token_ns = 0;  ///< when the first was produced (tokens >= 1)
  /// When the iteration that produced the first token started (its Execute
  /// left the instance_manager): arrival to this is the scheduling delay.
  std::uint64_t first_execute_ns = 0;
  std::uint64_t last_token_ns = 0;  ///< when the latest was produced (tokens >= 1)
  /// When each output token was produced; empty unless the coordinator keeps
  /// token times (coordinator_options::token_times).
  std::vector<std::uint64_t> token_ns;
  instance_id prefill_instance = no_instance;
  instance_id decode_instance = no_instance;
  std::uint32_t moves = 0;
  std::uint32_t preemptions = 0;
  std::uint32_t takeovers = 0;  ///< times it went on elsewhere after its instance was lost
  bool completed = false;
};

/// A request whose instance was lost goes on elsewhere (DESIGN.md "Takeover").
struct takeover_event {
  request_id request = 0;
  instance_id lost = no_instance;  ///< the instance that was lost
  instance_id to = no_instance;    ///< where it goes on
  /// Continues from the copy `to` holds, recomputing only what the copy
  /// lacks; false: `to` recomputes all `context_len` tokens (re-prefill).
  bool from_replica = false;
  std::uint32_t context_len = 0;  ///< tokens whose KV `to` needs (0: no token yet)
  std::uint64_t time_ns = 0;
};

class observer {
 public:
  virtual ~observer() = default;
  /// Every IterationReport the coordinator accepted.
  virtual void on_iteration(const messages::iteration_report& report) = 0;
  /// An instance's role changed at `time_ns` (also called once per instance at
  /// start); `pool` is the policy's label for it then ("pair0", "prompt", ...).
  virtual void on_role(instance_id instance, messages::role role, std::string_view pool,
                       std::uint64_t time_ns) = 0;
  /// A request finished.
  virtual void on_finished(const request_timeline& request) = 0;
  /// A submitted request was accepted (daemons: counted for /metrics).
  virtual void on_accepted(request_id /*id*/) {}
  /// Daemons: a worker's instance joined the cluster, with its name and the
  /// bytes one KV block holds on its device.
  virtual void on_joined(instance_id /*instance*/, std::string_view /*name*/,
                         std::uint64_t /*bytes_per_block*/) {}
  /// Daemons: an instance was lost (its process died or was cut off).
  virtual void on_lost(instance_id /*instance*/) {}
  /// A request of a lost instance was placed elsewhere.
  virtual void on_takeover(const takeover_event& /*event*/) {}
  /// The first token after a takeover of `id` came `resume_ns` after it.
  virtual void on_resumed(request_id /*id*/, std::uint64_t /*resume_ns*/) {}
  /// A message of type `type` came from `instance` after it was declared
  /// lost: dropped, and its sender told to stop (SetRole fenced).
  virtual void on_fenced(instance_id /*instance*/, messages::msg_type /*type*/) {}
};

}  // namespace accellm::coordinator

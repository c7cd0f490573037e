// load_driver: drives a live cluster with a workload over the cluster
// protocol (SubmitRequest to the coordinator's CAF port; TokenBatch and
// RequestDone back), as `accellm load` and the multi-process tests do.
//
// A client actor submits each request at its arrival time on the actor
// clock (streaming, so every token is timed as it reaches the client) and
// records what comes back: the tokens, their client-side times, the outcome.
// The records are the simulator's (metrics::run_record), so `load` prints
// the same table as `simulate`; times are as the client sees them
// (network included), instance rows are empty (the coordinator's /metrics
// has them).
//
// Thread contract: drive() blocks the calling thread (main() or a test)
// until every request ended or the drain limit passed; the actor it spawns
// owns its state.
#pragma once

#include "common/result.hpp"
#include "common/types.hpp"
#include "workload/metrics/records.hpp"
#include "workload/request_spec.hpp"

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace accellm::daemon {

/// One request to send: its lengths and arrival, and the prompt's token ids
/// (spec.prompt_tokens of them).
struct load_request {
  workload::request_spec spec;
  std::vector<token_id> prompt;
};

/// What happened to every request, in the order given.
struct load_outcome {
  metrics::run_record record;                 ///< times since the first submission could go
  std::vector<std::vector<token_id>> tokens;  ///< output ids per request
  std::vector<std::string> errors;            ///< per request: "" or why it failed
  std::size_t finished = 0;                   ///< requests that ended (ok or not)
  bool drained = false;                       ///< every request ended in time
};

/// Where a drive is, for a progress display: wall time since it started of
/// the span of its arrivals, and requests ended. `done` on the last call.
struct load_progress {
  std::chrono::nanoseconds elapsed{0};
  std::chrono::nanoseconds span{0};  ///< the last arrival
  std::size_t finished = 0;
  std::size_t total = 0;
  bool done = false;
};

/// Prompts of `trace`'s lengths, token ids drawn from [0, 256) with `seed`
/// (byte-level text: every model accellm serves has at least 256 ids).
std::vector<load_request> with_prompts(const workload::trace& trace, std::uint64_t seed);

/// Submits `requests` to `coordinator` at their arrival times, request ids
/// `id_base + spec.id`, and waits until all have ended or `drain` passed
/// after the last arrival. `progress` (may be empty) is called from the
/// calling thread as requests end and at least twice a second, then once
/// with `done`.
result<load_outcome> drive(caf::actor_system& sys, const caf::actor& coordinator,
                           const std::vector<load_request>& requests, request_id id_base,
                           std::chrono::nanoseconds drain,
                           const std::function<void(const load_progress&)>& progress = {});

}  // namespace accellm::daemon

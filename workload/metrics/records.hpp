// What one run of the cluster leaves behind, for metrics to summarise.
//
// The simulator (and later the live load driver) fills a run_record while it
// runs: one request_record per request, one instance_record per instance.
// Everything downstream (summary.hpp, goodput.hpp, writers.hpp) reads only
// these plain structs, so a run can be summarised, written and compared
// without knowing which policy or backend produced it.
//
// Conventions: every time is a duration since the start of the run (virtual
// time in the simulator); `never` marks an event that did not happen. Fields
// are only ever appended, so code that fills them keeps compiling.
//
// Thread contract: value types; no shared state.
#pragma once

#include "common/types.hpp"
#include "messages/enums.hpp"

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace accellm::metrics {

using nanos = std::chrono::nanoseconds;

/// "Did not happen": a first token or finish that never came.
inline constexpr nanos never{-1};

/// One request, from arrival to its last output token.
struct request_record {
  request_id id = 0;
  std::uint32_t prompt_tokens = 0;
  std::uint32_t max_tokens = 0;    ///< requested output tokens
  nanos arrival{0};                ///< all times since the start of the run
  nanos first_token = never;       ///< time of output token 0 (TTFT = first_token - arrival)
  nanos finish = never;            ///< time of the last output token
  std::vector<nanos> token_times;  ///< time of every output token, [0] == first_token
  instance_id prefill_instance = no_instance;
  instance_id decode_instance = no_instance;  ///< where the last token was produced
  std::uint32_t moves = 0;                    ///< decode moves between instances
  std::uint32_t preemptions = 0;
  bool completed = false;
  nanos baseline_ttft{0};  ///< uncontended prefill time of this prompt alone (0 = unknown)
  nanos baseline_tbt{0};   ///< uncontended decode step of this request alone (0 = unknown)
};

/// The blocks an instance holds, from `time` until its next sample.
struct memory_sample {
  nanos time{0};
  std::uint64_t primary_blocks = 0, replica_blocks = 0;
};

/// An instance's role (and the policy's label for it) over [start, end).
struct role_span {
  nanos start{0}, end{0};
  messages::role role = messages::role::mixed;
  std::string pool;
};

/// One instance over the whole run.
struct instance_record {
  instance_id id = 0;
  std::string name;  ///< "i0", ...
  std::string pool;  ///< policy-specific label: "pair0", "prompt", "token", "mixed"
  nanos busy{0};     ///< sum of iteration durations
  /// Indexed by static_cast<size_t>(messages::role): prefill, decode, mixed.
  std::array<nanos, 3> time_in_role{};
  std::uint64_t iterations = 0, kv_bytes_sent = 0, total_blocks = 0, bytes_per_block = 0;
  std::uint64_t replicas_evicted = 0, preemptions = 0;
  std::uint64_t rejected_messages = 0;  ///< malformed or misaddressed messages the instance dropped
  std::vector<memory_sample> memory;    ///< changes over time, time-ordered
  double price_per_hour = 0.0;          ///< USD per hour for the whole instance
  double power_watts = 0.0;             ///< TDP of the whole instance
  /// Role changes, time-ordered and contiguous from the first role report to
  /// the end of the run; empty when the recorder kept none.
  std::vector<role_span> roles;
  /// busy_windows[k]: iteration time inside [k*w, (k+1)*w), w =
  /// run_record::busy_window; an iteration across a boundary is split.
  std::vector<nanos> busy_windows;
};

/// A request of a lost instance that went on elsewhere (runs with faults).
struct takeover_record {
  request_id request = 0;
  instance_id lost = no_instance;  ///< the instance that failed
  instance_id to = no_instance;    ///< where the request went on
  bool from_replica = false;       ///< from the copy `to` held (else recomputed)
  std::uint32_t context_len = 0;   ///< tokens of KV needed; 0: restarted from its prompt
  nanos at{0};                     ///< when the coordinator placed it
  nanos resumed = never;           ///< its next token (never: none came)
};

/// One run of one policy at one offered rate.
struct run_record {
  std::string policy;         ///< "accellm", "splitwise", "vllm"
  std::string setting;        ///< e.g. "prompt:token 3:5", "chunked 512", ""
  double offered_rate = 0.0;  ///< req/s
  nanos makespan{0};          ///< start of the run to the last finish (or the end of the run)
  std::vector<request_record> requests;
  std::vector<instance_record> instances;
  nanos busy_window{0};  ///< width of instance_record::busy_windows (0 = none kept)
  std::vector<takeover_record> takeovers;  ///< in the order they happened
};

/// Output tokens a request produced: token_times.size(), or, when the
/// recorder kept no token times, max_tokens for a completed request, 1 for
/// one that has a first token and 0 otherwise.
inline std::size_t output_tokens(const request_record& r) noexcept {
  if (!r.token_times.empty()) return r.token_times.size();
  if (r.completed) return r.max_tokens;
  return r.first_token != never ? 1 : 0;
}

/// Whether a request finished: completed with a recorded finish time.
inline bool finished(const request_record& r) noexcept {
  return r.completed && r.finish != never;
}

}  // namespace accellm::metrics

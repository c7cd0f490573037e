// Enumerations carried inside wire messages (messages/accellm.capnp).
//
// Each mirrors the schema enum of the same name with the same ordinals;
// decode rejects a wire value outside the enumeration with
// errc::out_of_range, so a decoded message only ever holds listed values.
//
// Value types and constexpr functions; safe from any thread.
#pragma once

#include <cstdint>
#include <string_view>

namespace accellm::messages {

/// What an instance runs.
enum class role : std::uint8_t {
  prefill,  ///< prompts only
  decode,   ///< token generation only
  mixed,    ///< both in one batch (vLLM-style baseline)
};

/// What a batch item computes.
enum class phase : std::uint8_t {
  prefill,  ///< prompt tokens, possibly one chunk of them
  decode,   ///< one generated token
};

/// Why a running decode moves to another instance.
enum class move_reason : std::uint8_t {
  balance,      ///< load balancing inside a pair
  role_switch,  ///< the source becomes a prefill instance
  takeover,     ///< the source died or was fenced
  handoff,      ///< prefill instance -> the decode instance the KV was shipped to
};

/// Why replicas are dropped.
enum class evict_reason : std::uint8_t {
  memory_pressure,  ///< the holder needs the blocks for primaries
  completed,        ///< the request finished
  repair,           ///< the replica is stale after a failure
  handed_off,       ///< decode went elsewhere and this copy is not kept (Splitwise)
};

/// Outcome of a request.
enum class request_status : std::uint8_t { ok, cancelled, failed };

/// Why generation ended.
enum class finish_reason : std::uint8_t {
  none,           ///< it did not finish (cancelled or failed)
  length,         ///< max_tokens tokens were generated
  stop,           ///< a stop token was generated
  context_limit,  ///< the model's maximum context was reached
};

/// What a trace_event records.
enum class trace_kind : std::uint8_t {
  message,         ///< one message envelope
  iteration_span,  ///< one iteration of one instance
  log_start,       ///< first record of every log: its node and clock
  clock_sample,    ///< a message carrying its sender's clock arrived
  log_end,         ///< last record of a log closed in order
};

/// Lower-case names ("role_switch"); "unknown" outside the enumeration.
constexpr std::string_view to_string(role v) noexcept {
  switch (v) {
    case role::prefill:
      return "prefill";
    case role::decode:
      return "decode";
    case role::mixed:
      return "mixed";
  }
  return "unknown";
}

constexpr std::string_view to_string(phase v) noexcept {
  switch (v) {
    case phase::prefill:
      return "prefill";
    case phase::decode:
      return "decode";
  }
  return "unknown";
}

constexpr std::string_view to_string(move_reason v) noexcept {
  switch (v) {
    case move_reason::balance:
      return "balance";
    case move_reason::role_switch:
      return "role_switch";
    case move_reason::takeover:
      return "takeover";
    case move_reason::handoff:
      return "handoff";
  }
  return "unknown";
}

constexpr std::string_view to_string(evict_reason v) noexcept {
  switch (v) {
    case evict_reason::memory_pressure:
      return "memory_pressure";
    case evict_reason::completed:
      return "completed";
    case evict_reason::repair:
      return "repair";
    case evict_reason::handed_off:
      return "handed_off";
  }
  return "unknown";
}

constexpr std::string_view to_string(request_status v) noexcept {
  switch (v) {
    case request_status::ok:
      return "ok";
    case request_status::cancelled:
      return "cancelled";
    case request_status::failed:
      return "failed";
  }
  return "unknown";
}

constexpr std::string_view to_string(finish_reason v) noexcept {
  switch (v) {
    case finish_reason::none:
      return "none";
    case finish_reason::length:
      return "length";
    case finish_reason::stop:
      return "stop";
    case finish_reason::context_limit:
      return "context_limit";
  }
  return "unknown";
}

constexpr std::string_view to_string(trace_kind v) noexcept {
  switch (v) {
    case trace_kind::message:
      return "message";
    case trace_kind::iteration_span:
      return "iteration_span";
    case trace_kind::log_start:
      return "log_start";
    case trace_kind::clock_sample:
      return "clock_sample";
    case trace_kind::log_end:
      return "log_end";
  }
  return "unknown";
}

}  // namespace accellm::messages

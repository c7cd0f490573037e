// Time in actor code (STYLE.md rule 8, DESIGN.md "Two clocks, one code").
//
// Actors read time only from the clock of the system they run in: the steady
// clock in the daemons, the test clock of CAF's testing scheduler in
// `accellm simulate`. They wait only through delayed_send, request timeouts or
// `after`. Never std::chrono::*_clock::now(), never sleep: that is what lets
// the same actor code run in virtual time.
//
// Non-actor code (policies, cost models) does not read a clock at all: it is
// given the time as an argument.
#pragma once

#include <caf/actor_clock.hpp>
#include <caf/local_actor.hpp>

#include <chrono>
#include <cstdint>

namespace accellm::actors {

using time_point = caf::actor_clock::time_point;
using duration = caf::actor_clock::duration_type;

/// The current time of the clock `self` runs on. (CAF 0.17 declares
/// local_actor::now() but never defines it: use this instead.)
inline time_point now(const caf::local_actor* self) {
  return self->clock().now();
}

/// Nanoseconds from `origin` to `t`, for wire messages and logs. Negative when
/// t precedes origin.
inline std::int64_t nanos_since(time_point origin, time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t - origin).count();
}

}  // namespace accellm::actors

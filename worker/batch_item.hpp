// to_batch_item: the device's view of one Execute item, shared by the
// simulated and the real-device worker.
//
// Pure function; no state.
#pragma once

#include "device/backend.hpp"
#include "messages/structs.hpp"

namespace accellm::worker {

/// Writes `in` into `out` (token ids copied as they are: none from the
/// simulator, every one for a real device).
inline void to_batch_item(const messages::execute_item& in, device::batch_item& out) {
  out.request = in.request;
  out.kind = in.phase == messages::phase::prefill ? device::phase::prefill : device::phase::decode;
  out.context = in.context;
  out.num_tokens = in.num_tokens;
  out.tokens = in.tokens;
  out.wants_output = in.wants_output;
}

}  // namespace accellm::worker

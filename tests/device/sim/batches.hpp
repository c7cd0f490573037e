// Batch builders shared by the device/sim tests.
#pragma once

#include "device/backend.hpp"

#include <cstdint>

namespace accellm::device::sim::testing {

/// One prefill item of `tokens` after `context` cached ones.
inline batch_item prefill_item(request_id r, std::uint32_t context, std::uint32_t tokens,
                               bool wants_output = true) {
  batch_item it;
  it.request = r;
  it.kind = phase::prefill;
  it.context = context;
  it.num_tokens = tokens;
  it.wants_output = wants_output;
  return it;
}

/// One decode item at `context`.
inline batch_item decode_item(request_id r, std::uint32_t context) {
  batch_item it;
  it.request = r;
  it.kind = phase::decode;
  it.context = context;
  it.num_tokens = 1;
  return it;
}

inline batch one_prefill(std::uint32_t tokens, std::uint32_t context = 0) {
  return batch{{prefill_item(1, context, tokens)}};
}

/// `n` decode items, requests 1..n, all at `context`.
inline batch decodes(std::uint32_t n, std::uint32_t context) {
  batch b;
  for (std::uint32_t i = 0; i < n; ++i) b.items.push_back(decode_item(i + 1, context));
  return b;
}

}  // namespace accellm::device::sim::testing

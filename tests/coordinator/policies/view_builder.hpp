// view_builder: hand-built cluster_view objects for the policy tests, and
// helpers to pick decisions of one kind out of a policy's answer.
//
// Value helpers; no actors, no clocks.
#pragma once

#include "coordinator/cluster_view.hpp"
#include "coordinator/policies/policy.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <variant>
#include <vector>

namespace accellm::coordinator::testing {

/// `n` alive, empty instances of `blocks` blocks each (all free), 16-token blocks.
inline cluster_view make_view(std::uint32_t n, std::uint64_t blocks = 1000) {
  cluster_view v;
  v.block_tokens = 16;
  v.instances.resize(n);
  for (instance_id i = 0; i < n; ++i) {
    instance_view& inst = v.instances[i];
    inst.id = i;
    inst.total_blocks = blocks;
    inst.free_blocks = blocks;
  }
  return v;
}

/// Adds a live request in phase `phase` and returns it.
inline request_view& add_request(cluster_view& v, request_id id, std::uint32_t prompt,
                                 std::uint32_t max_tokens,
                                 request_phase phase = request_phase::prefill) {
  request_view r;
  r.id = id;
  r.prompt_len = prompt;
  r.max_tokens = max_tokens;
  r.phase = phase;
  if (phase != request_phase::prefill) r.generated = 1;
  return v.requests.insert_or_assign(id, r).first->second;
}

/// Adds a request decoding on `on` whose replica is on `replica`, and counts
/// it in the instance's decode load as the coordinator does.
inline request_view& add_decoding(cluster_view& v, request_id id, instance_id on,
                                  instance_id replica, std::uint32_t prompt = 100) {
  request_view& r = add_request(v, id, prompt, 50, request_phase::decoding);
  r.prefill_instance = on;
  v.set_decode_instance(r, on);
  r.replica_instance = replica;
  ++v.at(on).decode_requests;
  v.at(on).decode_tokens += r.context_len();
  return r;
}

/// Every decision of type T, in order.
template <class T>
std::vector<T> all_of(const decisions& ds) {
  std::vector<T> out;
  for (const decision& d : ds) {
    if (const T* x = std::get_if<T>(&d)) out.push_back(*x);
  }
  return out;
}

/// The one decision of type T (a test failure when there is not exactly one).
template <class T>
T only(const decisions& ds) {
  const std::vector<T> xs = all_of<T>(ds);
  EXPECT_EQ(xs.size(), 1u) << "expected exactly one decision of this kind, got " << xs.size()
                           << " among " << ds.size();
  return xs.empty() ? T{} : xs.front();
}

}  // namespace accellm::coordinator::testing

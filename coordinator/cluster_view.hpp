// cluster_view: what the coordinator knows about the cluster and its
// requests, in plain structs a policy reads (DESIGN.md "coordinator").
//
// The coordinator keeps it: instance state from each IterationReport (memory,
// queues), its own bookkeeping between reports (prefill tokens assigned and
// not yet done, decode requests placed on each instance), and one entry per
// live request (where its primary and its replica are).
//
// Value types; no clocks, no CAF. One thread at a time (the coordinator's).
#pragma once

#include "common/types.hpp"
#include "messages/enums.hpp"

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace accellm::coordinator {

/// Where a request is in its life.
enum class request_phase : std::uint8_t {
  prefill,   ///< assigned to an instance that has not produced its first token yet
  parked,    ///< prefilled; waiting for the policy's decode placement
  moving,    ///< MoveDecode sent to the source; waiting for its answer
  decoding,  ///< decoding on decode_instance
};

/// One live request as the coordinator sees it.
struct request_view {
  request_id id = 0;
  std::uint32_t prompt_len = 0;
  std::uint32_t max_tokens = 0;
  std::uint32_t generated = 0;     ///< output tokens produced so far
  token_id last_token = no_token;  ///< the newest output token
  request_phase phase = request_phase::prefill;
  instance_id prefill_instance = no_instance;
  instance_id decode_instance = no_instance;  ///< where it decodes (or is about to)
  /// Instance holding (or receiving) the redundant copy; no_instance = none.
  instance_id replica_instance = no_instance;
  std::uint32_t moves = 0;

  /// Tokens whose KV is cached by the instance that decodes next.
  std::uint32_t context_len() const noexcept { return prompt_len + generated - 1; }
};

/// One instance as the coordinator sees it.
struct instance_view {
  instance_id id = 0;
  messages::role role = messages::role::mixed;
  instance_id partner = no_instance;
  std::string pool;  ///< policy label for reports: "pair0", "prompt", "token", "mixed"
  bool alive = true;

  // From the latest IterationReport.
  std::uint64_t total_blocks = 0;
  std::uint64_t primary_blocks = 0;
  std::uint64_t replica_blocks = 0;
  std::uint64_t free_blocks = 0;

  // Coordinator bookkeeping, exact at any time.
  std::uint64_t pending_prefill_tokens = 0;  ///< assigned prompt tokens not yet prefilled
  std::uint32_t pending_prefills = 0;        ///< requests assigned and not yet prefilled
  std::uint32_t decode_requests = 0;         ///< requests decoding (or about to) here
  std::uint64_t decode_tokens = 0;           ///< their context tokens (attention load)
  std::uint32_t parked = 0;                  ///< prefilled here, decode not placed yet
  std::uint64_t last_assigned = 0;  ///< cluster_view::assignments at its latest prompt (0 = none)
  /// Requests whose decode_instance is this one, in id order (what policies
  /// walk instead of every request); kept by cluster_view::set_decode_instance.
  std::set<request_id> decoding;

  /// Blocks a new primary could use: free plus evictable replicas, less what
  /// assigned prompts will take.
  std::uint64_t available_blocks(std::uint32_t block_tokens) const noexcept;
  /// True when the instance has no work assigned at all.
  bool idle() const noexcept {
    return pending_prefills == 0 && decode_requests == 0 && parked == 0;
  }
};

/// The whole view.
struct cluster_view {
  std::vector<instance_view> instances;  ///< index == instance id
  std::map<request_id, request_view> requests;
  std::uint32_t block_tokens = 16;
  std::uint64_t assignments = 0;  ///< prompts assigned so far (orders instances by recency)

  /// Blocks that `tokens` tokens occupy.
  std::uint64_t blocks_for(std::uint64_t tokens) const noexcept {
    return (tokens + block_tokens - 1) / block_tokens;
  }
  const instance_view& at(instance_id i) const { return instances.at(i); }
  instance_view& at(instance_id i) { return instances.at(i); }

  /// Sets where `r` decodes (no_instance = nowhere), keeping the instances'
  /// `decoding` sets in step.
  void set_decode_instance(request_view& r, instance_id i);
  /// Unlinks instance `i` and its partner (if any) from each other.
  void unpair(instance_id i);
  /// The live instance with the least work assigned (pending prompt tokens
  /// plus decode context tokens; the lowest id on a tie) among those
  /// `eligible` accepts, or no_instance.
  template <class Eligible>
  instance_id least_loaded(Eligible eligible) const {
    instance_id best = no_instance;
    std::uint64_t best_load = 0;
    for (const instance_view& inst : instances) {
      if (!inst.alive || !eligible(inst)) continue;
      const std::uint64_t load = inst.pending_prefill_tokens + inst.decode_tokens;
      if (best == no_instance || load < best_load) {
        best = inst.id;
        best_load = load;
      }
    }
    return best;
  }
  /// The same among all live instances.
  instance_id least_loaded() const {
    return least_loaded([](const instance_view&) { return true; });
  }
  /// Forgets a request, and its place in `decoding`.
  void erase_request(std::map<request_id, request_view>::iterator it);
};

}  // namespace accellm::coordinator

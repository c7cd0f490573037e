// policy: the scheduling rule of the cluster, as a plain class (DESIGN.md
// "policy"): it reads the cluster_view and returns decisions; the coordinator
// actor turns them into messages and updates the view. No actors, no clocks,
// so every rule is unit-tested alone.
//
//   vllm       every instance mixes prefill and decode (tests: vllm_test.cpp)
//   splitwise  prompt pool and token pool, KV shipped after prefill
//   accellm    pairs with a redundant KV copy and per-pair role switching
//
// Events, in the order a request meets them: on_arrival (pick where it
// prefills and where its KV is copied), on_prefill_done (pick where it
// decodes), on_report after every iteration of an instance (role switches,
// rebalancing), on_finished. A policy may keep its own state (pools).
//
// Thread contract: one thread at a time (the coordinator's).
#pragma once

#include "common/types.hpp"
#include "coordinator/cluster_view.hpp"
#include "messages/enums.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace accellm::coordinator {

/// Prefill `request` on `instance`, copying its KV layer by layer to
/// `copy_to` (no_instance = no copy). With `then_decode` the instance keeps
/// decoding it after prefill without waiting for a placement.
struct assign_prefill_d {
  request_id request = 0;
  instance_id instance = no_instance;
  instance_id copy_to = no_instance;
  bool then_decode = false;
};

/// Decode a parked request on the instance that prefilled it; `replica` keeps
/// the redundant copy (no_instance = none).
struct decode_here_d {
  request_id request = 0;
  instance_id replica = no_instance;
};

/// Move a request's decode from its current instance to `to`, which holds its
/// KV (replica or shipped copy). With `keep_copy` the source keeps its KV as
/// the new replica; otherwise it frees it.
struct move_decode_d {
  request_id request = 0;
  instance_id to = no_instance;
  messages::move_reason reason = messages::move_reason::balance;
  bool keep_copy = true;
};

/// Change an instance's role (and its pool label: a string literal, or
/// nullptr to keep the label; a plain pointer keeps decisions trivially
/// copyable).
struct set_role_d {
  instance_id instance = no_instance;
  messages::role role = messages::role::mixed;
  const char* pool = nullptr;
};

using decision = std::variant<assign_prefill_d, decode_here_d, move_decode_d, set_role_d>;
using decisions = std::vector<decision>;

/// A scheduling rule.
class policy {
 public:
  virtual ~policy() = default;

  /// "vllm", "splitwise", "accellm".
  virtual std::string_view name() const noexcept = 0;
  /// The tunable setting in effect, for tables ("prompt:token 3:5"); may be empty.
  virtual std::string setting() const = 0;
  /// Initial roles, partners and pool labels, written into `view.instances`.
  virtual void init(cluster_view& view) = 0;
  /// A live cluster grew: instance `i`, the last of view.instances, joined
  /// (a daemon registered). Sets its role, partner and pool label, and may
  /// change other instances' (the partner it is paired with); the
  /// coordinator sends SetRole wherever role or partner changed.
  virtual void join(cluster_view& view, instance_id i) = 0;
  /// Instance `gone` was lost (view.at(gone).alive is already false): unlinks
  /// it from its partner. A policy may also pair the partner left alone; the
  /// coordinator sends SetRole wherever role or partner changed.
  virtual void leave(cluster_view& view, instance_id gone) { view.unpair(gone); }
  /// A request arrived (it is in view.requests, phase prefill, no instance).
  /// Must return exactly one assign_prefill_d for it, plus any role changes.
  virtual decisions on_arrival(const cluster_view& view, const request_view& r) = 0;
  /// A request produced its first token and is parked on its prefill
  /// instance. Must return a decode_here_d or a move_decode_d for it.
  virtual decisions on_prefill_done(const cluster_view& view, const request_view& r) = 0;
  /// An instance finished an iteration (view updated from its report).
  virtual decisions on_report(const cluster_view& view, instance_id i) = 0;
};

/// The policy called `name` ("vllm", "splitwise", "accellm"), configured.
struct policy_options {
  bool chunked_prefill = false;                    ///< vllm: Sarathi-style chunked prefill
  std::uint32_t prompt_instances = 0;              ///< splitwise: prompt pool size (0 = n / 2)
  std::uint64_t prompt_max_pending_tokens = 8192;  ///< splitwise: prompt instance saturation
};

}  // namespace accellm::coordinator

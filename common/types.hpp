// Basic identifiers shared by every layer of accellm.
#pragma once

#include <cstdint>
#include <limits>

namespace accellm {

/// Cluster-wide request identifier, assigned by the coordinator (never 0).
using request_id = std::uint64_t;

/// A token id in the model's vocabulary.
using token_id = std::int32_t;

/// "No token": a non-final prefill chunk produces none.
inline constexpr token_id no_token = -1;

/// Cluster epoch: bumped when membership changes, so that messages from a
/// fenced (declared dead) instance can be recognised and ignored.
using epoch_t = std::uint64_t;

/// Instance identifier inside one cluster (index into the cluster view).
using instance_id = std::uint32_t;
inline constexpr instance_id no_instance = std::numeric_limits<instance_id>::max();

}  // namespace accellm

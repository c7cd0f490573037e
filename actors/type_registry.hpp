// The one registration function for every type accellm sends through CAF
// (STYLE.md rule 4), and the start-up self-test that proves it worked.
//
// CAF 0.17 does not fail when a node lacks a type: the sender prints an error
// and the receiver gets an empty message. So every binary calls
// register_types() (system_config does) and, once its actor_system exists,
// self_test(), which exits the process with a readable error if anything is
// missing.
#pragma once

#include "common/result.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

#include <span>
#include <string_view>

namespace accellm::actors {

/// Adds every accellm message type to `cfg`. Call once per config, before the
/// actor_system is constructed.
void register_types(caf::actor_system_config& cfg);

/// The portable names register_types() registers, e.g. "accellm::capnp_blob".
std::span<const std::string_view> registered_type_names() noexcept;

/// Checks, on a running system, that every registered name can be built by
/// the system's type registry, and that one example of every Cap'n Proto
/// message type survives CAF serialization (wrapped in a caf::message, as on
/// the wire) and still decodes. Returns the first problem found.
status self_test(caf::actor_system& sys);

}  // namespace accellm::actors

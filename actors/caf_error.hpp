// Bridges accellm::error (common/result.hpp) and caf::error.
//
// Actor code replies with caf::error, whose category for accellm codes is the
// atom "accellm" and whose context carries the message text; system_config
// registers a renderer so that actor_system::render() prints
// "accellm: out_of_range (execute.items[3].phase: 7 is out of range)".
#pragma once

#include "common/result.hpp"

#include <caf/atom.hpp>
#include <caf/error.hpp>

#include <string>

namespace accellm {

/// The CAF error category of accellm::errc.
inline constexpr caf::atom_value errc_category = caf::atom("accellm");

/// ADL hook: lets `caf::make_error(errc::...)` and `caf::error{errc::...}`-style
/// code build a caf::error from our enum.
caf::error make_error(errc code, std::string message = {});

/// Converts an accellm::error into a caf::error, keeping its message.
caf::error to_caf(const error& e);

/// Converts back: codes of other categories become errc::internal with the
/// rendered CAF error as message, so nothing is lost.
error from_caf(const caf::error& e);

}  // namespace accellm

// `accellm selftest`: the start-up checks every daemon runs, on demand:
// CAF type registration and message round trips, and what CUDA sees.
#pragma once

#include <CLI/App.hpp>

#include <functional>

namespace accellm::cli {

/// Registers the subcommand; its callback sets `run`.
void add_selftest_command(CLI::App& app, std::function<int()>& run);

}  // namespace accellm::cli

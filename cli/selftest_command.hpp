// `accellm selftest`: the start-up checks every daemon runs, on demand:
// CAF type registration and message round trips, and what CUDA sees. With
// --device it also builds that device as `accellm worker` would (the cluster
// file's model, batching and [cuda] table), prints what it chose (a cuda:N
// backend's kernels and why), and runs a short greedy generation on it with
// its device times: a check of a GPU and a cluster file before a worker
// joins a cluster with them.
#pragma once

#include <CLI/App.hpp>

#include <functional>

namespace accellm::cli {

/// Registers the subcommand; its callback sets `run`.
void add_selftest_command(CLI::App& app, std::function<int()>& run);

}  // namespace accellm::cli

// `accellm model`: the cost model of a model on simulated devices, as a table
// of prefill and decode times with napkin math (device/sim/model_table.hpp).
//
//   accellm model --model llama2-70b --device sim:h100 --tp 8
//   accellm model --model llama2-70b --device all --tp 8 --format csv
//
// Exit codes: 0 on success, 2 for a bad flag value (unknown model, device or
// format, tp 0 or not dividing the heads, weights that do not fit).
#pragma once

#include <CLI/CLI.hpp>

#include <functional>

namespace accellm::cli {

/// Registers the `model` subcommand on `app`. When it is parsed, its callback
/// sets `run` to a function that prints the table to stdout (errors to
/// stderr) and returns the exit code. `run` must outlive the parse.
void add_model_command(CLI::App& app, std::function<int()>& run);

}  // namespace accellm::cli

// The daemon subcommands (DESIGN.md "Command line"):
//
//   accellm coordinator --config C.toml [--port P] [--http-port P] [--log-level L]
//   accellm worker --coordinator HOST:PORT --instance NAME [--device D] [--config C.toml]
//                  [--model M] [--host H] [--kv-port P] [--log-level L]
//   accellm up --config C.toml [--workers N] [--device D] [--workload W --rate R --duration S]
//   accellm load --coordinator HOST:PORT [--config C.toml] --workload W --rate R --duration S
//                [--out DIR [--no-report] [--metrics http://HOST:PORT/metrics]]
//
// The work is in daemon/; these only turn flags into its structs.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>

namespace accellm::cli {

/// Registers the four subcommands; each callback sets `run`.
void add_daemon_commands(CLI::App& app, std::function<int()>& run);

}  // namespace accellm::cli

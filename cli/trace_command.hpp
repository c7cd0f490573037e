// `accellm trace export|summary|follow LOG...`: the message trace logs that
// `--trace FILE` writes (actors/tracer.hpp), merged onto one timeline
// (tracing/merge.hpp) and then
//   export  --format perfetto -o OUT.json   Chrome trace JSON for ui.perfetto.dev
//   summary [--top N]                       counts, bytes, the slowest requests
//   follow  --request ID [--no-spans]       one request's story
// Every one takes --salvage (read a log whose last frame is torn). Offsets
// and warnings of the merge are printed (docs/tracing.md).
//
// Exit codes: 0 done; 2 bad input (no such file, not a trace log, a torn or
// garbage frame, logs that cannot be merged, an unknown --format or request
// id), nothing written; 1 a file exists but cannot be read, or the output
// cannot be written.
#pragma once

#include <CLI/App.hpp>

#include <functional>

namespace accellm::cli {

/// Registers the subcommand; its callbacks set `run`.
void add_trace_command(CLI::App& app, std::function<int()>& run);

}  // namespace accellm::cli

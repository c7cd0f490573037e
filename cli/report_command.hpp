// `accellm report DIR`: one self-contained HTML page (inline SVG plots, no
// script) from the outputs of `accellm simulate --out DIR`, written to
// DIR/report.html (workload/report/report_html.hpp has what it shows).
//
// Exit codes: 0 written; 2 bad input (no such directory, no outputs in it,
// a malformed CSV or JSON file, named with its line or field), nothing
// written; 1 a file exists but cannot be read, or the page cannot be written.
#pragma once

#include <CLI/App.hpp>

#include <filesystem>
#include <functional>
#include <ostream>

namespace accellm::cli {

/// Registers the subcommand; its callback sets `run`.
void add_report_command(CLI::App& app, std::function<int()>& run);

/// Writes dir/report.html and prints its path to `out`; on failure prints
/// the error to stderr prefixed by `who` ("accellm report") and returns the
/// exit code above.
int write_report(const std::filesystem::path& dir, const char* who, std::ostream& out);

}  // namespace accellm::cli

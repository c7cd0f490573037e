// `accellm report DIR`: one self-contained HTML page from simulate's or load's outputs.
//
// The page holds inline CSS and one inline <svg> per plot; no script, no
// external resource, so it opens anywhere, offline, and can be mailed. Per
// rate: a summary table; TTFT, TBT and JCT CDFs per policy (log-scale
// latency); primary and replica KV memory of the cluster over time; per
// policy a timeline of every instance's role with its busy fraction; and
// cost-efficiency bars. For a sweep, latency against offered rate first; with
// goodput.json, goodput and goodput per dollar-hour and per kW.
//
// Outputs of `accellm load` (setting "live") lack some of this: without a
// /metrics scrape no instances or memory, never utilisation, price or power.
// A section without its data shows a short note in place of the plot.
//
// The page depends only on the files' contents (not their path or the time),
// so the same outputs give the same bytes.
//
// Thread contract: render_html is a pure function; write_report reads `dir`
// and writes only dir/report.html (through a temporary file in `dir`).
#pragma once

#include "common/result.hpp"
#include "workload/report/results.hpp"

#include <filesystem>
#include <string>

namespace accellm::report {

/// The HTML page of `r`.
std::string render_html(const results& r);

/// Reads `dir` (read_results), renders it and writes dir/report.html. On any
/// error nothing is written (a stale report.html is left as it was).
/// Returns the path written. Errors: those of read_results; errc::io_failure.
result<std::filesystem::path> write_report(const std::filesystem::path& dir);

}  // namespace accellm::report

// load_outputs: what `accellm load --out DIR` (and `up --workload --out`)
// leaves in DIR, the same files `accellm simulate --out` writes so that
// `accellm report DIR` reads both (workload/report/results.hpp):
//
//   summary.json                     one run, setting "live"
//   <policy>-requests.csv            every request, client-side times
//   <policy>-tbt-histogram.csv       the client-side inter-token gaps
//   <policy>-instances.csv           one row per instance seen in /metrics
//   <policy>-memory.csv              their KV blocks at each scrape
//   <policy>-roles.csv               their roles at each scrape (when any)
//   <policy>-utilisation.csv         their busy fraction per window, when
//                                    run.busy_window > 0 (the coordinator
//                                    exports accellm_instance_busy_seconds_total)
//
// Without a /metrics scrape the instance and memory files hold only their
// headers and there is no roles file: the report says so. Without busy time
// (no scrape, or an older coordinator) there is no utilisation file and
// instances.csv leaves busy_s and idle_fraction empty.
//
// Thread contract: plain functions; each writes only under `dir`.
#pragma once

#include "common/result.hpp"
#include "workload/metrics/records.hpp"
#include "workload/metrics/summary.hpp"

#include <filesystem>

namespace accellm::daemon {

/// Makes `dir` (and its parents) before a run, so that a bad --out fails at
/// once rather than after the load. Errors: errc::config naming --out, the
/// path and the reason (not a directory, no permission, ...).
status prepare_out_dir(const std::filesystem::path& dir);

/// Writes the files above for `run` (its policy names them) and its
/// summary. Errors: errc::io_failure naming the file.
status write_load_outputs(const std::filesystem::path& dir, const metrics::run_record& run,
                          const metrics::summary& sum);

}  // namespace accellm::daemon

// What `accellm simulate --out DIR` (or `accellm load --out DIR`, the same
// files: daemon/load_outputs.hpp) left in DIR, read back for a report.
//
// One rate:           DIR/summary.json, DIR/<policy>-requests.csv,
//                     -instances.csv, -memory.csv, and (since issue 7)
//                     -roles.csv, -utilisation.csv, -tbt-histogram.csv
// --sweep-rates:      the same in DIR/rate-<r>/ per rate
// --goodput:          DIR/goodput.json (optional)
//
// The files of issue 7 are optional, so that older outputs still give a
// report (with those plots marked as missing); everything else must be there.
// Reading is strict: a malformed file is an error naming the file and the
// line or JSON field, never a silently wrong plot.
//
// Thread contract: value types; read_results only reads files.
#pragma once

#include "common/result.hpp"
#include "workload/report/cdf.hpp"

#include <filesystem>
#include <string>
#include <vector>

namespace accellm::report {

/// Mean, P50 and P99 of a latency, in milliseconds (from summary.json).
struct latency {
  double mean = 0, p50 = 0, p99 = 0;
};

/// One row of <policy>-roles.csv.
struct role_row {
  double start_s = 0, end_s = 0;
  std::string role, pool;
};

/// One row of <policy>-utilisation.csv.
struct busy_row {
  double start_s = 0, end_s = 0, fraction = 0;
};

/// One instance of a run.
struct instance_data {
  std::string id, name, pool;
  double total_blocks = 0;
  std::vector<role_row> roles;
  std::vector<busy_row> busy;
};

/// One row of <policy>-memory.csv: instance holds these blocks from time_s on.
struct memory_row {
  double time_s = 0;
  std::size_t instance = 0;  ///< index into run_data::instances
  double primary = 0, replica = 0;
};

/// One policy's run at one rate.
struct run_data {
  std::string policy, setting;
  double offered_rate = 0, makespan_s = 0;
  double throughput_rps = 0, attainment = 0, price_per_hour = 0, power_kw = 0;
  latency ttft, tbt, jct;
  std::vector<double> ttft_ms, jct_ms;  ///< per request, where they exist
  std::vector<instance_data> instances;
  std::vector<memory_row> memory;
  std::vector<bucket> tbt_histogram;  ///< gaps in ms
  bool has_roles = false, has_utilisation = false, has_tbt_histogram = false;
};

/// The runs of one rate (one directory).
struct rate_data {
  std::filesystem::path dir;
  double rate = 0;
  std::vector<run_data> runs;
};

/// A policy's goodput (DistServe) and its cost efficiency.
struct goodput_data {
  std::string policy;
  double rate = 0, per_dollar_hour = 0, per_kw = 0;
};

struct results {
  std::filesystem::path dir;
  bool sweep = false;            ///< read from rate-*/ subdirectories
  std::vector<rate_data> rates;  ///< ascending rate
  std::vector<goodput_data> goodput;
};

/// Reads the outputs in `dir`. Errors: errc::not_found (no such directory,
/// or neither summary.json nor rate-*/summary.json in it), errc::malformed
/// naming the file and line or field, errc::io_failure.
result<results> read_results(const std::filesystem::path& dir);

/// Reads one rate's directory (summary.json and every policy's CSV files).
result<rate_data> read_rate(const std::filesystem::path& dir);

}  // namespace accellm::report

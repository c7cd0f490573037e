// Files and text a run leaves for people and plotting scripts.
//
//   write_requests_csv    one row per request (Splitwise's detailed/*.csv)
//   write_instances_csv   one row per instance (busy/idle time, KV traffic)
//   write_memory_csv      every memory sample of every instance
//   write_roles_csv       every instance's roles over time
//   write_utilisation_csv every instance's busy fraction per time window
//   write_tbt_histogram_csv  the inter-token gaps, binned (for a TBT CDF)
//   summary_json          the summaries of several runs, for scripts
//   format_comparison     the terminal table comparing runs side by side
//
// Output is deterministic: the same records give the same bytes (numbers go
// through std::to_chars with fixed precision, JSON keys keep their order).
// CSV files start with a header row, end every row with '\n', and leave a
// field empty where a value does not exist (no first token, no instance).
//
// Thread contract: pure functions of their arguments; the CSV writers
// create or truncate the file they are given and nothing else.
#pragma once

#include "common/result.hpp"
#include "workload/metrics/records.hpp"
#include "workload/metrics/summary.hpp"

#include <filesystem>
#include <string>
#include <vector>

namespace accellm::metrics {

/// One row per request, in record order:
/// id,prompt_tokens,max_tokens,output_tokens,arrival_s,ttft_ms,tpot_ms,
/// max_tbt_ms,jct_ms,prefill_instance,decode_instance,moves,preemptions,completed
/// (seconds with 6 decimals, milliseconds with 3; completed is 1 or 0; tpot
/// and max_tbt need two tokens, jct and tpot a finished request).
/// Errors: errc::io_failure naming the path.
status write_requests_csv(const std::filesystem::path& path, const run_record& run);

/// One row per instance, in record order:
/// id,name,pool,busy_s,idle_fraction,prefill_s,decode_s,mixed_s,iterations,
/// kv_bytes_sent,peak_primary_blocks,peak_replica_blocks,total_blocks,
/// replicas_evicted,preemptions,rejected_messages
/// (idle_fraction = 1 - busy/makespan with 4 decimals, empty for a zero
/// makespan; busy_s and idle_fraction are empty for an instance with
/// iterations but no busy time: not timed, as in a live run against a
/// coordinator without accellm_instance_busy_seconds_total).
/// Errors: errc::io_failure naming the path.
status write_instances_csv(const std::filesystem::path& path, const run_record& run);

/// time_s,instance,primary_blocks,replica_blocks: every sample, instance by
/// instance in record order, each in its own time order; `instance` is the
/// instance id. Errors: errc::io_failure naming the path.
status write_memory_csv(const std::filesystem::path& path, const run_record& run);

/// instance,start_s,end_s,role,pool: every role span (instance_record::roles)
/// of every instance, in record order; role is prefill, decode or mixed.
/// Errors: errc::io_failure naming the path.
status write_roles_csv(const std::filesystem::path& path, const run_record& run);

/// instance,start_s,end_s,busy_fraction: per instance, every utilisation
/// window of width run.busy_window from 0 up to the makespan, with the
/// fraction of it spent in iterations (4 decimals; the last window may be
/// cut short by the makespan). Only the header when no windows were kept.
/// Errors: errc::io_failure naming the path.
status write_utilisation_csv(const std::filesystem::path& path, const run_record& run);

/// Bins of the TBT histogram: 20 per decade of milliseconds from 0.001 ms
/// (bin k holds [0.001 * 10^(k/20), 0.001 * 10^((k+1)/20)) ms), below that one
/// bin [0, 0.001).
inline constexpr int tbt_bins_per_decade = 20;

/// lo_ms,hi_ms,count: every inter-token gap of every request (the pooled TBT
/// of summary.hpp) in the bins above, ascending, non-empty bins only, edges
/// with 6 decimals. Only the header when no token times were kept.
/// Errors: errc::io_failure naming the path.
status write_tbt_histogram_csv(const std::filesystem::path& path, const run_record& run);

/// A run and its summary, for the multi-run outputs. `run` is borrowed and
/// must outlive the call; a null `run` shows as an unnamed policy.
struct labelled_run {
  const run_record* run;
  summary sum;
};

/// {"runs": [{"policy", "setting", "offered_rate", "makespan_s",
/// "summary": {...every summary field, stats as objects...}}]},
/// dumped with 2-space indent, keys in a fixed order. Non-finite numbers
/// (an infinite slowdown) are written as null.
std::string summary_json(const std::vector<labelled_run>& runs);

/// The terminal comparison table: one column per run (header = policy and,
/// on a second line, its setting), rows = completed, throughput, TTFT
/// mean/p50/p99, TBT mean/p50/p99/max, TPOT mean, JCT mean/p50/p99,
/// slowdown SLOs met (n/9), attainment, idle %, KV GB sent, replicas
/// evicted, preemptions; plus a last column "accellm gain" = improvement of
/// the (first) run whose policy is "accellm" over the BEST other run for
/// that row, in % (lower-is-better rows: (best_other - accellm)/best_other
/// * 100; higher-is-better rows the other way), blank when there is no
/// accellm run, no other run, or the best other value is 0. Fixed-width
/// plain text; lines end with '\n'.
std::string format_comparison(const std::vector<labelled_run>& runs);

}  // namespace accellm::metrics

// Summary of one run: latency distributions, SLO checks, utilisation.
//
// summarize() turns a run_record into the numbers the paper's comparisons
// use (notes/peers.md 1, 2, 7; notes/paper.md 6.3):
//   TTFT  first_token - arrival, over requests that got a first token;
//   TBT   every inter-token gap, pooled over all requests (vLLM's ITL);
//   TPOT  (finish - first_token) / (tokens - 1), over finished requests
//         with at least two tokens (DistServe, vLLM "excl. 1st token");
//   JCT   finish - arrival, over finished requests.
// Latency stats are in milliseconds.
//
// Splitwise slowdown SLOs: each request's TTFT, each of its TBT gaps and its
// E2E time are divided by the uncontended baseline recorded with it; the P50,
// P90 and P99 of each slowdown are checked against 2/3/6x (TTFT) and
// 1.25/1.5/5x (TBT, E2E). Requests whose baselines are unknown (0) are
// skipped; a request with known baselines that never got its first token
// (or never finished) counts as an infinite TTFT (E2E) slowdown, so a policy
// cannot pass by starving requests. A check with no samples is not met.
//
// Thread contract: pure functions of their arguments; safe from any thread.
#pragma once

#include "workload/metrics/records.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace accellm::metrics {

/// A distribution, in milliseconds when it describes times.
struct stats {
  std::size_t count = 0;
  double mean = 0, p50 = 0, p90 = 0, p99 = 0, max = 0;
};

/// Count, mean, P50/P90/P99 (linear interpolation between closest ranks,
/// numpy's default) and max of `values`; all 0 when empty.
stats describe(std::vector<double> values);

/// The p-th percentile (0..100) of ascending `sorted` by linear
/// interpolation; 0 when empty. Infinite values sort last and propagate.
double percentile(const std::vector<double>& sorted, double p);

/// One Splitwise check: `percentile` of the `metric` slowdown <= `target`.
struct slowdown_slo {
  std::string metric;  ///< "ttft", "tbt" or "e2e"
  double percentile;   ///< 50, 90 or 99
  double target;       ///< slowdown limit, e.g. 2.0
  double measured = 0;
  bool met = false;
};

/// Absolute per-request SLOs (DistServe attainment).
struct slo_options {
  double ttft_ms = 0;  ///< TTFT limit; 0 = not set
  /// TPOT limit; 0 = not set. A request meets it when its TPOT <= tbt_ms;
  /// one-token requests meet it.
  double tbt_ms = 0;
};

/// Everything summarize() reports about one run.
struct summary {
  std::size_t requests = 0, completed = 0;
  double duration_s = 0;               ///< makespan
  double throughput_rps = 0;           ///< completed / duration
  double output_tok_per_s = 0;         ///< output tokens of all requests / duration
  stats ttft, tbt, tpot, jct;          ///< see the header comment
  std::vector<slowdown_slo> slowdown;  ///< the 9 Splitwise checks, TTFT, TBT, E2E x P50/90/99
  bool slowdown_all_met = false;
  /// Fraction of ALL requests that finished and meet both absolute SLOs;
  /// 1 when neither is set, 0 for a run without requests.
  double attainment = 0;
  /// Mean over instances of 1 - busy/makespan, clamped to [0, 1]; over the
  /// instances whose busy time is known (busy > 0 or no iteration): none
  /// when no instance's is (a live run without the coordinator's busy time).
  std::optional<double> idle_fraction;
  double price_per_hour = 0, power_kw = 0;                ///< sums over instances
  std::uint64_t kv_bytes_sent = 0, replicas_evicted = 0;  ///< sums over instances
  std::uint64_t preemptions = 0;                          ///< sum over instances
  std::uint64_t moves = 0;                                ///< sum over requests
  double peak_replica_fraction = 0;  ///< max over instances and time of replica/total blocks
  /// Requests of failed instances that went on elsewhere, from a replica.
  std::uint64_t takeovers = 0, takeovers_from_replica = 0;
  stats resume;  ///< ms from a takeover to the request's next token (those that had one)
};

/// Summarises `run` against `slo`. Never fails: degenerate runs (no
/// requests, zero makespan) give zeros rather than divisions by zero.
summary summarize(const run_record& run, const slo_options& slo);

}  // namespace accellm::metrics

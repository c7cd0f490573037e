// compare: the fair fight between policies (issue 4). Every policy sees the
// same cluster, hardware, model and requests; a baseline with a tunable
// setting runs every setting and is represented by its best one:
//   vllm       prefill-first and chunked prefill (config policy.vllm.chunked)
//   splitwise  every prompt-pool size in policy.splitwise.prompt_instances
//              (empty: 1 .. n-1)
// "Best" is the highest SLO attainment (absolute SLOs, when set), then the
// fewest Splitwise slowdown SLOs missed, then the lowest mean JCT.
//
// Thread contract: plain functions.
#pragma once

#include "simulator/sim_cluster.hpp"
#include "workload/metrics/summary.hpp"

#include <functional>
#include <string>
#include <vector>

namespace accellm::simulator {

/// One policy's runs: the chosen one and every setting tried.
struct policy_outcome {
  run_result best;
  metrics::summary best_summary;
  std::vector<std::pair<std::string, metrics::summary>> tried;  ///< setting -> summary
};

struct compare_options {
  config::cluster_config cluster;
  workload::trace trace;
  double offered_rate = 0;
  std::vector<std::string> policies{"vllm", "splitwise", "accellm"};
  metrics::slo_options slo;
  bool token_times = true;
  /// Called before each run with a line saying what runs ("splitwise prompt:token 3:5").
  std::function<void(const std::string&)> progress;
  /// Passed on as run_options::progress, with that line.
  std::function<void(const std::string&, const run_progress&)> run_progress;
  /// Injected into every run (run_options::faults).
  std::vector<fault> faults;
  /// Message trace of every run (run_options::trace_file): this file when
  /// there is one run, else one file per run beside it, named after the
  /// policy and setting (actors::trace_file_for: "run-vllm-chunked.trace").
  std::string trace_file;
};

/// The settings compare() tries for `policy`.
std::vector<policy_choice> settings_of(const config::cluster_config& cluster,
                                       const std::string& policy);

/// Runs every policy (and setting); outcomes in the order of options.policies.
result<std::vector<policy_outcome>> compare(const compare_options& options);

/// True when summary `a` is better than `b` under the rule above.
bool better(const metrics::summary& a, const metrics::summary& b);

}  // namespace accellm::simulator

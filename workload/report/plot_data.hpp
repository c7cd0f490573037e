// From the rows of a run to what a plot draws: thinned role segments, the
// busy-fraction line, the cluster's KV memory over time, policy and role
// colours. Kept apart from the HTML so each step can be tested on numbers.
//
// Thread contract: pure functions; safe from any thread.
#pragma once

#include "workload/report/results.hpp"
#include "workload/report/svg.hpp"

#include <cstddef>
#include <string>
#include <vector>

namespace accellm::report {

/// The colour of a policy: fixed for vllm, splitwise and accellm, so a policy
/// looks the same in every plot and report; others by `index`.
std::string policy_colour(const std::string& policy, std::size_t index);

/// The colour of a role: prefill, decode, mixed (grey for anything else).
std::string role_colour(const std::string& role);

/// Timeline segments of `roles` over [0, end_s]. With at most `columns`
/// rows, one segment per row; with more, the span is cut into `columns`
/// equal columns, each shown in the role that held it longest, and adjacent
/// columns of one role are merged: a run with many switches stays small.
std::vector<segment> role_segments(const std::vector<role_row>& roles, double end_s,
                                   std::size_t columns = 300);

/// The busy fraction at the middle of each window.
std::vector<point> busy_line(const std::vector<busy_row>& busy);

/// The cluster's primary and replica KV blocks over time, in % of all its
/// blocks (sum of the instances' total_blocks): a step after every change,
/// thinned to the largest value per column when there are more than
/// `columns` changes.
struct memory_lines {
  std::vector<point> primary, replica;
};
memory_lines memory_over_time(const run_data& run, std::size_t columns = 300);

}  // namespace accellm::report

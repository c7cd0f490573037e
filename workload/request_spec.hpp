// request_spec and trace: what a workload is made of.
//
// A request_spec is one request as a workload describes it, before any
// instance sees it: when it arrives and how many tokens it reads and writes.
// A trace is the requests of one run in arrival order. Both generate()
// (workload/generator.hpp) and the trace readers (workload/trace_reader.hpp)
// produce traces that keep the invariants below, so consumers need not check
// them again.
//
// Thread contract: value types; no shared state.
#pragma once

#include "common/types.hpp"

#include <chrono>
#include <cstdint>
#include <vector>

namespace accellm::workload {

/// One request of a workload.
struct request_spec {
  request_id id = 0;                    ///< 1-based, in arrival order
  std::chrono::nanoseconds arrival{0};  ///< since the start of the trace (>= 0, non-decreasing)
  std::uint32_t prompt_tokens = 0;      ///< >= 1
  std::uint32_t output_tokens = 0;      ///< >= 1
  friend bool operator==(const request_spec&, const request_spec&) = default;
};

/// The requests of one run, ordered by arrival; ids are 1, 2, 3, ...
using trace = std::vector<request_spec>;

}  // namespace accellm::workload

// tracing::summarize and tracing::follow: the text views of a merged
// timeline behind `accellm trace summary` and `accellm trace follow`
// (docs/tracing.md shows their output).
//
// Plain functions; no shared state. Output goes to the stream given.
#pragma once

#include "common/result.hpp"
#include "common/types.hpp"
#include "tracing/merge.hpp"
#include "tracing/requests.hpp"

#include <cstddef>
#include <cstdint>
#include <map>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

namespace accellm::tracing {

struct message_tally {
  std::uint64_t count = 0;
  std::uint64_t bytes = 0;
  friend bool operator==(const message_tally&, const message_tally&) = default;
};

struct trace_summary {
  std::size_t events = 0;                        ///< all merged events
  std::size_t messages = 0;                      ///< of kind message
  std::size_t spans = 0;                         ///< iteration spans
  std::size_t clock_samples = 0;                 ///< clock samples
  std::uint64_t start_ns = 0, end_ns = 0;        ///< merged::start_ns, end_ns
  std::map<std::string, message_tally> by_type;  ///< "KvLayer" -> count, bytes
  /// (sender node, receiver node) -> count, bytes
  std::map<std::pair<std::string, std::string>, message_tally> by_pair;
  std::size_t requests = 0;            ///< with a non-zero id
  std::size_t done = 0;                ///< with a RequestDone
  std::vector<request_story> slowest;  ///< done ones, end to end, slowest first
  std::uint64_t dropped = 0;           ///< over all logs (log_end)
  std::size_t incomplete_logs = 0;     ///< without log_end
  std::size_t salvaged_logs = 0;       ///< with a torn last frame cut off
};

/// Counts `m`; `slowest` requests at most.
trace_summary summarize(const merged& m, std::size_t slowest);

/// The summary as text: logs and their clock offsets, totals, warnings,
/// messages by type and by node pair, the slowest requests with their path.
void print_summary(const merged& m, const trace_summary& s, std::ostream& out);

enum class with_spans : bool { no, yes };

/// One request's story: a line per event of the request in time order (time
/// since its submission in ms, sender -> receiver, message type, bytes), and
/// with_spans::yes the iterations of the instances that held it while they
/// held it. errc::not_found naming the id when no event carries it.
status follow(const merged& m, request_id id, with_spans spans, std::ostream& out);

}  // namespace accellm::tracing

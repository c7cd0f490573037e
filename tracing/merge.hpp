// tracing::merge: the trace logs of one run (actors/tracer.hpp) on one
// timeline, which `accellm trace` exports, summarises and follows
// (docs/tracing.md).
//
// Clocks. Logs whose clock is "virtual" (simulate) share the simulation's
// clock: offset 0. Logs whose clock is "steady" (daemons) read their host's
// steady clock, so every log of one host (same log_start host name) shares a
// clock. Hosts are put on one timeline through clock_sample events: a
// coordinator records one whenever an IterationReport arrives, with its own
// receive time (time_ns) and the worker's send time (peer_time_ns). For the
// worker's log the offset is
//
//     offset = min over its samples (time_ns - peer_time_ns)
//            = true offset + the smallest one-way delay seen,
//
// so the worker's events land up to that delay late (tens of microseconds on
// a LAN; more on a loaded or distant link). The reference host is the one
// whose logs hold the most samples (the coordinator's); hosts reached only
// through another worker's log chain their offsets. A host with no samples
// about any of its logs keeps offset 0, with a warning. Virtual and steady
// logs are never mixed.
//
// Plain values, no shared state; times come from the logs, never a clock.
#pragma once

#include "actors/tracer.hpp"
#include "common/result.hpp"
#include "messages/structs.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace accellm::tracing {

/// One input log and how its clock was put on the merged timeline.
struct log_clock {
  std::string path;
  std::string node;   ///< log_start's node ("coordinator", "w1", "sim")
  std::string host;   ///< log_start's host name
  std::string clock;  ///< "virtual" or "steady"
  /// Added to the log's times (ns); 0 for the reference host and virtual logs.
  std::int64_t offset_ns = 0;
  /// How the offset was found: "reference", "same host as ...", "min over 12
  /// clock samples in coordinator.trace", "no clock samples: offset 0".
  std::string basis;
  std::size_t samples = 0;    ///< the clock samples the offset rests on
  std::size_t events = 0;     ///< events of this log (log_start and log_end excluded)
  bool complete = false;      ///< ended with log_end
  std::uint64_t dropped = 0;  ///< events the tracer dropped (log_end)
  std::string end_note;       ///< log_end's note
  bool salvaged = false;      ///< a torn last frame was cut off when reading
};

/// One event on the merged timeline.
struct timed_event {
  /// The event as written, except time_ns: the merged time (the log's time
  /// plus its offset); peer_time_ns of clock samples is left as written. A
  /// message without receiver_node (a daemon's worker does not know its
  /// partner's node) gets the node the receiver, or another actor of its
  /// instance (kv:3 -> im:3, worker:3), sends from; else "(unknown)".
  messages::trace_event ev;
  std::size_t log = 0;  ///< index into merged::logs
};

struct merged {
  std::string clock;                ///< "virtual" or "steady"
  std::vector<log_clock> logs;      ///< in the order given
  std::vector<timed_event> events;  ///< by time; ties keep log order, then write order
  /// Things the reader should know (a host without clock samples, ...).
  std::vector<std::string> warnings;
  std::uint64_t start_ns = 0;  ///< the first event's time
  std::uint64_t end_ns = 0;    ///< the last event's time, or end of the last span
};

/// Puts `logs` on one timeline (see above). errc::invalid_argument for no
/// logs or virtual and steady logs mixed; errc::malformed for a log whose
/// clock is neither.
result<merged> merge(std::vector<actors::trace_log> logs);

/// Reads every path with actors::read_trace_log (errors name the file) and
/// merges them. A path that does not exist is errc::not_found.
result<merged> load(const std::vector<std::string>& paths, const actors::trace_read_options& opts);

}  // namespace accellm::tracing

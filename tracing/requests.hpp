// tracing::requests: each request's life read off a merged timeline: when it
// was submitted, placed, produced its first token and ended, and the path it
// took through the instances. Shared by export (async spans), summary
// (slowest requests) and follow.
//
// What the trace shows: a TraceEvent holds a message's type, request id and
// a note with what the envelope does not say (StartDecode: "takeover" or
// "from_replica"; MoveDecode: its reason), not its other fields. So
//   - prefill: an AssignPrefill to im:I (a second one: the request was placed
//     again after its prefill instance was lost);
//   - decode: the first StartDecode to im:I;
//   - move: a MoveDecode from the coordinator to the instance holding the
//     request, completed by the next StartDecode (simulate: the source hands
//     the request back, then the destination is started) or MoveDecode to
//     another instance (daemons: MoveDecode to both ends at one instant);
//   - takeover: a StartDecode noted "takeover", or a move whose reason is
//     takeover; in a log without notes, a StartDecode after the request's
//     decode had started with no move under way;
//   - first token: the first TokenBatch (daemons), else the first
//     StartDecode or MoveDecode (a simulation's clients get no TokenBatch);
//   - submitted: the SubmitRequest, else the request's first event (a client
//     that lets the coordinator name the request sends id 0);
//   - done: the last RequestDone (the one to the client).
//
// Plain values; no shared state.
#pragma once

#include "common/types.hpp"
#include "tracing/merge.hpp"

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace accellm::tracing {

/// One step of a request's path.
struct path_step {
  enum class kind : std::uint8_t { prefill, decode, move, takeover };
  kind what = kind::prefill;
  std::uint64_t time_ns = 0;
  std::string from;  ///< move and takeover: where it was before ("" = unknown)
  std::string to;    ///< the instance manager ("im:3")
  /// The message's note: a move's reason ("balance", "role_switch",
  /// "handoff"), "from_replica" on a decode; "" when the log has none.
  std::string why;
};

/// "prefill", "decode", "move", "takeover".
std::string to_string(path_step::kind k);

struct request_story {
  request_id id = 0;
  std::uint64_t first_ns = 0;                ///< its first event
  std::uint64_t last_ns = 0;                 ///< its last event
  std::optional<std::uint64_t> submitted;    ///< SubmitRequest
  std::optional<std::uint64_t> assigned;     ///< first AssignPrefill
  std::optional<std::uint64_t> first_token;  ///< see the header comment
  std::optional<std::uint64_t> done;         ///< last RequestDone
  std::vector<path_step> path;
  std::vector<std::size_t> events;  ///< indices into merged::events, in time order

  /// Submission (or first event) to RequestDone; nullopt when not done.
  std::optional<std::uint64_t> end_to_end_ns() const;
  /// When it began: submitted, else first_ns.
  std::uint64_t begin_ns() const { return submitted.value_or(first_ns); }
  /// "prefill im:0, decode im:1, move im:1 -> im:0, takeover im:0 -> im:3".
  std::string path_text() const;
};

/// Every request with a non-zero id in `m`, by id.
std::map<request_id, request_story> requests(const merged& m);

/// The instance id of an actor name "im:3", "worker:3" or "kv:3"; nullopt
/// for others ("coordinator", "client").
std::optional<instance_id> instance_of(const std::string& actor);

}  // namespace accellm::tracing

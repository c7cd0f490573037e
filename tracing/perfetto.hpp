// tracing::perfetto_json: a merged timeline as Chrome trace JSON (the
// "traceEvents" array form), which ui.perfetto.dev and chrome://tracing open
// (docs/tracing.md has a picture of what shows where).
//
//   - a process per node ("coordinator", "i3", "client", or a daemon's name),
//     named and sorted (coordinator first, client last);
//   - in it, a thread per instance ("instance 3") holding the instance's
//     iterations as complete events ("X", cat "iteration") named by role,
//     args prefill_tokens, decode_requests, epoch; a role change is an
//     instant ("i", cat "role", "role: decode") on that track plus a counter
//     ("C", "instance 3 role": prefill/decode/mixed, one of them 1);
//   - a thread per actor (im:3, worker:3, kv:3, coordinator, client) holding
//     the messages it sent as instants ("i", cat "message", named by type,
//     args type, to, to_node, bytes, request, epoch, transit_us, note);
//   - KV copies (KvDeltaBatch, KvLayer, KvDelta), moves (every MoveDecode,
//     and the StartDecode that lands a move at its destination) and
//     takeovers (requests.hpp says how they are told) are
//     zero-length complete events instead, one on the sender's track with
//     flow_out and one on the receiver's track at arrival (send time plus the
//     modelled transit, when known) with flow_in, sharing a bind_id: Perfetto
//     and chrome://tracing draw an arrow from sender to receiver;
//   - each request is an async span ("b"/"e", cat "request", id its request
//     id in hex, on the coordinator's process) with nested phases queued
//     (submit to AssignPrefill), prefill (to the first token) and decode (to
//     RequestDone); requests.hpp says how each point is found. A request
//     without RequestDone ends at its last event, args incomplete: true.
//
// Times ("ts", "dur") are microseconds as doubles: the merged time in ns /
// 1000. "otherData" records the clock and each log's offset.
//
// Plain function; no shared state.
#pragma once

#include "tracing/merge.hpp"

#include <nlohmann/json.hpp>

namespace accellm::tracing {

/// The Chrome trace JSON object of `m` (see above).
nlohmann::json perfetto_json(const merged& m);

}  // namespace accellm::tracing

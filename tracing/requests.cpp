#include "tracing/requests.hpp"

#include "messages/msg_type.hpp"

#include <algorithm>
#include <charconv>
#include <string_view>

namespace accellm::tracing {
namespace {

using messages::msg_type;
using messages::trace_kind;

bool is(const messages::trace_event& e, msg_type t) {
  return e.message_type == static_cast<std::uint16_t>(t);
}

/// A request's story while it is being read, with a move asked of an
/// instance (MoveDecode to it) that no StartDecode or MoveDecode to the
/// destination has completed yet.
struct tracker {
  request_story story;
  std::string pending_from;
  std::string pending_why;  ///< that MoveDecode's note (its reason)
};

/// Where the request is: the target of its last step ("" before any).
std::string holder(const request_story& r) {
  return r.path.empty() ? "" : r.path.back().to;
}

bool decoding(const request_story& r) {
  return std::any_of(r.path.begin(), r.path.end(),
                     [](const path_step& s) { return s.what != path_step::kind::prefill; });
}

/// A move step, or a takeover when the MoveDecode's reason says so.
path_step moved(std::uint64_t t, std::string from, std::string to, std::string why) {
  auto kind = why == "takeover" ? path_step::kind::takeover : path_step::kind::move;
  return {kind, t, std::move(from), std::move(to), std::move(why)};
}

void add_start_decode(tracker& t, const messages::trace_event& e) {
  auto& r = t.story;
  if (e.note == "takeover") {  // the tracer's note: StartDecode.takeover
    auto from = t.pending_from.empty() ? holder(r) : t.pending_from;
    r.path.push_back({path_step::kind::takeover, e.time_ns, from, e.receiver, {}});
    t.pending_from.clear();
  } else if (!t.pending_from.empty()) {
    r.path.push_back(moved(e.time_ns, t.pending_from, e.receiver, t.pending_why));
    t.pending_from.clear();
  } else if (decoding(r)) {  // a log without notes: a second start is a takeover
    r.path.push_back({path_step::kind::takeover, e.time_ns, holder(r), e.receiver, {}});
  } else {
    r.path.push_back({path_step::kind::decode, e.time_ns, {}, e.receiver, e.note});
  }
}

/// A simulation sends MoveDecode to the source, which answers, then
/// StartDecode to the destination; daemons send MoveDecode to both ends at
/// one instant. Either way: one move step.
void add_move(tracker& t, const messages::trace_event& e) {
  auto& r = t.story;
  if (e.sender != "coordinator") return;  // the source handing the request back
  if (!r.path.empty() && r.path.back().what != path_step::kind::prefill &&
      r.path.back().time_ns == e.time_ns && r.path.back().from == e.receiver)
    return;  // the source's copy of a move already recorded
  if (!t.pending_from.empty() && t.pending_from != e.receiver) {
    r.path.push_back(moved(e.time_ns, t.pending_from, e.receiver, e.note));
    t.pending_from.clear();
  } else if (e.receiver == holder(r)) {
    t.pending_from = e.receiver;
    t.pending_why = e.note;
  } else {
    r.path.push_back(moved(e.time_ns, holder(r), e.receiver, e.note));
  }
}

void note_event(tracker& t, const messages::trace_event& e, std::size_t index) {
  auto& r = t.story;
  if (r.events.empty()) r.first_ns = e.time_ns;
  r.last_ns = std::max(r.last_ns, e.time_ns);
  r.events.push_back(index);
  if (e.kind != trace_kind::message) return;
  if (is(e, msg_type::submit_request)) {
    if (!r.submitted) r.submitted = e.time_ns;
  } else if (is(e, msg_type::assign_prefill)) {
    if (!r.assigned) r.assigned = e.time_ns;
    r.path.push_back({path_step::kind::prefill, e.time_ns, {}, e.receiver, {}});
  } else if (is(e, msg_type::start_decode)) {
    if (!r.first_token) r.first_token = e.time_ns;
    add_start_decode(t, e);
  } else if (is(e, msg_type::move_decode)) {
    if (!r.first_token) r.first_token = e.time_ns;
    add_move(t, e);
  } else if (is(e, msg_type::request_done)) {
    r.done = std::max(r.done.value_or(0), e.time_ns);
  }
}

}  // namespace

std::string to_string(path_step::kind k) {
  switch (k) {
    case path_step::kind::prefill:
      return "prefill";
    case path_step::kind::decode:
      return "decode";
    case path_step::kind::move:
      return "move";
    case path_step::kind::takeover:
      return "takeover";
  }
  return "unknown";
}

std::optional<std::uint64_t> request_story::end_to_end_ns() const {
  if (!done) return std::nullopt;
  return *done - std::min(*done, begin_ns());
}

std::string request_story::path_text() const {
  std::string out;
  for (const auto& s : path) {
    if (!out.empty()) out += ", ";
    out += to_string(s.what) + " ";
    if (!s.from.empty() && s.from != s.to) out += s.from + " -> ";
    out += s.to;
    if (!s.why.empty()) out += " (" + s.why + ")";
  }
  return out.empty() ? "-" : out;
}

std::map<request_id, request_story> requests(const merged& m) {
  std::map<request_id, tracker> seen;
  for (std::size_t i = 0; i < m.events.size(); ++i) {
    const auto& e = m.events[i].ev;
    if (e.request == 0 || e.kind != trace_kind::message) continue;
    auto& t = seen[e.request];
    t.story.id = e.request;
    note_event(t, e, i);
  }
  std::map<request_id, request_story> out;
  for (auto& [id, t] : seen) out.emplace(id, std::move(t.story));
  // A TokenBatch (daemons) is the real first token, which StartDecode only
  // approximates.
  for (auto& [id, r] : out) {
    for (auto i : r.events) {
      if (is(m.events[i].ev, msg_type::token_batch)) {
        r.first_token = m.events[i].ev.time_ns;
        break;
      }
    }
  }
  return out;
}

std::optional<instance_id> instance_of(const std::string& actor) {
  auto colon = actor.find(':');
  if (colon == std::string::npos) return std::nullopt;
  std::string_view prefix{actor.data(), colon};
  if (prefix != "im" && prefix != "worker" && prefix != "kv") return std::nullopt;
  instance_id id = 0;
  const char* begin = actor.data() + colon + 1;
  const char* end = actor.data() + actor.size();
  auto [ptr, ec] = std::from_chars(begin, end, id);
  if (ec != std::errc{} || ptr != end || begin == end) return std::nullopt;
  return id;
}

}  // namespace accellm::tracing

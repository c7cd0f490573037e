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

/// The decoder of a request before `now`: the last decode/move/takeover target.
std::string current_decoder(const request_story& r) {
  for (auto it = r.path.rbegin(); it != r.path.rend(); ++it) {
    if (it->what != path_step::kind::prefill) return it->to;
  }
  return {};
}

void add_start_decode(request_story& r, const messages::trace_event& e) {
  std::string before = current_decoder(r);
  if (before.empty()) {
    r.path.push_back({path_step::kind::decode, e.time_ns, {}, e.receiver});
  } else {
    r.path.push_back({path_step::kind::takeover, e.time_ns, before, e.receiver});
  }
}

/// MoveDecode goes to both ends of a move at one instant; one step per move.
void add_move(request_story& r, const messages::trace_event& e) {
  if (e.sender != "coordinator") return;  // an instance asking for a move
  std::string from = current_decoder(r);
  if (!r.path.empty() && r.path.back().what == path_step::kind::move &&
      r.path.back().time_ns == e.time_ns) {
    auto& last = r.path.back();
    if (last.to == last.from) last.to = e.receiver;  // the first one was the source
    return;
  }
  r.path.push_back({path_step::kind::move, e.time_ns, from, e.receiver});
}

void note_event(request_story& r, const messages::trace_event& e, std::size_t index) {
  if (r.events.empty()) r.first_ns = e.time_ns;
  r.last_ns = std::max(r.last_ns, e.time_ns);
  r.events.push_back(index);
  if (e.kind != trace_kind::message) return;
  if (is(e, msg_type::submit_request)) {
    if (!r.submitted) r.submitted = e.time_ns;
  } else if (is(e, msg_type::assign_prefill)) {
    if (!r.assigned) r.assigned = e.time_ns;
    r.path.push_back({path_step::kind::prefill, e.time_ns, {}, e.receiver});
  } else if (is(e, msg_type::start_decode)) {
    if (!r.first_token) r.first_token = e.time_ns;
    add_start_decode(r, e);
  } else if (is(e, msg_type::move_decode)) {
    if (!r.first_token) r.first_token = e.time_ns;
    add_move(r, e);
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
  }
  return out.empty() ? "-" : out;
}

std::map<request_id, request_story> requests(const merged& m) {
  std::map<request_id, request_story> out;
  for (std::size_t i = 0; i < m.events.size(); ++i) {
    const auto& e = m.events[i].ev;
    if (e.request == 0 || e.kind != trace_kind::message) continue;
    auto& r = out[e.request];
    r.id = e.request;
    note_event(r, e, i);
  }
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

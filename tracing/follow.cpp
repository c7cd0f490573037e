// tracing::follow (declared in summary.hpp): one request's story.
#include "messages/enums.hpp"
#include "messages/msg_type.hpp"
#include "tracing/summary.hpp"

#include <algorithm>
#include <cstdio>

namespace accellm::tracing {
namespace {

using messages::trace_kind;

struct line {
  std::uint64_t time_ns;
  std::string text;
};

/// "+12.345 ms" (or "-0.002 ms") from `begin`.
std::string since(std::uint64_t t, std::uint64_t begin) {
  char buf[48];
  double d =
      t >= begin ? static_cast<double>(t - begin) / 1e6 : -static_cast<double>(begin - t) / 1e6;
  std::snprintf(buf, sizeof buf, "%+12.3f ms", d);
  return buf;
}

std::string message_line(const messages::trace_event& e) {
  auto t = messages::to_msg_type(e.message_type);
  std::string type =
      t ? std::string{messages::to_string(*t)} : "type " + std::to_string(e.message_type);
  char buf[320];
  auto route = e.sender + " -> " + e.receiver;
  std::snprintf(buf, sizeof buf, "%-28s %-16s %12llu B", route.c_str(), type.c_str(),
                static_cast<unsigned long long>(e.bytes));
  std::string out = buf;
  if (e.sender_node != e.receiver_node)
    out += "  (" + e.sender_node + " -> " + e.receiver_node + ")";
  if (!e.note.empty()) out += "  [" + e.note + "]";
  if (e.duration_ns != 0) {
    std::snprintf(buf, sizeof buf, ", transit %.3f ms", static_cast<double>(e.duration_ns) / 1e6);
    out += buf;
  }
  return out;
}

struct window {
  instance_id instance;
  std::uint64_t from, to;
};

/// When each instance held the request: a path step's target from its time
/// to the next step (the prefill instance until decode starts, a decoder
/// until it moves), the last one until the request's end.
std::vector<window> held(const request_story& r) {
  std::vector<window> out;
  for (std::size_t k = 0; k < r.path.size(); ++k) {
    auto id = instance_of(r.path[k].to);
    if (!id) continue;
    auto to = k + 1 < r.path.size() ? r.path[k + 1].time_ns : r.done.value_or(r.last_ns);
    out.push_back({*id, r.path[k].time_ns, to});
  }
  return out;
}

bool held_during(const std::vector<window>& held, const messages::trace_event& span) {
  for (const auto& w : held) {
    if (w.instance == span.instance && span.time_ns <= w.to &&
        span.time_ns + span.duration_ns >= w.from)
      return true;
  }
  return false;
}

std::vector<line> span_lines(const merged& m, const request_story& r) {
  std::vector<line> out;
  auto windows = held(r);
  for (const auto& t : m.events) {
    const auto& e = t.ev;
    if (e.kind != trace_kind::iteration_span || !held_during(windows, e)) continue;
    char buf[200];
    std::snprintf(buf, sizeof buf,
                  "  [instance %u %s iteration, %.3f ms: %u prefill tokens, %u decode requests]",
                  e.instance, std::string{messages::to_string(e.role)}.c_str(),
                  static_cast<double>(e.duration_ns) / 1e6, e.prefill_tokens, e.decode_requests);
    out.push_back({e.time_ns, buf});
  }
  return out;
}

}  // namespace

status follow(const merged& m, request_id id, with_spans spans, std::ostream& out) {
  auto all = requests(m);
  auto it = all.find(id);
  if (it == all.end()) {
    std::string known = all.empty() ? "no request ids at all"
                                    : std::to_string(all.size()) + " requests, ids " +
                                          std::to_string(all.begin()->first) + " to " +
                                          std::to_string(all.rbegin()->first);
    return fail(errc::not_found,
                "request " + std::to_string(id) + " is not in the trace (" + known + ")");
  }
  const auto& r = it->second;
  std::vector<line> lines;
  for (auto i : r.events) lines.push_back({m.events[i].ev.time_ns, message_line(m.events[i].ev)});
  if (spans == with_spans::yes) {
    auto s = span_lines(m, r);
    lines.insert(lines.end(), s.begin(), s.end());
  }
  std::stable_sort(lines.begin(), lines.end(),
                   [](const line& a, const line& b) { return a.time_ns < b.time_ns; });
  char head[160];
  std::snprintf(head, sizeof head, "request %llu: %s at %.6f s, %zu messages",
                static_cast<unsigned long long>(id), r.submitted ? "submitted" : "first seen",
                static_cast<double>(r.begin_ns()) / 1e9, r.events.size());
  out << head;
  if (auto e2e = r.end_to_end_ns()) {
    std::snprintf(head, sizeof head, ", end to end %.3f ms", static_cast<double>(*e2e) / 1e6);
    out << head;
  } else {
    out << ", no RequestDone in the trace";
  }
  out << "\npath: " << r.path_text() << "\n";
  for (const auto& l : lines) out << since(l.time_ns, r.begin_ns()) << "  " << l.text << "\n";
  return {};
}

}  // namespace accellm::tracing

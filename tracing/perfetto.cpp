#include "tracing/perfetto.hpp"

#include "messages/enums.hpp"
#include "messages/msg_type.hpp"
#include "tracing/requests.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <utility>

namespace accellm::tracing {
namespace {

using json = nlohmann::json;
using messages::msg_type;
using messages::trace_kind;

double us(std::uint64_t ns) {
  return static_cast<double>(ns) / 1000.0;
}

/// A slice's length in us such that a viewer's ts + dur (in doubles) does not
/// pass the slice's end: back-to-back iterations must not overlap by a
/// rounding error, or viewers take them for badly nested slices.
double length_us(std::uint64_t start_ns, std::uint64_t length_ns) {
  const double start = us(start_ns), end = us(start_ns + length_ns);
  double length = end - start;
  while (length > 0 && start + length > end) length = std::nextafter(length, 0.0);
  return length;
}

/// Names with their numbers in numeric order: i2 before i10, im:2 before im:10.
bool natural_less(const std::string& a, const std::string& b) {
  std::size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    if (std::isdigit(static_cast<unsigned char>(a[i])) &&
        std::isdigit(static_cast<unsigned char>(b[j]))) {
      std::size_t i2 = i, j2 = j;
      while (i2 < a.size() && std::isdigit(static_cast<unsigned char>(a[i2]))) ++i2;
      while (j2 < b.size() && std::isdigit(static_cast<unsigned char>(b[j2]))) ++j2;
      auto x = a.substr(i, i2 - i), y = b.substr(j, j2 - j);
      if (x.size() != y.size()) return x.size() < y.size();
      if (x != y) return x < y;
      i = i2, j = j2;
    } else {
      if (a[i] != b[j]) return a[i] < b[j];
      ++i, ++j;
    }
  }
  return a.size() - i < b.size() - j;
}

int node_rank(const std::string& node) {
  if (node == "coordinator") return 0;
  if (node == "client" || node == "http") return 2;
  return 1;
}

int track_rank(const std::string& track) {
  if (track.rfind("instance ", 0) == 0) return 0;
  if (track.rfind("im:", 0) == 0) return 1;
  if (track.rfind("worker:", 0) == 0) return 2;
  if (track.rfind("kv:", 0) == 0) return 3;
  return 4;
}

/// pids per node and tids per (node, track), numbered in display order;
/// tids are unique over the whole trace.
class layout {
 public:
  void add(const std::string& node, const std::string& track) { tracks_[node].insert(track); }

  void number() {
    std::vector<std::string> nodes;
    for (const auto& [n, t] : tracks_) nodes.push_back(n);
    std::sort(nodes.begin(), nodes.end(), [](const std::string& a, const std::string& b) {
      return node_rank(a) != node_rank(b) ? node_rank(a) < node_rank(b) : natural_less(a, b);
    });
    int tid = 1;
    for (std::size_t p = 0; p < nodes.size(); ++p) {
      pid_[nodes[p]] = static_cast<int>(p) + 1;
      std::vector<std::string> ts(tracks_[nodes[p]].begin(), tracks_[nodes[p]].end());
      std::sort(ts.begin(), ts.end(), [](const std::string& a, const std::string& b) {
        return track_rank(a) != track_rank(b) ? track_rank(a) < track_rank(b) : natural_less(a, b);
      });
      for (const auto& t : ts) tid_[{nodes[p], t}] = tid++;
      order_.emplace_back(nodes[p], std::move(ts));
    }
  }

  int pid(const std::string& node) const { return pid_.at(node); }
  int tid(const std::string& node, const std::string& track) const {
    return tid_.at({node, track});
  }

  /// process_name, process_sort_index, thread_name, thread_sort_index.
  void metadata(json& out) const {
    for (std::size_t p = 0; p < order_.size(); ++p) {
      const auto& [node, tracks] = order_[p];
      int p_id = pid_.at(node);
      out.push_back({{"ph", "M"},
                     {"name", "process_name"},
                     {"pid", p_id},
                     {"tid", 0},
                     {"args", {{"name", node}}}});
      out.push_back({{"ph", "M"},
                     {"name", "process_sort_index"},
                     {"pid", p_id},
                     {"tid", 0},
                     {"args", {{"sort_index", p}}}});
      for (std::size_t t = 0; t < tracks.size(); ++t) {
        int t_id = tid_.at({node, tracks[t]});
        out.push_back({{"ph", "M"},
                       {"name", "thread_name"},
                       {"pid", p_id},
                       {"tid", t_id},
                       {"args", {{"name", tracks[t]}}}});
        out.push_back({{"ph", "M"},
                       {"name", "thread_sort_index"},
                       {"pid", p_id},
                       {"tid", t_id},
                       {"args", {{"sort_index", t}}}});
      }
    }
  }

 private:
  std::map<std::string, std::set<std::string>> tracks_;
  std::map<std::string, int> pid_;
  std::map<std::pair<std::string, std::string>, int> tid_;
  std::vector<std::pair<std::string, std::vector<std::string>>> order_;
};

std::string type_name(std::uint16_t raw) {
  if (raw == 0) return "message";
  auto t = messages::to_msg_type(raw);
  return t ? std::string{messages::to_string(*t)} : "type " + std::to_string(raw);
}

std::string span_track(const messages::trace_event& e) {
  return "instance " + std::to_string(e.instance);
}

/// StartDecodes that move a request or take it over: (request, time, receiver).
using takeover_set = std::set<std::tuple<request_id, std::uint64_t, std::string>>;

bool flowed(const messages::trace_event& e, const takeover_set& takeovers) {
  switch (static_cast<msg_type>(e.message_type)) {
    case msg_type::kv_delta_batch:
    case msg_type::kv_layer:
    case msg_type::kv_delta:
    case msg_type::move_decode:
      return true;
    case msg_type::start_decode:
      return takeovers.count({e.request, e.time_ns, e.receiver}) > 0;
    default:
      return false;
  }
}

json message_args(const messages::trace_event& e) {
  json args = {{"type", type_name(e.message_type)},
               {"from", e.sender},
               {"to", e.receiver},
               {"to_node", e.receiver_node},
               {"bytes", e.bytes},
               {"request", e.request},
               {"epoch", e.epoch}};
  if (e.duration_ns != 0) args["transit_us"] = us(e.duration_ns);
  if (!e.note.empty()) args["note"] = e.note;
  return args;
}

class builder {
 public:
  builder(const merged& m, const std::map<request_id, request_story>& stories)
      : m_(m), stories_(stories) {
    for (const auto& [id, r] : stories) {
      for (const auto& s : r.path) {
        if (s.what == path_step::kind::takeover || s.what == path_step::kind::move)
          takeovers_.insert({id, s.time_ns, s.to});
      }
    }
    lay_out();
  }

  json build() {
    json out = json::array();
    layout_.metadata(out);
    for (const auto& t : m_.events) {
      if (t.ev.kind == trace_kind::iteration_span) span(t.ev, out);
      if (t.ev.kind == trace_kind::message) message(t.ev, out);
    }
    for (const auto& [id, r] : stories_) request(r, out);
    return out;
  }

 private:
  void lay_out() {
    for (const auto& t : m_.events) {
      const auto& e = t.ev;
      if (e.kind == trace_kind::iteration_span) layout_.add(e.sender_node, span_track(e));
      if (e.kind != trace_kind::message) continue;
      layout_.add(e.sender_node, e.sender);
      if (flowed(e, takeovers_)) layout_.add(e.receiver_node, e.receiver);
      if (e.message_type == static_cast<std::uint16_t>(msg_type::submit_request))
        request_node_ = e.receiver_node;
    }
    if (request_node_.empty()) request_node_ = "coordinator";
    layout_.add(request_node_, "coordinator");
    layout_.number();
  }

  void span(const messages::trace_event& e, json& out) {
    int pid = layout_.pid(e.sender_node), tid = layout_.tid(e.sender_node, span_track(e));
    auto role = std::string{messages::to_string(e.role)};
    out.push_back({{"ph", "X"},
                   {"cat", "iteration"},
                   {"name", role},
                   {"pid", pid},
                   {"tid", tid},
                   {"ts", us(e.time_ns)},
                   {"dur", length_us(e.time_ns, e.duration_ns)},
                   {"args",
                    {{"prefill_tokens", e.prefill_tokens},
                     {"decode_requests", e.decode_requests},
                     {"epoch", e.epoch},
                     {"instance", e.instance},
                     {"role", role}}}});
    auto [it, first] = roles_.try_emplace(e.instance, e.role);
    if (!first && it->second == e.role) return;
    it->second = e.role;
    out.push_back({{"ph", "i"},
                   {"s", "t"},
                   {"cat", "role"},
                   {"name", "role: " + role},
                   {"pid", pid},
                   {"tid", tid},
                   {"ts", us(e.time_ns)},
                   {"args", {{"instance", e.instance}, {"role", role}}}});
    json counter = json::object();
    for (auto r : {messages::role::prefill, messages::role::decode, messages::role::mixed})
      counter[std::string{messages::to_string(r)}] = r == e.role ? 1 : 0;
    out.push_back({{"ph", "C"},
                   {"name", "instance " + std::to_string(e.instance) + " role"},
                   {"pid", pid},
                   {"tid", tid},
                   {"ts", us(e.time_ns)},
                   {"args", counter}});
  }

  void message(const messages::trace_event& e, json& out) {
    int pid = layout_.pid(e.sender_node), tid = layout_.tid(e.sender_node, e.sender);
    auto name = type_name(e.message_type);
    if (!flowed(e, takeovers_)) {
      out.push_back({{"ph", "i"},
                     {"s", "t"},
                     {"cat", "message"},
                     {"name", name},
                     {"pid", pid},
                     {"tid", tid},
                     {"ts", us(e.time_ns)},
                     {"args", message_args(e)}});
      return;
    }
    auto bind = ++flows_;
    out.push_back({{"ph", "X"},
                   {"cat", "message"},
                   {"name", name},
                   {"pid", pid},
                   {"tid", tid},
                   {"ts", us(e.time_ns)},
                   {"dur", 0},
                   {"bind_id", bind},
                   {"flow_out", true},
                   {"args", message_args(e)}});
    out.push_back({{"ph", "X"},
                   {"cat", "message"},
                   {"name", name + " (received)"},
                   {"pid", layout_.pid(e.receiver_node)},
                   {"tid", layout_.tid(e.receiver_node, e.receiver)},
                   {"ts", us(e.time_ns + e.duration_ns)},
                   {"dur", 0},
                   {"bind_id", bind},
                   {"flow_in", true},
                   {"args", message_args(e)}});
  }

  void async(json& out, const char* ph, const std::string& name, std::uint64_t ns,
             const request_story& r, json args = json::object()) {
    char id[32];
    std::snprintf(id, sizeof id, "0x%llx", static_cast<unsigned long long>(r.id));
    args["request"] = r.id;
    out.push_back({{"ph", ph},
                   {"cat", "request"},
                   {"name", name},
                   {"id", id},
                   {"pid", layout_.pid(request_node_)},
                   {"tid", layout_.tid(request_node_, "coordinator")},
                   {"ts", us(ns)},
                   {"args", std::move(args)}});
  }

  void phase(json& out, const std::string& name, std::uint64_t from, std::uint64_t to,
             const request_story& r) {
    if (to < from) return;
    async(out, "b", name, from, r);
    async(out, "e", name, to, r);
  }

  void request(const request_story& r, json& out) {
    auto begin = r.begin_ns();
    auto end = r.done.value_or(r.last_ns);
    json args = {{"path", r.path_text()}};
    if (!r.done) args["incomplete"] = true;
    async(out, "b", "request " + std::to_string(r.id), begin, r, args);
    auto prefill_from = r.assigned.value_or(begin);
    if (r.assigned) phase(out, "queued", begin, *r.assigned, r);
    if (r.first_token && *r.first_token >= prefill_from) {
      phase(out, "prefill", prefill_from, *r.first_token, r);
      phase(out, "decode", *r.first_token, end, r);
    } else if (r.assigned) {
      phase(out, "prefill+decode", prefill_from, end, r);
    }
    async(out, "e", "request " + std::to_string(r.id), end, r);
  }

  const merged& m_;
  const std::map<request_id, request_story>& stories_;
  takeover_set takeovers_;
  layout layout_;
  std::string request_node_;
  std::map<instance_id, messages::role> roles_;
  std::uint64_t flows_ = 0;
};

json other_data(const merged& m) {
  json logs = json::array();
  for (const auto& l : m.logs) {
    logs.push_back({{"path", l.path},
                    {"node", l.node},
                    {"host", l.host},
                    {"offset_ns", l.offset_ns},
                    {"basis", l.basis},
                    {"events", l.events},
                    {"complete", l.complete},
                    {"dropped", l.dropped},
                    {"salvaged", l.salvaged}});
  }
  return {{"producer", "accellm trace export"},
          {"clock", m.clock},
          {"logs", logs},
          {"warnings", m.warnings}};
}

}  // namespace

nlohmann::json perfetto_json(const merged& m) {
  auto stories = requests(m);
  builder b{m, stories};
  // No displayTimeUnit: Perfetto reads "ns" there as the unit of ts itself.
  return {{"traceEvents", b.build()}, {"otherData", other_data(m)}};
}

}  // namespace accellm::tracing

#include "tracing/merge.hpp"

#include "tracing/requests.hpp"

#include <algorithm>
#include <limits>
#include <map>
#include <optional>
#include <utility>

namespace accellm::tracing {
namespace {

using messages::trace_kind;

/// The smallest (receive - send) of the samples a log holds, per sender node.
struct sample_min {
  std::int64_t delta = std::numeric_limits<std::int64_t>::max();
  std::size_t count = 0;
};
using samples_by_node = std::map<std::string, sample_min>;

samples_by_node samples_of(const actors::trace_log& log) {
  samples_by_node out;
  for (const auto& e : log.events) {
    if (e.kind != trace_kind::clock_sample) continue;
    auto& s = out[e.sender_node];
    s.delta = std::min(
        s.delta, static_cast<std::int64_t>(e.time_ns) - static_cast<std::int64_t>(e.peer_time_ns));
    ++s.count;
  }
  return out;
}

std::size_t sample_count(const samples_by_node& s) {
  std::size_t n = 0;
  for (const auto& [node, m] : s) n += m.count;
  return n;
}

/// Offsets per host for steady logs: the reference host (most samples) is 0,
/// then hosts are reached through samples held by a log of a reached host.
void steady_offsets(const std::vector<actors::trace_log>& logs, std::vector<log_clock>& out,
                    std::vector<std::string>& warnings) {
  std::vector<samples_by_node> samples;
  std::size_t ref = 0;
  for (std::size_t i = 0; i < logs.size(); ++i) {
    samples.push_back(samples_of(logs[i]));
    if (sample_count(samples[i]) > sample_count(samples[ref])) ref = i;
  }
  std::map<std::string, std::size_t> reached;  // host -> the log that set its offset
  reached[logs[ref].host] = ref;
  out[ref].basis = "reference";
  for (bool progress = true; progress;) {
    progress = false;
    for (std::size_t i = 0; i < logs.size(); ++i) {
      if (reached.count(logs[i].host)) continue;
      std::optional<std::size_t> holder;
      for (std::size_t j = 0; j < logs.size(); ++j) {
        if (!reached.count(logs[j].host) || !samples[j].count(logs[i].node)) continue;
        if (!holder || samples[j].at(logs[i].node).delta < samples[*holder].at(logs[i].node).delta)
          holder = j;
      }
      if (!holder) continue;
      const auto& m = samples[*holder].at(logs[i].node);
      out[i].offset_ns = out[reached[logs[*holder].host]].offset_ns + m.delta;
      out[i].samples = m.count;
      out[i].basis = "min over " + std::to_string(m.count) + " clock samples in " +
                     logs[*holder].path + " (includes the smallest one-way delay)";
      reached[logs[i].host] = i;
      progress = true;
    }
  }
  for (std::size_t i = 0; i < logs.size(); ++i) {
    auto it = reached.find(logs[i].host);
    if (it == reached.end()) {
      out[i].basis = "no clock samples: offset 0";
      warnings.push_back(logs[i].path + " (node " + logs[i].node + ", host " + logs[i].host +
                         "): no clock samples about it in another host's log, so its clock is "
                         "taken as the reference's (offset 0); its times may be off");
    } else if (it->second != i) {
      out[i].offset_ns = out[it->second].offset_ns;
      out[i].samples = out[it->second].samples;
      out[i].basis = "same host as " + logs[it->second].path;
    }
  }
}

log_clock describe(const actors::trace_log& log) {
  return log_clock{.path = log.path,
                   .node = log.node,
                   .host = log.host,
                   .clock = log.clock,
                   .offset_ns = 0,
                   .basis = {},
                   .samples = 0,
                   .events = log.events.size(),
                   .complete = log.complete,
                   .dropped = log.dropped,
                   .end_note = log.end_note,
                   .salvaged = log.salvaged};
}

status check_clocks(const std::vector<actors::trace_log>& logs) {
  if (logs.empty()) return fail(errc::invalid_argument, "no trace logs to merge");
  for (const auto& log : logs) {
    if (log.clock != "virtual" && log.clock != "steady")
      return fail(errc::malformed,
                  log.path + ": unknown clock '" + log.clock + "' (virtual or steady)");
  }
  for (const auto& log : logs) {
    if (log.clock != logs.front().clock)
      return fail(errc::invalid_argument,
                  "cannot merge " + logs.front().path + " (" + logs.front().clock +
                      " clock) with " + log.path + " (" + log.clock +
                      " clock): a simulation's virtual time and daemons' steady clocks do not "
                      "share a timeline");
  }
  return {};
}

/// Lifts every offset so that no event lands before 0 (times are unsigned).
void lift_offsets(const std::vector<actors::trace_log>& logs, std::vector<log_clock>& clocks,
                  std::vector<std::string>& warnings) {
  std::int64_t lowest = 0;
  for (std::size_t i = 0; i < logs.size(); ++i) {
    for (const auto& e : logs[i].events)
      lowest = std::min(lowest, static_cast<std::int64_t>(e.time_ns) + clocks[i].offset_ns);
  }
  if (lowest >= 0) return;
  for (auto& c : clocks) c.offset_ns -= lowest;
  warnings.push_back("offsets raised by " + std::to_string(-lowest) +
                     " ns so that no event lands before time 0");
}

/// A daemon's worker does not know its partner's node: a message to kv:3
/// with no receiver node gets the node kv:3 (or im:3, worker:3) sends from.
void fill_receiver_nodes(std::vector<timed_event>& events) {
  std::map<std::string, std::string> actor_node;
  std::map<instance_id, std::string> instance_node;
  for (const auto& t : events) {
    if (t.ev.kind != trace_kind::message || t.ev.sender_node.empty()) continue;
    actor_node.emplace(t.ev.sender, t.ev.sender_node);
    if (auto id = instance_of(t.ev.sender)) instance_node.emplace(*id, t.ev.sender_node);
  }
  for (auto& t : events) {
    if (t.ev.kind != trace_kind::message || !t.ev.receiver_node.empty()) continue;
    if (auto a = actor_node.find(t.ev.receiver); a != actor_node.end()) {
      t.ev.receiver_node = a->second;
    } else if (auto id = instance_of(t.ev.receiver); id && instance_node.count(*id)) {
      t.ev.receiver_node = instance_node[*id];
    } else {
      t.ev.receiver_node = "(unknown)";
    }
  }
}

}  // namespace

result<merged> merge(std::vector<actors::trace_log> logs) {
  ACCELLM_TRY(check_clocks(logs));
  merged out;
  out.clock = logs.front().clock;
  for (const auto& log : logs) out.logs.push_back(describe(log));
  if (out.clock == "steady") {
    steady_offsets(logs, out.logs, out.warnings);
    lift_offsets(logs, out.logs, out.warnings);
  } else {
    for (auto& c : out.logs) c.basis = "virtual clock (shared)";
  }
  std::size_t total = 0;
  for (const auto& log : logs) total += log.events.size();
  out.events.reserve(total);
  for (std::size_t i = 0; i < logs.size(); ++i) {
    for (auto& e : logs[i].events) {
      e.time_ns =
          static_cast<std::uint64_t>(static_cast<std::int64_t>(e.time_ns) + out.logs[i].offset_ns);
      out.events.push_back(timed_event{.ev = std::move(e), .log = i});
    }
  }
  std::stable_sort(
      out.events.begin(), out.events.end(),
      [](const timed_event& a, const timed_event& b) { return a.ev.time_ns < b.ev.time_ns; });
  fill_receiver_nodes(out.events);
  if (!out.events.empty()) out.start_ns = out.events.front().ev.time_ns;
  for (const auto& t : out.events) {
    std::uint64_t end = t.ev.time_ns;
    if (t.ev.kind == trace_kind::iteration_span) end += t.ev.duration_ns;
    out.end_ns = std::max(out.end_ns, end);
  }
  return out;
}

}  // namespace accellm::tracing

#include "tracing/summary.hpp"

#include "messages/msg_type.hpp"

#include <algorithm>
#include <cstdarg>
#include <cstdio>

namespace accellm::tracing {
namespace {

using messages::trace_kind;

std::string format(const char* f, ...) __attribute__((format(printf, 1, 2)));
std::string format(const char* f, ...) {
  char buf[512];
  va_list args;
  va_start(args, f);
  std::vsnprintf(buf, sizeof buf, f, args);
  va_end(args);
  return buf;
}

double ms(std::uint64_t ns) {
  return static_cast<double>(ns) / 1e6;
}

std::string type_name(std::uint16_t raw) {
  if (raw == 0) return "(none)";
  auto t = messages::to_msg_type(raw);
  return t ? std::string{messages::to_string(*t)} : "type " + std::to_string(raw);
}

void print_logs(const merged& m, std::ostream& out) {
  out << "logs (" << m.clock << " clock):\n";
  for (const auto& l : m.logs) {
    out << "  " << l.path << ": node " << l.node << ", host " << l.host << ", " << l.events
        << " events, offset " << (l.offset_ns >= 0 ? "+" : "") << l.offset_ns << " ns (" << l.basis
        << ")";
    if (!l.complete) out << ", no log_end (the process did not close it)";
    if (l.dropped) out << ", " << l.dropped << " dropped";
    if (l.salvaged) out << ", salvaged (torn last frame cut off)";
    out << "\n";
  }
  for (const auto& w : m.warnings) out << "warning: " << w << "\n";
}

void print_tallies(const trace_summary& s, std::ostream& out) {
  out << "\nmessages by type:\n" << format("  %-18s %10s %16s\n", "type", "count", "bytes");
  for (const auto& [type, t] : s.by_type) {
    out << format("  %-18s %10llu %16llu\n", type.c_str(), static_cast<unsigned long long>(t.count),
                  static_cast<unsigned long long>(t.bytes));
  }
  out << "\nmessages by node pair:\n"
      << format("  %-32s %10s %16s\n", "from -> to", "count", "bytes");
  for (const auto& [pair, t] : s.by_pair) {
    auto name = pair.first + " -> " + pair.second;
    out << format("  %-32s %10llu %16llu\n", name.c_str(), static_cast<unsigned long long>(t.count),
                  static_cast<unsigned long long>(t.bytes));
  }
}

void print_slowest(const trace_summary& s, std::ostream& out) {
  out << "\nslowest requests (" << s.slowest.size() << " of " << s.done << " done, " << s.requests
      << " seen):\n";
  if (s.slowest.empty()) return;
  out << format("  %-18s %12s %10s %10s %10s  %s\n", "request", "end-to-end", "queued", "prefill",
                "decode", "path");
  for (const auto& r : s.slowest) {
    auto begin = r.begin_ns(), end = *r.done;
    auto assigned = r.assigned.value_or(begin);
    auto first = r.first_token.value_or(end);
    auto phase = [](std::uint64_t a, std::uint64_t b) {
      return b >= a ? format("%.3f", ms(b - a)) : std::string{"-"};
    };
    out << format("  %-18llu %9.3f ms %10s %10s %10s  %s\n", static_cast<unsigned long long>(r.id),
                  ms(*r.end_to_end_ns()), phase(begin, assigned).c_str(),
                  phase(assigned, first).c_str(), r.first_token ? phase(first, end).c_str() : "-",
                  r.path_text().c_str());
  }
}

}  // namespace

trace_summary summarize(const merged& m, std::size_t slowest) {
  trace_summary s;
  s.events = m.events.size();
  s.start_ns = m.start_ns;
  s.end_ns = m.end_ns;
  for (const auto& t : m.events) {
    const auto& e = t.ev;
    if (e.kind == trace_kind::iteration_span) ++s.spans;
    if (e.kind == trace_kind::clock_sample) ++s.clock_samples;
    if (e.kind != trace_kind::message) continue;
    ++s.messages;
    auto& by_type = s.by_type[type_name(e.message_type)];
    ++by_type.count;
    by_type.bytes += e.bytes;
    auto& by_pair = s.by_pair[{e.sender_node, e.receiver_node}];
    ++by_pair.count;
    by_pair.bytes += e.bytes;
  }
  for (auto& [id, r] : requests(m)) {
    ++s.requests;
    if (!r.done) continue;
    ++s.done;
    s.slowest.push_back(std::move(r));
  }
  std::stable_sort(s.slowest.begin(), s.slowest.end(),
                   [](const request_story& a, const request_story& b) {
                     return *a.end_to_end_ns() > *b.end_to_end_ns();
                   });
  if (s.slowest.size() > slowest) s.slowest.resize(slowest);
  for (const auto& l : m.logs) {
    s.dropped += l.dropped;
    if (!l.complete) ++s.incomplete_logs;
    if (l.salvaged) ++s.salvaged_logs;
  }
  return s;
}

void print_summary(const merged& m, const trace_summary& s, std::ostream& out) {
  print_logs(m, out);
  out << format("\n%zu events: %zu messages, %zu iteration spans, %zu clock samples; ", s.events,
                s.messages, s.spans, s.clock_samples)
      << format("%.3f s (%.6f s to %.6f s)\n", static_cast<double>(s.end_ns - s.start_ns) / 1e9,
                static_cast<double>(s.start_ns) / 1e9, static_cast<double>(s.end_ns) / 1e9)
      << "dropped events: " << s.dropped << "; logs without log_end: " << s.incomplete_logs
      << "; salvaged logs: " << s.salvaged_logs << "\n";
  print_tallies(s, out);
  print_slowest(s, out);
}

}  // namespace accellm::tracing

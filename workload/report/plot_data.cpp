#include "workload/report/plot_data.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <map>

namespace accellm::report {
namespace {

// Keeps, per column of width (end / columns), the largest value: peaks
// survive thinning, which matters for memory pressure.
std::vector<point> column_max(const std::vector<point>& in, double end, std::size_t columns) {
  if (in.size() <= columns || end <= 0) return in;
  std::vector<point> out;
  const double w = end / static_cast<double>(columns);
  for (const point& p : in) {
    const double col = std::min(std::floor(p.x / w), static_cast<double>(columns - 1));
    const double x = (col + 0.5) * w;
    if (!out.empty() && out.back().x == x) {
      out.back().y = std::max(out.back().y, p.y);
    } else {
      out.push_back({x, p.y});
    }
  }
  return out;
}

}  // namespace

std::string policy_colour(const std::string& policy, std::size_t index) {
  if (policy == "vllm") return "#1f77b4";
  if (policy == "splitwise") return "#ff7f0e";
  if (policy == "accellm") return "#2ca02c";
  static constexpr std::array<const char*, 4> others{"#d62728", "#9467bd", "#8c564b", "#e377c2"};
  return others[index % others.size()];
}

std::string role_colour(const std::string& role) {
  if (role == "prefill") return "#f4a261";
  if (role == "decode") return "#8ecae6";
  if (role == "mixed") return "#b5a8d5";
  return "#cccccc";
}

std::vector<segment> role_segments(const std::vector<role_row>& roles, double end_s,
                                   std::size_t columns) {
  std::vector<segment> out;
  const auto title = [](const std::string& role, const std::string& pool) {
    return pool.empty() ? role : role + " (" + pool + ")";
  };
  if (roles.size() <= columns || end_s <= 0 || columns == 0) {
    for (const role_row& r : roles) {
      out.push_back({.start = r.start_s,
                     .end = r.end_s,
                     .colour = role_colour(r.role),
                     .title = title(r.role, r.pool)});
    }
    return out;
  }
  const double w = end_s / static_cast<double>(columns);
  std::size_t next = 0;  // first row that may overlap the column
  for (std::size_t c = 0; c < columns; ++c) {
    const double a = w * static_cast<double>(c), b = a + w;
    std::map<std::string, double> held;
    while (next < roles.size() && roles[next].end_s <= a) ++next;
    for (std::size_t i = next; i < roles.size() && roles[i].start_s < b; ++i) {
      held[roles[i].role] += std::min(b, roles[i].end_s) - std::max(a, roles[i].start_s);
    }
    if (held.empty()) continue;
    const auto most = std::max_element(
        held.begin(), held.end(), [](const auto& x, const auto& y) { return x.second < y.second; });
    if (!out.empty() && out.back().end == a && out.back().title == most->first) {
      out.back().end = b;
    } else {
      out.push_back(
          {.start = a, .end = b, .colour = role_colour(most->first), .title = most->first});
    }
  }
  return out;
}

std::vector<point> busy_line(const std::vector<busy_row>& busy) {
  std::vector<point> out;
  out.reserve(busy.size());
  for (const busy_row& b : busy) out.push_back({(b.start_s + b.end_s) / 2, b.fraction});
  return out;
}

memory_lines memory_over_time(const run_data& run, std::size_t columns) {
  double capacity = 0;
  for (const instance_data& i : run.instances) capacity += i.total_blocks;
  std::vector<memory_row> rows = run.memory;
  std::stable_sort(rows.begin(), rows.end(),
                   [](const memory_row& a, const memory_row& b) { return a.time_s < b.time_s; });
  std::vector<double> primary(run.instances.size(), 0), replica(run.instances.size(), 0);
  double sum_p = 0, sum_r = 0;
  memory_lines out;
  for (std::size_t k = 0; k < rows.size(); ++k) {
    const memory_row& m = rows[k];
    sum_p += m.primary - primary[m.instance];
    sum_r += m.replica - replica[m.instance];
    primary[m.instance] = m.primary;
    replica[m.instance] = m.replica;
    if (k + 1 < rows.size() && rows[k + 1].time_s == m.time_s) continue;  // one point per instant
    const double scale = capacity > 0 ? 100.0 / capacity : 0.0;
    out.primary.push_back({m.time_s, sum_p * scale});
    out.replica.push_back({m.time_s, sum_r * scale});
  }
  const double end = std::max(run.makespan_s, rows.empty() ? 0.0 : rows.back().time_s);
  out.primary = column_max(out.primary, end, columns);
  out.replica = column_max(out.replica, end, columns);
  return out;
}

}  // namespace accellm::report

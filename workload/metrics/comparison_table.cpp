// format_comparison() from writers.hpp: the side-by-side table a run of the
// cli prints at the end.
#include "workload/metrics/detail/number_format.hpp"
#include "workload/metrics/writers.hpp"

#include <algorithm>
#include <array>
#include <limits>
#include <optional>

namespace accellm::metrics {
namespace {

using detail::fixed;

constexpr const char* accellm_policy = "accellm";

// One row of the table: how to read its value and how to show it.
struct row_def {
  const char* label;
  bool higher_better;
  double (*value)(const summary&);
  std::string (*text)(const labelled_run&);
};

std::string ms2(const stats& s, double stats::*field) {
  return fixed(s.*field, 2);
}

std::string count_of(std::uint64_t n) {
  return std::to_string(n);
}

std::string out_of(std::uint64_t n, std::uint64_t total) {
  return count_of(n) + "/" + count_of(total);
}

std::size_t slos_met(const summary& s) {
  return static_cast<std::size_t>(std::count_if(s.slowdown.begin(), s.slowdown.end(),
                                                [](const slowdown_slo& c) { return c.met; }));
}

// clang-format off
const std::array<row_def, 19> rows{{
  {"completed", true, [](const summary& s) { return double(s.completed); },
   [](const labelled_run& r) { return out_of(r.sum.completed, r.sum.requests); }},
  {"throughput (req/s)", true, [](const summary& s) { return s.throughput_rps; },
   [](const labelled_run& r) { return fixed(r.sum.throughput_rps, 3); }},
  {"TTFT mean (ms)", false, [](const summary& s) { return s.ttft.mean; },
   [](const labelled_run& r) { return ms2(r.sum.ttft, &stats::mean); }},
  {"TTFT p50 (ms)", false, [](const summary& s) { return s.ttft.p50; },
   [](const labelled_run& r) { return ms2(r.sum.ttft, &stats::p50); }},
  {"TTFT p99 (ms)", false, [](const summary& s) { return s.ttft.p99; },
   [](const labelled_run& r) { return ms2(r.sum.ttft, &stats::p99); }},
  {"TBT mean (ms)", false, [](const summary& s) { return s.tbt.mean; },
   [](const labelled_run& r) { return ms2(r.sum.tbt, &stats::mean); }},
  {"TBT p50 (ms)", false, [](const summary& s) { return s.tbt.p50; },
   [](const labelled_run& r) { return ms2(r.sum.tbt, &stats::p50); }},
  {"TBT p99 (ms)", false, [](const summary& s) { return s.tbt.p99; },
   [](const labelled_run& r) { return ms2(r.sum.tbt, &stats::p99); }},
  {"TBT max (ms)", false, [](const summary& s) { return s.tbt.max; },
   [](const labelled_run& r) { return ms2(r.sum.tbt, &stats::max); }},
  {"TPOT mean (ms)", false, [](const summary& s) { return s.tpot.mean; },
   [](const labelled_run& r) { return ms2(r.sum.tpot, &stats::mean); }},
  {"JCT mean (ms)", false, [](const summary& s) { return s.jct.mean; },
   [](const labelled_run& r) { return ms2(r.sum.jct, &stats::mean); }},
  {"JCT p50 (ms)", false, [](const summary& s) { return s.jct.p50; },
   [](const labelled_run& r) { return ms2(r.sum.jct, &stats::p50); }},
  {"JCT p99 (ms)", false, [](const summary& s) { return s.jct.p99; },
   [](const labelled_run& r) { return ms2(r.sum.jct, &stats::p99); }},
  {"slowdown SLOs met", true, [](const summary& s) { return double(slos_met(s)); },
   [](const labelled_run& r) { return out_of(slos_met(r.sum), r.sum.slowdown.size()); }},
  {"attainment (%)", true, [](const summary& s) { return s.attainment * 100; },
   [](const labelled_run& r) { return fixed(r.sum.attainment * 100, 1); }},
  {"idle (%)", false,
   [](const summary& s) {
     return s.idle_fraction ? *s.idle_fraction * 100 : std::numeric_limits<double>::quiet_NaN();
   },
   [](const labelled_run& r) {
     return r.sum.idle_fraction ? fixed(*r.sum.idle_fraction * 100, 1) : std::string{"-"};
   }},
  {"KV GB sent", false, [](const summary& s) { return double(s.kv_bytes_sent) / 1e9; },
   [](const labelled_run& r) { return fixed(double(r.sum.kv_bytes_sent) / 1e9, 3); }},
  {"replicas evicted", false, [](const summary& s) { return double(s.replicas_evicted); },
   [](const labelled_run& r) { return count_of(r.sum.replicas_evicted); }},
  {"preemptions", false, [](const summary& s) { return double(s.preemptions); },
   [](const labelled_run& r) { return count_of(r.sum.preemptions); }},
}};
// clang-format on

bool is_accellm(const labelled_run& r) {
  return r.run && r.run->policy == accellm_policy;
}

// The gain cell of one row: blank without an accellm run, another run, or a
// non-zero best other value to divide by.
std::string gain(const row_def& row, const std::vector<labelled_run>& runs) {
  const auto mine = std::find_if(runs.begin(), runs.end(), is_accellm);
  if (mine == runs.end()) return "";
  std::optional<double> best;
  for (const labelled_run& r : runs) {
    if (is_accellm(r)) continue;
    const double v = row.value(r.sum);
    if (!best || (row.higher_better ? v > *best : v < *best)) best = v;
  }
  if (!best || *best == 0) return "";
  const double v = row.value(mine->sum);
  const double pct = (row.higher_better ? v - *best : *best - v) / *best * 100;
  return (pct >= 0 ? "+" : "") + fixed(pct, 1) + "%";
}

void pad_left(std::string& line, const std::string& cell, std::size_t width) {
  line.append(width > cell.size() ? width - cell.size() : 0, ' ');
  line += cell;
}

void end_line(std::string& line, std::string& out) {
  line.erase(line.find_last_not_of(' ') + 1);
  out += line;
  out += '\n';
  line.clear();
}

}  // namespace

std::string format_comparison(const std::vector<labelled_run>& runs) {
  // cells[c][0..1] are the two header lines of column c, then one per row.
  std::vector<std::vector<std::string>> cells;
  for (const labelled_run& r : runs) {
    std::vector<std::string> col{r.run ? r.run->policy : "?", r.run ? r.run->setting : ""};
    for (const row_def& row : rows) col.push_back(row.text(r));
    cells.push_back(std::move(col));
  }
  std::vector<std::string> gains{"accellm gain", ""};
  for (const row_def& row : rows) gains.push_back(gain(row, runs));
  cells.push_back(std::move(gains));

  std::size_t label_width = std::string{"metric"}.size();
  for (const row_def& row : rows)
    label_width = std::max(label_width, std::string{row.label}.size());
  label_width += 2;
  std::vector<std::size_t> widths;
  for (const auto& col : cells) {
    std::size_t w = 10;
    for (const std::string& cell : col) w = std::max(w, cell.size());
    widths.push_back(w + 2);
  }

  std::string out, line;
  for (std::size_t i = 0; i < rows.size() + 2; ++i) {
    std::string label = i == 0 ? "metric" : i == 1 ? "" : rows[i - 2].label;
    label.resize(label_width, ' ');
    line = label;
    for (std::size_t c = 0; c < cells.size(); ++c) pad_left(line, cells[c][i], widths[c]);
    end_line(line, out);
  }
  return out;
}

}  // namespace accellm::metrics

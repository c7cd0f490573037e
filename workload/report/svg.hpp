// Plots as inline SVG text: line charts (CDFs, latency against rate), bar
// charts and lane timelines. No scripts, no external resources; colours and
// fonts are attributes, so a page needs no stylesheet to show them.
//
// Every chart has a title, labelled axes with ticks and a legend naming each
// series. The output is deterministic (numbers through std::to_chars) and
// well-formed XML: every element is closed and every text is escaped.
//
// Thread contract: pure functions; safe from any thread.
#pragma once

#include "workload/report/cdf.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace accellm::report {

/// `text` with &, <, >, " and ' replaced by entities.
std::string escape(std::string_view text);

/// One axis: its label (with the unit) and whether it is logarithmic (then
/// values <= 0 are left out of the plot).
struct axis {
  std::string label;
  bool log = false;
};

/// One line of a line chart.
struct series {
  std::string name;    ///< shown in the legend
  std::string colour;  ///< an SVG colour, "#1f77b4"
  std::vector<point> points;
  bool dashed = false;
};

struct line_chart {
  std::string title;
  axis x, y;
  std::vector<series> lines;
  /// Draw each series as a staircase (a CDF): horizontal to the next x,
  /// then vertical; otherwise straight segments with a dot per point.
  bool steps = false;
  /// Fix the y range to [0, 1] (CDFs, fractions) instead of fitting the data.
  bool unit_y = false;
  /// Below the legend: explanation ("dashed: P99"), '\n' between lines of
  /// at most about 25 characters.
  std::string note;
};

/// <svg>...</svg> of `chart`. A chart without plottable points still draws
/// its frame, title and labels, with "no data" in the middle.
std::string render(const line_chart& chart);

/// One bar of a bar chart.
struct bar {
  std::string name, colour;
  double value = 0;
};

struct bar_chart {
  std::string title;
  std::string y_label;
  std::vector<bar> bars;  ///< left to right; each labelled below and by value above
};

std::string render(const bar_chart& chart);

/// A piece of a timeline lane: [start, end) in x units, filled with colour;
/// `title` shows as a tooltip.
struct segment {
  double start = 0, end = 0;
  std::string colour, title;
};

/// One row of a timeline: coloured segments and, over them, a line of a
/// level in [0, 1] (utilisation) drawn inside the row.
struct lane {
  std::string label;
  std::vector<segment> segments;
  std::vector<point> level;
};

struct timeline_chart {
  std::string title;
  std::string x_label;
  double x_end = 0;  ///< the x axis spans [0, x_end]
  std::vector<lane> lanes;
  /// Legend entries: name and colour of each segment kind.
  std::vector<std::pair<std::string, std::string>> legend;
  std::string level_name;  ///< legend text of the level line, e.g. "busy fraction"
};

std::string render(const timeline_chart& chart);

}  // namespace accellm::report

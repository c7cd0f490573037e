#include "workload/report/svg.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <limits>

namespace accellm::report {
namespace {

// Every chart is 720 px wide: the plot on the left, the legend on the right.
constexpr double width = 720, legend_w = 170, left = 76, top = 40, bottom = 54;
constexpr double plot_h = 270;
constexpr double x0 = left, x1 = width - legend_w;

// Pixel coordinates with one decimal: exact enough, and short.
std::string px(double v) {
  std::array<char, 64> buf{};
  const auto r = std::to_chars(buf.data(), buf.data() + buf.size(), v, std::chars_format::fixed, 1);
  std::string s(buf.data(), r.ptr);
  return s == "-0.0" ? "0.0" : s;
}

// Tick and value labels: four significant digits ("0.25", "1500", "1e+05").
std::string label(double v) {
  if (std::abs(v) < 1e-12) return "0";
  std::array<char, 64> buf{};
  const auto r =
      std::to_chars(buf.data(), buf.data() + buf.size(), v, std::chars_format::general, 4);
  return std::string(buf.data(), r.ptr);
}

std::string text(double x, double y, std::string_view s, std::string_view attrs = {}) {
  std::string out = "<text x=\"" + px(x) + "\" y=\"" + px(y) + "\"";
  if (!attrs.empty()) out += " " + std::string{attrs};
  return out + ">" + escape(s) + "</text>\n";
}

std::string line(double xa, double ya, double xb, double yb, std::string_view attrs) {
  return "<line x1=\"" + px(xa) + "\" y1=\"" + px(ya) + "\" x2=\"" + px(xb) + "\" y2=\"" + px(yb) +
         "\" " + std::string{attrs} + "/>\n";
}

std::string open_svg(double height, std::string_view title) {
  return "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + px(width) + "\" height=\"" +
         px(height) + "\" viewBox=\"0 0 " + px(width) + " " + px(height) +
         "\" font-family=\"sans-serif\" font-size=\"12\" role=\"img\">\n<title>" + escape(title) +
         "</title>\n" +
         text(width / 2 - legend_w / 2, 22, title,
              "text-anchor=\"middle\" font-size=\"15\" font-weight=\"bold\"");
}

// 1, 2 or 5 times a power of ten, at least `raw`.
double nice_step(double raw) {
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double f = raw / mag;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
}

// Maps data values onto pixels [p0, p1] over [lo, hi], linearly or by log10.
struct scale {
  double lo = 0, hi = 1;
  bool log = false;
  double p0 = 0, p1 = 1;

  double operator()(double v) const {
    const double t = log ? (std::log10(v) - std::log10(lo)) / (std::log10(hi) - std::log10(lo))
                         : (v - lo) / (hi - lo);
    return p0 + std::clamp(t, 0.0, 1.0) * (p1 - p0);
  }

  std::vector<double> ticks() const {
    std::vector<double> out;
    if (log) {
      const int a = static_cast<int>(std::lround(std::log10(lo)));
      const int b = static_cast<int>(std::lround(std::log10(hi)));
      for (int k = a; k <= b; ++k) {
        const double d = std::pow(10.0, k);
        out.push_back(d);
        if (b - a <= 2 && k < b) {
          out.push_back(2 * d);
          out.push_back(5 * d);
        }
      }
      return out;
    }
    const double step = nice_step((hi - lo) / 5);
    for (double t = std::ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) {
      out.push_back(std::abs(t) < step * 1e-9 ? 0.0 : t);
    }
    return out;
  }
};

// The smallest range of `log` or linear kind that holds [lo, hi], with
// round ends (decades, or multiples of a 1-2-5 step starting at 0).
scale fit(double lo, double hi, bool log, double p0, double p1) {
  scale s{.lo = lo, .hi = hi, .log = log, .p0 = p0, .p1 = p1};
  if (log) {
    s.lo = std::pow(10.0, std::floor(std::log10(lo)));
    s.hi = std::pow(10.0, std::ceil(std::log10(hi)));
    if (s.hi <= s.lo) s.hi = s.lo * 10;
    return s;
  }
  s.lo = std::min(0.0, lo);
  if (hi <= s.lo) hi = s.lo + 1;
  // A finer step than the ticks' (range / 5), so the axis ends near the data.
  const double step = nice_step((hi - s.lo) / 8);
  s.hi = std::ceil(hi / step) * step;
  return s;
}

std::string axes(const scale& sx, const scale& sy, const axis& ax, const axis& ay) {
  std::string out;
  const double y0 = sy.p1, y1 = sy.p0;  // top and bottom pixel rows
  for (const double t : sx.ticks()) {
    const double x = sx(t);
    out += line(x, y0, x, y1, "stroke=\"#e0e0e0\"");
    out += text(x, y1 + 16, label(t), "text-anchor=\"middle\"");
  }
  for (const double t : sy.ticks()) {
    const double y = sy(t);
    out += line(x0, y, x1, y, "stroke=\"#e0e0e0\"");
    out += text(x0 - 6, y + 4, label(t), "text-anchor=\"end\"");
  }
  out += line(x0, y1, x1, y1, "stroke=\"#333\"") + line(x0, y0, x0, y1, "stroke=\"#333\"");
  out += text((x0 + x1) / 2, y1 + 38, ax.label + (ax.log ? " (log scale)" : ""),
              "text-anchor=\"middle\"");
  const std::string ylab = ay.label + (ay.log ? " (log scale)" : "");
  out += "<text transform=\"translate(18 " + px((y0 + y1) / 2) +
         ") rotate(-90)\" text-anchor=\"middle\">" + escape(ylab) + "</text>\n";
  return out;
}

std::string legend_entry(std::size_t i, std::string_view name, std::string_view swatch) {
  const double y = top + 10 + 18 * static_cast<double>(i);
  return "<g transform=\"translate(" + px(x1 + 14) + " " + px(y) + ")\">" + std::string{swatch} +
         text(26, 4, name) + "</g>\n";
}

std::string line_swatch(const std::string& colour, bool dashed) {
  return "<line x1=\"0\" y1=\"0\" x2=\"20\" y2=\"0\" stroke=\"" + escape(colour) +
         "\" stroke-width=\"2\"" + (dashed ? " stroke-dasharray=\"5 3\"" : "") + "/>";
}

std::string box_swatch(const std::string& colour) {
  return "<rect x=\"0\" y=\"-6\" width=\"20\" height=\"12\" fill=\"" + escape(colour) + "\"/>";
}

bool plottable(const point& p, const line_chart& c) {
  return std::isfinite(p.x) && std::isfinite(p.y) && (!c.x.log || p.x > 0) && (!c.y.log || p.y > 0);
}

}  // namespace

std::string escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (const char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string render(const line_chart& c) {
  const double height = top + plot_h + bottom;
  double xlo = std::numeric_limits<double>::infinity(), xhi = -xlo, ylo = xlo, yhi = -xlo;
  for (const series& s : c.lines) {
    for (const point& p : s.points) {
      if (!plottable(p, c)) continue;
      xlo = std::min(xlo, p.x), xhi = std::max(xhi, p.x);
      ylo = std::min(ylo, p.y), yhi = std::max(yhi, p.y);
    }
  }
  const bool empty = xlo > xhi;
  if (empty) xlo = ylo = 1, xhi = yhi = 10;
  if (c.unit_y) ylo = 0, yhi = 1;
  const scale sx = fit(xlo, xhi, c.x.log, x0, x1);
  const scale sy = c.unit_y ? scale{.lo = 0, .hi = 1, .log = false, .p0 = top + plot_h, .p1 = top}
                            : fit(ylo, yhi, c.y.log, top + plot_h, top);
  std::string out = open_svg(height, c.title) + axes(sx, sy, c.x, c.y);
  if (empty) out += text((x0 + x1) / 2, top + plot_h / 2, "no data", "text-anchor=\"middle\"");
  for (std::size_t i = 0; i < c.lines.size(); ++i) {
    const series& s = c.lines[i];
    std::string pts;
    double prev_y = sy.lo;
    for (const point& p : s.points) {
      if (!plottable(p, c)) continue;
      if (c.steps) pts += px(sx(p.x)) + "," + px(sy(prev_y)) + " ";
      pts += px(sx(p.x)) + "," + px(sy(p.y)) + " ";
      prev_y = p.y;
    }
    if (!pts.empty()) pts.pop_back();
    const std::string colour = escape(s.colour);
    out += "<polyline fill=\"none\" stroke=\"" + colour + "\" stroke-width=\"2\"" +
           (s.dashed ? " stroke-dasharray=\"5 3\"" : "") + " points=\"" + pts + "\"/>\n";
    if (!c.steps) {
      for (const point& p : s.points) {
        if (!plottable(p, c)) continue;
        out += "<circle cx=\"" + px(sx(p.x)) + "\" cy=\"" + px(sy(p.y)) + "\" r=\"3\" fill=\"" +
               colour + "\"/>\n";
      }
    }
    out += legend_entry(i, s.name, line_swatch(s.colour, s.dashed));
  }
  double y = top + 18 * static_cast<double>(c.lines.size()) + 20;
  for (std::size_t a = 0; a < c.note.size(); y += 15) {
    const std::size_t b = std::min(c.note.find('\n', a), c.note.size());
    out += text(x1 + 14, y, c.note.substr(a, b - a), "font-size=\"11\" fill=\"#555\"");
    a = b + 1;
  }
  return out + "</svg>\n";
}

std::string render(const bar_chart& c) {
  const double height = top + plot_h + bottom;
  double hi = 0;
  for (const bar& b : c.bars) {
    if (std::isfinite(b.value)) hi = std::max(hi, b.value);
  }
  const scale sy = fit(0, hi > 0 ? hi : 1, false, top + plot_h, top);
  std::string out = open_svg(height, c.title);
  for (const double t : sy.ticks()) {
    out += line(x0, sy(t), x1, sy(t), "stroke=\"#e0e0e0\"");
    out += text(x0 - 6, sy(t) + 4, label(t), "text-anchor=\"end\"");
  }
  out += line(x0, top + plot_h, x1, top + plot_h, "stroke=\"#333\"");
  out += "<text transform=\"translate(18 " + px(top + plot_h / 2) +
         ") rotate(-90)\" text-anchor=\"middle\">" + escape(c.y_label) + "</text>\n";
  const double slot = (x1 - x0) / static_cast<double>(std::max<std::size_t>(c.bars.size(), 1));
  for (std::size_t i = 0; i < c.bars.size(); ++i) {
    const bar& b = c.bars[i];
    const double v = std::isfinite(b.value) ? std::max(b.value, 0.0) : 0.0;
    const double xm = x0 + slot * (static_cast<double>(i) + 0.5), w = std::min(slot * 0.6, 90.0);
    const double y = sy(v);
    out += "<rect x=\"" + px(xm - w / 2) + "\" y=\"" + px(y) + "\" width=\"" + px(w) +
           "\" height=\"" + px(top + plot_h - y) + "\" fill=\"" + escape(b.colour) + "\"><title>" +
           escape(b.name + ": " + label(b.value)) + "</title></rect>\n";
    out += text(xm, y - 5, label(b.value), "text-anchor=\"middle\"");
    out += text(xm, top + plot_h + 18, b.name, "text-anchor=\"middle\"");
    out += legend_entry(i, b.name, box_swatch(b.colour));
  }
  return out + "</svg>\n";
}

std::string render(const timeline_chart& c) {
  constexpr double lane_h = 16, lane_gap = 6;
  const double plot = std::max(1.0, static_cast<double>(c.lanes.size())) * (lane_h + lane_gap);
  const double height = top + plot + bottom;
  const scale sx = fit(0, c.x_end > 0 ? c.x_end : 1, false, x0, x1);
  std::string out = open_svg(height, c.title);
  for (const double t : sx.ticks()) {
    out += line(sx(t), top, sx(t), top + plot, "stroke=\"#e0e0e0\"");
    out += text(sx(t), top + plot + 16, label(t), "text-anchor=\"middle\"");
  }
  out += line(x0, top + plot, x1, top + plot, "stroke=\"#333\"");
  out += text((x0 + x1) / 2, top + plot + 38, c.x_label, "text-anchor=\"middle\"");
  if (c.lanes.empty())
    out += text((x0 + x1) / 2, top + plot / 2, "no data", "text-anchor=\"middle\"");
  for (std::size_t i = 0; i < c.lanes.size(); ++i) {
    const lane& l = c.lanes[i];
    const double y = top + static_cast<double>(i) * (lane_h + lane_gap) + lane_gap / 2;
    out += text(x0 - 6, y + lane_h - 4, l.label, "text-anchor=\"end\"");
    for (const segment& s : l.segments) {
      const double a = sx(s.start), b = sx(s.end);
      out += "<rect x=\"" + px(a) + "\" y=\"" + px(y) + "\" width=\"" + px(std::max(b - a, 0.0)) +
             "\" height=\"" + px(lane_h) + "\" fill=\"" + escape(s.colour) + "\"><title>" +
             escape(s.title) + "</title></rect>\n";
    }
    std::string pts;
    for (const point& p : l.level) {
      pts += px(sx(p.x)) + "," + px(y + lane_h - std::clamp(p.y, 0.0, 1.0) * lane_h) + " ";
    }
    if (!pts.empty()) {
      pts.pop_back();
      out +=
          "<polyline fill=\"none\" stroke=\"#111\" stroke-width=\"1\" points=\"" + pts + "\"/>\n";
    }
  }
  std::size_t k = 0;
  for (const auto& [name, colour] : c.legend) out += legend_entry(k++, name, box_swatch(colour));
  if (!c.level_name.empty()) out += legend_entry(k, c.level_name, line_swatch("#111", false));
  return out + "</svg>\n";
}

}  // namespace accellm::report

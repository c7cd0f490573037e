#include "cli/progress.hpp"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ostream>

namespace accellm::cli {
namespace {

double seconds(std::chrono::nanoseconds d) {
  return std::chrono::duration<double>(d).count();
}

std::string format(const char* fmt, double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

}  // namespace

std::string render_bar(std::string_view label, double fraction, double rate, double eta,
                       std::size_t width, std::string_view rate_unit) {
  const double f = std::clamp(std::isfinite(fraction) ? fraction : 0.0, 0.0, 1.0);
  const auto filled = static_cast<std::size_t>(std::lround(f * static_cast<double>(width)));
  std::string line = "[" + std::string(filled, '#') + std::string(width - filled, '.') + "] ";
  line += format("%3.0f%%", 100 * f);
  line += "  ";
  line += label;
  if (rate >= 0) line += format(rate < 10 ? "  %.1f " : "  %.0f ", rate) + std::string{rate_unit};
  line += eta >= 0 ? format("  ETA %.0f s", std::ceil(eta)) : "";
  return line;
}

progress_meter::progress_meter(std::ostream& out, bool terminal, clock_fn now,
                               std::chrono::milliseconds every, meter_kind kind)
    : out_(out),
      terminal_(terminal),
      now_(now ? std::move(now) : clock_fn{[] { return std::chrono::steady_clock::now(); }}),
      every_(every),
      kind_(kind) {}

void progress_meter::update(std::string_view label, std::chrono::nanoseconds simulated,
                            std::chrono::nanoseconds horizon, std::size_t finished,
                            std::size_t total) {
  const auto now = now_();
  if (label != label_) {  // a new run
    label_ = label;
    started_ = now;
    last_ = now;
  }
  const double wall = seconds(now - started_);
  // Requests finished is the honest measure of what is left: a run drains
  // after its last arrival, past the end of its virtual horizon.
  const double fraction =
      total > 0 ? static_cast<double>(finished) / static_cast<double>(total) : 0.0;
  const bool live = kind_ == meter_kind::live;
  const double done = live ? static_cast<double>(finished) : seconds(simulated);
  const double rate = wall > 0 ? done / wall : -1.0;
  const double eta = wall > 0 && fraction > 0 ? wall * (1 - fraction) / fraction : -1.0;
  const char* unit = live ? "req/s" : "sim-s/s";
  if (terminal_) {
    if (drawn_ && now - last_ < std::chrono::milliseconds{100} && finished < total) return;
    last_ = now;
    out_ << '\r' << render_bar(label, fraction, rate, eta, 30, unit) << "\x1b[K" << std::flush;
    drawn_ = true;
    return;
  }
  if (now - last_ < every_) return;
  last_ = now;
  out_ << (live ? "load:       " : "simulate:   ") << label << ": "
       << format("%.0f", seconds(simulated)) << " s of " << format("%.0f", seconds(horizon))
       << (live ? " s of arrivals, " : " s simulated, ") << finished << "/" << total
       << " requests done"
       << (rate >= 0 ? format(rate < 10 ? ", %.1f " : ", %.0f ", rate) + unit : std::string{})
       << "\n";
}

void progress_meter::finish() {
  if (!drawn_) return;
  out_ << "\r\x1b[K" << std::flush;  // the bar goes; the results follow on a clean line
  drawn_ = false;
}

bool stderr_is_terminal() {
  return ::isatty(STDERR_FILENO) == 1;
}

}  // namespace accellm::cli

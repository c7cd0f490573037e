// progress: what a long run (accellm simulate, its sweeps and searches, and
// accellm load or up driving a live cluster) shows while it works. On a
// terminal, one line redrawn in place: a bar, the share of requests
// finished, the speed (simulated seconds per wall second, or requests
// finished per second for a live cluster) and the time left; elsewhere (a
// pipe, a file, a CI log) a plain line every few seconds, so logs stay
// readable.
//
// Reads the wall clock, through an injected function (tests pass their own):
// CLI code only, never actor code, so simulated runs stay deterministic.
//
// Thread contract: one meter per thread; not shared.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <string>
#include <string_view>

namespace accellm::cli {

/// The bar line: "[#####.....]  45%  label  120 sim-s/s  ETA 3 s". `fraction`
/// in [0, 1] (clamped); `rate` in `rate_unit` (< 0: not known yet); `eta`
/// seconds left (< 0: not known).
std::string render_bar(std::string_view label, double fraction, double rate, double eta,
                       std::size_t width = 30, std::string_view rate_unit = "sim-s/s");

/// What a meter measures.
enum class meter_kind : std::uint8_t {
  simulation,  ///< virtual time: speed in simulated seconds per wall second
  live,        ///< a live cluster on the wall clock: requests finished per second
};

class progress_meter {
 public:
  using clock_fn = std::function<std::chrono::steady_clock::time_point()>;

  /// terminal: redraw one line with '\r' (else plain lines every `every`).
  progress_meter(std::ostream& out, bool terminal, clock_fn now = {},
                 std::chrono::milliseconds every = std::chrono::seconds{3},
                 meter_kind kind = meter_kind::simulation);

  /// Where the run is: `simulated` of `horizon` time (virtual, or for a live
  /// run the wall time since its start of the span of its arrivals),
  /// `finished` of `total` requests. A new label starts a new run (its speed
  /// and ETA are measured from then).
  void update(std::string_view label, std::chrono::nanoseconds simulated,
              std::chrono::nanoseconds horizon, std::size_t finished, std::size_t total);

  /// Clears the redrawn line, so what follows starts on a clean one; nothing
  /// when not on a terminal.
  void finish();

 private:
  std::ostream& out_;
  bool terminal_;
  clock_fn now_;
  std::chrono::milliseconds every_;
  meter_kind kind_;
  std::string label_;
  std::chrono::steady_clock::time_point started_{}, last_{};
  bool drawn_ = false;  ///< a bar line is open on the terminal
};

/// True when standard error is a terminal.
bool stderr_is_terminal();

}  // namespace accellm::cli

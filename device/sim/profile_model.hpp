// profile_model: a cost model read from a table of measured iteration times,
// in the spirit of SplitwiseSim's perf_model.csv, interpolated piecewise
// linearly (and extrapolated linearly past the first and last anchors).
//
// Profile CSV, format v1 (docs/cost-model.md has the full description):
//
//   # comment lines start with '#'; blank lines are ignored
//   @model,llama2-70b          <- optional metadata rows: @model, @hardware, @tp
//   @hardware,h100
//   @tp,2
//   kind,batch,tokens,time_ms  <- header row, exactly these columns
//   prefill,1,2048,308         <- batch requests of `tokens` prompt tokens each
//   decode,16,576,42.0         <- one step of `batch` requests at context `tokens`
//
// Lookup: prefill rows are keyed by (batch, total tokens = batch * tokens);
// decode rows by (batch, context). Within a batch size the time is
// interpolated over tokens, then across batch sizes at the query's batch.
// A batch mixing prefill and decode items is charged as a prefill whose
// total tokens include one per decode item (SplitwiseSim's batch tokens).
//
// Thread contract: immutable after create(); estimate() may run concurrently.
#pragma once

#include "common/result.hpp"
#include "device/sim/cost_model.hpp"

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace accellm::device::sim {

/// One anchor: `batch` requests with `tokens` each took `time_ms`.
struct profile_point {
  std::uint32_t batch = 0;
  std::uint32_t tokens = 0;  ///< prompt tokens (prefill) or context (decode) per request
  double time_ms = 0.0;
};

/// A parsed profile file.
struct profile_table {
  std::string model;     ///< @model, "" when absent
  std::string hardware;  ///< @hardware (a find_hardware() key), "" when absent
  std::uint32_t tp = 0;  ///< @tp, 0 when absent
  std::vector<profile_point> prefill;
  std::vector<profile_point> decode;
};

/// Parses profile CSV text. Errors are errc::malformed with a message
/// "<origin>:<line>: <reason>" (line 1-based), or "<origin>: <reason>" for
/// what is missing at the end (no header, no prefill or no decode rows).
result<profile_table> parse_profile(std::string_view text, std::string_view origin);

/// Reads and parses a file; io_failure when it cannot be read.
result<profile_table> load_profile(const std::string& path);

class profile_model final : public cost_model {
 public:
  /// Fails with invalid_argument when the table has no prefill or no decode
  /// anchors (parse_profile() guarantees both).
  static result<profile_model> create(profile_table table, std::string name);

  std::string describe() const override;
  result<cost_breakdown> estimate(const batch& b) const override;

  /// Prefill of `batch` requests holding `total_tokens` prompt tokens together.
  std::chrono::nanoseconds prefill_time(std::uint32_t batch, double total_tokens) const;
  /// One decode step of `batch` requests at a mean context of `context`.
  std::chrono::nanoseconds decode_time(std::uint32_t batch, double context) const;

  const profile_table& table() const noexcept { return table_; }

  /// Anchors of one batch size: (tokens, ms) sorted by tokens.
  struct batch_curve {
    double batch = 0;
    std::vector<std::pair<double, double>> points;
  };

 private:
  profile_model(profile_table table, std::string name);

  profile_table table_;
  std::string name_;
  std::vector<batch_curve> prefill_;  ///< over total tokens, sorted by batch
  std::vector<batch_curve> decode_;   ///< over context, sorted by batch
};

/// Piecewise-linear interpolation through points sorted by x (distinct x),
/// extrapolating the first or last segment linearly outside them; a single
/// point gives a constant. Returns 0 for no points.
double interpolate(std::span<const std::pair<double, double>> points, double x) noexcept;

}  // namespace accellm::device::sim

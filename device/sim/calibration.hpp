// calibration: how far a cost model's predictions are from a measured
// profile table (device/profiles/*.csv). bench/calibrate_h100.cpp fits the
// h100 roofline factors with it; tests/device/sim/calibration_test.cpp holds
// sim:h100 to the bounds of issue 8 with it.
//
// Plain functions on values; safe from any thread.
#pragma once

#include "common/result.hpp"
#include "device/backend.hpp"
#include "device/sim/cost_model.hpp"
#include "device/sim/profile_model.hpp"

#include <cstddef>
#include <vector>

namespace accellm::device::sim {

/// The batch a profile point was measured on: `p.batch` prefills of
/// `p.tokens` tokens each, or `p.batch` decode steps at context `p.tokens`;
/// every item samples a token.
batch profile_batch(const profile_point& p, phase kind);

/// |predicted - measured| / measured of every point of `table` (prefill
/// points first, then decode, in table order), predicted by `model`. Fails
/// when the model refuses a point's batch.
result<std::vector<double>> relative_errors(const cost_model& model, const profile_table& table);

/// Median (the upper one of an even count, v[n / 2] sorted) and worst of a
/// set of errors; zeros when it is empty.
struct error_summary {
  std::size_t points = 0;
  double median = 0.0;
  double worst = 0.0;
};
error_summary summarise(std::vector<double> errors);

}  // namespace accellm::device::sim

// Empirical cumulative distributions, thinned for plotting.
//
// Thread contract: pure functions; safe from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace accellm::report {

/// A point of a plot, in data units.
struct point {
  double x = 0, y = 0;
};

/// The empirical CDF of `values`: for the i-th smallest of n values (from
/// 0), the point (value, (i + 1) / n). Non-finite values are dropped. With
/// more than `max_points` values, points are kept at evenly spaced ranks, the
/// first and the last always among them (max_points >= 2).
std::vector<point> cdf(std::vector<double> values, std::size_t max_points = 256);

/// One histogram bucket: `count` values in [lo, hi).
struct bucket {
  double lo = 0, hi = 0;
  std::uint64_t count = 0;
};

/// The CDF of a histogram whose buckets are in ascending order: one point
/// (hi, fraction of values below hi) per non-empty bucket. Empty when the
/// histogram holds no values.
std::vector<point> cdf(const std::vector<bucket>& histogram);

}  // namespace accellm::report

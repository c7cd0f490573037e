#include "workload/report/cdf.hpp"

#include <algorithm>
#include <cmath>

namespace accellm::report {

std::vector<point> cdf(std::vector<double> values, std::size_t max_points) {
  std::erase_if(values, [](double v) { return !std::isfinite(v); });
  std::sort(values.begin(), values.end());
  const std::size_t n = values.size();
  std::vector<point> out;
  if (n == 0) return out;
  const auto at = [&](std::size_t i) {
    return point{values[i], static_cast<double>(i + 1) / static_cast<double>(n)};
  };
  if (n <= max_points || max_points < 2) {
    for (std::size_t i = 0; i < n; ++i) out.push_back(at(i));
    return out;
  }
  out.reserve(max_points);
  for (std::size_t k = 0; k < max_points; ++k) {
    // Rank k/(max_points-1) of the way from the first to the last, rounded.
    out.push_back(at((k * (n - 1) + (max_points - 1) / 2) / (max_points - 1)));
  }
  return out;
}

std::vector<point> cdf(const std::vector<bucket>& histogram) {
  std::uint64_t total = 0;
  for (const bucket& b : histogram) total += b.count;
  std::vector<point> out;
  if (total == 0) return out;
  std::uint64_t below = 0;
  for (const bucket& b : histogram) {
    if (b.count == 0) continue;
    below += b.count;
    out.push_back({b.hi, static_cast<double>(below) / static_cast<double>(total)});
  }
  return out;
}

}  // namespace accellm::report

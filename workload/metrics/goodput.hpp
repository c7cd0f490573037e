// DistServe goodput: the highest request rate whose SLO attainment stays at
// or above a target (90%), and cost efficiency derived from it.
//
// search_goodput() only decides which rates to try; the caller's
// attainment_at runs the workload at a rate (a simulation, typically) and
// returns the fraction of requests meeting the SLOs (summary::attainment).
// Attainment is assumed to fall as the rate grows; where it does not, the
// search still returns a rate that passed, just not necessarily the highest.
//
// Thread contract: pure functions; search_goodput calls attainment_at
// sequentially on the calling thread.
#pragma once

#include "common/result.hpp"

#include <functional>
#include <vector>

namespace accellm::metrics {

/// One call of attainment_at.
struct goodput_probe {
  double rate;        ///< req/s
  double attainment;  ///< 0..1
};

/// The highest passing rate found (0 when none passed) and every probe, in
/// the order they were made.
struct goodput_result {
  double rate = 0;
  std::vector<goodput_probe> probes;
};

/// Doubling from `lo` until attainment drops below target (or hi is reached),
/// then bisection until the bracket is within rel_tol; at most max_probes
/// calls of attainment_at. When `lo` itself fails the bracket is [0, lo].
/// When `hi` passes the result is `hi`. The bracket [pass, fail] is "within
/// rel_tol" when (fail - pass) <= rel_tol * fail.
/// Errors: errc::invalid_argument for lo <= 0, hi < lo, target outside
/// (0, 1], rel_tol <= 0 or max_probes < 1 (or non-finite values); an error
/// from attainment_at is returned with its code, prefixed by the rate.
result<goodput_result> search_goodput(
    const std::function<result<double>(double rate)>& attainment_at, double lo, double hi,
    double target = 0.9, double rel_tol = 0.02, int max_probes = 16);

/// Cost efficiency: goodput per dollar-hour and per kW.
struct efficiency {
  double per_dollar_hour = 0, per_kw = 0;
};

/// Goodput divided by the cluster's price and power; a zero (or negative)
/// price or power gives 0 for that ratio.
efficiency cost_efficiency(double goodput_rps, double price_per_hour, double power_kw);

}  // namespace accellm::metrics

#include "workload/metrics/goodput.hpp"

#include "workload/metrics/detail/number_format.hpp"

#include <algorithm>
#include <cmath>
#include <string>

namespace accellm::metrics {
namespace {

status check_arguments(double lo, double hi, double target, double rel_tol, int max_probes) {
  if (!std::isfinite(lo) || !std::isfinite(hi) || lo <= 0 || hi < lo) {
    return fail(errc::invalid_argument, "search_goodput: need 0 < lo <= hi, got lo " +
                                            detail::shortest(lo) + ", hi " + detail::shortest(hi));
  }
  if (!(target > 0 && target <= 1)) {
    return fail(errc::invalid_argument,
                "search_goodput: target " + detail::shortest(target) + " is outside (0, 1]");
  }
  if (!(rel_tol > 0) || !std::isfinite(rel_tol)) {
    return fail(errc::invalid_argument,
                "search_goodput: rel_tol " + detail::shortest(rel_tol) + " must be positive");
  }
  if (max_probes < 1) {
    return fail(errc::invalid_argument,
                "search_goodput: max_probes " + std::to_string(max_probes) + " must be at least 1");
  }
  return {};
}

}  // namespace

result<goodput_result> search_goodput(
    const std::function<result<double>(double rate)>& attainment_at, double lo, double hi,
    double target, double rel_tol, int max_probes) {
  if (auto ok = check_arguments(lo, hi, target, rel_tol, max_probes); !ok) return ok.err();
  goodput_result out;
  // Runs one probe; false once it failed below target.
  auto probe = [&](double rate) -> result<bool> {
    result<double> a = attainment_at(rate);
    if (!a) return std::move(a).err().context("goodput at " + detail::shortest(rate) + " req/s");
    out.probes.push_back({rate, *a});
    return *a >= target;
  };
  double pass = 0;  // highest rate known to pass (0: none yet)
  double bad = 0;   // lowest rate known to fail (0: none yet)
  // Doubling phase: bounded by max_probes.
  for (double rate = lo; static_cast<int>(out.probes.size()) < max_probes;) {
    result<bool> ok = probe(rate);
    if (!ok) return std::move(ok).err();
    if (!*ok) {
      bad = rate;
      break;
    }
    pass = rate;
    if (rate >= hi) break;
    rate = std::min(rate * 2, hi);
  }
  // Bisection phase, only when a failing rate bounds the bracket.
  while (bad > 0 && bad - pass > rel_tol * bad &&
         static_cast<int>(out.probes.size()) < max_probes) {
    const double mid = (pass + bad) / 2;
    result<bool> ok = probe(mid);
    if (!ok) return std::move(ok).err();
    (*ok ? pass : bad) = mid;
  }
  out.rate = pass;
  return out;
}

efficiency cost_efficiency(double goodput_rps, double price_per_hour, double power_kw) {
  efficiency e;
  if (price_per_hour > 0) e.per_dollar_hour = goodput_rps / price_per_hour;
  if (power_kw > 0) e.per_kw = goodput_rps / power_kw;
  return e;
}

}  // namespace accellm::metrics

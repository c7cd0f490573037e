#include "workload/metrics/summary.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <limits>
#include <numeric>

namespace accellm::metrics {
namespace {

constexpr double inf = std::numeric_limits<double>::infinity();

double ms(nanos d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

// Slowdown samples of one run, one vector per metric.
struct slowdowns {
  std::vector<double> ttft, tbt, e2e;
};

void add_slowdowns(const request_record& r, slowdowns& out) {
  const double base_ttft = ms(r.baseline_ttft);
  const double base_tbt = ms(r.baseline_tbt);
  if (base_ttft > 0) {
    out.ttft.push_back(r.first_token != never ? ms(r.first_token - r.arrival) / base_ttft : inf);
  }
  if (base_tbt > 0) {
    for (std::size_t i = 1; i < r.token_times.size(); ++i) {
      out.tbt.push_back(ms(r.token_times[i] - r.token_times[i - 1]) / base_tbt);
    }
  }
  // E2E needs the TBT baseline only for more than one token; an unfinished
  // request is judged by the tokens it asked for.
  const std::size_t tokens = finished(r) ? output_tokens(r) : r.max_tokens;
  if (base_ttft > 0 && (base_tbt > 0 || tokens <= 1)) {
    const double base_e2e = base_ttft + base_tbt * static_cast<double>(tokens > 0 ? tokens - 1 : 0);
    out.e2e.push_back(finished(r) ? ms(r.finish - r.arrival) / base_e2e : inf);
  }
}

void check_slowdowns(slowdowns s, summary& out) {
  struct check {
    const char* metric;
    std::vector<double>* samples;
    std::array<double, 3> targets;
  };
  const std::array<check, 3> checks{{{"ttft", &s.ttft, {2.0, 3.0, 6.0}},
                                     {"tbt", &s.tbt, {1.25, 1.5, 5.0}},
                                     {"e2e", &s.e2e, {1.25, 1.5, 5.0}}}};
  constexpr std::array<double, 3> percentiles{50, 90, 99};
  out.slowdown_all_met = true;
  for (const check& c : checks) {
    std::sort(c.samples->begin(), c.samples->end());
    for (std::size_t i = 0; i < percentiles.size(); ++i) {
      slowdown_slo slo{c.metric, percentiles[i], c.targets[i]};
      slo.measured = percentile(*c.samples, slo.percentile);
      slo.met = !c.samples->empty() && slo.measured <= slo.target;
      out.slowdown_all_met = out.slowdown_all_met && slo.met;
      out.slowdown.push_back(std::move(slo));
    }
  }
}

// Whether `r` meets both absolute SLOs (an unset one always holds).
bool meets(const request_record& r, const slo_options& slo) {
  if (!finished(r) || r.first_token == never) return false;
  if (slo.ttft_ms > 0 && ms(r.first_token - r.arrival) > slo.ttft_ms) return false;
  const std::size_t tokens = output_tokens(r);
  if (slo.tbt_ms > 0 && tokens > 1) {
    const double tpot = ms(r.finish - r.first_token) / static_cast<double>(tokens - 1);
    if (tpot > slo.tbt_ms) return false;
  }
  return true;
}

void summarize_requests(const run_record& run, const slo_options& slo, summary& out) {
  std::vector<double> ttft, tbt, tpot, jct;
  slowdowns slow;
  std::size_t tokens_total = 0, good = 0;
  for (const request_record& r : run.requests) {
    const std::size_t tokens = output_tokens(r);
    tokens_total += tokens;
    out.moves += r.moves;
    if (r.first_token != never) ttft.push_back(ms(r.first_token - r.arrival));
    for (std::size_t i = 1; i < r.token_times.size(); ++i) {
      tbt.push_back(ms(r.token_times[i] - r.token_times[i - 1]));
    }
    if (finished(r)) {
      ++out.completed;
      jct.push_back(ms(r.finish - r.arrival));
      if (tokens > 1 && r.first_token != never) {
        tpot.push_back(ms(r.finish - r.first_token) / static_cast<double>(tokens - 1));
      }
    }
    if (meets(r, slo)) ++good;
    add_slowdowns(r, slow);
  }
  out.requests = run.requests.size();
  if (out.duration_s > 0) {
    out.throughput_rps = static_cast<double>(out.completed) / out.duration_s;
    out.output_tok_per_s = static_cast<double>(tokens_total) / out.duration_s;
  }
  out.ttft = describe(std::move(ttft));
  out.tbt = describe(std::move(tbt));
  out.tpot = describe(std::move(tpot));
  out.jct = describe(std::move(jct));
  check_slowdowns(std::move(slow), out);
  if (slo.ttft_ms <= 0 && slo.tbt_ms <= 0) {
    out.attainment = 1.0;
  } else if (!run.requests.empty()) {
    out.attainment = static_cast<double>(good) / static_cast<double>(run.requests.size());
  }
}

void summarize_instances(const run_record& run, summary& out) {
  double idle_sum = 0;
  std::size_t timed = 0;
  for (const instance_record& i : run.instances) {
    // Iterations without busy time: a live run's instance whose coordinator
    // does not export it. Unknown, not idle (the rule of instances.csv).
    if (i.busy > nanos::zero() || i.iterations == 0) {
      ++timed;
      if (run.makespan > nanos::zero()) {
        const double busy =
            static_cast<double>(i.busy.count()) / static_cast<double>(run.makespan.count());
        idle_sum += std::clamp(1.0 - busy, 0.0, 1.0);
      }
    }
    out.price_per_hour += i.price_per_hour;
    out.power_kw += i.power_watts / 1000.0;
    out.kv_bytes_sent += i.kv_bytes_sent;
    out.replicas_evicted += i.replicas_evicted;
    out.preemptions += i.preemptions;
    if (i.total_blocks == 0) continue;
    for (const memory_sample& m : i.memory) {
      out.peak_replica_fraction =
          std::max(out.peak_replica_fraction,
                   static_cast<double>(m.replica_blocks) / static_cast<double>(i.total_blocks));
    }
  }
  if (timed > 0) out.idle_fraction = idle_sum / static_cast<double>(timed);
}

void summarize_takeovers(const run_record& run, summary& out) {
  std::vector<double> resume;
  for (const takeover_record& t : run.takeovers) {
    ++out.takeovers;
    out.takeovers_from_replica += t.from_replica ? 1 : 0;
    if (t.resumed != never) resume.push_back(ms(t.resumed - t.at));
  }
  out.resume = describe(std::move(resume));
}

}  // namespace

double percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  const double pos = std::clamp(p, 0.0, 100.0) / 100.0 * static_cast<double>(sorted.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(pos));
  const std::size_t hi = std::min(lo + 1, sorted.size() - 1);
  const double frac = pos - static_cast<double>(lo);
  // Spelled out so that an infinite neighbour with weight 0 gives no NaN.
  if (frac == 0 || sorted[lo] == sorted[hi]) return sorted[lo];
  if (std::isinf(sorted[hi])) return sorted[hi];
  return sorted[lo] + frac * (sorted[hi] - sorted[lo]);
}

stats describe(std::vector<double> values) {
  stats s;
  if (values.empty()) return s;
  std::sort(values.begin(), values.end());
  s.count = values.size();
  s.mean = std::accumulate(values.begin(), values.end(), 0.0) / static_cast<double>(s.count);
  s.p50 = percentile(values, 50);
  s.p90 = percentile(values, 90);
  s.p99 = percentile(values, 99);
  s.max = values.back();
  return s;
}

summary summarize(const run_record& run, const slo_options& slo) {
  summary out;
  out.duration_s = std::chrono::duration<double>(run.makespan).count();
  summarize_requests(run, slo, out);
  summarize_instances(run, out);
  summarize_takeovers(run, out);
  return out;
}

}  // namespace accellm::metrics

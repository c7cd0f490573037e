// summary_json() from writers.hpp: the machine-readable side of a comparison.
#include "workload/metrics/writers.hpp"

#include <nlohmann/json.hpp>

#include <chrono>

namespace accellm::metrics {
namespace {

// ordered_json keeps insertion order, so the file reads top-down like the
// summary struct and is the same bytes on every run.
using json = nlohmann::ordered_json;

json to_json(const stats& s) {
  return json{{"count", s.count}, {"mean", s.mean}, {"p50", s.p50},
              {"p90", s.p90},     {"p99", s.p99},   {"max", s.max}};
}

json to_json(const slowdown_slo& s) {
  return json{{"metric", s.metric},
              {"percentile", s.percentile},
              {"target", s.target},
              {"measured", s.measured},
              {"met", s.met}};
}

json to_json(const summary& s) {
  json slowdown = json::array();
  for (const slowdown_slo& c : s.slowdown) slowdown.push_back(to_json(c));
  return json{{"requests", s.requests},
              {"completed", s.completed},
              {"duration_s", s.duration_s},
              {"throughput_rps", s.throughput_rps},
              {"output_tok_per_s", s.output_tok_per_s},
              {"ttft_ms", to_json(s.ttft)},
              {"tbt_ms", to_json(s.tbt)},
              {"tpot_ms", to_json(s.tpot)},
              {"jct_ms", to_json(s.jct)},
              {"slowdown", std::move(slowdown)},
              {"slowdown_all_met", s.slowdown_all_met},
              {"attainment", s.attainment},
              {"idle_fraction", s.idle_fraction ? nlohmann::ordered_json(*s.idle_fraction)
                                                : nlohmann::ordered_json(nullptr)},
              {"price_per_hour", s.price_per_hour},
              {"power_kw", s.power_kw},
              {"kv_bytes_sent", s.kv_bytes_sent},
              {"replicas_evicted", s.replicas_evicted},
              {"preemptions", s.preemptions},
              {"moves", s.moves},
              {"peak_replica_fraction", s.peak_replica_fraction}};
}

json to_json(const labelled_run& r) {
  json out = json::object();
  out["policy"] = r.run ? r.run->policy : std::string{};
  out["setting"] = r.run ? r.run->setting : std::string{};
  out["offered_rate"] = r.run ? r.run->offered_rate : 0.0;
  out["makespan_s"] = r.run ? std::chrono::duration<double>(r.run->makespan).count() : 0.0;
  out["summary"] = to_json(r.sum);
  return out;
}

}  // namespace

std::string summary_json(const std::vector<labelled_run>& runs) {
  try {
    json list = json::array();
    for (const labelled_run& r : runs) list.push_back(to_json(r));
    // replace: a policy name with invalid UTF-8 must not throw from dump().
    return json{{"runs", std::move(list)}}.dump(2, ' ', false, json::error_handler_t::replace);
  } catch (const nlohmann::json::exception& e) {
    // Not expected with the replace handler; keep the output valid JSON.
    return json{{"error", e.what()}}.dump(2, ' ', false, json::error_handler_t::replace);
  }
}

}  // namespace accellm::metrics

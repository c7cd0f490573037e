#include "simulator/compare.hpp"

#include "actors/tracer.hpp"

#include <algorithm>
#include <tuple>

namespace accellm::simulator {
namespace {

std::size_t missed(const metrics::summary& s) {
  return static_cast<std::size_t>(
      std::count_if(s.slowdown.begin(), s.slowdown.end(), [](const auto& x) { return !x.met; }));
}

// A run's part of a trace file name: "accellm", "vllm-chunked", "splitwise-p3".
std::string trace_part(const policy_choice& c) {
  if (c.name == "splitwise") return c.name + "-p" + std::to_string(c.prompt_instances);
  return c.chunked_prefill ? c.name + "-chunked" : c.name;
}

}  // namespace

bool better(const metrics::summary& a, const metrics::summary& b) {
  return std::tuple{-a.attainment, missed(a), a.jct.mean} <
         std::tuple{-b.attainment, missed(b), b.jct.mean};
}

std::vector<policy_choice> settings_of(const config::cluster_config& cluster,
                                       const std::string& policy) {
  std::vector<policy_choice> out;
  if (policy == "vllm") {
    if (cluster.policy.vllm != config::vllm_chunking::on) out.push_back({"vllm", false, 0});
    if (cluster.policy.vllm != config::vllm_chunking::off) out.push_back({"vllm", true, 0});
  } else if (policy == "splitwise") {
    auto sizes = cluster.policy.splitwise_prompt_instances;
    if (sizes.empty()) {
      for (std::uint32_t p = 1; p < cluster.instances; ++p) sizes.push_back(p);
    }
    for (const std::uint32_t p : sizes) out.push_back({"splitwise", false, p});
  } else {
    out.push_back({policy, false, 0});
  }
  return out;
}

result<std::vector<policy_outcome>> compare(const compare_options& o) {
  std::vector<policy_outcome> out;
  std::size_t runs = 0;
  for (const std::string& name : o.policies) runs += settings_of(o.cluster, name).size();
  for (const std::string& name : o.policies) {
    policy_outcome best;
    bool have = false;
    for (const policy_choice& choice : settings_of(o.cluster, name)) {
      run_options ro;
      ro.cluster = o.cluster;
      ro.policy = choice;
      ro.trace = o.trace;
      ro.offered_rate = o.offered_rate;
      ro.token_times = o.token_times;
      ro.faults = o.faults;
      if (!o.trace_file.empty()) {
        ro.trace_file =
            runs == 1 ? o.trace_file : actors::trace_file_for(o.trace_file, trace_part(choice));
      }
      const std::string what =
          name + (choice.name == "splitwise"
                      ? " prompt instances " + std::to_string(choice.prompt_instances)
                  : choice.chunked_prefill ? " chunked"
                                           : "");
      if (o.progress) o.progress(what);
      if (o.run_progress) {
        ro.progress = [&o, what](const run_progress& p) { o.run_progress(what, p); };
      }
      auto r = run_simulation(ro);
      if (!r) return std::move(r).err();
      auto sum = metrics::summarize(r->record, o.slo);
      best.tried.emplace_back(r->record.setting, sum);
      if (!have || better(sum, best.best_summary)) {
        best.best = std::move(*r);
        best.best_summary = std::move(sum);
        have = true;
      }
    }
    out.push_back(std::move(best));
  }
  return out;
}

}  // namespace accellm::simulator

#include "device/sim/calibration.hpp"

#include <algorithm>
#include <cmath>
#include <utility>

namespace accellm::device::sim {

batch profile_batch(const profile_point& p, phase kind) {
  batch b;
  b.items.reserve(p.batch);
  for (std::uint32_t r = 0; r < p.batch; ++r) {
    batch_item it;
    it.request = r + 1;
    it.kind = kind;
    it.context = kind == phase::prefill ? 0u : p.tokens;
    it.num_tokens = kind == phase::prefill ? p.tokens : 1u;
    it.wants_output = true;
    b.items.push_back(it);
  }
  return b;
}

result<std::vector<double>> relative_errors(const cost_model& model, const profile_table& table) {
  std::vector<double> out;
  out.reserve(table.prefill.size() + table.decode.size());
  for (phase kind : {phase::prefill, phase::decode}) {
    for (const profile_point& p : kind == phase::prefill ? table.prefill : table.decode) {
      auto ns = model.iteration_time(profile_batch(p, kind));
      if (!ns) return std::move(ns).err();
      const double ms = static_cast<double>(ns->count()) * 1e-6;
      out.push_back(std::fabs(ms - p.time_ms) / p.time_ms);
    }
  }
  return out;
}

error_summary summarise(std::vector<double> errors) {
  if (errors.empty()) return {};
  std::sort(errors.begin(), errors.end());
  return {errors.size(), errors[errors.size() / 2], errors.back()};
}

}  // namespace accellm::device::sim

#include "device/sim/profile_model.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <utility>

namespace accellm::device::sim {
namespace {

using curve = std::vector<std::pair<double, double>>;

// Anchors grouped by batch size, each group a curve sorted by x. Prefill
// curves are over total tokens (batch * tokens per request).
std::vector<profile_model::batch_curve> by_batch(const std::vector<profile_point>& points,
                                                 bool total_tokens) {
  std::map<std::uint32_t, curve> groups;
  for (const profile_point& p : points) {
    const double x = total_tokens ? double(p.batch) * p.tokens : double(p.tokens);
    groups[p.batch].emplace_back(x, p.time_ms);
  }
  std::vector<profile_model::batch_curve> out;
  for (auto& [batch, c] : groups) {
    std::sort(c.begin(), c.end());
    out.push_back({double(batch), std::move(c)});
  }
  return out;
}

// Each batch size's curve evaluated at x, then interpolated across batch sizes.
double lookup(const std::vector<profile_model::batch_curve>& curves, double batch, double x) {
  curve across;
  across.reserve(curves.size());
  for (const profile_model::batch_curve& c : curves) {
    across.emplace_back(c.batch, interpolate(c.points, x));
  }
  return std::max(0.0, interpolate(across, batch));
}

}  // namespace

double interpolate(std::span<const std::pair<double, double>> points, double x) noexcept {
  if (points.empty()) return 0.0;
  if (points.size() == 1) return points.front().second;
  // Segment [i - 1, i] holding x, or the first / last one outside the range.
  std::size_t i = 1;
  while (i + 1 < points.size() && x > points[i].first) ++i;
  const auto [x0, y0] = points[i - 1];
  const auto [x1, y1] = points[i];
  return y0 + (y1 - y0) * (x - x0) / (x1 - x0);
}

result<profile_model> profile_model::create(profile_table table, std::string name) {
  if (table.prefill.empty() || table.decode.empty()) {
    return fail(errc::invalid_argument, "profile " + name + " needs prefill and decode anchors");
  }
  for (const auto* points : {&table.prefill, &table.decode}) {
    std::set<std::pair<std::uint32_t, std::uint32_t>> seen;
    for (const profile_point& p : *points) {
      if (p.batch == 0 || p.tokens == 0 || !(p.time_ms > 0.0) || !std::isfinite(p.time_ms) ||
          !seen.insert({p.batch, p.tokens}).second) {
        return fail(errc::invalid_argument,
                    "profile " + name + ": anchor (batch " + std::to_string(p.batch) + ", tokens " +
                        std::to_string(p.tokens) + ") is zero, non-positive or repeated");
      }
    }
  }
  return profile_model{std::move(table), std::move(name)};
}

profile_model::profile_model(profile_table table, std::string name)
    : table_(std::move(table)),
      name_(std::move(name)),
      prefill_(by_batch(table_.prefill, true)),
      decode_(by_batch(table_.decode, false)) {}

std::string profile_model::describe() const {
  return "profile " + name_;
}

std::chrono::nanoseconds profile_model::prefill_time(std::uint32_t batch,
                                                     double total_tokens) const {
  return from_seconds(lookup(prefill_, batch, total_tokens) / 1e3);
}

std::chrono::nanoseconds profile_model::decode_time(std::uint32_t batch, double context) const {
  return from_seconds(lookup(decode_, batch, context) / 1e3);
}

result<cost_breakdown> profile_model::estimate(const batch& b) const {
  if (auto ok = check_batch_shape(b); !ok) return std::move(ok).err();
  std::uint32_t prefills = 0, decodes = 0;
  double prefill_tokens = 0, context_sum = 0;
  for (const batch_item& it : b.items) {
    if (it.kind == phase::prefill) {
      ++prefills;
      prefill_tokens += it.num_tokens;
    } else {
      ++decodes;
      context_sum += it.context;
    }
  }
  op_cost op;
  if (prefills > 0) {
    op.name = "prefill (profile)";
    op.time = prefill_time(prefills, prefill_tokens + decodes);
  } else {
    op.name = "decode (profile)";
    op.time = decode_time(decodes, context_sum / decodes);
  }
  cost_breakdown out;
  out.total = op.time;
  out.ops.push_back(std::move(op));
  return out;
}

}  // namespace accellm::device::sim

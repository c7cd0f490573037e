// Calibration: the profiles measured on an H100 by bench/gpu/run.sh
// (device/profiles/h100-cuda-*.csv, embedded like every shipped profile) and
// how well the simulator's profile model predicts them.
//
// Leave-one-out: for every interior anchor of a batch curve (a point with a
// neighbour on each side, so that it is interpolated, not extrapolated), the
// profile model is built from the table without that point and asked for it.
// The error is |predicted - measured| / measured; the median must stay under
// 5% and the worst under 15%. The roofline model of sim:h100 (unchanged; its
// documented numbers depend on it) is reported beside it for the record.
// Needs no GPU.
#include "device/model_spec.hpp"
#include "device/sim/embedded_profiles.hpp"
#include "device/sim/profile_model.hpp"
#include "device/sim/roofline_model.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <string>
#include <vector>

namespace accellm::device::sim {
namespace {

constexpr std::string_view prefix = "h100-cuda-";

std::vector<const embedded_profile*> measured() {
  std::vector<const embedded_profile*> out;
  for (const embedded_profile& p : embedded_profiles())
    if (p.name.substr(0, prefix.size()) == prefix) out.push_back(&p);
  return out;
}

// Predicted ms of point `i` of `rows` (prefill or decode) by a model built
// without it.
double leave_one_out(const profile_table& full, bool prefill, std::size_t i) {
  profile_table t = full;
  auto& rows = prefill ? t.prefill : t.decode;
  const profile_point p = rows[i];
  rows.erase(rows.begin() + static_cast<std::ptrdiff_t>(i));
  auto m = profile_model::create(t, "loo");
  EXPECT_TRUE(m.ok());
  if (!m.ok()) return 0.0;
  const auto ns = prefill ? m->prefill_time(p.batch, double(p.batch) * p.tokens)
                          : m->decode_time(p.batch, p.tokens);
  return static_cast<double>(ns.count()) * 1e-6;
}

// Indices of the points of `rows` that have a lower and a higher neighbour
// of the same batch size.
std::vector<std::size_t> interior(const std::vector<profile_point>& rows) {
  std::vector<std::size_t> out;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    bool lower = false, higher = false;
    for (const profile_point& q : rows)
      if (q.batch == rows[i].batch) {
        lower |= q.tokens < rows[i].tokens;
        higher |= q.tokens > rows[i].tokens;
      }
    if (lower && higher) out.push_back(i);
  }
  return out;
}

double roofline_ms(const profile_table& t, const profile_point& p, bool prefill) {
  const model_spec* spec = find_model(t.model);
  const hardware_spec* hw = find_hardware(t.hardware);
  if (spec == nullptr || hw == nullptr) return 0.0;
  auto m = roofline_model::create(*spec, *hw, deployment{t.tp ? t.tp : 1u});
  if (!m) return 0.0;
  batch b;
  for (std::uint32_t r = 0; r < p.batch; ++r)
    b.items.push_back(batch_item{r,
                                 prefill ? phase::prefill : phase::decode,
                                 prefill ? 0u : p.tokens,
                                 prefill ? p.tokens : 1u,
                                 {},
                                 true});
  auto ns = m->iteration_time(b);
  return ns ? static_cast<double>(ns->count()) * 1e-6 : 0.0;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

TEST(calibration, measured_h100_profiles_are_shipped) {
  const auto profiles = measured();
  ASSERT_FALSE(profiles.empty()) << "no device/profiles/h100-cuda-*.csv embedded";
  for (const embedded_profile* p : profiles) {
    auto t = parse_profile(p->csv, p->name);
    ASSERT_TRUE(t.ok()) << t.err().what();
    EXPECT_EQ(t->hardware, "h100") << p->name;
    EXPECT_NE(find_model(t->model), nullptr) << p->name;
    EXPECT_GE(t->prefill.size(), 3u) << p->name;
    EXPECT_GE(t->decode.size(), 6u) << p->name;
  }
}

TEST(calibration, profile_model_predicts_held_out_measurements) {
  for (const embedded_profile* p : measured()) {
    auto t = parse_profile(p->csv, p->name);
    ASSERT_TRUE(t.ok()) << t.err().what();
    std::vector<double> errors, roofline;
    for (bool prefill : {true, false}) {
      const auto& rows = prefill ? t->prefill : t->decode;
      for (std::size_t i : interior(rows)) {
        const double got = leave_one_out(*t, prefill, i);
        errors.push_back(std::fabs(got - rows[i].time_ms) / rows[i].time_ms);
      }
      for (const profile_point& q : rows)
        if (const double r = roofline_ms(*t, q, prefill); r > 0)
          roofline.push_back(std::fabs(r - q.time_ms) / q.time_ms);
    }
    ASSERT_FALSE(errors.empty()) << p->name;
    const double worst = *std::max_element(errors.begin(), errors.end());
    std::cout << p->name << ": profile model, leave-one-out over " << errors.size()
              << " points: median " << 100 * median(errors) << "%, worst " << 100 * worst
              << "%; sim:h100 roofline against all " << roofline.size() << " points: median "
              << (roofline.empty() ? 0 : 100 * median(roofline)) << "%\n";
    EXPECT_LT(median(errors), 0.05) << p->name;
    EXPECT_LT(worst, 0.15) << p->name;
  }
}

}  // namespace
}  // namespace accellm::device::sim

// What the recorder keeps for reports: every instance's roles over time and
// its busy time per window, consistent with the totals it always kept.
#include "simulator/sim_cluster.hpp"
#include "tests/simulator/sim_helpers.hpp"

#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <string>

namespace accellm::simulator {
namespace {

using namespace std::chrono_literals;

class SimReportData : public ::testing::TestWithParam<const char*> {};

TEST_P(SimReportData, RolesCoverTheRunAndBusyWindowsSumToBusy) {
  const run_options o = testing::two_instances_twenty_requests(GetParam());
  auto r = run_simulation(o);
  ASSERT_TRUE(r.ok()) << r.err().what();
  const metrics::run_record& rec = r->record;
  EXPECT_EQ(rec.busy_window, 100ms);  // the floor: the arrivals span only 0.4 s
  for (const metrics::instance_record& i : rec.instances) {
    SCOPED_TRACE(i.name);
    ASSERT_FALSE(i.roles.empty());
    EXPECT_EQ(i.roles.front().start, metrics::nanos{0});
    EXPECT_EQ(i.roles.back().end, rec.makespan);
    std::array<metrics::nanos, 3> in_role{};
    for (std::size_t k = 0; k < i.roles.size(); ++k) {
      const metrics::role_span& s = i.roles[k];
      EXPECT_LE(s.start, s.end);
      if (k > 0) {
        EXPECT_EQ(s.start, i.roles[k - 1].end) << "span " << k;
      }
      EXPECT_FALSE(s.pool.empty());
      in_role[static_cast<std::size_t>(s.role)] += s.end - s.start;
    }
    EXPECT_EQ(in_role, i.time_in_role);
    metrics::nanos busy{0};
    for (const metrics::nanos b : i.busy_windows) {
      EXPECT_LE(b, rec.busy_window);
      busy += b;
    }
    EXPECT_EQ(busy, i.busy);
  }
}

INSTANTIATE_TEST_SUITE_P(Policies, SimReportData, ::testing::Values("vllm", "splitwise", "accellm"),
                         [](const auto& p) { return std::string{p.param}; });

}  // namespace
}  // namespace accellm::simulator

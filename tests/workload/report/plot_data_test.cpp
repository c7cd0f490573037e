#include "workload/report/plot_data.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace accellm::report {
namespace {

TEST(PlotData, FewRolesGiveOneSegmentEach) {
  const std::vector<role_row> roles{{.start_s = 0, .end_s = 2, .role = "prefill", .pool = "pair0"},
                                    {.start_s = 2, .end_s = 5, .role = "decode", .pool = "pair0"}};
  const std::vector<segment> s = role_segments(roles, 5);
  ASSERT_EQ(s.size(), 2u);
  EXPECT_DOUBLE_EQ(s[1].start, 2);
  EXPECT_DOUBLE_EQ(s[1].end, 5);
  EXPECT_EQ(s[0].colour, role_colour("prefill"));
  EXPECT_EQ(s[1].title, "decode (pair0)");
}

TEST(PlotData, ManyRolesAreThinnedToTheLongestHeldPerColumn) {
  // 0..10 s: prefill for 0.7 s then decode for 0.3 s, every second; then
  // decode alone for 10 s. Ten columns of 2 s each.
  std::vector<role_row> roles;
  for (int k = 0; k < 10; ++k) {
    roles.push_back({.start_s = k + 0.0, .end_s = k + 0.7, .role = "prefill", .pool = ""});
    roles.push_back({.start_s = k + 0.7, .end_s = k + 1.0, .role = "decode", .pool = ""});
  }
  roles.push_back({.start_s = 10, .end_s = 20, .role = "decode", .pool = ""});
  const std::vector<segment> s = role_segments(roles, 20, 10);
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].title, "prefill");
  EXPECT_DOUBLE_EQ(s[0].start, 0);
  EXPECT_DOUBLE_EQ(s[0].end, 10);
  EXPECT_EQ(s[1].title, "decode");
  EXPECT_DOUBLE_EQ(s[1].end, 20);
}

TEST(PlotData, BusyLineSitsAtWindowMiddles) {
  const std::vector<point> p = busy_line(
      {{.start_s = 0, .end_s = 1, .fraction = 0.5}, {.start_s = 1, .end_s = 1.5, .fraction = 1}});
  ASSERT_EQ(p.size(), 2u);
  EXPECT_DOUBLE_EQ(p[0].x, 0.5);
  EXPECT_DOUBLE_EQ(p[1].x, 1.25);
  EXPECT_DOUBLE_EQ(p[1].y, 1);
}

TEST(PlotData, MemorySumsInstancesAsAPercentOfAllBlocks) {
  run_data r;
  r.makespan_s = 3;
  r.instances.resize(2);
  r.instances[0].total_blocks = 100;
  r.instances[1].total_blocks = 100;
  // Instance by instance, as the memory CSV lists them.
  r.memory = {{.time_s = 0, .instance = 0, .primary = 10, .replica = 0},
              {.time_s = 2, .instance = 0, .primary = 30, .replica = 4},
              {.time_s = 1, .instance = 1, .primary = 20, .replica = 2},
              {.time_s = 2, .instance = 1, .primary = 0, .replica = 0}};
  const memory_lines m = memory_over_time(r);
  ASSERT_EQ(m.primary.size(), 3u);
  EXPECT_DOUBLE_EQ(m.primary[0].y, 5);   // 10 of 200
  EXPECT_DOUBLE_EQ(m.primary[1].y, 15);  // 10 + 20
  EXPECT_DOUBLE_EQ(m.primary[2].x, 2);   // both changes at t=2 make one point
  EXPECT_DOUBLE_EQ(m.primary[2].y, 15);  // 30 + 0
  EXPECT_DOUBLE_EQ(m.replica[1].y, 1);
  EXPECT_DOUBLE_EQ(m.replica[2].y, 2);
}

TEST(PlotData, ThinnedMemoryKeepsThePeakOfEachColumn) {
  run_data r;
  r.makespan_s = 10;
  r.instances.resize(1);
  r.instances[0].total_blocks = 100;
  for (int k = 0; k < 100; ++k) {
    r.memory.push_back(
        {.time_s = k * 0.1, .instance = 0, .primary = k == 42 ? 90.0 : 1.0, .replica = 0});
  }
  const memory_lines m = memory_over_time(r, 10);
  ASSERT_EQ(m.primary.size(), 10u);
  EXPECT_DOUBLE_EQ(m.primary[4].y, 90);  // column [4, 5) s holds the spike at 4.2 s
  EXPECT_DOUBLE_EQ(m.primary[4].x, 4.5);
  EXPECT_DOUBLE_EQ(m.primary[3].y, 1);
}

TEST(PlotData, KnownPoliciesKeepTheirColours) {
  EXPECT_EQ(policy_colour("accellm", 7), policy_colour("accellm", 0));
  EXPECT_NE(policy_colour("vllm", 0), policy_colour("splitwise", 0));
  EXPECT_NE(policy_colour("mine", 0), policy_colour("mine", 1));
}

}  // namespace
}  // namespace accellm::report

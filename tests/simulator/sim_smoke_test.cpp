// One tiny run per policy, so that the actors (coordinator, instance
// managers, replicas, sim workers) run under ASan+UBSan in CI.
#include "simulator/sim_cluster.hpp"
#include "tests/simulator/sim_helpers.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

namespace accellm::simulator {
namespace {

using namespace std::chrono_literals;

class SimSmoke : public ::testing::TestWithParam<const char*> {};

TEST_P(SimSmoke, TwoInstancesTwentyRequests) {
  const run_options o = testing::two_instances_twenty_requests(GetParam());
  auto r = run_simulation(o);
  ASSERT_TRUE(r.ok()) << r.err().what();
  testing::expect_all_completed(*r, o.trace);
  EXPECT_EQ(r->record.policy, GetParam());
  EXPECT_GT(r->iterations, 0u);
  EXPECT_NE(r->trace_hash, 0u);
}

INSTANTIATE_TEST_SUITE_P(Policies, SimSmoke, ::testing::Values("vllm", "splitwise", "accellm"),
                         [](const auto& p) { return std::string{p.param}; });

TEST(SimSmoke, UnknownPolicyIsAConfigError) {
  run_options o;
  o.cluster = testing::cluster(2);
  o.policy.name = "fifo";
  o.trace = testing::spaced(1, 1ms, 10, 2);
  auto r = run_simulation(o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(std::string{r.err().what()}.find("fifo"), std::string::npos) << r.err().what();
}

}  // namespace
}  // namespace accellm::simulator

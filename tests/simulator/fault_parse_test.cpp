// --fault's text, and one small run with a kill under the sanitizers.
#include "simulator/sim_cluster.hpp"
#include "tests/simulator/sim_helpers.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <utility>

namespace accellm::simulator {
namespace {

using namespace std::chrono_literals;

TEST(ParseFault, KindInstanceAndTime) {
  EXPECT_EQ(*parse_fault("kill:3@10"),
            (fault{.what = fault::kind::kill, .instance = 3, .at = 10s}));
  EXPECT_EQ(*parse_fault("stop:0@2.5"),
            (fault{.what = fault::kind::stop, .instance = 0, .at = 2500ms}));
  EXPECT_EQ(parse_fault("kill:1@0")->at, 0s);
}

TEST(ParseFault, NamesWhatIsWrong) {
  const std::pair<const char*, const char*> bad[] = {
      {"kill3@10", "not KIND:INSTANCE@SECONDS"},
      {"kill:3", "not KIND:INSTANCE@SECONDS"},
      {"boom:3@10", "unknown kind 'boom'"},
      {"kill:x@10", "instance 'x' is not a number"},
      {"kill:@10", "instance '' is not"},
      {"kill:-1@10", "instance '-1' is not"},
      {"kill:3@", "time '' is not"},
      {"kill:3@soon", "time 'soon' is not"},
      {"kill:3@-2", "time '-2' is not"},
      {"kill:3@nan", "time 'nan' is not"},
  };
  for (const auto& [text, why] : bad) {
    auto f = parse_fault(text);
    ASSERT_FALSE(f) << text;
    EXPECT_EQ(f.err().code(), errc::invalid_argument);
    EXPECT_NE(f.err().message().find(why), std::string::npos) << f.err().message();
    EXPECT_NE(f.err().message().find(text), std::string::npos) << f.err().message();
  }
}

// A small accellm run where instance 1 dies mid-way: every request completes.
TEST(SimFaultsSmall, AKilledInstanceLosesNoRequest) {
  run_options o;
  o.cluster = testing::cluster(4);
  o.policy.name = "accellm";
  o.trace = testing::spaced(24, 25ms, 300, 20);
  o.faults = {{.what = fault::kind::kill, .instance = 1, .at = 300ms}};
  auto r = run_simulation(o);
  ASSERT_TRUE(r.ok()) << r.err().what();
  testing::expect_all_completed(*r, o.trace);
  EXPECT_FALSE(r->record.takeovers.empty());
}

}  // namespace
}  // namespace accellm::simulator

// The writers of the report's extra files: roles, utilisation, TBT histogram.
#include "workload/metrics/writers.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace accellm::metrics {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

class ReportWriters : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::path{::testing::TempDir()} / (std::string{"accellm_report_writers_"} + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  static std::string read(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
  }

  fs::path dir_;
};

// Two instances over 2.5 s; the second switches role at 1 s under a pool
// name that needs CSV quoting.
run_record two_instances() {
  run_record run;
  run.makespan = 2500ms;
  run.busy_window = 1s;
  run.instances.resize(2);
  for (instance_id i = 0; i < 2; ++i) run.instances[i].id = i;
  run.instances[0].roles = {
      {.start = 0ms, .end = 2500ms, .role = messages::role::mixed, .pool = "mixed"}};
  run.instances[1].roles = {
      {.start = 0ms, .end = 1s, .role = messages::role::prefill, .pool = "a,b"},
      {.start = 1s, .end = 2500ms, .role = messages::role::decode, .pool = "token"}};
  run.instances[0].busy_windows = {250ms, 1s, 500ms};
  run.instances[1].busy_windows = {100ms};
  return run;
}

TEST_F(ReportWriters, RolesCsvExact) {
  const auto path = dir_ / "roles.csv";
  ASSERT_TRUE(write_roles_csv(path, two_instances()));
  EXPECT_EQ(read(path),
            "instance,start_s,end_s,role,pool\n"
            "0,0.000000,2.500000,mixed,mixed\n"
            "1,0.000000,1.000000,prefill,\"a,b\"\n"
            "1,1.000000,2.500000,decode,token\n");
}

TEST_F(ReportWriters, UtilisationCsvCoversTheMakespanWithAShortLastWindow) {
  const auto path = dir_ / "utilisation.csv";
  ASSERT_TRUE(write_utilisation_csv(path, two_instances()));
  EXPECT_EQ(read(path),
            "instance,start_s,end_s,busy_fraction\n"
            "0,0.000000,1.000000,0.2500\n"
            "0,1.000000,2.000000,1.0000\n"
            "0,2.000000,2.500000,1.0000\n"
            "1,0.000000,1.000000,0.1000\n"
            "1,1.000000,2.000000,0.0000\n"
            "1,2.000000,2.500000,0.0000\n");
}

TEST_F(ReportWriters, UtilisationCsvWithoutWindowsIsTheHeaderOnly) {
  run_record run = two_instances();
  run.busy_window = 0ms;
  const auto path = dir_ / "utilisation.csv";
  ASSERT_TRUE(write_utilisation_csv(path, run));
  EXPECT_EQ(read(path), "instance,start_s,end_s,busy_fraction\n");
}

TEST_F(ReportWriters, TbtHistogramBinsEveryGapTwentyBinsPerDecade) {
  run_record run;
  request_record a, b;
  // Gaps: 10 ms (exactly an edge: bin 80), 10.5 ms (same bin), 100 ms (bin 100).
  a.token_times = {0ms, 10ms, nanos{20'500'000}};
  b.token_times = {1s, 1100ms};
  run.requests = {a, b, request_record{}};
  const auto path = dir_ / "tbt.csv";
  ASSERT_TRUE(write_tbt_histogram_csv(path, run));
  EXPECT_EQ(read(path),
            "lo_ms,hi_ms,count\n"
            "10.000000,11.220185,2\n"
            "100.000000,112.201845,1\n");
}

TEST_F(ReportWriters, TbtHistogramPutsTinyGapsInTheFirstBin) {
  run_record run;
  request_record a;
  a.token_times = {0ms, nanos{500}, nanos{1500}};  // 0.0005 ms and 0.001 ms
  run.requests = {a};
  const auto path = dir_ / "tbt.csv";
  ASSERT_TRUE(write_tbt_histogram_csv(path, run));
  EXPECT_EQ(read(path),
            "lo_ms,hi_ms,count\n"
            "0.000000,0.001000,1\n"
            "0.001000,0.001122,1\n");
}

}  // namespace
}  // namespace accellm::metrics

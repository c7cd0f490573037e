#include "workload/metrics/writers.hpp"

#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace accellm::metrics {
namespace {

// The line of `table` that starts with `label`, or "" when there is none.
std::string row(const std::string& table, const std::string& label) {
  std::istringstream in(table);
  std::string line;
  for (int i = 0; i < 100 && std::getline(in, line); ++i) {
    if (line.rfind(label, 0) == 0) return line;
  }
  return "";
}

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

summary made_up(double jct_mean, double throughput, double ttft_p99) {
  summary s;
  s.requests = 100;
  s.completed = 90;
  s.jct.mean = jct_mean;
  s.throughput_rps = throughput;
  s.ttft.p99 = ttft_p99;
  return s;
}

run_record named(std::string policy, std::string setting) {
  run_record r;
  r.policy = std::move(policy);
  r.setting = std::move(setting);
  return r;
}

struct three_runs {
  run_record accellm = named("accellm", "pairs 4");
  run_record splitwise = named("splitwise", "prompt:token 3:5");
  run_record vllm = named("vllm", "chunked 512");
};

TEST(FormatComparison, GainAgainstTheBestOtherRun) {
  const three_runs r;
  const std::string table = format_comparison({{&r.vllm, made_up(100, 4, 500)},
                                               {&r.accellm, made_up(80, 5, 0)},
                                               {&r.splitwise, made_up(90, 6, 700)}});
  // Header: policies, then settings on the second line, then the gain column.
  EXPECT_NE(table.find("accellm gain"), std::string::npos) << table;
  EXPECT_NE(table.find("prompt:token 3:5"), std::string::npos);
  EXPECT_LT(table.find("splitwise"), table.find("prompt:token 3:5"));
  // Lower is better: (90 - 80) / 90 = +11.1%.
  EXPECT_TRUE(ends_with(row(table, "JCT mean (ms)"), "+11.1%")) << table;
  EXPECT_NE(row(table, "JCT mean (ms)").find("80.00"), std::string::npos);
  // Higher is better: (5 - 6) / 6 = -16.7%.
  EXPECT_TRUE(ends_with(row(table, "throughput (req/s)"), "-16.7%")) << table;
  // Lower is better against the best (500): +100%.
  EXPECT_TRUE(ends_with(row(table, "TTFT p99 (ms)"), "+100.0%")) << table;
  // All zero: no gain to show.
  EXPECT_TRUE(ends_with(row(table, "preemptions"), " 0")) << table;
  EXPECT_TRUE(ends_with(row(table, "completed"), "+0.0%"));
  EXPECT_NE(row(table, "completed").find("90/100"), std::string::npos);
}

TEST(FormatComparison, NoGainWithoutAnAccellmRun) {
  const three_runs r;
  const std::string table =
      format_comparison({{&r.vllm, made_up(100, 4, 1)}, {&r.splitwise, made_up(90, 6, 1)}});
  EXPECT_FALSE(row(table, "JCT mean (ms)").empty());
  EXPECT_EQ(row(table, "JCT mean (ms)").find('%'), std::string::npos) << table;
  const std::string alone = format_comparison({{&r.accellm, made_up(80, 5, 1)}});
  EXPECT_EQ(row(alone, "JCT mean (ms)").find('%'), std::string::npos) << alone;
}

TEST(FormatComparison, ColumnsLineUp) {
  const three_runs r;
  const std::string table =
      format_comparison({{&r.accellm, made_up(80, 5, 1)}, {&r.splitwise, made_up(123456.5, 6, 1)}});
  // Every row with a gain ends at the same column.
  const std::size_t width = row(table, "JCT mean (ms)").size();
  EXPECT_EQ(row(table, "throughput (req/s)").size(), width) << table;
  EXPECT_EQ(row(table, "completed").size(), width) << table;
}

}  // namespace
}  // namespace accellm::metrics

// The progress meter of long runs: a bar redrawn in place on a terminal,
// plain throttled lines elsewhere; the clock is a fake one.
#include "cli/progress.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <sstream>
#include <string>

namespace accellm::cli {
namespace {

using namespace std::chrono_literals;
using time_point = std::chrono::steady_clock::time_point;

std::size_t count(const std::string& s, char c) {
  return static_cast<std::size_t>(std::count(s.begin(), s.end(), c));
}

TEST(ProgressBar, ShowsShareSpeedAndTimeLeft) {
  const std::string line = render_bar("accellm", 0.45, 120.4, 2.2, 20);
  EXPECT_EQ(line.rfind("[#########...........]  45%  accellm", 0), 0u) << line;
  EXPECT_NE(line.find("120 sim-s/s"), std::string::npos) << line;
  EXPECT_NE(line.find("ETA 3 s"), std::string::npos) << line;  // rounded up
  const std::string unknown = render_bar("vllm", 1.7, -1, -1, 4);
  EXPECT_EQ(unknown, "[####] 100%  vllm") << "clamped, no speed or ETA yet";
  EXPECT_EQ(render_bar("x", -3, -1, -1, 4), "[....]   0%  x");
}

class ProgressMeter : public ::testing::Test {
 protected:
  progress_meter make(bool terminal) {
    return progress_meter{out_, terminal, [this] { return now_; }, 3s};
  }
  std::ostringstream out_;
  time_point now_{};
};

TEST_F(ProgressMeter, OnATerminalOneLineIsRedrawnAndClearedAtTheEnd) {
  auto m = make(true);
  m.update("accellm", 0s, 60s, 0, 100);
  now_ += 1s;
  m.update("accellm", 30s, 60s, 50, 100);
  const std::string s = out_.str();
  EXPECT_EQ(count(s, '\r'), 2u);
  EXPECT_EQ(count(s, '\n'), 0u) << "redrawn in place";
  EXPECT_NE(s.find(" 50%  accellm  30 sim-s/s  ETA 1 s"), std::string::npos) << s;
  now_ += 50ms;
  m.update("accellm", 31s, 60s, 51, 100);
  EXPECT_EQ(out_.str(), s) << "at most ten redraws a second";
  m.finish();
  EXPECT_EQ(out_.str().substr(s.size()), "\r\x1b[K");
  m.finish();  // nothing left to clear
  EXPECT_EQ(out_.str().size(), s.size() + 4);
}

TEST_F(ProgressMeter, ElsewherePlainLinesAtMostEveryFewSeconds) {
  auto m = make(false);
  m.update("vllm", 1s, 60s, 1, 100);
  now_ += 1s;
  m.update("vllm", 20s, 60s, 10, 100);
  EXPECT_EQ(out_.str(), "") << "not yet three seconds";
  now_ += 2s;
  m.update("vllm", 40s, 60s, 30, 100);
  EXPECT_EQ(out_.str(),
            "simulate:   vllm: 40 s of 60 s simulated, 30/100 requests done, "
            "13 sim-s/s\n");
  EXPECT_EQ(count(out_.str(), '\r'), 0u) << "no terminal control in a log";
  now_ += 1s;
  m.update("splitwise", 0s, 60s, 0, 100);  // a new run starts its own clock
  now_ += 2s;
  m.update("splitwise", 10s, 60s, 5, 100);
  EXPECT_EQ(count(out_.str(), '\n'), 1u);
  now_ += 1s;
  m.update("splitwise", 20s, 60s, 9, 100);
  EXPECT_EQ(count(out_.str(), '\n'), 2u);
  m.finish();
  EXPECT_EQ(count(out_.str(), '\n'), 2u);
}

}  // namespace
}  // namespace accellm::cli

namespace accellm::cli {
namespace {

// A live run (accellm load, up): wall time of the arrivals' span, and the
// speed in requests finished per second.
TEST(ProgressMeterLive, ShowsRequestsPerSecond) {
  std::ostringstream term, log;
  time_point now{};
  auto clock = [&now] { return now; };
  progress_meter bar{term, true, clock, 3s, meter_kind::live};
  progress_meter plain{log, false, clock, 3s, meter_kind::live};
  bar.update("load conv", 0s, 20s, 0, 80);
  plain.update("load conv", 0s, 20s, 0, 80);
  now += 4s;
  bar.update("load conv", 4s, 20s, 18, 80);
  plain.update("load conv", 4s, 20s, 18, 80);
  EXPECT_NE(term.str().find(" 22%  load conv  4.5 req/s  ETA 14 s"), std::string::npos)
      << term.str();
  EXPECT_EQ(log.str(),
            "load:       load conv: 4 s of 20 s of arrivals, 18/80 requests done, "
            "4.5 req/s\n");
}

}  // namespace
}  // namespace accellm::cli

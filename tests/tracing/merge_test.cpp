#include "tracing/merge.hpp"

#include "tests/tracing/fixture.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace accellm::tracing {
namespace {

using namespace test;

TEST(Merge, PutsOneLogsEventsInTimeOrder) {
  auto m = merge({known_log()});
  ASSERT_TRUE(m) << m.err().what();
  EXPECT_EQ(m->clock, "virtual");
  ASSERT_EQ(m->events.size(), known_run().size());
  EXPECT_TRUE(std::is_sorted(
      m->events.begin(), m->events.end(),
      [](const timed_event& a, const timed_event& b) { return a.ev.time_ns < b.ev.time_ns; }));
  EXPECT_EQ(m->start_ns, 1'000'000u);
  EXPECT_EQ(m->end_ns, 7'600'000u);
  ASSERT_EQ(m->logs.size(), 1u);
  EXPECT_EQ(m->logs[0].offset_ns, 0);
  EXPECT_TRUE(m->warnings.empty());
}

// Same-time events keep the order they were written in (the two MoveDecodes).
TEST(Merge, TiesKeepWriteOrder) {
  auto m = merge({known_log()});
  ASSERT_TRUE(m);
  std::vector<std::string> at_6ms;
  for (const auto& t : m->events) {
    if (t.ev.time_ns == 6'000'000) at_6ms.push_back(t.ev.receiver);
  }
  EXPECT_EQ(at_6ms, (std::vector<std::string>{"im:1", "im:0"}));
}

TEST(Merge, LogsOfOneHostShareTheirClock) {
  auto coord = log_of("c.trace", "coordinator", "hostA", "steady",
                      {message(10'000, coordinator, im0, msg_type::assign_prefill, 1, 96)});
  auto worker = log_of("w0.trace", "w0", "hostA", "steady",
                       {message(5'000, im0, coordinator, msg_type::request_done, 1, 40)});
  auto m = merge({coord, worker});
  ASSERT_TRUE(m) << m.err().what();
  EXPECT_EQ(m->logs[0].offset_ns, 0);
  EXPECT_EQ(m->logs[1].offset_ns, 0);
  EXPECT_EQ(m->logs[1].basis, "same host as c.trace");
  EXPECT_TRUE(m->warnings.empty());
  EXPECT_EQ(m->events[0].ev.time_ns, 5'000u);
  EXPECT_EQ(m->events[0].log, 1u);
}

// The coordinator (host A) got the worker's (host B) reports 9000 and 8500 ns
// after the worker's clock said they were sent: offset 8500 (the smaller).
TEST(Merge, AnotherHostIsShiftedByTheSmallestSampleDelta) {
  auto coord = log_of("c.trace", "coordinator", "hostA", "steady",
                      {clock_sample(10'000, "coordinator", "w1", 1'000),
                       message(12'000, coordinator, im1, msg_type::start_decode, 1, 100),
                       clock_sample(20'500, "coordinator", "w1", 12'000)});
  auto worker = log_of("w1.trace", "w1", "hostB", "steady",
                       {message(3'000, im1, coordinator, msg_type::request_done, 1, 40),
                        message(4'000, im1, coordinator, msg_type::iteration_report, 0, 120)});
  auto m = merge({worker, coord});
  ASSERT_TRUE(m) << m.err().what();
  EXPECT_EQ(m->logs[1].offset_ns, 0);
  EXPECT_EQ(m->logs[1].basis, "reference");
  EXPECT_EQ(m->logs[0].offset_ns, 8'500);
  EXPECT_EQ(m->logs[0].samples, 2u);
  EXPECT_NE(m->logs[0].basis.find("min over 2 clock samples in c.trace"), std::string::npos)
      << m->logs[0].basis;
  std::vector<std::uint64_t> times;
  for (const auto& t : m->events) times.push_back(t.ev.time_ns);
  EXPECT_EQ(times, (std::vector<std::uint64_t>{10'000, 11'500, 12'000, 12'500, 20'500}));
  EXPECT_TRUE(m->warnings.empty());
}

TEST(Merge, AHostWithoutSamplesKeepsOffsetZeroWithAWarning) {
  auto coord = log_of("c.trace", "coordinator", "hostA", "steady",
                      {clock_sample(10'000, "coordinator", "w1", 1'000)});
  auto lone = log_of("w2.trace", "w2", "hostC", "steady",
                     {message(3'000, im1, coordinator, msg_type::request_done, 1, 40)});
  auto m = merge({coord, lone});
  ASSERT_TRUE(m) << m.err().what();
  EXPECT_EQ(m->logs[1].offset_ns, 0);
  ASSERT_EQ(m->warnings.size(), 1u);
  EXPECT_NE(m->warnings[0].find("w2.trace (node w2, host hostC): no clock samples"),
            std::string::npos)
      << m->warnings[0];
}

// A worker whose clock is far ahead: offsets go negative, then every offset
// is lifted so that times stay unsigned, and the order is still right.
TEST(Merge, NegativeOffsetsAreLiftedAboveZero) {
  auto coord = log_of("c.trace", "coordinator", "hostA", "steady",
                      {clock_sample(1'000, "coordinator", "w1", 1'000'000),
                       message(1'500, coordinator, im1, msg_type::start_decode, 1, 100)});
  auto worker = log_of("w1.trace", "w1", "hostB", "steady",
                       {message(998'000, im1, coordinator, msg_type::request_done, 1, 40)});
  auto m = merge({coord, worker});
  ASSERT_TRUE(m) << m.err().what();
  EXPECT_EQ(m->logs[1].offset_ns - m->logs[0].offset_ns, -999'000);
  EXPECT_EQ(m->logs[0].offset_ns, 1'000);  // 998'000 - 999'000 = -1'000 lifted to 0
  EXPECT_EQ(m->events.front().ev.sender, "im:1");
  EXPECT_EQ(m->events.front().ev.time_ns, 0u);
  ASSERT_EQ(m->warnings.size(), 1u);
  EXPECT_EQ(m->warnings[0], "offsets raised by 1000 ns so that no event lands before time 0");
}

// A daemon's worker sends KV rows to its partner's replica without knowing
// the partner's node: merge fills it from where that instance's actors send.
TEST(Merge, FillsAMissingReceiverNodeFromTheReceiversInstance) {
  auto w0 =
      log_of("w0.trace", "w0", "hostA", "steady",
             {message(1'000, worker0, endpoint{"kv:1", ""}, msg_type::kv_delta_batch, 0, 640),
              message(2'000, worker0, endpoint{"kv:9", ""}, msg_type::kv_delta_batch, 0, 640)});
  auto w1 = log_of(
      "w1.trace", "w1", "hostA", "steady",
      {message(1'500, endpoint{"im:1", "w1"}, coordinator, msg_type::iteration_report, 0, 264)});
  auto m = merge({w0, w1});
  ASSERT_TRUE(m) << m.err().what();
  ASSERT_EQ(m->events.size(), 3u);
  EXPECT_EQ(m->events[0].ev.receiver_node, "w1");
  EXPECT_EQ(m->events[1].ev.receiver_node, "coordinator");  // as written
  EXPECT_EQ(m->events[2].ev.receiver_node, "(unknown)");
}

TEST(Merge, RefusesVirtualAndSteadyLogsTogether) {
  auto sim = known_log();
  auto daemon = log_of("c.trace", "coordinator", "hostA", "steady", {});
  auto m = merge({sim, daemon});
  ASSERT_FALSE(m);
  EXPECT_EQ(m.err().code(), errc::invalid_argument);
  EXPECT_NE(m.err().message().find("cannot merge sim.trace (virtual clock) with c.trace (steady"),
            std::string::npos)
      << m.err().message();
}

TEST(Merge, RefusesNoLogsAndUnknownClocks) {
  auto none = merge({});
  ASSERT_FALSE(none);
  EXPECT_EQ(none.err().code(), errc::invalid_argument);
  auto odd = merge({log_of("x.trace", "x", "h", "sundial", {})});
  ASSERT_FALSE(odd);
  EXPECT_EQ(odd.err().code(), errc::malformed);
  EXPECT_NE(odd.err().message().find("x.trace: unknown clock 'sundial'"), std::string::npos);
}

}  // namespace
}  // namespace accellm::tracing

#include "tracing/summary.hpp"

#include "tests/tracing/fixture.hpp"

#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

namespace accellm::tracing {
namespace {

using namespace test;

class Summary : public ::testing::Test {
 protected:
  void SetUp() override {
    auto m = merge({known_log()});
    ASSERT_TRUE(m) << m.err().what();
    m_ = std::move(*m);
  }
  merged m_;
};

TEST_F(Summary, CountsMessagesAndBytesByType) {
  auto s = summarize(m_, 10);
  EXPECT_EQ(s.events, 21u);
  EXPECT_EQ(s.messages, 16u);
  EXPECT_EQ(s.spans, 5u);
  EXPECT_EQ(s.clock_samples, 0u);
  EXPECT_EQ(s.by_type["KvLayer"], (message_tally{1, 1'048'576}));
  EXPECT_EQ(s.by_type["SubmitRequest"], (message_tally{2, 400}));
  EXPECT_EQ(s.by_type["RequestDone"], (message_tally{4, 160}));
  EXPECT_EQ(s.by_type["MoveDecode"], (message_tally{2, 180}));
  EXPECT_EQ(s.by_type.size(), 10u);
}

TEST_F(Summary, CountsMessagesByNodePair) {
  auto s = summarize(m_, 10);
  EXPECT_EQ((s.by_pair[{"i0", "i1"}]), (message_tally{1, 1'048'576}));
  EXPECT_EQ((s.by_pair[{"i1", "i0"}]), (message_tally{1, 4096}));
  EXPECT_EQ((s.by_pair[{"client", "coordinator"}]), (message_tally{2, 400}));
  EXPECT_EQ((s.by_pair[{"i0", "i0"}]), (message_tally{2, 144}));  // Execute, IterationDone
}

TEST_F(Summary, ListsTheSlowestRequestsWithTheirPath) {
  auto s = summarize(m_, 1);
  EXPECT_EQ(s.requests, 2u);
  EXPECT_EQ(s.done, 2u);
  ASSERT_EQ(s.slowest.size(), 1u);
  const auto& r = s.slowest[0];
  EXPECT_EQ(r.id, 7u);
  EXPECT_EQ(r.end_to_end_ns(), 6'600'000u);
  EXPECT_EQ(r.path_text(), "prefill im:0, decode im:1, move im:1 -> im:0");
  EXPECT_EQ(summarize(m_, 10).slowest.size(), 2u);
}

TEST_F(Summary, PrintsTotalsTablesAndOffsets) {
  m_.logs[0].dropped = 3;
  m_.logs[0].salvaged = true;
  std::ostringstream out;
  print_summary(m_, summarize(m_, 5), out);
  auto text = out.str();
  for (const char* want :
       {"sim.trace: node sim, host box, 21 events, offset +0 ns (virtual clock (shared))",
        "21 events: 16 messages, 5 iteration spans, 0 clock samples; 0.007 s",
        "dropped events: 3; logs without log_end: 0; salvaged logs: 1", "KvLayer", "1048576",
        "i0 -> i1", "slowest requests (2 of 2 done, 2 seen)",
        "prefill im:0, decode im:1, move im:1 -> im:0"}) {
    EXPECT_NE(text.find(want), std::string::npos) << "missing: " << want << "\n" << text;
  }
  // request 7 (6.600 ms) comes before request 8 (1.000 ms)
  EXPECT_LT(text.find("6.600 ms"), text.find("1.000 ms")) << text;
}

TEST(SummaryTakeover, ASecondStartDecodeIsATakeover) {
  auto run = known_run();
  run.push_back(
      message(7'000'000, coordinator, endpoint{"im:2", "i2"}, msg_type::start_decode, 7, 100));
  auto m = merge({log_of("t.trace", "sim", "box", "virtual", run)});
  ASSERT_TRUE(m);
  auto s = summarize(*m, 1);
  ASSERT_EQ(s.slowest.size(), 1u);
  EXPECT_EQ(s.slowest[0].path_text(),
            "prefill im:0, decode im:1, move im:1 -> im:0, takeover im:0 -> im:2");
}

trace_event noted(trace_event e, std::string note) {
  e.note = std::move(note);
  return e;
}

// As a simulation moves: MoveDecode to the source, the source hands the
// request back, StartDecode at the destination. One move step, with the
// reason from the MoveDecode's note.
TEST(SummaryMove, ASimulatedMoveIsOneStep) {
  std::vector<trace_event> run = {
      message(1'000, client, coordinator, msg_type::submit_request, 3, 72),
      message(1'000, coordinator, im0, msg_type::assign_prefill, 3, 96),
      message(5'000, coordinator, im0, msg_type::start_decode, 3, 80),
      noted(message(9'000, coordinator, im0, msg_type::move_decode, 3, 80), "balance"),
      noted(message(9'500, im0, coordinator, msg_type::move_decode, 3, 80), "balance"),
      message(9'500, coordinator, im1, msg_type::start_decode, 3, 80),
      message(20'000, im1, coordinator, msg_type::request_done, 3, 64),
  };
  auto m = merge({log_of("m.trace", "sim", "box", "virtual", run)});
  ASSERT_TRUE(m);
  auto s = summarize(*m, 1);
  ASSERT_EQ(s.slowest.size(), 1u);
  EXPECT_EQ(s.slowest[0].path_text(), "prefill im:0, decode im:0, move im:0 -> im:1 (balance)");
  EXPECT_EQ(s.slowest[0].path.back().time_ns, 9'500u);  // when it landed
}

// The tracer's notes: a StartDecode noted takeover is one even as the
// request's first decode (its prefill instance was lost), and from_replica
// is shown.
TEST(SummaryMove, NotesNameTakeoversAndReplicas) {
  std::vector<trace_event> run = {
      message(1'000, coordinator, im0, msg_type::assign_prefill, 3, 96),
      noted(message(5'000, coordinator, im1, msg_type::start_decode, 3, 80), "takeover"),
      message(20'000, im1, coordinator, msg_type::request_done, 3, 64),
      message(1'000, coordinator, im0, msg_type::assign_prefill, 4, 96),
      noted(message(5'000, coordinator, im1, msg_type::start_decode, 4, 80), "from_replica"),
      message(9'000, im1, coordinator, msg_type::request_done, 4, 64),
  };
  auto m = merge({log_of("n.trace", "sim", "box", "virtual", run)});
  ASSERT_TRUE(m);
  auto s = summarize(*m, 2);
  ASSERT_EQ(s.slowest.size(), 2u);
  EXPECT_EQ(s.slowest[0].path_text(), "prefill im:0, takeover im:0 -> im:1");
  EXPECT_EQ(s.slowest[1].path_text(), "prefill im:0, decode im:1 (from_replica)");
}

}  // namespace
}  // namespace accellm::tracing

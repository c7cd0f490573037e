#include "tests/tracing/fixture.hpp"
#include "tracing/summary.hpp"

#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

namespace accellm::tracing {
namespace {

using namespace test;

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in{text};
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

merged known() {
  auto m = merge({known_log()});
  EXPECT_TRUE(m);
  return std::move(*m);
}

TEST(Follow, PrintsTheRequestsMessagesInTimeOrder) {
  std::ostringstream out;
  ASSERT_TRUE(follow(known(), 7, with_spans::no, out));
  auto lines = lines_of(out.str());
  ASSERT_EQ(lines.size(), 2u + 9u) << out.str();
  EXPECT_EQ(lines[0], "request 7: submitted at 0.001000 s, 9 messages, end to end 6.600 ms");
  EXPECT_EQ(lines[1], "path: prefill im:0, decode im:1, move im:1 -> im:0");
  std::vector<std::string> want = {"+0.000 ms  client -> coordinator",
                                   "+0.100 ms  coordinator -> im:0",
                                   "+1.000 ms  worker:0 -> kv:1",
                                   "+3.400 ms  coordinator -> im:1",
                                   "+4.000 ms  worker:1 -> kv:0",
                                   "+5.000 ms  coordinator -> im:1",
                                   "+5.000 ms  coordinator -> im:0",
                                   "+6.500 ms  im:0 -> coordinator",
                                   "+6.600 ms  client"};
  for (std::size_t i = 0; i < want.size(); ++i) {
    auto line = lines[2 + i];
    line.erase(0, line.find_first_not_of(' '));
    if (i + 1 == want.size()) {
      EXPECT_EQ(line.rfind("+6.600 ms  coordinator -> client", 0), 0u) << line;
      continue;
    }
    EXPECT_EQ(line.rfind(want[i], 0), 0u) << "line " << i << ": " << line;
  }
  EXPECT_NE(lines[4].find("KvLayer"), std::string::npos);
  EXPECT_NE(lines[4].find("1048576 B  (i0 -> i1), transit 0.250 ms"), std::string::npos)
      << lines[4];
}

// With spans: instance 0's prefill and its decode after the move, instance
// 1's two decode iterations; nothing of instance 0 while it did not hold 7.
TEST(Follow, AddsTheIterationsOfTheInstancesThatHeldIt) {
  std::ostringstream out;
  ASSERT_TRUE(follow(known(), 7, with_spans::yes, out));
  std::vector<std::string> spans;
  for (const auto& line : lines_of(out.str())) {
    auto at = line.find("[instance ");
    if (at != std::string::npos) spans.push_back(line.substr(at, 28));
  }
  EXPECT_EQ(spans, (std::vector<std::string>{
                       "[instance 0 prefill iteratio", "[instance 1 decode iteration",
                       "[instance 1 decode iteration", "[instance 0 decode iteration"}))
      << out.str();
  EXPECT_NE(out.str().find("[instance 0 prefill iteration, 3.000 ms: 512 prefill tokens, 0 decode "
                           "requests]"),
            std::string::npos);
}

TEST(Follow, AnUnknownRequestIsAnErrorNamingIt) {
  std::ostringstream out;
  auto st = follow(known(), 99, with_spans::yes, out);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.err().code(), errc::not_found);
  EXPECT_EQ(st.err().message(), "request 99 is not in the trace (2 requests, ids 7 to 8)");
  EXPECT_TRUE(out.str().empty());
}

}  // namespace
}  // namespace accellm::tracing

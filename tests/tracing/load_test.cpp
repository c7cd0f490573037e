// tracing::load on files: logs written by actors::tracer, and broken ones
// written byte by byte.
#include "messages/codec.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/tracing/fixture.hpp"
#include "tracing/merge.hpp"
#include "tracing/perfetto.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace accellm::tracing {
namespace {

using namespace std::chrono_literals;
using actors::time_point;
using bytes = std::vector<std::uint8_t>;

class Load : public ::testing::Test {
 protected:
  std::string path(const std::string& name) const { return dir_.file(name); }
  std::string write(const std::string& name, const bytes& b) const {
    return dir_.write_bytes(name, b);
  }

  accellm::testing::temp_dir dir_;
};

bytes magic() {
  return {'A', 'C', 'L', 'M', 'T', 'R', 'C', '1'};
}

/// One frame: the little-endian u64 length, then the encoded event.
void append_frame(bytes& out, const messages::trace_event& e) {
  auto blob = messages::encode(e);
  std::uint64_t n = blob.bytes.size();
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<std::uint8_t>(n >> (8 * i)));
  for (auto b : blob.bytes) out.push_back(static_cast<std::uint8_t>(b));
}

messages::trace_event log_start() {
  messages::trace_event e;
  e.kind = messages::trace_kind::log_start;
  e.sender_node = "sim";
  e.receiver_node = "box";
  e.note = "virtual";
  return e;
}

/// magic, log_start and two messages of request 7.
bytes good_log() {
  auto out = magic();
  append_frame(out, log_start());
  auto run = test::known_run();
  append_frame(out, run[0]);
  append_frame(out, run[1]);
  return out;
}

TEST_F(Load, ReadsAHandWrittenLog) {
  auto m = load({write("good.trace", good_log())}, {});
  ASSERT_TRUE(m) << m.err().what();
  EXPECT_EQ(m->events.size(), 2u);
  EXPECT_EQ(m->logs[0].node, "sim");
  EXPECT_FALSE(m->logs[0].complete);  // no log_end
}

TEST_F(Load, AMissingFileIsNamed) {
  auto m = load({path("nope.trace")}, {});
  ASSERT_FALSE(m);
  EXPECT_EQ(m.err().code(), errc::not_found);
  EXPECT_EQ(m.err().message(), path("nope.trace") + ": no such file");
}

TEST_F(Load, BadMagicIsNotATraceLog) {
  auto b = good_log();
  b[0] = 'X';
  auto m = load({write("bad-magic.trace", b)}, {});
  ASSERT_FALSE(m);
  EXPECT_EQ(m.err().code(), errc::malformed);
  EXPECT_NE(m.err().message().find("bad-magic.trace: not an accellm trace log"), std::string::npos)
      << m.err().message();
}

// A frame whose length runs past the end (a killed writer): an error naming
// the record, unless salvaged, which keeps the records before it.
TEST_F(Load, ATornFrameFailsUnlessSalvaged) {
  auto b = good_log();
  for (auto x : bytes{64, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4}) b.push_back(x);
  auto file = write("torn.trace", b);
  auto m = load({file}, {});
  ASSERT_FALSE(m);
  EXPECT_EQ(m.err().code(), errc::truncated);
  EXPECT_NE(m.err().message().find("torn.trace: record 4 at byte"), std::string::npos)
      << m.err().message();
  EXPECT_NE(m.err().message().find("--salvage"), std::string::npos);
  auto salvaged = load({file}, {.salvage = true});
  ASSERT_TRUE(salvaged) << salvaged.err().what();
  EXPECT_TRUE(salvaged->logs[0].salvaged);
  EXPECT_EQ(salvaged->events.size(), 2u);
}

TEST_F(Load, GarbageBytesInAFrameAreMalformed) {
  auto b = magic();
  append_frame(b, log_start());
  auto at = b.size();
  for (auto x : bytes{16, 0, 0, 0, 0, 0, 0, 0}) b.push_back(x);
  for (int i = 0; i < 16; ++i) b.push_back(0xff);
  auto m = load({write("garbage.trace", b)}, {.salvage = true});  // salvage does not hide it
  ASSERT_FALSE(m);
  EXPECT_NE(m.err().message().find("garbage.trace: record 2 at byte " + std::to_string(at)),
            std::string::npos)
      << m.err().message();
}

TEST_F(Load, ABadFileAmongGoodOnesIsNamed) {
  auto good = write("good.trace", good_log());
  auto bad = write("empty.trace", {});
  auto m = load({good, bad}, {});
  ASSERT_FALSE(m);
  EXPECT_NE(m.err().message().find("empty.trace"), std::string::npos) << m.err().message();
}

messages::capnp_blob submit(request_id id) {
  return messages::pack(messages::submit_request{.request = id,
                                                 .prompt = {},
                                                 .prompt_len = 100,
                                                 .max_tokens = 8,
                                                 .arrival_ns = 0,
                                                 .stream = false,
                                                 .ttft_ms = 0,
                                                 .tbt_ms = 0,
                                                 .stop_tokens = {}});
}

messages::capnp_blob done(request_id id) {
  return messages::pack(messages::request_done{.epoch = 1,
                                               .request = id,
                                               .status = messages::request_status::ok,
                                               .finish = messages::finish_reason::length,
                                               .output_tokens = 8,
                                               .error = {},
                                               .instance = 0});
}

// A log written by the real tracer reads back, merges and exports the request.
TEST_F(Load, ALogFromTheTracerExportsItsRequest) {
  auto t = actors::tracer::open({.path = path("sim.trace"),
                                 .node = "sim",
                                 .clock = "virtual",
                                 .origin = time_point{},
                                 .opened = time_point{},
                                 .block_when_full = true,
                                 .queue_limit = 64});
  ASSERT_TRUE(t) << t.err().what();
  auto client = (*t)->point("client", "client");
  auto coord = (*t)->point("coordinator", "coordinator");
  auto im = (*t)->point("im:0", "i0");
  client.message("coordinator", "coordinator", submit(5), time_point{} + 1ms);
  im.span(0, messages::role::mixed, 1, time_point{} + 2ms, 3ms, 100, 0);
  coord.message("client", "client", done(5), time_point{} + 9ms);
  ASSERT_TRUE((*t)->close("test"));

  auto m = load({path("sim.trace")}, {});
  ASSERT_TRUE(m) << m.err().what();
  ASSERT_EQ(m->events.size(), 3u);
  EXPECT_TRUE(m->logs[0].complete);
  auto doc = nlohmann::json::parse(perfetto_json(*m).dump());
  std::vector<double> request_ts;
  for (const auto& e : doc["traceEvents"]) {
    if (e.value("cat", "") == "request" && e["name"] == "request 5") request_ts.push_back(e["ts"]);
  }
  EXPECT_EQ(request_ts, (std::vector<double>{1000.0, 9000.0}));
}

}  // namespace
}  // namespace accellm::tracing

#include "actors/tracer.hpp"

#include "messages/codec.hpp"
#include "tests/support/temp_dir.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

namespace accellm::actors {
namespace {

using messages::msg_type;
using messages::trace_kind;
using namespace std::chrono_literals;

class Tracer : public ::testing::Test {
 protected:
  std::string path(const std::string& name) const { return dir_.file(name); }

  tracer_options options(const std::string& name) const {
    return {.path = path(name),
            .node = "w1",
            .clock = "steady",
            .origin = time_point{},
            .opened = time_point{} + 5ms,
            .block_when_full = true,
            .queue_limit = 16};
  }

  static std::vector<std::uint8_t> bytes_of(const std::string& p) {
    std::ifstream in{p, std::ios::binary};
    return {std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{}};
  }

  accellm::testing::temp_dir dir_;
};

messages::capnp_blob assign(request_id id) {
  return messages::pack(messages::assign_prefill{.epoch = 2,
                                                 .request = id,
                                                 .instance = 3,
                                                 .partner = 4,
                                                 .prompt = {},
                                                 .prompt_len = 100,
                                                 .already_generated = {},
                                                 .already_generated_len = 0,
                                                 .max_tokens = 8,
                                                 .chunk_tokens = 0,
                                                 .arrival_ns = 0,
                                                 .stop_tokens = {},
                                                 .then_decode = false});
}

TEST_F(Tracer, WritesEveryEventAndReadsItBack) {
  auto t = tracer::open(options("a.trace"));
  ASSERT_TRUE(t) << t.err().what();
  auto im = (*t)->point("im:3");
  im.message("coordinator", "coord", assign(42), time_point{} + 7ms);
  im.span(3, messages::role::prefill, 2, time_point{} + 8ms, 3ms, 100, 0);
  im.as("coordinator").clock_sample("w2", time_point{} + 9ms, 8'500'000);
  trace_point off;  // no tracer: nothing happens
  off.message("x", "y", assign(1), time_point{});
  ASSERT_TRUE((*t)->close("test done"));
  EXPECT_EQ((*t)->totals().events, 3u);

  auto log = read_trace_log(path("a.trace"));
  ASSERT_TRUE(log) << log.err().what();
  EXPECT_EQ(log->node, "w1");
  EXPECT_EQ(log->clock, "steady");
  EXPECT_FALSE(log->host.empty());
  EXPECT_EQ(log->start_ns, 5'000'000u);
  EXPECT_GT(log->wall_ns, 1'600'000'000'000'000'000u);  // after 2020
  EXPECT_TRUE(log->complete);
  EXPECT_EQ(log->end_note, "test done");
  EXPECT_EQ(log->dropped, 0u);
  ASSERT_EQ(log->events.size(), 3u);

  const auto& m = log->events[0];
  EXPECT_EQ(m.kind, trace_kind::message);
  EXPECT_EQ(m.time_ns, 7'000'000u);
  EXPECT_EQ(m.sender, "im:3");
  EXPECT_EQ(m.sender_node, "w1");
  EXPECT_EQ(m.receiver, "coordinator");
  EXPECT_EQ(m.receiver_node, "coord");
  EXPECT_EQ(m.message_type, static_cast<std::uint16_t>(msg_type::assign_prefill));
  EXPECT_EQ(m.request, 42u);
  EXPECT_EQ(m.bytes,
            messages::encode(*messages::decode<messages::assign_prefill>(assign(42))).bytes.size());

  const auto& s = log->events[1];
  EXPECT_EQ(s.kind, trace_kind::iteration_span);
  EXPECT_EQ(s.instance, 3u);
  EXPECT_EQ(s.role, messages::role::prefill);
  EXPECT_EQ(s.time_ns, 8'000'000u);
  EXPECT_EQ(s.duration_ns, 3'000'000u);
  EXPECT_EQ(s.prefill_tokens, 100u);
  EXPECT_EQ(s.epoch, 2u);

  const auto& c = log->events[2];
  EXPECT_EQ(c.kind, trace_kind::clock_sample);
  EXPECT_EQ(c.sender_node, "w2");
  EXPECT_EQ(c.receiver_node, "w1");
  EXPECT_EQ(c.peer_time_ns, 8'500'000u);
}

TEST_F(Tracer, ManyThreadsLoseNothingWhenBlocking) {
  auto t = tracer::open(options("b.trace"));
  ASSERT_TRUE(t) << t.err().what();
  constexpr int threads = 4, per_thread = 2000;
  std::vector<std::thread> pool;
  for (int i = 0; i < threads; ++i) {
    pool.emplace_back([&, i] {
      auto p = (*t)->point("im:" + std::to_string(i));
      for (int k = 0; k < per_thread; ++k) {
        p.message("coordinator", "coord", assign(static_cast<request_id>(k + 1)),
                  time_point{} + std::chrono::nanoseconds{k});
      }
    });
  }
  for (auto& th : pool) th.join();
  ASSERT_TRUE((*t)->close());
  auto log = read_trace_log(path("b.trace"));
  ASSERT_TRUE(log) << log.err().what();
  EXPECT_EQ(log->events.size(), std::size_t{threads * per_thread});
  EXPECT_EQ(log->dropped, 0u);
  // Each thread's events keep their order.
  for (int i = 0; i < threads; ++i) {
    request_id last = 0;
    for (const auto& e : log->events) {
      if (e.sender != "im:" + std::to_string(i)) continue;
      EXPECT_EQ(e.request, last + 1);
      last = e.request;
    }
    EXPECT_EQ(last, request_id{per_thread});
  }
}

TEST_F(Tracer, DropsAndCountsWhenNotBlockingOrClosed) {
  auto opts = options("c.trace");
  opts.block_when_full = false;
  opts.queue_limit = 1;
  auto t = tracer::open(opts);
  ASSERT_TRUE(t) << t.err().what();
  auto p = (*t)->point("im:1");
  for (int k = 0; k < 5000; ++k) p.message("coordinator", "coord", assign(1), time_point{});
  ASSERT_TRUE((*t)->close());
  p.message("coordinator", "coord", assign(1), time_point{});  // after close: dropped
  const auto totals = (*t)->totals();
  EXPECT_EQ(totals.events + totals.dropped, 5001u);
  EXPECT_GE(totals.dropped, 1u);
  auto log = read_trace_log(path("c.trace"));
  ASSERT_TRUE(log) << log.err().what();
  EXPECT_EQ(log->events.size(), totals.events);
  EXPECT_EQ(log->dropped + 1, totals.dropped);  // the last drop came after log_end
}

TEST_F(Tracer, RefusesBadOptions) {
  auto opts = options("d.trace");
  opts.clock = "wall";
  auto t = tracer::open(opts);
  ASSERT_FALSE(t);
  EXPECT_NE(t.err().message().find("'wall'"), std::string::npos) << t.err().message();
  opts = options("d.trace");
  opts.path = path("no/such/dir/d.trace");
  t = tracer::open(opts);
  ASSERT_FALSE(t);
  EXPECT_EQ(t.err().code(), errc::io_failure);
  EXPECT_NE(t.err().message().find("no/such/dir/d.trace"), std::string::npos);
  opts = options("d.trace");
  opts.node.clear();
  EXPECT_FALSE(tracer::open(opts));
}

// A log of one message, for the malformed-input tests to damage.
class DamagedLog : public Tracer {
 protected:
  void SetUp() override {
    Tracer::SetUp();
    auto t = tracer::open(options("good.trace"));
    ASSERT_TRUE(t);
    auto p = (*t)->point("im:3");
    p.message("coordinator", "coord", assign(42), time_point{} + 7ms);
    p.message("coordinator", "coord", assign(43), time_point{} + 8ms);
    ASSERT_TRUE((*t)->close());
    good_ = bytes_of(path("good.trace"));
  }

  std::string error_of(const std::vector<std::uint8_t>& b, bool salvage = false) {
    auto log = read_trace_log(dir_.write_bytes("bad.trace", b), {.salvage = salvage});
    return log ? std::string{} : log.err().message();
  }

  std::vector<std::uint8_t> good_;
};

TEST_F(DamagedLog, MissingFileAndBadMagicAreNamed) {
  auto log = read_trace_log(path("absent.trace"));
  ASSERT_FALSE(log);
  EXPECT_EQ(log.err().code(), errc::io_failure);
  EXPECT_NE(log.err().message().find("absent.trace"), std::string::npos);
  log = read_trace_log(dir_.path().string());
  ASSERT_FALSE(log);
  EXPECT_NE(log.err().message().find("is a directory"), std::string::npos) << log.err().message();

  auto b = good_;
  b[0] = 'X';
  EXPECT_NE(error_of(b).find("not an accellm trace log"), std::string::npos);
  EXPECT_NE(error_of({}).find("not an accellm trace log"), std::string::npos);
  EXPECT_NE(error_of({'A', 'C', 'L', 'M', 'T', 'R', 'C', '1'}).find("no record"),
            std::string::npos);
}

TEST_F(DamagedLog, ATornLastFrameIsAnErrorUnlessSalvaged) {
  // Cut the log in the middle of its second message (the log_end and part of
  // the frame before it gone): what a SIGKILL during a write leaves.
  auto b = good_;
  auto log = read_trace_log(path("good.trace"));
  ASSERT_TRUE(log);
  b.resize(b.size() / 2 + 40);
  const auto e = error_of(b);
  EXPECT_NE(e.find("bad.trace: record "), std::string::npos) << e;
  EXPECT_NE(e.find("runs past the end of the file"), std::string::npos) << e;
  EXPECT_NE(e.find("--salvage"), std::string::npos) << e;

  auto salvaged = read_trace_log(dir_.write_bytes("bad.trace", b), {.salvage = true});
  ASSERT_TRUE(salvaged) << salvaged.err().what();
  EXPECT_TRUE(salvaged->salvaged);
  EXPECT_FALSE(salvaged->complete);
  EXPECT_LT(salvaged->events.size(), 2u);
}

TEST_F(DamagedLog, GarbageFramesAreErrorsEvenWhenSalvaging) {
  auto b = good_;
  // The first frame's length (right after the magic) set to 7: not a
  // multiple of 8.
  b[8] = 7;
  for (int i = 9; i < 16; ++i) b[static_cast<std::size_t>(i)] = 0;
  auto e = error_of(b, true);
  EXPECT_NE(e.find("record 1 at byte 8: frame length 7"), std::string::npos) << e;

  // Garbage inside the second frame's Cap'n Proto bytes: a segment table
  // announcing far more words than the frame holds.
  b = good_;
  const std::size_t first_len = b[8] | (std::size_t{b[9]} << 8);
  const std::size_t second = 8 + 8 + first_len;
  b[second + 8 + 4] = 0xff;
  b[second + 8 + 5] = 0xff;
  e = error_of(b, true);
  EXPECT_NE(e.find("record 2 at byte " + std::to_string(second)), std::string::npos) << e;

  // Bytes after log_end.
  b = good_;
  b.insert(b.end(), good_.begin() + 8, good_.begin() + 16 + static_cast<long>(first_len));
  e = error_of(b, true);
  EXPECT_NE(e.find("data after the log_end record"), std::string::npos) << e;

  // Two logs concatenated (a second log_start).
  b = good_;
  b.resize(b.size());
  std::vector<std::uint8_t> twice(good_.begin(), good_.begin() + 16 + static_cast<long>(first_len));
  twice.insert(twice.end(), good_.begin() + 8, good_.begin() + 16 + static_cast<long>(first_len));
  e = error_of(twice, true);
  EXPECT_NE(e.find("a second log_start"), std::string::npos) << e;
}

}  // namespace
}  // namespace accellm::actors

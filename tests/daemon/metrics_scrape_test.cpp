// The /metrics scrape of a load run: parsing the text format and the URL,
// folding scrapes into instance records, and a scraper against a small
// HTTP server on loopback.
#include "daemon/metrics_scrape.hpp"

#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <string>
#include <thread>

namespace accellm::daemon {
namespace {

using namespace std::chrono_literals;

// One coordinator scrape: `instance` in `role` holding primary/replica
// blocks of 4096 bytes out of 100, after `iterations` iterations and, when
// `busy_s` >= 0, that many busy seconds (a coordinator before the busy
// counter serves none).
std::string scrape(const std::string& instance, const std::string& role, int primary, int replica,
                   int iterations, double busy_s = -1) {
  std::string out =
      "# HELP accellm_instance_role Current role.\n# TYPE accellm_instance_role gauge\n";
  for (const char* r : {"prefill", "decode", "mixed"}) {
    out += "accellm_instance_role{instance=\"" + instance + "\",role=\"" + r + "\"} " +
           (role == r ? "1" : "0") + "\n";
  }
  out += "accellm_instance_kv_bytes{instance=\"" + instance + "\",copy=\"primary\"} " +
         std::to_string(primary * 4096) + "\n";
  out += "accellm_instance_kv_bytes{instance=\"" + instance + "\",copy=\"replica\"} " +
         std::to_string(replica * 4096) + "\n";
  out += "accellm_kv_cache_usage_perc{instance=\"" + instance + "\"} " +
         std::to_string((primary + replica) / 100.0) + "\n";
  out += "accellm_instance_iterations_total{instance=\"" + instance + "\"} " +
         std::to_string(iterations) + "\n";
  if (busy_s >= 0) {
    out += "accellm_instance_busy_seconds_total{instance=\"" + instance + "\"} " +
           std::to_string(busy_s) + "\n";
  }
  return out;
}

std::vector<prom_sample> parsed(const std::string& text) {
  auto s = parse_prometheus(text);
  EXPECT_TRUE(s) << s.err().what();
  return s ? *s : std::vector<prom_sample>{};
}

TEST(ParsePrometheus, SamplesLabelsAndSpecialValues) {
  auto s = parse_prometheus(
      "# HELP x y\n\naccellm_instances 4\n"
      "accellm_x_bucket{le=\"+Inf\",name=\"a \\\"b\\\"\"} +Inf 1700000000\r\n"
      "accellm_y{} 2.5e-3\n");
  ASSERT_TRUE(s) << s.err().what();
  ASSERT_EQ(s->size(), 3u);
  EXPECT_EQ((*s)[0].name, "accellm_instances");
  EXPECT_EQ((*s)[0].value, 4);
  EXPECT_EQ((*s)[1].label("name"), "a \"b\"");
  EXPECT_EQ((*s)[1].label("le"), "+Inf");
  EXPECT_EQ((*s)[1].label("nope"), "");
  EXPECT_TRUE(std::isinf((*s)[1].value));
  EXPECT_DOUBLE_EQ((*s)[2].value, 2.5e-3);
}

TEST(ParsePrometheus, BadLinesAreNamed) {
  auto a = parse_prometheus("ok 1\nbroken{instance=\"w0\" 3\n");
  ASSERT_FALSE(a);
  EXPECT_EQ(a.err().code(), errc::malformed);
  EXPECT_NE(a.err().message().find("/metrics line 2"), std::string::npos) << a.err().message();
  auto b = parse_prometheus("x seven\n");
  ASSERT_FALSE(b);
  EXPECT_NE(b.err().message().find("line 1: 'seven' is not a number"), std::string::npos)
      << b.err().message();
  EXPECT_FALSE(parse_prometheus("lonely\n"));
}

TEST(ParseMetricsUrl, HostPortAndPath) {
  auto a = parse_metrics_url("http://127.0.0.1:8080/metrics");
  ASSERT_TRUE(a) << a.err().what();
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 8080);
  EXPECT_EQ(a->path, "/metrics");
  auto b = parse_metrics_url("http://coord:9000");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->path, "/metrics");
  for (const char* bad : {"127.0.0.1:8080", "https://h:1/metrics", "http://h/metrics",
                          "http://h:0/metrics", "http://h:70000", "http://h:80x"}) {
    auto r = parse_metrics_url(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.err().code(), errc::config);
    EXPECT_NE(r.err().message().find(std::string{"--metrics '"} + bad + "'"), std::string::npos)
        << r.err().message();
  }
}

// Two instances over three scrapes: w0 switches from prefill to decode, w1
// vanishes after the second; memory in 4096-byte blocks, 100 per instance.
TEST(InstanceTimeline, ScrapesBecomeRolesMemoryAndCounters) {
  instance_timeline t;
  t.add(0ms, parsed(scrape("w0", "prefill", 0, 0, 10) + scrape("w1", "decode", 0, 0, 5)));
  t.add(500ms, parsed(scrape("w0", "prefill", 6, 2, 15) + scrape("w1", "decode", 3, 0, 9)));
  t.add(1000ms, parsed(scrape("w0", "decode", 4, 4, 30)));
  EXPECT_EQ(t.scrapes(), 3u);
  const auto r = t.records(1200ms);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].name, "w0");
  EXPECT_EQ(r[0].id, 0u);
  EXPECT_EQ(r[0].bytes_per_block, 4096u);
  EXPECT_EQ(r[0].total_blocks, 100u);
  ASSERT_EQ(r[0].roles.size(), 2u);
  EXPECT_EQ(r[0].roles[0].role, messages::role::prefill);
  EXPECT_EQ(r[0].roles[0].start, 0ms);
  EXPECT_EQ(r[0].roles[0].end, 1000ms);
  EXPECT_EQ(r[0].roles[1].role, messages::role::decode);
  EXPECT_EQ(r[0].roles[1].end, 1200ms);
  EXPECT_EQ(r[0].time_in_role[static_cast<std::size_t>(messages::role::prefill)], 1000ms);
  ASSERT_EQ(r[0].memory.size(), 3u);
  EXPECT_EQ(r[0].memory[1].time, 500ms);
  EXPECT_EQ(r[0].memory[1].primary_blocks, 6u);
  EXPECT_EQ(r[0].memory[1].replica_blocks, 2u);
  EXPECT_EQ(r[0].iterations, 20u);
  EXPECT_EQ(r[1].name, "w1");
  ASSERT_EQ(r[1].roles.size(), 1u);
  EXPECT_EQ(r[1].roles[0].end, 1000ms) << "gone from the third scrape";
  EXPECT_EQ(r[1].iterations, 4u);
  EXPECT_EQ(r[1].total_blocks, 100u);
}

// Busy seconds between scrapes become busy time, spread evenly over each
// interval into the windows. w0 rises normally (its 3 s before the first
// scrape are not the run's); w1's counter drops (a new instance under its
// name), then w1 vanishes and comes back (lost, rejoined: from 0 again);
// w2 joins during the run (from 0). Iterations follow the same rules.
TEST(InstanceTimeline, BusySecondsRisesBecomeBusyTimeAndWindows) {
  instance_timeline t;
  t.add(0ms,
        parsed(scrape("w0", "prefill", 0, 0, 10, 3.0) + scrape("w1", "decode", 0, 0, 50, 1.0)));
  t.add(500ms,
        parsed(scrape("w0", "prefill", 1, 0, 12, 3.25) + scrape("w1", "decode", 1, 0, 4, 0.2)));
  t.add(1000ms,
        parsed(scrape("w0", "prefill", 1, 0, 16, 3.75) + scrape("w2", "mixed", 1, 0, 2, 0.1)));
  t.add(1500ms, parsed(scrape("w0", "decode", 1, 0, 16, 3.75) +
                       scrape("w1", "decode", 1, 0, 3, 0.4) + scrape("w2", "mixed", 1, 0, 3, 0.3)));
  EXPECT_TRUE(t.has_busy());
  const auto r = t.records(1500ms, 250ms);
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0].name, "w0");
  EXPECT_EQ(r[0].busy, 750ms);
  EXPECT_EQ(r[0].iterations, 6u);
  EXPECT_EQ(r[0].busy_windows, (std::vector<metrics::nanos>{125ms, 125ms, 250ms, 250ms}));
  EXPECT_EQ(r[1].name, "w1");
  EXPECT_EQ(r[1].busy, 600ms) << "0.2 after the reset, 0.4 after coming back";
  EXPECT_EQ(r[1].iterations, 7u);
  EXPECT_EQ(r[1].busy_windows, (std::vector<metrics::nanos>{100ms, 100ms, 0ms, 0ms, 200ms, 200ms}));
  EXPECT_EQ(r[2].name, "w2");
  EXPECT_EQ(r[2].busy, 300ms) << "0.1 at its first scrape, 0.2 after";
  EXPECT_EQ(r[2].iterations, 3u);
  EXPECT_EQ(r[2].busy_windows, (std::vector<metrics::nanos>{0ms, 0ms, 50ms, 50ms, 100ms, 100ms}));
  // Without a window the totals alone.
  const auto totals = t.records(1500ms);
  EXPECT_EQ(totals[0].busy, 750ms);
  EXPECT_TRUE(totals[0].busy_windows.empty());
}

// A coordinator without the busy counter: busy time unknown, not zero.
TEST(InstanceTimeline, NoBusyCounterLeavesBusyTimeUnknown) {
  instance_timeline t;
  t.add(0ms, parsed(scrape("w0", "prefill", 1, 0, 10)));
  t.add(500ms, parsed(scrape("w0", "prefill", 1, 0, 20)));
  EXPECT_FALSE(t.has_busy());
  const auto r = t.records(1s, 250ms);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].busy, 0ms);
  EXPECT_TRUE(r[0].busy_windows.empty());
  EXPECT_EQ(r[0].iterations, 10u);
}

TEST(LiveBusyWindow, AboutTwoHundredWindowsNeverFinerThanAScrape) {
  EXPECT_EQ(live_busy_window(15s, 500ms), 500ms);
  EXPECT_EQ(live_busy_window(600s, 500ms), 3s);
  EXPECT_EQ(live_busy_window(601001ms, 500ms), 3005ms) << "whole milliseconds";
  EXPECT_EQ(live_busy_window(0s, 500ms), 500ms);
}

TEST(InstanceTimeline, NoKvEverHeldLeavesMemoryUnknown) {
  instance_timeline t;
  t.add(0ms, parsed(scrape("w0", "mixed", 0, 0, 0)));
  const auto r = t.records(1s);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].bytes_per_block, 0u);
  EXPECT_TRUE(r[0].memory.empty());
  EXPECT_EQ(r[0].total_blocks, 0u);
  ASSERT_EQ(r[0].roles.size(), 1u);
}

// The scraper against a server that answers like the coordinator; then
// against a port nobody listens on: start() fails naming the URL.
TEST(MetricsScraper, ScrapesUntilStoppedAndRefusesADeadEndpoint) {
  httplib::Server server;
  server.Get("/metrics", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(scrape("w0", "prefill", 1, 1, 3), "text/plain");
  });
  const int port = server.bind_to_any_port("127.0.0.1");
  ASSERT_GT(port, 0);
  std::thread serving{[&server] { server.listen_after_bind(); }};
  for (int i = 0; i < 500 && !server.is_running(); ++i) std::this_thread::sleep_for(10ms);
  ASSERT_TRUE(server.is_running());
  {
    metrics_scraper s{
        {.host = "127.0.0.1", .port = static_cast<std::uint16_t>(port), .path = "/metrics"}, 100ms};
    ASSERT_TRUE(s.start());
    std::this_thread::sleep_for(450ms);
    std::size_t failed = 99;
    const instance_timeline t = s.stop(failed);
    EXPECT_EQ(failed, 0u);
    EXPECT_GE(t.scrapes(), 4u) << "the first, at least two ticks, the last at stop()";
    EXPECT_LE(t.scrapes(), 8u);
    ASSERT_EQ(t.records(1s).size(), 1u);
  }
  server.stop();
  serving.join();
  metrics_scraper dead{
      {.host = "127.0.0.1", .port = static_cast<std::uint16_t>(port), .path = "/metrics"}, 100ms};
  auto s = dead.start();
  ASSERT_FALSE(s);
  EXPECT_EQ(s.err().code(), errc::io_failure);
  EXPECT_NE(s.err().message().find("no answer from http://127.0.0.1:" + std::to_string(port)),
            std::string::npos)
      << s.err().message();
}

}  // namespace
}  // namespace accellm::daemon

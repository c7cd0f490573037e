#include "workload/metrics/writers.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>

namespace accellm::metrics {
namespace {

using namespace std::chrono_literals;

// Designated initializers would warn (-Wmissing-field-initializers) as
// fields are appended, so records are built field by field.
request_record request(request_id id, std::uint32_t prompt, std::uint32_t max, nanos arrival) {
  request_record r;
  r.id = id;
  r.prompt_tokens = prompt;
  r.max_tokens = max;
  r.arrival = arrival;
  return r;
}

slo_options ttft_slo(double ms) {
  slo_options o;
  o.ttft_ms = ms;
  return o;
}

instance_record instance(instance_id id, std::string name, std::string pool, nanos busy) {
  instance_record i;
  i.id = id;
  i.name = std::move(name);
  i.pool = std::move(pool);
  i.busy = busy;
  return i;
}

// A directory of its own per test, removed afterwards.
class Writers : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::path{::testing::TempDir()} /
           (std::string{"accellm_metrics_"} + info->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  static std::string read(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
  }

  std::filesystem::path dir_;
};

// One finished request (3 tokens 25 ms apart), one that never started; two
// instances, the second with a pool name that needs CSV quoting.
run_record small_run() {
  run_record run;
  run.policy = "accellm";
  run.setting = "pairs 2";
  run.offered_rate = 1.5;
  run.makespan = 2s;
  request_record r1 = request(1, 10, 3, 500ms);
  r1.token_times = {600ms, 625ms, 650ms};
  r1.first_token = 600ms;
  r1.finish = 650ms;
  r1.prefill_instance = 0;
  r1.decode_instance = 1;
  r1.moves = 1;
  r1.completed = true;
  request_record r2 = request(2, 20, 4, 1250ms);
  run.requests = {r1, r2};
  instance_record i0 = instance(0, "i0", "pair0", 1500ms);
  i0.time_in_role = {1s, 500ms, 0ms};
  i0.iterations = 42;
  i0.kv_bytes_sent = 123456;
  i0.total_blocks = 100;
  i0.replicas_evicted = 2;
  i0.preemptions = 1;
  i0.rejected_messages = 4;
  i0.memory = {{0ms, 1, 2}, {500ms, 7, 3}};
  instance_record i1 = instance(1, "i1", "a\"b,c", nanos{0});
  run.instances = {i0, i1};
  return run;
}

TEST_F(Writers, RequestsCsvExact) {
  const auto path = dir_ / "requests.csv";
  ASSERT_TRUE(write_requests_csv(path, small_run()).ok());
  EXPECT_EQ(read(path),
            "id,prompt_tokens,max_tokens,output_tokens,arrival_s,ttft_ms,tpot_ms,max_tbt_ms,"
            "jct_ms,prefill_instance,decode_instance,moves,preemptions,completed\n"
            "1,10,3,3,0.500000,100.000,25.000,25.000,150.000,0,1,1,0,1\n"
            "2,20,4,0,1.250000,,,,,,,0,0,0\n");
}

TEST_F(Writers, InstancesCsvExact) {
  const auto path = dir_ / "instances.csv";
  ASSERT_TRUE(write_instances_csv(path, small_run()).ok());
  EXPECT_EQ(read(path),
            "id,name,pool,busy_s,idle_fraction,prefill_s,decode_s,mixed_s,iterations,"
            "kv_bytes_sent,peak_primary_blocks,peak_replica_blocks,total_blocks,"
            "replicas_evicted,preemptions,rejected_messages\n"
            "0,i0,pair0,1.500000,0.2500,1.000000,0.500000,0.000000,42,123456,7,3,100,2,1,4\n"
            "1,i1,\"a\"\"b,c\",0.000000,1.0000,0.000000,0.000000,0.000000,0,0,0,0,0,0,0,0\n");
}

// A live run's instances ran iterations nobody timed: busy_s and
// idle_fraction are left empty rather than claiming 100% idle.
TEST_F(Writers, InstancesCsvLeavesUntimedBusyEmpty) {
  run_record run = small_run();
  run.instances[1].iterations = 9;
  const auto path = dir_ / "instances.csv";
  ASSERT_TRUE(write_instances_csv(path, run).ok());
  const std::string text = read(path);
  EXPECT_NE(text.find("\n1,i1,\"a\"\"b,c\",,,0.000000,0.000000,0.000000,9,"), std::string::npos)
      << text;
  EXPECT_NE(text.find("\n0,i0,pair0,1.500000,0.2500,"), std::string::npos) << text;
}

TEST_F(Writers, MemoryCsvExact) {
  const auto path = dir_ / "memory.csv";
  ASSERT_TRUE(write_memory_csv(path, small_run()).ok());
  EXPECT_EQ(read(path),
            "time_s,instance,primary_blocks,replica_blocks\n"
            "0.000000,0,1,2\n"
            "0.500000,0,7,3\n");
}

TEST_F(Writers, UnwritablePathIsIoFailure) {
  const auto path = dir_ / "no_such_dir" / "requests.csv";
  const run_record run = small_run();
  for (const status& s : {write_requests_csv(path, run), write_instances_csv(path, run),
                          write_memory_csv(path, run)}) {
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.err().code(), errc::io_failure);
    EXPECT_NE(s.err().message().find(path.string()), std::string::npos) << s.err().message();
  }
}

TEST_F(Writers, SameRecordsSameBytes) {
  const run_record run = small_run();
  ASSERT_TRUE(write_requests_csv(dir_ / "a.csv", run).ok());
  ASSERT_TRUE(write_requests_csv(dir_ / "b.csv", run).ok());
  EXPECT_EQ(read(dir_ / "a.csv"), read(dir_ / "b.csv"));
}

TEST(SummaryJson, ParsesBackWithTheValues) {
  const run_record run = small_run();
  const summary sum = summarize(run, ttft_slo(200));
  const std::string text = summary_json({{&run, sum}});
  EXPECT_EQ(text, summary_json({{&run, sum}}));
  const auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(j.is_discarded()) << text;
  ASSERT_EQ(j.at("runs").size(), 1u);
  const auto& r = j["runs"][0];
  EXPECT_EQ(r["policy"], "accellm");
  EXPECT_EQ(r["setting"], "pairs 2");
  EXPECT_DOUBLE_EQ(r["offered_rate"].get<double>(), 1.5);
  EXPECT_DOUBLE_EQ(r["makespan_s"].get<double>(), 2.0);
  const auto& s = r["summary"];
  EXPECT_EQ(s["requests"], 2);
  EXPECT_EQ(s["completed"], 1);
  EXPECT_DOUBLE_EQ(s["ttft_ms"]["mean"].get<double>(), 100.0);
  EXPECT_DOUBLE_EQ(s["tbt_ms"]["max"].get<double>(), 25.0);
  EXPECT_DOUBLE_EQ(s["attainment"].get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(s["idle_fraction"].get<double>(), 0.625);  // (0.25 + 1) / 2
  ASSERT_EQ(s["slowdown"].size(), 9u);
  EXPECT_EQ(s["slowdown"][0]["metric"], "ttft");
  EXPECT_EQ(s["kv_bytes_sent"], 123456);
  // Keys stay in declaration order: "requests" comes first.
  EXPECT_LT(text.find("\"requests\""), text.find("\"completed\""));
}

TEST(SummaryJson, InfiniteSlowdownIsNull) {
  run_record run;
  request_record r = request(1, 0, 2, nanos{0});
  r.baseline_ttft = 10ms;
  r.baseline_tbt = 5ms;
  run.requests = {r};  // never started: infinite slowdowns
  const auto j = nlohmann::json::parse(summary_json({{&run, summarize(run, {})}}));
  EXPECT_TRUE(j["runs"][0]["summary"]["slowdown"][0]["measured"].is_null());
}

}  // namespace
}  // namespace accellm::metrics

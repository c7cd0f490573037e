// What `accellm load --out DIR` writes reads back through the report's
// reader (with and without instances from /metrics), and a bad --out fails
// before the run with a message naming it.
#include "daemon/load_outputs.hpp"

#include "workload/report/report_html.hpp"
#include "workload/report/results.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

namespace accellm::daemon {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class LoadOutputs : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::path{::testing::TempDir()} / (std::string{"accellm_load_"} + info->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path dir_;
};

// A live run as launcher.cpp makes it: client-side times, setting "live".
metrics::run_record live_run() {
  metrics::run_record r;
  r.policy = "accellm";
  r.setting = "live";
  r.offered_rate = 4;
  r.makespan = 2s;
  for (std::uint64_t k = 0; k < 4; ++k) {
    metrics::request_record q;
    q.id = k;
    q.prompt_tokens = 32;
    q.max_tokens = 3;
    q.arrival = 250ms * static_cast<std::int64_t>(k);
    q.token_times = {q.arrival + 40ms, q.arrival + 60ms, q.arrival + 85ms};
    q.first_token = q.token_times.front();
    q.finish = q.token_times.back();
    q.completed = k != 3;  // one failed after its first tokens
    r.requests.push_back(q);
  }
  return r;
}

// Two instances as instance_timeline::records gives them.
void add_instances(metrics::run_record& r) {
  for (instance_id i = 0; i < 2; ++i) {
    metrics::instance_record in;
    in.id = i;
    in.name = "w" + std::to_string(i);
    in.total_blocks = 100;
    in.bytes_per_block = 4096;
    in.iterations = 12;
    in.memory = {{.time = 0ms, .primary_blocks = 0, .replica_blocks = 0},
                 {.time = 500ms, .primary_blocks = 8, .replica_blocks = 4}};
    in.roles = {{.start = 0ms, .end = 2s, .role = messages::role::prefill, .pool = ""}};
    r.instances.push_back(in);
  }
}

TEST_F(LoadOutputs, WithoutInstancesTheReportReaderReadsThemBack) {
  ASSERT_TRUE(prepare_out_dir(dir_ / "a" / "b"));
  const fs::path out = dir_ / "a" / "b";
  const metrics::run_record r = live_run();
  ASSERT_TRUE(write_load_outputs(out, r, metrics::summarize(r, {})));
  for (const char* f : {"summary.json", "accellm-requests.csv", "accellm-instances.csv",
                        "accellm-memory.csv", "accellm-tbt-histogram.csv"}) {
    EXPECT_TRUE(fs::exists(out / f)) << f;
  }
  EXPECT_FALSE(fs::exists(out / "accellm-roles.csv"));
  EXPECT_FALSE(fs::exists(out / "accellm-utilisation.csv"));
  auto read = report::read_results(out);
  ASSERT_TRUE(read) << read.err().what();
  ASSERT_EQ(read->rates.size(), 1u);
  ASSERT_EQ(read->rates[0].runs.size(), 1u);
  const report::run_data& run = read->rates[0].runs[0];
  EXPECT_EQ(run.setting, "live");
  EXPECT_EQ(run.ttft_ms.size(), 4u);
  EXPECT_EQ(run.jct_ms.size(), 3u) << "the failed request has no JCT";
  EXPECT_TRUE(run.has_tbt_histogram);
  EXPECT_FALSE(run.has_roles);
  EXPECT_TRUE(run.instances.empty());
  auto page = report::write_report(out);
  ASSERT_TRUE(page) << page.err().what();
}

TEST_F(LoadOutputs, ScrapedInstancesGiveRolesAndMemoryButNoUtilisation) {
  ASSERT_TRUE(prepare_out_dir(dir_));
  std::ofstream(dir_ / "accellm-utilisation.csv") << "stale from a simulate run\n";
  metrics::run_record r = live_run();
  add_instances(r);
  ASSERT_TRUE(write_load_outputs(dir_, r, metrics::summarize(r, {})));
  EXPECT_FALSE(fs::exists(dir_ / "accellm-utilisation.csv")) << "a stale file is removed";
  auto read = report::read_results(dir_);
  ASSERT_TRUE(read) << read.err().what();
  const report::run_data& run = read->rates[0].runs[0];
  ASSERT_EQ(run.instances.size(), 2u);
  EXPECT_EQ(run.instances[1].name, "w1");
  EXPECT_EQ(run.instances[1].total_blocks, 100);
  EXPECT_TRUE(run.has_roles);
  EXPECT_FALSE(run.has_utilisation);
  EXPECT_EQ(run.memory.size(), 4u);
  ASSERT_EQ(run.instances[0].roles.size(), 1u);
  EXPECT_EQ(run.instances[0].roles[0].role, "prefill");
}

// With the coordinator's busy counter the instances have busy time: busy_s
// and idle_fraction in instances.csv, a utilisation file, and the report's
// timeline shows it instead of a note.
TEST_F(LoadOutputs, ScrapedBusyTimeGivesUtilisation) {
  ASSERT_TRUE(prepare_out_dir(dir_));
  metrics::run_record r = live_run();
  add_instances(r);
  r.busy_window = 500ms;
  r.instances[0].busy = 500ms;
  r.instances[0].busy_windows = {250ms, 250ms};
  ASSERT_TRUE(write_load_outputs(dir_, r, metrics::summarize(r, {})));
  std::ifstream csv(dir_ / "accellm-instances.csv");
  std::string header, w0;
  std::getline(csv, header);
  std::getline(csv, w0);
  EXPECT_EQ(w0.rfind("0,w0,,0.500000,0.7500,", 0), 0u) << w0;  // 0.5 s busy of 2 s
  ASSERT_TRUE(fs::exists(dir_ / "accellm-utilisation.csv"));
  auto read = report::read_results(dir_);
  ASSERT_TRUE(read) << read.err().what();
  const report::run_data& run = read->rates[0].runs[0];
  EXPECT_TRUE(run.has_utilisation);
  ASSERT_EQ(run.instances.size(), 2u);
  ASSERT_EQ(run.instances[0].busy.size(), 4u) << "2 s in windows of 0.5 s";
  EXPECT_DOUBLE_EQ(run.instances[0].busy[0].fraction, 0.5);
  EXPECT_DOUBLE_EQ(run.instances[0].busy[2].fraction, 0.0);
  auto page = report::write_report(dir_);
  ASSERT_TRUE(page) << page.err().what();
  std::ifstream in(*page);
  const std::string html{std::istreambuf_iterator<char>{in}, {}};
  EXPECT_NE(html.find("utilisation from the rise of accellm_instance_busy_seconds_total"),
            std::string::npos);
  EXPECT_EQ(html.find("no utilisation"), std::string::npos);
}

TEST_F(LoadOutputs, ABadOutPathIsNamed) {
  fs::create_directories(dir_);
  std::ofstream(dir_ / "file") << "x";
  for (const fs::path& bad : {dir_ / "file", dir_ / "file" / "sub"}) {
    auto s = prepare_out_dir(bad);
    ASSERT_FALSE(s) << bad;
    EXPECT_EQ(s.err().code(), errc::config);
    EXPECT_NE(s.err().message().find("--out " + bad.string() + ": cannot make the directory: "),
              std::string::npos)
        << s.err().message();
  }
}

TEST_F(LoadOutputs, AnUnwritableFileIsAnIoFailure) {
  ASSERT_TRUE(prepare_out_dir(dir_));
  fs::create_directories(dir_ / "summary.json");  // a directory where the file goes
  const metrics::run_record r = live_run();
  auto s = write_load_outputs(dir_, r, metrics::summarize(r, {}));
  ASSERT_FALSE(s);
  EXPECT_EQ(s.err().code(), errc::io_failure);
  EXPECT_NE(s.err().message().find("summary.json"), std::string::npos) << s.err().message();
}

}  // namespace
}  // namespace accellm::daemon

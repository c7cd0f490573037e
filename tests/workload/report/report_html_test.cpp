#include "workload/report/report_html.hpp"

#include "tests/workload/report/markup.hpp"
#include "workload/metrics/summary.hpp"
#include "workload/metrics/writers.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace accellm::report {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testing::count;
using testing::unbalanced_tags;

// A two-instance run of `policy` at `rate` with three requests; the records
// are built field by field (designated initializers warn as fields are added).
metrics::run_record run(const std::string& policy, double rate) {
  metrics::run_record r;
  r.policy = policy;
  r.offered_rate = rate;
  r.makespan = 2s;
  r.busy_window = 500ms;
  for (std::uint64_t k = 0; k < 3; ++k) {
    metrics::request_record q;
    q.id = k + 1;
    q.prompt_tokens = 100;
    q.max_tokens = 3;
    q.arrival = 100ms * static_cast<std::int64_t>(k);
    q.token_times = {q.arrival + 50ms, q.arrival + 70ms, q.arrival + 95ms};
    q.first_token = q.token_times.front();
    q.finish = q.token_times.back();
    q.completed = true;
    r.requests.push_back(q);
  }
  for (instance_id i = 0; i < 2; ++i) {
    metrics::instance_record in;
    in.id = i;
    in.name = "i" + std::to_string(i);
    in.pool = "pair0";
    in.total_blocks = 1000;
    in.price_per_hour = 98;
    in.power_watts = 5600;
    in.busy = 1s;
    in.memory = {{.time = 0ms, .primary_blocks = 10, .replica_blocks = 5},
                 {.time = 1s, .primary_blocks = 0, .replica_blocks = 0}};
    in.roles = {{.start = 0ms, .end = 1s, .role = messages::role::prefill, .pool = "pair0"},
                {.start = 1s, .end = 2s, .role = messages::role::decode, .pool = "pair0"}};
    in.busy_windows = {400ms, 500ms, 100ms};
    r.instances.push_back(in);
  }
  return r;
}

// What `accellm simulate --out dir` writes for these runs, through the same writers.
void write_outputs(const fs::path& dir, const std::vector<metrics::run_record>& runs) {
  fs::create_directories(dir);
  std::vector<metrics::labelled_run> labelled;
  for (const metrics::run_record& r : runs) {
    const std::string p = r.policy;
    ASSERT_TRUE(metrics::write_requests_csv(dir / (p + "-requests.csv"), r));
    ASSERT_TRUE(metrics::write_instances_csv(dir / (p + "-instances.csv"), r));
    ASSERT_TRUE(metrics::write_memory_csv(dir / (p + "-memory.csv"), r));
    ASSERT_TRUE(metrics::write_roles_csv(dir / (p + "-roles.csv"), r));
    ASSERT_TRUE(metrics::write_utilisation_csv(dir / (p + "-utilisation.csv"), r));
    ASSERT_TRUE(metrics::write_tbt_histogram_csv(dir / (p + "-tbt-histogram.csv"), r));
    labelled.push_back({&r, metrics::summarize(r, {})});
  }
  std::ofstream(dir / "summary.json") << metrics::summary_json(labelled) << "\n";
}

std::string read(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

class ReportHtml : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::path{::testing::TempDir()} / (std::string{"accellm_report_"} + info->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path dir_;
};

TEST_F(ReportHtml, OneRateGivesABalancedPageWithOneSvgPerPlot) {
  write_outputs(dir_, {run("vllm", 2), run("accellm", 2)});
  auto path = write_report(dir_);
  ASSERT_TRUE(path) << path.err().what();
  EXPECT_EQ(*path, dir_ / "report.html");
  const std::string html = read(*path);
  EXPECT_EQ(unbalanced_tags(html), "");
  EXPECT_TRUE(html.starts_with("<!DOCTYPE html>"));
  // 3 CDFs, memory, a timeline per policy, 2 cost bars; no sweep, no goodput.
  EXPECT_EQ(count(html, "<svg "), 3u + 1 + 2 + 2);
  for (const char* title :
       {"TTFT, CDF per policy", "TBT, CDF per policy", "JCT, CDF per policy",
        "KV memory of the cluster over time", "accellm: instance roles and utilisation"}) {
    EXPECT_EQ(count(html, std::string{"<title>"} + title + "</title>"), 1u) << title;
  }
  EXPECT_EQ(count(html, ">time to first token (ms) (log scale)</text>"), 1u);
  EXPECT_EQ(count(html, ">job completion time (ms) (log scale)</text>"), 1u);
  EXPECT_NE(html.find("<td>vllm</td>"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("http://", html.find("<body>")), html.find("http://www.w3.org/2000/svg"));
  EXPECT_EQ(html.find(dir_.string()), std::string::npos) << "the page must not depend on its path";
}

TEST_F(ReportHtml, TheSameOutputsGiveTheSameBytes) {
  write_outputs(dir_, {run("accellm", 2)});
  ASSERT_TRUE(write_report(dir_));
  const std::string first = read(dir_ / "report.html");
  ASSERT_TRUE(write_report(dir_));
  EXPECT_EQ(read(dir_ / "report.html"), first);
}

TEST_F(ReportHtml, ASweepAddsLatencyAgainstRateAndASectionPerRate) {
  for (const double rate : {4.0, 2.0, 8.0}) {
    write_outputs(dir_ / ("rate-" + std::to_string(rate)),
                  {run("vllm", rate), run("accellm", rate)});
  }
  auto r = read_results(dir_);
  ASSERT_TRUE(r) << r.err().what();
  EXPECT_TRUE(r->sweep);
  ASSERT_EQ(r->rates.size(), 3u);
  EXPECT_DOUBLE_EQ(r->rates[0].rate, 2.0);
  EXPECT_DOUBLE_EQ(r->rates[2].rate, 8.0);
  const std::string html = render_html(*r);
  EXPECT_EQ(unbalanced_tags(html), "");
  EXPECT_EQ(count(html, "<svg "), 3u + 3 * (3 + 1 + 2 + 2));
  EXPECT_EQ(count(html, "<title>TTFT against offered rate</title>"), 1u);
  EXPECT_EQ(count(html, ">offered rate (req/s)</text>"), 3u);
  EXPECT_NE(html.find(">accellm P99</text>"), std::string::npos);
}

TEST_F(ReportHtml, GoodputJsonAddsGoodputBars) {
  write_outputs(dir_, {run("accellm", 2)});
  std::ofstream(dir_ / "goodput.json")
      << R"({"goodput": [{"policy": "accellm", "rate": 3.5, "per_dollar_hour": 0.02, "per_kw": 0.3}]})";
  auto path = write_report(dir_);
  ASSERT_TRUE(path) << path.err().what();
  const std::string html = read(*path);
  EXPECT_NE(html.find("<title>Goodput per $/h</title>"), std::string::npos);
  EXPECT_NE(html.find(">3.5</text>"), std::string::npos);
}

TEST_F(ReportHtml, OlderOutputsWithoutTheNewFilesStillGiveAReport) {
  write_outputs(dir_, {run("accellm", 2)});
  fs::remove(dir_ / "accellm-roles.csv");
  fs::remove(dir_ / "accellm-tbt-histogram.csv");
  auto path = write_report(dir_);
  ASSERT_TRUE(path) << path.err().what();
  EXPECT_NE(read(*path).find("no roles.csv or utilisation.csv"), std::string::npos);
}

// What `accellm load --out` writes without --metrics: requests, TBT gaps,
// the summary, instance and memory files with only their headers, no roles
// or utilisation; no price or power. Notes stand in for the missing plots.
TEST_F(ReportHtml, ALoadRunWithoutInstancesGetsNotesInsteadOfPlots) {
  metrics::run_record r = run("accellm", 2);
  r.setting = "live";
  r.instances.clear();
  write_outputs(dir_, {r});
  fs::remove(dir_ / "accellm-roles.csv");
  fs::remove(dir_ / "accellm-utilisation.csv");
  auto path = write_report(dir_);
  ASSERT_TRUE(path) << path.err().what();
  const std::string html = read(*path);
  EXPECT_EQ(unbalanced_tags(html), "");
  EXPECT_EQ(count(html, "<svg "), 3u) << "the three CDFs only";
  EXPECT_NE(html.find("<h1>accellm load report</h1>"), std::string::npos);
  EXPECT_NE(html.find("times are wall-clock"), std::string::npos);
  EXPECT_NE(html.find("No KV memory samples in these outputs (accellm)"), std::string::npos);
  EXPECT_NE(html.find("accellm: no per-instance data in these outputs (the load client"),
            std::string::npos);
  EXPECT_NE(html.find("No price or power in these outputs"), std::string::npos);
}

// With --metrics a load run has instances, roles and memory, still no
// utilisation, price or power: those plots are there, and a note says so.
TEST_F(ReportHtml, ALoadRunWithScrapedInstancesPlotsRolesAndMemory) {
  metrics::run_record r = run("accellm", 2);
  r.setting = "live";
  r.busy_window = metrics::nanos{0};
  for (auto& i : r.instances) {
    i.busy_windows.clear();
    i.price_per_hour = 0;
    i.power_watts = 0;
  }
  write_outputs(dir_, {r});
  fs::remove(dir_ / "accellm-utilisation.csv");
  auto path = write_report(dir_);
  ASSERT_TRUE(path) << path.err().what();
  const std::string html = read(*path);
  EXPECT_EQ(unbalanced_tags(html), "");
  EXPECT_EQ(count(html, "<svg "), 3u + 1 + 1) << "CDFs, memory, the timeline";
  EXPECT_EQ(count(html, "<title>KV memory of the cluster over time</title>"), 1u);
  EXPECT_NE(html.find("roles as sampled from /metrics; no utilisation"), std::string::npos);
  EXPECT_NE(html.find("No price or power in these outputs"), std::string::npos);
}

// Bad input: an error naming the file and the spot, and no report written.
void expect_rejected(const fs::path& dir, const std::string& message) {
  auto path = write_report(dir);
  ASSERT_FALSE(path);
  EXPECT_NE(path.err().message().find(message), std::string::npos) << path.err().message();
  EXPECT_FALSE(fs::exists(dir / "report.html"));
  EXPECT_FALSE(fs::exists(dir / ".report.html.tmp"));
}

TEST_F(ReportHtml, MissingOrEmptyDirectoriesAreRejected) {
  expect_rejected(dir_, "no such directory");
  fs::create_directories(dir_);
  expect_rejected(dir_, "no simulate outputs");
}

TEST_F(ReportHtml, AMalformedCsvLineIsNamed) {
  write_outputs(dir_, {run("accellm", 2)});
  std::ofstream(dir_ / "accellm-memory.csv", std::ios::app) << "2.0,0,ten,0\n";
  expect_rejected(dir_, "accellm-memory.csv:6: column primary_blocks: 'ten' is not a number");
}

TEST_F(ReportHtml, AMissingSummaryFieldIsNamed) {
  write_outputs(dir_, {run("accellm", 2)});
  std::ofstream(dir_ / "summary.json") << R"({"runs": [{"policy": "accellm", "setting": ""}]})";
  expect_rejected(dir_, "summary.json: runs[0].offered_rate: missing or not a number");
  std::ofstream(dir_ / "summary.json") << "{\"runs\": [\n";
  expect_rejected(dir_, "summary.json: [json.exception.parse_error");
}

TEST_F(ReportHtml, AMissingPolicyFileIsNamed) {
  write_outputs(dir_, {run("accellm", 2)});
  fs::remove(dir_ / "accellm-instances.csv");
  expect_rejected(dir_, "accellm-instances.csv: no such file");
}

TEST_F(ReportHtml, AStaleReportSurvivesAFailedRun) {
  write_outputs(dir_, {run("accellm", 2)});
  std::ofstream(dir_ / "report.html") << "old";
  std::ofstream(dir_ / "accellm-requests.csv", std::ios::app) << "1,2\n";
  ASSERT_FALSE(write_report(dir_));
  EXPECT_EQ(read(dir_ / "report.html"), "old");
}

}  // namespace
}  // namespace accellm::report

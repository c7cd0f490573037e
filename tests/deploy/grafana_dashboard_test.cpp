// deploy/grafana/accellm-dashboard.json, the example dashboard: a Grafana
// dashboard model whose panels query only metrics the coordinator serves
// (docs/operations.md's table, which a live test holds /metrics to), and
// every one of those metrics somewhere.
#include "tests/support/documented_metrics.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <set>
#include <string>

namespace accellm::test {
namespace {

using nlohmann::json;

json dashboard() {
  std::ifstream in{std::string{ACCELLM_SOURCE_DIR} + "/deploy/grafana/accellm-dashboard.json"};
  return json::parse(in, nullptr, /*allow_exceptions=*/false);
}

// The accellm_ metric names an expression uses, a histogram's _bucket, _sum
// and _count series named by their metric.
std::set<std::string> metrics_in(const std::string& expr) {
  std::set<std::string> out;
  for (std::size_t at = expr.find("accellm_"); at != std::string::npos;
       at = expr.find("accellm_", at + 1)) {
    std::size_t end = at;
    while (end < expr.size() &&
           (std::islower(static_cast<unsigned char>(expr[end])) != 0 ||
            std::isdigit(static_cast<unsigned char>(expr[end])) != 0 || expr[end] == '_')) {
      ++end;
    }
    std::string name = expr.substr(at, end - at);
    for (const std::string suffix : {"_bucket", "_sum", "_count"}) {
      if (name.ends_with(suffix)) name.resize(name.size() - suffix.size());
    }
    out.insert(name);
    at = end - 1;
  }
  return out;
}

TEST(GrafanaDashboard, IsADashboardModelWithLaidOutPanels) {
  const json d = dashboard();
  ASSERT_TRUE(d.is_object()) << "deploy/grafana/accellm-dashboard.json is not valid JSON";
  EXPECT_FALSE(d.value("title", "").empty());
  EXPECT_FALSE(d.value("uid", "").empty());
  ASSERT_TRUE(d.contains("panels") && d["panels"].is_array() && !d["panels"].empty());
  std::set<int> ids;
  for (const json& p : d["panels"]) {
    const std::string title = p.value("title", "");
    EXPECT_FALSE(title.empty());
    EXPECT_TRUE(ids.insert(p.value("id", 0)).second) << title << ": repeated panel id";
    const json& g = p["gridPos"];
    EXPECT_GT(g.value("w", 0), 0) << title;
    EXPECT_GT(g.value("h", 0), 0) << title;
    EXPECT_LE(g.value("x", 0) + g.value("w", 0), 24) << title << ": wider than the grid";
    if (p.value("type", "") == "row") continue;
    EXPECT_EQ(p["datasource"].value("uid", ""), "${datasource}") << title;
    ASSERT_TRUE(p.contains("targets") && !p["targets"].empty()) << title << ": no query";
    std::set<std::string> refs;
    for (const json& t : p["targets"]) {
      EXPECT_FALSE(t.value("expr", "").empty()) << title;
      EXPECT_TRUE(refs.insert(t.value("refId", "")).second) << title << ": repeated refId";
    }
  }
}

TEST(GrafanaDashboard, QueriesExactlyTheDocumentedMetrics) {
  const std::set<std::string> promised = documented_metrics(ACCELLM_SOURCE_DIR);
  ASSERT_GE(promised.size(), 10u) << "docs/operations.md's metrics table was not found";
  const json d = dashboard();
  ASSERT_TRUE(d.is_object());
  std::set<std::string> used;
  for (const json& p : d["panels"]) {
    if (!p.contains("targets")) continue;
    for (const json& t : p["targets"]) {
      for (const std::string& m : metrics_in(t.value("expr", ""))) {
        EXPECT_EQ(promised.count(m), 1u)
            << p.value("title", "") << ": " << m << " is not a documented metric";
        used.insert(m);
      }
    }
  }
  for (const std::string& m : promised) {
    EXPECT_EQ(used.count(m), 1u) << m << " is on no panel";
  }
}

TEST(GrafanaDashboard, MetricNamesAreFoundInExpressions) {
  EXPECT_EQ(metrics_in("histogram_quantile(0.99, sum by (le) "
                       "(rate(accellm_time_to_first_token_seconds_bucket[5m])))"),
            (std::set<std::string>{"accellm_time_to_first_token_seconds"}));
  EXPECT_EQ(metrics_in("rate(accellm_e2e_request_latency_seconds_sum[1m]) / "
                       "rate(accellm_e2e_request_latency_seconds_count[1m])"),
            (std::set<std::string>{"accellm_e2e_request_latency_seconds"}));
  EXPECT_TRUE(metrics_in("up == 0").empty());
}

}  // namespace
}  // namespace accellm::test

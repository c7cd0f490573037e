// The Prometheus text format: golden text for each metric type, grouping of
// families, escaping, and the histogram value type.
#include "coordinator/http/prometheus.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace accellm::coordinator::http {
namespace {

TEST(Histogram, CountsEachObservationInTheFirstBucketThatHoldsIt) {
  histogram h{{0.1, 1.0}};
  h.observe(0.05);
  h.observe(0.1);  // a bound is inclusive (le = "less or equal")
  h.observe(0.5);
  h.observe(7.0);
  EXPECT_EQ(h.counts(), (std::vector<std::uint64_t>{2, 1, 1}));
  EXPECT_EQ(h.count(), 4u);
  EXPECT_DOUBLE_EQ(h.sum(), 7.65);
}

TEST(PrometheusWriter, CounterGolden) {
  prometheus_writer w;
  w.add_counter("accellm_requests_total", "Requests.", {}, 3);
  EXPECT_EQ(w.str(),
            "# HELP accellm_requests_total Requests.\n"
            "# TYPE accellm_requests_total counter\n"
            "accellm_requests_total 3\n");
}

TEST(PrometheusWriter, GaugesGroupByFamilyWithEscapedLabels) {
  prometheus_writer w;
  w.add_gauge("a_bytes", "A \\ help\nline.", {{"instance", "w\"1\\\n"}}, 1.5);
  w.add_gauge("b", "B.", {}, 0.25);
  w.add_gauge("a_bytes", "ignored", {{"instance", "w2"}, {"copy", "replica"}}, 1e-05);
  EXPECT_EQ(w.str(),
            "# HELP a_bytes A \\\\ help\\nline.\n"
            "# TYPE a_bytes gauge\n"
            "a_bytes{instance=\"w\\\"1\\\\\\n\"} 1.5\n"
            "a_bytes{instance=\"w2\",copy=\"replica\"} 1e-05\n"
            "# HELP b B.\n"
            "# TYPE b gauge\n"
            "b 0.25\n");
}

TEST(PrometheusWriter, HistogramGolden) {
  histogram h{{0.005, 0.1, 1.0}};
  h.observe(0.00390625);  // powers of two: the sum is exact
  h.observe(0.0625);
  h.observe(0.0625);
  h.observe(30.0);
  prometheus_writer w;
  w.add_histogram("accellm_ttft_seconds", "TTFT.", {{"pool", "p0"}}, h);
  EXPECT_EQ(w.str(),
            "# HELP accellm_ttft_seconds TTFT.\n"
            "# TYPE accellm_ttft_seconds histogram\n"
            "accellm_ttft_seconds_bucket{pool=\"p0\",le=\"0.005\"} 1\n"
            "accellm_ttft_seconds_bucket{pool=\"p0\",le=\"0.1\"} 3\n"
            "accellm_ttft_seconds_bucket{pool=\"p0\",le=\"1\"} 3\n"
            "accellm_ttft_seconds_bucket{pool=\"p0\",le=\"+Inf\"} 4\n"
            "accellm_ttft_seconds_sum{pool=\"p0\"} 30.12890625\n"
            "accellm_ttft_seconds_count{pool=\"p0\"} 4\n");
}

TEST(PrometheusWriter, EmptyHistogramWithoutLabels) {
  prometheus_writer w;
  w.add_histogram("h", "H.", {}, histogram{{1.0}});
  EXPECT_EQ(w.str(),
            "# HELP h H.\n"
            "# TYPE h histogram\n"
            "h_bucket{le=\"1\"} 0\n"
            "h_bucket{le=\"+Inf\"} 0\n"
            "h_sum 0\n"
            "h_count 0\n");
}

TEST(PrometheusWriter, ValuesInTheExpositionFormat) {
  EXPECT_EQ(format_value(0), "0");
  EXPECT_EQ(format_value(1000000), "1000000");
  EXPECT_EQ(format_value(17179869184.0), "17179869184");
  EXPECT_EQ(format_value(0.001), "0.001");
  EXPECT_EQ(format_value(-2.5), "-2.5");
  EXPECT_EQ(format_value(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(format_value(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(format_value(std::nan("")), "NaN");
  EXPECT_EQ(escape_label_value("plain"), "plain");
  EXPECT_EQ(escape_label_value("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
}

}  // namespace
}  // namespace accellm::coordinator::http

#include "workload/report/svg.hpp"

#include "tests/workload/report/markup.hpp"

#include <gtest/gtest.h>

#include <string>

namespace accellm::report {
namespace {

using testing::count;
using testing::unbalanced_tags;

// The plot area spans x 76..550 and y 310..40 (bottom to top) in every chart.
line_chart cdf_chart() {
  return {.title = "TTFT",
          .x = {.label = "time (ms)", .log = true},
          .y = {.label = "fraction", .log = false},
          .lines = {{.name = "accellm",
                     .colour = "#2ca02c",
                     .points = {{10, 0.25}, {100, 0.5}, {1000, 1.0}},
                     .dashed = false},
                    {.name = "vllm", .colour = "#1f77b4", .points = {{20, 1.0}}, .dashed = true}},
          .steps = true,
          .unit_y = true,
          .note = "first line\nsecond line"};
}

TEST(Svg, EscapesMarkupCharacters) {
  EXPECT_EQ(escape("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&#39;");
  EXPECT_EQ(escape("plain"), "plain");
}

TEST(Svg, LineChartHasTitleAxesTicksAndALegendEntryPerSeries) {
  const std::string svg = render(cdf_chart());
  EXPECT_EQ(unbalanced_tags(svg), "");
  EXPECT_EQ(count(svg, "<svg "), 1u);
  EXPECT_NE(svg.find("<title>TTFT</title>"), std::string::npos);
  EXPECT_NE(svg.find(">time (ms) (log scale)</text>"), std::string::npos);
  EXPECT_NE(svg.find(">fraction</text>"), std::string::npos);
  for (const char* tick : {">10<", ">100<", ">1000<", ">0<", ">0.2<", ">1<"}) {
    EXPECT_NE(svg.find(tick), std::string::npos) << tick;
  }
  EXPECT_NE(svg.find(">accellm</text>"), std::string::npos);
  EXPECT_NE(svg.find(">vllm</text>"), std::string::npos);
  EXPECT_NE(svg.find(">first line</text>"), std::string::npos);
  EXPECT_NE(svg.find(">second line</text>"), std::string::npos);
  EXPECT_EQ(count(svg, "stroke-dasharray"), 2u);  // vllm's line and its legend swatch
}

TEST(Svg, PointsLandWhereTheAxesSay) {
  const std::string svg = render(cdf_chart());
  // Log x over the decades 10..1000: 10 at the left edge, 100 in the middle,
  // 1000 at the right; y 0.25, 0.5, 1 of the way up. Steps: horizontal, then up.
  EXPECT_NE(svg.find("points=\"76.0,310.0 76.0,242.5 313.0,242.5 313.0,175.0 550.0,175.0 "
                     "550.0,40.0\""),
            std::string::npos)
      << svg;
}

TEST(Svg, LinearAxisEndsOnARoundTick) {
  line_chart c = cdf_chart();
  c.x.log = false;
  c.unit_y = false;
  c.lines = {{.name = "a", .colour = "red", .points = {{0, 0}, {5, 37}}, .dashed = false}};
  c.steps = false;
  const std::string svg = render(c);
  for (const char* tick : {">10<", ">20<", ">30<", ">40<"}) {
    EXPECT_NE(svg.find(tick), std::string::npos) << tick;
  }
  EXPECT_EQ(svg.find(">50<"), std::string::npos);
  EXPECT_EQ(count(svg, "<circle "), 2u);
}

TEST(Svg, LogAxisLeavesOutNonPositiveValuesAndAnEmptyChartSaysSo) {
  line_chart c = cdf_chart();
  c.lines = {{.name = "a", .colour = "red", .points = {{0, 0.5}, {-1, 1}}, .dashed = false}};
  const std::string svg = render(c);
  EXPECT_NE(svg.find(">no data</text>"), std::string::npos);
  EXPECT_EQ(unbalanced_tags(svg), "");
}

TEST(Svg, BarChartLabelsEveryBarWithNameAndValue) {
  const std::string svg =
      render(bar_chart{.title = "Goodput",
                       .y_label = "req/s",
                       .bars = {{.name = "vllm", .colour = "blue", .value = 4},
                                {.name = "accellm", .colour = "green", .value = 7.5}}});
  EXPECT_EQ(unbalanced_tags(svg), "");
  EXPECT_EQ(count(svg, "<rect "), 4u);  // two bars, two legend swatches
  EXPECT_NE(svg.find(">7.5</text>"), std::string::npos);
  EXPECT_NE(svg.find(">4</text>"), std::string::npos);
  EXPECT_NE(svg.find(">req/s</text>"), std::string::npos);
  EXPECT_NE(svg.find(">accellm</text>"), std::string::npos);
}

TEST(Svg, TimelineDrawsSegmentsAndTheLevelLine) {
  const std::string svg = render(timeline_chart{
      .title = "roles",
      .x_label = "time (s)",
      .x_end = 10,
      .lanes = {{.label = "i0 pair0",
                 .segments = {{.start = 0, .end = 5, .colour = "#f00", .title = "prefill"},
                              {.start = 5, .end = 10, .colour = "#00f", .title = "decode"}},
                 .level = {{0, 0}, {10, 1}}}},
      .legend = {{"prefill", "#f00"}, {"decode", "#00f"}},
      .level_name = "busy fraction"});
  EXPECT_EQ(unbalanced_tags(svg), "");
  // x over 0..10 maps onto 76..550: each half is 237 px wide.
  EXPECT_NE(svg.find("<rect x=\"76.0\" y=\"43.0\" width=\"237.0\" height=\"16.0\" fill=\"#f00\">"
                     "<title>prefill</title>"),
            std::string::npos)
      << svg;
  EXPECT_NE(svg.find("points=\"76.0,59.0 550.0,43.0\""), std::string::npos);
  EXPECT_NE(svg.find(">i0 pair0</text>"), std::string::npos);
  EXPECT_NE(svg.find(">busy fraction</text>"), std::string::npos);
}

}  // namespace
}  // namespace accellm::report

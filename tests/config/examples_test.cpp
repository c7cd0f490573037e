// Every cluster file shipped in deploy/examples loads, and the figures the
// examples' comments derive agree with the hardware catalogue.
#include "config/cluster_config.hpp"
#include "device/hardware_spec.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <map>

namespace accellm::config {
namespace {

const std::filesystem::path examples{ACCELLM_SOURCE_DIR "/deploy/examples"};

// All *.toml of deploy/examples by file name.
std::map<std::string, cluster_config> load_all() {
  std::map<std::string, cluster_config> out;
  for (const auto& entry : std::filesystem::directory_iterator{examples}) {
    if (entry.path().extension() != ".toml") continue;
    auto r = load_cluster_config(entry.path());
    EXPECT_TRUE(r.ok()) << entry.path() << ": " << r.err().what();
    if (r) out.emplace(entry.path().filename().string(), std::move(*r));
  }
  return out;
}

TEST(Examples, EveryFileLoads) {
  const auto all = load_all();
  EXPECT_GE(all.size(), 3u);
  for (const auto& [file, c] : all) {
    EXPECT_EQ(c.instances % 2, 0u) << file;
    EXPECT_FALSE(c.name.empty()) << file;
  }
}

// The written-out link, price and power equal what the defaults would be.
void expect_hardware_figures(const cluster_config& c, std::string_view hardware) {
  const device::hardware_spec& hw = *device::find_hardware(hardware);
  EXPECT_DOUBLE_EQ(c.link.bandwidth, hw.inter_node.bandwidth) << c.name;
  EXPECT_EQ(c.link.latency, hw.inter_node.latency) << c.name;
  EXPECT_NEAR(c.price_per_hour, c.tp * hw.price_per_hour, 1e-9) << c.name;
  EXPECT_DOUBLE_EQ(c.power_watts, c.tp * hw.tdp_watts) << c.name;
}

TEST(Examples, H100Llama70b) {
  auto r = load_cluster_config(examples / "h100-llama2-70b.toml");
  ASSERT_TRUE(r.ok()) << r.err().what();
  EXPECT_EQ(r->device, "sim:h100");
  EXPECT_EQ(r->tp, 8u);
  EXPECT_EQ(r->instances, 8u);
  EXPECT_EQ(r->model, "llama2-70b");
  expect_hardware_figures(*r, "h100");
  EXPECT_EQ(describe(*r), "8 x sim:h100 tp8 llama2-70b, link 43.5 GB/s 10 us");
}

TEST(Examples, Ascend910b2Llama70b) {
  auto r = load_cluster_config(examples / "ascend910b2-llama2-70b.toml");
  ASSERT_TRUE(r.ok()) << r.err().what();
  EXPECT_EQ(r->device, "sim:ascend910b2");
  EXPECT_EQ(r->tp, 8u);
  EXPECT_EQ(r->instances, 8u);
  expect_hardware_figures(*r, "ascend910b2");
}

TEST(Examples, SmallH100IsTwoPairs) {
  auto r = load_cluster_config(examples / "small-h100.toml");
  ASSERT_TRUE(r.ok()) << r.err().what();
  EXPECT_EQ(r->instances, 4u);
  expect_hardware_figures(*r, "h100");
  EXPECT_GT(r->slo.ttft_ms, 0.0);
}

}  // namespace
}  // namespace accellm::config

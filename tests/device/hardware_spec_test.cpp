#include "device/hardware_spec.hpp"

#include <gtest/gtest.h>

namespace accellm::device {
namespace {

const hardware_spec& get(const char* name) {
  const hardware_spec* h = find_hardware(name);
  EXPECT_NE(h, nullptr) << name;
  static const hardware_spec empty;
  return h ? *h : empty;
}

TEST(HardwareSpec, CatalogueHoldsTheThreeDevices) {
  EXPECT_EQ(known_hardware().size(), 3u);
  for (const char* name : {"h100", "a100", "ascend910b2"}) {
    EXPECT_EQ(get(name).name, name);
    EXPECT_EQ(get(name).check(), "") << name;
  }
  EXPECT_EQ(find_hardware("H100"), nullptr);
  EXPECT_EQ(find_hardware("sim:h100"), nullptr);
}

// Datasheet figures as notes/hardware.md section 0 lists them.
TEST(HardwareSpec, PeakFiguresMatchTheNotes) {
  const hardware_spec& h = get("h100");
  EXPECT_DOUBLE_EQ(h.peak_flops, 989.4e12);  // dense, not the 1,979 sparse figure
  EXPECT_DOUBLE_EQ(h.hbm_bandwidth, 3.35e12);
  EXPECT_EQ(h.hbm_bytes, 85'899'345'920u);
  EXPECT_DOUBLE_EQ(h.tdp_watts, 700.0);
  const hardware_spec& b = get("ascend910b2");
  EXPECT_DOUBLE_EQ(b.peak_flops, 353.9e12);
  EXPECT_DOUBLE_EQ(b.hbm_bandwidth, 1.6e12);
  EXPECT_EQ(b.hbm_bytes, 64ull << 30);
  EXPECT_DOUBLE_EQ(b.tdp_watts, 400.0);
  EXPECT_DOUBLE_EQ(get("a100").peak_flops, 312e12);
}

// Ridge points the notes derive: 295 FLOP/B (H100 SXM), 221 (910B2 cube).
TEST(HardwareSpec, RidgePoints) {
  EXPECT_NEAR(get("h100").peak_flops / get("h100").hbm_bandwidth, 295.0, 1.0);
  EXPECT_NEAR(get("ascend910b2").peak_flops / get("ascend910b2").hbm_bandwidth, 221.0, 1.0);
}

// Splitwise's cost figures: $38/h per DGX H100 (8 GPUs), H100/A100 = 2.15.
TEST(HardwareSpec, PricesFollowSplitwise) {
  EXPECT_NEAR(8 * get("h100").price_per_hour, 38.0, 0.2);
  EXPECT_NEAR(get("h100").price_per_hour / get("a100").price_per_hour, 2.15, 0.01);
  EXPECT_GT(get("ascend910b2").price_per_hour, 0.0);
}

TEST(HardwareSpec, AllReduceBusBandwidth) {
  const hardware_spec& h = get("h100");
  EXPECT_DOUBLE_EQ(h.allreduce_busbw(2), 370e9);  // NVSwitch: same for any group
  EXPECT_DOUBLE_EQ(h.allreduce_busbw(8), 370e9);
  EXPECT_DOUBLE_EQ(h.allreduce_busbw(1), 0.0);
  // HCCS full mesh: a pair shares one link (18 GB/s measured), 8 cards use 7
  // links: 126 GB/s, the measured 8-card 72 GB/s algbw times 2*7/8.
  const hardware_spec& b = get("ascend910b2");
  EXPECT_DOUBLE_EQ(b.allreduce_busbw(2), 18e9);
  EXPECT_NEAR(b.allreduce_busbw(8), 72e9 * 2 * 7 / 8, 1e6);
}

TEST(HardwareSpec, EfficienciesArePlausible) {
  for (const hardware_spec& h : known_hardware()) {
    EXPECT_LE(h.eta.gemm, 0.81) << h.name;  // MAMF ceiling on H100 is 80.3 %
    EXPECT_GE(h.eta.gemm, 0.45) << h.name;
    EXPECT_LT(h.eta.attention, h.eta.gemm) << h.name;
    // At most the copy ceiling measured on the H100 (3.02 of 3.35 TB/s).
    for (double e : {h.eta.hbm, h.eta.kv}) {
      EXPECT_GE(e, 0.5) << h.name;
      EXPECT_LE(e, 0.90) << h.name;
    }
    EXPECT_LE(h.intra_node.bandwidth, h.intra_node.nominal_bandwidth) << h.name;
    EXPECT_LE(h.inter_node.bandwidth, h.inter_node.nominal_bandwidth) << h.name;
    EXPECT_GT(h.intra_node.bandwidth, h.inter_node.bandwidth) << h.name;
  }
}

TEST(HardwareSpec, CheckRejectsBrokenSpecs) {
  hardware_spec h = get("h100");
  h.eta.hbm = 1.5;
  EXPECT_NE(h.check(), "");
  h = get("h100");
  h.peak_flops = 0;
  EXPECT_NE(h.check(), "");
  h = get("h100");
  h.memory_reserve = 1.0;
  EXPECT_NE(h.check(), "");
  h = get("h100");
  h.eta.kv = 0.0;
  EXPECT_NE(h.check(), "");
  h = get("h100");
  h.layer_overhead = std::chrono::nanoseconds(-1);
  EXPECT_NE(h.check(), "");
}

}  // namespace
}  // namespace accellm::device

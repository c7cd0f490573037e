#include "device/sim/kv_transfer.hpp"

#include "device/sim/roofline_model.hpp"
#include "tests/device/sim/batches.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace accellm::device::sim {
namespace {

using namespace std::chrono_literals;
using std::chrono::nanoseconds;

// 1 GB/s: one byte per ns, so byte counts read as times.
link_spec gbps_link(std::chrono::nanoseconds latency = 0ns) {
  return {"test", 1e9, 1e9, latency};
}

TEST(KvTransfer, LatencyPlusBytesOverBandwidth) {
  EXPECT_EQ(kv_transfer_time(1'000'000, gbps_link(10us)), 1ms + 10us);
  EXPECT_EQ(kv_transfer_time(0, gbps_link(10us)), 10us);
}

// notes/hardware.md 5.1: Llama-2-70B, 2048 tokens = 0.67 GB, 13 ms over IB
// NDR at 50 GB/s.
TEST(KvTransfer, Llama70bOverIbNdrMatchesTheNotes) {
  const std::uint64_t bytes = find_model("llama2-70b")->kv_bytes_per_token(dtype::bf16) * 2048;
  const link_spec ndr{"ndr", 50e9, 50e9, 0ns};
  const double ms = std::chrono::duration<double, std::milli>(kv_transfer_time(bytes, ndr)).count();
  EXPECT_NEAR(ms, 13.4, 0.2);
}

// Fast link: every layer's transfer (0.1 ms) finishes before the next layer
// is computed (1 ms), so only the last layer's transfer is exposed.
TEST(KvTransfer, FastLinkExposesOneLayer) {
  const auto r = simulate_layerwise(80, 1ms, 100'000, gbps_link());
  EXPECT_EQ(r.prefill_end, 80ms);
  EXPECT_EQ(r.exposed, 100us);
  EXPECT_EQ(r.serial, 8ms);
}

// Slow link: 10 layers of 1 ms compute, 3 ms transfer each. The link starts
// after layer 0 (1 ms) and never idles: it ends at 1 + 30 = 31 ms, so the
// exposed time is total transfer - prefill + one layer = 30 - 10 + 1 = 21 ms.
TEST(KvTransfer, SlowLinkExposesTransferMinusPrefillPlusOneLayer) {
  const auto r = simulate_layerwise(10, 1ms, 3'000'000, gbps_link());
  EXPECT_EQ(r.transfer_end, 31ms);
  EXPECT_EQ(r.exposed, 21ms);
  EXPECT_EQ(r.serial, 30ms);
}

// Uneven layers, by hand: compute 1, 1, 5 ms; transfers 3, 1, 1 ms.
// Layer 0 sends 1 -> 4; layer 1 waits for the link, 4 -> 5; layer 2 waits
// for its compute (done at 7), 7 -> 8. Exposed 1 ms.
TEST(KvTransfer, PipelineByHand) {
  const std::vector<nanoseconds> compute{1ms, 1ms, 5ms};
  const std::vector<std::uint64_t> bytes{3'000'000, 1'000'000, 1'000'000};
  const auto r = simulate_layerwise(compute, bytes, gbps_link());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->prefill_end, 7ms);
  EXPECT_EQ(r->transfer_end, 8ms);
  EXPECT_EQ(r->exposed, 1ms);
}

TEST(KvTransfer, EveryLayerPaysTheLatency) {
  const auto r = simulate_layerwise(4, 0ns, 0, gbps_link(10us));
  EXPECT_EQ(r.exposed, 40us);
  EXPECT_EQ(r.serial, 10us);
}

TEST(KvTransfer, MismatchedOrEmptyInputsFail) {
  const std::vector<nanoseconds> compute{1ms, 1ms};
  const std::vector<std::uint64_t> bytes{1};
  EXPECT_EQ(simulate_layerwise(compute, bytes, gbps_link()).err().code(), errc::invalid_argument);
  EXPECT_EQ(
      simulate_layerwise(std::vector<nanoseconds>{}, std::vector<std::uint64_t>{}, gbps_link())
          .err()
          .code(),
      errc::invalid_argument);
  EXPECT_EQ(simulate_layerwise(0, 1ms, 5, gbps_link()).exposed, 0ns);
}

// Llama-2-70B, 2048-token prefill on 8 H100s, each device streaming its 1/8
// of the KV over its own IB NDR NIC: the transfer hides behind the compute
// (notes/hardware.md 5.3: needs only a few GB/s) and one layer's shard is
// left exposed.
TEST(KvTransfer, Llama70bPrefillHidesItsTransfer) {
  const model_spec& m = *find_model("llama2-70b");
  const hardware_spec& h100 = *find_hardware("h100");
  auto model = roofline_model::create(m, h100, {8});
  ASSERT_TRUE(model.ok());
  const auto c = model->estimate(testing::one_prefill(2048));
  ASSERT_TRUE(c.ok());
  const std::uint64_t shard = m.kv_bytes_per_token_layer(dtype::bf16) * 2048 / 8;
  const auto r = simulate_layerwise(m.layers, c->per_layer, shard, h100.inter_node);
  EXPECT_EQ(r.exposed, kv_transfer_time(shard, h100.inter_node));
  EXPECT_LT(r.exposed, r.serial / 10);
}

}  // namespace
}  // namespace accellm::device::sim

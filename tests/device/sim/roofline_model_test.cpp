#include "device/sim/roofline_model.hpp"

#include "tests/device/sim/batches.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>

namespace accellm::device::sim {
namespace {

using namespace std::chrono_literals;
using testing::decodes;
using testing::one_prefill;

double ms(std::chrono::nanoseconds t) {
  return std::chrono::duration<double, std::milli>(t).count();
}

// A shape small enough to count by hand: 1 layer, hidden 64, 4 heads of 16,
// 2 KV heads (kv width 32), FFN 128, vocab 256.
model_spec hand_model() {
  model_spec m;
  m.name = "hand";
  m.layers = 1;
  m.hidden = 64;
  m.heads = 4;
  m.kv_heads = 2;
  m.ffn = 128;
  m.vocab = 256;
  m.max_context = 512;
  return m;
}

// Round numbers, every efficiency 1, no overhead.
hardware_spec hand_hardware(double flops, double bandwidth) {
  hardware_spec h = *find_hardware("h100");
  h.name = "hand";
  h.peak_flops = flops;
  h.hbm_bandwidth = bandwidth;
  h.eta = {1.0, 1.0, 1.0, 1.0};
  h.iteration_overhead = 0ns;
  h.layer_overhead = 0ns;
  h.allreduce = {fabric::switched, 1e9, 1000ns};
  return h;
}

roofline_model make(const model_spec& m, const hardware_spec& h, std::uint32_t tp) {
  auto r = roofline_model::create(m, h, {tp, dtype::bf16, dtype::bf16, dtype::bf16});
  EXPECT_TRUE(r.ok()) << (r ? "" : r.err().what());
  return std::move(r).value();
}

cost_breakdown estimate(const roofline_model& m, const batch& b) {
  auto r = m.estimate(b);
  EXPECT_TRUE(r.ok()) << (r ? "" : r.err().what());
  return std::move(r).value();
}

// Decode of 1 token after 10 cached, at 1 GB/s and 1 TFLOP/s: everything is
// memory-bound, so the time is the byte count in ns. Bytes by hand (bf16):
//   attn_norm, mlp_norm, final_norm: 2*64*2 + 64*2            =   384 each
//   qkv_proj  64x128: weights 16384 + in/out (64+128)*2      = 16768
//   attention: K,V of 10+1 read + 1 written (12*2*32*2) 1536,
//              Q read + O written 2*64*2 = 256                =  1792
//   o_proj    64x64: 8192 + 256                              =  8448
//   gate_proj, up_proj 64x128, down_proj 128x64             = 16768 each
//   mlp_act: 3*128*2                                         =   768
//   lm_head   64x256: 32768 + (64+256)*2                     = 33408
// Sum 112640 bytes -> 112640 ns.
TEST(Roofline, HandCountedDecodeIsMemoryBound) {
  const roofline_model m = make(hand_model(), hand_hardware(1e12, 1e9), 1);
  const cost_breakdown c = estimate(m, decodes(1, 10));
  EXPECT_EQ(c.total, 112640ns);
  ASSERT_NE(c.find("attention"), nullptr);
  EXPECT_DOUBLE_EQ(c.find("attention")->bytes, 1792.0);
  EXPECT_DOUBLE_EQ(c.find("attention")->flops, 4.0 * 64 * 11);  // 11 query-key pairs
  EXPECT_DOUBLE_EQ(c.find("qkv_proj")->flops, 2.0 * 64 * 128);
  EXPECT_DOUBLE_EQ(c.find("lm_head")->bytes, 33408.0);
  EXPECT_EQ(c.find("allreduce")->time, 0ns);  // one device
  EXPECT_GT(c.find("qkv_proj")->memory, c.find("qkv_proj")->compute);
}

// Prefill of 8 tokens at 1 GFLOP/s and 1 TB/s: compute-bound, time = FLOPs
// in ns. FLOPs by hand:
//   norms (attn, mlp, final) 4*8*64 = 2048 each            6144
//   qkv 2*8*64*128 = 131072, o 2*8*64*64 = 65536          196608
//   gate, up, down 3 * 131072                               393216
//   mlp_act 4*8*128                                           4096
//   attention, causal: 8*(0 + 9/2) = 36 pairs * 4*64          9216
//   lm_head, one output row: 2*64*256                        32768
// Sum 642048.
TEST(Roofline, HandCountedPrefillIsComputeBound) {
  const roofline_model m = make(hand_model(), hand_hardware(1e9, 1e12), 1);
  const cost_breakdown c = estimate(m, one_prefill(8));
  EXPECT_EQ(c.total, 642048ns);
  EXPECT_DOUBLE_EQ(c.find("attention")->flops, 9216.0);  // not 4*64*8*8 = 16384
  EXPECT_GT(c.find("gate_proj")->compute, c.find("gate_proj")->memory);
}

TEST(Roofline, AttentionEfficiencyAppliesToAttentionOnly) {
  hardware_spec h = hand_hardware(1e9, 1e12);
  h.eta.attention = 0.5;
  const cost_breakdown c = estimate(make(hand_model(), h, 1), one_prefill(8));
  EXPECT_EQ(c.find("attention")->time, 18432ns);  // 9216 FLOPs at 0.5 GFLOP/s
  EXPECT_EQ(c.total, 642048ns + 9216ns);
}

TEST(Roofline, OverheadIsAddedOnce) {
  hardware_spec h = hand_hardware(1e12, 1e9);
  h.iteration_overhead = 5us;
  const cost_breakdown c = estimate(make(hand_model(), h, 1), decodes(1, 10));
  EXPECT_EQ(c.total, 112640ns + 5us);
  EXPECT_EQ(c.overhead, 5us);
}

TEST(Roofline, KvEfficiencyAppliesToAttentionTrafficOnly) {
  hardware_spec h = hand_hardware(1e12, 1e9);
  h.eta.kv = 0.5;
  const roofline_model m = make(hand_model(), h, 1);
  const cost_breakdown c = estimate(m, decodes(1, 10));
  EXPECT_EQ(c.find("attention")->time, 3584ns);  // 1792 bytes at 0.5 GB/s
  EXPECT_EQ(c.total, 112640ns + 1792ns);
  EXPECT_EQ(m.iteration_time(decodes(1, 10)).value(), c.total);  // the decode table's path
}

// Two layers: the block's operators and its fixed cost count twice, the
// head once.
TEST(Roofline, LayerOverheadIsAddedPerLayer) {
  hardware_spec h = hand_hardware(1e12, 1e9);
  h.layer_overhead = 7us;
  h.iteration_overhead = 5us;
  model_spec two = hand_model();
  two.layers = 2;
  const roofline_model m = make(two, h, 1);
  const cost_breakdown c = estimate(m, decodes(1, 10));
  const auto block = 112640ns - 33408ns - 384ns;  // all but lm_head and final_norm
  EXPECT_EQ(c.per_layer, block + 7us);
  EXPECT_EQ(c.overhead, 2 * 7us + 5us);
  EXPECT_EQ(c.total, 2 * (block + 7us) + 33408ns + 384ns + 5us);
  EXPECT_EQ(m.iteration_time(decodes(1, 10)).value(), c.total);
}

// TP 2, decode of one token: each all-reduce moves 2*(1/2)*128 bytes at
// 1 GB/s = 128 ns plus alpha 1000 ns, two per layer; the logits all-gather
// moves (1/2) * 256*2 bytes = 256 ns plus alpha.
TEST(Roofline, HandCountedCollectives) {
  const cost_breakdown c =
      estimate(make(hand_model(), hand_hardware(1e12, 1e9), 2), decodes(1, 10));
  EXPECT_EQ(c.find("allreduce")->time, 2256ns);
  EXPECT_EQ(c.find("logits_gather")->time, 1256ns);
  EXPECT_TRUE(c.find("allreduce")->collective);
  EXPECT_FALSE(c.find("qkv_proj")->collective);
}

TEST(Roofline, NoLmHeadWithoutOutput) {
  const roofline_model m = make(hand_model(), hand_hardware(1e12, 1e9), 1);
  batch b{{testing::prefill_item(1, 0, 8, /*wants_output=*/false)}};
  EXPECT_EQ(estimate(m, b).find("lm_head"), nullptr);
}

TEST(Roofline, RejectsBadDeploymentsAndBatches) {
  const model_spec& l70 = *find_model("llama2-70b");
  const hardware_spec& h100 = *find_hardware("h100");
  EXPECT_EQ(roofline_model::create(l70, h100, {0}).err().code(), errc::invalid_argument);
  EXPECT_EQ(roofline_model::create(l70, h100, {3}).err().code(), errc::invalid_argument);
  EXPECT_EQ(roofline_model::create(l70, h100, {16}).err().code(), errc::invalid_argument);
  const roofline_model m = make(l70, h100, 8);
  EXPECT_EQ(m.estimate(batch{}).err().code(), errc::invalid_argument);
  batch two_token_decode = decodes(1, 5);
  two_token_decode.items[0].num_tokens = 2;
  EXPECT_EQ(m.estimate(two_token_decode).err().code(), errc::invalid_argument);
  EXPECT_EQ(m.estimate(one_prefill(0)).err().code(), errc::invalid_argument);
}

// --- Physics sanity on the real catalogue -------------------------------

class Llama70bH100 : public ::testing::Test {
 protected:
  const model_spec& model_ = *find_model("llama2-70b");
  roofline_model tp8_ = make(model_, *find_hardware("h100"), 8);
};

// iteration_time prices decode-only batches from a table (and a hoisted
// attention loop), everything else operator by operator: both agree with
// estimate()'s total to the nanosecond, on the catalogue and on the hand
// model, and a malformed batch is still refused.
TEST_F(Llama70bH100, IterationTimeIsTheEstimateTotal) {
  const model_spec hand = hand_model();
  const roofline_model small = make(hand, hand_hardware(1e12, 1e11), 1);
  for (const roofline_model* m : {static_cast<const roofline_model*>(&tp8_), &small}) {
    for (const std::uint32_t n : {1u, 7u, 64u, 512u, 513u}) {
      batch b = decodes(n, 100);
      for (std::uint32_t i = 0; i < n; ++i) b.items[i].context = 1 + (i * 7919) % 8192;
      const auto fast = m->iteration_time(b);
      ASSERT_TRUE(fast.ok());
      EXPECT_LE(std::chrono::abs(*fast - estimate(*m, b).total), 1ns) << n << " decodes";
    }
    batch mixed = decodes(5, 300);
    mixed.items.push_back(one_prefill(200).items[0]);
    mixed.items.back().request = 99;
    EXPECT_EQ(*m->iteration_time(mixed), estimate(*m, mixed).total);
  }
  batch two_token_decode = decodes(3, 5);
  two_token_decode.items[1].num_tokens = 2;
  EXPECT_EQ(tp8_.iteration_time(two_token_decode).err().code(), errc::invalid_argument);
}

TEST_F(Llama70bH100, PrefillOf2048TokensTakes60To150ms) {
  const double t = ms(estimate(tp8_, one_prefill(2048)).total);
  EXPECT_GT(t, 60.0);
  EXPECT_LT(t, 150.0);
}

TEST_F(Llama70bH100, DecodeStepAtBatch1Takes8To20ms) {
  const double t = ms(estimate(tp8_, decodes(1, 2048)).total);
  EXPECT_GT(t, 8.0);
  EXPECT_LT(t, 20.0);
}

// notes/hardware.md 4.2 rule of thumb: prefill ~ 2*N*s + 2*L*h*s^2 with N the
// parameter count: 2*68.98e9*2048 + 2*80*8192*2048^2 = 288 TFLOP. We skip
// the embedding and run the LM head on one row, ~2.1 TFLOP less.
TEST_F(Llama70bH100, PrefillFlopsMatchTheRuleOfThumb) {
  double flops = 0;
  for (const op_cost& op : estimate(tp8_, one_prefill(2048)).ops) flops += op.flops;
  EXPECT_NEAR(flops * 8 / 288e12, 1.0, 0.02);
}

// Decode reads the weights once (137.95 GB / 8 per device) plus the KV of
// the context (2048 * 320 KiB / 8).
TEST_F(Llama70bH100, DecodeBytesAreWeightsPlusKv) {
  double bytes = 0;
  for (const op_cost& op : estimate(tp8_, decodes(1, 2048)).ops) {
    if (!op.collective) bytes += op.bytes;
  }
  const double expected = 68'976'648'192.0 * 2 / 8 + 2048.0 * 327'680 / 8;
  EXPECT_NEAR(bytes / expected, 1.0, 0.03);
}

TEST_F(Llama70bH100, PrefillComputeBoundDecodeMemoryBound) {
  const cost_breakdown p = estimate(tp8_, one_prefill(2048));
  const cost_breakdown d = estimate(tp8_, decodes(1, 2048));
  for (const char* op : {"qkv_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}) {
    EXPECT_GT(p.find(op)->compute, p.find(op)->memory) << op;
    EXPECT_LT(d.find(op)->compute, d.find(op)->memory) << op;
    EXPECT_LT(d.find(op)->compute * 10, d.find(op)->memory) << op;  // far below the ridge
  }
  EXPECT_LT(d.find("attention")->compute, d.find("attention")->memory);
}

TEST_F(Llama70bH100, MoreWorkIsNeverFaster) {
  std::chrono::nanoseconds last{0};
  for (std::uint32_t n : {1u, 2u, 16u, 100u, 511u, 512u, 1000u, 2048u, 4096u, 8192u}) {
    const auto t = estimate(tp8_, one_prefill(n)).total;
    EXPECT_GE(t, last) << "prefill " << n;
    last = t;
  }
  last = {};
  for (std::uint32_t ctx : {0u, 1u, 100u, 2048u, 4096u, 32768u}) {
    const auto t = estimate(tp8_, decodes(8, ctx)).total;
    EXPECT_GE(t, last) << "context " << ctx;
    last = t;
  }
  last = {};
  for (std::uint32_t bs : {1u, 2u, 3u, 64u, 65u, 256u, 1024u}) {
    const auto t = estimate(tp8_, decodes(bs, 1024)).total;
    EXPECT_GE(t, last) << "batch " << bs;
    last = t;
  }
  // A chunk after a long context costs more than the same chunk alone.
  EXPECT_GT(estimate(tp8_, one_prefill(512, 3000)).total, estimate(tp8_, one_prefill(512)).total);
}

TEST_F(Llama70bH100, TensorParallelismScales) {
  const hardware_spec& h100 = *find_hardware("h100");
  const roofline_model tp2 = make(model_, h100, 2), tp4 = make(model_, h100, 4);
  const cost_breakdown p4 = estimate(tp4, one_prefill(2048)),
                       p8 = estimate(tp8_, one_prefill(2048));
  EXPECT_GT(estimate(tp2, one_prefill(2048)).total, p4.total);
  EXPECT_GT(p4.total, p8.total);
  // GEMM work per device halves from TP4 to TP8.
  EXPECT_NEAR(double(p4.find("gate_proj")->compute.count()) / p8.find("gate_proj")->compute.count(),
              2.0, 0.01);
  EXPECT_GT(estimate(tp2, decodes(1, 2048)).total, estimate(tp4, decodes(1, 2048)).total);
  EXPECT_GT(estimate(tp4, decodes(1, 2048)).total, estimate(tp8_, decodes(1, 2048)).total);
  // Collectives grow with tp for the same tokens: 0 at TP1 is checked above.
  EXPECT_GT(p8.find("allreduce")->time, estimate(tp2, one_prefill(2048)).find("allreduce")->time);
}

// Splitwise's measurement (vLLM 2023, TP2): decode 37 ms at batch 1, about
// 56 % of HBM peak. Decode is memory-bound: our preset, fitted to a stack
// that streams weights at 64-76 % of peak at batch 1, must be no slower than
// Splitwise's (5 % slack) and no faster than reading a TP-2 shard of the
// weights at the peak. Prefill 308 ms for 2048 tokens at 47 % of peak, where
// our fitted GEMM efficiency must be faster but not by 2x.
TEST_F(Llama70bH100, CrossCheckAgainstSplitwiseTp2) {
  const hardware_spec& h100 = *find_hardware("h100");
  const roofline_model tp2 = make(model_, h100, 2);
  const double decode = ms(estimate(tp2, decodes(1, 576)).total);
  EXPECT_LT(decode, 37.0 * 1.05);
  EXPECT_GT(decode, 1e3 * 2.0 * static_cast<double>(model_.params()) / 2 / h100.hbm_bandwidth);
  const double prefill = ms(estimate(tp2, one_prefill(2048)).total);
  EXPECT_LT(prefill, 308.0);
  EXPECT_GT(prefill, 308.0 / 2);
}

// Splitwise on A100 vs H100 (peers.md 12): prefill ~2.2-2.3x slower, decode
// ~1.4-1.5x slower, the same serving stack on both. The h100 factors are
// fitted to accellm's CUDA backend, whose fixed cost per block (launches)
// the uncalibrated a100 entry lacks; the A100 here runs with the H100's fixed
// costs, so that the ratio compares the GPUs, not two stacks.
TEST_F(Llama70bH100, A100IsSlowerByTheSplitwiseRatios) {
  hardware_spec same_stack = *find_hardware("a100");
  same_stack.iteration_overhead = find_hardware("h100")->iteration_overhead;
  same_stack.layer_overhead = find_hardware("h100")->layer_overhead;
  const roofline_model a100 = make(model_, same_stack, 8);
  const double prefill =
      ms(estimate(a100, one_prefill(2048)).total) / ms(estimate(tp8_, one_prefill(2048)).total);
  const double decode =
      ms(estimate(a100, decodes(1, 2048)).total) / ms(estimate(tp8_, decodes(1, 2048)).total);
  std::printf(
      "A100 / H100, llama2-70b tp8, the same fixed costs: prefill 2048 %.2fx, decode %.2fx\n",
      prefill, decode);
  EXPECT_GT(prefill, 2.0);
  EXPECT_LT(prefill, 3.2);
  EXPECT_GT(decode, 1.3);
  EXPECT_LT(decode, 1.7);
}

TEST(Roofline, AscendIsSlowerThanH100) {
  const model_spec& m = *find_model("llama2-70b");
  const roofline_model h = make(m, *find_hardware("h100"), 8);
  const roofline_model a = make(m, *find_hardware("ascend910b2"), 8);
  EXPECT_GT(estimate(a, one_prefill(2048)).total, estimate(h, one_prefill(2048)).total * 2);
  EXPECT_GT(estimate(a, decodes(1, 2048)).total, estimate(h, decodes(1, 2048)).total * 3 / 2);
}

}  // namespace
}  // namespace accellm::device::sim

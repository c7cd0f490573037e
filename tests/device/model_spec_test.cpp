#include "device/model_spec.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>

namespace accellm::device {
namespace {

const model_spec& get(const char* name) {
  const model_spec* m = find_model(name);
  EXPECT_NE(m, nullptr) << name;
  static const model_spec empty;
  return m ? *m : empty;
}

TEST(ModelSpec, CatalogueHoldsTheNamedModels) {
  for (const char* name : {"llama2-7b", "llama2-13b", "llama2-70b", "llama3-8b", "llama3-70b",
                           "cpu-tiny", "cpu-small"}) {
    const model_spec* m = find_model(name);
    ASSERT_NE(m, nullptr) << name;
    EXPECT_EQ(m->name, name);
    EXPECT_EQ(m->check(), "") << name;
  }
  EXPECT_EQ(known_models().size(), 7u);
  EXPECT_EQ(find_model("llama2-7B"), nullptr);
  EXPECT_EQ(find_model(""), nullptr);
}

// Published parameter counts (Hugging Face model cards / safetensors
// metadata; notes/hardware.md section 3 quotes 6.74 B, 13.0 B, 69.0 B and the
// exact Llama-3 counts).
TEST(ModelSpec, ParamsMatchPublishedCountsWithinOnePercent) {
  const std::pair<const char*, double> published[] = {{"llama2-7b", 6'738'415'616.0},
                                                      {"llama2-13b", 13'015'864'320.0},
                                                      {"llama2-70b", 68'976'648'192.0},
                                                      {"llama3-8b", 8'030'261'248.0},
                                                      {"llama3-70b", 70'553'706'496.0}};
  for (const auto& [name, count] : published) {
    const double ours = static_cast<double>(get(name).params());
    EXPECT_NEAR(ours / count, 1.0, 0.01) << name << ": " << ours;
  }
}

TEST(ModelSpec, ShapesAreTheHuggingFaceConfigs) {
  const model_spec& l70 = get("llama2-70b");
  EXPECT_EQ(l70.layers, 80u);
  EXPECT_EQ(l70.hidden, 8192u);
  EXPECT_EQ(l70.heads, 64u);
  EXPECT_EQ(l70.kv_heads, 8u);
  EXPECT_EQ(l70.ffn, 28672u);
  EXPECT_EQ(l70.vocab, 32000u);
  EXPECT_EQ(l70.max_context, 4096u);
  EXPECT_EQ(l70.head_dim(), 128u);
  const model_spec& l3 = get("llama3-8b");
  EXPECT_EQ(l3.vocab, 128256u);
  EXPECT_EQ(l3.max_context, 8192u);
  EXPECT_DOUBLE_EQ(l3.rope_theta, 500000.0);
  EXPECT_EQ(get("llama2-13b").kv_heads, 40u);  // no GQA in Llama-2-13B
}

// KV bytes per token, fp16, from notes/hardware.md 3.1 (512 KiB, 800 KiB,
// 320 KiB, 128 KiB).
TEST(ModelSpec, KvBytesPerTokenMatchTheNotes) {
  EXPECT_EQ(get("llama2-7b").kv_bytes_per_token(dtype::fp16), 512u * 1024);
  EXPECT_EQ(get("llama2-13b").kv_bytes_per_token(dtype::fp16), 800u * 1024);
  EXPECT_EQ(get("llama2-70b").kv_bytes_per_token(dtype::bf16), 320u * 1024);
  EXPECT_EQ(get("llama3-8b").kv_bytes_per_token(dtype::bf16), 128u * 1024);
  EXPECT_EQ(get("llama2-70b").kv_bytes_per_token_layer(dtype::bf16), 4u * 1024);
  EXPECT_EQ(get("llama2-70b").kv_bytes_per_token(dtype::fp8), 160u * 1024);
}

TEST(ModelSpec, CpuShapes) {
  const model_spec& tiny = get("cpu-tiny");
  EXPECT_EQ(tiny.layers, 2u);
  EXPECT_EQ(tiny.head_dim(), 16u);
  EXPECT_EQ(tiny.kv_width(), 32u);
  EXPECT_EQ(tiny.ffn, 176u);
  EXPECT_EQ(tiny.vocab, 256u);
  EXPECT_EQ(tiny.max_context, 512u);
  const model_spec& small = get("cpu-small");
  EXPECT_EQ(small.layers, 4u);
  EXPECT_EQ(small.head_dim(), 32u);
  EXPECT_EQ(small.kv_width(), 64u);
  EXPECT_EQ(small.ffn, 688u);
  EXPECT_EQ(small.max_context, 2048u);
  // cpu-tiny by hand: attention 64*64 + 2*64*32 + 64*64 = 12288, MLP
  // 3*64*176 = 33792, norms 128 -> 46208 per layer.
  EXPECT_EQ(tiny.layer_params(), 46208u);
  // 2 layers + embedding and head 2*256*64 + final norm 64.
  EXPECT_EQ(tiny.params(), 2u * 46208 + 32768 + 64);
}

TEST(ModelSpec, CheckRejectsInconsistentShapes) {
  model_spec m = get("cpu-tiny");
  m.heads = 3;  // 64 % 3 != 0
  EXPECT_NE(m.check(), "");
  m = get("cpu-tiny");
  m.kv_heads = 3;
  EXPECT_NE(m.check(), "");
  m = get("cpu-tiny");
  m.layers = 0;
  EXPECT_NE(m.check(), "");
  m = get("cpu-tiny");
  m.hidden = 4 * 3;  // head_dim 3 is odd: RoPE rotates pairs
  EXPECT_NE(m.check(), "");
  m = get("cpu-tiny");
  m.name.clear();
  EXPECT_NE(m.check(), "");
}

TEST(ModelSpec, DtypeNamesRoundTrip) {
  for (dtype t : {dtype::fp32, dtype::bf16, dtype::fp16, dtype::fp8}) {
    dtype parsed = dtype::fp32;
    ASSERT_TRUE(parse_dtype(to_string(t), parsed)) << to_string(t);
    EXPECT_EQ(parsed, t);
  }
  dtype out = dtype::fp8;
  EXPECT_FALSE(parse_dtype("BF16", out));
  EXPECT_FALSE(parse_dtype("int8", out));
  EXPECT_EQ(out, dtype::fp8);  // untouched on failure
  EXPECT_EQ(dtype_bytes(dtype::fp32), 4u);
}

}  // namespace
}  // namespace accellm::device

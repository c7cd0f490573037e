#include "device/sim/profile_model.hpp"

#include "device/sim/embedded_profiles.hpp"
#include "tests/device/sim/batches.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <string>

namespace accellm::device::sim {
namespace {

using testing::decodes;
using testing::one_prefill;

double ms(std::chrono::nanoseconds t) {
  return std::chrono::duration<double, std::milli>(t).count();
}

profile_model splitwise() {
  const embedded_profile* p = find_embedded_profile("h100-splitwise2023");
  EXPECT_NE(p, nullptr);
  auto table = parse_profile(p ? p->csv : "", "h100-splitwise2023.csv");
  EXPECT_TRUE(table.ok()) << (table ? "" : table.err().what());
  auto model = profile_model::create(std::move(table).value(), "h100-splitwise2023");
  EXPECT_TRUE(model.ok());
  return std::move(model).value();
}

// --- The shipped profile -------------------------------------------------

TEST(ProfileModel, ShippedProfileIsEmbedded) {
  ASSERT_GE(embedded_profiles().size(), 1u);  // device/profiles/h100-cuda-*.csv too
  const profile_model m = splitwise();
  EXPECT_EQ(m.table().model, "llama2-70b");
  EXPECT_EQ(m.table().hardware, "h100");
  EXPECT_EQ(m.table().tp, 2u);  // Splitwise's Llama-2-70B data are TP2
  EXPECT_EQ(m.table().prefill.size(), 3u);
  EXPECT_EQ(m.table().decode.size(), 3u);
  EXPECT_EQ(find_embedded_profile("nope"), nullptr);
}

// The anchors quoted in notes/hardware.md 4.6: 84 / 308 / 1339 ms prefill,
// 37.0 / 42.0 / 42.3 ms decode at batch 1 / 16 / 64.
TEST(ProfileModel, ReturnsTheAnchorsExactly) {
  const profile_model m = splitwise();
  EXPECT_DOUBLE_EQ(ms(m.prefill_time(1, 512)), 84.0);
  EXPECT_DOUBLE_EQ(ms(m.prefill_time(1, 2048)), 308.0);
  EXPECT_DOUBLE_EQ(ms(m.prefill_time(1, 8192)), 1339.0);
  EXPECT_DOUBLE_EQ(ms(m.decode_time(1, 576)), 37.0);
  EXPECT_DOUBLE_EQ(ms(m.decode_time(16, 576)), 42.0);
  EXPECT_DOUBLE_EQ(ms(m.decode_time(64, 576)), 42.3);
}

TEST(ProfileModel, InterpolatesBetweenAnchors) {
  const profile_model m = splitwise();
  EXPECT_DOUBLE_EQ(ms(m.prefill_time(1, 1280)), (84.0 + 308.0) / 2);
  EXPECT_NEAR(ms(m.decode_time(8, 576)), 37.0 + 5.0 * 7 / 15, 1e-6);
  // One context per batch size in this profile: no context dependence.
  EXPECT_DOUBLE_EQ(ms(m.decode_time(16, 4000)), 42.0);
}

TEST(ProfileModel, ExtrapolatesLinearlyPastTheEnds) {
  const profile_model m = splitwise();
  // (308 - 84) / 1536 ms per token, 384 tokens below the first anchor.
  EXPECT_NEAR(ms(m.prefill_time(1, 128)), 84.0 - 56.0, 1e-6);
  // (1339 - 308) / 6144 ms per token, 8192 tokens past the last anchor.
  EXPECT_NEAR(ms(m.prefill_time(1, 16384)), 1339.0 + 1031.0 * 8192 / 6144, 1e-6);
  EXPECT_NEAR(ms(m.decode_time(128, 576)), 42.3 + 0.3 * 64 / 48, 1e-6);
}

TEST(ProfileModel, BatchesUseTotalTokens) {
  const profile_model m = splitwise();
  batch two;  // 2 x 1024 prompt tokens = 2048 batch tokens
  two.items = {testing::prefill_item(1, 0, 1024), testing::prefill_item(2, 0, 1024)};
  EXPECT_DOUBLE_EQ(ms(*m.iteration_time(two)), 308.0);
  batch mixed = decodes(8, 700);  // 2040 prompt + 8 decode tokens
  mixed.items.push_back(testing::prefill_item(99, 0, 2040));
  EXPECT_DOUBLE_EQ(ms(*m.iteration_time(mixed)), 308.0);
  EXPECT_DOUBLE_EQ(ms(*m.iteration_time(decodes(16, 576))), 42.0);
  EXPECT_EQ(m.estimate(batch{}).err().code(), errc::invalid_argument);
}

// Two batch sizes, by hand. Batch 1: 100 -> 10 ms, 200 -> 20 ms. Batch 4:
// 100 tokens each (400 total) -> 50 ms, 200 each (800) -> 90 ms. Query batch
// 2 with 600 tokens: batch-1 line at 600 = 60, batch-4 line at 600 = 70,
// one third of the way from batch 1 to 4 -> 63.33 ms.
TEST(ProfileModel, InterpolatesAcrossBatchSizes) {
  const char* csv =
      "kind,batch,tokens,time_ms\n"
      "prefill,1,100,10\nprefill,1,200,20\nprefill,4,100,50\nprefill,4,200,90\n"
      "decode,1,100,10\ndecode,1,300,14\ndecode,3,100,20\n";
  auto m = profile_model::create(*parse_profile(csv, "t.csv"), "t");
  ASSERT_TRUE(m.ok());
  EXPECT_NEAR(ms(m->prefill_time(2, 600)), 60.0 + 10.0 / 3, 1e-6);
  EXPECT_NEAR(ms(m->decode_time(1, 200)), 12.0, 1e-6);
  // Batch 3 has one point: constant 20 over context. At batch 2, context
  // 300: (14 + 20) / 2.
  EXPECT_NEAR(ms(m->decode_time(2, 300)), 17.0, 1e-6);
}

TEST(ProfileModel, InterpolateHandlesDegenerateInputs) {
  EXPECT_EQ(interpolate({}, 3.0), 0.0);
  const std::pair<double, double> one[] = {{5.0, 7.0}};
  EXPECT_EQ(interpolate(one, -100.0), 7.0);
  const std::pair<double, double> two[] = {{0.0, 0.0}, {10.0, 5.0}};
  EXPECT_DOUBLE_EQ(interpolate(two, 20.0), 10.0);
  EXPECT_DOUBLE_EQ(interpolate(two, -10.0), -5.0);
}

TEST(ProfileModel, NeverNegative) {
  const char* csv =
      "kind,batch,tokens,time_ms\nprefill,1,100,1\nprefill,1,200,100\n"
      "decode,1,1,1\n";
  auto m = profile_model::create(*parse_profile(csv, "t.csv"), "t");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->prefill_time(1, 1).count(), 0);
}

TEST(ProfileModel, CreateRejectsIncompleteOrRepeatedTables) {
  profile_table t;
  t.prefill.push_back({1, 100, 5.0});
  EXPECT_EQ(profile_model::create(t, "x").err().code(), errc::invalid_argument);
  t.decode.push_back({1, 100, 5.0});
  EXPECT_TRUE(profile_model::create(t, "x").ok());
  t.decode.push_back({1, 100, 6.0});
  EXPECT_EQ(profile_model::create(t, "x").err().code(), errc::invalid_argument);
}

// --- Parsing -------------------------------------------------------------

constexpr const char* good_rows = "prefill,1,512,84\ndecode,1,576,37\n";

TEST(ProfileCsv, AcceptsCommentsBlankLinesCrlfAndSpaces) {
  const std::string csv =
      "# header comment\r\n\r\n@model, llama2-70b\r\n@tp,2\r\n"
      " kind , batch,tokens,time_ms \r\n# mid comment\r\n"
      "prefill, 1, 512, 84.5\r\ndecode,1,576,37\r\n";
  auto t = parse_profile(csv, "ok.csv");
  ASSERT_TRUE(t.ok()) << t.err().what();
  EXPECT_EQ(t->model, "llama2-70b");
  EXPECT_EQ(t->tp, 2u);
  EXPECT_EQ(t->hardware, "");
  EXPECT_DOUBLE_EQ(t->prefill.at(0).time_ms, 84.5);
}

// Each malformed input fails with errc::malformed and a message naming the
// file, the line and the reason.
void expect_malformed(const std::string& csv, const std::string& where, const std::string& why) {
  auto t = parse_profile(csv, "p.csv");
  ASSERT_FALSE(t.ok()) << csv;
  EXPECT_EQ(t.err().code(), errc::malformed);
  EXPECT_EQ(t.err().message().rfind(where, 0), 0u) << t.err().message();
  EXPECT_NE(t.err().message().find(why), std::string::npos) << t.err().message();
}

const std::string header = "kind,batch,tokens,time_ms\n";

TEST(ProfileCsv, RowBeforeHeader) {
  expect_malformed(std::string{"# c\n"} + good_rows, "p.csv:2:", "expected the header row");
}
TEST(ProfileCsv, WrongHeader) {
  expect_malformed("kind,batch,time_ms,tokens\n", "p.csv:1:", "expected the header row");
}
TEST(ProfileCsv, WrongFieldCount) {
  expect_malformed(header + "prefill,1,512\n", "p.csv:2:", "expected 4 fields");
  expect_malformed(header + "prefill,1,512,84,9\n", "p.csv:2:", "got 5");
}
TEST(ProfileCsv, UnknownKind) {
  expect_malformed(header + good_rows + "warmup,1,1,1\n", "p.csv:4:", "kind 'warmup'");
}
TEST(ProfileCsv, BadBatch) {
  expect_malformed(header + "prefill,0,512,84\n", "p.csv:2:", "batch '0'");
  expect_malformed(header + "prefill,1.5,512,84\n", "p.csv:2:", "batch '1.5'");
  expect_malformed(header + "prefill,99999999,512,84\n", "p.csv:2:", "batch '99999999'");
}
TEST(ProfileCsv, BadTokens) {
  expect_malformed(header + "decode,1,-5,37\n", "p.csv:2:", "tokens '-5'");
  expect_malformed(header + "decode,1,,37\n", "p.csv:2:", "tokens ''");
}
TEST(ProfileCsv, BadTime) {
  expect_malformed(header + "decode,1,5,0\n", "p.csv:2:", "time_ms '0'");
  expect_malformed(header + "decode,1,5,-3\n", "p.csv:2:", "time_ms '-3'");
  expect_malformed(header + "decode,1,5,nan\n", "p.csv:2:", "time_ms 'nan'");
  expect_malformed(header + "decode,1,5,inf\n", "p.csv:2:", "time_ms 'inf'");
  expect_malformed(header + "decode,1,5,84ms\n", "p.csv:2:", "time_ms '84ms'");
}
TEST(ProfileCsv, DuplicateAnchor) {
  expect_malformed(header + good_rows + "prefill,1,512,90\n", "p.csv:4:", "duplicate prefill");
}
TEST(ProfileCsv, UnknownMetadata) {
  expect_malformed("@gpu,h100\n" + header + good_rows, "p.csv:1:", "unknown metadata @gpu");
}
TEST(ProfileCsv, RepeatedMetadata) {
  expect_malformed("@tp,2\n@tp,2\n" + header + good_rows, "p.csv:2:", "given twice");
}
TEST(ProfileCsv, BadMetadataValue) {
  expect_malformed("@tp,two\n" + header + good_rows, "p.csv:1:", "@tp 'two'");
  expect_malformed("@model\n" + header + good_rows, "p.csv:1:", "2 fields");
  expect_malformed("@model,\n" + header + good_rows, "p.csv:1:", "empty value");
}
TEST(ProfileCsv, MissingSections) {
  expect_malformed("", "p.csv: no header row", "no header row");
  expect_malformed(header + "decode,1,5,1\n", "p.csv: no prefill rows", "no prefill");
  expect_malformed(header + "prefill,1,5,1\n", "p.csv: no decode rows", "no decode");
}

TEST(ProfileCsv, LoadsFromAFile) {
  const std::string path = ::testing::TempDir() + "accellm_profile_test.csv";
  {
    std::ofstream out{path};
    out << header << good_rows;
  }
  auto t = load_profile(path);
  ASSERT_TRUE(t.ok()) << t.err().what();
  EXPECT_EQ(t->prefill.size(), 1u);
  auto missing = load_profile(path + ".does-not-exist");
  EXPECT_EQ(missing.err().code(), errc::io_failure);
}

}  // namespace
}  // namespace accellm::device::sim

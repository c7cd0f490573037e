#include "device/sim/model_table.hpp"

#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

namespace accellm::device::sim {
namespace {

model_table_options options(std::vector<std::string> devices, std::uint32_t tp,
                            table_format format = table_format::table) {
  model_table_options o;
  o.devices = std::move(devices);
  o.tp = tp;
  o.format = format;
  return o;
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in{text};
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

std::vector<std::string> fields(const std::string& line) {
  std::vector<std::string> out;
  std::istringstream in{line};
  for (std::string f; std::getline(in, f, ',');) out.push_back(f);
  return out;
}

TEST(ModelTable, TableHasHeaderAndEveryRow) {
  auto t = model_table(*find_model("llama2-70b"), options({"sim:h100"}, 8));
  ASSERT_TRUE(t.ok()) << t.err().what();
  const std::string& s = t->text;
  EXPECT_NE(s.find("llama2-70b on sim:h100"), std::string::npos) << s;
  EXPECT_NE(s.find("327680 bytes per token"), std::string::npos) << s;
  EXPECT_NE(s.find("capacity 1466432 tokens"), std::string::npos) << s;  // 91652 * 16
  EXPECT_NE(s.find("8192*"), std::string::npos) << s;                    // beyond max_context 4096
  EXPECT_NE(s.find("%peak"), std::string::npos);
  EXPECT_NE(s.find("%HBM"), std::string::npos);
  EXPECT_TRUE(t->skipped.empty());
}

// CSV: one header and 7 prefill + 9 decode rows per device; the numbers are
// the cost model's and pass the same sanity ranges.
TEST(ModelTable, CsvRowsCarryTheTimes) {
  auto t = model_table(*find_model("llama2-70b"), options({"sim:h100"}, 8, table_format::csv));
  ASSERT_TRUE(t.ok()) << t.err().what();
  const auto rows = lines(t->text);
  ASSERT_EQ(rows.size(), 1u + 7 + 9);
  const auto head = fields(rows[0]);
  ASSERT_EQ(head.at(7), "time_ms");
  for (std::size_t i = 1; i < rows.size(); ++i) EXPECT_EQ(fields(rows[i]).size(), head.size());
  const auto prefill_2048 = fields(rows[5]);
  EXPECT_EQ(prefill_2048.at(3), "prefill");
  EXPECT_EQ(prefill_2048.at(4), "2048");
  const double p = std::stod(prefill_2048.at(7));
  EXPECT_GT(p, 60.0);
  EXPECT_LT(p, 150.0);
  const auto decode_1 = fields(rows[8]);
  EXPECT_EQ(decode_1.at(3), "decode");
  EXPECT_EQ(decode_1.at(6), "2048");
  const double d = std::stod(decode_1.at(7));
  EXPECT_GT(d, 8.0);
  EXPECT_LT(d, 20.0);
  // % of HBM peak = GB/s / 3350: the napkin math is consistent.
  EXPECT_NEAR(std::stod(decode_1.at(14)), std::stod(decode_1.at(13)) / 3350 * 100, 0.05);
}

TEST(ModelTable, AllDevices) {
  auto t = model_table(*find_model("llama2-70b"), options({"all"}, 8, table_format::csv));
  ASSERT_TRUE(t.ok()) << t.err().what();
  EXPECT_EQ(lines(t->text).size(), 1u + 4 * 16);
  // The profile row of 2048 prompt tokens is the Splitwise anchor.
  EXPECT_NE(t->text.find("sim:h100-splitwise2023,llama2-70b,8,prefill,2048,1,0,308.0000"),
            std::string::npos)
      << t->text;
}

TEST(ModelTable, AllSkipsDevicesThatCannotServeTheModel) {
  auto t = model_table(*find_model("llama3-8b"), options({"all"}, 1));
  ASSERT_TRUE(t.ok()) << t.err().what();
  ASSERT_EQ(t->skipped.size(), 1u);
  EXPECT_EQ(t->skipped[0].rfind("sim:h100-splitwise2023:", 0), 0u) << t->skipped[0];
  EXPECT_NE(t->text.find("llama3-8b on sim:ascend910b2"), std::string::npos);
  // Named explicitly, the same device is an error.
  auto named = model_table(*find_model("llama3-8b"), options({"sim:h100-splitwise2023"}, 1));
  EXPECT_EQ(named.err().code(), errc::unsupported);
}

TEST(ModelTable, BadOptions) {
  const model_spec& l70 = *find_model("llama2-70b");
  EXPECT_EQ(model_table(l70, options({"sim:h100"}, 0)).err().code(), errc::invalid_argument);
  EXPECT_EQ(model_table(l70, options({"sim:h100"}, 3)).err().code(), errc::invalid_argument);
  EXPECT_EQ(model_table(l70, options({"all"}, 3)).err().code(), errc::invalid_argument);
  EXPECT_EQ(model_table(l70, options({"sim:tpu"}, 8)).err().code(), errc::not_found);
  EXPECT_EQ(model_table(l70, options({}, 8)).err().code(), errc::invalid_argument);
  // All devices out of memory: the first error comes back.
  EXPECT_EQ(model_table(l70, options({"all"}, 1)).err().code(), errc::out_of_memory);
  model_table_options zero = options({"sim:h100"}, 8);
  zero.context = 0;
  EXPECT_EQ(model_table(l70, zero).err().code(), errc::invalid_argument);
}

// The Splitwise profile, extrapolated to batch 256, claims more than the H100's
// HBM bandwidth: the table must flag that row; the roofline never exceeds peak.
TEST(ModelTable, FlagsRowsFasterThanTheHardware) {
  auto profile = model_table(*find_model("llama2-70b"), options({"sim:h100-splitwise2023"}, 8));
  ASSERT_TRUE(profile.ok()) << profile.err().what();
  EXPECT_NE(profile->text.find("256!"), std::string::npos) << profile->text;
  EXPECT_NE(profile->text.find("faster than the HBM allows"), std::string::npos);
  EXPECT_EQ(profile->text.find("64!"), std::string::npos) << profile->text;
  auto roofline = model_table(*find_model("llama2-70b"), options({"sim:h100"}, 8));
  ASSERT_TRUE(roofline.ok()) << roofline.err().what();
  EXPECT_EQ(roofline->text.find('!'), std::string::npos) << roofline->text;
}

}  // namespace
}  // namespace accellm::device::sim

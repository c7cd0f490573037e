#include "workload/report/csv_table.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace accellm::report {
namespace {

namespace fs = std::filesystem;

class CsvTable : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::path{::testing::TempDir()} / (std::string{"accellm_csv_"} + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path write(const std::string& text) {
    const fs::path p = dir_ / "t.csv";
    std::ofstream(p, std::ios::binary) << text;
    return p;
  }

  fs::path dir_;
};

TEST_F(CsvTable, ReadsNumbersEmptyFieldsAndQuotedText) {
  auto t = read_csv(write("id,name,ttft_ms\n1,\"a,\"\"b\"\"\",12.5\n2,c,\n"));
  ASSERT_TRUE(t) << t.err().what();
  ASSERT_EQ(t->rows(), 2u);
  auto name = t->column("name");
  auto ttft = t->column("ttft_ms");
  ASSERT_TRUE(name && ttft);
  EXPECT_EQ(t->text(0, *name), "a,\"b\"");
  auto v = t->number(0, *ttft);
  ASSERT_TRUE(v);
  EXPECT_DOUBLE_EQ(*v, 12.5);
  auto missing = t->maybe_number(1, *ttft);
  ASSERT_TRUE(missing);
  EXPECT_FALSE(missing->has_value());
}

TEST_F(CsvTable, ErrorsNameTheFileLineAndColumn) {
  const fs::path p = write("id,ttft_ms\n1,3\n2,x\n");
  auto t = read_csv(p);
  ASSERT_TRUE(t);
  auto bad = t->number(1, 1);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.err().code(), errc::malformed);
  EXPECT_EQ(bad.err().message(), p.string() + ":3: column ttft_ms: 'x' is not a number");
  auto empty = t->number(0, 0);
  EXPECT_TRUE(empty);
  auto col = t->column("jct_ms");
  ASSERT_FALSE(col);
  EXPECT_EQ(col.err().message(), p.string() + ":1: no column jct_ms in the header");
}

TEST_F(CsvTable, RowsOfTheWrongWidthAndUnclosedQuotesAreRejected) {
  auto t = read_csv(write("a,b\n1,2\n1,2,3\n"));
  ASSERT_FALSE(t);
  EXPECT_NE(t.err().message().find("t.csv:3: 3 fields, the header has 2"), std::string::npos)
      << t.err().message();
  auto q = read_csv(write("a,b\n\"1,2\n"));
  ASSERT_FALSE(q);
  EXPECT_NE(q.err().message().find("t.csv:2: unterminated quoted field"), std::string::npos);
}

TEST_F(CsvTable, MissingAndEmptyFiles) {
  auto none = read_csv(dir_ / "nope.csv");
  ASSERT_FALSE(none);
  EXPECT_EQ(none.err().code(), errc::not_found);
  auto empty = read_csv(write(""));
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.err().code(), errc::malformed);
}

}  // namespace
}  // namespace accellm::report

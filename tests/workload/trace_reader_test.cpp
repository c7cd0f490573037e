#include "workload/trace_reader.hpp"

#include "tests/workload/print.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>

namespace accellm::workload {
namespace {

using namespace std::chrono_literals;
using std::chrono::nanoseconds;

constexpr std::string_view azure_text =
    "TIMESTAMP,ContextTokens,GeneratedTokens\n"
    "2023-11-16 18:15:46.6805900,374,44\n"
    "2023-11-16 18:15:50.9951690,396,109\n"
    "2023-11-16 18:15:50.9951690,879,2\n";

constexpr std::string_view splitwise_text =
    "request_id,request_type,application_id,arrival_timestamp,batch_size,prompt_size,token_size\n"
    "0,2,0,0.5,1,1020,129\n"
    "1,2,0,0.75,1,500,7\n";

constexpr std::string_view mooncake_text =
    R"({"timestamp": 27482, "input_length": 6955, "output_length": 52, "hash_ids": [46, 47]})"
    "\n\n"
    R"({"timestamp": 30535, "input_length": 6472, "output_length": 26})"
    "\n";

// Parses text that must fail and returns the message (malformed expected).
std::string failure(std::string_view text, std::string_view source = "trace.csv") {
  const auto t = parse_trace(text, source);
  if (t.ok()) return "<parsed " + std::to_string(t->size()) + " requests>";
  EXPECT_EQ(t.err().code(), errc::malformed) << t.err().message();
  return t.err().message();
}

TEST(TraceReader, AzureCsv) {
  trace_format f = trace_format::mooncake;
  const auto t = parse_trace(azure_text, "azure.csv", &f);
  ASSERT_TRUE(t.ok()) << t.err().what();
  EXPECT_EQ(f, trace_format::azure);
  const trace want{{1, 0ns, 374, 44}, {2, 4'314'579'000ns, 396, 109}, {3, 4'314'579'000ns, 879, 2}};
  EXPECT_EQ(*t, want);
}

TEST(TraceReader, SplitwiseCsv) {
  trace_format f = trace_format::azure;
  const auto t = parse_trace(splitwise_text, "sw.csv", &f);
  ASSERT_TRUE(t.ok()) << t.err().what();
  EXPECT_EQ(f, trace_format::splitwise);
  const trace want{{1, 0ns, 1020, 129}, {2, 250ms, 500, 7}};
  EXPECT_EQ(*t, want);
}

TEST(TraceReader, MooncakeJsonLines) {
  trace_format f = trace_format::azure;
  const auto t = parse_trace(mooncake_text, "mc.jsonl", &f);
  ASSERT_TRUE(t.ok()) << t.err().what();
  EXPECT_EQ(f, trace_format::mooncake);
  const trace want{{1, 0ns, 6955, 52}, {2, 3053ms, 6472, 26}};
  EXPECT_EQ(*t, want);
}

TEST(TraceReader, MooncakeFractionalMilliseconds) {
  const auto t = parse_trace(
      "{\"timestamp\": 0.5, \"input_length\": 1, \"output_length\": 1}\n"
      "{\"timestamp\": 2.25, \"input_length\": 2, \"output_length\": 3}",
      "mc");
  ASSERT_TRUE(t.ok()) << t.err().what();
  EXPECT_EQ((*t)[1].arrival, 1'750'000ns);
}

TEST(TraceReader, CrlfBomBlankLinesAndNoFinalNewline) {
  const auto t = parse_trace(
      "\xEF\xBB\xBF\r\nTIMESTAMP,ContextTokens,GeneratedTokens\r\n"
      "2023-11-16 18:15:46.68,10,20\r\n\r\n"
      "2023-11-16 18:15:47,30,40",
      "crlf.csv");
  ASSERT_TRUE(t.ok()) << t.err().what();
  const trace want{{1, 0ns, 10, 20}, {2, 320ms, 30, 40}};
  EXPECT_EQ(*t, want);
}

TEST(TraceReader, CsvColumnsAreFoundByName) {
  const auto t = parse_trace(
      "GeneratedTokens,Extra,ContextTokens,TIMESTAMP\n"
      "5,x,6,2023-01-01 00:00:00\n",
      "reordered.csv");
  ASSERT_TRUE(t.ok()) << t.err().what();
  const trace want{{1, 0ns, 6, 5}};
  EXPECT_EQ(*t, want);
}

TEST(TraceReader, BadFieldsNameLineAndColumn) {
  EXPECT_EQ(failure("TIMESTAMP,ContextTokens,GeneratedTokens\n"
                    "2023-11-16 18:15:46,1,2\n"
                    "2023-11-16 18:15:47,1,abc\n"),
            "trace.csv:3: GeneratedTokens: \"abc\" is not a non-negative integer");
  EXPECT_EQ(failure("TIMESTAMP,ContextTokens,GeneratedTokens\n"
                    "2023-11-16 18:15:46,1\n"),
            "trace.csv:2: expected 3 columns, found 2");
  EXPECT_EQ(failure("TIMESTAMP,ContextTokens,GeneratedTokens\n"
                    "2023-11-16 18:15:46,1,2,3\n"),
            "trace.csv:2: expected 3 columns, found 4");
  EXPECT_EQ(failure("TIMESTAMP,ContextTokens,GeneratedTokens\n"
                    "2023-11-16 18:15:46,0,2\n"),
            "trace.csv:2: ContextTokens: 0, a request needs at least 1 prompt token");
  EXPECT_EQ(failure("TIMESTAMP,ContextTokens,GeneratedTokens\n"
                    "\n"
                    "2023-11-16 18:15:46,1,0\n"),
            "trace.csv:3: GeneratedTokens: 0, a request needs at least 1 output token");
  EXPECT_EQ(failure("TIMESTAMP,ContextTokens,GeneratedTokens\n"
                    "16/11/2023 18:15,1,2\n"),
            "trace.csv:2: TIMESTAMP: \"16/11/2023 18:15\" is not a date and time like "
            "2023-11-16 18:15:46.6805900");
  EXPECT_EQ(failure("TIMESTAMP,ContextTokens,GeneratedTokens\n"
                    "2023-11-16 18:15:46,99999999999,2\n"),
            "trace.csv:2: ContextTokens: \"99999999999\" is over 4294967295");
  EXPECT_EQ(
      failure("request_id,request_type,application_id,arrival_timestamp,batch_size,prompt_size,"
              "token_size\n"
              "0,2,0,-1,1,5,5\n"),
      "trace.csv:2: arrival_timestamp: \"-1\" is not a number of seconds between 0 and 1e9");
  EXPECT_EQ(
      failure("request_id,request_type,application_id,arrival_timestamp,batch_size,prompt_size,"
              "token_size\r\n"
              "0,2,0,1,1,5,5\r\n"
              "1,2,0,1,1,5,x\r\n"),
      "trace.csv:3: token_size: \"x\" is not a non-negative integer");
}

TEST(TraceReader, TimestampsGoingBackwardsNameTheLine) {
  EXPECT_EQ(failure("TIMESTAMP,ContextTokens,GeneratedTokens\n"
                    "2023-11-16 18:15:46,1,2\n"
                    "2023-11-16 18:15:47,1,2\n"
                    "2023-11-16 18:15:46.9,1,2\n"),
            "trace.csv:4: timestamp goes backwards");
  EXPECT_EQ(
      failure("request_id,request_type,application_id,arrival_timestamp,batch_size,prompt_size,"
              "token_size\n"
              "0,2,0,2.0,1,5,5\n"
              "1,2,0,1.5,1,5,5\n"),
      "trace.csv:3: timestamp goes backwards");
  EXPECT_EQ(failure("{\"timestamp\": 5, \"input_length\": 1, \"output_length\": 1}\n\n"
                    "{\"timestamp\": 4, \"input_length\": 1, \"output_length\": 1}\n",
                    "mc.jsonl"),
            "mc.jsonl:3: timestamp goes backwards");
}

TEST(TraceReader, BadMooncakeRowsNameLineAndField) {
  const std::string ok = "{\"timestamp\": 1, \"input_length\": 1, \"output_length\": 1}\n";
  EXPECT_EQ(failure(ok + "{\"timestamp\": 2, \"input_length\": 1", "m"), "m:2: not valid JSON");
  EXPECT_EQ(failure(ok + "{\"timestamp\": 2, \"output_length\": 1}", "m"),
            "m:2: input_length: missing");
  EXPECT_EQ(failure(ok + "{\"timestamp\": 2, \"input_length\": 1, \"output_length\": -3}", "m"),
            "m:2: output_length: -3 is not a non-negative integer");
  EXPECT_EQ(failure(ok + "{\"timestamp\": 2, \"input_length\": \"12\", \"output_length\": 3}", "m"),
            "m:2: input_length: \"12\" is not a non-negative integer");
  EXPECT_EQ(failure(ok + "{\"timestamp\": 2, \"input_length\": 1.5, \"output_length\": 3}", "m"),
            "m:2: input_length: 1.5 is not a non-negative integer");
  EXPECT_EQ(failure(ok + "{\"timestamp\": 2, \"input_length\": 0, \"output_length\": 3}", "m"),
            "m:2: input_length: 0, a request needs at least 1 prompt token");
  EXPECT_EQ(failure(ok + "{\"input_length\": 1, \"output_length\": 3}", "m"),
            "m:2: timestamp: missing");
  EXPECT_EQ(
      failure(ok + "{\"timestamp\": \"now\", \"input_length\": 1, \"output_length\": 3}", "m"),
      "m:2: timestamp: \"now\" is not a number of milliseconds");
  EXPECT_EQ(failure("{\"timestamp\": 1, \"input_length\": 1, \"output_length\": 1}\n[1, 2]\n", "m"),
            "m:2: expected a JSON object, found [1,2]");
}

TEST(TraceReader, UnknownFormatListsTheAcceptedOnes) {
  const std::string want =
      "trace.csv: unrecognised trace format (expected an Azure CSV header "
      "\"TIMESTAMP,ContextTokens,GeneratedTokens\", a Splitwise CSV header "
      "\"request_id,request_type,application_id,arrival_timestamp,batch_size,prompt_size,"
      "token_size\", or Mooncake JSON lines)";
  EXPECT_EQ(failure("time,prompt,output\n1,2,3\n"), want);
  EXPECT_EQ(failure("request_id,arrival_timestamp,prompt_size\n1,2,3\n"), want);
  EXPECT_EQ(failure("[{\"timestamp\": 1}]\n"), want);
}

TEST(TraceReader, NoRequests) {
  EXPECT_EQ(failure("TIMESTAMP,ContextTokens,GeneratedTokens\n"), "trace.csv: no requests");
  EXPECT_EQ(failure("TIMESTAMP,ContextTokens,GeneratedTokens\r\n\r\n"), "trace.csv: no requests");
  EXPECT_EQ(failure(""), "trace.csv: no requests");
  EXPECT_EQ(failure("\n \n"), "trace.csv: no requests");
}

TEST(TraceReader, FormatNames) {
  EXPECT_EQ(to_string(trace_format::azure), "azure");
  EXPECT_EQ(to_string(trace_format::splitwise), "splitwise");
  EXPECT_EQ(to_string(trace_format::mooncake), "mooncake");
}

TEST(TraceReader, ReadsFilesAndReportsIoFailures) {
  const auto dir = std::filesystem::path{::testing::TempDir()};
  const auto path = dir / "accellm_workload_reader_test.jsonl";
  {
    std::ofstream out{path, std::ios::binary};
    out << mooncake_text;
  }
  trace_format f = trace_format::azure;
  const auto t = read_trace(path, &f);
  std::filesystem::remove(path);
  ASSERT_TRUE(t.ok()) << t.err().what();
  EXPECT_EQ(f, trace_format::mooncake);
  EXPECT_EQ(t->size(), 2u);

  const auto missing = read_trace(dir / "accellm_no_such_trace.csv");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.err().code(), errc::io_failure);
  EXPECT_NE(missing.err().message().find("accellm_no_such_trace.csv"), std::string::npos);
  const auto directory = read_trace(dir);
  ASSERT_FALSE(directory.ok());
  EXPECT_EQ(directory.err().code(), errc::io_failure);
}

TEST(TraceReader, ErrorsFromFilesNameThePath) {
  const auto path = std::filesystem::path{::testing::TempDir()} / "accellm_bad_trace.csv";
  {
    std::ofstream out{path, std::ios::binary};
    out << "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46,1,x\n";
  }
  const auto t = read_trace(path);
  std::filesystem::remove(path);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.err().message(),
            path.string() + ":2: GeneratedTokens: \"x\" is not a non-negative integer");
}

TEST(TraceReader, RescaleToRateKeepsRelativeGaps) {
  const trace t{{1, 0ns, 1, 1}, {2, 1s, 1, 1}, {3, 3s, 1, 1}};
  EXPECT_NEAR(mean_rate(t), 2.0 / 3.0, 1e-12);
  const auto fast = rescale_to_rate(t, 2.0);
  ASSERT_TRUE(fast.ok()) << fast.err().what();
  const trace want{{1, 0ns, 1, 1}, {2, 333'333'333ns, 1, 1}, {3, 1s, 1, 1}};
  EXPECT_EQ(*fast, want);
  EXPECT_NEAR(mean_rate(*fast), 2.0, 1e-9);

  const trace offset{{1, 10s, 5, 6}, {2, 12s, 7, 8}};
  const auto slow = rescale_to_rate(offset, 0.25);
  ASSERT_TRUE(slow.ok());
  const trace slow_want{{1, 10s, 5, 6}, {2, 14s, 7, 8}};
  EXPECT_EQ(*slow, slow_want);
}

TEST(TraceReader, RescaleToRateRejectsBadInput) {
  const trace two{{1, 0ns, 1, 1}, {2, 1s, 1, 1}};
  for (const double rate : {0.0, -1.0, std::nan("")}) {
    const auto r = rescale_to_rate(two, rate);
    ASSERT_FALSE(r.ok()) << rate;
    EXPECT_EQ(r.err().code(), errc::invalid_argument);
  }
  for (const trace& t : {trace{}, trace{{1, 0ns, 1, 1}}, trace{{1, 2s, 1, 1}, {2, 2s, 1, 1}}}) {
    const auto r = rescale_to_rate(t, 1.0);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.err().code(), errc::invalid_argument);
    EXPECT_EQ(r.err().message(),
              "rescale_to_rate: needs at least two requests with distinct arrival times");
  }
}

}  // namespace
}  // namespace accellm::workload

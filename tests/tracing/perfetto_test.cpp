#include "tracing/perfetto.hpp"

#include "tests/tracing/fixture.hpp"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace accellm::tracing {
namespace {

using json = nlohmann::json;
using namespace test;

/// The export of the known run, dumped and parsed back as a viewer would.
class Perfetto : public ::testing::Test {
 protected:
  void SetUp() override {
    auto m = merge({known_log()});
    ASSERT_TRUE(m) << m.err().what();
    doc_ = json::parse(perfetto_json(*m).dump());
    ASSERT_TRUE(doc_.contains("traceEvents"));
    for (const auto& e : doc_["traceEvents"]) {
      if (e["ph"] == "M" && e["name"] == "process_name")
        process_[e["args"]["name"].get<std::string>()] = e["pid"].get<int>();
      if (e["ph"] == "M" && e["name"] == "thread_name")
        thread_[{e["pid"].get<int>(), e["args"]["name"].get<std::string>()}] = e["tid"].get<int>();
    }
  }

  /// The tid of `track` in the process named `node`; fails the test if absent.
  std::pair<int, int> track(const std::string& node, const std::string& name) {
    EXPECT_TRUE(process_.count(node)) << node;
    auto it = thread_.find({process_[node], name});
    EXPECT_NE(it, thread_.end()) << node << "/" << name;
    return {process_[node], it == thread_.end() ? -1 : it->second};
  }

  std::vector<json> where(const std::string& ph, const std::string& cat) {
    std::vector<json> out;
    for (const auto& e : doc_["traceEvents"]) {
      if (e["ph"] == ph && e.value("cat", "") == cat) out.push_back(e);
    }
    return out;
  }

  json doc_;
  std::map<std::string, int> process_;
  std::map<std::pair<int, std::string>, int> thread_;
};

TEST_F(Perfetto, HasAProcessPerNodeCoordinatorFirst) {
  EXPECT_EQ(process_.size(), 4u);  // coordinator, i0, i1, client
  EXPECT_EQ(process_["coordinator"], 1);
  EXPECT_EQ(process_["i0"], 2);
  EXPECT_EQ(process_["i1"], 3);
  EXPECT_EQ(process_["client"], 4);
  EXPECT_EQ(doc_["otherData"]["clock"], "virtual");
}

TEST_F(Perfetto, IterationsAreCompleteEventsOnTheirInstancesTrack) {
  auto spans = where("X", "iteration");
  ASSERT_EQ(spans.size(), 5u);
  auto [pid0, tid0] = track("i0", "instance 0");
  const auto& prefill = spans[0];
  EXPECT_EQ(prefill["name"], "prefill");
  EXPECT_EQ(prefill["pid"], pid0);
  EXPECT_EQ(prefill["tid"], tid0);
  EXPECT_DOUBLE_EQ(prefill["ts"].get<double>(), 1200.0);
  EXPECT_DOUBLE_EQ(prefill["dur"].get<double>(), 3000.0);
  EXPECT_EQ(prefill["args"]["prefill_tokens"], 512);
  EXPECT_EQ(prefill["args"]["decode_requests"], 0);
  auto [pid1, tid1] = track("i1", "instance 1");
  EXPECT_EQ(spans[1]["name"], "decode");
  EXPECT_EQ(spans[1]["pid"], pid1);
  EXPECT_EQ(spans[1]["tid"], tid1);
  EXPECT_EQ(spans[4]["tid"], tid0);  // instance 0 decodes after the move
  EXPECT_EQ(spans[4]["name"], "decode");
}

TEST_F(Perfetto, RoleChangesAreInstantsAndCounters) {
  auto [pid0, tid0] = track("i0", "instance 0");
  std::vector<std::pair<double, std::string>> changes;
  for (const auto& e : where("i", "role")) {
    if (e["tid"] == tid0) changes.emplace_back(e["ts"].get<double>(), e["name"]);
  }
  EXPECT_EQ(changes, (std::vector<std::pair<double, std::string>>{{1200.0, "role: prefill"},
                                                                  {6100.0, "role: decode"}}));
  int counters = 0;
  for (const auto& e : doc_["traceEvents"]) {
    if (e["ph"] != "C" || e["name"] != "instance 0 role") continue;
    ++counters;
    EXPECT_EQ(e["pid"], pid0);
  }
  EXPECT_EQ(counters, 2);
}

TEST_F(Perfetto, MessagesAreInstantsOnTheSendersTrack) {
  auto [pid, tid] = track("client", "client");
  int submits = 0;
  for (const auto& e : where("i", "message")) {
    if (e["name"] != "SubmitRequest") continue;
    ++submits;
    EXPECT_EQ(e["pid"], pid);
    EXPECT_EQ(e["tid"], tid);
    EXPECT_EQ(e["s"], "t");
    EXPECT_EQ(e["args"]["to"], "coordinator");
    EXPECT_EQ(e["args"]["bytes"], 200);
  }
  EXPECT_EQ(submits, 2);
}

TEST_F(Perfetto, AKvCopyIsAFlowFromSenderToReceiver) {
  auto [from_pid, from_tid] = track("i0", "worker:0");
  auto [to_pid, to_tid] = track("i1", "kv:1");
  json out, in;
  for (const auto& e : where("X", "message")) {
    if (e["args"]["type"] != "KvLayer") continue;
    if (e.value("flow_out", false)) out = e;
    if (e.value("flow_in", false)) in = e;
  }
  ASSERT_FALSE(out.is_null());
  ASSERT_FALSE(in.is_null());
  EXPECT_EQ(out["bind_id"], in["bind_id"]);
  EXPECT_EQ(out["pid"], from_pid);
  EXPECT_EQ(out["tid"], from_tid);
  EXPECT_EQ(in["pid"], to_pid);
  EXPECT_EQ(in["tid"], to_tid);
  EXPECT_DOUBLE_EQ(out["ts"].get<double>(), 2000.0);
  EXPECT_DOUBLE_EQ(in["ts"].get<double>(), 2250.0);  // + the modelled transit
  EXPECT_EQ(out["args"]["bytes"], 1'048'576);
  EXPECT_EQ(out["args"]["request"], 7);
}

TEST_F(Perfetto, MovesAreFlowsAndPlainMessagesAreNot) {
  int move_flows = 0, other_flows = 0;
  for (const auto& e : where("X", "message")) {
    if (!e.value("flow_out", false)) continue;
    auto type = e["args"]["type"].get<std::string>();
    if (type == "MoveDecode") ++move_flows;
    if (type != "MoveDecode" && type != "KvLayer" && type != "KvDelta") ++other_flows;
  }
  EXPECT_EQ(move_flows, 2);   // to both ends of the move
  EXPECT_EQ(other_flows, 0);  // StartDecode here is no takeover
}

TEST_F(Perfetto, ARequestIsAnAsyncSpanWithNestedPhases) {
  std::vector<std::tuple<std::string, std::string, double>> seen;  // ph, name, ts
  for (const auto& e : doc_["traceEvents"]) {
    if (e.value("cat", "") != "request" || e["id"] != "0x7") continue;
    seen.emplace_back(e["ph"], e["name"], e["ts"].get<double>());
    EXPECT_EQ(e["pid"], process_["coordinator"]);
  }
  using row = std::tuple<std::string, std::string, double>;
  EXPECT_EQ(seen, (std::vector<row>{{"b", "request 7", 1000.0},
                                    {"b", "queued", 1000.0},
                                    {"e", "queued", 1100.0},
                                    {"b", "prefill", 1100.0},
                                    {"e", "prefill", 4400.0},
                                    {"b", "decode", 4400.0},
                                    {"e", "decode", 7600.0},
                                    {"e", "request 7", 7600.0}}));
}

// What both viewers need: numbers where numbers go, every async begin
// closed by an end of the same id and name, every flow with one start and
// one end, and slices of no negative length.
TEST_F(Perfetto, EveryEventIsWellFormed) {
  std::map<std::pair<std::string, std::string>, int> open;  // (id, name) -> depth
  std::map<std::uint64_t, std::pair<int, int>> flows;       // bind_id -> (outs, ins)
  for (const auto& e : doc_["traceEvents"]) {
    ASSERT_TRUE(e["ph"].is_string()) << e;
    ASSERT_TRUE(e["pid"].is_number_integer()) << e;
    ASSERT_TRUE(e["tid"].is_number_integer()) << e;
    if (e["ph"] == "M") continue;
    ASSERT_TRUE(e["ts"].is_number()) << e;
    ASSERT_TRUE(e["name"].is_string()) << e;
    if (e["ph"] == "X") {
      EXPECT_GE(e["dur"].get<double>(), 0.0) << e;
    }
    if (e["ph"] == "b") ++open[{e["id"], e["name"]}];
    if (e["ph"] == "e") --open[{e["id"], e["name"]}];
    if (e.contains("bind_id")) {
      auto& f = flows[e["bind_id"].get<std::uint64_t>()];
      f.first += e.value("flow_out", false) ? 1 : 0;
      f.second += e.value("flow_in", false) ? 1 : 0;
    }
  }
  for (const auto& [key, depth] : open) EXPECT_EQ(depth, 0) << key.first << " " << key.second;
  EXPECT_EQ(flows.size(), 4u);  // KvLayer, KvDelta, two MoveDecodes
  for (const auto& [id, f] : flows) EXPECT_EQ(f, (std::pair<int, int>{1, 1})) << id;
}

// Request 8 was never decoded: its prefill runs to RequestDone.
TEST_F(Perfetto, ARequestWithoutDecodeHasOnePrefillAndDecodePhase) {
  std::vector<std::string> names;
  for (const auto& e : where("b", "request")) {
    if (e["id"] == "0x8") names.push_back(e["name"]);
  }
  EXPECT_EQ(names, (std::vector<std::string>{"request 8", "queued", "prefill+decode"}));
}

// Back-to-back iterations whose times are not exact in binary: ts + dur of
// the first must not pass the second's ts (a viewer would see bad nesting).
// And no displayTimeUnit: Perfetto would take "ns" there as the unit of ts.
TEST(PerfettoTimes, BackToBackIterationsDoNotOverlap) {
  auto m = merge({log_of("b.trace", "sim", "box", "virtual",
                         {span(67'172'233, 158'789'134, 2, role::prefill, "i2", 10, 0),
                          span(225'961'367, 31'694'970, 2, role::prefill, "i2", 10, 0)})});
  ASSERT_TRUE(m);
  auto doc = json::parse(perfetto_json(*m).dump());
  EXPECT_FALSE(doc.contains("displayTimeUnit"));
  std::vector<std::pair<double, double>> spans;
  for (const auto& e : doc["traceEvents"]) {
    if (e["ph"] == "X") spans.emplace_back(e["ts"].get<double>(), e["dur"].get<double>());
  }
  ASSERT_EQ(spans.size(), 2u);
  EXPECT_LE(spans[0].first + spans[0].second, spans[1].first);
  EXPECT_NEAR(spans[0].second, 158'789.134, 1e-6);
}

// A takeover (a second StartDecode) is drawn as a flow; an unfinished
// request ends at its last event, marked incomplete.
TEST(PerfettoTakeover, IsAFlowAndAnUnfinishedRequestIsMarked) {
  auto run = known_run();
  run.resize(run.size() - 2);  // request 7 never finishes
  run.push_back(
      message(7'000'000, coordinator, endpoint{"im:2", "i2"}, msg_type::start_decode, 7, 100));
  auto m = merge({log_of("t.trace", "sim", "box", "virtual", run)});
  ASSERT_TRUE(m);
  auto doc = json::parse(perfetto_json(*m).dump());
  int takeover_flows = 0;
  json end;
  for (const auto& e : doc["traceEvents"]) {
    if (e["ph"] == "X" && e.value("flow_out", false) && e["name"] == "StartDecode")
      ++takeover_flows;
    if (e["ph"] == "e" && e["name"] == "request 7") end = e;
  }
  EXPECT_EQ(takeover_flows, 1);
  ASSERT_FALSE(end.is_null());
  EXPECT_DOUBLE_EQ(end["ts"].get<double>(), 7000.0);
  int incomplete = 0;
  for (const auto& e : doc["traceEvents"]) {
    if (e["ph"] == "b" && e["name"] == "request 7" && e["args"].value("incomplete", false))
      ++incomplete;
  }
  EXPECT_EQ(incomplete, 1);
}

}  // namespace
}  // namespace accellm::tracing

// Field rules: every out_of_range rule of docs/protocol.md rejects a message
// that breaks only that rule, names the field path, and validate(struct)
// reports the same error as decode.
#include "messages/codec.hpp"
#include "tests/messages/helpers.hpp"

#include <gtest/gtest.h>

#include <limits>
#include <string>
#include <string_view>
#include <utility>

namespace accellm::messages {
namespace {

using testing::describe;
using testing::example;

template <class T, class Mutate>
void expect_rule(std::string_view path, Mutate mutate) {
  SCOPED_TRACE(std::string{path});
  T m = example<T>();
  ASSERT_TRUE(validate(m).ok());
  mutate(m);
  const auto r = decode<T>(encode(m));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code(), errc::out_of_range) << describe(r);
  EXPECT_EQ(r.err().message().rfind(std::string{path} + ":", 0), 0u) << r.err().message();
  const auto s = validate(m);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.err(), r.err());
}

template <class E>
E bad_enum(unsigned raw) {
  return static_cast<E>(raw);  // what a hostile or newer sender puts on the wire
}

TEST(Rules, SubmitRequest) {
  expect_rule<submit_request>("submit_request.prompt_len", [](auto& m) {
    m.prompt.clear();
    m.prompt_len = 0;
  });
  expect_rule<submit_request>("submit_request.prompt", [](auto& m) { m.prompt_len = 4; });
  expect_rule<submit_request>("submit_request.prompt[2]", [](auto& m) { m.prompt[2] = -3; });
  expect_rule<submit_request>("submit_request.max_tokens", [](auto& m) { m.max_tokens = 0; });
  expect_rule<submit_request>("submit_request.stop_tokens[0]",
                              [](auto& m) { m.stop_tokens = {-1}; });
  submit_request anonymous = example<submit_request>();
  anonymous.request = 0;  // the coordinator assigns the id
  EXPECT_TRUE(decode<submit_request>(encode(anonymous)).ok());
}

TEST(Rules, AssignPrefill) {
  expect_rule<assign_prefill>("assign_prefill.request", [](auto& m) { m.request = 0; });
  expect_rule<assign_prefill>("assign_prefill.instance", [](auto& m) { m.instance = no_instance; });
  expect_rule<assign_prefill>("assign_prefill.partner", [](auto& m) { m.partner = m.instance; });
  expect_rule<assign_prefill>("assign_prefill.already_generated",
                              [](auto& m) { m.already_generated_len = 3; });
  expect_rule<assign_prefill>("assign_prefill.max_tokens", [](auto& m) { m.max_tokens = 2; });
  assign_prefill unpaired = example<assign_prefill>();
  unpaired.partner = no_instance;
  EXPECT_TRUE(decode<assign_prefill>(encode(unpaired)).ok());
}

TEST(Rules, StartAndMoveDecode) {
  expect_rule<start_decode>("start_decode.context_len", [](auto& m) { m.context_len = 0; });
  expect_rule<start_decode>("start_decode.last_token", [](auto& m) { m.last_token = no_token; });
  expect_rule<start_decode>("start_decode.generated", [](auto& m) { m.generated = 0; });
  expect_rule<start_decode>("start_decode.generated", [](auto& m) { m.generated = 6; });
  expect_rule<start_decode>("start_decode.max_tokens", [](auto& m) { m.max_tokens = 0; });
  expect_rule<start_decode>("start_decode.partner", [](auto& m) { m.partner = m.instance; });
  expect_rule<move_decode>("move_decode.to_instance",
                           [](auto& m) { m.to_instance = m.from_instance; });
  expect_rule<move_decode>("move_decode.from_instance",
                           [](auto& m) { m.from_instance = no_instance; });
  expect_rule<move_decode>("move_decode.reason",
                           [](auto& m) { m.reason = bad_enum<move_reason>(4); });
  expect_rule<move_decode>("move_decode.tail_tokens", [](auto& m) {
    m.context_len = 3;
    m.generated = 2;
  });
  expect_rule<move_decode>("move_decode.new_partner",
                           [](auto& m) { m.new_partner = m.to_instance; });
}

TEST(Rules, SetRoleEvictCancel) {
  expect_rule<set_role>("set_role.role", [](auto& m) { m.role = bad_enum<role>(9); });
  expect_rule<set_role>("set_role.instance", [](auto& m) { m.instance = no_instance; });
  expect_rule<evict_replica>("evict_replica.requests", [](auto& m) { m.requests.clear(); });
  expect_rule<evict_replica>("evict_replica.requests[1]", [](auto& m) { m.requests[1] = 0; });
  expect_rule<evict_replica>("evict_replica.reason",
                             [](auto& m) { m.reason = bad_enum<evict_reason>(200); });
  expect_rule<cancel>("cancel.request", [](auto& m) { m.request = 0; });
}

TEST(Rules, Execute) {
  expect_rule<execute>("execute.items", [](auto& m) { m.items.clear(); });
  expect_rule<execute>("execute.instance", [](auto& m) { m.instance = no_instance; });
  expect_rule<execute>("execute.items[1].request", [](auto& m) { m.items[1].request = 0; });
  expect_rule<execute>("execute.items[0].num_tokens", [](auto& m) {
    m.items[0].num_tokens = 0;
    m.items[0].tokens.clear();
  });
  expect_rule<execute>("execute.items[1].num_tokens", [](auto& m) {
    m.items[1].num_tokens = 2;
    m.items[1].tokens = {11, 12};
  });
  expect_rule<execute>("execute.items[1].context", [](auto& m) { m.items[1].context = 0; });
  expect_rule<execute>("execute.items[0].num_tokens", [](auto& m) {
    m.items[0].context = std::numeric_limits<std::uint32_t>::max() - 1;
  });
  expect_rule<execute>("execute.items[0].tokens", [](auto& m) { m.items[0].tokens.pop_back(); });
  expect_rule<execute>("execute.items[0].tokens[1]", [](auto& m) { m.items[0].tokens[1] = -7; });
  expect_rule<execute>("execute.items[1].phase",
                       [](auto& m) { m.items[1].phase = bad_enum<phase>(5); });
  expect_rule<execute>("execute.items[0].replica_to",
                       [](auto& m) { m.items[0].replica_to = m.instance; });
  expect_rule<execute>("execute.items[1].request", [](auto& m) { m.items[1].request = 43; });
  expect_rule<execute>("execute.items[1].steps", [](auto& m) { m.items[1].steps = 0; });
  expect_rule<execute>("execute.items[1].steps", [](auto& m) { m.items[1].steps = 65; });
  expect_rule<execute>("execute.items[0].steps", [](auto& m) { m.items[0].steps = 2; });
  const auto r = decode<execute>(encode([] {
    auto m = example<execute>();
    m.items[1].request = 43;
    return m;
  }()));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().message(), "execute.items[1].request: 43 (duplicate of items[0])");
}

TEST(Rules, IterationDoneAndKv) {
  expect_rule<iteration_done>("iteration_done.next_tokens[0]",
                              [](auto& m) { m.next_tokens[0] = -2; });
  expect_rule<iteration_done>("iteration_done.steps", [](auto& m) { m.steps = 0; });
  expect_rule<iteration_done>("iteration_done.joined", [](auto& m) { m.joined = 5000; });
  expect_rule<iteration_done>("iteration_done.step_ends_ns",
                              [](auto& m) { m.step_ends_ns.pop_back(); });
  expect_rule<iteration_done>("iteration_done.step_ends_ns",
                              [](auto& m) { std::swap(m.step_ends_ns[0], m.step_ends_ns[1]); });
  expect_rule<iteration_report>("iteration_report.runs[0].count",
                                [](auto& m) { m.runs[0].first_step = 2; });
  expect_rule<iteration_report>("iteration_report.runs[1].count", [](auto& m) {
    m.runs[1].count = 0;
    m.tokens.pop_back();
    m.tokens.pop_back();
  });
  expect_rule<iteration_report>("iteration_report.runs[1].request",
                                [](auto& m) { m.runs[1].request = 0; });
  expect_rule<iteration_report>("iteration_report.tokens", [](auto& m) { m.tokens.push_back(4); });
  expect_rule<iteration_report>("iteration_report.tokens[1]", [](auto& m) { m.tokens[1] = -3; });
  expect_rule<iteration_report>("iteration_report.step_ends_ns",
                                [](auto& m) { std::swap(m.step_ends_ns[0], m.step_ends_ns[1]); });
  expect_rule<kv_layer>("kv_layer.request", [](auto& m) { m.request = 0; });
  expect_rule<kv_layer>("kv_layer.token_end", [](auto& m) { m.token_end = m.token_begin - 1; });
  expect_rule<kv_layer>("kv_layer.size_bytes", [](auto& m) { m.size_bytes = 47; });
  expect_rule<kv_delta>("kv_delta.layer_end", [](auto& m) { m.layer_end = m.layer_begin; });
  expect_rule<kv_delta>("kv_delta.token_end", [](auto& m) { m.token_end = 0; });
  expect_rule<kv_delta>("kv_delta.size_bytes", [](auto& m) { m.size_bytes = 0; });
  expect_rule<kv_delta>("kv_delta.from_instance", [](auto& m) { m.from_instance = no_instance; });
  expect_rule<kv_delta_batch>("kv_delta_batch.rows", [](auto& m) {
    m.rows.clear();
    m.abandoned.clear();
  });
  expect_rule<kv_delta_batch>("kv_delta_batch.abandoned[1]", [](auto& m) { m.abandoned = {3, 0}; });
  expect_rule<kv_delta_batch>("kv_delta_batch.rows[1].token_end",
                              [](auto& m) { m.rows[1].token_end = m.rows[1].token_begin; });
  expect_rule<kv_ack>("kv_ack.batches", [](auto& m) { m.batches = 0; });
  expect_rule<iteration_done>("iteration_done.kv_bytes_shared",
                              [](auto& m) { m.kv_bytes_shared = m.kv_bytes_sent + 1; });
  expect_rule<iteration_done>("iteration_done.refused[1].item", [](auto& m) {
    m.refused.push_back(m.refused[0]);  // the same item twice
  });
  expect_rule<iteration_done>("iteration_done.refused[0].item",
                              [](auto& m) { m.refused[0].item = 4096; });
  expect_rule<iteration_done>("iteration_done.refused[0].reason",
                              [](auto& m) { m.refused[0].reason.clear(); });
  expect_rule<instance_report>("instance_report.kv_bytes_shared",
                               [](auto& m) { m.kv_bytes_shared = m.kv_bytes_sent + 1; });
  expect_rule<iteration_done>("iteration_done.kv_bytes_copied",
                              [](auto& m) { m.kv_bytes_copied = m.kv_bytes_sent + 1; });
  expect_rule<instance_report>("instance_report.kv_bytes_copied",
                               [](auto& m) { m.kv_bytes_copied = m.kv_bytes_sent + 1; });
}

TEST(Rules, ClientAndClusterMessages) {
  expect_rule<token_batch>("token_batch.tokens", [](auto& m) { m.tokens.clear(); });
  expect_rule<token_batch>("token_batch.tokens[1]", [](auto& m) { m.tokens[1] = -1; });
  expect_rule<token_batch>("token_batch.first_index", [](auto& m) {
    m.first_index = std::numeric_limits<std::uint32_t>::max();
  });
  expect_rule<request_done>("request_done.status",
                            [](auto& m) { m.status = bad_enum<request_status>(3); });
  expect_rule<request_done>("request_done.finish",
                            [](auto& m) { m.finish = bad_enum<finish_reason>(4); });
  expect_rule<instance_report>("instance_report.free_blocks", [](auto& m) { m.free_blocks = 301; });
  expect_rule<instance_report>("instance_report.free_blocks", [](auto& m) {
    m.primary_blocks = std::numeric_limits<std::uint64_t>::max();
  });
  expect_rule<instance_report>("instance_report.role", [](auto& m) { m.role = bad_enum<role>(3); });
  expect_rule<register_worker>("register_worker.cluster_token",
                               [](auto& m) { m.cluster_token.clear(); });
  expect_rule<register_worker>("register_worker.instance_name",
                               [](auto& m) { m.instance_name.clear(); });
  expect_rule<register_worker>("register_worker.tp", [](auto& m) { m.tp = 0; });
  expect_rule<register_worker>("register_worker.block_tokens", [](auto& m) { m.block_tokens = 0; });
  expect_rule<heartbeat>("heartbeat.instance", [](auto& m) { m.instance = no_instance; });
  expect_rule<trace_event>("trace_event.message_type",
                           [](auto& m) { m.message_type = all_msg_types.size() + 1; });
  expect_rule<trace_event>("trace_event.kind", [](auto& m) { m.kind = bad_enum<trace_kind>(5); });
}

}  // namespace
}  // namespace accellm::messages

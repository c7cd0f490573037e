// request_session against small fake coordinators on CAF's real scheduler:
// the token merge, every way a wait ends, and the Cancel a session sends
// when it is abandoned.
#include "coordinator/http/request_session.hpp"

#include "actors/atoms.hpp"
#include "actors/system_config.hpp"
#include "messages/codec.hpp"

#include <caf/all.hpp>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <vector>

namespace accellm::coordinator::http {
namespace {

using namespace std::chrono_literals;
using actors::msg_atom;
using messages::capnp_blob;

messages::token_batch batch(std::uint32_t first, std::vector<token_id> tokens) {
  return {.epoch = 0,
          .request = 7,
          .first_index = first,
          .tokens = std::move(tokens),
          .instance = 0,
          .time_ns = 1};
}

TEST(MergeTokens, AppendsNewTokensAndDropsDuplicates) {
  auto as_vector = [](const token_delta& d) {
    return std::vector<token_id>(d.tokens.begin(), d.tokens.end());
  };
  std::vector<token_id> have;
  const messages::token_batch first = batch(0, {1, 2});
  auto d = merge_tokens(have, first);
  EXPECT_EQ(d.index, 0u);
  EXPECT_EQ(as_vector(d), (std::vector<token_id>{1, 2}));
  const messages::token_batch overlapping = batch(1, {2, 3, 4});
  d = merge_tokens(have, overlapping);
  EXPECT_EQ(d.index, 2u);
  EXPECT_EQ(as_vector(d), (std::vector<token_id>{3, 4}));
  const messages::token_batch seen = batch(0, {1});
  d = merge_tokens(have, seen);
  EXPECT_TRUE(d.tokens.empty());
  EXPECT_EQ(have, (std::vector<token_id>{1, 2, 3, 4}));
  const messages::token_batch after_gap = batch(6, {9});  // the index shows the gap
  d = merge_tokens(have, after_gap);
  EXPECT_EQ(d.index, 6u);
  EXPECT_EQ(as_vector(d), (std::vector<token_id>{9}));
  EXPECT_EQ(have, (std::vector<token_id>{1, 2, 3, 4, 9}));
}

// Answers a SubmitRequest with one TokenBatch and nothing else; forwards
// every Cancel to `probe`.
caf::behavior half_answering(caf::event_based_actor* self, caf::actor probe) {
  return {[self, probe](msg_atom, const capnp_blob& b) {
    if (b.type == static_cast<std::uint16_t>(messages::msg_type::cancel)) {
      self->send(probe, msg_atom::value, b);
      return;
    }
    self->send(caf::actor_cast<caf::actor>(self->current_sender()), msg_atom::value,
               messages::pack(batch(0, {5})));
  }};
}

// Answers anything with a TokenBatch without tokens, which breaks its rules.
// (Takes an unused argument: CAF 0.17 spawning a function without
// arguments dereferences a null pointer, which UBSan reports.)
caf::behavior lying(caf::event_based_actor* self, caf::actor /*unused*/) {
  return {[self](msg_atom, const capnp_blob&) {
    self->send(caf::actor_cast<caf::actor>(self->current_sender()), msg_atom::value,
               messages::pack(batch(0, {})));
  }};
}

class RequestSession : public ::testing::Test {
 protected:
  ~RequestSession() override { probe_->send_exit(fake_, caf::exit_reason::user_shutdown); }

  messages::submit_request submit() {
    return {.request = 0,
            .prompt = {1},
            .prompt_len = 1,
            .max_tokens = 2,
            .arrival_ns = 0,
            .stream = false,
            .ttft_ms = 0,
            .tbt_ms = 0,
            .stop_tokens = {}};
  }

  actors::system_config cfg_{actors::clock_mode::real};
  caf::actor_system sys_{cfg_};
  caf::scoped_actor probe_{sys_};
  caf::actor fake_ = sys_.spawn(half_answering, caf::actor{probe_});
  std::atomic<bool> stopping_{false};
};

TEST_F(RequestSession, TimesOutAndCancelsWhenAbandoned) {
  {
    request_session s{sys_, fake_};
    s.submit(submit());
    session_event first = s.next(s.now() + 5s, stopping_, 10ms);
    ASSERT_TRUE(std::holds_alternative<messages::token_batch>(first));
    EXPECT_EQ(s.id(), 7u);
    const auto before = s.now();
    session_event second = s.next(s.now() + 100ms, stopping_, 10ms);
    ASSERT_TRUE(std::holds_alternative<session_error>(second));
    EXPECT_EQ(std::get<session_error>(second).why, session_failure::timeout);
    EXPECT_GE(s.now() - before, 100ms);
  }  // abandoned: a Cancel for request 7
  bool cancelled = false;
  probe_->receive(
      [&cancelled](msg_atom, const capnp_blob& b) {
        auto c = messages::decode<messages::cancel>(b);
        ASSERT_TRUE(c.ok()) << c.err().what();
        EXPECT_EQ(c->request, 7u);
        cancelled = true;
      },
      caf::after(5s) >> [] {});
  EXPECT_TRUE(cancelled);
}

TEST_F(RequestSession, StopsWhenTheFlagIsRaised) {
  request_session s{sys_, fake_};
  stopping_ = true;
  session_event e = s.next(s.now() + 5s, stopping_, 10ms);
  ASSERT_TRUE(std::holds_alternative<session_error>(e));
  EXPECT_EQ(std::get<session_error>(e).why, session_failure::stopped);
}

TEST_F(RequestSession, EndsWhenTheCoordinatorDies) {
  request_session s{sys_, fake_};
  probe_->send_exit(fake_, caf::exit_reason::user_shutdown);
  session_event e = s.next(s.now() + 5s, stopping_, 10ms);
  ASSERT_TRUE(std::holds_alternative<session_error>(e));
  EXPECT_EQ(std::get<session_error>(e).why, session_failure::coordinator_down);
  EXPECT_NE(std::get<session_error>(e).message.find("coordinator"), std::string::npos);
}

TEST_F(RequestSession, AnUndecodableReplyIsABadReply) {
  const caf::actor liar = sys_.spawn(lying, caf::actor{probe_});
  {
    request_session s{sys_, liar};
    s.submit(submit());
    session_event e = s.next(s.now() + 5s, stopping_, 10ms);
    ASSERT_TRUE(std::holds_alternative<session_error>(e));
    EXPECT_EQ(std::get<session_error>(e).why, session_failure::bad_reply);
    EXPECT_NE(std::get<session_error>(e).message.find("TokenBatch"), std::string::npos);
  }
  probe_->send_exit(liar, caf::exit_reason::user_shutdown);
}

}  // namespace
}  // namespace accellm::coordinator::http

#include "coordinator/http/request_session.hpp"

#include "actors/atoms.hpp"
#include "messages/codec.hpp"

#include <caf/all.hpp>

#include <algorithm>
#include <optional>

namespace accellm::coordinator::http {

request_session::request_session(caf::actor_system& sys, caf::actor coordinator)
    : self_(sys), coordinator_(std::move(coordinator)) {
  self_->monitor(coordinator_);
}

request_session::~request_session() {
  // CAF 0.17 keeps a monitor on the monitored actor until that actor ends:
  // without this, every request would leave one on the coordinator.
  self_->demonitor(coordinator_);
  if (!submitted_ || finished_ || id_ == 0) return;
  // Without an id there is nothing to name yet; the coordinator's answers to
  // this (then dead) actor are dropped by CAF.
  self_->send(coordinator_, actors::msg_atom::value,
              messages::pack(messages::cancel{
                  .epoch = 0, .request = id_, .reason = "the HTTP client is gone"}));
}

void request_session::submit(messages::submit_request m) {
  submitted_ = true;
  self_->send(coordinator_, actors::msg_atom::value, messages::pack(std::move(m)));
}

session_event request_session::next(actors::time_point deadline, const std::atomic<bool>& stopping,
                                    actors::duration poll) {
  for (;;) {
    if (stopping.load()) return session_error{session_failure::stopped, "the server is stopping"};
    const actors::duration left = deadline - now();
    if (left <= actors::duration::zero()) {
      return session_error{session_failure::timeout, "no answer from the coordinator in time"};
    }
    std::optional<session_event> got;
    self_->receive(
        [this, &got](actors::msg_atom, const messages::capnp_blob& blob) { got = decode(blob); },
        [this, &got](caf::down_msg& down) {
          got = session_error{session_failure::coordinator_down,
                              "the coordinator stopped: " + self_->system().render(down.reason)};
        },
        caf::after(std::min(left, poll)) >> [] {});
    if (got) return std::move(*got);
  }
}

actors::time_point request_session::now() const {
  return actors::now(self_.ptr());
}

std::optional<session_event> request_session::decode(const messages::capnp_blob& blob) {
  using messages::msg_type;
  if (blob.type == static_cast<std::uint16_t>(msg_type::token_batch)) {
    auto b = messages::decode<messages::token_batch>(blob);
    if (!b) return session_error{session_failure::bad_reply, "bad TokenBatch: " + b.err().what()};
    id_ = b->request;
    return std::move(*b);
  }
  if (blob.type == static_cast<std::uint16_t>(msg_type::request_done)) {
    auto d = messages::decode<messages::request_done>(blob);
    if (!d) return session_error{session_failure::bad_reply, "bad RequestDone: " + d.err().what()};
    id_ = d->request;
    finished_ = true;
    return std::move(*d);
  }
  return std::nullopt;
}

token_delta merge_tokens(std::vector<token_id>& have, const messages::token_batch& batch) {
  const std::span<const token_id> all{batch.tokens};
  if (batch.first_index > have.size()) {
    have.insert(have.end(), all.begin(), all.end());
    return {batch.first_index, all};
  }
  const std::size_t skip = std::min(have.size() - batch.first_index, all.size());
  const auto fresh = all.subspan(skip);
  const auto index = static_cast<std::uint32_t>(have.size());
  have.insert(have.end(), fresh.begin(), fresh.end());
  return {index, fresh};
}

}  // namespace accellm::coordinator::http

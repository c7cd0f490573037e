// request_session: one HTTP request's conversation with the coordinator
// actor, through a caf::scoped_actor of its own.
//
//   submit() ──SubmitRequest──> coordinator
//   next()   <──TokenBatch*──── (zero or more)
//   next()   <──RequestDone──── (then the session is finished)
//
// The session monitors the coordinator, so a coordinator that dies ends the
// wait at once. Every wait is bounded by a deadline and wakes every `poll` to
// look at a stop flag, so a server that stops never waits for a reply. A
// session destroyed after submit() and before RequestDone (client gone,
// timeout, server stopping) sends the coordinator a Cancel for its request,
// once the coordinator's first answer has told it the request's id.
//
// Time is the actor clock of the session's scoped_actor (STYLE.md rule 8).
//
// Thread contract: a resource type owned by one HTTP worker thread at a time;
// it must be destroyed before the caf::actor_system it was created on.
#pragma once

#include "actors/clock.hpp"
#include "common/types.hpp"
#include "messages/capnp_blob.hpp"
#include "messages/structs.hpp"

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/scoped_actor.hpp>

#include <atomic>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

namespace accellm::coordinator::http {

/// Why a wait ended without a message.
enum class session_failure : std::uint8_t {
  timeout,           ///< the deadline passed
  stopped,           ///< the stop flag was raised
  coordinator_down,  ///< the coordinator actor terminated
  bad_reply,         ///< the coordinator sent a message that does not decode
};

struct session_error {
  session_failure why = session_failure::timeout;
  std::string message;  ///< says what happened, for the client
};

/// What next() returns: a batch of tokens, the end of the request, or why
/// the wait ended.
using session_event = std::variant<messages::token_batch, messages::request_done, session_error>;

class request_session {
 public:
  /// Monitors `coordinator`; sends nothing yet.
  request_session(caf::actor_system& sys, caf::actor coordinator);
  ~request_session();

  request_session(const request_session&) = delete;
  request_session& operator=(const request_session&) = delete;

  /// Sends `m` (packed) to the coordinator. Call once.
  void submit(messages::submit_request m);

  /// Waits for the next TokenBatch or RequestDone, or until `deadline`
  /// passes or `stopping` is raised (looked at every `poll`). Other message
  /// types are ignored. After a RequestDone the session is finished.
  session_event next(actors::time_point deadline, const std::atomic<bool>& stopping,
                     actors::duration poll);

  /// The actor clock's current time.
  actors::time_point now() const;

  /// The request's id as the coordinator assigned it; 0 until its first answer.
  request_id id() const noexcept { return id_; }

 private:
  // The event a blob makes; none for a message type the session ignores.
  std::optional<session_event> decode(const messages::capnp_blob& blob);

  caf::scoped_actor self_;
  caf::actor coordinator_;
  request_id id_ = 0;
  bool submitted_ = false;
  bool finished_ = false;
};

/// The part of a batch that is new to `have` (tokens received so far, by
/// output index), appended to it: tokens at indices below have.size() are
/// duplicates and dropped. A batch that starts past the end (a gap, which
/// the coordinator should never send) is appended whole and keeps its own
/// first_index, so a client sees the gap.
struct token_delta {
  std::uint32_t index = 0;           ///< output index of tokens[0]
  std::span<const token_id> tokens;  ///< a view into the batch; may be empty
};
token_delta merge_tokens(std::vector<token_id>& have, const messages::token_batch& batch);

}  // namespace accellm::coordinator::http

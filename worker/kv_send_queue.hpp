// kv_send_queue: the flow control of the KV rows a device worker sends to its
// partners' kv_replicas (docs/protocol.md "KV flow control").
//
// CAF hands all of a process's outgoing messages to one broker, which
// serializes them in mailbox order, heartbeats among them. A GPU makes a
// prompt's KV faster than a socket carries it (1 GiB for a 2048-token
// Llama-2-7B prompt, in 48 ms on an H100); handed to CAF at once, that
// backlog holds the heartbeats back until the coordinator drops the worker
// (bench_kv_burst: bursts over 256 MiB on the 2-core build machine). So each
// receiver (a target instance) has at most `window_bytes` of KvDeltaBatch
// messages on the way that it has not acknowledged with KvAck; the rest
// waits here, in order, up to `queue_bytes` per receiver.
//
// When a message would pass that bound, copies to that receiver are
// abandoned: those of the requests whose rows take the most room in the
// queue and the message, as many as it takes to fit (a prompt being copied,
// not the one-token rows of requests whose copy is complete). Their rows are
// taken out of the queued messages that have not started to go, and of what
// is pushed later, and a notice (KvDeltaBatch.abandoned, queued after what
// remains of them) tells the receiver to drop what it holds of them. The
// copy is redundancy, not the request: the receiver reports the drop to the
// coordinator, which stops the owner's syncing, and a decode that later
// needs the copy recomputes it.
//
// Large messages go in pieces: when the window lets a message go that
// carries more than `piece_bytes` of rows, it goes as several messages of at
// most that much, cut by request and, within a row, by token range (whole
// tokens: kv_chunk::data holds per layer K then V, so a piece copies its
// tokens' part of each). A row a message takes whole is shared, not copied
// (messages::kv_rows::data is shared_bytes: on a GPU worker, the pinned
// memory the device copied it into); a row cut by tokens is copied when its
// piece is cut. CAF
// moves 8 MiB messages 2.2x faster than 32 MiB ones (bench_kv_burst), and a
// heartbeat waits behind less. The receiver takes the pieces in order, as
// rows that continue where the previous ones ended; a request appears once
// per message.
//
// Sizes are the rows' bytes plus a small allowance per row and message (what
// the encoding adds), taken from the packed message without encoding it.
//
// Thread contract: a value; the device_worker actor's alone.
#pragma once

#include "common/types.hpp"
#include "messages/capnp_blob.hpp"
#include "messages/structs.hpp"

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <span>
#include <unordered_set>
#include <vector>

namespace accellm::worker {

/// Bytes a device worker leaves unacknowledged on the way to one receiver
/// (bench_kv_burst: 256 MiB in one burst still kept the sender up on the
/// 2-core build machine; a quarter of it, for a worker with several
/// partners and the receiver's own traffic).
inline constexpr std::uint64_t default_kv_window_bytes = std::uint64_t{64} << 20;
/// Bytes that may wait for the window, per receiver, before copies are
/// abandoned.
inline constexpr std::uint64_t default_kv_queue_bytes = std::uint64_t{1} << 30;
/// The most row bytes one message carries (a larger one goes in pieces).
inline constexpr std::uint64_t default_kv_piece_bytes = std::uint64_t{8} << 20;

struct kv_flow_limits {
  std::uint64_t window_bytes = default_kv_window_bytes;  ///< > 0
  std::uint64_t queue_bytes = default_kv_queue_bytes;    ///< > 0
  std::uint64_t piece_bytes = default_kv_piece_bytes;    ///< > 0
};

class kv_send_queue {
 public:
  struct message {
    instance_id target = no_instance;
    messages::capnp_blob blob;  ///< a KvDeltaBatch
    std::uint64_t bytes = 0;    ///< its size as the window counts it
  };

  explicit kv_send_queue(kv_flow_limits limits = {});

  /// Takes a KvDeltaBatch (packed, or encoded bytes) for `target`. A blob
  /// that is not a valid KvDeltaBatch is dropped (false). The requests it
  /// lists as abandoned (the device had no room for their rows) are given up
  /// as though the queue had: their queued and later rows are dropped and a
  /// notice follows what went.
  bool push(instance_id target, const messages::capnp_blob& blob);
  /// `batches` messages to `target` arrived (a KvAck). False, and nothing
  /// counted beyond what is on the way, when it acknowledges more than that.
  bool acked(instance_id target, std::uint32_t batches);
  /// The messages the windows let go now, each receiver's in order; they
  /// count as on the way from here.
  std::vector<message> take_ready();
  /// `target`'s receiver changed or went: its queue, the bytes on the way to
  /// it and its abandoned copies are forgotten.
  void reset(instance_id target);
  /// Requests that ended here: no longer remembered as abandoned.
  void forget(std::span<const request_id> ids);

  std::uint64_t in_flight_bytes(instance_id target) const;
  std::uint64_t queued_bytes(instance_id target) const;
  /// The same, summed over the receivers.
  std::uint64_t in_flight_bytes() const;
  std::uint64_t queued_bytes() const;
  /// Copies abandoned so far (one per request and receiver).
  std::uint64_t abandoned() const noexcept { return abandoned_; }
  const kv_flow_limits& limits() const noexcept { return limits_; }

  /// The size the window counts for a KvDeltaBatch: its rows' bytes plus 64
  /// per row and per message.
  static std::uint64_t size_of(const messages::capnp_blob& blob);

 private:
  // A queued message and how much of it went already (in pieces).
  struct entry {
    messages::capnp_blob blob;                                 ///< a packed KvDeltaBatch
    std::uint64_t bytes = 0;                                   ///< the size of what is left to cut
    std::size_t row = 0;                                       ///< the first row not cut in full
    std::uint32_t token = 0;                                   ///< tokens of that row cut already
    bool done = false;                                         ///< all of it cut
    std::optional<messages::capnp_blob> ready = std::nullopt;  ///< cut, waiting for the window
    std::uint64_t ready_bytes = 0;
  };
  struct lane {
    std::deque<entry> queued;
    std::uint64_t queued_bytes = 0;
    std::deque<std::uint64_t> in_flight;  ///< sizes of the unacknowledged messages, in order
    std::uint64_t in_flight_bytes = 0;
    std::unordered_set<request_id> abandoned;
    std::deque<request_id> abandoned_order;  ///< `abandoned`, oldest first
  };
  /// Gives up `ids`' copies: their rows leave the queued messages that have
  /// not started to go, and a notice like `like` follows.
  void abandon(lane& l, const std::vector<request_id>& ids, const messages::kv_delta_batch& like);
  /// The requests whose copies to give up so that `incoming` fits `l`.
  std::vector<request_id> victims(const lane& l, const messages::kv_delta_batch& incoming) const;
  /// The next message of `e`: all of it, or its next piece; advances `e`.
  messages::capnp_blob next_piece(entry& e) const;

  kv_flow_limits limits_;
  std::map<instance_id, lane> lanes_;
  std::uint64_t abandoned_ = 0;
};

}  // namespace accellm::worker

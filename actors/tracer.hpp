// tracer: the message trace of a run (DESIGN.md "Actors": records the
// envelope of every message to a Cap'n Proto framed log).
//
// With `--trace FILE`, every process (simulate, coordinator, worker, and each
// process of up) opens one tracer and hands a trace_point to each actor it
// spawns; an actor then reports what it sends, its iterations and the clock
// readings it receives:
//
//   auto t = actors::tracer::open({.path = "w1.trace", .node = "w1", ...});
//   trace_point tp{t->get(), "im:3", "w1"};
//   tp.message("coordinator", "coord", blob, actors::now(self));   // one per send
//
// An actor without a tracer holds an empty trace_point, whose calls do
// nothing: tracing off costs one branch per send.
//
// The log (docs/tracing.md): 8 bytes of magic "ACLMTRC1", then frames, each
// a little-endian u64 length followed by that many bytes (a multiple of 8,
// so every frame stays word-aligned) of one Cap'n Proto TraceEvent
// (messages::encode, flat array). The first event is a log_start:
// sender_node this node, receiver_node the host name, note the clock,
// time_ns and peer_time_ns one reading of the actor clock and of the wall
// clock taken together. A log closed in order ends with a log_end that
// counts dropped events. A killed process leaves a log without log_end,
// possibly with a torn last frame; the reader can salvage such a log.
//
// A message's note says what its envelope does not: "takeover" or
// "from_replica" (StartDecode), the reason (MoveDecode, EvictReplica), the
// role (SetRole, "+ fenced"), the status (RequestDone).
//
// Off the hot path: the sending actor copies the envelope (a few integers,
// short names, and a reference to the packed message, never its bytes) into
// a queue under a mutex; a writer thread of the tracer encodes and writes.
// Byte counts and request ids of packed messages are worked out by the writer.
// When the queue holds queue_limit events, a simulation (block_when_full)
// waits for the writer, so its log is complete; a daemon drops the event and
// counts it (log_end.dropped) rather than stall an actor on the disk.
//
// Times: time_ns counts nanoseconds of the actor clock from options.origin.
// accellm uses the clock's own epoch as origin everywhere (the time_ns of
// messages such as IterationReport.start_ns count from it too), so the
// processes of one host agree; across hosts `accellm trace` estimates
// offsets from clock_sample events (docs/tracing.md). The writer wakes every
// writer_period, or once writer_batch events wait.
//
// Thread contract: message(), span() and clock_sample() may be called from
// any thread (every actor of a process shares one tracer); close() from the
// owner once no actor uses it. The tracer must outlive its trace_points.
#pragma once

#include "actors/clock.hpp"
#include "common/result.hpp"
#include "common/types.hpp"
#include "messages/capnp_blob.hpp"
#include "messages/enums.hpp"
#include "messages/structs.hpp"

#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace accellm::actors {

/// The 8 bytes every trace log starts with.
inline constexpr std::string_view trace_magic = "ACLMTRC1";

/// The largest frame a reader accepts (one TraceEvent is a few hundred bytes).
inline constexpr std::uint32_t trace_frame_limit = 1u << 20;

struct tracer_options {
  std::string path;              ///< the log file; created or truncated
  std::string node;              ///< this process in the log ("coordinator", "w1", "sim")
  std::string clock = "steady";  ///< "steady" (daemons) or "virtual" (simulate)
  time_point origin{};           ///< the actor-clock reading time_ns counts from
  time_point opened{};           ///< the actor clock now (log_start's time_ns)
  /// Wait for the writer when the queue is full (simulation), instead of
  /// dropping the event (daemons).
  bool block_when_full = false;
  std::size_t queue_limit = std::size_t{1} << 18;
};

class tracer;

/// An actor's handle on the tracer: its name and node. Empty (no tracer):
/// every call does nothing.
struct trace_point {
  tracer* sink = nullptr;
  std::string actor;  ///< "coordinator", "im:3", "worker:3", "kv:3", "client"
  std::string node;   ///< the process or simulated host it runs on

  explicit operator bool() const noexcept { return sink != nullptr; }

  /// A message this actor sends to `to` on `to_node` at `sent`. `transit`:
  /// the modelled time until it arrives, when the sender knows it (a
  /// simulated KV copy), else 0.
  void message(std::string_view to, std::string_view to_node, const messages::capnp_blob& m,
               time_point sent, duration transit = {}) const;
  /// A message from `from` on `from_node`, recorded by its receiver at
  /// `received`: for senders outside the traced processes (clients).
  void received(std::string_view from, std::string_view from_node, const messages::capnp_blob& m,
                time_point received) const;
  /// One iteration of `instance`, from `start` for `length`.
  void span(instance_id instance, messages::role role, epoch_t epoch, time_point start,
            duration length, std::uint32_t prefill_tokens, std::uint32_t decode_requests) const;
  /// A message from `peer_node` that carried the sender's clock reading
  /// (`peer_time_ns`, same origin convention) arrived at `received`.
  void clock_sample(std::string_view peer_node, time_point received,
                    std::uint64_t peer_time_ns) const;
  /// The same point under another actor name (same tracer and node).
  trace_point as(std::string actor_name) const { return {sink, std::move(actor_name), node}; }
};

class tracer {
 public:
  /// Creates the log and starts the writer; errc::io_failure naming the path
  /// when it cannot be created, errc::invalid_argument for an empty path or
  /// node, or a clock other than "steady" or "virtual".
  static result<std::unique_ptr<tracer>> open(tracer_options opts);

  tracer(const tracer&) = delete;
  tracer& operator=(const tracer&) = delete;
  /// close()s if not closed yet (errors are lost: call close() to see them).
  ~tracer();

  /// A trace_point of this tracer for `actor` on this process's node.
  trace_point point(std::string actor) { return {this, std::move(actor), opts_.node}; }
  /// A trace_point for `actor` on another node (simulate: each simulated
  /// host is a node; the process has one tracer).
  trace_point point(std::string actor, std::string node) {
    return {this, std::move(actor), std::move(node)};
  }

  /// Writes what is queued, then log_end (`why`), and stops the writer.
  /// errc::io_failure when a write failed at any time (naming the path).
  /// Idempotent; events reported afterwards are dropped.
  status close(std::string_view why = "closed");

  struct counts {
    std::uint64_t events = 0;   ///< written
    std::uint64_t dropped = 0;  ///< queue full or after close
    std::uint64_t bytes = 0;    ///< of the log file
  };
  counts totals() const;

  const tracer_options& options() const noexcept { return opts_; }

  /// One queued record (the envelope; its strings and packed message are
  /// owned). Public for trace_point; not an interface.
  struct pending {
    messages::trace_kind kind = messages::trace_kind::message;
    std::uint64_t time_ns = 0;
    std::uint64_t duration_ns = 0;  ///< span length, or a message's transit
    std::uint64_t peer_time_ns = 0;
    std::string sender, receiver, sender_node, receiver_node;
    messages::capnp_blob blob;  ///< messages: the packed message, or bytes' size only
    std::uint64_t wire_bytes = 0;
    epoch_t epoch = 0;
    instance_id instance = no_instance;
    messages::role role = messages::role::mixed;
    std::uint32_t prefill_tokens = 0;
    std::uint32_t decode_requests = 0;
  };
  void push(pending&& p);
  std::uint64_t since_origin(time_point t) const noexcept;

 private:
  explicit tracer(tracer_options opts, std::FILE* file);
  void run();
  /// Writes one frame and adds its size to `bytes`; false (and the error
  /// kept) when the write failed.
  bool write_frame(const messages::trace_event& e, std::uint64_t& bytes);

  /// The writer takes what is queued every writer_period, or as soon as
  /// writer_batch events wait.
  static constexpr std::chrono::milliseconds writer_period{5};
  static constexpr std::size_t writer_batch = 4096;

  tracer_options opts_;
  std::FILE* file_;
  mutable std::mutex mu_;
  std::condition_variable wake_;  ///< writer: something queued or closing
  std::condition_variable room_;  ///< blocked producers: the queue drained
  std::vector<pending> queue_;
  bool closing_ = false;
  bool closed_ = false;
  bool write_failed_ = false;
  std::string write_error_;
  counts counts_;
  std::thread writer_;
};

/// The log of one of several processes or runs that share a --trace FILE:
/// "-<part>" before the extension ("run.trace", "w1" -> "run-w1.trace").
std::string trace_file_for(const std::string& file, std::string_view part);

/// A trace log read back.
struct trace_log {
  std::string path;
  std::string node;            ///< from log_start
  std::string host;            ///< from log_start: the machine's host name
  std::string clock;           ///< "steady" or "virtual"
  std::uint64_t start_ns = 0;  ///< log_start's time_ns
  std::uint64_t wall_ns = 0;   ///< wall clock at start_ns (ns since 1970)
  /// Every event after log_start, in the order written (log_end excluded).
  std::vector<messages::trace_event> events;
  bool complete = false;      ///< ended with log_end
  std::uint64_t dropped = 0;  ///< from log_end
  std::string end_note;       ///< log_end's note
  bool salvaged = false;      ///< a torn last frame was cut off
};

struct trace_read_options {
  /// Accept a torn last frame (a process killed while writing) by dropping
  /// it, instead of failing.
  bool salvage = false;
};

/// Reads and validates a log. Errors (errc::io_failure, errc::malformed,
/// errc::truncated, errc::out_of_range) name the path, the record number and
/// its byte offset: "w1.trace: record 12 at byte 3456: frame of 70000 bytes
/// runs past the end of the file (3500 bytes)".
result<trace_log> read_trace_log(const std::string& path, const trace_read_options& opts = {});

}  // namespace accellm::actors

// kv_ring_link: how a worker hands a KV ring (device/kv_ring.hpp) to its
// partner's worker in another process on the same node.
//
// The receiver listens on an abstract Unix socket named after its kv_replica
// (ring_socket_name: the process id and the actor id that the sender reads
// off the replica handle it already holds). Abstract sockets belong to a
// network namespace, so a partner on another host, or in another namespace,
// is simply not found and the copy goes over the network as before.
//
//   sender (its device thread)              receiver (listener thread)
//     connect ──> offer {magic, version, from instance, ring id, kind,
//                  capacity} + SCM_RIGHTS [data fd, control fd]
//                                            map both (on its device thread)
//             <── answer {magic, accepted?, why not}
//
// The sender uses the ring only after an accepted answer; any failure (no
// listener, a refusal, a timeout) leaves it on the network path. An abstract
// socket has no file permissions, so the listener refuses offers from
// processes of another user (SO_PEERCRED). Each
// boundary check names what was wrong: a short or oversized message, a wrong
// magic or version, a missing descriptor, an unknown region kind.
//
// Thread contract: the free functions block their caller (bounded by their
// timeout); a ring_listener runs one thread of its own, which calls `accept`
// for one offer at a time.
#pragma once

#include "common/result.hpp"
#include "common/unique_fd.hpp"
#include "device/shared_region.hpp"

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <thread>

namespace accellm::worker {

/// What a sender offers: its ring, to be named in KvDeltaBatch.ring.
struct ring_offer {
  std::uint32_t from_instance = 0;
  std::uint64_t ring = 0;  ///< nonzero
  device::region_kind kind = device::region_kind::host;
  std::uint64_t capacity = 0;  ///< bytes of the data region, > 0
};

/// The offer's descriptors, as received.
struct ring_descriptors {
  unique_fd data;
  unique_fd control;
};

/// "accellm-kv/<pid>/<actor id>": the abstract socket of the receiver whose
/// kv_replica is actor `actor_id` of process `pid`.
std::string ring_socket_name(std::uint32_t pid, std::uint64_t actor_id);

/// Connects to `name`, offers the ring (dup'ing nothing: the descriptors are
/// sent as they are) and waits up to `timeout` for the answer. not_found
/// when nobody listens there, unsupported (with the receiver's reason) when
/// it refused, io_failure on a broken or silent peer, malformed on an
/// answer that is not one.
status offer_ring(const std::string& name, const ring_offer& offer, int data_fd, int control_fd,
                  std::chrono::milliseconds timeout);

/// On one connected SOCK_SEQPACKET socket: reads an offer and its two
/// descriptors (waiting up to `timeout`). malformed or invalid_argument
/// naming the problem; the descriptors of a refused offer are closed.
result<std::pair<ring_offer, ring_descriptors>> receive_offer(int sock,
                                                              std::chrono::milliseconds timeout);
/// Answers an offer: accepted when `outcome` is ok, else refused with its text.
status send_answer(int sock, const status& outcome);
/// One message of `n` bytes with up to 8 descriptors (SCM_RIGHTS), which
/// stay open here.
status send_with_fds(int sock, const void* bytes, std::size_t n, std::span<const int> fds);

/// The receiving end: a listening socket and a thread that takes one offer
/// per connection and answers with what `accept` returned.
class ring_listener {
  struct key {
    explicit key() = default;
  };

 public:
  using accept_fn = std::function<status(const ring_offer&, ring_descriptors)>;
  /// Listens on `name`; in_use when another socket holds the name.
  static result<std::unique_ptr<ring_listener>> start(const std::string& name, accept_fn accept);

  ring_listener(key, unique_fd sock, unique_fd wake, accept_fn accept);
  ring_listener(const ring_listener&) = delete;
  ring_listener& operator=(const ring_listener&) = delete;
  /// Stops and joins the thread (after the offer in progress).
  ~ring_listener();

  /// Offers answered so far, and how many of them were accepted.
  std::uint64_t offers() const noexcept { return offers_.load(); }
  std::uint64_t accepted() const noexcept { return accepted_.load(); }

 private:
  void loop();

  unique_fd sock_;
  unique_fd wake_;  // an eventfd: written to stop the thread
  accept_fn accept_;
  std::atomic<std::uint64_t> offers_{0}, accepted_{0};
  std::thread thread_;
};

}  // namespace accellm::worker

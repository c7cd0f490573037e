// device_worker: the worker of an instance on a real device, `cpu` or
// `cuda:N` (DESIGN.md "worker"; the simulated device has worker.hpp).
//
// The backend computes on a thread of its own: the actor turns each Execute
// into a job on that thread's queue and returns at once, so the actor
// scheduler never waits for the device (a CUDA iteration, or a CPU forward
// pass of seconds). The thread runs the jobs in order. The new KV rows of
// every item with a replica_to go to that instance's kv_replica while the
// iteration runs (device::backend::run_streaming): when the batch holds a
// prompt, one KvDeltaBatch per layer and partner, each handed on as soon as
// the device has computed that layer, so the copy overlaps the rest of the
// prefill; a decode-only iteration's rows go once, all layers, after it. Then
// IterationDone, with the measured device time and the bytes sent, goes to
// the instance_manager. The rows go through the actor, which sends them as
// each receiver's window allows (kv_send_queue.hpp: KvAck is the credit; a
// receiver too far behind has its copies abandoned), and IterationDone after
// them. KV rows that reach this instance (KvDeltaBatch from
// the local kv_replica) are imported into the backend by a job on the same
// queue, so an import always precedes the iterations that were asked for
// after it, and layer groups are imported as they come.
//
// Partners in another process of the same node get their rows through a
// shared ring instead (ring_book.hpp): packed into memory both processes map
// (device memory on a GPU), the KvDeltaBatch naming where they lie; rows
// that find the ring full still travel in the message.
//
// An Execute item without its token ids (the instance_manager fills them
// when instance_options::device_memory is on) is answered with
// IterationDone.error naming it. An item the backend cannot run on its own
// (device::screen: a request it never saw, a context other than what every
// layer caches) is listed in IterationDone.refused with the backend's words,
// and the rest of the batch runs without it.
//
// Messages in: (msg_atom, Execute) from the instance_manager; (msg_atom,
// KvDeltaBatch) from the instance_manager (the rows it kept) or a kv_replica;
// (msg_atom, KvAck) from a partner's kv_replica;
// (ring_atom, socket name) from its kv_replica: listen there for the rings of
// partners on this node;
// (release_atom, request ids) from the instance_manager: their KV is freed
// on the device, after the jobs queued before; (ping_atom) answered with
// pong_atom, also while the device is busy; (report_atom) answered with
// the flow control's state summed over the receivers: (bytes sent and not
// yet acknowledged, bytes waiting for a window, copies abandoned so far),
// three std::uint64_t. Out: IterationDone to the
// instance_manager, KvDeltaBatch to partners' kv_replicas. Set-up:
// (peers_atom, instance_manager, std::vector<caf::actor> kv_replicas);
// (peers_atom, std::vector<caf::actor> kv_replicas) replaces the receivers
// (a daemon's cluster grows).
//
// Thread contract: an actor; the backend belongs to its device thread, which
// the actor joins when it exits (after the job in progress, dropping queued
// ones).
#pragma once

#include "actors/tracer.hpp"
#include "common/types.hpp"
#include "device/backend.hpp"
#include "worker/kv_send_queue.hpp"

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

#include <cstdint>
#include <memory>
#include <string>

namespace accellm::worker {

/// How the device thread is scheduled by the OS. For a backend that computes
/// on the host CPU (`cpu`), so that a thread of the process that wakes up for
/// a message gets a core at once instead of after the forward pass's time
/// slice (the process's other threads ask for short slices,
/// actors/thread_sched.hpp; bench/README.md has the figures).
enum class compute_priority {
  normal,
  /// Nice background_nice and the kernel's default slice. Still gets its
  /// share of a busy core, a small one (about 1.5% beside a normal thread).
  background,
  /// SCHED_IDLE: runs only on a core no other thread wants. The lowest
  /// coordination latency, but any other busy program on the host stops it.
  idle,
};

/// The nice value of a background (and idle) device thread.
inline constexpr int background_nice = 19;

/// Bytes of each same-node KV ring a worker makes for a partner (device
/// memory on cuda; a memfd, touched as used, on cpu). A prefill layer of a
/// 2048-token Llama-2-7B prompt is 32 MiB.
inline constexpr std::uint64_t default_kv_ring_bytes = std::uint64_t{256} << 20;

struct device_worker_options {
  compute_priority priority = compute_priority::normal;
  /// Records IterationDone and the KV rows it sends, as "worker:<id>", at
  /// the actor clock's time; may be empty.
  actors::trace_point trace;
  /// The size of the ring it offers each partner on the node (0: it sends
  /// every row over the network, but still takes partners' rings).
  std::uint64_t kv_ring_bytes = default_kv_ring_bytes;
  /// The flow control of the rows it sends (kv_send_queue.hpp).
  kv_flow_limits kv_flow;
};

/// Spawns the worker of instance `id`; it owns `backend` (never null).
caf::actor spawn_device_worker(caf::actor_system& sys, instance_id id,
                               std::unique_ptr<device::backend> backend,
                               device_worker_options options = {});

/// The abstract socket on which the worker beside `replica` takes ring
/// offers (kv_ring_link.hpp), seen from node `here`; "" when the replica's
/// node is on another host.
std::string kv_ring_socket(const caf::actor& replica, const caf::node_id& here);

}  // namespace accellm::worker

#include "worker/device_worker.hpp"

#include "actors/atoms.hpp"
#include "actors/clock.hpp"
#include "actors/thread_sched.hpp"
#include "messages/codec.hpp"
#include "worker/batch_item.hpp"
#include "worker/kv_ring_link.hpp"
#include "worker/ring_book.hpp"

#include <caf/all.hpp>
#include <sched.h>
#include <unistd.h>

#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace accellm::worker {
namespace {

using actors::msg_atom;

// The backend, its same-node KV rings and the one thread that uses them.
// Jobs run in the order they were posted; the destructor lets the running
// job finish, drops the rest and joins.
class device_thread {
 public:
  using job = std::function<void(device::backend&, ring_book&)>;

  device_thread(std::unique_ptr<device::backend> backend, compute_priority priority,
                std::uint64_t ring_bytes)
      : backend_(std::move(backend)),
        pinned_(backend_->host_buffers()),
        rings_(ring_bytes),
        priority_(priority),
        thread_([this] { loop(); }) {}

  device_thread(const device_thread&) = delete;
  device_thread& operator=(const device_thread&) = delete;

  ~device_thread() {
    {
      std::lock_guard lock{mutex_};
      stop_ = true;
    }
    wake_.notify_one();
    thread_.join();
  }

  /// Whether the backend maps device-memory rings (device/shared_region.hpp).
  bool maps_cuda() const noexcept { return backend_->name().starts_with("cuda"); }
  /// The backend's pinned host memory (backend::host_buffers), or nullptr;
  /// usable from any thread.
  device::host_pool* pinned() const noexcept { return pinned_; }

  void post(job j) {
    {
      std::lock_guard lock{mutex_};
      jobs_.push_back(std::move(j));
    }
    wake_.notify_one();
  }

 private:
  void loop() {
    // Behind the process's other threads (actors/thread_sched.hpp). Should a
    // call fail, the thread computes at a higher priority than asked, which
    // only makes coordination wait longer behind it.
    if (priority_ != compute_priority::normal) {
      (void)actors::request_time_slice(std::chrono::nanoseconds{0});
      (void)actors::set_thread_nice(background_nice);
    }
    if (priority_ == compute_priority::idle) {
      const sched_param none{};
      (void)sched_setscheduler(0, SCHED_IDLE, &none);
    }
    for (;;) {
      job next;
      {
        std::unique_lock lock{mutex_};
        wake_.wait(lock, [this] { return stop_ || !jobs_.empty(); });
        if (stop_) return;
        next = std::move(jobs_.front());
        jobs_.pop_front();
      }
      next(*backend_, rings_);
    }
  }

  std::unique_ptr<device::backend> backend_;
  device::host_pool* pinned_;  // backend_'s, asked once before the thread starts
  ring_book rings_;            // after backend_: its rings hold backend memory
  compute_priority priority_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<job> jobs_;
  bool stop_ = false;
  std::thread thread_;  // last: starts once the members above exist
};

// Where a partner's rows may go without the network: its kv_replica's
// address and, when that replica lives in another process of this node, the
// socket its worker takes ring offers on (kv_ring_link.hpp).
struct ring_target {
  instance_id target = no_instance;
  std::string replica;
  std::string socket;
};

struct device_worker_state {
  instance_id id = no_instance;
  std::shared_ptr<device_thread> device;
  // After device: stopped first, since it posts to the device thread.
  std::unique_ptr<ring_listener> listener;
  caf::actor manager;
  std::vector<caf::actor> replicas;
  std::vector<ring_target> ring_targets;  ///< per replicas entry, derived when they change
  kv_send_queue kv_out;
  instance_id instance = no_instance;  ///< the latest Execute's (names the trace)
  actors::trace_point trace;
  static inline const char* name = "device_worker";
};

using device_worker_actor = caf::stateful_actor<device_worker_state>;

// The batch as the backend wants it; an error names the first item without
// the token ids a real device needs.
result<device::batch> to_batch(const messages::execute& ex) {
  device::batch b;
  b.items.reserve(ex.items.size());
  for (std::size_t i = 0; i < ex.items.size(); ++i) {
    const messages::execute_item& in = ex.items[i];
    if (in.tokens.size() != in.num_tokens) {
      return fail(errc::invalid_argument, "execute.items[" + std::to_string(i) + "]: request " +
                                              std::to_string(in.request) + " carries " +
                                              std::to_string(in.tokens.size()) + " token ids for " +
                                              std::to_string(in.num_tokens) +
                                              " tokens; a real device needs every id");
    }
    to_batch_item(in, b.items.emplace_back());
  }
  return b;
}

// What an Execute streams to partners: the rows of its items with a
// replica_to. While a prompt is in the batch the iteration is long, and each
// layer leaves as soon as it is computed, so the copy overlaps the rest of the
// prefill (one KvDeltaBatch per layer and partner); a decode-only iteration
// sends its rows once, all layers together, after it.
struct kv_plan {
  device::kv_stream stream;
  std::vector<instance_id> targets;  ///< per stream.requests entry
};

kv_plan plan_kv(const messages::execute& ex, const std::vector<device::refusal>& refused) {
  kv_plan p;
  bool prompt = false;
  auto next_refused = refused.begin();  // ascending index
  for (std::size_t i = 0; i < ex.items.size(); ++i) {
    if (next_refused != refused.end() && next_refused->index == i) {
      ++next_refused;  // does not run: nothing to stream
      continue;
    }
    const messages::execute_item& it = ex.items[i];
    prompt |= it.num_tokens > 1;
    if (it.replica_to == no_instance) continue;
    p.stream.requests.push_back(it.request);
    p.targets.push_back(it.replica_to);
  }
  p.stream.layers_per_chunk = prompt ? 1 : 0;
  return p;
}

// On the device thread: one layer group's chunks, as a KvDeltaBatch per
// target instance.
std::map<instance_id, messages::kv_delta_batch> group_rows(const messages::execute& ex,
                                                           const std::vector<instance_id>& targets,
                                                           std::vector<device::kv_chunk> chunks) {
  std::map<instance_id, messages::kv_delta_batch> out;
  for (std::size_t i = 0; i < chunks.size() && i < targets.size(); ++i) {
    device::kv_chunk& c = chunks[i];
    messages::kv_delta_batch& b = out[targets[i]];
    b.layer_begin = c.layers.begin;
    b.layer_end = c.layers.end;
    if (c.dropped) {  // no room on the device: the copy is given up (kv_send_queue::push)
      b.abandoned.push_back(c.request);
      continue;
    }
    b.rows.push_back({.request = c.request,
                      .token_begin = c.tokens.begin,
                      .token_end = c.tokens.end,
                      .size_bytes = c.bytes,
                      .data = std::move(c.data),
                      .ring_pos = c.ring_pos});
    if (c.ring != 0) b.ring = c.ring;  // one ring per target
  }
  for (auto& [target, b] : out) {
    b.epoch = ex.epoch;
    b.from_instance = ex.instance;
    b.phase = ex.items.front().phase;
  }
  return out;
}

// The partners' ring targets, derived once per set of replicas (the actor
// knows its node). A receiver that changed or went takes its flow-control
// lane with it: nothing on the way to the old one will be acknowledged.
void set_replicas(device_worker_actor* self, std::vector<caf::actor> replicas) {
  auto& s = self->state;
  for (std::size_t i = 0; i < s.replicas.size(); ++i) {
    if (i >= replicas.size() || replicas[i] != s.replicas[i])
      s.kv_out.reset(static_cast<instance_id>(i));
  }
  s.replicas = std::move(replicas);
  s.ring_targets.clear();
  for (std::size_t i = 0; i < s.replicas.size(); ++i) {
    const caf::actor& r = s.replicas[i];
    if (!r) {
      s.ring_targets.emplace_back();
      continue;
    }
    s.ring_targets.push_back({.target = static_cast<instance_id>(i),
                              .replica = caf::to_string(r.address()),
                              .socket = kv_ring_socket(r, self->node())});
  }
}

// Sends what the receivers' windows let go.
void flush_kv(device_worker_actor* self) {
  auto& s = self->state;
  for (kv_send_queue::message& m : s.kv_out.take_ready()) {
    if (m.target >= s.replicas.size() || !s.replicas[m.target]) {
      s.kv_out.reset(m.target);  // no receiver: nothing to wait for
      continue;
    }
    if (s.trace) {
      // The partner's node is not known here: "" (the trace tools find it).
      s.trace.as("worker:" + std::to_string(s.instance))
          .message("kv:" + std::to_string(m.target), "", m.blob, actors::now(self));
    }
    self->send(s.replicas[m.target], msg_atom::value, std::move(m.blob));
  }
}

// A partner's kv_replica took `ack.batches` messages: its window opens.
void on_ack(device_worker_actor* self, const messages::kv_ack& ack) {
  auto& s = self->state;
  const caf::actor_addr from =
      self->current_sender() ? self->current_sender()->address() : caf::actor_addr{};
  for (std::size_t i = 0; i < s.replicas.size(); ++i) {
    if (!s.replicas[i] || s.replicas[i].address() != from) continue;
    (void)s.kv_out.acked(static_cast<instance_id>(i), ack.batches);  // an excess is ignored
    flush_kv(self);
    return;
  }
}

// The ring targets of an Execute's partners, each once.
std::vector<ring_target> ring_targets(const device_worker_state& s, const messages::execute& ex) {
  std::vector<ring_target> out;
  for (const messages::execute_item& it : ex.items) {
    if (it.replica_to >= s.ring_targets.size()) continue;  // no_instance too
    const ring_target& t = s.ring_targets[it.replica_to];
    const bool listed = std::any_of(out.begin(), out.end(),
                                    [&](const ring_target& o) { return o.target == t.target; });
    if (t.target != no_instance && !listed) out.push_back(t);
  }
  return out;
}

void on_execute(device_worker_actor* self, const messages::execute& ex) {
  auto& s = self->state;
  messages::iteration_done done;
  done.epoch = ex.epoch;
  done.instance = ex.instance;
  done.iteration = ex.iteration;
  auto b = to_batch(ex);
  if (!b) {
    done.error = b.err().what();
    self->send(s.manager, msg_atom::value, messages::pack(done));
    return;
  }
  s.instance = ex.instance;
  // The rows and IterationDone go back through this actor (out_atom): the
  // rows wait there for their receivers' windows, IterationDone after them.
  // By address: a queued job must not keep the actor alive.
  s.device->post([ex, batch = std::move(*b), done, me = self->address(), rt = ring_targets(s, ex)](
                     device::backend& dev, ring_book& rings) mutable {
    const auto hand_back = [&me](auto&&... xs) {
      if (auto a = caf::actor_cast<caf::actor>(me))
        caf::anon_send(a, actors::out_atom::value, std::forward<decltype(xs)>(xs)...);
    };
    // An item the device cannot run alone is refused alone; the rest run.
    device::screened_batch sb = device::screen(dev, std::move(batch));
    for (const device::refusal& r : sb.refused)
      done.refused.push_back({.item = static_cast<std::uint32_t>(r.index), .reason = r.why.what()});
    kv_plan kv = plan_kv(ex, sb.refused);
    for (const ring_target& t : rt) rings.prepare(dev, ex.instance, t.target, t.replica, t.socket);
    kv.stream.place = [&](std::size_t i, std::uint64_t bytes) {
      return rings.place(kv.targets[i], bytes);
    };
    kv.stream.sink = [&](std::vector<device::kv_chunk> chunks) {
      device::host_pool* pinned = dev.host_buffers();
      for (const device::kv_chunk& c : chunks)
        if (c.dropped) done.kv_bytes_dropped += c.bytes;
      for (auto& [target, rows] : group_rows(ex, kv.targets, std::move(chunks))) {
        for (const auto& row : rows.rows) {
          done.kv_bytes_sent += row.size_bytes;
          if (rows.ring != 0 && row.data.empty()) done.kv_bytes_shared += row.size_bytes;
          // Not in the pinned pool: copied out on this thread (no room there).
          if (pinned != nullptr && !row.data.empty() &&
              !pinned->owns(row.data.data(), row.data.size()))
            done.kv_bytes_copied += row.size_bytes;
        }
        hand_back(target, messages::pack(std::move(rows)));
      }
    };
    if (sb.runnable.items.empty()) {
      done.next_tokens.assign(ex.items.size(), no_token);
    } else if (auto r = dev.run_streaming(sb.runnable, kv.stream); !r) {
      done.error = r.err().what();
    } else {
      done.duration_ns = static_cast<std::uint64_t>(r->duration.count());
      done.next_tokens = device::unscreen(sb, ex.items.size(), std::move(r->next_tokens));
    }
    hand_back(messages::pack(done));
  });
}

// `data` in the device's pinned memory, copied here on the actor's thread so
// that the device thread uploads it without a host copy of its own; as it
// is when the device has no such memory or none to spare. Incoming rows may
// hold at most half of it: rows that pile up while the device computes must
// not leave its own exports without room. Nor do they allocate it: pinning
// memory takes milliseconds, and this is an actor's thread (the device
// thread grows the pool).
shared_bytes pinned_copy(device::host_pool* pinned, const shared_bytes& data) {
  if (pinned == nullptr || data.empty()) return data;
  std::optional<device::host_lease> lease =
      pinned->take(data.size(), pinned->cap_bytes() / 2, device::host_pool::may_grow::no);
  if (!lease) return data;
  std::memcpy(lease->data(), data.data(), data.size());
  return lease->share(0, data.size());
}

// Rows of a partner's request: imported on the device thread, after the jobs
// already queued.
// Rows in the sender's ring (same node) are read from there; a ring this
// worker has not mapped drops them like a slice that does not fit.
void on_rows(device_worker_actor* self, const messages::kv_delta_batch& m) {
  if (m.from_instance == self->state.id) return;
  for (const messages::kv_rows& row : m.rows) {
    const bool in_ring = m.ring != 0 && row.data.empty() && row.size_bytes > 0;
    if (row.data.empty() && !in_ring) continue;  // sizes only: a simulated sender
    device::kv_chunk chunk{.request = row.request,
                           .layers = {m.layer_begin, m.layer_end},
                           .tokens = {row.token_begin, row.token_end},
                           .bytes = row.size_bytes,
                           .data = pinned_copy(self->state.device->pinned(), row.data)};
    self->state.device->post([chunk = std::move(chunk), in_ring, from = m.from_instance,
                              ring = m.ring,
                              pos = row.ring_pos](device::backend& dev, ring_book& rings) {
      // A slice that does not fit (a gap, or a full pool) is dropped: the
      // copy stops growing and is completed by recompute where it is used.
      if (in_ring)
        (void)rings.import(dev, from, ring, pos, chunk);
      else
        (void)dev.import_kv(chunk);
    });
  }
}

// Ring offers are checked on the listener's thread and mapped by a job on the
// device thread: the offer is answered at once, and rows naming the ring,
// which the sender sends only after the answer, are imported by later jobs.
void listen_for_rings(device_worker_actor* self, const std::string& name) {
  auto& s = self->state;
  s.listener.reset();
  device_thread* device = s.device.get();
  auto listener =
      ring_listener::start(name, [device](const ring_offer& offer, ring_descriptors fds) -> status {
        if (offer.kind == device::region_kind::cuda && !device->maps_cuda())
          return fail(errc::unsupported, "this worker's device cannot map GPU memory");
        auto held = std::make_shared<ring_descriptors>(std::move(fds));
        device->post([offer, held](device::backend& dev, ring_book& rings) {
          (void)rings.open(dev, offer, std::move(*held));
        });
        return {};
      });
  // Without a listener partners on this node send over the network.
  if (listener) s.listener = std::move(*listener);
}

caf::behavior device_worker(device_worker_actor* self, instance_id id,
                            std::shared_ptr<device_thread> device, actors::trace_point trace,
                            kv_flow_limits flow) {
  self->state.id = id;
  self->state.trace = std::move(trace);
  self->state.kv_out = kv_send_queue{flow};
  self->state.device = std::move(device);  // joined when the state goes, at exit
  return {
      [self](actors::peers_atom, caf::actor manager, std::vector<caf::actor> replicas) {
        self->state.manager = std::move(manager);
        set_replicas(self, std::move(replicas));
      },
      // A daemon's partners change as instances join: the KV receivers by id.
      [self](actors::peers_atom, std::vector<caf::actor> replicas) {
        set_replicas(self, std::move(replicas));
      },
      [self](actors::ring_atom, const std::string& socket) { listen_for_rings(self, socket); },
      [self](actors::release_atom, const std::vector<request_id>& ids) {
        self->state.kv_out.forget(ids);
        self->state.device->post([ids](device::backend& dev, ring_book&) {
          for (const request_id r : ids) dev.release(r);
        });
      },
      // A message that does not decode came from a broken local sender (the
      // instance_manager or kv_replica of this process): dropped.
      [self](msg_atom, const messages::capnp_blob& b) {
        using messages::msg_type;
        if (b.type == static_cast<std::uint16_t>(msg_type::execute)) {
          if (auto ex = messages::decode<messages::execute>(b)) on_execute(self, *ex);
        } else if (b.type == static_cast<std::uint16_t>(msg_type::kv_delta_batch)) {
          if (auto rows = messages::decode<messages::kv_delta_batch>(b)) on_rows(self, *rows);
        } else if (b.type == static_cast<std::uint16_t>(msg_type::kv_ack)) {
          if (auto ack = messages::decode<messages::kv_ack>(b)) on_ack(self, *ack);
        }
      },
      // From the device thread: an iteration's rows for `target`, then its
      // IterationDone.
      [self](actors::out_atom, instance_id target, const messages::capnp_blob& rows) {
        (void)self->state.kv_out.push(target, rows);  // always a valid batch: made above
        flush_kv(self);
      },
      [self](actors::out_atom, messages::capnp_blob& done) {
        auto& s = self->state;
        if (s.trace) {
          s.trace.as("worker:" + std::to_string(s.instance))
              .message("im:" + std::to_string(s.instance), s.trace.node, done, actors::now(self));
        }
        self->send(s.manager, msg_atom::value, std::move(done));
      },
      [self](actors::report_atom) {
        const kv_send_queue& q = self->state.kv_out;
        return caf::make_message(q.in_flight_bytes(), q.queued_bytes(), q.abandoned());
      },
      [](actors::ping_atom) { return actors::pong_atom::value; },
      // A real device runs one step per Execute (IterationDone.steps = 1), so
      // there is never a multi-step iteration to cut or join (joined = 0).
      [](actors::cut_atom, std::uint64_t) {},
      [](actors::join_atom, std::uint64_t, const messages::capnp_blob&) {},
  };
}

}  // namespace

std::string kv_ring_socket(const caf::actor& replica, const caf::node_id& here) {
  // A node id of CAF's default kind holds its host's hash and process id.
  const caf::node_id there = replica.node();
  // A system without networking has no node id: the replica is in this
  // process.
  if (!there && !here)
    return ring_socket_name(static_cast<std::uint32_t>(::getpid()), replica.id());
  if (!there || !here || caf::wraps_uri(there) || caf::wraps_uri(here)) return {};
  const auto& a = static_cast<const caf::node_id::default_data&>(*there);
  const auto& b = static_cast<const caf::node_id::default_data&>(*here);
  if (a.host_id() != b.host_id()) return {};
  return ring_socket_name(a.process_id(), replica.id());
}

caf::actor spawn_device_worker(caf::actor_system& sys, instance_id id,
                               std::unique_ptr<device::backend> backend,
                               device_worker_options options) {
  return sys.spawn(
      device_worker, id,
      std::make_shared<device_thread>(std::move(backend), options.priority, options.kv_ring_bytes),
      std::move(options.trace), options.kv_flow);
}

}  // namespace accellm::worker

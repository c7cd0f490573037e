#include "worker/worker.hpp"

#include "actors/atoms.hpp"
#include "actors/clock.hpp"
#include "device/sim/sim_backend.hpp"
#include "messages/codec.hpp"
#include "worker/batch_item.hpp"

#include <caf/all.hpp>

#include <algorithm>
#include <map>
#include <vector>

namespace accellm::worker {
namespace {

using actors::msg_atom;
using std::chrono::nanoseconds;

struct worker_state {
  sim_worker_options opt;
  caf::actor manager;
  std::vector<caf::actor> replicas;
  nanoseconds link_free{0};  ///< when the outgoing link finishes its queue (clock time)
  device::batch scratch;
  static inline const char* name = "worker";
};

using worker_actor = caf::stateful_actor<worker_state>;

nanoseconds wire_time(const worker_state& s, std::uint64_t bytes) {
  const double per_device = static_cast<double>(bytes) / std::max<std::uint32_t>(1, s.opt.tp);
  return nanoseconds{static_cast<std::int64_t>(per_device / s.opt.link.bandwidth * 1e9)};
}

// Rows for one target and when they land.
struct outgoing {
  instance_id target = no_instance;
  messages::kv_delta_batch batch;
  nanoseconds arrival{0};
  std::uint64_t bytes = 0;
};

// Layer-wise copy of the prompt items: layer l of every item is ready at
// start + (l + 1) * per_layer and queues on the link behind what came before.
void copy_prompts(worker_state& s, const messages::execute& ex, nanoseconds start,
                  nanoseconds duration, std::vector<outgoing>& out) {
  const std::uint32_t layers = std::max<std::uint32_t>(1, s.opt.model.layers);
  const nanoseconds per_layer = duration / layers;
  std::vector<std::size_t> items;
  for (std::size_t i = 0; i < ex.items.size(); ++i) {
    const auto& it = ex.items[i];
    if (it.phase == messages::phase::prefill && it.replica_to != no_instance) items.push_back(i);
  }
  if (items.empty()) return;
  std::vector<nanoseconds> done(items.size());
  for (std::uint32_t l = 0; l < layers; ++l) {
    const nanoseconds ready = start + per_layer * (l + 1);
    for (std::size_t k = 0; k < items.size(); ++k) {
      const auto& it = ex.items[items[k]];
      const std::uint64_t bytes = s.opt.kv_bytes_per_token * it.num_tokens / layers;
      s.link_free = std::max(s.link_free, ready) + wire_time(s, bytes);
      done[k] = s.link_free;
    }
  }
  std::map<instance_id, outgoing> by_target;
  for (std::size_t k = 0; k < items.size(); ++k) {
    const auto& it = ex.items[items[k]];
    auto& o = by_target[it.replica_to];
    o.target = it.replica_to;
    const std::uint64_t bytes = s.opt.kv_bytes_per_token * it.num_tokens;
    o.batch.phase = messages::phase::prefill;
    o.batch.rows.push_back({.request = it.request,
                            .token_begin = it.context,
                            .token_end = it.context + it.num_tokens,
                            .size_bytes = bytes,
                            .data = {}});
    o.bytes += bytes;
    o.arrival = std::max(o.arrival, done[k] + s.opt.link.latency);
  }
  for (auto& [target, o] : by_target) out.push_back(std::move(o));
}

// One row per decode item, sent after the iteration, one transfer per target.
void sync_decodes(worker_state& s, const messages::execute& ex, nanoseconds end,
                  std::vector<outgoing>& out) {
  std::map<instance_id, outgoing> rows;
  for (const auto& it : ex.items) {
    if (it.phase != messages::phase::decode || it.replica_to == no_instance) continue;
    auto& o = rows[it.replica_to];
    o.target = it.replica_to;
    if (o.batch.rows.empty()) o.batch.rows.reserve(ex.items.size());
    o.batch.rows.push_back({.request = it.request,
                            .token_begin = it.context,
                            .token_end = it.context + 1,
                            .size_bytes = s.opt.kv_bytes_per_token,
                            .data = {}});
    o.bytes += s.opt.kv_bytes_per_token;
  }
  for (auto& [target, o] : rows) {
    s.link_free = std::max(s.link_free, end) + wire_time(s, o.bytes);
    o.arrival = s.link_free + s.opt.link.latency;
    o.batch.phase = messages::phase::decode;
    out.push_back(std::move(o));
  }
}

void on_execute(worker_actor* self, const messages::execute& ex) {
  auto& s = self->state;
  auto& b = s.scratch;
  b.items.resize(ex.items.size());
  for (std::size_t i = 0; i < ex.items.size(); ++i) to_batch_item(ex.items[i], b.items[i]);
  messages::iteration_done done;
  done.epoch = ex.epoch;
  done.instance = ex.instance;
  done.iteration = ex.iteration;
  auto cost = s.opt.cost->iteration_time(b);
  if (!cost) {
    done.error = cost.err().what();
    self->send(s.manager, msg_atom::value, messages::encode(done));
    return;
  }
  const nanoseconds start = actors::now(self).time_since_epoch();
  const nanoseconds duration = *cost;
  done.duration_ns = static_cast<std::uint64_t>(duration.count());
  done.next_tokens.reserve(ex.items.size());
  for (const auto& it : ex.items) {
    done.next_tokens.push_back(
        it.wants_output
            ? device::sim::pseudo_token(it.request, it.context + it.num_tokens, s.opt.model.vocab)
            : no_token);
  }
  std::vector<outgoing> out;
  copy_prompts(s, ex, start, duration, out);
  sync_decodes(s, ex, start + duration, out);
  for (auto& o : out) {
    if (o.target >= s.replicas.size() || o.batch.rows.empty()) continue;
    o.batch.epoch = ex.epoch;
    o.batch.from_instance = s.opt.id;
    o.batch.layer_begin = 0;
    o.batch.layer_end = std::max<std::uint32_t>(1, s.opt.model.layers);
    done.kv_bytes_sent += o.bytes;
    self->delayed_send(s.replicas[o.target], o.arrival - start, msg_atom::value,
                       messages::encode(o.batch));
  }
  self->delayed_send(s.manager, duration, msg_atom::value, messages::encode(done));
}

caf::behavior sim_worker(worker_actor* self, sim_worker_options opt) {
  self->state.opt = std::move(opt);
  return {
      [self](actors::peers_atom, caf::actor manager, std::vector<caf::actor> replicas) {
        self->state.manager = std::move(manager);
        self->state.replicas = std::move(replicas);
      },
      [self](msg_atom, const messages::capnp_blob& b) {
        if (b.type != static_cast<std::uint16_t>(messages::msg_type::execute)) return;
        auto ex = messages::decode<messages::execute>(b);
        if (ex) on_execute(self, *ex);
      },
  };
}

}  // namespace

caf::actor spawn_sim_worker(caf::actor_system& sys, const sim_worker_options& options) {
  return sys.spawn(sim_worker, options);
}

}  // namespace accellm::worker

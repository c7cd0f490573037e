#include "worker/worker.hpp"

#include "actors/atoms.hpp"
#include "actors/clock.hpp"
#include "device/sim/sim_backend.hpp"
#include "messages/codec.hpp"
#include "worker/batch_item.hpp"

#include <caf/all.hpp>

#include <algorithm>
#include <map>
#include <optional>
#include <vector>

namespace accellm::worker {
namespace {

using actors::msg_atom;
using std::chrono::nanoseconds;

// A multi-step decode iteration being run.
struct window {
  messages::execute ex;              ///< its items (ex.iteration 0: none running)
  std::vector<std::uint32_t> first;  ///< per item: the step it joined at (0 = from the start)
  std::size_t joined = 0;            ///< items appended after the start
  nanoseconds start{0};              ///< clock time it began
  std::vector<nanoseconds> ends;     ///< clock time each step ends
  std::uint32_t steps = 0;           ///< steps it will deliver (a cut lowers it)
  std::uint64_t generation = 0;      ///< of its end timer (a cut or join re-arms it)
};

struct worker_state {
  sim_worker_options opt;
  window win;
  caf::actor manager;
  std::vector<caf::actor> replicas;
  nanoseconds link_free{0};  ///< when the outgoing link finishes its queue (clock time)
  device::batch scratch;
  std::vector<std::uint32_t> steps_left;  ///< price_steps' scratch
  static inline const char* name = "worker";
};

using worker_actor = caf::stateful_actor<worker_state>;

nanoseconds wire_time(const worker_state& s, std::uint64_t bytes) {
  const double per_device = static_cast<double>(bytes) / std::max<std::uint32_t>(1, s.opt.tp);
  return nanoseconds{static_cast<std::int64_t>(per_device / s.opt.link.bandwidth * 1e9)};
}

// Sends `done` to the manager, `after` from now when given (the end of the
// modelled iteration); traced as sent then.
void answer(worker_actor* self, messages::iteration_done done,
            std::optional<nanoseconds> after = std::nullopt) {
  auto& s = self->state;
  const instance_id inst = done.instance;  // daemons spawn the worker before the id is known
  auto b = messages::pack(std::move(done));
  if (s.opt.trace) {
    s.opt.trace.as("worker:" + std::to_string(inst))
        .message("im:" + std::to_string(inst), s.opt.trace.node, b,
                 actors::now(self) + after.value_or(nanoseconds{0}));
  }
  if (after) {
    self->delayed_send(s.manager, *after, msg_atom::value, std::move(b));
  } else {
    self->send(s.manager, msg_atom::value, std::move(b));
  }
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

// Decode steps item i of `ex` ran when the iteration ran `steps` steps: its
// own steps from the step it joined at (first; none for a one-step run).
std::uint32_t steps_run(const messages::execute_item& it, std::uint32_t first,
                        std::uint32_t steps) {
  return steps > first ? std::min(steps - first, it.steps) : 0;
}

// The rows of every decode item's steps run in the first `steps` steps, sent
// after them, one transfer per target. first: each item's first step (empty:
// all 0).
void sync_decodes(worker_state& s, const messages::execute& ex,
                  const std::vector<std::uint32_t>& first, std::uint32_t steps, nanoseconds end,
                  std::vector<outgoing>& out) {
  std::map<instance_id, outgoing> rows;
  for (std::size_t i = 0; i < ex.items.size(); ++i) {
    const auto& it = ex.items[i];
    if (it.phase != messages::phase::decode || it.replica_to == no_instance) continue;
    const std::uint32_t n = steps_run(it, first.empty() ? 0 : first[i], steps);
    if (n == 0) continue;
    auto& o = rows[it.replica_to];
    o.target = it.replica_to;
    if (o.batch.rows.empty()) o.batch.rows.reserve(ex.items.size());
    o.batch.rows.push_back({.request = it.request,
                            .token_begin = it.context,
                            .token_end = it.context + n,
                            .size_bytes = s.opt.kv_bytes_per_token * n,
                            .data = {}});
    o.bytes += s.opt.kv_bytes_per_token * n;
  }
  for (auto& [target, o] : rows) {
    s.link_free = std::max(s.link_free, end) + wire_time(s, o.bytes);
    o.arrival = s.link_free + s.opt.link.latency;
    o.batch.phase = messages::phase::decode;
    out.push_back(std::move(o));
  }
}

// Sends `out` to the partners' kv_replicas, each when it lands; adds the
// bytes to `done`.
void send_rows(worker_actor* self, const messages::execute& ex, nanoseconds now,
               std::vector<outgoing>& out, messages::iteration_done& done) {
  auto& s = self->state;
  for (auto& o : out) {
    if (o.target >= s.replicas.size() || o.batch.rows.empty()) continue;
    o.batch.epoch = ex.epoch;
    o.batch.from_instance = ex.instance;
    o.batch.layer_begin = 0;
    o.batch.layer_end = std::max<std::uint32_t>(1, s.opt.model.layers);
    done.kv_bytes_sent += o.bytes;
    auto b = messages::pack(o.batch);
    if (s.opt.trace) {
      // In simulate a host per instance: the partner's node is "i<id>". A
      // daemon's worker (spawned without an id) does not know it: "".
      const std::string to_node =
          s.opt.id == no_instance ? std::string{} : "i" + std::to_string(o.target);
      s.opt.trace.as("worker:" + std::to_string(ex.instance))
          .message("kv:" + std::to_string(o.target), to_node, b, actors::time_point{now},
                   o.arrival - now);
    }
    self->delayed_send(s.replicas[o.target], o.arrival - now, msg_atom::value, std::move(b));
  }
}

messages::iteration_done done_of(const messages::execute& ex) {
  messages::iteration_done done;
  done.epoch = ex.epoch;
  done.instance = ex.instance;
  done.iteration = ex.iteration;
  return done;
}

// Multi-step: prices steps from..w.steps-1, each for the items running then
// (an item runs its own steps from the step it joined at, one more token of
// context each step), and arms the end timer. False (after telling the
// manager) when the cost model refuses a batch.
bool price_steps(worker_actor* self, std::uint32_t from) {
  auto& s = self->state;
  window& w = s.win;
  auto& b = s.scratch;
  auto& left = s.steps_left;  // per batch item: steps still to run, this one included
  b.items.clear();
  left.clear();
  for (std::size_t i = 0; i < w.ex.items.size(); ++i) {  // every item has joined by `from`
    const auto& it = w.ex.items[i];
    if (from >= w.first[i] + it.steps) continue;
    to_batch_item(it, b.items.emplace_back());
    b.items.back().context += from - w.first[i];
    left.push_back(w.first[i] + it.steps - from);
  }
  w.ends.resize(from);
  nanoseconds t = from == 0 ? w.start : w.ends[from - 1];
  for (std::uint32_t k = from; k < w.steps; ++k) {
    if (k > from) {  // advance: drop the items that are done, grow the others by one token
      std::size_t kept = 0;
      for (std::size_t i = 0; i < b.items.size(); ++i) {
        if (left[i] <= 1) continue;
        left[kept] = left[i] - 1;
        if (kept != i) b.items[kept] = std::move(b.items[i]);
        ++b.items[kept].context;
        ++kept;
      }
      b.items.resize(kept);
      left.resize(kept);
    }
    if (b.items.empty()) {  // every item ended: the window ends here
      w.steps = k;
      break;
    }
    auto cost = s.opt.cost->iteration_time(b);
    if (!cost) {
      auto done = done_of(w.ex);
      done.error = cost.err().what();
      w.ex.iteration = 0;
      answer(self, std::move(done));
      return false;
    }
    t += *cost;
    w.ends.push_back(t);
  }
  const nanoseconds now = actors::now(self).time_since_epoch();
  self->delayed_send(self, w.ends[w.steps - 1] - now, actors::window_atom::value, w.ex.iteration,
                     ++w.generation);
  return true;
}

void start_window(worker_actor* self, messages::execute&& ex, std::uint32_t steps) {
  window& w = self->state.win;
  w.start = actors::now(self).time_since_epoch();
  w.first.assign(ex.items.size(), 0);
  w.joined = 0;
  w.steps = steps;
  w.ex = std::move(ex);
  price_steps(self, 0);
}

// The step running at `now` (the first whose end is at or after it); w.steps
// when the window has ended.
std::uint32_t step_at(const window& w, nanoseconds now) {
  const auto at = std::lower_bound(w.ends.begin(), w.ends.begin() + w.steps, now);
  return static_cast<std::uint32_t>(at - w.ends.begin());
}

// The manager wants the batch to change: end at the first step boundary at
// or after now.
void on_cut(worker_actor* self, std::uint64_t iteration) {
  auto& s = self->state;
  window& w = s.win;
  if (w.ex.iteration != iteration || iteration == 0) return;
  const nanoseconds now = actors::now(self).time_since_epoch();
  const std::uint32_t steps = step_at(w, now) + 1;
  if (steps >= w.steps) return;
  w.steps = steps;
  self->delayed_send(self, w.ends[steps - 1] - now, actors::window_atom::value, iteration,
                     ++w.generation);
}

// Decodes that became ready join at the next step boundary (their first step
// is the one after the step running now), as they would with one step per
// Execute. Refused when no step is left after this one: they then wait for
// the manager's next Execute (IterationDone.joined counts those taken).
void on_join(worker_actor* self, std::uint64_t iteration, messages::execute&& items) {
  auto& s = self->state;
  window& w = s.win;
  if (w.ex.iteration != iteration || iteration == 0) return;
  const std::uint32_t next = step_at(w, actors::now(self).time_since_epoch()) + 1;
  if (next >= w.steps) return;
  for (auto& it : items.items) {
    it.steps = std::min(it.steps, w.steps - next);
    w.ex.items.push_back(std::move(it));
    w.first.push_back(next);
    ++w.joined;
  }
  price_steps(self, next);
}

void end_window(worker_actor* self, std::uint64_t iteration, std::uint64_t generation) {
  auto& s = self->state;
  window& w = s.win;
  if (w.ex.iteration != iteration || iteration == 0 || w.generation != generation) return;
  const messages::execute& ex = w.ex;
  const std::uint32_t steps = w.steps;
  auto done = done_of(ex);
  const nanoseconds end = w.ends[steps - 1];
  done.duration_ns = static_cast<std::uint64_t>((end - w.start).count());
  done.steps = steps;
  done.joined = static_cast<std::uint32_t>(w.joined);
  done.step_ends_ns.reserve(steps);
  for (std::uint32_t k = 0; k < steps; ++k) {
    done.step_ends_ns.push_back(static_cast<std::uint64_t>((w.ends[k] - w.start).count()));
  }
  done.next_tokens.reserve(std::size_t{steps} * ex.items.size());
  for (std::uint32_t k = 0; k < steps; ++k) {
    for (std::size_t i = 0; i < ex.items.size(); ++i) {
      const auto& it = ex.items[i];
      const bool runs = k >= w.first[i] && k < w.first[i] + it.steps;
      done.next_tokens.push_back(runs ? device::sim::pseudo_token(it.request,
                                                                  it.context + 1 + (k - w.first[i]),
                                                                  s.opt.model.vocab)
                                      : no_token);
    }
  }
  std::vector<outgoing> out;
  sync_decodes(s, ex, w.first, steps, end, out);
  send_rows(self, ex, end, out, done);
  w.ex.iteration = 0;
  answer(self, std::move(done));
}

void on_execute(worker_actor* self, messages::execute&& ex) {
  auto& s = self->state;
  std::uint32_t steps = 1;
  for (const auto& it : ex.items) steps = std::max(steps, it.steps);
  if (steps > 1) {
    start_window(self, std::move(ex), steps);
    return;
  }
  auto& b = s.scratch;
  b.items.resize(ex.items.size());
  for (std::size_t i = 0; i < ex.items.size(); ++i) to_batch_item(ex.items[i], b.items[i]);
  auto done = done_of(ex);
  auto cost = s.opt.cost->iteration_time(b);
  if (!cost) {
    done.error = cost.err().what();
    answer(self, std::move(done));
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
  sync_decodes(s, ex, {}, 1, start + duration, out);
  send_rows(self, ex, start, out, done);
  answer(self, std::move(done), duration);
}

caf::behavior sim_worker(worker_actor* self, sim_worker_options opt) {
  self->state.opt = std::move(opt);
  return {
      [self](actors::peers_atom, caf::actor manager, std::vector<caf::actor> replicas) {
        self->state.manager = std::move(manager);
        self->state.replicas = std::move(replicas);
      },
      // A daemon's partners change as instances join: the KV receivers by id.
      [self](actors::peers_atom, std::vector<caf::actor> replicas) {
        self->state.replicas = std::move(replicas);
      },
      [self](msg_atom, const messages::capnp_blob& b) {
        if (b.type != static_cast<std::uint16_t>(messages::msg_type::execute)) return;
        auto ex = messages::decode<messages::execute>(b);
        if (ex) on_execute(self, std::move(*ex));
      },
      [self](actors::cut_atom, std::uint64_t iteration) { on_cut(self, iteration); },
      [self](actors::join_atom, std::uint64_t iteration, const messages::capnp_blob& b) {
        auto items = messages::decode<messages::execute>(b);
        if (items) on_join(self, iteration, std::move(*items));
      },
      [self](actors::window_atom, std::uint64_t iteration, std::uint64_t generation) {
        end_window(self, iteration, generation);
      },
  };
}

}  // namespace

caf::actor spawn_sim_worker(caf::actor_system& sys, const sim_worker_options& options) {
  return sys.spawn(sim_worker, options);
}

}  // namespace accellm::worker

#include "coordinator/coordinator.hpp"

#include "actors/atoms.hpp"
#include "actors/clock.hpp"
#include "messages/codec.hpp"

#include <caf/all.hpp>

#include <unordered_map>
#include <variant>
#include <vector>

namespace accellm::coordinator {
namespace {

using actors::msg_atom;
using messages::capnp_blob;

struct entry {
  request_timeline timeline;
  request_view* view = nullptr;  ///< its node in view.requests (stable until both are erased)
  caf::actor client;
  instance_id move_from = no_instance;  ///< source of a move in progress
  bool keep_copy = false;               ///< that move keeps the source's copy
};

struct coord_state {
  coordinator_options opt;
  std::shared_ptr<policy> pol;
  observer* obs = nullptr;
  cluster_view view;
  std::unordered_map<request_id, entry> table;  ///< looked up for every token reported
  std::vector<caf::actor> managers;
  epoch_t epoch = 1;
  static inline const char* name = "coordinator";
};

using coord_actor = caf::stateful_actor<coord_state>;

std::uint64_t now_ns(coord_actor* self) {
  return static_cast<std::uint64_t>(actors::now(self).time_since_epoch().count());
}

template <class T>
void send_to(coord_actor* self, instance_id i, const T& m) {
  auto& s = self->state;
  if (i < s.managers.size()) self->send(s.managers[i], msg_atom::value, messages::pack(m));
}

void send_role(coord_actor* self, const instance_view& inst) {
  auto& s = self->state;
  send_to(self, inst.id,
          messages::set_role{
              .epoch = s.epoch, .instance = inst.id, .role = inst.role, .partner = inst.partner});
  if (s.obs) s.obs->on_role(inst.id, inst.role, inst.pool, now_ns(self));
}

// --- decisions ----------------------------------------------------------------

void apply(coord_actor* self, const assign_prefill_d& d) {
  auto& s = self->state;
  request_view& r = s.view.requests.at(d.request);
  r.prefill_instance = d.instance;
  s.view.set_decode_instance(r, d.then_decode ? d.instance : no_instance);
  r.replica_instance = d.copy_to;
  instance_view& inst = s.view.at(d.instance);
  inst.pending_prefill_tokens += r.prompt_len;
  ++inst.pending_prefills;
  inst.last_assigned = ++s.view.assignments;
  entry& e = s.table.at(d.request);
  e.timeline.prefill_instance = d.instance;
  send_to(self, d.instance,
          messages::assign_prefill{.epoch = s.epoch,
                                   .request = r.id,
                                   .instance = d.instance,
                                   .partner = d.copy_to,
                                   .prompt = {},
                                   .prompt_len = r.prompt_len,
                                   .already_generated = {},
                                   .already_generated_len = 0,
                                   .max_tokens = r.max_tokens,
                                   .chunk_tokens = 0,
                                   .arrival_ns = e.timeline.arrival_ns,
                                   .stop_tokens = {},
                                   .then_decode = d.then_decode});
}

// The copy made during prefill went to another instance than the one the
// policy now names (or to none): that copy is not wanted any more.
void release_copy(coord_actor* self, request_view& r, instance_id keep) {
  auto& s = self->state;
  if (r.replica_instance == no_instance || r.replica_instance == keep) return;
  send_to(self, r.replica_instance,
          messages::evict_replica{.epoch = s.epoch,
                                  .instance = r.replica_instance,
                                  .requests = {r.id},
                                  .reason = messages::evict_reason::handed_off});
  r.replica_instance = no_instance;
}

void apply(coord_actor* self, const decode_here_d& d) {
  auto& s = self->state;
  request_view& r = s.view.requests.at(d.request);
  release_copy(self, r, d.replica);
  r.replica_instance = d.replica;
  r.phase = request_phase::decoding;
  s.view.set_decode_instance(r, r.prefill_instance);
  instance_view& inst = s.view.at(r.decode_instance);
  --inst.parked;
  ++inst.decode_requests;
  inst.decode_tokens += r.context_len();
  send_to(self, r.decode_instance,
          messages::start_decode{.epoch = s.epoch,
                                 .request = r.id,
                                 .instance = r.decode_instance,
                                 .context_len = r.context_len(),
                                 .last_token = r.last_token,
                                 .from_replica = false,
                                 .generated = r.generated,
                                 .partner = d.replica,
                                 .max_tokens = r.max_tokens,
                                 .stop_tokens = {}});
}

void apply(coord_actor* self, const move_decode_d& d) {
  auto& s = self->state;
  request_view& r = s.view.requests.at(d.request);
  const bool parked = r.phase == request_phase::parked;
  const instance_id from = parked ? r.prefill_instance : r.decode_instance;
  if (r.phase == request_phase::moving || from == d.to) return;
  instance_view& src = s.view.at(from);
  if (parked) {
    --src.parked;
  } else {
    --src.decode_requests;
    src.decode_tokens -= std::min<std::uint64_t>(src.decode_tokens, r.context_len());
  }
  instance_view& dst = s.view.at(d.to);
  ++dst.decode_requests;
  dst.decode_tokens += r.context_len();
  r.phase = request_phase::moving;
  s.view.set_decode_instance(r, d.to);
  ++r.moves;
  entry& e = s.table.at(d.request);
  e.move_from = from;
  e.keep_copy = d.keep_copy;
  send_to(self, from,
          messages::move_decode{.epoch = s.epoch,
                                .request = r.id,
                                .from_instance = from,
                                .to_instance = d.to,
                                .context_len = r.context_len(),
                                .last_token = r.last_token,
                                .generated = r.generated,
                                .reason = d.reason,
                                .tail_tokens = {},
                                .new_partner = d.keep_copy ? from : no_instance,
                                .max_tokens = r.max_tokens,
                                .stop_tokens = {}});
}

void apply(coord_actor* self, const set_role_d& d) {
  instance_view& inst = self->state.view.at(d.instance);
  if (inst.role == d.role) return;
  inst.role = d.role;
  if (d.pool != nullptr) inst.pool = d.pool;
  send_role(self, inst);
}

void apply_all(coord_actor* self, const decisions& ds) {
  for (const decision& d : ds) std::visit([self](const auto& x) { apply(self, x); }, d);
}

// --- events -------------------------------------------------------------------

void on_submit(coord_actor* self, const messages::submit_request& m) {
  auto& s = self->state;
  const request_id id = m.request;
  if (id == 0 || s.table.count(id) != 0) return;  // ids come from the client; duplicates dropped
  request_view r{.id = id, .prompt_len = m.prompt_len, .max_tokens = m.max_tokens};
  entry e;
  e.view = &s.view.requests.emplace(id, r).first->second;
  e.timeline.id = id;
  e.timeline.prompt_len = m.prompt_len;
  e.timeline.max_tokens = m.max_tokens;
  e.timeline.arrival_ns = m.arrival_ns != 0 ? m.arrival_ns : now_ns(self);
  if (s.opt.token_times) e.timeline.token_ns.reserve(m.max_tokens);
  e.client = caf::actor_cast<caf::actor>(self->current_sender());
  s.table.emplace(id, std::move(e));
  apply_all(self, s.pol->on_arrival(s.view, *s.table.at(id).view));
}

void on_first_token(coord_actor* self, request_view& r, instance_id at) {
  auto& s = self->state;
  instance_view& inst = s.view.at(at);
  inst.pending_prefill_tokens -= std::min<std::uint64_t>(inst.pending_prefill_tokens, r.prompt_len);
  if (inst.pending_prefills > 0) --inst.pending_prefills;
  if (r.decode_instance == at) {  // then_decode: it went on decoding there
    r.phase = request_phase::decoding;
    ++inst.decode_requests;
    inst.decode_tokens += r.context_len();
    return;
  }
  r.phase = request_phase::parked;
  ++inst.parked;
  apply_all(self, s.pol->on_prefill_done(s.view, r));
}

void on_tokens(coord_actor* self, const messages::iteration_report& m) {
  auto& s = self->state;
  const std::uint64_t end = m.start_ns + m.duration_ns;
  std::uint64_t& decode_tokens = s.view.at(m.instance).decode_tokens;
  std::size_t next = 0;  // m.tokens index of the run's first token
  for (const messages::token_run& run : m.runs) {
    const std::size_t first = next;
    next += run.count;
    auto it = s.table.find(run.request);
    if (it == s.table.end() || next > m.tokens.size()) continue;
    request_view& r = *it->second.view;
    request_timeline& tl = it->second.timeline;
    for (std::uint32_t k = 0; k < run.count; ++k) {
      const std::uint32_t index = run.first_index + k;
      if (index != tl.tokens) continue;  // not the next token: a duplicate
      const std::uint64_t at =
          m.step_ends_ns.empty() ? end : m.start_ns + m.step_ends_ns[run.first_step + k];
      if (tl.tokens++ == 0) tl.first_token_ns = at;
      tl.last_token_ns = at;
      if (s.opt.token_times) tl.token_ns.push_back(at);
      r.generated = index + 1;
      r.last_token = m.tokens[first + k];
      if (index == 0) {
        on_first_token(self, r, m.instance);
      } else if (r.decode_instance == m.instance) {
        ++decode_tokens;
      }
    }
  }
}

void on_report(coord_actor* self, const messages::iteration_report& m) {
  auto& s = self->state;
  if (m.instance >= s.view.instances.size()) return;
  instance_view& inst = s.view.at(m.instance);
  inst.total_blocks = m.load.kv_blocks_total;
  inst.primary_blocks = m.load.primary_blocks;
  inst.replica_blocks = m.load.replica_blocks;
  inst.free_blocks = m.load.free_blocks;
  if (s.obs) s.obs->on_iteration(m);
  for (const request_id id : m.preempted) {
    if (auto it = s.table.find(id); it != s.table.end()) ++it->second.timeline.preemptions;
  }
  for (const request_id id : m.evicted_replicas) {
    auto it = s.view.requests.find(id);
    if (it == s.view.requests.end() || it->second.replica_instance != m.instance) continue;
    it->second.replica_instance = no_instance;
    const instance_id owner = it->second.decode_instance != no_instance
                                  ? it->second.decode_instance
                                  : it->second.prefill_instance;
    send_to(self, owner,
            messages::evict_replica{.epoch = s.epoch,
                                    .instance = m.instance,
                                    .requests = {id},
                                    .reason = messages::evict_reason::memory_pressure});
  }
  on_tokens(self, m);
  apply_all(self, s.pol->on_report(s.view, m.instance));
}

// The source stopped decoding the request; the target takes over from its copy.
void on_moved(coord_actor* self, const messages::move_decode& m) {
  auto& s = self->state;
  auto it = s.view.requests.find(m.request);
  if (it == s.view.requests.end() || it->second.phase != request_phase::moving) return;
  request_view& r = it->second;
  const entry& e = s.table.at(m.request);
  r.phase = request_phase::decoding;
  r.replica_instance = e.keep_copy ? e.move_from : no_instance;
  r.generated = m.generated;
  r.last_token = m.last_token;
  send_to(self, r.decode_instance,
          messages::start_decode{.epoch = s.epoch,
                                 .request = r.id,
                                 .instance = r.decode_instance,
                                 .context_len = m.context_len,
                                 .last_token = m.last_token,
                                 .from_replica = true,
                                 .generated = m.generated,
                                 .partner = r.replica_instance,
                                 .max_tokens = r.max_tokens,
                                 .stop_tokens = {}});
}

void on_done(coord_actor* self, const messages::request_done& m) {
  auto& s = self->state;
  auto it = s.view.requests.find(m.request);
  if (it == s.view.requests.end()) return;
  request_view& r = it->second;
  entry& e = s.table.at(m.request);
  if (r.decode_instance != no_instance) {
    instance_view& inst = s.view.at(r.decode_instance);
    if (inst.decode_requests > 0) --inst.decode_requests;
    inst.decode_tokens -= std::min<std::uint64_t>(inst.decode_tokens, r.context_len());
  }
  if (r.replica_instance != no_instance) {
    send_to(self, r.replica_instance,
            messages::evict_replica{.epoch = s.epoch,
                                    .instance = r.replica_instance,
                                    .requests = {r.id},
                                    .reason = messages::evict_reason::completed});
  }
  e.timeline.decode_instance = m.instance;
  e.timeline.moves = r.moves;
  e.timeline.completed = m.status == messages::request_status::ok;
  if (s.obs) s.obs->on_finished(e.timeline);
  if (e.client) self->send(e.client, msg_atom::value, messages::pack(m));
  s.view.erase_request(it);
  s.table.erase(m.request);
}

void dispatch(coord_actor* self, const capnp_blob& b) {
  using messages::msg_type;
  const auto t = messages::to_msg_type(b.type);
  if (!t) return;
  auto handle = [&](auto tag, auto fn) {
    using T = typename decltype(tag)::type;
    (void)messages::with_decoded<T>(b, [&](const T& m) { fn(self, m); });
  };
  switch (*t) {
    case msg_type::submit_request:
      return handle(std::type_identity<messages::submit_request>{}, on_submit);
    case msg_type::iteration_report:
      return handle(std::type_identity<messages::iteration_report>{}, on_report);
    case msg_type::move_decode:
      return handle(std::type_identity<messages::move_decode>{}, on_moved);
    case msg_type::request_done:
      return handle(std::type_identity<messages::request_done>{}, on_done);
    default:
      return;
  }
}

void start(coord_actor* self, std::vector<caf::actor> managers) {
  auto& s = self->state;
  s.managers = std::move(managers);
  s.view.block_tokens = s.opt.block_tokens;
  s.view.instances.resize(s.opt.instances);
  for (instance_id i = 0; i < s.opt.instances; ++i) {
    instance_view& inst = s.view.at(i);
    inst.id = i;
    inst.total_blocks = inst.free_blocks = s.opt.blocks_per_instance;
  }
  s.pol->init(s.view);
  for (const instance_view& inst : s.view.instances) send_role(self, inst);
}

caf::behavior coordinator(coord_actor* self, coordinator_options opt, std::shared_ptr<policy> pol,
                          observer* obs) {
  self->state.opt = opt;
  self->state.pol = std::move(pol);
  self->state.obs = obs;
  return {
      [self](actors::peers_atom, std::vector<caf::actor> managers) {
        start(self, std::move(managers));
      },
      [self](msg_atom, const capnp_blob& b) { dispatch(self, b); },
  };
}

}  // namespace

caf::actor spawn_coordinator(caf::actor_system& sys, const coordinator_options& options,
                             std::shared_ptr<policy> pol, observer* obs) {
  return sys.spawn(coordinator, options, std::move(pol), obs);
}

}  // namespace accellm::coordinator

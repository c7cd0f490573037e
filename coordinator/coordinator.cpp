#include "coordinator/coordinator.hpp"

#include "actors/atoms.hpp"
#include "actors/caf_error.hpp"
#include "actors/clock.hpp"
#include "messages/codec.hpp"

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
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
  bool stream = false;                  ///< token_ids: send TokenBatch as tokens come
  std::vector<token_id> prompt;         ///< token_ids: the prompt's ids
  std::vector<token_id> output;         ///< token_ids: the output so far
  std::vector<token_id> stop;           ///< its stop tokens (each instance ends it on one)
  instance_id move_from = no_instance;  ///< source of a move in progress
  bool keep_copy = false;               ///< that move keeps the source's copy
  std::uint64_t takeover_ns = 0;        ///< its latest takeover, until its next token
};

struct coord_state {
  coordinator_options opt;
  std::shared_ptr<policy> pol;
  observer* obs = nullptr;
  cluster_view view;
  std::unordered_map<request_id, entry> table;  ///< looked up for every token reported
  std::vector<caf::actor> managers;
  // Daemons, by instance id: the worker process's node actor, its KV
  // endpoint "host:port" ("" when it has none or is gone) and its name.
  std::vector<caf::actor> nodes;
  std::vector<caf::actor> replicas;  ///< each instance's kv_replica (null when gone)
  std::vector<std::string> endpoints;
  std::vector<std::string> names;
  request_id next_id = request_id{1} << 48;  ///< ids given to requests submitted with 0
  epoch_t epoch = 1;                         ///< bumped by every loss
  std::vector<instance_id> fenced;           ///< lost instances that spoke since (logged once)
  static inline const char* name = "coordinator";
};

using coord_actor = caf::stateful_actor<coord_state>;

std::uint64_t now_ns(coord_actor* self) {
  return static_cast<std::uint64_t>(actors::now(self).time_since_epoch().count());
}

// The node instance `id` runs on: the name it registered with (daemons), or
// "i<id>" (a simulated host).
std::string name_of(const coord_state& s, instance_id id) {
  return id < s.names.size() ? s.names[id] : "i" + std::to_string(id);
}

// Sends `b` to `dest`; traced as going to `to` on `node` (built only when
// tracing: `to` is called then).
template <class To>
void post(coord_actor* self, const caf::actor& dest, messages::capnp_blob b, To&& to) {
  if (const auto& tp = self->state.opt.trace) {
    const auto [actor, node] = to();
    tp.message(actor, node, b, actors::now(self));
  }
  self->send(dest, msg_atom::value, std::move(b));
}

const auto to_client = [] { return std::pair<std::string, std::string>{"client", "client"}; };

// The sender of the message being handled, which is a client (or, for a
// fenced instance's message, that instance).
void answer(coord_actor* self, messages::capnp_blob b) {
  post(self, caf::actor_cast<caf::actor>(self->current_sender()), std::move(b), to_client);
}

template <class T>
void send_to(coord_actor* self, instance_id i, const T& m) {
  auto& s = self->state;
  if (i >= s.managers.size()) return;
  post(self, s.managers[i], messages::pack(m), [&] {
    return std::pair{"im:" + std::to_string(i), name_of(s, i)};
  });
}

void send_role(coord_actor* self, const instance_view& inst) {
  auto& s = self->state;
  send_to(self, inst.id,
          messages::set_role{.epoch = s.epoch,
                             .instance = inst.id,
                             .role = inst.role,
                             .partner = inst.partner,
                             .fenced = false});
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
                                   .prompt = e.prompt,
                                   .prompt_len = r.prompt_len,
                                   .already_generated = {},
                                   .already_generated_len = 0,
                                   .max_tokens = r.max_tokens,
                                   .chunk_tokens = 0,
                                   .arrival_ns = e.timeline.arrival_ns,
                                   .stop_tokens = e.stop,
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
  const entry& e = s.table.at(d.request);
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
                                 .stop_tokens = e.stop,
                                 .context_tokens = {},
                                 .takeover = false});
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
                                .stop_tokens = e.stop});
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

// Why a submitted request cannot be served, or "" when it can.
std::string refusal(const coord_state& s, const messages::submit_request& m) {
  if (s.table.count(m.request) != 0) {
    return "request id " + std::to_string(m.request) + " is already in use";
  }
  const bool alive = std::any_of(s.view.instances.begin(), s.view.instances.end(),
                                 [](const instance_view& i) { return i.alive; });
  if (!alive) return "no instance has joined the cluster";
  if (!s.opt.token_ids) return {};
  if (m.prompt.empty()) return "prompt: the cluster's devices need the prompt's token ids";
  for (const token_id t : m.prompt) {
    if (s.opt.vocab != 0 && static_cast<std::uint32_t>(t) >= s.opt.vocab) {
      return "prompt: token id " + std::to_string(t) + " is outside the model's vocabulary (" +
             std::to_string(s.opt.vocab) + " ids)";
    }
  }
  if (s.opt.max_context != 0 && std::uint64_t{m.prompt_len} + m.max_tokens > s.opt.max_context) {
    return "prompt and max_tokens: " + std::to_string(m.prompt_len) + " + " +
           std::to_string(m.max_tokens) + " tokens exceed the model's context of " +
           std::to_string(s.opt.max_context);
  }
  return {};
}

// Answers the sender of a request that was not accepted.
void refuse(coord_actor* self, request_id id, std::string why) {
  answer(self, messages::pack(messages::request_done{.epoch = self->state.epoch,
                                                     .request = id,
                                                     .status = messages::request_status::failed,
                                                     .finish = messages::finish_reason::none,
                                                     .output_tokens = 0,
                                                     .error = std::move(why),
                                                     .instance = no_instance}));
}

void on_submit(coord_actor* self, const messages::submit_request& m) {
  auto& s = self->state;
  request_id id = m.request;
  if (id == 0) {  // the coordinator names it
    while (s.table.count(s.next_id) != 0) ++s.next_id;
    id = s.next_id++;
  }
  messages::submit_request named = m;
  named.request = id;
  if (s.opt.trace) {  // clients are not traced: the request is, as it arrives
    s.opt.trace.received("client", "client", messages::pack(named), actors::now(self));
  }
  if (auto why = refusal(s, named); !why.empty()) return refuse(self, id, std::move(why));
  if (s.obs) s.obs->on_accepted(id);
  request_view r{.id = id, .prompt_len = m.prompt_len, .max_tokens = m.max_tokens};
  entry e;
  e.stream = m.stream;
  e.stop = m.stop_tokens;
  if (s.opt.token_ids) e.prompt = m.prompt;
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

// Sends the client output tokens [from, end) of a request (token_ids only).
void stream_tokens(coord_actor* self, const entry& e, std::uint32_t from, instance_id at) {
  if (!e.client || from >= e.output.size()) return;
  const auto first = e.output.begin() + from;
  post(self, e.client,
       messages::pack(messages::token_batch{.epoch = self->state.epoch,
                                            .request = e.timeline.id,
                                            .first_index = from,
                                            .tokens = {first, e.output.end()},
                                            .instance = at,
                                            .time_ns = e.timeline.last_token_ns}),
       to_client);
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
    const std::uint32_t before = tl.tokens;
    for (std::uint32_t k = 0; k < run.count; ++k) {
      const std::uint32_t index = run.first_index + k;
      if (index != tl.tokens) continue;  // not the next token: a duplicate
      const std::uint64_t at =
          m.step_ends_ns.empty() ? end : m.start_ns + m.step_ends_ns[run.first_step + k];
      if (tl.tokens++ == 0) {
        tl.first_token_ns = at;
        tl.first_execute_ns = m.start_ns;
      }
      if (it->second.takeover_ns != 0) {
        if (s.obs) s.obs->on_resumed(run.request, at - std::min(at, it->second.takeover_ns));
        it->second.takeover_ns = 0;
      }
      tl.last_token_ns = at;
      if (s.opt.token_times) tl.token_ns.push_back(at);
      r.generated = index + 1;
      r.last_token = m.tokens[first + k];
      if (s.opt.token_ids) it->second.output.push_back(r.last_token);
      if (index == 0) {
        on_first_token(self, r, m.instance);
      } else if (r.decode_instance == m.instance) {
        ++decode_tokens;
      }
    }
    if (it->second.stream && tl.tokens > before)
      stream_tokens(self, it->second, before, m.instance);
  }
}

void on_report(coord_actor* self, const messages::iteration_report& m) {
  auto& s = self->state;
  if (m.instance >= s.view.instances.size()) return;
  // The report left the instance when its iteration ended, by its clock.
  if (s.opt.trace) {
    s.opt.trace.clock_sample(name_of(s, m.instance), actors::now(self), m.start_ns + m.duration_ns);
  }
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

// Token ids [0, len) of a request, prompt then output (token_ids; empty on
// sim or when the coordinator has fewer).
std::vector<token_id> context_of(const coord_state& s, const entry& e, std::uint32_t len) {
  if (!s.opt.token_ids || e.prompt.size() + e.output.size() < len) return {};
  std::vector<token_id> context = e.prompt;
  context.insert(context.end(), e.output.begin(), e.output.end());
  context.resize(len);
  return context;
}

void take_over(coord_actor* self, request_view& r, instance_id lost);

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
  if (!s.view.at(r.decode_instance).alive) {  // the target was lost meanwhile
    return take_over(self, r, r.decode_instance);
  }
  std::vector<token_id> context = context_of(s, e, m.context_len);
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
                                 .stop_tokens = e.stop,
                                 .context_tokens = std::move(context),
                                 .takeover = false});
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
  if (e.client && !e.stream && s.opt.token_ids) stream_tokens(self, e, 0, m.instance);
  if (e.client) post(self, e.client, messages::pack(m), to_client);
  s.view.erase_request(it);
  s.table.erase(m.request);
}

// A client gave up: the instances that may hold the request stop it (the
// one that has it answers RequestDone cancelled, which ends it here).
void on_cancel(coord_actor* self, const messages::cancel& m) {
  auto& s = self->state;
  const auto it = s.view.requests.find(m.request);
  if (it == s.view.requests.end()) return;
  const messages::cancel order{.epoch = s.epoch, .request = m.request, .reason = m.reason};
  const request_view& r = it->second;
  if (r.prefill_instance != no_instance) send_to(self, r.prefill_instance, order);
  if (r.decode_instance != no_instance && r.decode_instance != r.prefill_instance) {
    send_to(self, r.decode_instance, order);
  }
}

// A message from an instance declared lost: its requests went on elsewhere,
// so whatever it says is stale. Dropped, counted, and its sender is told to
// stop (SetRole fenced): it drops its state and registers again. Instance ids
// are never reused, so the id alone identifies a lost instance's messages.
bool fence(coord_actor* self, instance_id from, messages::msg_type type);

void dispatch(coord_actor* self, const capnp_blob& b) {
  using messages::msg_type;
  const auto t = messages::to_msg_type(b.type);
  if (!t) return;
  auto handle = [&](auto tag, auto fn) {
    using T = typename decltype(tag)::type;
    (void)messages::with_decoded<T>(b, [&](const T& m) { fn(self, m); });
  };
  // An instance's message, unless it comes from a lost instance.
  auto from_instance = [&](auto tag, auto fn, auto sender) {
    using T = typename decltype(tag)::type;
    handle(tag, [&](coord_actor* me, const T& m) {
      if (!fence(me, sender(m), *t)) fn(me, m);
    });
  };
  switch (*t) {
    case msg_type::submit_request:
      return handle(std::type_identity<messages::submit_request>{}, on_submit);
    case msg_type::iteration_report:
      return from_instance(std::type_identity<messages::iteration_report>{}, on_report,
                           [](const messages::iteration_report& m) { return m.instance; });
    case msg_type::move_decode:
      return from_instance(std::type_identity<messages::move_decode>{}, on_moved,
                           [](const messages::move_decode& m) { return m.from_instance; });
    case msg_type::request_done:
      return from_instance(std::type_identity<messages::request_done>{}, on_done,
                           [](const messages::request_done& m) { return m.instance; });
    case msg_type::cancel:
      return handle(std::type_identity<messages::cancel>{}, on_cancel);
    default:
      return;
  }
}

// --- membership (daemons) -------------------------------------------------------

template <class... Ts>
void log_info(const coord_state& s, fmt::format_string<Ts...> f, Ts&&... args) {
  if (s.opt.log) s.opt.log->info(f, std::forward<Ts>(args)...);
}

template <class... Ts>
void log_warn(const coord_state& s, fmt::format_string<Ts...> f, Ts&&... args) {
  if (s.opt.log) s.opt.log->warn(f, std::forward<Ts>(args)...);
}

// An instance's name: the worker's (daemons) or "i<id>" (simulations).
bool fence(coord_actor* self, instance_id from, messages::msg_type type) {
  auto& s = self->state;
  if (from >= s.view.instances.size() || s.view.at(from).alive) return false;
  if (s.obs) s.obs->on_fenced(from, type);
  if (std::find(s.fenced.begin(), s.fenced.end(), from) == s.fenced.end()) {
    s.fenced.push_back(from);
    log_warn(s,
             "instance {} '{}' was declared lost but still speaks ({}): its messages are "
             "dropped and it is told to register again",
             from, name_of(s, from), messages::to_string(type));
  }
  post(self, caf::actor_cast<caf::actor>(self->current_sender()),
       messages::pack(messages::set_role{.epoch = s.epoch,
                                         .instance = from,
                                         .role = s.view.at(from).role,
                                         .partner = no_instance,
                                         .fenced = true}),
       [&] {
         return std::pair{"im:" + std::to_string(from), name_of(s, from)};
       });
  return true;
}

// Compares without an early exit: the time taken does not tell how much of
// a guessed token was right.
bool same_secret(std::string_view want, std::string_view got) {
  if (want.empty()) return false;
  std::size_t diff = want.size() ^ got.size();
  for (std::size_t i = 0; i < got.size(); ++i) {
    diff |= static_cast<unsigned char>(want[i % want.size()]) ^ static_cast<unsigned char>(got[i]);
  }
  return diff == 0;
}

// Why a worker may not join (errc::in_use: its name belongs to a live
// instance, which may not have been noticed lost yet; else invalid_argument).
status admission(const coord_state& s, const messages::register_worker& m) {
  auto refuse = [](std::string why) { return fail(errc::invalid_argument, std::move(why)); };
  if (!same_secret(s.opt.cluster_token, m.cluster_token)) {
    return refuse("wrong cluster token");
  }
  if (m.protocol_version != messages::protocol_version) {
    return refuse("protocol version " + std::to_string(m.protocol_version) +
                  ", the coordinator speaks " + std::to_string(messages::protocol_version));
  }
  if (!s.opt.model.empty() && m.model != s.opt.model) {
    return refuse("model '" + m.model + "', the cluster serves '" + s.opt.model + "'");
  }
  if (m.block_tokens != s.opt.block_tokens) {
    return refuse("block_tokens " + std::to_string(m.block_tokens) + ", the cluster uses " +
                  std::to_string(s.opt.block_tokens));
  }
  for (std::size_t i = 0; i < s.names.size(); ++i) {
    if (s.names[i] == m.instance_name && s.view.instances[i].alive) {
      return fail(errc::in_use, "an instance named '" + m.instance_name + "' is already live");
    }
  }
  return {};
}

// Every node learns where each instance's KV receiver listens.
void broadcast_endpoints(coord_actor* self) {
  auto& s = self->state;
  for (std::size_t i = 0; i < s.nodes.size(); ++i) {
    if (s.view.instances[i].alive && s.nodes[i]) {
      self->send(s.nodes[i], actors::peers_atom::value, s.endpoints, s.replicas);
    }
  }
}

// SetRole to every instance whose role or partner differs from `before`.
void send_changes(coord_actor* self, const std::vector<instance_view>& before) {
  auto& s = self->state;
  for (const instance_view& inst : s.view.instances) {
    const bool fresh = inst.id >= before.size();
    if (fresh || before[inst.id].role != inst.role || before[inst.id].partner != inst.partner) {
      send_role(self, inst);
    }
  }
}

caf::result<msg_atom, capnp_blob> on_register(coord_actor* self, const capnp_blob& b,
                                              caf::actor manager, caf::actor node,
                                              caf::actor replica) {
  auto& s = self->state;
  auto m = messages::decode<messages::register_worker>(b);
  if (!m) {
    log_warn(s, "refused a worker: malformed RegisterWorker: {}", m.err().what());
    return accellm::to_caf(m.err());
  }
  if (auto ok = admission(s, *m); !ok) {
    log_warn(s, "refused worker '{}' (host {}, pid {}): {}", m->instance_name, m->host, m->pid,
             ok.err().message());
    return accellm::make_error(ok.err().code(), "refused: " + ok.err().message());
  }
  const auto id = static_cast<instance_id>(s.view.instances.size());
  const std::vector<instance_view> before = s.view.instances;
  instance_view& inst = s.view.instances.emplace_back();
  inst.id = id;
  inst.total_blocks = inst.free_blocks = m->kv_blocks;
  s.managers.push_back(manager);
  s.nodes.push_back(std::move(node));
  s.replicas.push_back(std::move(replica));
  s.names.push_back(m->instance_name);
  s.endpoints.push_back(m->kv_port != 0 ? m->host + ":" + std::to_string(m->kv_port) : "");
  s.pol->join(s.view, id);
  self->monitor(manager);
  send_changes(self, before);
  broadcast_endpoints(self);
  if (s.obs) s.obs->on_joined(id, m->instance_name, m->kv_bytes_per_block);
  const instance_view& joined = s.view.at(id);
  log_info(s, "instance {} '{}' joined: {} {} on {} (pid {}), {} KV blocks, {}, partner {}", id,
           m->instance_name, m->model, m->device, m->host, m->pid, m->kv_blocks,
           messages::to_string(joined.role),
           joined.partner == no_instance ? std::string{"none"} : std::to_string(joined.partner));
  return {msg_atom::value, messages::encode(messages::set_role{.epoch = s.epoch,
                                                               .instance = id,
                                                               .role = joined.role,
                                                               .partner = joined.partner,
                                                               .fenced = false})};
}

// Ends a request the coordinator can no longer serve (its instance is gone)
// as a failed one, as if its instance had said so.
void abandon(coord_actor* self, request_id id, const std::string& why) {
  const auto it = self->state.table.find(id);
  if (it == self->state.table.end()) return;
  on_done(self, messages::request_done{.epoch = self->state.epoch,
                                       .request = id,
                                       .status = messages::request_status::failed,
                                       .finish = messages::finish_reason::none,
                                       .output_tokens = it->second.timeline.tokens,
                                       .error = why,
                                       .instance = no_instance});
}

// --- takeover (DESIGN.md "Takeover") ---------------------------------------------

void note_takeover(coord_actor* self, request_view& r, instance_id lost, bool from_replica) {
  auto& s = self->state;
  entry& e = s.table.at(r.id);
  e.takeover_ns = now_ns(self);
  ++e.timeline.takeovers;
  const instance_id to = r.generated == 0 ? r.prefill_instance : r.decode_instance;
  if (s.obs) {
    s.obs->on_takeover({.request = r.id,
                        .lost = lost,
                        .to = to,
                        .from_replica = from_replica,
                        .context_len = r.generated == 0 ? 0 : r.context_len(),
                        .time_ns = e.takeover_ns});
  }
}

// A request that had produced tokens and whose instance was lost goes on:
// on the instance holding its copy, which recomputes only the tokens the copy
// lacks, or, without a live copy, on the least loaded live instance, which
// recomputes its whole context (prompt and the tokens generated so far).
// Either continues from the coordinator's last token, so a client gets no
// token twice and none is skipped.
//
// A request whose output is complete (its instance died after the report
// that carried the last token, max_tokens or a stop token, before its
// RequestDone) is done: it ends here as that RequestDone would have ended
// it, since an instance that took it over would decode one token more before
// it checked.
void take_over(coord_actor* self, request_view& r, instance_id lost) {
  auto& s = self->state;
  const auto end =
      messages::finish_after(r.generated, r.last_token, r.max_tokens, s.table.at(r.id).stop);
  if (end != messages::finish_reason::none) {
    return on_done(self, messages::request_done{.epoch = s.epoch,
                                                .request = r.id,
                                                .status = messages::request_status::ok,
                                                .finish = end,
                                                .output_tokens = r.generated,
                                                .error = {},
                                                .instance = lost});
  }
  const bool from_replica =
      r.replica_instance != no_instance && s.view.at(r.replica_instance).alive;
  const instance_id to = from_replica ? r.replica_instance : s.view.least_loaded();
  if (to == no_instance) {
    return abandon(self, r.id,
                   "instance " + std::to_string(lost) + " '" + name_of(s, lost) +
                       "' was lost and no instance is left");
  }
  r.phase = request_phase::decoding;
  r.replica_instance = no_instance;
  if (r.decode_instance != to) {  // (a move's target is counted already)
    s.view.set_decode_instance(r, to);
    instance_view& inst = s.view.at(to);
    ++inst.decode_requests;
    inst.decode_tokens += r.context_len();
  }
  const entry& e = s.table.at(r.id);
  send_to(self, to,
          messages::start_decode{.epoch = s.epoch,
                                 .request = r.id,
                                 .instance = to,
                                 .context_len = r.context_len(),
                                 .last_token = r.last_token,
                                 .from_replica = from_replica,
                                 .generated = r.generated,
                                 .partner = no_instance,
                                 .max_tokens = r.max_tokens,
                                 .stop_tokens = e.stop,
                                 .context_tokens = context_of(s, e, r.context_len()),
                                 .takeover = true});
  note_takeover(self, r, lost, from_replica);
}

// A request still being prefilled on a lost instance starts over: the
// policy places it as if it had just arrived.
void place_again(coord_actor* self, request_view& r, instance_id lost) {
  auto& s = self->state;
  if (r.replica_instance != no_instance && s.view.at(r.replica_instance).alive) {
    send_to(self, r.replica_instance,  // the partial copy it was receiving
            messages::evict_replica{.epoch = s.epoch,
                                    .instance = r.replica_instance,
                                    .requests = {r.id},
                                    .reason = messages::evict_reason::repair});
  }
  r.prefill_instance = no_instance;
  r.replica_instance = no_instance;
  s.view.set_decode_instance(r, no_instance);
  apply_all(self, s.pol->on_arrival(s.view, r));
  note_takeover(self, r, lost, false);
}

// Instance `id` is gone: its requests go on elsewhere, copies it held stop
// being synced, its partner is re-paired.
void lose(coord_actor* self, instance_id id) {
  auto& s = self->state;
  instance_view& inst = s.view.at(id);
  inst.alive = false;
  ++s.epoch;  // what is sent from now on postdates the loss
  if (id < s.endpoints.size()) s.endpoints[id].clear();  // daemons
  if (id < s.replicas.size()) s.replicas[id] = caf::actor{};
  if (s.obs) s.obs->on_lost(id);
  std::vector<request_id> restart, resume;
  std::vector<std::pair<instance_id, request_id>> orphaned;  // copies it held, by owner
  for (auto& [rid, r] : s.view.requests) {
    if (r.phase == request_phase::moving) {
      // A lost target is handled when the source answers (on_moved); a
      // lost source leaves its copy on the target.
      if (s.table.at(rid).move_from == id) {
        r.replica_instance = r.decode_instance;
        resume.push_back(rid);
      }
      continue;
    }
    const instance_id home =
        r.phase == request_phase::decoding ? r.decode_instance : r.prefill_instance;
    if (home == id) {
      (r.phase == request_phase::prefill ? restart : resume).push_back(rid);
    } else if (r.replica_instance == id) {
      orphaned.emplace_back(home, rid);
    }
  }
  for (const auto& [owner, rid] : orphaned) {  // stop syncing to the dead copy
    s.view.requests.at(rid).replica_instance = no_instance;
    send_to(self, owner,
            messages::evict_replica{.epoch = s.epoch,
                                    .instance = id,
                                    .requests = {rid},
                                    .reason = messages::evict_reason::repair});
  }
  const std::vector<instance_view> before = s.view.instances;
  s.pol->leave(s.view, id);
  send_changes(self, before);
  broadcast_endpoints(self);
  for (const request_id rid : restart) place_again(self, s.view.requests.at(rid), id);
  for (const request_id rid : resume) take_over(self, s.view.requests.at(rid), id);
  if (!restart.empty() || !resume.empty()) {
    log_warn(s, "instance {} '{}': {} requests taken over, {} restarted from their prompt", id,
             name_of(s, id), resume.size(), restart.size());
  }
}

// A manager went down: its worker process stopped, died or was cut off.
void on_lost(coord_actor* self, const caf::down_msg& dm) {
  auto& s = self->state;
  const auto at = std::find_if(s.managers.begin(), s.managers.end(),
                               [&](const caf::actor& a) { return a && a.address() == dm.source; });
  if (at == s.managers.end()) return;
  const auto id = static_cast<instance_id>(at - s.managers.begin());
  if (!s.view.at(id).alive) return;
  if (dm.reason == caf::exit_reason::user_shutdown) {  // its worker stopped on a signal
    log_info(s, "instance {} '{}' left", id, s.names[id]);
  } else {
    log_warn(s, "instance {} '{}' lost: {}", id, s.names[id], caf::to_string(dm.reason));
  }
  lose(self, id);
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
  self->state.view.block_tokens = opt.block_tokens;
  self->set_down_handler([self](caf::down_msg& dm) { on_lost(self, dm); });
  if (opt.instances == 0) self->state.pol->init(self->state.view);  // daemons: grows by join
  return {
      [self](actors::peers_atom, std::vector<caf::actor> managers) {
        start(self, std::move(managers));
      },
      [self](msg_atom, const capnp_blob& b) { dispatch(self, b); },
      [self](actors::lost_atom, instance_id id) {
        if (id < self->state.view.instances.size() && self->state.view.at(id).alive) lose(self, id);
      },
      [self](actors::register_atom, const capnp_blob& b, caf::actor manager, caf::actor node,
             caf::actor replica) {
        return on_register(self, b, std::move(manager), std::move(node), std::move(replica));
      },
  };
}

}  // namespace

caf::actor spawn_coordinator(caf::actor_system& sys, const coordinator_options& options,
                             std::shared_ptr<policy> pol, observer* obs) {
  return sys.spawn(coordinator, options, std::move(pol), obs);
}

}  // namespace accellm::coordinator

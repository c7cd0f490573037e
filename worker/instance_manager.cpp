#include "worker/instance_manager.hpp"

#include "actors/atoms.hpp"
#include "actors/caf_error.hpp"
#include "actors/clock.hpp"
#include "messages/codec.hpp"

#include <caf/all.hpp>

#include <algorithm>
#include <deque>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace accellm::worker {
namespace {

using actors::msg_atom;
using messages::capnp_blob;
using messages::role;

enum class state : std::uint8_t {
  queued,       ///< waiting for (more) prefill; `target` tokens to compute
  parked,       ///< prefilled, waiting for StartDecode or MoveDecode
  awaiting_kv,  ///< will decode here once the copy holds `target` tokens
  decoding,     ///< in the running set
};

struct primary {
  state st = state::queued;
  std::uint32_t prompt_len = 0;
  std::uint32_t max_tokens = 0;
  std::vector<token_id> stop;   ///< generation ends after any of these
  std::uint32_t cached = 0;     ///< tokens whose KV is held here
  std::uint32_t target = 0;     ///< tokens to hold before decoding (prefill or copy)
  std::uint32_t generated = 0;  ///< output tokens so far
  token_id last_token = no_token;
  std::uint64_t blocks = 0;
  std::uint64_t copy_progress_ns = 0;  ///< awaiting_kv: when the copy last grew
  /// awaiting_kv: where the last row kept ended. A layer's rows may come in
  /// pieces (worker/kv_send_queue.hpp): a piece continues there.
  std::uint32_t piece_end = 0;
  instance_id copy_to = no_instance;  ///< receives this request's new KV rows
  bool then_decode = false;
  /// Real devices: the token ids, prompt then output (prompt_len + generated
  /// of them); ids[c] is the input at context position c. Empty on sim.
  std::vector<token_id> ids;
  bool recompute = false;      ///< rebuilding KV it lost or never received (no output)
  bool rebuilt = false;        ///< its KV was rebuilt once after the device refused it
  bool in_flight = false;      ///< part of the running iteration
  bool move_pending = false;   ///< MoveDecode arrived while in flight
  bool cancelled = false;      ///< Cancel arrived while in flight: ends when it lands
  messages::move_decode move;  ///< that MoveDecode
};

struct replica {
  std::uint32_t tokens = 0;
  std::uint64_t blocks = 0;
  std::uint64_t since = 0;  ///< order of creation: oldest is evicted first
  /// Where the last row kept ended: a primary made from this copy takes it
  /// as its piece_end, so the rest of a layer group cut in pieces is kept.
  std::uint32_t piece_end = 0;
};

struct im_state {
  instance_options opt;
  caf::actor coordinator;
  caf::actor worker;
  role current = role::mixed;
  instance_id partner = no_instance;
  epoch_t epoch = 0;

  // Hash maps: looked up once or more per item of every iteration. Nothing
  // iterates them in an order that matters (make_room orders by `since`).
  std::unordered_map<request_id, primary> primaries;
  std::unordered_map<request_id, replica> replicas;
  /// Replicas dropped here, the latest dropped_memory of them: later rows for
  /// them are ignored, and a decode placed on one recomputes it. (An older one
  /// forgotten costs a decode placed on it copy_stall before it recomputes.)
  std::unordered_set<request_id> dropped;
  std::deque<request_id> dropped_order;  ///< `dropped`, oldest first
  std::deque<request_id> prefill_queue;
  std::vector<request_id> running;  ///< decoding, in start order
  std::uint64_t primary_blocks = 0;
  std::uint64_t replica_blocks = 0;
  std::uint64_t replica_seq = 0;

  bool busy = false;
  bool multi_step = false;           ///< the running iteration asked for several steps
  bool cut_sent = false;             ///< ... and was asked to stop at the next boundary
  std::size_t planned_items = 0;     ///< items of the running iteration's Execute (before joins)
  std::vector<request_id> joinable;  ///< decodes that became ready while it ran
  std::uint64_t iteration = 0;
  std::uint64_t started_ns = 0;
  messages::execute inflight;
  std::vector<primary*> inflight_p;  ///< inflight.items' primaries (nodes stay put while in flight)
  std::uint64_t busy_ns = 0;
  std::uint64_t kv_bytes_sent = 0;
  std::uint64_t kv_bytes_shared = 0;
  std::uint64_t kv_bytes_copied = 0;
  std::uint64_t kv_bytes_dropped = 0;
  std::uint64_t rejected = 0;  ///< messages dropped: malformed, unknown type, or rows from itself
  std::vector<request_id> evicted;    ///< since the last report
  std::vector<request_id> preempted;  ///< since the last report
  /// RequestDone and MoveDecode answers of the iteration being applied: sent
  /// after its IterationReport, so the coordinator sees the last tokens first.
  std::vector<capnp_blob> after_report;
  std::vector<request_id> released;  ///< device KV to free, sent at the end of the handler

  static inline const char* name = "instance_manager";
};

using im_actor = caf::stateful_actor<im_state>;

/// How many dropped replicas an instance remembers (im_state::dropped).
constexpr std::size_t dropped_memory = 4096;

std::uint64_t free_blocks(const im_state& s) {
  return s.opt.total_blocks - s.primary_blocks - s.replica_blocks;
}

std::uint64_t blocks_for(const im_state& s, std::uint64_t tokens) {
  return (tokens + s.opt.block_tokens - 1) / s.opt.block_tokens;
}

std::uint64_t now_ns(im_actor* self) {
  return static_cast<std::uint64_t>(actors::now(self).time_since_epoch().count());
}

// Records `b` in the trace as sent to `dest` (the coordinator or this
// instance's worker).
void trace(im_actor* self, const caf::actor& dest, const capnp_blob& b) {
  const auto& s = self->state;
  if (!s.opt.trace) return;
  if (dest == s.coordinator) {
    s.opt.trace.message("coordinator", "coordinator", b, actors::now(self));
  } else {
    s.opt.trace.message("worker:" + std::to_string(s.opt.id), s.opt.trace.node, b,
                        actors::now(self));
  }
}

template <class T>
void send_to(im_actor* self, const caf::actor& dest, const T& m) {
  if (!dest) return;
  auto b = messages::pack(m);
  trace(self, dest, b);
  self->send(dest, msg_atom::value, std::move(b));
}

// --- memory -----------------------------------------------------------------

// Later rows of `id` are ignored here; with `report` the coordinator hears
// that this instance holds no copy of it.
void mark_dropped(im_state& s, request_id id, bool report) {
  if (s.dropped.insert(id).second) s.dropped_order.push_back(id);
  if (s.dropped_order.size() > dropped_memory) {
    s.dropped.erase(s.dropped_order.front());
    s.dropped_order.pop_front();
  }
  if (report) s.evicted.push_back(id);
}

void drop_replica(im_state& s, request_id id, bool report) {
  const auto it = s.replicas.find(id);
  if (it == s.replicas.end()) return;
  s.replica_blocks -= it->second.blocks;
  s.replicas.erase(it);
  if (s.opt.device_memory) s.released.push_back(id);
  mark_dropped(s, id, report);
}

// Frees replica blocks, oldest first, until `need` blocks are free.
bool make_room(im_state& s, std::uint64_t need) {
  while (free_blocks(s) < need && !s.replicas.empty()) {
    auto oldest = std::min_element(s.replicas.begin(), s.replicas.end(), [](auto& a, auto& b) {
      return a.second.since < b.second.since;
    });
    drop_replica(s, oldest->first, true);
  }
  return free_blocks(s) >= need;
}

// Grows a primary to hold `tokens`; false (nothing changes) when it cannot.
bool grow(im_state& s, primary& p, std::uint64_t tokens) {
  const std::uint64_t want = blocks_for(s, tokens);
  if (want <= p.blocks) return true;
  if (!make_room(s, want - p.blocks)) return false;
  s.primary_blocks += want - p.blocks;
  p.blocks = want;
  return true;
}

void free_primary(im_state& s, request_id id) {
  const auto it = s.primaries.find(id);
  if (it == s.primaries.end()) return;
  s.primary_blocks -= it->second.blocks;
  s.primaries.erase(it);
  std::erase(s.running, id);
  if (s.opt.device_memory) s.released.push_back(id);
}

// The token ids [from, from + n) of `p` (real devices; empty on sim).
std::vector<token_id> ids_of(const primary& p, std::uint32_t from, std::uint32_t n) {
  if (p.ids.size() < std::size_t{from} + n) return {};
  const auto first = p.ids.begin() + from;
  return {first, first + n};
}

// `id` rebuilds its KV up to p.target by prefill (no output), ahead of the
// prompts waiting here.
void queue_recompute(im_state& s, request_id id, primary& p) {
  p.recompute = true;
  p.st = state::queued;
  if (std::find(s.prefill_queue.begin(), s.prefill_queue.end(), id) == s.prefill_queue.end()) {
    s.prefill_queue.push_front(id);
  }
}

// `p` (request `id`) loses the KV it holds here, on the device too.
void forget_kv(im_state& s, request_id id, primary& p) {
  s.primary_blocks -= p.blocks;
  p.blocks = 0;
  p.cached = 0;
  if (s.opt.device_memory) s.released.push_back(id);
}

// Decoding `p` (request `id`) loses its KV here and recomputes its whole
// context, prompt and output so far, ahead of the prompts waiting: a
// preemption, reported as one.
void preempt(im_state& s, request_id id, primary& p) {
  forget_kv(s, id, p);
  p.target = p.prompt_len + p.generated - 1;
  std::erase(s.running, id);
  queue_recompute(s, id, p);
  s.preempted.push_back(id);
}

// vLLM-style preemption by recompute: the youngest decode loses its KV and
// goes to the front of the prefill queue.
bool preempt_youngest(im_state& s, request_id keep) {
  for (auto it = s.running.rbegin(); it != s.running.rend(); ++it) {
    primary& p = s.primaries.at(*it);
    if (*it == keep || p.in_flight) continue;
    preempt(s, *it, p);
    return true;
  }
  return false;
}

// --- batching ---------------------------------------------------------------

messages::execute_item prefill_item(request_id id, const primary& p, std::uint32_t n) {
  const bool last = p.cached + n == p.target;
  return {.request = id,
          .phase = messages::phase::prefill,
          .context = p.cached,
          .num_tokens = n,
          .tokens = ids_of(p, p.cached, n),
          .wants_output = last && !p.recompute,
          .replica_to = p.recompute ? no_instance : p.copy_to};
}

// Prompt tokens from the queue, FIFO, within `budget` tokens and `slots`
// requests. Unchunked, a prompt runs whole (alone if it exceeds the budget).
void add_prefills(im_state& s, std::vector<messages::execute_item>& items, std::uint32_t budget,
                  bool chunked) {
  std::uint32_t used = 0;
  for (const request_id id : s.prefill_queue) {
    if (items.size() >= s.opt.max_batch_size || used >= budget) break;
    primary& p = s.primaries.at(id);
    const std::uint32_t remaining = p.target - p.cached;
    std::uint32_t n = remaining;
    if (chunked) n = std::min(remaining, budget - used);
    if (!chunked && used > 0 && used + remaining > budget) break;
    if (!grow(s, p, std::uint64_t{p.cached} + n)) break;  // FCFS: later prompts wait too
    p.in_flight = true;  // in this batch: never preempted while it is formed
    items.push_back(prefill_item(id, p, n));
    s.inflight_p.push_back(&p);
    used += n;
  }
}

// One decode step of `p` (`steps` of them, multi-step), syncing its KV rows
// to the replica when the instance does.
messages::execute_item decode_item(const im_state& s, request_id id, const primary& p,
                                   std::uint32_t steps = 1) {
  return {.request = id,
          .phase = messages::phase::decode,
          .context = p.cached,
          .num_tokens = 1,
          .tokens = ids_of(p, p.cached, 1),
          .wants_output = true,
          .replica_to = s.opt.sync_decode_kv ? p.copy_to : no_instance,
          .steps = steps};
}

// Multi-step: the steps `p` may run in one Execute (up to decode_steps, no
// more than the tokens it has left, at least one).
std::uint32_t steps_for(const im_state& s, const primary& p) {
  return std::clamp(p.max_tokens - std::min(p.generated, p.max_tokens), 1u, s.opt.decode_steps);
}

// Blocks `p` still needs to hold the KV of `steps` more tokens.
std::uint64_t blocks_to_grow(const im_state& s, const primary& p, std::uint32_t steps) {
  return blocks_for(s, std::uint64_t{p.cached} + steps) - p.blocks;
}

void add_decodes(im_state& s, std::vector<messages::execute_item>& items) {
  for (std::size_t i = 0; i < s.running.size() && items.size() < s.opt.max_batch_size; ++i) {
    const request_id id = s.running[i];
    primary& p = s.primaries.at(id);
    while (!grow(s, p, std::uint64_t{p.cached} + 1)) {
      if (!preempt_youngest(s, id)) return;
      if (i >= s.running.size()) return;
    }
    p.in_flight = true;  // in this batch: never preempted while it is formed
    s.inflight_p.push_back(&p);
    items.push_back(decode_item(s, id, p));
  }
}

std::vector<messages::execute_item> form_batch(im_state& s) {
  std::vector<messages::execute_item> items;
  s.inflight_p.clear();
  items.reserve(
      std::min<std::size_t>(s.opt.max_batch_size, s.running.size() + s.prefill_queue.size()));
  const bool has_prefill = !s.prefill_queue.empty();
  const bool has_decode = !s.running.empty();
  if (s.current == role::mixed) {
    if (s.opt.chunked_prefill) {
      add_decodes(s, items);
      const auto used = static_cast<std::uint32_t>(items.size());
      if (used < s.opt.chunk_tokens) add_prefills(s, items, s.opt.chunk_tokens - used, true);
    } else {
      add_prefills(s, items, s.opt.max_batch_tokens, false);
      add_decodes(s, items);
    }
    return items;
  }
  if (has_prefill && has_decode) {
    // Both kinds of work here (a saturated pair): the decodes run with one
    // prompt chunk per iteration, so none waits behind a whole prompt.
    add_decodes(s, items);
    add_prefills(s, items, s.opt.chunk_tokens, true);
    return items;
  }
  // One kind of work: whole prompts, or decode steps.
  if (has_prefill) {
    add_prefills(s, items, s.opt.max_batch_tokens, false);
  } else {
    add_decodes(s, items);
  }
  return items;
}

// Multi-step: gives every item of a decode-only batch up to decode_steps
// steps when nothing waits to join and the free blocks hold them all (no
// replica is evicted for steps that may be cut). True when some item got more
// than one.
bool plan_steps(im_state& s, std::vector<messages::execute_item>& items) {
  if (s.opt.decode_steps <= 1 || !s.prefill_queue.empty()) return false;
  std::uint64_t need = 0;
  std::uint32_t most = 1;
  for (std::size_t i = 0; i < items.size(); ++i) {
    auto& item = items[i];
    if (item.phase != messages::phase::decode) return false;
    item.steps = steps_for(s, *s.inflight_p[i]);
    need += blocks_to_grow(s, *s.inflight_p[i], item.steps);
    most = std::max(most, item.steps);
  }
  if (most == 1 || need > free_blocks(s)) {
    for (auto& item : items) item.steps = 1;
    return false;
  }
  // The free blocks hold them all: grow() evicts nothing.
  for (std::size_t i = 0; i < items.size(); ++i) {
    primary& p = *s.inflight_p[i];
    grow(s, p, std::uint64_t{p.cached} + items[i].steps);
  }
  return true;
}

// During a multi-step iteration, decodes that became ready join it at the
// next step boundary (the worker appends them); false when the free blocks
// cannot hold their steps (then the iteration is cut instead).
bool join(im_actor* self) {
  auto& s = self->state;
  messages::execute add{
      .epoch = s.epoch, .instance = s.opt.id, .iteration = s.iteration, .items = {}};
  std::uint64_t need = 0;
  for (const request_id id : s.joinable) {
    const auto it = s.primaries.find(id);
    if (it == s.primaries.end()) continue;
    const primary& p = it->second;
    if (p.st != state::decoding || p.in_flight) continue;
    const std::uint32_t steps = steps_for(s, p);
    need += blocks_to_grow(s, p, steps);
    add.items.push_back(decode_item(s, id, p, steps));
  }
  s.joinable.clear();
  if (add.items.empty()) return true;
  if (need > free_blocks(s)) return false;
  for (const auto& item : add.items) {
    primary& p = s.primaries.at(item.request);
    grow(s, p, std::uint64_t{p.cached} + item.steps);  // fits the free blocks: evicts nothing
    p.in_flight = true;
    s.inflight.items.push_back(item);
    s.inflight_p.push_back(&p);
  }
  auto b = messages::pack(std::move(add));
  trace(self, s.worker, b);
  self->send(s.worker, actors::join_atom::value, s.iteration, std::move(b));
  return true;
}

// During a multi-step iteration: decodes that became ready join it; a prompt
// or another change of the batch (`changed`: a move of an item, a new role)
// cuts it at the next step boundary.
void join_or_cut(im_actor* self, bool changed = false) {
  auto& s = self->state;
  if (!s.busy || !s.multi_step || s.cut_sent) return;
  if (!changed && s.prefill_queue.empty() && (s.joinable.empty() || join(self))) return;
  s.cut_sent = true;
  s.joinable.clear();
  self->send(s.worker, actors::cut_atom::value, s.iteration);
}

// Sends the RequestDone and MoveDecode answers held back for the report.
void send_after_report(im_actor* self) {
  auto& s = self->state;
  for (auto& b : s.after_report) {
    trace(self, s.coordinator, b);
    self->send(s.coordinator, msg_atom::value, std::move(b));
  }
  s.after_report.clear();
}

// Tells the worker which requests' device KV was freed (real devices).
void flush_released(im_actor* self) {
  auto& s = self->state;
  if (s.released.empty()) return;
  self->send(s.worker, actors::release_atom::value, std::move(s.released));
  s.released.clear();
}

void maybe_start(im_actor* self) {
  auto& s = self->state;
  if (s.busy) join_or_cut(self);
  if (s.busy || !s.worker) return;
  auto items = form_batch(s);
  if (items.empty()) return;  // add_prefills/add_decodes marked the items in flight
  s.multi_step = plan_steps(s, items);
  s.cut_sent = false;
  s.planned_items = items.size();
  s.joinable.clear();
  s.inflight = {.epoch = s.epoch,
                .instance = s.opt.id,
                .iteration = ++s.iteration,
                .items = std::move(items)};
  s.busy = true;
  s.started_ns = now_ns(self);
  flush_released(self);  // before an Execute that may reuse the freed KV
  send_to(self, s.worker, s.inflight);
}

// --- iteration results --------------------------------------------------------

messages::instance_report load_of(im_actor* self) {
  const auto& s = self->state;
  std::uint64_t queued_tokens = 0;
  for (const request_id id : s.prefill_queue) {
    const primary& p = s.primaries.at(id);
    queued_tokens += p.target - p.cached;
  }
  return {.epoch = s.epoch,
          .instance = s.opt.id,
          .time_ns = now_ns(self),
          .role = s.current,
          .queued_prefill_tokens = queued_tokens,
          .running_decode = static_cast<std::uint32_t>(s.running.size()),
          .kv_blocks_total = s.opt.total_blocks,
          .primary_blocks = s.primary_blocks,
          .replica_blocks = s.replica_blocks,
          .free_blocks = free_blocks(s),
          .kv_bytes_sent = s.kv_bytes_sent,
          .busy_ns = s.busy_ns,
          .iterations = s.iteration,
          .partner = s.partner,
          .queued_requests = static_cast<std::uint32_t>(s.prefill_queue.size()),
          .rejected_messages = s.rejected,
          .kv_bytes_shared = s.kv_bytes_shared,
          .kv_bytes_copied = s.kv_bytes_copied,
          .kv_bytes_dropped = s.kv_bytes_dropped};
}

// Hands a request that stopped decoding here over (MoveDecode) and tells the
// coordinator its final state.
void finish_move(im_actor* self, request_id id, primary& p) {
  auto& s = self->state;
  messages::move_decode ack = p.move;
  ack.context_len = p.cached;
  if (p.st == state::queued || p.st == state::awaiting_kv) {
    // Preempted (or still receiving its copy) here: the target's copy holds
    // what this instance would have had.
    ack.context_len = std::max(p.cached, p.target);
    std::erase(s.prefill_queue, id);
  }
  ack.last_token = p.last_token;
  ack.generated = p.generated;
  const bool keep = ack.new_partner == s.opt.id;
  const bool defer = p.in_flight || p.move_pending;
  const std::uint32_t cached = p.cached;
  const std::uint64_t blocks = p.blocks;
  s.primaries.erase(id);
  std::erase(s.running, id);
  s.primary_blocks -= blocks;
  if (keep) {
    s.replicas[id] = replica{.tokens = cached, .blocks = blocks, .since = ++s.replica_seq};
    s.replica_blocks += blocks;
  } else if (s.opt.device_memory) {
    s.released.push_back(id);
  }
  if (defer) {
    s.after_report.push_back(messages::pack(ack));
  } else {
    send_to(self, s.coordinator, ack);
  }
}

// Ends `id` here with `status`: its RequestDone follows the report, its KV
// is freed.
void end_request(im_actor* self, request_id id, messages::request_status status,
                 messages::finish_reason finish, std::string error = {}) {
  auto& s = self->state;
  const std::uint32_t generated = s.primaries.at(id).generated;
  s.after_report.push_back(messages::pack(messages::request_done{.epoch = s.epoch,
                                                                 .request = id,
                                                                 .status = status,
                                                                 .finish = finish,
                                                                 .output_tokens = generated,
                                                                 .error = std::move(error),
                                                                 .instance = s.opt.id}));
  std::erase(s.prefill_queue, id);
  free_primary(s, id);
}

// Ends `id` as complete when its newest token finished it; true if so.
bool finish_if_done(im_actor* self, request_id id, const primary& p) {
  const messages::finish_reason end =
      messages::finish_after(p.generated, p.last_token, p.max_tokens, p.stop);
  if (end == messages::finish_reason::none) return false;
  end_request(self, id, messages::request_status::ok, end);
  return true;
}

// The device could not run an iteration holding `id` (IterationDone.error):
// the request ends as failed, with the device's words, and nothing else is
// touched (a backend that fails a run changes no KV).
void fail_request(im_actor* self, request_id id, const std::string& why) {
  end_request(self, id, messages::request_status::failed, messages::finish_reason::none,
              "instance " + std::to_string(self->state.opt.id) + ": " + why);
}

// The client gave up on `id` (Cancel).
void cancel_request(im_actor* self, request_id id) {
  end_request(self, id, messages::request_status::cancelled, messages::finish_reason::none);
}

// A request the device refused (IterationDone.refused): the KV the device
// holds of it is no use. On a real device, whose token ids this manager
// keeps, it is rebuilt once from them: a decode recomputes its whole context
// and goes on (as after a preemption, and reported so), a prefill starts
// over. Refused again, or with nothing to rebuild from, it fails with the
// device's words.
void on_refused(im_actor* self, request_id id, primary& p, const std::string& why) {
  auto& s = self->state;
  p.in_flight = false;
  if (p.cancelled) return cancel_request(self, id);
  const std::uint32_t context = p.generated > 0 ? p.prompt_len + p.generated - 1 : p.prompt_len;
  if (!s.opt.device_memory || p.rebuilt || p.ids.size() < context)
    return fail_request(self, id, why);
  p.rebuilt = true;
  if (p.generated > 0 && !p.recompute) return preempt(s, id, p);
  forget_kv(s, id, p);  // a prefill, or a recompute, starts over
  s.preempted.push_back(id);
  if (std::find(s.prefill_queue.begin(), s.prefill_queue.end(), id) == s.prefill_queue.end())
    s.prefill_queue.push_front(id);
}

// Records `p`'s next output token (made at `step` of the iteration) in the
// report: it extends the request's run of tokens or starts one.
void emit(messages::iteration_report& out, request_id id, primary& p, token_id tok,
          std::uint32_t step) {
  if (out.runs.empty() || out.runs.back().request != id) {
    out.runs.push_back({.request = id, .first_index = p.generated, .count = 0, .first_step = step});
  }
  ++out.runs.back().count;
  out.tokens.push_back(tok);
  ++p.generated;
  p.last_token = tok;
  if (!p.ids.empty()) p.ids.push_back(tok);
}

// Applies one item's outcome; appends the produced token to `out`.
void apply_item(im_actor* self, const messages::execute_item& item, primary& p, token_id tok,
                messages::iteration_report& out) {
  auto& s = self->state;
  p.in_flight = false;
  if (p.cancelled) return cancel_request(self, item.request);  // its token is dropped
  p.cached += item.num_tokens;
  if (item.phase == messages::phase::prefill) {
    if (p.cached < p.target) return;  // more chunks to come
    std::erase(s.prefill_queue, item.request);
    if (p.recompute) {
      p.recompute = false;
      p.st = state::decoding;
      s.running.push_back(item.request);
      return;
    }
    emit(out, item.request, p, tok, 0);  // the first token
    p.st = p.then_decode ? state::decoding : state::parked;
    if (p.then_decode) s.running.push_back(item.request);
  } else {
    emit(out, item.request, p, tok, 0);
  }
  if (finish_if_done(self, item.request, p)) return;
  if (p.move_pending) finish_move(self, item.request, p);  // answered after the report
}

// Applies a multi-step decode item's tokens: the steps it ran of d.steps
// (no_token where it did not run: before it joined, after its own steps),
// each tagged with its step; releases the blocks reserved for steps that were
// not run. `run`: the items the worker ran (the Execute's and those joined);
// an item past them never ran.
void apply_steps(im_actor* self, const messages::iteration_done& d, std::size_t i, std::size_t run,
                 messages::iteration_report& out) {
  auto& s = self->state;
  const messages::execute_item& item = s.inflight.items[i];
  primary& p = *s.inflight_p[i];
  p.in_flight = false;
  if (p.cancelled) return cancel_request(self, item.request);
  for (std::uint32_t k = 0; i < run && k < d.steps; ++k) {
    const std::size_t at = k * run + i;
    const token_id tok = at < d.next_tokens.size() ? d.next_tokens[at] : no_token;
    if (tok == no_token) continue;
    ++p.cached;
    emit(out, item.request, p, tok, k);
    if (finish_if_done(self, item.request, p)) return;
  }
  const std::uint64_t keep = blocks_for(s, p.cached);
  s.primary_blocks -= p.blocks - keep;
  p.blocks = keep;
  if (p.move_pending) finish_move(self, item.request, p);  // answered after the report
}

void on_iteration_done(im_actor* self, const messages::iteration_done& d) {
  auto& s = self->state;
  if (!s.busy || d.iteration != s.iteration) return;  // a stale answer
  s.busy = false;
  s.busy_ns += d.duration_ns;
  s.kv_bytes_sent += d.kv_bytes_sent;
  s.kv_bytes_shared += d.kv_bytes_shared;
  s.kv_bytes_copied += d.kv_bytes_copied;
  s.kv_bytes_dropped += d.kv_bytes_dropped;
  messages::iteration_report rep;
  rep.epoch = s.epoch;
  rep.instance = s.opt.id;
  rep.iteration = s.iteration;
  rep.start_ns = s.started_ns;
  rep.duration_ns = d.duration_ns;
  rep.role = s.current;
  const auto& items = s.inflight.items;
  // An item the device refused is rebuilt or fails alone (d.refused,
  // ascending); the others ran. A refusal past the items names nothing.
  auto refusal = d.refused.begin();
  const auto refused = [&](std::size_t i) {
    if (refusal == d.refused.end() || refusal->item != i) return false;
    on_refused(self, items[i].request, *s.inflight_p[i], refusal->reason);
    ++refusal;
    return true;
  };
  if (!d.error.empty()) {
    for (const auto& item : items) fail_request(self, item.request, d.error);
  } else if (s.multi_step) {
    const std::size_t run = std::min(items.size(), s.planned_items + d.joined);
    if (d.steps > 1) rep.step_ends_ns = d.step_ends_ns;
    rep.runs.reserve(run);
    rep.tokens.reserve(run * d.steps);
    for (std::size_t i = 0; i < items.size(); ++i) {
      if (refused(i)) continue;
      if (i < run) ++rep.decode_requests;
      apply_steps(self, d, i, run, rep);
    }
  } else {
    for (std::size_t i = 0; i < items.size(); ++i) {
      if (refused(i)) continue;
      if (items[i].phase == messages::phase::prefill) {
        rep.prefill_tokens += items[i].num_tokens;
      } else {
        ++rep.decode_requests;
      }
      const token_id tok = i < d.next_tokens.size() ? d.next_tokens[i] : no_token;
      apply_item(self, items[i], *s.inflight_p[i], tok, rep);
    }
  }
  rep.evicted_replicas = std::move(s.evicted);
  rep.preempted = std::move(s.preempted);
  s.evicted.clear();
  s.preempted.clear();
  rep.load = load_of(self);
  if (s.opt.trace) {
    s.opt.trace.span(
        s.opt.id, rep.role, s.epoch, actors::time_point{std::chrono::nanoseconds{s.started_ns}},
        std::chrono::nanoseconds{d.duration_ns}, rep.prefill_tokens, rep.decode_requests);
  }
  send_to(self, s.coordinator, rep);
  send_after_report(self);
  maybe_start(self);
}

// --- coordinator orders -------------------------------------------------------

void on_assign(im_actor* self, const messages::assign_prefill& m) {
  auto& s = self->state;
  s.epoch = std::max(s.epoch, m.epoch);
  primary p;
  p.prompt_len = m.prompt_len;
  p.max_tokens = m.max_tokens;
  p.stop = m.stop_tokens;
  p.target = m.prompt_len;
  p.copy_to = m.partner;
  p.then_decode = m.then_decode;
  if (!m.prompt.empty()) {
    p.ids = m.prompt;
  }
  s.primaries[m.request] = p;
  s.prefill_queue.push_back(m.request);
  maybe_start(self);
}

void start_decoding(im_actor* self, request_id id, primary& p) {
  auto& s = self->state;
  if (p.cached >= p.target) {
    p.st = state::decoding;
    s.running.push_back(id);
    if (s.busy && s.multi_step) s.joinable.push_back(id);  // joins at the next step boundary
    return;
  }
  p.st = state::awaiting_kv;
  p.copy_progress_ns = now_ns(self);
  self->delayed_send(self, s.opt.copy_stall, actors::copy_check_atom::value, id);
}

// The copy `id` decodes from has not grown for copy_stall: recompute the
// tokens it lacks. Re-armed while rows keep arriving.
void on_copy_check(im_actor* self, request_id id) {
  auto& s = self->state;
  const auto it = s.primaries.find(id);
  if (it == s.primaries.end() || it->second.st != state::awaiting_kv) return;
  primary& p = it->second;
  const std::uint64_t quiet = now_ns(self) - p.copy_progress_ns;
  const auto stall = static_cast<std::uint64_t>(s.opt.copy_stall.count());
  if (quiet < stall) {
    self->delayed_send(self, std::chrono::nanoseconds{stall - quiet},
                       actors::copy_check_atom::value, id);
    return;
  }
  queue_recompute(s, id, p);
  maybe_start(self);
}

// Takeover: the instance that decoded `id` is gone, no more of its rows will
// come. Decodes from what the copy here holds after recomputing what it
// lacks, all of the context when there is no copy.
void take_over(im_actor* self, request_id id, primary& p) {
  auto& s = self->state;
  if (p.cached > p.target) {  // rows of tokens the coordinator never heard of
    if (s.opt.device_memory) {
      forget_kv(s, id, p);  // a device cannot forget only the extra rows: rebuild them all
    } else {
      p.cached = p.target;
    }
  }
  if (p.cached < p.target) {
    queue_recompute(s, id, p);
  } else {
    start_decoding(self, id, p);
  }
}

void on_start_decode(im_actor* self, const messages::start_decode& m) {
  auto& s = self->state;
  auto it = s.primaries.find(m.request);
  if (it == s.primaries.end()) {
    // Decode from the copy this instance holds or is still receiving.
    primary p;
    p.prompt_len = m.context_len + 1 - m.generated;
    p.max_tokens = m.max_tokens;
    p.target = m.context_len;
    p.generated = m.generated;
    p.last_token = m.last_token;
    if (!m.context_tokens.empty()) {
      p.ids = m.context_tokens;
      p.ids.push_back(m.last_token);
    }
    if (auto r = s.replicas.find(m.request); r != s.replicas.end()) {
      p.cached = r->second.tokens;
      p.piece_end = r->second.piece_end;
      p.blocks = r->second.blocks;
      s.replica_blocks -= p.blocks;
      s.primary_blocks += p.blocks;
      s.replicas.erase(r);
    } else if (s.dropped.count(m.request) != 0) {
      p.recompute = true;  // the copy was dropped here: rebuild it
    }
    it = s.primaries.emplace(m.request, p).first;
  }
  primary& p = it->second;
  p.copy_to = m.partner;
  p.stop = m.stop_tokens;
  if (m.takeover && (p.st == state::queued || p.st == state::awaiting_kv)) {
    take_over(self, m.request, p);
  } else if (p.recompute && p.st == state::queued) {
    queue_recompute(s, m.request, p);  // already queued unless the copy was dropped
  } else if (p.st == state::parked || p.st == state::awaiting_kv || p.st == state::queued) {
    start_decoding(self, m.request, p);
  }
  maybe_start(self);
}

void on_move(im_actor* self, const messages::move_decode& m) {
  auto& s = self->state;
  const auto it = s.primaries.find(m.request);
  if (it == s.primaries.end()) return;
  primary& p = it->second;
  p.move = m;
  if (p.in_flight) {
    p.move_pending = true;
    join_or_cut(self, true);
    return;
  }
  finish_move(self, m.request, p);
  maybe_start(self);
}

void on_cancel(im_actor* self, const messages::cancel& m) {
  auto& s = self->state;
  const auto it = s.primaries.find(m.request);
  if (it == s.primaries.end()) {
    drop_replica(s, m.request, false);  // a copy of it here is no use either
    return;
  }
  if (it->second.in_flight) {
    it->second.cancelled = true;
    join_or_cut(self, true);
    return;
  }
  cancel_request(self, m.request);
  send_after_report(self);
  maybe_start(self);
}

void on_evict(im_actor* self, const messages::evict_replica& m) {
  auto& s = self->state;
  if (m.instance != s.opt.id) {
    // A notice to the owner: the copy on m.instance is gone, stop syncing.
    for (const request_id id : m.requests) {
      if (auto it = s.primaries.find(id); it != s.primaries.end()) {
        if (it->second.copy_to == m.instance) it->second.copy_to = no_instance;
      }
    }
    return;
  }
  for (const request_id id : m.requests) drop_replica(s, id, false);
  maybe_start(self);
}

// The sender gave up copying `id` here (its send queue to this instance was
// full, worker/kv_send_queue.hpp): a replica is dropped and reported, so the
// coordinator stops the owner's syncing; a copy that was to become the
// primary recomputes what it lacks at once instead of after copy_stall.
void abandon_copy(im_actor* self, request_id id) {
  auto& s = self->state;
  if (auto it = s.primaries.find(id); it != s.primaries.end()) {
    if (it->second.st == state::awaiting_kv) queue_recompute(s, id, it->second);
    return;
  }
  if (s.replicas.count(id) != 0) {
    drop_replica(s, id, true);
  } else {
    mark_dropped(s, id, true);  // abandoned before any of it came
  }
}

// KV rows that arrived from another instance (through the local kv_replica).
void on_rows(im_actor* self, const messages::kv_delta_batch& m) {
  auto& s = self->state;
  if (m.from_instance == s.opt.id) {  // KV never comes from the instance itself
    ++s.rejected;
    return;
  }
  // Real devices: the rows kept here go on to the device, nothing else.
  messages::kv_delta_batch kept{.epoch = m.epoch,
                                .from_instance = m.from_instance,
                                .layer_begin = m.layer_begin,
                                .layer_end = m.layer_end,
                                .rows = {},
                                .phase = m.phase,
                                .ring = m.ring,  // rows in a same-node ring stay there
                                .abandoned = {}};
  auto keep = [&](const messages::kv_rows& row) {
    if (s.opt.device_memory) kept.rows.push_back(row);
  };
  // Rows of an earlier layer group: their tokens are not all here yet.
  const bool whole = m.layer_end >= s.opt.layers;
  for (const messages::kv_rows& row : m.rows) {
    if (auto it = s.primaries.find(row.request); it != s.primaries.end()) {
      primary& p = it->second;  // a copy becoming the primary (awaiting_kv)
      const bool continues = row.token_begin <= p.cached || row.token_begin == p.piece_end;
      if (p.st != state::awaiting_kv || !continues) continue;
      if (!grow(s, p, row.token_end)) continue;
      keep(row);
      p.piece_end = row.token_end;
      p.copy_progress_ns = now_ns(self);
      if (!whole) continue;
      p.cached = std::max(p.cached, row.token_end);
      if (p.cached >= p.target) start_decoding(self, row.request, p);
      continue;
    }
    auto rit = s.replicas.find(row.request);
    if (rit == s.replicas.end()) {
      if (row.token_begin != 0) continue;  // a copy that started elsewhere
      if (s.dropped.count(row.request) != 0) continue;
      rit = s.replicas.emplace(row.request, replica{.since = ++s.replica_seq}).first;
    }
    replica& r = rit->second;
    const std::uint64_t want = blocks_for(s, row.token_end);
    if (want > r.blocks) {
      if (free_blocks(s) < want - r.blocks) {  // replicas never displace anything
        drop_replica(s, row.request, true);
        continue;
      }
      s.replica_blocks += want - r.blocks;
      r.blocks = want;
    }
    keep(row);
    r.piece_end = row.token_end;
    if (whole) r.tokens = std::max(r.tokens, row.token_end);
  }
  if (!kept.rows.empty()) send_to(self, s.worker, kept);
  for (const request_id id : m.abandoned) abandon_copy(self, id);
  maybe_start(self);
}

void on_set_role(im_actor* self, const messages::set_role& m) {
  auto& s = self->state;
  if (m.fenced) {  // declared lost: every request it holds went on elsewhere
    return self->quit(accellm::make_error(
        errc::not_found, "fenced: the coordinator declared instance " + std::to_string(m.instance) +
                             " lost (epoch " + std::to_string(m.epoch) + ")"));
  }
  s.epoch = std::max(s.epoch, m.epoch);
  if (s.opt.id == no_instance) {  // a daemon's first SetRole names the instance
    s.opt.id = m.instance;
    if (s.opt.trace) s.opt.trace.actor = "im:" + std::to_string(m.instance);
  }
  if (m.role != s.current) join_or_cut(self, true);
  s.current = m.role;
  s.partner = m.partner;
  maybe_start(self);
}

void dispatch(im_actor* self, const capnp_blob& b) {
  using messages::msg_type;
  const auto t = messages::to_msg_type(b.type);
  if (!t) {
    ++self->state.rejected;
    return;
  }
  auto handle = [&](auto tag, auto fn) {
    using T = typename decltype(tag)::type;
    if (!messages::with_decoded<T>(b, [&](const T& m) { fn(self, m); })) ++self->state.rejected;
  };
  switch (*t) {
    case msg_type::assign_prefill:
      return handle(std::type_identity<messages::assign_prefill>{}, on_assign);
    case msg_type::start_decode:
      return handle(std::type_identity<messages::start_decode>{}, on_start_decode);
    case msg_type::move_decode:
      return handle(std::type_identity<messages::move_decode>{}, on_move);
    case msg_type::set_role:
      return handle(std::type_identity<messages::set_role>{}, on_set_role);
    case msg_type::evict_replica:
      return handle(std::type_identity<messages::evict_replica>{}, on_evict);
    case msg_type::cancel:
      return handle(std::type_identity<messages::cancel>{}, on_cancel);
    case msg_type::iteration_done:
      return handle(std::type_identity<messages::iteration_done>{}, on_iteration_done);
    case msg_type::kv_delta_batch:
      return handle(std::type_identity<messages::kv_delta_batch>{}, on_rows);
    default:
      ++self->state.rejected;
      return;
  }
}

void on_message(im_actor* self, const capnp_blob& b) {
  dispatch(self, b);
  flush_released(self);
}

caf::behavior instance_manager(im_actor* self, instance_options opt) {
  self->state.opt = opt;
  return {
      [self](actors::peers_atom, caf::actor coordinator, caf::actor worker) {
        self->state.coordinator = std::move(coordinator);
        self->state.worker = std::move(worker);
      },
      [self](msg_atom, const capnp_blob& b) { on_message(self, b); },
      [self](actors::copy_check_atom, request_id id) {
        on_copy_check(self, id);
        flush_released(self);
      },
      [](actors::ping_atom) { return actors::pong_atom::value; },
  };
}

}  // namespace

caf::actor spawn_instance_manager(caf::actor_system& sys, const instance_options& options) {
  return sys.spawn(instance_manager, options);
}

}  // namespace accellm::worker

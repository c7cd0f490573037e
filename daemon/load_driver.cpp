#include "daemon/load_driver.hpp"

#include "actors/atoms.hpp"
#include "actors/clock.hpp"
#include "messages/codec.hpp"

#include <caf/all.hpp>

#include <random>
#include <unordered_map>

namespace accellm::daemon {
namespace {

using std::chrono::nanoseconds;

struct client_state {
  const std::vector<load_request>* requests = nullptr;
  caf::actor coordinator;
  caf::actor waiter;
  request_id id_base = 0;
  actors::time_point origin;
  std::size_t next = 0;
  std::unordered_map<request_id, std::size_t> slot;  ///< request id -> index
  std::shared_ptr<load_outcome> result;              ///< filled at the end, read by the waiter
  load_outcome out;
  static inline const char* name = "load_client";
};

using client_actor = caf::stateful_actor<client_state>;

nanoseconds since_origin(client_actor* self) {
  return actors::now(self) - self->state.origin;
}

// The run is over (all ended, drain limit, coordinator gone): the waiter
// gets what there is.
void hand_over(client_actor* self) {
  auto& s = self->state;
  *s.result = std::move(s.out);
  self->send(s.waiter, actors::stop_atom::value);
  self->quit();
}

void schedule(client_actor* self) {
  auto& s = self->state;
  if (s.next >= s.requests->size()) return;
  const nanoseconds due = (*s.requests)[s.next].spec.arrival - since_origin(self);
  self->delayed_send(self, std::max(due, nanoseconds{0}), actors::arrive_atom::value);
}

void submit(client_actor* self) {
  auto& s = self->state;
  const std::size_t i = s.next++;
  const load_request& r = (*s.requests)[i];
  const request_id id = s.id_base + r.spec.id;
  s.slot.emplace(id, i);
  s.out.record.requests[i].arrival = since_origin(self);
  messages::submit_request m;
  m.request = id;
  m.prompt = r.prompt;
  m.prompt_len = static_cast<std::uint32_t>(r.prompt.size());
  m.max_tokens = r.spec.output_tokens;
  m.stream = true;
  self->send(s.coordinator, actors::msg_atom::value, messages::pack(m));
  schedule(self);
}

void on_tokens(client_actor* self, const messages::token_batch& b) {
  auto& s = self->state;
  const auto it = s.slot.find(b.request);
  if (it == s.slot.end()) return;
  auto& rec = s.out.record.requests[it->second];
  auto& toks = s.out.tokens[it->second];
  const nanoseconds now = since_origin(self);
  for (std::size_t k = 0; k < b.tokens.size(); ++k) {
    if (b.first_index + k != toks.size()) continue;  // not the next one: a duplicate
    toks.push_back(b.tokens[k]);
    rec.token_times.push_back(now);
  }
  if (!rec.token_times.empty()) {
    rec.first_token = rec.token_times.front();
    rec.finish = rec.token_times.back();
  }
}

void on_done(client_actor* self, const messages::request_done& d) {
  auto& s = self->state;
  const auto it = s.slot.find(d.request);
  if (it == s.slot.end()) return;
  auto& rec = s.out.record.requests[it->second];
  rec.completed = d.status == messages::request_status::ok;
  rec.decode_instance = d.instance;
  if (!rec.completed) s.out.errors[it->second] = d.error.empty() ? "failed" : d.error;
  s.slot.erase(it);
  self->send(s.waiter, actors::tick_atom::value, ++s.out.finished);
  if (s.out.finished == s.requests->size()) {
    s.out.drained = true;
    hand_over(self);
  }
}

caf::behavior load_client(client_actor* self, const std::vector<load_request>* requests,
                          caf::actor coordinator, caf::actor waiter, request_id id_base,
                          std::shared_ptr<load_outcome> result) {
  auto& s = self->state;
  s.result = std::move(result);
  s.requests = requests;
  s.coordinator = std::move(coordinator);
  s.waiter = std::move(waiter);
  s.id_base = id_base;
  s.origin = actors::now(self);
  s.out.record.requests.resize(requests->size());
  s.out.tokens.resize(requests->size());
  s.out.errors.resize(requests->size());
  for (std::size_t i = 0; i < requests->size(); ++i) {
    auto& rec = s.out.record.requests[i];
    rec.id = (*requests)[i].spec.id;
    rec.prompt_tokens = (*requests)[i].spec.prompt_tokens;
    rec.max_tokens = (*requests)[i].spec.output_tokens;
  }
  // A coordinator that goes away ends the run at once: what has not ended
  // failed with it.
  self->monitor(s.coordinator);
  self->set_down_handler([self](caf::down_msg& dm) {
    auto& st = self->state;
    if (dm.source != st.coordinator.address()) return;
    for (const auto& [id, i] : st.slot) st.out.errors[i] = "lost the coordinator";
    for (std::size_t i = st.next; i < st.requests->size(); ++i) {
      st.out.errors[i] = "lost the coordinator before it was sent";
    }
    hand_over(self);
  });
  schedule(self);
  return {
      [self](actors::arrive_atom) { submit(self); },
      [self](actors::msg_atom, const messages::capnp_blob& b) {
        if (b.type == static_cast<std::uint16_t>(messages::msg_type::token_batch)) {
          (void)messages::with_decoded<messages::token_batch>(
              b, [self](const messages::token_batch& m) { on_tokens(self, m); });
        } else if (b.type == static_cast<std::uint16_t>(messages::msg_type::request_done)) {
          (void)messages::with_decoded<messages::request_done>(
              b, [self](const messages::request_done& m) { on_done(self, m); });
        }
      },
      // The drain limit passed: hand over what there is.
      [self](actors::stop_atom) { hand_over(self); },
  };
}

}  // namespace

std::vector<load_request> with_prompts(const workload::trace& trace, std::uint64_t seed) {
  std::mt19937_64 rng{seed};
  std::uniform_int_distribution<token_id> byte{0, 255};
  std::vector<load_request> out;
  out.reserve(trace.size());
  for (const auto& spec : trace) {
    load_request r{.spec = spec, .prompt = std::vector<token_id>(spec.prompt_tokens)};
    for (auto& t : r.prompt) t = byte(rng);
    out.push_back(std::move(r));
  }
  return out;
}

result<load_outcome> drive(caf::actor_system& sys, const caf::actor& coordinator,
                           const std::vector<load_request>& requests, request_id id_base,
                           nanoseconds drain,
                           const std::function<void(const load_progress&)>& progress) {
  if (requests.empty()) return load_outcome{};
  caf::scoped_actor waiter{sys};
  auto shared = std::make_shared<load_outcome>();
  auto client = sys.spawn(load_client, &requests, coordinator, caf::actor{waiter}, id_base, shared);
  const nanoseconds horizon = requests.back().spec.arrival + drain;
  waiter->delayed_send(client, horizon, actors::stop_atom::value);
  // The client answers stop once, then quits; meanwhile it says how many
  // requests ended. (main()'s thread: the wall clock is fine here.)
  const auto start = std::chrono::steady_clock::now();
  load_progress p{.elapsed = nanoseconds{0},
                  .span = requests.back().spec.arrival,
                  .finished = 0,
                  .total = requests.size(),
                  .done = false};
  auto tell = [&] {
    if (!progress) return;
    p.elapsed = std::chrono::steady_clock::now() - start;
    progress(p);
  };
  bool over = false;
  waiter->receive_while([&over] { return !over; })(
      [&over](actors::stop_atom) { over = true; },
      [&](actors::tick_atom, std::size_t finished) {
        p.finished = finished;
        tell();
      },
      caf::after(std::chrono::milliseconds{500}) >> tell);
  p.done = true;
  tell();
  load_outcome out = std::move(*shared);
  nanoseconds makespan{0};
  for (const auto& r : out.record.requests) makespan = std::max(makespan, r.finish);
  out.record.makespan = makespan;
  return out;
}

}  // namespace accellm::daemon

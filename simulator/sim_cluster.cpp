#include "simulator/sim_cluster.hpp"

#include "actors/atoms.hpp"
#include "actors/clock.hpp"
#include "actors/system_config.hpp"
#include "actors/trace_hash.hpp"
#include "actors/tracer.hpp"
#include "actors/virtual_time.hpp"
#include "coordinator/coordinator.hpp"
#include "coordinator/policies/accellm.hpp"
#include "coordinator/policies/splitwise.hpp"
#include "coordinator/policies/vllm.hpp"
#include "device/model_spec.hpp"
#include "device/sim/sim_factory.hpp"
#include "messages/codec.hpp"
#include "worker/instance_manager.hpp"
#include "worker/worker.hpp"

#include <caf/all.hpp>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <map>
#include <memory>
#include <unordered_map>

namespace accellm::simulator {
namespace {

using std::chrono::nanoseconds;

// Turns what the coordinator observes into metrics records and the trace hash.
class recorder final : public coordinator::observer {
 public:
  recorder(const run_options& opt, std::uint64_t origin_ns, std::uint64_t blocks,
           std::uint64_t bytes_per_block)
      : opt_(opt), origin_(origin_ns) {
    const auto n = opt.cluster.instances;
    rec_.instances.resize(n);
    role_.assign(n, messages::role::mixed);
    role_since_.assign(n, 0);
    // About 200 utilisation windows over the arrivals, whole milliseconds, at
    // least 100 ms: fine enough for a timeline, small enough for a long run.
    const nanoseconds span = opt.trace.empty() ? nanoseconds{0} : opt.trace.back().arrival;
    // One record per request of the trace, made here (a long run would
    // otherwise allocate one per finished request between everything else);
    // a request that never finishes keeps its spec's fields.
    rec_.requests.resize(opt.trace.size());
    slot_.reserve(opt.trace.size());
    reported_.assign(opt.trace.size(), false);
    for (std::size_t i = 0; i < opt.trace.size(); ++i) {
      const auto& spec = opt.trace[i];
      auto& r = rec_.requests[i];
      r.id = spec.id;
      r.prompt_tokens = spec.prompt_tokens;
      r.max_tokens = spec.output_tokens;
      r.arrival = spec.arrival;
      slot_.emplace(spec.id, i);
    }
    rec_.busy_window =
        std::max<nanoseconds>(std::chrono::milliseconds{100},
                              std::chrono::duration_cast<std::chrono::milliseconds>(span / 200));
    for (instance_id i = 0; i < n; ++i) {
      auto& r = rec_.instances[i];
      r.id = i;
      r.name = "i" + std::to_string(i);
      r.total_blocks = blocks;
      r.bytes_per_block = bytes_per_block;
      r.price_per_hour = opt.cluster.price_per_hour;
      r.power_watts = opt.cluster.power_watts;
    }
  }

  void on_iteration(const messages::iteration_report& m) override {
    auto& r = rec_.instances.at(m.instance);
    // A multi-step iteration counts as its steps (what one-step batching runs).
    const std::uint64_t steps = std::max<std::size_t>(1, m.step_ends_ns.size());
    r.busy += nanoseconds{m.duration_ns};
    r.iterations += steps;
    r.kv_bytes_sent = m.load.kv_bytes_sent;
    r.replicas_evicted += m.evicted_replicas.size();
    r.preemptions += m.preempted.size();
    r.rejected_messages = m.load.rejected_messages;
    const nanoseconds t{m.start_ns + m.duration_ns - origin_};
    if (r.memory.empty() || r.memory.back().primary_blocks != m.load.primary_blocks ||
        r.memory.back().replica_blocks != m.load.replica_blocks) {
      r.memory.push_back({t, m.load.primary_blocks, m.load.replica_blocks});
    }
    add_busy(r, nanoseconds{m.start_ns - origin_}, nanoseconds{m.duration_ns});
    last_ = std::max(last_, t);
    hash_.add(m.instance).add(m.start_ns - origin_).add(m.duration_ns);
    hash_.add(m.load.primary_blocks).add(m.load.replica_blocks);
    for (const auto& run : m.runs) hash_.add(run.request).add(run.first_index).add(run.count);
    if (steps > 1) hash_.add(steps);
    hash_.event();
    iterations_ += steps;
  }

  void on_role(instance_id i, messages::role role, std::string_view pool,
               std::uint64_t time_ns) override {
    // The label an instance starts with (a borrowed instance changes it for a while).
    if (rec_.instances[i].pool.empty()) rec_.instances[i].pool = pool;
    close_role(i, time_ns - origin_);
    role_[i] = role;
    auto& spans = rec_.instances[i].roles;
    const nanoseconds t{time_ns - origin_};
    if (!spans.empty() && spans.back().start == t) spans.pop_back();  // superseded at once
    if (!spans.empty()) spans.back().end = t;
    spans.push_back({.start = t, .end = t, .role = role, .pool = std::string{pool}});
    hash_.add(i).add(static_cast<std::uint64_t>(role)).add(time_ns - origin_).event();
  }

  void on_finished(const coordinator::request_timeline& t) override {
    const auto at = slot_.find(t.id);
    if (at == slot_.end()) return;  // not from the trace
    metrics::request_record& r = rec_.requests[at->second];
    if (reported_[at->second]) return;  // once only
    reported_[at->second] = true;
    r.id = t.id;
    r.prompt_tokens = t.prompt_len;
    r.max_tokens = t.max_tokens;
    r.arrival = nanoseconds{t.arrival_ns - origin_};
    if (t.tokens > 0) {
      r.first_token = nanoseconds{t.first_token_ns - origin_};
      r.finish = nanoseconds{t.last_token_ns - origin_};
      if (opt_.token_times) {
        r.token_times.reserve(t.token_ns.size());
        for (const auto ns : t.token_ns) r.token_times.push_back(nanoseconds{ns - origin_});
      }
    }
    r.prefill_instance = t.prefill_instance;
    r.decode_instance = t.decode_instance;
    r.moves = t.moves;
    r.preemptions = t.preemptions;
    r.completed = t.completed;
    ++finished_;
    hash_.add(t.id).add(t.tokens == 0 ? 0 : t.last_token_ns - origin_).add(t.moves).event();
  }

  void on_takeover(const coordinator::takeover_event& e) override {
    open_takeover_[e.request] = rec_.takeovers.size();
    rec_.takeovers.push_back({.request = e.request,
                              .lost = e.lost,
                              .to = e.to,
                              .from_replica = e.from_replica,
                              .context_len = e.context_len,
                              .at = nanoseconds{e.time_ns - origin_},
                              .resumed = metrics::never});
    hash_.add(e.request).add(e.to).add(e.from_replica ? 1 : 0).add(e.time_ns - origin_).event();
  }

  void on_resumed(request_id id, std::uint64_t resume_ns) override {
    const auto it = open_takeover_.find(id);
    if (it == open_takeover_.end()) return;
    metrics::takeover_record& t = rec_.takeovers[it->second];
    t.resumed = t.at + nanoseconds{resume_ns};
    open_takeover_.erase(it);
  }

  // Spreads one iteration over the utilisation windows it overlaps.
  void add_busy(metrics::instance_record& r, nanoseconds start, nanoseconds duration) const {
    const nanoseconds w = rec_.busy_window;
    for (nanoseconds t = start, end = start + duration; t < end;) {
      const auto k = static_cast<std::size_t>(t / w);
      const nanoseconds upto = std::min(end, w * static_cast<std::int64_t>(k + 1));
      if (r.busy_windows.size() <= k) r.busy_windows.resize(k + 1, nanoseconds{0});
      r.busy_windows[k] += upto - t;
      t = upto;
    }
  }

  void close_role(instance_id i, std::uint64_t t) {
    const auto idx = static_cast<std::size_t>(role_[i]);
    rec_.instances[i].time_in_role[idx] += nanoseconds{t - role_since_[i]};
    role_since_[i] = t;
  }

  metrics::run_record finish(nanoseconds end) {
    for (instance_id i = 0; i < rec_.instances.size(); ++i) {
      close_role(i, static_cast<std::uint64_t>(end.count()));
      if (auto& spans = rec_.instances[i].roles; !spans.empty()) {
        spans.back().end = std::max(end, spans.back().start);
      }
    }
    rec_.makespan = end;
    return std::move(rec_);
  }

  nanoseconds last() const { return last_; }
  std::size_t finished() const { return finished_; }
  const actors::trace_hash& hash() const { return hash_; }
  std::uint64_t iterations() const { return iterations_; }

 private:
  const run_options& opt_;
  std::uint64_t origin_;
  metrics::run_record rec_;
  std::vector<messages::role> role_;
  std::vector<std::uint64_t> role_since_;
  std::unordered_map<request_id, std::size_t> slot_;  ///< request id -> index in rec_.requests
  std::vector<bool> reported_;                        ///< by index in rec_.requests
  std::size_t finished_ = 0;
  actors::trace_hash hash_;
  nanoseconds last_{0};
  std::uint64_t iterations_ = 0;
  std::unordered_map<request_id, std::size_t> open_takeover_;  ///< not resumed yet
};

struct client_state {
  const workload::trace* trace = nullptr;
  caf::actor coordinator;
  std::size_t next = 0;
  std::size_t done = 0;
  actors::time_point origin;
  static inline const char* name = "trace_client";
};

// Replays the trace: each request is submitted at its arrival time.
caf::behavior trace_client(caf::stateful_actor<client_state>* self, const workload::trace* trace,
                           caf::actor coord) {
  self->state.trace = trace;
  self->state.coordinator = std::move(coord);
  self->state.origin = actors::now(self);
  auto schedule = [self] {
    auto& s = self->state;
    if (s.next >= s.trace->size()) return;
    const auto due = s.origin + (*s.trace)[s.next].arrival;
    self->delayed_send(self, due - actors::now(self), actors::arrive_atom::value);
  };
  schedule();
  return {
      [self, schedule](actors::arrive_atom) {
        auto& s = self->state;
        const auto& spec = (*s.trace)[s.next++];
        messages::submit_request m;
        m.request = spec.id;
        m.prompt_len = spec.prompt_tokens;
        m.max_tokens = spec.output_tokens;
        m.arrival_ns = static_cast<std::uint64_t>(actors::now(self).time_since_epoch().count());
        self->send(s.coordinator, actors::msg_atom::value, messages::pack(m));
        schedule();
      },
      [self](actors::msg_atom, const messages::capnp_blob&) { ++self->state.done; },
  };
}

// Injects the run's faults: at each one's time its instance's actors stop;
// the coordinator hears of it at once (kill) or after `detection` (stop). An
// actor of its own, so the faults are events in virtual time like any other.
caf::behavior fault_injector(caf::event_based_actor* self, std::vector<fault> faults,
                             std::vector<caf::actor> managers, std::vector<caf::actor> workers,
                             caf::actor coord, nanoseconds detection) {
  for (std::size_t i = 0; i < faults.size(); ++i) {
    self->delayed_send(self, faults[i].at, actors::arrive_atom::value, i);
  }
  return {
      [=](actors::arrive_atom, std::size_t i) {
        const fault& f = faults[i];
        self->send_exit(managers[f.instance], caf::exit_reason::kill);
        self->send_exit(workers[f.instance], caf::exit_reason::kill);
        const nanoseconds after = f.what == fault::kind::kill ? nanoseconds{0} : detection;
        self->delayed_send(coord, after, actors::lost_atom::value, f.instance);
      },
  };
}

status check_faults(const std::vector<fault>& faults, std::uint32_t instances) {
  std::vector<bool> seen(instances, false);
  for (const fault& f : faults) {
    if (f.instance >= instances) {
      return fail(errc::config, "fault: instance " + std::to_string(f.instance) +
                                    " is not in the cluster (" + std::to_string(instances) +
                                    " instances)");
    }
    if (seen[f.instance]) {
      return fail(errc::config,
                  "fault: instance " + std::to_string(f.instance) + " fails more than once");
    }
    seen[f.instance] = true;
  }
  return {};
}

result<std::shared_ptr<coordinator::policy>> make_policy(const run_options& o) {
  using ptr = std::shared_ptr<coordinator::policy>;
  const auto& p = o.policy;
  if (p.name == "vllm") return ptr{std::make_shared<coordinator::vllm_policy>(p.chunked_prefill)};
  if (p.name == "splitwise") {
    return ptr{std::make_shared<coordinator::splitwise_policy>(
        p.prompt_instances, o.cluster.policy.splitwise_prompt_max_pending_tokens)};
  }
  if (p.name == "accellm") {
    return ptr{std::make_shared<coordinator::accellm_policy>(
        o.cluster.policy.splitwise_prompt_max_pending_tokens)};
  }
  return fail(errc::config, "unknown policy '" + p.name + "' (known: vllm, splitwise, accellm)");
}

// Uncontended times of a request alone on one instance (Splitwise's slowdown
// baselines): its prompt as one prefill, one decode step at its mean context.
void set_baselines(const device::sim::cost_model& cost, std::vector<metrics::request_record>& rs) {
  std::unordered_map<std::uint32_t, nanoseconds> prefill_memo;  // by prompt length
  device::batch b;
  b.items.resize(1);
  for (auto& r : rs) {
    auto [it, fresh] = prefill_memo.try_emplace(r.prompt_tokens);
    if (fresh) {
      b.items[0] = {.request = 1,
                    .kind = device::phase::prefill,
                    .context = 0,
                    .num_tokens = r.prompt_tokens,
                    .tokens = {},
                    .wants_output = true};
      auto ttft = cost.iteration_time(b);
      it->second = ttft ? *ttft : nanoseconds{0};
    }
    r.baseline_ttft = it->second;
    b.items[0] = {.request = 1,  // a decode step is cheap to price: no memo
                  .kind = device::phase::decode,
                  .context = r.prompt_tokens + r.max_tokens / 2,
                  .num_tokens = 1,
                  .tokens = {},
                  .wants_output = true};
    auto tbt = cost.iteration_time(b);
    r.baseline_tbt = tbt ? *tbt : nanoseconds{0};
  }
}

struct cluster_actors {
  caf::actor coordinator;
  caf::actor client;
  caf::actor injector;  ///< only with faults
  std::vector<caf::actor> managers, workers;
  std::vector<caf::actor> all() const {
    std::vector<caf::actor> out{coordinator, client};
    if (injector) out.push_back(injector);
    out.insert(out.end(), managers.begin(), managers.end());
    out.insert(out.end(), workers.begin(), workers.end());
    return out;
  }
};

}  // namespace

result<fault> parse_fault(std::string_view text) {
  auto bad = [text](std::string_view why) {
    return fail(errc::invalid_argument,
                "fault '" + std::string{text} + "': " + std::string{why} +
                    " (KIND:INSTANCE@SECONDS, KIND kill or stop, e.g. kill:3@10)");
  };
  const auto colon = text.find(':');
  const auto at = text.find('@');
  if (colon == std::string_view::npos || at == std::string_view::npos || at < colon) {
    return bad("not KIND:INSTANCE@SECONDS");
  }
  fault f;
  const std::string_view name = text.substr(0, colon);
  const auto kind = config::parse_fault_kind(name);
  if (!kind) return bad("unknown kind '" + std::string{name} + "'");
  f.what = *kind;
  const std::string_view inst = text.substr(colon + 1, at - colon - 1);
  const auto [end, ec] = std::from_chars(inst.data(), inst.data() + inst.size(), f.instance);
  if (inst.empty() || ec != std::errc{} || end != inst.data() + inst.size()) {
    return bad("instance '" + std::string{inst} + "' is not a number");
  }
  const std::string secs{text.substr(at + 1)};
  char* stop = nullptr;
  const double s = std::strtod(secs.c_str(), &stop);
  if (secs.empty() || stop != secs.c_str() + secs.size() || !(s >= 0) || s > 1e7) {
    return bad("time '" + secs + "' is not a number of seconds >= 0");
  }
  f.at = config::fault_time(s);
  return f;
}

result<run_result> run_simulation(const run_options& o) {
  const auto& c = o.cluster;
  const device::model_spec* model = device::find_model(c.model);
  if (model == nullptr) return fail(errc::config, "unknown model '" + c.model + "'");
  auto dev = device::sim::make_sim_device(c.device, *model, c.tp, config::sim_options_of(c));
  if (!dev) return std::move(dev).err();
  auto pol = make_policy(o);
  if (!pol) return std::move(pol).err();
  ACCELLM_TRY(check_faults(o.faults, c.instances));
  std::shared_ptr<const device::sim::cost_model> cost = std::move(dev->cost);

  actors::system_config cfg{actors::clock_mode::virtual_time};
  caf::actor_system sys{cfg};
  auto vt = actors::virtual_time::attach(sys);
  if (!vt) return std::move(vt).err();
  const auto origin = vt->now();
  const auto origin_ns = static_cast<std::uint64_t>(origin.time_since_epoch().count());
  recorder rec{o, origin_ns, dev->kv.total_blocks, dev->kv.bytes_per_block};
  std::unique_ptr<actors::tracer> tracer;
  if (!o.trace_file.empty()) {
    // Blocking when the writer falls behind: a simulation's log is complete.
    auto t = actors::tracer::open({.path = o.trace_file,
                                   .node = "sim",
                                   .clock = "virtual",
                                   .origin = {},
                                   .opened = origin,
                                   .block_when_full = true,
                                   .queue_limit = std::size_t{1} << 16});
    if (!t) return std::move(t).err();
    tracer = std::move(*t);
  }
  const auto point = [&](std::string actor, std::string node) {
    return tracer ? tracer->point(std::move(actor), std::move(node)) : actors::trace_point{};
  };

  cluster_actors a;
  a.coordinator = coordinator::spawn_coordinator(sys,
                                                 {.instances = c.instances,
                                                  .blocks_per_instance = dev->kv.total_blocks,
                                                  .block_tokens = dev->kv.block_tokens,
                                                  .token_times = o.token_times,
                                                  .token_ids = false,
                                                  .cluster_token = {},
                                                  .model = {},
                                                  .vocab = 0,
                                                  .max_context = 0,
                                                  .log = nullptr,
                                                  .trace = point("coordinator", "coordinator")},
                                                 *pol, &rec);
  const std::uint64_t kv_per_token = model->kv_bytes_per_token(dev->kv.kv_dtype);
  for (instance_id i = 0; i < c.instances; ++i) {
    a.managers.push_back(worker::spawn_instance_manager(
        sys, {.id = i,
              .total_blocks = dev->kv.total_blocks,
              .block_tokens = dev->kv.block_tokens,
              .bytes_per_block = dev->kv.bytes_per_block,
              .max_batch_tokens = c.batching.max_batch_tokens,
              .max_batch_size = c.batching.max_batch_size,
              .chunked_prefill = o.policy.chunked_prefill,
              .chunk_tokens = c.batching.chunk_tokens,
              .sync_decode_kv = c.policy.accellm_sync_decode_kv,
              .decode_steps = c.batching.decode_steps,
              .copy_stall = std::chrono::milliseconds{10},
              .device_memory = false,
              .layers = model->layers,
              .trace = point("im:" + std::to_string(i), "i" + std::to_string(i))}));
    a.workers.push_back(worker::spawn_sim_worker(
        sys, {.id = i,
              .cost = cost,
              .model = *model,
              .tp = c.tp,
              .kv_bytes_per_token = kv_per_token,
              .link = {.bandwidth = c.link.bandwidth, .latency = c.link.latency},
              .trace = point("worker:" + std::to_string(i), "i" + std::to_string(i))}));
  }
  for (instance_id i = 0; i < c.instances; ++i) {
    caf::anon_send(a.managers[i], actors::peers_atom::value, a.coordinator, a.workers[i]);
    // Simulated KV rows carry no bytes to import (kv_replica's job on a real
    // device): they go straight to the partner's instance_manager, which keeps
    // the replica's blocks.
    caf::anon_send(a.workers[i], actors::peers_atom::value, a.managers[i], a.managers);
  }
  caf::anon_send(a.coordinator, actors::peers_atom::value, a.managers);
  vt->run();  // deliver the set-up before the first arrival
  a.client = sys.spawn(trace_client, &o.trace, a.coordinator);
  if (!o.faults.empty()) {
    const auto detection = std::chrono::milliseconds{c.daemon.timeout_ms + c.daemon.heartbeat_ms};
    a.injector = sys.spawn(fault_injector, o.faults, a.managers, a.workers, a.coordinator,
                           nanoseconds{detection});
  }

  const nanoseconds last_arrival = o.trace.empty() ? nanoseconds{0} : o.trace.back().arrival;
  run_result out;
  const auto deadline = origin + last_arrival + o.drain_limit;
  if (o.progress) {
    // Stops at every hundredth of the arrivals' span, then drains in the
    // same steps until every request is done.
    const nanoseconds step =
        std::max(last_arrival / 100, nanoseconds{std::chrono::milliseconds{1}});
    auto t = origin;
    while (t < deadline && rec.finished() < o.trace.size()) {
      t = std::min(t + step, deadline);
      out.events += vt->run_until(t);
      o.progress({.simulated = t - origin,
                  .horizon = last_arrival,
                  .finished = rec.finished(),
                  .total = o.trace.size(),
                  .events = out.events});
    }
  }
  out.events += vt->run_until(deadline);
  out.drained = rec.finished() == o.trace.size();
  const nanoseconds end = out.drained ? rec.last() : last_arrival + o.drain_limit;
  out.simulated = end;
  out.trace_hash = rec.hash().value();
  out.iterations = rec.iterations();
  out.record = rec.finish(end);
  set_baselines(*cost, out.record.requests);
  out.record.policy = std::string{(*pol)->name()};
  out.record.setting = (*pol)->setting();
  out.record.offered_rate = o.offered_rate;
  if (auto s = vt->shutdown(a.all()); !s) return std::move(s).err();
  if (tracer) {
    ACCELLM_TRY(tracer->close("the simulation ended"));
    out.traced = tracer->totals().events;
  }
  return out;
}

}  // namespace accellm::simulator

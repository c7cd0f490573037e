#include "coordinator/http/live_metrics.hpp"

#include <algorithm>
#include <array>

namespace accellm::coordinator::http {
namespace {

double seconds(std::uint64_t from_ns, std::uint64_t to_ns) {
  return static_cast<double>(to_ns - from_ns) / 1e9;
}

constexpr std::array<messages::role, 3> all_roles = {messages::role::prefill,
                                                     messages::role::decode, messages::role::mixed};

}  // namespace

std::vector<double> live_metrics::latency_buckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1,  0.25, 0.5,
          0.75,  1.0,    2.5,   5.0,  7.5,   10.0, 20.0,  30.0, 60.0};
}

live_metrics::live_metrics()
    : ttft_(latency_buckets()),
      tbt_(latency_buckets()),
      jct_(latency_buckets()),
      resume_(latency_buckets()) {}

void live_metrics::on_iteration(const messages::iteration_report& report) {
  const std::lock_guard lock{mutex_};
  instance_state& inst = instance_locked(report.instance);
  inst.reported = true;
  if (!inst.role) inst.role = report.role;
  inst.decode_requests = report.decode_requests;
  inst.prefill_tokens = report.prefill_tokens;
  inst.primary_blocks = report.load.primary_blocks;
  inst.replica_blocks = report.load.replica_blocks;
  inst.free_blocks = report.load.free_blocks;
  inst.total_blocks = report.load.kv_blocks_total;
  inst.kv_bytes_sent = report.load.kv_bytes_sent;
  inst.kv_bytes_shared = report.load.kv_bytes_shared;
  inst.kv_bytes_copied = report.load.kv_bytes_copied;
  inst.kv_bytes_dropped = report.load.kv_bytes_dropped;
  inst.replicas_dropped += report.evicted_replicas.size();
  inst.iterations = report.load.iterations;
  // Busy time is the worker's running total (load.busy_ns, the sum of its
  // iterations' duration_ns), not a sum of duration_ns kept here, for the
  // reasons iterations_total uses load.iterations: a report the coordinator
  // never accepted (fenced, or dropped on the way) costs nothing, the next
  // one carries the total, and the counter is exactly what the instance
  // measured. A worker that rejoins under a new id starts a fresh instance
  // manager, so its totals start again from 0 under the same `instance`
  // label after the old id's series were removed (on_lost): a counter reset,
  // which Prometheus' rate() and the load scraper read as such, never a
  // second series that would double count.
  inst.busy_ns = report.load.busy_ns;
}

void live_metrics::on_role(instance_id instance, messages::role role, std::string_view /*pool*/,
                           std::uint64_t /*time_ns*/) {
  const std::lock_guard lock{mutex_};
  instance_locked(instance).role = role;
}

void live_metrics::on_finished(const request_timeline& request) {
  const std::lock_guard lock{mutex_};
  ++(request.completed ? finished_ : failed_);
  prompt_tokens_ += request.prompt_len;
  generation_tokens_ += request.tokens;
  if (request.tokens == 0) return;
  if (request.first_token_ns >= request.arrival_ns) {
    ttft_.observe(seconds(request.arrival_ns, request.first_token_ns));
  }
  for (std::size_t i = 1; i < request.token_ns.size(); ++i) {
    if (request.token_ns[i] >= request.token_ns[i - 1]) {
      tbt_.observe(seconds(request.token_ns[i - 1], request.token_ns[i]));
    }
  }
  if (request.completed && request.last_token_ns >= request.arrival_ns) {
    jct_.observe(seconds(request.arrival_ns, request.last_token_ns));
  }
}

void live_metrics::on_joined(instance_id instance, std::string_view name,
                             std::uint64_t bytes_per_block) {
  set_instance(instance, std::string{name}, bytes_per_block);
  const std::lock_guard lock{mutex_};
  live_.insert(instance);
}

void live_metrics::on_lost(instance_id instance) {
  remove_instance(instance);
  const std::lock_guard lock{mutex_};
  if (live_.erase(instance) != 0) ++lost_;
}

void live_metrics::on_fenced(instance_id /*instance*/, messages::msg_type /*type*/) {
  const std::lock_guard lock{mutex_};
  ++fenced_;
}

std::uint32_t live_metrics::live_instances() const {
  const std::lock_guard lock{mutex_};
  return static_cast<std::uint32_t>(live_.size());
}

void live_metrics::on_accepted(request_id /*id*/) {
  const std::lock_guard lock{mutex_};
  ++submitted_;
}

void live_metrics::on_takeover(const takeover_event& event) {
  const std::lock_guard lock{mutex_};
  ++(event.from_replica ? from_replica_ : event.context_len == 0 ? from_prompt_ : from_recompute_);
}

void live_metrics::on_resumed(request_id /*id*/, std::uint64_t resume_ns) {
  const std::lock_guard lock{mutex_};
  resume_.observe(static_cast<double>(resume_ns) * 1e-9);
}

void live_metrics::set_instance(instance_id id, std::string name, std::uint64_t bytes_per_block) {
  const std::lock_guard lock{mutex_};
  instance_state& inst = instance_locked(id);
  inst.name = std::move(name);
  inst.bytes_per_block = bytes_per_block;
}

void live_metrics::remove_instance(instance_id id) {
  const std::lock_guard lock{mutex_};
  instances_.erase(id);
}

std::string live_metrics::render() const {
  prometheus_writer w;
  {
    const std::lock_guard lock{mutex_};
    render_requests_locked(w);
    for (const auto& [id, inst] : instances_) render_instance_locked(w, inst);
  }
  return w.str();
}

live_metrics::instance_state& live_metrics::instance_locked(instance_id id) {
  auto [it, added] = instances_.try_emplace(id);
  if (added) it->second.name = std::to_string(id);
  return it->second;
}

void live_metrics::render_requests_locked(prometheus_writer& w) const {
  auto num = [](std::uint64_t v) { return static_cast<double>(v); };
  w.add_counter("accellm_requests_submitted_total",
                "Requests the HTTP front end handed to the coordinator.", {}, num(submitted_));
  w.add_counter("accellm_requests_finished_total", "Requests that completed.", {}, num(finished_));
  w.add_counter("accellm_requests_failed_total",
                "Requests that ended without completing (failed or cancelled).", {}, num(failed_));
  w.add_counter("accellm_prompt_tokens_total", "Prompt tokens of finished requests.", {},
                num(prompt_tokens_));
  w.add_counter("accellm_generation_tokens_total", "Output tokens of finished requests.", {},
                num(generation_tokens_));
  w.add_histogram("accellm_time_to_first_token_seconds",
                  "Time from arrival to the first output token.", {}, ttft_);
  w.add_histogram("accellm_inter_token_latency_seconds",
                  "Time between consecutive output tokens of a request (TBT).", {}, tbt_);
  w.add_histogram("accellm_e2e_request_latency_seconds",
                  "Time from arrival to the last output token of completed requests (JCT).", {},
                  jct_);
  w.add_counter("accellm_takeovers_total",
                "Requests of a lost instance that went on elsewhere, by what they resumed from.",
                {{"resumed_from", "replica"}}, num(from_replica_));
  w.add_counter("accellm_takeovers_total", "", {{"resumed_from", "recompute"}},
                num(from_recompute_));
  w.add_counter("accellm_takeovers_total", "", {{"resumed_from", "prompt"}}, num(from_prompt_));
  w.add_histogram("accellm_takeover_resume_seconds",
                  "Time from a takeover to the request's next output token.", {}, resume_);
  w.add_gauge("accellm_instances", "Instances known to the coordinator.", {},
              num(instances_.size()));
  w.add_counter("accellm_instances_lost_total",
                "Instances declared lost (their worker died, hung or was cut off).", {},
                num(lost_));
  w.add_counter("accellm_fenced_messages_total",
                "Messages from instances already declared lost, dropped (fencing).", {},
                num(fenced_));
}

void live_metrics::render_instance_locked(prometheus_writer& w, const instance_state& inst) const {
  const std::string_view name = inst.name;
  if (inst.role) {
    for (const messages::role r : all_roles) {
      w.add_gauge("accellm_instance_role", "Current role of an instance (1) and the others (0).",
                  {{"instance", name}, {"role", messages::to_string(r)}}, *inst.role == r ? 1 : 0);
    }
  }
  if (!inst.reported) return;
  auto num = [](std::uint64_t v) { return static_cast<double>(v); };
  w.add_gauge("accellm_instance_batch_decode_requests",
              "Decode requests in the instance's last iteration.", {{"instance", name}},
              num(inst.decode_requests));
  w.add_gauge("accellm_instance_batch_prefill_tokens",
              "Prefill tokens in the instance's last iteration.", {{"instance", name}},
              num(inst.prefill_tokens));
  w.add_gauge("accellm_instance_kv_bytes", "KV cache bytes held, primary copies and replicas.",
              {{"instance", name}, {"copy", "primary"}},
              num(inst.primary_blocks * inst.bytes_per_block));
  w.add_gauge("accellm_instance_kv_bytes", "", {{"instance", name}, {"copy", "replica"}},
              num(inst.replica_blocks * inst.bytes_per_block));
  const double used = num(inst.total_blocks - std::min(inst.free_blocks, inst.total_blocks));
  w.add_gauge("accellm_kv_cache_usage_perc", "Share of the KV cache in use (0..1).",
              {{"instance", name}}, inst.total_blocks == 0 ? 0.0 : used / num(inst.total_blocks));
  w.add_counter("accellm_instance_kv_sent_bytes_total", "KV bytes streamed to partners.",
                {{"instance", name}}, num(inst.kv_bytes_sent));
  w.add_counter("accellm_instance_kv_shared_bytes_total",
                "Of the KV bytes streamed to partners, those that went through a same-node "
                "shared ring.",
                {{"instance", name}}, num(inst.kv_bytes_shared));
  w.add_counter("accellm_instance_kv_copied_bytes_total",
                "Of the KV bytes streamed to partners, those the device copied out on its own "
                "thread for want of pinned host memory ([worker] kv_pinned_mib = 0, or decode "
                "rows that found the pool full).",
                {{"instance", name}}, num(inst.kv_bytes_copied));
  w.add_counter("accellm_instance_kv_dropped_bytes_total",
                "KV bytes of prompts' layer groups the device had no pinned host memory for "
                "and did not send: their copies were given up ([worker] kv_pinned_mib).",
                {{"instance", name}}, num(inst.kv_bytes_dropped));
  w.add_counter("accellm_instance_replicas_dropped_total",
                "Redundant KV copies the instance dropped: for memory, or given up by a sender "
                "whose KV send queue to it was full.",
                {{"instance", name}}, num(inst.replicas_dropped));
  w.add_counter("accellm_instance_iterations_total", "Iterations the instance ran.",
                {{"instance", name}}, num(inst.iterations));
  w.add_counter("accellm_instance_busy_seconds_total",
                "Time the instance's device spent running iterations.", {{"instance", name}},
                static_cast<double>(inst.busy_ns) / 1e9);
}

}  // namespace accellm::coordinator::http

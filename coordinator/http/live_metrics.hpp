// live_metrics: the coordinator daemon's Prometheus counters. An observer
// (coordinator/observer.hpp) that the coordinator actor feeds, plus a few
// calls from the daemon and the HTTP front end; render() writes the whole
// exposition for GET /metrics.
//
// Metrics (prefix accellm_, names after vLLM's where one matches):
//   accellm_requests_submitted_total        on_accepted(): every client's, HTTP or CAF
//   accellm_requests_finished_total         on_finished(), completed
//   accellm_requests_failed_total           on_finished(), not completed
//   accellm_prompt_tokens_total             prompt tokens of finished requests
//   accellm_generation_tokens_total         output tokens of finished requests
//   accellm_time_to_first_token_seconds     histogram: arrival -> first token
//   accellm_inter_token_latency_seconds     histogram: between consecutive
//       tokens (TBT); only from requests whose timeline has token_ns
//   accellm_e2e_request_latency_seconds     histogram: arrival -> last token
//       (JCT) of completed requests
//   accellm_takeovers_total{resumed_from=replica|recompute|prompt}
//       on_takeover(): requests of a lost instance that went on elsewhere,
//       from the copy their partner held, by recomputing their context, or
//       from their prompt (no token yet)
//   accellm_takeover_resume_seconds         histogram: a takeover to the
//       request's next token
//   accellm_instances                       instances known
//   accellm_instances_lost_total            on_lost(): instances declared lost
//   accellm_fenced_messages_total           on_fenced(): messages from instances
//       already declared lost, dropped
// and per instance (label instance="<name>"), once it reported:
//   accellm_instance_role{role=prefill|decode|mixed}  1 for the current role, else 0
//   accellm_instance_batch_decode_requests  last iteration's decode requests
//   accellm_instance_batch_prefill_tokens   last iteration's prefill tokens
//   accellm_instance_kv_bytes{copy=primary|replica}   blocks x bytes_per_block
//   accellm_kv_cache_usage_perc             used blocks / all blocks (0..1)
//   accellm_instance_kv_sent_bytes_total    KV bytes streamed to partners
//   accellm_instance_kv_shared_bytes_total  ... of them through a same-node ring
//   accellm_instance_kv_copied_bytes_total  ... of them copied out on the device
//       thread, its pinned pool full (cuda workers)
//   accellm_instance_replicas_dropped_total copies dropped here (memory
//       pressure, or abandoned by the sender's KV flow control)
//   accellm_instance_iterations_total       iterations run
//   accellm_instance_busy_seconds_total     time its device spent in
//       iterations (the report's load.busy_ns; see on_iteration)
// Latency buckets: latency_buckets(), 1 ms .. 60 s. An instance that reports
// before set_instance() (or on_joined) is named by its id ("3") with 0
// bytes per block until it is named.
//
// Thread contract: every member function may be called from any thread. One
// mutex (mutex_) guards all the data: the observer calls come from the
// coordinator actor's thread, render() from HTTP
// threads, set_instance()/remove_instance() from the daemon
// or the coordinator. No call blocks on anything but that mutex.
#pragma once

#include "coordinator/http/prometheus.hpp"
#include "coordinator/observer.hpp"

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace accellm::coordinator::http {

class live_metrics final : public observer {
 public:
  /// Upper bounds in seconds of the latency histograms: 1 ms .. 60 s.
  static std::vector<double> latency_buckets();

  live_metrics();

  void on_iteration(const messages::iteration_report& report) override;
  void on_role(instance_id instance, messages::role role, std::string_view pool,
               std::uint64_t time_ns) override;
  void on_finished(const request_timeline& request) override;
  /// set_instance(instance, name, bytes_per_block); counted as live.
  void on_joined(instance_id instance, std::string_view name,
                 std::uint64_t bytes_per_block) override;
  /// remove_instance(instance); no longer live.
  void on_lost(instance_id instance) override;

  /// The coordinator accepted a request (from any client).
  void on_accepted(request_id id) override;
  /// Counted by how the request goes on.
  void on_takeover(const takeover_event& event) override;
  /// Observed in accellm_takeover_resume_seconds.
  void on_resumed(request_id id, std::uint64_t resume_ns) override;
  /// Counted in accellm_fenced_messages_total.
  void on_fenced(instance_id instance, messages::msg_type type) override;
  /// A worker registered as instance `id`: its name (the `instance` label)
  /// and the bytes of one KV block. Keeps what was recorded for `id`. (The
  /// coordinator calls it through on_joined; daemons may call it directly.)
  void set_instance(instance_id id, std::string name, std::uint64_t bytes_per_block);
  /// Forgets instance `id` (it left the cluster); cluster-wide counters stay.
  void remove_instance(instance_id id);

  /// The Prometheus text exposition (version 0.0.4) of everything above.
  std::string render() const;
  /// Instances that joined and were not lost since (what /health reports).
  std::uint32_t live_instances() const;

 private:
  struct instance_state {
    std::string name;
    std::uint64_t bytes_per_block = 0;
    std::optional<messages::role> role;
    bool reported = false;  // an IterationReport arrived
    std::uint32_t decode_requests = 0;
    std::uint32_t prefill_tokens = 0;
    std::uint64_t primary_blocks = 0;
    std::uint64_t replica_blocks = 0;
    std::uint64_t free_blocks = 0;
    std::uint64_t total_blocks = 0;
    std::uint64_t kv_bytes_sent = 0;
    std::uint64_t kv_bytes_shared = 0;
    std::uint64_t kv_bytes_copied = 0;
    std::uint64_t kv_bytes_dropped = 0;
    std::uint64_t replicas_dropped = 0;  ///< summed evicted_replicas of its reports
    std::uint64_t iterations = 0;
    std::uint64_t busy_ns = 0;  ///< the worker's own total, load.busy_ns
  };

  instance_state& instance_locked(instance_id id);
  void render_requests_locked(prometheus_writer& w) const;
  void render_instance_locked(prometheus_writer& w, const instance_state& inst) const;

  mutable std::mutex mutex_;  // guards every member below
  std::uint64_t submitted_ = 0;
  std::uint64_t finished_ = 0;
  std::uint64_t failed_ = 0;
  std::uint64_t prompt_tokens_ = 0;
  std::uint64_t generation_tokens_ = 0;
  std::uint64_t from_replica_ = 0;    ///< takeovers resumed from the partner's copy
  std::uint64_t from_recompute_ = 0;  ///< ... by recomputing the context
  std::uint64_t from_prompt_ = 0;     ///< ... by prefilling the prompt again
  std::uint64_t lost_ = 0;            ///< instances declared lost
  std::uint64_t fenced_ = 0;          ///< messages from lost instances, dropped
  histogram ttft_;
  histogram tbt_;
  histogram jct_;
  histogram resume_;
  std::map<instance_id, instance_state> instances_;
  std::set<instance_id> live_;  ///< joined and not lost
};

}  // namespace accellm::coordinator::http

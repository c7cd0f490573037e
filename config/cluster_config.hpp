// cluster_config: what one simulated or real accellm cluster is (model,
// device, tensor-parallel degree, number of instances, the link between
// instances, batching limits, policy knobs, SLOs, price and power), and the
// TOML file that describes it.
//
// File layout (every key optional; deploy/examples/*.toml comment each one):
//
//   [cluster]           name, model, device, tp, instances, price_per_hour, power_watts
//   [link]              bandwidth_gb_per_s (1e9 bytes/s per direction per device), latency_us
//   [batching]          max_batch_tokens, max_batch_size, block_tokens, chunk_tokens,
//                       decode_steps
//   [policy.vllm]       chunked = "best" | "on" | "off"
//   [policy.splitwise]  prompt_instances = [..], prompt_max_pending_tokens
//   [policy.accellm]    sync_decode_kv
//   [slo]               ttft_ms, tbt_ms
//   [[faults]]          kind = "kill" | "stop", instance, at_s: failures `simulate`
//                       injects (as its --fault flag; daemons ignore them)
//   daemons only (accellm coordinator / worker / up; `simulate` ignores them):
//   [coordinator]       host, port (CAF), http_host, http_port, policy, http_threads,
//                       request_timeout_s, max_body_kib
//   [worker]            host (where its KV receiver listens), kv_port, device, cpu_compute,
//                       kv_ring_mib, gpu_memory_fraction, kv_window_mib, kv_queue_mib,
//                       kv_pinned_mib
//   [cuda]              graphs, prefill_attention, skinny_gemm, cublaslt_split_k,
//                       programmatic_launch, decode_attention_tile: how a cuda:N worker
//                       runs its model
//   [security]          token, tls, certificate, key, ca
//   [network]           heartbeat_ms, timeout_ms, max_message_mib
//   [log]               level
//
// Devices: the sim:* cost models, and for daemons the real `cpu` model and
// `cuda:N` (checked when a worker starts, not here).
//
// Parsing validates everything it can without running: unknown tables and
// keys, types, ranges, cross-field rules (instances even, prompt pool sizes
// inside 1..instances-1, chunk within the token budget) and that the device
// can hold the model at that TP degree (device::sim::make_sim_device). Every
// error is errc::config and names the file, the line where toml++ knows it,
// and the key path: "h100.toml:12: unknown key 'cluster.tpp' (known: ...)".
//
// Value types; the functions are pure apart from load_cluster_config (and
// sim:file: devices), which read files. Safe from any thread.
#pragma once

#include "common/result.hpp"
#include "device/sim/sim_factory.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace accellm::config {

/// The link one instance uses to copy KV to another (AcceLLM's partner,
/// Splitwise's token instance). Figures are per device of the TP group: each
/// of the tp devices has its own NIC, so an instance moves tp times this.
struct link_config {
  /// Bytes/s per direction between two instances, per device. Parsing fills
  /// in the device's hardware_spec inter_node.bandwidth when the file omits it.
  double bandwidth = 0;
  /// One-way fixed cost per transfer. Defaulted like bandwidth (inter_node.latency).
  std::chrono::nanoseconds latency{0};
};

/// Continuous-batching limits of every instance (SplitwiseSim's defaults).
struct batching_config {
  std::uint32_t max_batch_tokens =
      2048;  ///< token budget per iteration (prefill tokens + 1 per decode)
  std::uint32_t max_batch_size = 512;  ///< requests per iteration
  std::uint32_t block_tokens = 16;     ///< KV block size, tokens
  std::uint32_t chunk_tokens =
      512;  ///< chunked-prefill chunk (vLLM "chunked"); <= max_batch_tokens
  /// Multi-step decoding: decode steps per Execute of a decode-only batch,
  /// cut short when new work arrives (worker/instance_manager.hpp); 1..64.
  std::uint32_t decode_steps = 16;
};

/// How the vLLM-style baseline treats long prompts.
enum class vllm_chunking : std::uint8_t {
  best,  ///< run both variants, report the better
  on,    ///< chunked prefill
  off,   ///< whole prompts, prefill-first
};

/// "best", "on", "off".
std::string_view to_string(vllm_chunking c) noexcept;

/// Per-policy knobs.
struct policy_config {
  vllm_chunking vllm = vllm_chunking::best;
  /// Prompt-pool sizes to sweep for Splitwise (empty = every 1..instances-1);
  /// the best is reported. Entries are distinct and inside 1..instances-1.
  std::vector<std::uint32_t> splitwise_prompt_instances;
  /// SplitwiseSim prompt_max_pending_batch_tokens: a prompt instance with a
  /// non-empty queue refuses a prompt that would take it over this.
  std::uint32_t splitwise_prompt_max_pending_tokens = 8192;
  /// Sync the new KV rows of every decode step to the replica.
  bool accellm_sync_decode_kv = true;
};

/// Absolute SLOs for attainment and goodput; 0 = none.
struct slo_config {
  double ttft_ms = 0;  ///< time to first token, milliseconds
  double tbt_ms = 0;   ///< time between tokens, milliseconds
};

/// A failure a simulated run injects (`accellm simulate`, from [[faults]] or
/// --fault; docs/resilience.md). simulator::fault is this type.
struct fault_config {
  enum class kind : std::uint8_t {
    kill,  ///< the process dies: the coordinator learns it at once (TCP closes)
    stop,  ///< it hangs or is cut off: the coordinator learns it after the
           ///< cluster's [network] timeout_ms + heartbeat_ms
  };
  kind what = kind::kill;
  std::uint32_t instance = 0;      ///< below [cluster] instances, each at most once
  std::chrono::nanoseconds at{0};  ///< from the start of the run (the file's at_s)
  friend bool operator==(const fault_config&, const fault_config&) = default;
};

/// The kind a fault's name says: "kill" or "stop"; nullopt for another word.
std::optional<fault_config::kind> parse_fault_kind(std::string_view word) noexcept;

/// `seconds` (finite, >= 0) as a fault's time from the start of the run.
std::chrono::nanoseconds fault_time(double seconds) noexcept;

/// How a cuda:N worker runs its model (device::cuda::cuda_options): the
/// defaults are what the backend measured best or chooses itself on the GPU;
/// the rest turn a kernel off that misbehaves on some GPU or driver, or pin
/// one choice for a study, without a rebuild (docs/operations.md "[cuda]").
/// Names are checked here; whether the model admits them (a decode tile
/// needs head_dim 64 or 128) when the worker makes its device.
struct cuda_config {
  bool graphs = true;  ///< decode-only iterations replayed as CUDA graphs
  /// One of cuda_prefill_attention_kernels: "timed" (the fastest kernel
  /// that agrees with rows64 on a probe at start-up, if a clear win),
  /// "rows64" (no probe), or that kernel whenever it agrees.
  std::string prefill_attention = "timed";
  bool skinny_gemm = true;          ///< decode products may try accellm's skinny GEMMs
  bool cublaslt_split_k = true;     ///< ... and split-K variants of cuBLASLt's proposals
  bool programmatic_launch = true;  ///< kernels overlap their launch with the one before
  /// One of cuda_decode_attention_tiles: "timed" (the fastest tile that
  /// agrees with 32x2 on a probe at start-up, if a clear win), or a tile:
  /// keys per pipeline stage x stages.
  std::string decode_attention_tile = "timed";
  friend bool operator==(const cuda_config&, const cuda_config&) = default;
};

/// The names [cuda] prefill_attention and decode_attention_tile take.
inline constexpr std::string_view cuda_prefill_attention_kernels[] = {
    "timed", "rows64", "rows128", "wgmma64", "wgmma128", "tma128", "tma128pp", "tma128n"};
inline constexpr std::string_view cuda_decode_attention_tiles[] = {
    "timed", "32x2", "16x4", "32x4", "64x2", "16x2", "tma16x3", "tma16x5"};

/// The pinned pool a worker gets unless [worker] kv_pinned_mib says otherwise:
/// room for what its flow control may hold for one partner (the window and
/// the queue) and two layer groups being filled (64 MiB each: one layer of a
/// 4096-token Llama-2-7B prompt), twice, because the rows it receives may
/// take up to half of the pool. Smaller, a
/// pool fills before the flow control gives up a copy that does not keep up,
/// and the device thread copies the rest out at 3-4 GB/s (docs/cuda.md)
/// only for the flow control to drop them. 2432 with the defaults; at most
/// 65536.
constexpr std::uint32_t default_kv_pinned_mib(std::uint32_t window_mib,
                                              std::uint32_t queue_mib) noexcept {
  const std::uint64_t mib = 2 * (std::uint64_t{window_mib} + queue_mib + 2 * 64);
  return static_cast<std::uint32_t>(mib < 65536 ? mib : 65536);
}

/// How the daemons of a live cluster run (`accellm coordinator`, `worker`,
/// `up`). Addresses are numeric or resolvable names; ports 0 = ephemeral.
struct daemon_config {
  std::string coordinator_host = "127.0.0.1";  ///< CAF port: workers and load drivers connect
  std::uint32_t coordinator_port = 7600;
  std::string http_host = "127.0.0.1";  ///< clients, health, metrics
  std::uint32_t http_port = 8080;
  std::string policy = "accellm";         ///< vllm | splitwise | accellm
  std::uint32_t http_threads = 8;         ///< HTTP requests served at once
  std::uint32_t request_timeout_s = 120;  ///< an HTTP request's limit, submit to end
  std::uint32_t max_body_kib = 1024;      ///< larger HTTP bodies get 413
  /// Where a worker's KV receiver listens: an address its partners reach.
  std::string worker_host = "127.0.0.1";
  std::uint32_t worker_kv_port = 0;
  std::string worker_device = "cpu";  ///< default for `accellm worker` and `up`
  /// How the `cpu` device's compute thread is scheduled (worker::
  /// compute_priority): "normal", "background" (nice 19 behind the daemon's
  /// actor and network threads, so coordination keeps its latency while the
  /// CPU computes, but other busy programs slow it down to a crawl) or
  /// "idle" (SCHED_IDLE: lower latency still, and other busy programs stop
  /// it). docs/operations.md "Threads".
  std::string worker_cpu_compute = "normal";
  /// MiB of each same-node KV ring a real device's worker offers a partner
  /// in another process of its node (device memory on cuda); 0: every KV
  /// row goes over the network. worker::default_kv_ring_bytes.
  std::uint32_t worker_kv_ring_mib = 256;
  /// The flow control of the KV a worker sends over the network
  /// (worker::kv_flow_limits): MiB of unacknowledged KV on the way to each
  /// receiver, and MiB that may wait for that window before copies are
  /// abandoned. Both in 1..65536.
  std::uint32_t worker_kv_window_mib = 64;
  std::uint32_t worker_kv_queue_mib = 1024;
  /// MiB of pinned host memory a cuda:N worker lends its KV chunks bound for
  /// the network from (device::cuda::cuda_options::pinned_kv_bytes), in
  /// 0..65536; allocated as needed. Chunks beyond it, or all with 0, are
  /// copied out of a staging buffer on the device thread. Unset in the file:
  /// default_kv_pinned_mib of the window and queue above.
  std::uint32_t worker_kv_pinned_mib =
      default_kv_pinned_mib(worker_kv_window_mib, worker_kv_queue_mib);
  /// Share of the GPU memory still free after a cuda:N worker's weights and
  /// workspaces that its KV pool takes (device::cuda::cuda_options::
  /// memory_fraction), in (0, 1]. Workers that share one GPU each take their
  /// share of what the ones before them left.
  double worker_gpu_memory_fraction = 0.9;
  cuda_config cuda;  ///< [cuda]: a cuda:N worker's kernels
  /// Shared secret every worker presents; the ACCELLM_CLUSTER_TOKEN
  /// environment variable overrides it. Empty: the daemons refuse to start.
  std::string token;
  bool tls = false;                  ///< CAF's OpenSSL transport between nodes
  std::string certificate, key, ca;  ///< PEM files (tls), relative to the file
  std::uint32_t heartbeat_ms = 100;  ///< both ends send one this often
  std::uint32_t timeout_ms = 500;    ///< a silent peer is dropped after this
  /// A larger incoming frame closes its connection; the default admits a
  /// KvLayer of up to 1 GiB (messages::decode_limits::kv_bytes).
  std::uint32_t max_message_mib = 1025;
  std::string log_level = "info";  ///< trace, debug, info, warn, error, off
};

/// One cluster: `instances` instances of `tp` devices each, in AcceLLM pairs.
struct cluster_config {
  std::string name;                  ///< defaults to the file's stem
  std::string model = "llama2-70b";  ///< device::find_model key
  /// sim:* device (sim:h100, sim:a100, sim:ascend910b2, sim:h100-splitwise2023,
  /// sim:file:PATH). load_cluster_config() makes a relative PATH relative to
  /// the config file's folder and stores the joined path here.
  std::string device = "sim:h100";
  std::uint32_t tp = 8;         ///< devices per instance (tensor parallel)
  std::uint32_t instances = 8;  ///< >= 2 and even (AcceLLM pairs)
  link_config link;
  batching_config batching;
  policy_config policy;
  slo_config slo;
  /// USD per instance-hour; a file's 0 or omission becomes tp * hardware price_per_hour.
  double price_per_hour = 0;
  /// Watts per instance; a file's 0 or omission becomes tp * hardware tdp_watts.
  double power_watts = 0;
  daemon_config daemon;
  std::vector<fault_config> faults;  ///< [[faults]], in file order
  std::string source;                ///< file it came from (for messages)
};

/// True for the devices only a daemon runs: "cpu" and "cuda:N".
bool is_real_device(std::string_view device) noexcept;

/// Parses and validates a cluster file. `source_name` names it in messages
/// ("h100.toml:12: ...") and becomes `source`; the name defaults to its stem.
/// A relative sim:file: path is left as written (relative to the working
/// directory). Errors: config, for anything wrong in the text or its values.
result<cluster_config> parse_cluster_config(std::string_view toml_text,
                                            std::string_view source_name);

/// Reads `path` and parses it as above. Errors: io_failure when the file
/// cannot be read; otherwise as parse_cluster_config().
result<cluster_config> load_cluster_config(const std::filesystem::path& path);

/// One-line human summary: "8 x sim:h100 tp8 llama2-70b, link 43.5 GB/s 10 us".
std::string describe(const cluster_config& config);

/// The device options the cluster implies (block_tokens from batching), for
/// device::sim::make_sim_device(config.device, model, config.tp, options).
device::sim::sim_options sim_options_of(const cluster_config& config);

}  // namespace accellm::config

#include "config/cluster_config.hpp"

#include "config/toml_fields.hpp"
#include "device/model_spec.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <fstream>
#include <optional>
#include <span>
#include <sstream>
#include <system_error>

namespace accellm::config {
namespace {

using detail::toml_fields;

constexpr double giga = 1e9;  // the file's bandwidth unit is GB/s = 1e9 bytes/s

constexpr std::string_view file_prefix = "sim:file:";

std::string known_models() {
  std::string out;
  for (const device::model_spec& m : device::known_models()) {
    out += (out.empty() ? "" : ", ") + m.name;
  }
  return out;
}

// Reads one file into a cluster_config, table by table, then checks the
// rules that span tables and resolves the device.
class cluster_reader {
 public:
  cluster_reader(const toml::table& root, std::string_view source) : root_(root), source_(source) {}

  result<cluster_config> read(const std::filesystem::path& base_dir);

 private:
  // The table at `path`, or an empty one, so that fail_at() works either way.
  toml_fields fields(std::string_view path) const {
    const toml::table* t = root_.at_path(path).as_table();
    return toml_fields{t != nullptr ? *t : empty_, path, source_};
  }
  status check_tables() const;
  status read_cluster();
  status read_link();
  status read_batching();
  status read_policy();
  status read_slo();
  status read_daemon();
  status read_daemon_files(const std::filesystem::path& base_dir);
  status read_cuda();
  status read_faults();
  status check_cross_fields() const;
  status resolve_device(const std::filesystem::path& base_dir);

  const toml::table& root_;
  const toml::table empty_;
  std::string_view source_;
  cluster_config c_;
  std::optional<double> bandwidth_gb_;
  std::optional<double> latency_us_;
};

status cluster_reader::check_tables() const {
  const toml_fields root{root_, "", source_};
  const std::initializer_list<std::string_view> tables = {
      "cluster", "link", "batching", "policy",  "slo", "coordinator",
      "worker",  "cuda", "security", "network", "log", "faults"};
  if (auto ok = root.only(tables); !ok) return ok;
  for (std::string_view t : tables) {
    if (t == "faults") continue;  // an array of tables: read_faults() checks it
    if (auto sub = root.table(t); !sub) return std::move(sub).err();
  }
  const toml_fields policy = fields("policy");
  if (auto ok = policy.only({"vllm", "splitwise", "accellm"}); !ok) return ok;
  for (std::string_view t : {"vllm", "splitwise", "accellm"}) {
    if (auto sub = policy.table(t); !sub) return std::move(sub).err();
  }
  return {};
}

status cluster_reader::read_cluster() {
  const toml_fields f = fields("cluster");
  status ok =
      f.only({"name", "model", "device", "tp", "instances", "price_per_hour", "power_watts"});
  if (ok) ok = f.get("name", c_.name);
  if (ok) ok = f.get("model", c_.model);
  if (ok) ok = f.get("device", c_.device);
  if (ok) ok = f.get("tp", c_.tp, 1);
  if (ok) ok = f.get("instances", c_.instances, 2);
  if (ok) ok = f.get("price_per_hour", c_.price_per_hour);
  if (ok) ok = f.get("power_watts", c_.power_watts);
  if (ok && c_.instances % 2 != 0) {
    return f.fail_at("instances", "must be even (instances run in AcceLLM pairs), got " +
                                      std::to_string(c_.instances));
  }
  return ok;
}

status cluster_reader::read_link() {
  const toml_fields f = fields("link");
  if (auto ok = f.only({"bandwidth_gb_per_s", "latency_us"}); !ok) return ok;
  // Absent keys keep the hardware's inter-node figures, filled in by resolve_device().
  if (root_.at_path("link.bandwidth_gb_per_s")) {
    double bw = 0;
    if (auto ok = f.get("bandwidth_gb_per_s", bw); !ok) return ok;
    if (!(bw > 0)) return f.fail_at("bandwidth_gb_per_s", "must be > 0, got 0");
    bandwidth_gb_ = bw;
  }
  if (root_.at_path("link.latency_us")) {
    double lat = 0;
    if (auto ok = f.get("latency_us", lat); !ok) return ok;
    latency_us_ = lat;
  }
  return {};
}

status cluster_reader::read_batching() {
  const toml_fields f = fields("batching");
  batching_config& b = c_.batching;
  status ok = f.only(
      {"max_batch_tokens", "max_batch_size", "block_tokens", "chunk_tokens", "decode_steps"});
  if (ok) ok = f.get("max_batch_tokens", b.max_batch_tokens, 1);
  if (ok) ok = f.get("max_batch_size", b.max_batch_size, 1);
  if (ok) ok = f.get("block_tokens", b.block_tokens, 1);
  if (ok) ok = f.get("chunk_tokens", b.chunk_tokens, 1);
  if (ok) ok = f.get("decode_steps", b.decode_steps, 1);
  if (ok && b.decode_steps > 64) {
    return f.fail_at("decode_steps", "must be at most 64, got " + std::to_string(b.decode_steps));
  }
  return ok;
}

status cluster_reader::read_policy() {
  policy_config& p = c_.policy;
  const toml_fields vllm = fields("policy.vllm");
  std::string chunked{to_string(p.vllm)};
  status ok = vllm.only({"chunked"});
  if (ok) ok = vllm.get("chunked", chunked);
  if (!ok) return ok;
  if (chunked == "best") {
    p.vllm = vllm_chunking::best;
  } else if (chunked == "on") {
    p.vllm = vllm_chunking::on;
  } else if (chunked == "off") {
    p.vllm = vllm_chunking::off;
  } else {
    return vllm.fail_at("chunked", "must be \"best\", \"on\" or \"off\", got \"" + chunked + '"');
  }
  const toml_fields sw = fields("policy.splitwise");
  ok = sw.only({"prompt_instances", "prompt_max_pending_tokens"});
  if (ok) ok = sw.get("prompt_instances", p.splitwise_prompt_instances, 1);
  if (ok) ok = sw.get("prompt_max_pending_tokens", p.splitwise_prompt_max_pending_tokens, 1);
  if (!ok) return ok;
  const toml_fields acc = fields("policy.accellm");
  ok = acc.only({"sync_decode_kv"});
  if (ok) ok = acc.get("sync_decode_kv", p.accellm_sync_decode_kv);
  return ok;
}

status cluster_reader::read_slo() {
  const toml_fields f = fields("slo");
  status ok = f.only({"ttft_ms", "tbt_ms"});
  if (ok) ok = f.get("ttft_ms", c_.slo.ttft_ms);
  if (ok) ok = f.get("tbt_ms", c_.slo.tbt_ms);
  return ok;
}

status cluster_reader::read_daemon() {
  daemon_config& d = c_.daemon;
  const toml_fields co = fields("coordinator");
  status ok = co.only({"host", "port", "http_host", "http_port", "policy", "http_threads",
                       "request_timeout_s", "max_body_kib"});
  if (ok) ok = co.get("host", d.coordinator_host);
  if (ok) ok = co.get("port", d.coordinator_port, 0);
  if (ok) ok = co.get("http_host", d.http_host);
  if (ok) ok = co.get("http_port", d.http_port, 0);
  if (ok) ok = co.get("policy", d.policy);
  if (ok) ok = co.get("http_threads", d.http_threads, 1);
  if (ok) ok = co.get("request_timeout_s", d.request_timeout_s, 1);
  if (ok) ok = co.get("max_body_kib", d.max_body_kib, 1);
  if (ok && d.policy != "vllm" && d.policy != "splitwise" && d.policy != "accellm") {
    return co.fail_at("policy",
                      "must be \"vllm\", \"splitwise\" or \"accellm\", got \"" + d.policy + '"');
  }
  if (ok && d.coordinator_port > 65535)
    return co.fail_at("port",
                      "must be a port in 0..65535, got " + std::to_string(d.coordinator_port));
  if (ok && d.http_port > 65535)
    return co.fail_at("http_port",
                      "must be a port in 0..65535, got " + std::to_string(d.http_port));
  const toml_fields wk = fields("worker");
  if (ok)
    ok = wk.only({"host", "kv_port", "device", "cpu_compute", "kv_ring_mib", "gpu_memory_fraction",
                  "kv_window_mib", "kv_queue_mib", "kv_pinned_mib"});
  if (ok) ok = wk.get("host", d.worker_host);
  if (ok) ok = wk.get("kv_port", d.worker_kv_port, 0);
  if (ok) ok = wk.get("device", d.worker_device);
  if (ok) ok = wk.get("cpu_compute", d.worker_cpu_compute);
  if (ok) ok = wk.get("kv_ring_mib", d.worker_kv_ring_mib, 0);
  if (ok && d.worker_kv_ring_mib > 65536) {
    return wk.fail_at("kv_ring_mib", "must be in 0..65536 (0: no same-node rings), got " +
                                         std::to_string(d.worker_kv_ring_mib));
  }
  for (const auto& [key, mib] : {std::pair{"kv_window_mib", &d.worker_kv_window_mib},
                                 std::pair{"kv_queue_mib", &d.worker_kv_queue_mib}}) {
    if (ok) ok = wk.get(key, *mib, 0);
    if (ok && (*mib == 0 || *mib > 65536)) {
      return wk.fail_at(key, std::string{"must be in 1..65536 (MiB of KV per receiver), got "} +
                                 std::to_string(*mib));
    }
  }
  d.worker_kv_pinned_mib = default_kv_pinned_mib(d.worker_kv_window_mib, d.worker_kv_queue_mib);
  if (ok && wk.has("kv_pinned_mib")) ok = wk.get("kv_pinned_mib", d.worker_kv_pinned_mib, 0);
  if (ok && d.worker_kv_pinned_mib > 65536) {
    return wk.fail_at("kv_pinned_mib",
                      "must be in 0..65536 (0: every KV chunk copied out of one staging buffer), "
                      "got " +
                          std::to_string(d.worker_kv_pinned_mib));
  }
  if (ok) ok = wk.get("gpu_memory_fraction", d.worker_gpu_memory_fraction);
  if (ok && !(d.worker_gpu_memory_fraction > 0.0 && d.worker_gpu_memory_fraction <= 1.0)) {
    return wk.fail_at("gpu_memory_fraction",
                      "must be in (0, 1] (the share of free GPU memory for the KV pool), got " +
                          std::to_string(d.worker_gpu_memory_fraction));
  }
  if (ok && d.worker_cpu_compute != "background" && d.worker_cpu_compute != "idle" &&
      d.worker_cpu_compute != "normal") {
    return wk.fail_at("cpu_compute", "must be \"background\", \"idle\" or \"normal\", got \"" +
                                         d.worker_cpu_compute + '"');
  }
  if (ok && d.worker_kv_port > 65535) {
    return wk.fail_at("kv_port",
                      "must be a port in 0..65535, got " + std::to_string(d.worker_kv_port));
  }
  const toml_fields sec = fields("security");
  if (ok) ok = sec.only({"token", "tls", "certificate", "key", "ca"});
  if (ok) ok = sec.get("token", d.token);
  if (ok) ok = sec.get("tls", d.tls);
  if (ok) ok = sec.get("certificate", d.certificate);
  if (ok) ok = sec.get("key", d.key);
  if (ok) ok = sec.get("ca", d.ca);
  const toml_fields net = fields("network");
  if (ok) ok = net.only({"heartbeat_ms", "timeout_ms", "max_message_mib"});
  if (ok) ok = net.get("heartbeat_ms", d.heartbeat_ms, 1);
  if (ok) ok = net.get("timeout_ms", d.timeout_ms, 1);
  if (ok) ok = net.get("max_message_mib", d.max_message_mib, 1);
  if (ok && d.max_message_mib > 4095) {
    return net.fail_at("max_message_mib", "must be in 1..4095 (a frame is under 4 GiB), got " +
                                              std::to_string(d.max_message_mib));
  }
  if (ok && d.timeout_ms <= d.heartbeat_ms) {
    return net.fail_at("timeout_ms", "must exceed heartbeat_ms (" + std::to_string(d.heartbeat_ms) +
                                         "), got " + std::to_string(d.timeout_ms));
  }
  const toml_fields lg = fields("log");
  if (ok) ok = lg.only({"level"});
  if (ok) ok = lg.get("level", d.log_level);
  static constexpr std::array levels = {"trace", "debug", "info", "warn", "error", "off"};
  if (ok && std::find(levels.begin(), levels.end(), d.log_level) == levels.end()) {
    return lg.fail_at(
        "level", "must be one of trace, debug, info, warn, error, off, got \"" + d.log_level + '"');
  }
  return ok;
}

status cluster_reader::read_cuda() {
  cuda_config& cu = c_.daemon.cuda;
  const toml_fields f = fields("cuda");
  // `key`'s string, which must be one of `names`.
  const auto one_of = [&f](const char* key, std::string& value,
                           std::span<const std::string_view> names) -> status {
    if (auto ok = f.get(key, value); !ok) return ok;
    if (std::find(names.begin(), names.end(), value) != names.end()) return {};
    std::string known;
    for (std::string_view n : names)
      known += (known.empty() ? "\"" : ", \"") + std::string{n} + '"';
    return f.fail_at(key, "must be one of " + known + ", got \"" + value + '"');
  };
  status ok = f.only({"graphs", "prefill_attention", "skinny_gemm", "cublaslt_split_k",
                      "programmatic_launch", "decode_attention_tile"});
  if (ok) ok = f.get("graphs", cu.graphs);
  if (ok) ok = f.get("skinny_gemm", cu.skinny_gemm);
  if (ok) ok = f.get("cublaslt_split_k", cu.cublaslt_split_k);
  if (ok) ok = f.get("programmatic_launch", cu.programmatic_launch);
  if (ok) ok = one_of("prefill_attention", cu.prefill_attention, cuda_prefill_attention_kernels);
  if (ok)
    ok = one_of("decode_attention_tile", cu.decode_attention_tile, cuda_decode_attention_tiles);
  return ok;
}

// TLS files are relative to the cluster file and must exist when TLS is on.
status cluster_reader::read_daemon_files(const std::filesystem::path& base_dir) {
  daemon_config& d = c_.daemon;
  const toml_fields sec = fields("security");
  for (auto [key, path] : {std::pair<std::string_view, std::string*>{"certificate", &d.certificate},
                           {"key", &d.key},
                           {"ca", &d.ca}}) {
    if (!path->empty() && !base_dir.empty() && std::filesystem::path{*path}.is_relative()) {
      *path = (base_dir / *path).string();
    }
    if (!d.tls) continue;
    if (path->empty()) return sec.fail_at(key, "is required when tls = true");
    std::error_code ec;
    if (!std::filesystem::is_regular_file(*path, ec)) {
      return sec.fail_at(key, "names '" + *path + "', which is not a readable file");
    }
  }
  return {};
}

status cluster_reader::read_faults() {
  const toml::node* node = root_.get("faults");
  if (node == nullptr) return {};
  const toml_fields root{root_, "", source_};
  const toml::array* list = node->as_array();
  if (list == nullptr) return root.fail_at("faults", "must be [[faults]] tables");
  for (std::size_t i = 0; i < list->size(); ++i) {
    const toml::table* t = list->get(i)->as_table();
    if (t == nullptr) return root.fail_at("faults", i, "is not a table");
    const std::string path = "faults[" + std::to_string(i) + "]";
    const toml_fields f{*t, path, source_};
    ACCELLM_TRY(f.only({"kind", "instance", "at_s"}));
    std::string name;
    fault_config fc;
    double at_s = -1;
    ACCELLM_TRY(f.get("kind", name));
    ACCELLM_TRY(f.get("instance", fc.instance, 0));
    ACCELLM_TRY(f.get("at_s", at_s));
    const auto kind = parse_fault_kind(name);
    if (!kind) return f.fail_at("kind", "must be \"kill\" or \"stop\", got '" + name + "'");
    fc.what = *kind;
    if (t->get("instance") == nullptr) return f.fail_at("instance", "is missing");
    if (at_s < 0) return f.fail_at("at_s", "is missing");
    if (at_s > 1e7) return f.fail_at("at_s", "must be at most 1e7 seconds");
    fc.at = fault_time(at_s);
    c_.faults.push_back(fc);
  }
  return {};
}

status cluster_reader::check_cross_fields() const {
  const batching_config& b = c_.batching;
  if (b.chunk_tokens > b.max_batch_tokens) {
    return fields("batching")
        .fail_at("chunk_tokens", "must not exceed max_batch_tokens (" +
                                     std::to_string(b.max_batch_tokens) + "), got " +
                                     std::to_string(b.chunk_tokens));
  }
  const toml_fields root{root_, "", source_};
  for (std::size_t i = 0; i < c_.faults.size(); ++i) {
    const std::uint32_t inst = c_.faults[i].instance;
    if (inst >= c_.instances) {
      return root.fail_at("faults", i,
                          "names instance " + std::to_string(inst) + ", outside the cluster (" +
                              std::to_string(c_.instances) + " instances)");
    }
    for (std::size_t j = 0; j < i; ++j) {
      if (c_.faults[j].instance == inst) {
        return root.fail_at("faults", i, "fails instance " + std::to_string(inst) + " again");
      }
    }
  }
  const std::vector<std::uint32_t>& sizes = c_.policy.splitwise_prompt_instances;
  const toml_fields sw = fields("policy.splitwise");
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    if (sizes[i] >= c_.instances) {
      return sw.fail_at("prompt_instances", i,
                        "must be between 1 and instances - 1 = " +
                            std::to_string(c_.instances - 1) + ", got " + std::to_string(sizes[i]));
    }
    const auto before = sizes.begin() + static_cast<std::ptrdiff_t>(i);
    if (std::find(sizes.begin(), before, sizes[i]) != before) {
      return sw.fail_at("prompt_instances", i, "repeats " + std::to_string(sizes[i]));
    }
  }
  return {};
}

status cluster_reader::resolve_device(const std::filesystem::path& base_dir) {
  const toml_fields f = fields("cluster");
  const device::model_spec* model = device::find_model(c_.model);
  if (model == nullptr) {
    return f.fail_at("model",
                     "names an unknown model '" + c_.model + "' (known: " + known_models() + ")");
  }
  if (is_real_device(c_.device)) {  // a live cluster: the worker checks its device
    c_.link.bandwidth = bandwidth_gb_ ? *bandwidth_gb_ * giga : 1.25e9;  // 10 GbE
    c_.link.latency = std::chrono::nanoseconds{std::llround(latency_us_.value_or(50.0) * 1e3)};
    return {};
  }
  std::string_view rest{c_.device};
  if (rest.starts_with(file_prefix) && !base_dir.empty()) {
    const std::filesystem::path p{rest.substr(file_prefix.size())};
    if (p.is_relative()) c_.device = std::string{file_prefix} + (base_dir / p).string();
  }
  auto d = device::sim::make_sim_device(c_.device, *model, c_.tp, sim_options_of(c_));
  if (!d) {
    if (d.err().code() == errc::not_found) return f.fail_at("device", d.err().message());
    // Memory or TP-degree problems: blame the device key, or tp when the device is the default.
    const bool named = root_.at_path("cluster.device").node() != nullptr;
    return f.fail_at(named ? "device" : "tp", "cannot run " + c_.model + " on '" + c_.device +
                                                  "' at tp " + std::to_string(c_.tp) + ": " +
                                                  d.err().what());
  }
  const device::hardware_spec& hw = d->hardware;
  c_.link.bandwidth = bandwidth_gb_ ? *bandwidth_gb_ * giga : hw.inter_node.bandwidth;
  c_.link.latency = latency_us_ ? std::chrono::nanoseconds{std::llround(*latency_us_ * 1e3)}
                                : hw.inter_node.latency;
  if (c_.price_per_hour == 0) c_.price_per_hour = c_.tp * hw.price_per_hour;
  if (c_.power_watts == 0) c_.power_watts = c_.tp * hw.tdp_watts;
  return {};
}

result<cluster_config> cluster_reader::read(const std::filesystem::path& base_dir) {
  c_.source = source_;
  c_.name = std::filesystem::path{source_}.stem().string();
  status ok = check_tables();
  if (ok) ok = read_cluster();
  if (ok) ok = read_link();
  if (ok) ok = read_batching();
  if (ok) ok = read_policy();
  if (ok) ok = read_slo();
  if (ok) ok = read_daemon();
  if (ok) ok = read_daemon_files(base_dir);
  if (ok) ok = read_cuda();
  if (ok) ok = read_faults();
  if (ok) ok = check_cross_fields();
  if (ok) ok = resolve_device(base_dir);
  if (!ok) return std::move(ok).err();
  return std::move(c_);
}

result<cluster_config> parse(std::string_view text, std::string_view source,
                             const std::filesystem::path& base_dir) {
  auto root = detail::parse_toml(text, source);
  if (!root) return std::move(root).err();
  return cluster_reader{*root, source}.read(base_dir);
}

}  // namespace

bool is_real_device(std::string_view device) noexcept {
  return device == "cpu" || device.starts_with("cuda:");
}

std::string_view to_string(vllm_chunking c) noexcept {
  switch (c) {
    case vllm_chunking::best:
      return "best";
    case vllm_chunking::on:
      return "on";
    case vllm_chunking::off:
      return "off";
  }
  return "unknown";
}

result<cluster_config> parse_cluster_config(std::string_view toml_text,
                                            std::string_view source_name) {
  return parse(toml_text, source_name.empty() ? "<cluster config>" : source_name, {});
}

result<cluster_config> load_cluster_config(const std::filesystem::path& path) {
  auto text = detail::read_text(path);
  if (!text) return std::move(text).err();
  return parse(*text, path.string(), path.parent_path());
}

std::optional<fault_config::kind> parse_fault_kind(std::string_view word) noexcept {
  if (word == "kill") return fault_config::kind::kill;
  if (word == "stop") return fault_config::kind::stop;
  return std::nullopt;
}

std::chrono::nanoseconds fault_time(double seconds) noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::duration<double>{seconds});
}

std::string describe(const cluster_config& c) {
  char link[96];
  std::snprintf(link, sizeof link, "link %g GB/s %g us", c.link.bandwidth / giga,
                double(c.link.latency.count()) / 1e3);
  return std::to_string(c.instances) + " x " + c.device + " tp" + std::to_string(c.tp) + ' ' +
         c.model + ", " + link;
}

device::sim::sim_options sim_options_of(const cluster_config& config) {
  device::sim::sim_options o;
  o.block_tokens = config.batching.block_tokens;
  return o;
}

}  // namespace accellm::config

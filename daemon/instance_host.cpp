#include "daemon/instance_host.hpp"

#include "actors/atoms.hpp"
#include "device/cpu/cpu_backend.hpp"
#include "device/sim/sim_factory.hpp"
#include "worker/device_worker.hpp"
#include "worker/instance_manager.hpp"
#include "worker/kv_replica.hpp"
#include "worker/worker.hpp"

#ifdef ACCELLM_HAVE_CUDA
#include "device/cuda/cuda_backend.hpp"
#endif

#include <caf/all.hpp>

#include <algorithm>

namespace accellm::daemon {
namespace {

#ifdef ACCELLM_HAVE_CUDA
// The cluster's cuda:N backend options. Seed 1 as on cpu; a
// tensor-parallel cluster runs one shard per instance (its all-reduce
// modelled, docs/cuda.md); room for the largest batch the instance_manager
// forms: a whole prompt beyond the token budget runs alone, decodes may join
// prompt tokens. [cuda]'s names were checked when the file was read.
result<device::cuda::cuda_options> cuda_options_of(const config::cluster_config& c,
                                                   const device::model_spec& model) {
  const config::cuda_config& cu = c.daemon.cuda;
  const auto prefill = device::cuda::prefill_rule_named(cu.prefill_attention);
  const auto tile = device::cuda::decode_tile_rule_named(cu.decode_attention_tile);
  if (!prefill || !tile) {
    return fail(errc::config, "[cuda] names a kernel this build lacks: prefill_attention \"" +
                                  cu.prefill_attention + "\", decode_attention_tile \"" +
                                  cu.decode_attention_tile + '"');
  }
  device::cuda::cuda_options o;
  o.seed = 1;
  o.tp = c.tp;
  o.max_batch = c.batching.max_batch_size;
  o.memory_fraction = c.daemon.worker_gpu_memory_fraction;
  o.pinned_kv_bytes = std::uint64_t{c.daemon.worker_kv_pinned_mib} << 20;
  o.max_rows = std::max(c.batching.max_batch_tokens, model.max_context) + c.batching.max_batch_size;
  o.graphs = cu.graphs ? device::cuda::use_graphs::yes : device::cuda::use_graphs::no;
  o.prefill = *prefill;
  o.skinny_gemm = cu.skinny_gemm;
  o.cublaslt_split_k = cu.cublaslt_split_k;
  o.programmatic_launch = cu.programmatic_launch;
  o.decode_attention_tile = *tile;
  return o;
}
#endif

result<device_choice> real_device(const std::string& name, const device::model_spec& model,
                                  const config::cluster_config& c) {
  device_choice out{
      .name = name, .backend = nullptr, .cost = nullptr, .kv = {}, .model = &model, .setup = {}};
  if (name == "cpu") {
    // Seed 1 on every worker: a request's tokens do not depend on where it runs.
    auto b = device::cpu::make_cpu_backend(
        model,
        {.seed = 1, .kv_blocks = 1024, .block_tokens = c.batching.block_tokens, .clock = {}});
    if (!b)
      return fail(b.err().code(), "device cpu cannot run " + model.name + ": " + b.err().what());
    out.backend = std::move(*b);
  } else {
#ifdef ACCELLM_HAVE_CUDA
    // Seed 1 as on cpu; a tensor-parallel cluster runs one shard per
    // instance (its all-reduce modelled, docs/cuda.md); room for the largest
    // batch the instance_manager forms: a whole prompt beyond the token
    // budget runs alone, decodes may join prompt tokens.
    auto o = cuda_options_of(c, model);
    if (!o) return std::move(o).err();
    auto b = device::cuda::make_cuda_backend(name, model, *o);
    if (!b) return fail(b.err().code(), "device " + name + ": " + b.err().what());
    out.setup = (*b)->describe_setup();
    out.backend = std::move(*b);
#else
    return fail(errc::not_found, "device " + name + ": this accellm was built without CUDA");
#endif
  }
  out.kv = out.backend->kv();
  return out;
}

// The cpu backend computes on this host's cores, beside the actors; a GPU
// backend's thread mostly waits and must launch kernels at once.
worker::compute_priority compute_priority_of(const std::string& device,
                                             const config::daemon_config& d) {
  if (device != "cpu" || d.worker_cpu_compute == "normal") return worker::compute_priority::normal;
  return d.worker_cpu_compute == "idle" ? worker::compute_priority::idle
                                        : worker::compute_priority::background;
}

}  // namespace

result<device_choice> make_device(const std::string& name, const config::cluster_config& c) {
  const device::model_spec* model = device::find_model(c.model);
  if (model == nullptr) return fail(errc::config, "unknown model '" + c.model + "'");
  if (config::is_real_device(name)) return real_device(name, *model, c);
  auto d = device::sim::make_sim_device(name, *model, c.tp, config::sim_options_of(c));
  if (!d) return fail(d.err().code(), "device " + name + ": " + d.err().what());
  return device_choice{.name = name,
                       .backend = nullptr,
                       .cost = std::move(d->cost),
                       .kv = d->kv,
                       .model = model,
                       .setup = {}};
}

instance_actors spawn_instance(caf::actor_system& sys, const config::cluster_config& c,
                               device_choice dev, const caf::actor& coordinator,
                               const actors::trace_point& trace) {
  const bool real = dev.backend != nullptr;
  instance_actors a;
  // One decode step per Execute: clients get every token as it is made.
  a.manager = worker::spawn_instance_manager(
      sys,
      {.id = no_instance,
       .total_blocks = dev.kv.total_blocks,
       .block_tokens = dev.kv.block_tokens,
       .bytes_per_block = dev.kv.bytes_per_block,
       .max_batch_tokens = c.batching.max_batch_tokens,
       .max_batch_size = c.batching.max_batch_size,
       .chunked_prefill = c.daemon.policy == "vllm" && c.policy.vllm == config::vllm_chunking::on,
       .chunk_tokens = c.batching.chunk_tokens,
       .sync_decode_kv = c.policy.accellm_sync_decode_kv,
       .decode_steps = 1,
       .copy_stall = std::chrono::milliseconds{200},
       .device_memory = real,
       .layers = dev.model->layers,
       .trace = trace.as("im")});
  a.replica = worker::spawn_kv_replica(sys, no_instance);
  if (real) {
    a.worker = worker::spawn_device_worker(
        sys, no_instance, std::move(dev.backend),
        {.priority = compute_priority_of(dev.name, c.daemon),
         .trace = trace.as("worker"),
         .kv_ring_bytes = std::uint64_t{c.daemon.worker_kv_ring_mib} << 20,
         .kv_flow = {.window_bytes = std::uint64_t{c.daemon.worker_kv_window_mib} << 20,
                     .queue_bytes = std::uint64_t{c.daemon.worker_kv_queue_mib} << 20}});
  } else {
    a.worker = worker::spawn_sim_worker(
        sys, {.id = no_instance,
              .cost = dev.cost,
              .model = *dev.model,
              .tp = c.tp,
              .kv_bytes_per_token = dev.model->kv_bytes_per_token(dev.kv.kv_dtype),
              .link = {.bandwidth = c.link.bandwidth, .latency = c.link.latency},
              .trace = trace.as("worker")});
  }
  caf::anon_send(a.manager, actors::peers_atom::value, coordinator, a.worker);
  caf::anon_send(a.replica, actors::peers_atom::value, a.manager);
  caf::anon_send(a.worker, actors::peers_atom::value, a.manager, std::vector<caf::actor>{});
  // Partners in other processes of this node hand the device worker their KV
  // rings at the socket named after this replica (its rows still reach the
  // worker through the manager, which keeps or drops them).
  if (real)
    caf::anon_send(a.worker, actors::ring_atom::value,
                   worker::kv_ring_socket(a.replica, sys.node()));
  return a;
}

}  // namespace accellm::daemon

// cuda::cuda_backend: a Llama-family model on one NVIDIA GPU behind
// device::backend ("cuda:N").
//
// bf16 weights drawn on the device from a seed (weights.hpp), a paged bf16
// KV pool that fills the memory left after weights and scratch, and the
// forward pass of forward.hpp. With tp > 1 it runs one tensor-parallel shard
// (e.g. 1/8 of Llama-2-70B) and adds a modelled ring all-reduce time
// (2 per layer) to each iteration's duration: accellm has one GPU per
// backend, so the collective itself is not executed.
//
// KV on the wire (kv_chunk::data): for each layer of the chunk, K then V,
// each tokens x kv_width bf16 values, row-major. export_kv/import_kv move
// the slice with one packing kernel and one copy on the backend's own copy
// stream, through pinned host memory; they wait for the iteration in flight.
// An exported chunk's data is that pinned memory itself, lent from a pool
// (cuda_options::pinned_kv_bytes) until the chunk's last copy is gone; a
// chunk the pool has no room for is copied out into a vector.
// copy_kv_to moves a slice to another instance on the node device to device.
// Between two processes on one node the slice goes through a cuda_region
// (shared_memory.hpp) instead: create_shared makes one on this GPU,
// open_shared maps a peer's, and export_kv_to / import_kv_from /
// run_streaming's kv_stream::place pack and unpack straight into and out of
// it, with no host memory on the way.
//
// Errors are values: run() checks every item and the pool before touching a
// cache; device failures come back as errc::device_failure.
//
// Thread contract: one thread at a time (device::backend's contract).
#pragma once

#include "common/result.hpp"
#include "device/backend.hpp"
#include "device/cuda/forward.hpp"
#include "device/cuda/kv_copy.cuh"
#include "device/cuda/runtime.hpp"
#include "device/cuda/shared_memory.hpp"
#include "device/cuda/weights.hpp"

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace accellm::device::cuda {

struct cuda_options {
  std::uint64_t seed = 1;         ///< weights are a pure function of (spec, tp, seed)
  std::uint32_t tp = 1;           ///< tensor-parallel degree; this backend is one shard
  std::uint32_t max_rows = 8192;  ///< token rows per iteration
  std::uint32_t max_batch = 256;  ///< requests per iteration
  std::uint32_t max_context = 0;  ///< 0: the model's max_context
  std::uint64_t kv_blocks = 0;    ///< 0: memory_fraction of what is free after weights
  double memory_fraction = 0.9;
  use_graphs graphs = use_graphs::yes;
  double allreduce_bus_bytes_per_s = 370e9;  ///< NVLink4 NCCL busbw (tp > 1 only)
  double allreduce_latency_s = 15e-6;        ///< per all-reduce call (tp > 1 only)
  /// How the prefill attention kernel is chosen at creation (prefill_choice.hpp).
  prefill_rule prefill = prefill_rule::timed;
  /// Whether the products' planner may try skinny_gemm,
  /// skinny_gemm_wgmma, skinny_gemm_tma and skinny_gemm_stream (it still
  /// verifies each and keeps one only as a clear win); false: cuBLAS(Lt)
  /// only.
  bool skinny_gemm = true;
  /// Whether the planner may also time split-K variants of cuBLASLt's
  /// proposals (lt_search.hpp; each verified first); false: the proposals
  /// only.
  bool cublaslt_split_k = true;
  /// Whether an iteration's kernels are launched with programmatic dependent
  /// launch (launch.cuh: each one's launch and ramp overlap the tail of the
  /// one before; compute capability 9.0 and later only, else ignored).
  bool programmatic_launch = true;
  /// How the decode attention kernel's pipeline (decode_attention.cuh) is
  /// chosen at creation (decode_choice.hpp): timed, the default, or one
  /// tile (bench_gpu_model --decode-tile). Creation fails if the model's
  /// head_dim has no such tile.
  decode_tile_rule decode_attention_tile;
  /// How a decode step's context is split (decode_attention.cuh): by the
  /// waves of resident blocks it makes (the default: on the H100, 3.5%
  /// faster at Llama-3-8B batch 64 ctx 4096, 3-5% at batch 128-256, level
  /// elsewhere, the 70B TP-8 shard included; docs/cuda-runs.md) or by the blocks
  /// it makes (bench_gpu_model --decode-splits blocks).
  decode_split_rule decode_splits = decode_split_rule::waves;
  /// Pinned host memory that KV chunks bound for kv_chunk::data are lent
  /// from (host_pool.hpp), allocated in arenas as needed. A layer group of
  /// run_streaming() that does not fit is dropped (kv_chunk::dropped: its
  /// copies are given up); a chunk of export_kv() that does not fit is
  /// copied out of the staging buffer into a vector. 0: no pool, every chunk
  /// is copied out. 2432 MiB, a worker's default with the default flow
  /// control (config::default_kv_pinned_mib says why).
  std::uint64_t pinned_kv_bytes = std::uint64_t{2432} << 20;
};

/// Parses "cuda:N" (N a decimal device index); invalid_argument otherwise.
result<int> parse_cuda_device(std::string_view name);

class cuda_backend final : public backend {
  struct key {
    explicit key() = default;
  };

 public:
  cuda_backend(key, std::string name, model_spec spec, shard_shape shape, cuda_options options);
  cuda_backend(const cuda_backend&) = delete;
  cuda_backend& operator=(const cuda_backend&) = delete;
  ~cuda_backend() override;

  std::string_view name() const noexcept override { return name_; }
  const model_spec& model() const noexcept override { return spec_; }
  kv_geometry kv() const noexcept override;

  /// Fails like cpu_backend::run (invalid_argument, out_of_range, not_found,
  /// out_of_memory), plus too_large when the batch exceeds max_batch requests
  /// or max_rows tokens, and device_failure.
  result<iteration_result> run(const batch& b) override;
  status check_item(const batch_item& item) const override;
  /// For an iteration with prompt tokens: after each layer group's kernels an
  /// event; the copy stream waits for it, packs the group's rows and copies
  /// them to pinned memory while the next layers compute, and the host hands
  /// each group to the sink as its copy lands, before the iteration ends. A
  /// slice that stream.place puts in a cuda_region is packed straight there
  /// (no copy to the host; its chunk has no data, its ring place set); one in
  /// a host region goes through pinned memory into it. The slices left for
  /// kv_chunk::data are copied with one cudaMemcpyAsync per run of adjacent
  /// ones (one per group when nothing is placed) into pinned memory lent for
  /// the group, which their chunks then share (no copy on this thread); a
  /// group the pool has no room for goes through the stage and is copied
  /// out. A decode-only iteration (a CUDA graph) is exported after it, in
  /// one group, through export_kv_to.
  result<iteration_result> run_streaming(const batch& b, const kv_stream& stream) override;
  result<kv_chunk> export_kv(request_id request, index_range layers, index_range tokens) override;
  /// Checks the chunk, then queues it on the copy stream and returns: one
  /// upload from pinned memory (chunk.data itself when it lies in
  /// host_buffers(), else a lease of it filled here) and the unpacking
  /// kernel, after the last iteration. The chunk's memory is kept until the
  /// copy has read it; an iteration whose batch holds the request waits for
  /// it on the GPU, and release() of the request waits for it on the host.
  /// Without room in the pool: through the stage, waiting for the copy.
  status import_kv(const kv_chunk& chunk) override;
  host_pool* host_buffers() noexcept override { return &lent_; }
  std::uint32_t cached_tokens(request_id request) const noexcept override;

  /// Copies a slice of `request`'s KV into `dst`, another cuda_backend on the
  /// same GPU or a peer GPU of the node, without host memory: pack here, one
  /// device-to-device copy, unpack there, on the two copy streams. Checks as
  /// export_kv here and import_kv there (not_found, out_of_range,
  /// invalid_argument, also when the two KV shapes differ). Returns when the
  /// slice is in place.
  status copy_kv_to(cuda_backend& dst, request_id request, index_range layers, index_range tokens);

  /// A cuda_region of `bytes` on this GPU (invalid_argument for 0,
  /// unsupported without a CUDA driver's VMM calls).
  result<std::unique_ptr<shared_region>> create_shared(std::uint64_t bytes) override;
  /// A cuda region: the peer's fd imported and mapped on this GPU
  /// (cuda_region::open's errors). A host region: backend's memfd mapping.
  result<std::unique_ptr<shared_region>> open_shared(region_kind kind, unique_fd fd,
                                                     std::uint64_t bytes) override;
  /// For a cuda_region on this GPU: export_kv's checks, then the slice packed
  /// at `offset` on the copy stream (after the last iteration), synchronised;
  /// out_of_range past the region, misaligned for an offset that is not a
  /// multiple of 16 (the packing kernel's vector), invalid_argument for a
  /// region on another GPU. A host region: backend's default.
  result<kv_chunk> export_kv_to(shared_region& region, std::uint64_t offset, request_id request,
                                index_range layers, index_range tokens) override;
  /// For a cuda_region on this GPU: import_kv's checks (header.bytes must be
  /// the slice's size), then the slice unpacked from `offset` into the pool,
  /// synchronised; errors as export_kv_to. A host region: backend's default.
  status import_kv_from(const shared_region& region, std::uint64_t offset,
                        const kv_chunk& header) override;
  void release(request_id request) noexcept override;

  /// Logits of the last run, [items that wanted output x vocab shard].
  result<std::vector<float>> last_logits() const { return forward_->last_logits(); }
  const shard_shape& shape() const noexcept { return shape_; }
  const weights& parameters() const noexcept { return weights_; }
  std::uint64_t free_blocks() const noexcept { return free_.size(); }
  /// For benchmarks only: makes `request` hold positions [0, tokens) in every
  /// layer without computing them (the pool's current contents stand in for
  /// its KV), so that decode at long contexts can be timed without a prefill
  /// first. Fails like run() on a full pool or tokens beyond max_context.
  status assume_cached(request_id request, std::uint32_t tokens);
  /// Fills the whole KV pool with seeded values (benchmarks: no timing on
  /// zeros or garbage).
  status fill_pool(std::uint64_t seed);

  /// For benchmarks: each later run() times its operators (forward_pass::
  /// set_breakdown; launched kernel by kernel), read by last_breakdown().
  void set_breakdown(bool on) noexcept { forward_->set_breakdown(on); }
  /// The prefill attention kernel chosen at creation, and why.
  const prefill_choice& prefill_kernel_choice() const noexcept {
    return forward_->prefill_kernel_choice();
  }
  /// The decode attention tile chosen at creation, and why.
  const decode_choice& decode_tile_choice() const noexcept {
    return forward_->decode_tile_choice();
  }
  const op_breakdown& last_breakdown() const noexcept { return forward_->last_breakdown(); }
  /// How the products prepared so far run: shapes, and how many of them go
  /// through a cuBLASLt algorithm or a skinny kernel (the rest: cuBLAS's
  /// default).
  const gemm_planner& planner() const noexcept { return forward_->planner(); }
  /// Whether iterations launch with programmatic dependent launch
  /// (cuda_options::programmatic_launch on a compute capability 9.0 device).
  bool programmatic_launch() const noexcept { return forward_->programmatic_launch(); }
  /// Why it is off although asked for (programmatic_launch_works), or "".
  const std::string& programmatic_launch_refused() const noexcept { return programmatic_refused_; }
  /// What this backend chose at creation, a line each, for a worker's log:
  /// the GPU and the KV pool, the prefill attention kernel and why, the
  /// decode attention tile, graphs, programmatic launch (and why it is off),
  /// and which kernels the decode products may take.
  std::vector<std::string> describe_setup() const;
  /// The pinned memory exported chunks are lent from (options.pinned_kv_bytes):
  /// what is lent now, and how often a chunk or group did not fit (and was
  /// copied out or dropped).
  const host_pool& lent_kv() const noexcept { return lent_; }

  /// Modelled all-reduce seconds of one iteration over `rows` tokens (0 at tp 1).
  double allreduce_seconds(std::uint32_t rows) const noexcept;

  friend result<std::unique_ptr<cuda_backend>> make_cuda_backend(std::string_view device,
                                                                 const model_spec& spec,
                                                                 cuda_options options);

 private:
  struct sequence {
    std::vector<std::int32_t> table;
    std::vector<std::uint32_t> layer_tokens;
  };
  /// An import queued on copy_stream_: the memory its copies read, held
  /// until `read` has happened.
  struct pending_import {
    event read;
    request_id request = 0;
    std::vector<shared_bytes> held;
  };
  status init(int device);
  status check_batch(const batch& b) const;
  /// Grows the items' block tables.
  status grow_batch(const batch& b);
  /// run()'s work once check_batch and grow_batch passed; `hooks` as
  /// forward_pass::run.
  result<iteration_result> run_checked(const batch& b, const layer_hooks* hooks);
  /// Events for `groups` layer groups (run_streaming).
  status ensure_group_events(std::size_t groups);
  status grow(request_id id, std::uint32_t tokens);
  void build_plan(const batch& b);
  status ensure_staging(std::uint64_t elems);
  /// import_kv's queued path for a checked chunk whose request has grown to
  /// hold it: true once queued, false when the pool had no room (nothing
  /// queued).
  result<bool> import_async(const kv_chunk& chunk);
  /// Records an event after what copy_stream_ holds and keeps `held` until it.
  status track_import(request_id request, std::vector<shared_bytes> held);
  /// Forgets the imports that have landed (their memory goes back).
  void reap_imports() noexcept;
  /// Makes stream_ wait for the imports in flight when `b` holds one's request.
  status wait_for_imports(const batch& b);
  status check_slice(const sequence& s, index_range layers, index_range tokens) const;
  status check_incoming(request_id request, index_range layers, index_range tokens) const;
  /// On copy_stream_: uploads `s`'s block table (from `table`, a pinned copy
  /// of it, when given: a pageable upload may wait for the stream), then
  /// copies the slice between the pool and `packed` (device memory:
  /// dev_stage_ or a region).
  status stage_slice(const sequence& s, index_range layers, index_range tokens,
                     __nv_bfloat16* packed, kv_direction dir, const std::int32_t* table = nullptr);
  kv_pool_view pool_view() const noexcept;
  /// Packs a cached slice into `to` (device memory of this GPU) on
  /// copy_stream_, after the last iteration that wrote it; does not wait.
  status pack_slice(const sequence& s, index_range layers, index_range tokens, __nv_bfloat16* to);
  /// Unpacks `from` (device memory, filled on copy_stream_ or before) into
  /// the pool, growing the request's table first; waits for the copy stream.
  status unpack_from(request_id request, index_range layers, index_range tokens,
                     __nv_bfloat16* from);
  /// Where `bytes` at `offset` of `region` are on this GPU; out_of_range,
  /// misaligned or invalid_argument as export_kv_to says.
  result<__nv_bfloat16*> region_span(const cuda_region& region, std::uint64_t offset,
                                     std::uint64_t bytes, const char* where) const;

  std::string name_;
  std::string gpu_name_;  // cudaDeviceProp::name
  std::string programmatic_refused_;
  int device_ = 0;
  model_spec spec_;
  shard_shape shape_;
  cuda_options options_;
  forward_limits limits_;
  std::uint64_t total_blocks_ = 0;
  // Declaration order is destruction order in reverse: streams outlive all.
  stream stream_;
  stream copy_stream_;
  weights weights_;
  device_buffer<__nv_bfloat16> pool_;
  std::unique_ptr<forward_pass> forward_;
  std::vector<std::int32_t> free_;  // LIFO free block list
  std::unordered_map<request_id, sequence> seqs_;
  step_plan plan_;
  // export/import staging.
  pinned_buffer<__nv_bfloat16> host_stage_;
  // Where exported chunks bound for kv_chunk::data land and stay until the
  // worker is done with them (the stage above when it is out of room).
  host_pool lent_;
  device_buffer<__nv_bfloat16> dev_stage_;
  device_buffer<std::int32_t> dev_table_;
  event compute_done_;  // recorded after each run(): copies wait for it
  event packed_;        // recorded after a pack for copy_kv_to
  // run_streaming: per layer group, its layers computed / its rows in host_stage_.
  std::vector<event> group_computed_, group_copied_;
  // Imports in flight, oldest first (copy_stream_ runs them in order), the
  // requests they write with their counts, and events to record them with.
  std::deque<pending_import> imports_;
  std::unordered_map<request_id, std::uint32_t> importing_;
  std::vector<event> spare_events_;
};

/// Builds a backend on `device` ("cuda:N"): checks the name, the device index
/// (not_found when there is no such GPU, device_failure when CUDA has no
/// usable device), the shape (make_shard_shape) and the options, draws the
/// weights and allocates the KV pool (out_of_memory when they do not fit).
result<std::unique_ptr<cuda_backend>> make_cuda_backend(std::string_view device,
                                                        const model_spec& spec,
                                                        cuda_options options = {});
/// The same for a catalogue model name; not_found for an unknown name.
result<std::unique_ptr<cuda_backend>> make_cuda_backend(std::string_view device,
                                                        std::string_view model,
                                                        cuda_options options = {});

}  // namespace accellm::device::cuda

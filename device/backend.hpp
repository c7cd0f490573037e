// device::backend: what a worker drives. One backend is one instance's device
// group (one model copy at tensor-parallel degree t): it runs iterations and
// holds the KV cache of the requests it has seen, and it exports and imports
// that KV per request, layer range and token range so that a partner can keep
// a redundant copy (the heart of AcceLLM).
//
// Implementations: sim::sim_backend (cost model, no real tensors),
// cpu::cpu_backend (real small fp32 transformer), cuda (issue 8).
//
// Thread contract: a backend is used by one thread at a time (the worker that
// owns it); implementations need no locking unless they say otherwise.
#pragma once

#include "common/result.hpp"
#include "common/shared_bytes.hpp"
#include "common/types.hpp"
#include "common/unique_fd.hpp"
#include "device/host_pool.hpp"
#include "device/model_spec.hpp"
#include "device/shared_region.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

namespace accellm::device {

/// Which phase a batch item is in.
enum class phase : std::uint8_t { prefill, decode };

/// One request's share of an iteration.
///
/// Prefill: `num_tokens` prompt tokens starting at position `context` (a chunk
/// when prefill is chunked). Decode: `num_tokens == 1`, the last generated (or
/// last prompt) token at position `context`.
struct batch_item {
  request_id request = 0;
  phase kind = phase::decode;
  std::uint32_t context = 0;     ///< tokens of this request already in the KV cache
  std::uint32_t num_tokens = 0;  ///< tokens this iteration appends to the KV cache
  /// The `num_tokens` token ids. Real backends (cpu, cuda) require them;
  /// simulated backends accept an empty vector and use only the count.
  std::vector<token_id> tokens;
  /// False for a non-final prefill chunk: no next token is sampled.
  bool wants_output = true;
};

/// One iteration: every item runs in the same forward pass.
struct batch {
  std::vector<batch_item> items;
};

/// What an iteration produced.
struct iteration_result {
  /// Device time of the iteration: measured on real devices, modelled on sim.
  std::chrono::nanoseconds duration{0};
  /// One entry per batch item, in order: the greedy next token, or no_token
  /// where the item did not want output.
  std::vector<token_id> next_tokens;
};

/// Half-open range [begin, end) of layers or token positions.
struct index_range {
  std::uint32_t begin = 0;
  std::uint32_t end = 0;
  std::uint32_t size() const noexcept { return end > begin ? end - begin : 0; }
  friend bool operator==(const index_range&, const index_range&) = default;
};

/// A slice of one request's KV cache: layers x token positions.
///
/// `bytes` is the size the slice has on the wire (what a link must carry);
/// `data` holds the values only on real backends (empty on simulated ones):
/// a vector of its own, or a share of a backend's pinned host_pool, which
/// goes back to the pool with the chunk's last copy (host_pool.hpp).
/// Layout of `data`: for each layer in `layers`, K then V, each
/// `tokens.size() x kv_width` elements of the backend's KV dtype, row-major.
///
/// A chunk packed into a shared ring (kv_stream::place) has `ring` set and
/// its bytes at `ring_pos` of that ring instead of in `data`.
///
/// A `dropped` chunk of run_streaming() has no bytes anywhere: the backend
/// had no room to hand them over (a cuda backend whose pinned pool is full,
/// cuda_options::pinned_kv_bytes), so the copy of `request` is to be given
/// up, as the KV flow control gives up one that does not fit its queue.
struct kv_chunk {
  request_id request = 0;
  index_range layers;
  index_range tokens;
  std::uint64_t bytes = 0;
  shared_bytes data;
  std::uint64_t ring = 0;      ///< 0: the bytes are in data; else the ring's id
  std::uint64_t ring_pos = 0;  ///< the chunk's stream position in that ring
  bool dropped = false;        ///< no bytes: the copy of `request` is given up
};

/// `bytes` bytes from `from` in a new vector, for kv_chunk::data. A chunk of
/// several MiB is fresh memory from the kernel, and faulting it in one 4 KiB
/// page at a time was the whole cost of the layer-wise copy in a VM (1.6 GB/s
/// against 55 GB/s for the device-to-host copy before it: an H200 VM,
/// 2026-11-26, bench_gpu_ceilings); such a vector asks for transparent huge
/// pages before it is written.
std::vector<std::byte> copy_out(const std::byte* from, std::size_t bytes);

/// Asks the C library to serve large allocations from its heap and to keep
/// what is freed instead of handing it back to the kernel (glibc: no mmap'd
/// chunks, a trim threshold of `keep_bytes`). A worker's KV chunks (copy_out,
/// export_kv), freed once they are sent, then come back already faulted in:
/// a 32 MiB chunk is filled at the speed of a copy, not of page faults
/// (14 against 5.7-6.2 GB/s on the 2-core build machine, bench_copy_out).
/// The process keeps its peak heap. For a worker process on a real device;
/// false where the allocator refused (or is not glibc's).
bool keep_freed_host_buffers(std::size_t keep_bytes = std::size_t{1} << 30);

/// Where run_streaming packs one chunk instead of kv_chunk::data: `offset`
/// bytes into `region` (one this backend created), which is position `pos`
/// of ring `ring` (kv_ring.hpp).
struct kv_place {
  shared_region* region = nullptr;
  std::uint64_t offset = 0;
  std::uint64_t ring = 0;
  std::uint64_t pos = 0;
};

/// What run_streaming() sends out while it computes: the KV rows the
/// iteration appends for `requests` (each an item of the batch: its tokens
/// [context, context + num_tokens)), in chunks of `layers_per_chunk` layers,
/// each group as soon as its layers are computed. This is the layer-wise copy
/// to the partner that overlaps the rest of the prefill (notes/paper.md
/// 3.2, step 2).
struct kv_stream {
  std::vector<request_id> requests;
  /// Layers per chunk; the last group may be shorter. 0, or at least the
  /// model's layers: one group of every layer, after the iteration.
  std::uint32_t layers_per_chunk = 0;
  /// Called on run_streaming()'s thread, once per layer group, groups in
  /// layer order, with one chunk per request in `requests` order (all with
  /// the group's layers). Never called for a batch that fails its checks.
  std::function<void(std::vector<kv_chunk>)> sink;
  /// Optional. Asked for each chunk before it is packed, with the index of
  /// its request in `requests` and its size: a place in a shared ring (a
  /// partner on the same node), or nullopt to pack it into kv_chunk::data.
  std::function<std::optional<kv_place>(std::size_t slice, std::uint64_t bytes)> place;
};

/// The layer groups of a kv_stream over a model of `layers` layers.
std::vector<index_range> layer_groups(std::uint32_t layers, std::uint32_t layers_per_chunk);

/// A request of a kv_stream and the token rows the iteration appends for it.
struct stream_slice {
  request_id request = 0;
  index_range tokens;
};

/// The slices of `stream` over `b`, in the stream's order; invalid_argument
/// naming a request that is not in the batch or is streamed twice.
result<std::vector<stream_slice>> stream_slices(const batch& b, const kv_stream& stream);

class backend;

/// One layer group of `slices`, exported from `dev` (one chunk per slice, in
/// order; each where stream.place puts it): what run_streaming hands to the
/// sink.
result<std::vector<kv_chunk>> export_group(backend& dev, const std::vector<stream_slice>& slices,
                                           index_range layers, const kv_stream& stream);

/// A batch item the device would not run, and why (screen()).
struct refusal {
  std::size_t index = 0;  ///< in the batch screened
  error why;
};

/// A batch split into the items its device can run and those it refuses.
struct screened_batch {
  batch runnable;                 ///< the items that passed, in their order
  std::vector<std::size_t> from;  ///< per runnable item: its index in the batch screened
  std::vector<refusal> refused;   ///< by ascending index
};

/// Splits `b` by dev.check_item, refusing a request's second appearance too,
/// so that one inconsistent item (a copy with a hole, a request the device
/// never saw) fails alone instead of failing the batch around it. What runs
/// may still fail as a whole on the batch's own limits.
screened_batch screen(const backend& dev, batch b);

/// `tokens` of the runnable part of `s` spread back over the batch screened
/// (`items` entries): no_token at each refused index.
std::vector<token_id> unscreen(const screened_batch& s, std::size_t items,
                               std::vector<token_id> tokens);

/// KV-cache geometry and capacity of one instance.
struct kv_geometry {
  std::uint32_t block_tokens = 16;    ///< tokens per block (all layers)
  std::uint64_t total_blocks = 0;     ///< blocks that fit in device memory after weights
  std::uint64_t bytes_per_block = 0;  ///< KV bytes of one block over all layers
  dtype kv_dtype = dtype::bf16;
};

/// The device a worker drives.
class backend {
 public:
  virtual ~backend() = default;

  /// "cpu", "sim:h100", "sim:h100-splitwise2023", "cuda:0", ...
  virtual std::string_view name() const noexcept = 0;
  virtual const model_spec& model() const noexcept = 0;
  virtual kv_geometry kv() const noexcept = 0;

  /// What run() says of `item` whatever else its batch holds: ok, or the
  /// error it would fail the batch with for this item (a token count or id
  /// that is not valid, a context past max_context or other than what every
  /// layer caches, a request it does not know). The batch's own limits (a
  /// request twice, too many items or rows, the KV pool) are run()'s alone.
  /// screen() uses it to refuse one item instead of failing its batch.
  virtual status check_item(const batch_item& item) const = 0;

  /// Runs one iteration. Fails (without changing any request's KV) when an
  /// item is inconsistent with the cached state, e.g. `context` differs from
  /// the tokens every layer holds for that request, or the KV pool is
  /// exhausted. Rows that only some layers hold beyond `context` (a copy cut
  /// off between two layers, its sender lost) are overwritten: afterwards
  /// every layer holds context + num_tokens.
  virtual result<iteration_result> run(const batch& b) = 0;

  /// run(b), and the KV rows it appends for `stream.requests` handed to
  /// `stream.sink` layer group by layer group. Fails with invalid_argument,
  /// before anything runs, when a request of the stream is not in the batch
  /// (or twice in the stream). This default computes the whole iteration,
  /// then exports every group; cpu and cuda override it to hand each group
  /// over while the later layers still compute. Should the device fail after
  /// some groups went out, those chunks hold valid KV: a receiver just holds
  /// a shorter copy.
  virtual result<iteration_result> run_streaming(const batch& b, const kv_stream& stream);

  /// Copies a slice of a request's KV cache out. Fails when the request or
  /// part of the slice is not cached here.
  virtual result<kv_chunk> export_kv(request_id request, index_range layers,
                                     index_range tokens) = 0;

  /// Writes a slice into this instance's KV cache, creating the request's
  /// cache when it is new. Slices may arrive layer by layer; a request can be
  /// decoded here once every layer holds the same tokens [0, n). A backend
  /// may return before the bytes are in place (cuda: they are on their way
  /// on its copy stream) as long as every later call sees them there; it
  /// keeps a share of chunk.data for as long as it reads it.
  virtual status import_kv(const kv_chunk& chunk) = 0;

  /// Pinned host memory this backend copies to and from directly, or
  /// nullptr (the default: none). chunk.data that import_kv finds there
  /// needs no host copy of its own. Unlike the rest of this interface the
  /// pool may be used from any thread (host_pool's contract) for as long as
  /// the backend lives: a worker fills it with incoming rows on its actor's
  /// thread, not on the device's.
  virtual host_pool* host_buffers() noexcept { return nullptr; }

  /// Tokens cached for `request` in every layer (0 when unknown).
  virtual std::uint32_t cached_tokens(request_id request) const noexcept = 0;

  /// Frees a request's KV cache; unknown ids are ignored.
  virtual void release(request_id request) noexcept = 0;

  /// Bytes of a slice in kv_chunk::data's layout (from kv() and the model).
  std::uint64_t slice_bytes(index_range layers, index_range tokens) const noexcept;

  // Same-node KV copies between processes (kv_ring.hpp). The defaults use
  // host memory and go through export_kv/import_kv (one more copy each
  // way); cuda_backend keeps the bytes in device memory.

  /// A region of `bytes` that this backend packs KV into and another process
  /// on the node can map (shared_region::share).
  virtual result<std::unique_ptr<shared_region>> create_shared(std::uint64_t bytes);
  /// Maps a region another process created; unsupported when this backend
  /// cannot read `kind`, invalid_argument when the descriptor is not one.
  virtual result<std::unique_ptr<shared_region>> open_shared(region_kind kind, unique_fd fd,
                                                             std::uint64_t bytes);
  /// export_kv, but the bytes go to `offset` of `region` (created by this
  /// backend) and are there when it returns; the chunk comes back with
  /// `data` empty. out_of_range when they would not fit the region.
  virtual result<kv_chunk> export_kv_to(shared_region& region, std::uint64_t offset,
                                        request_id request, index_range layers, index_range tokens);
  /// import_kv of `header` (data empty; layers, tokens, bytes set) whose
  /// bytes lie at `offset` of `region` (opened by this backend). Checks as
  /// import_kv, and out_of_range when they would run past the region.
  virtual status import_kv_from(const shared_region& region, std::uint64_t offset,
                                const kv_chunk& header);
};

}  // namespace accellm::device

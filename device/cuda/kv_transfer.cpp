// cuda_backend's KV movement (declared in cuda_backend.hpp): export_kv, import_kv,
// copy_kv_to, and run_streaming's layer-group copies that overlap the forward pass
// (into a cuda_region where kv_stream::place says; kv_shared.cpp has the rest
// of that same-node path).
#include "device/cuda/check.hpp"
#include "device/cuda/cuda_backend.hpp"
#include "device/cuda/fill_uniform.cuh"
#include "device/cuda/kv_copy.cuh"

#include <algorithm>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

namespace accellm::device::cuda {

status cuda_backend::check_slice(const sequence& s, index_range layers, index_range tokens) const {
  if (layers.begin > layers.end || tokens.begin > tokens.end)
    return fail(errc::invalid_argument, "reversed layer or token range");
  if (layers.end > shape_.layers)
    return fail(errc::out_of_range, "layers end at " + std::to_string(layers.end) + ", model has " +
                                        std::to_string(shape_.layers));
  for (std::uint32_t l = layers.begin; l < layers.end; ++l)
    if (tokens.end > s.layer_tokens[l])
      return fail(errc::out_of_range, "tokens up to " + std::to_string(tokens.end) +
                                          " not cached in layer " + std::to_string(l));
  return {};
}

status cuda_backend::ensure_staging(std::uint64_t elems) {
  // Imports in flight read dev_stage_: they finish before it is replaced.
  if ((host_stage_.size() < elems || dev_stage_.size() < elems) && !imports_.empty())
    ACCELLM_CUDA_TRY(cudaStreamSynchronize(copy_stream_.get()));
  if (host_stage_.size() < elems) {
    auto h = pinned_buffer<__nv_bfloat16>::allocate(elems);
    if (!h) return std::move(h).err();
    host_stage_ = std::move(*h);
  }
  if (dev_stage_.size() < elems) {
    dev_stage_ = device_buffer<__nv_bfloat16>{};
    auto d = device_buffer<__nv_bfloat16>::allocate(elems);
    if (!d) return std::move(d).err();
    dev_stage_ = std::move(*d);
  }
  return {};
}

kv_pool_view cuda_backend::pool_view() const noexcept {
  return kv_pool_view{pool_.data(),
                      shape_.layers,
                      limits_.block_tokens,
                      shape_.attn.kv_width(),
                      nullptr,
                      0,
                      static_cast<std::uint32_t>(total_blocks_)};
}

status cuda_backend::stage_slice(const sequence& s, index_range layers, index_range tokens,
                                 __nv_bfloat16* packed, kv_direction dir,
                                 const std::int32_t* table) {
  cudaStream_t cs = copy_stream_.get();
  ACCELLM_CUDA_TRY(cudaMemcpyAsync(dev_table_.data(), table != nullptr ? table : s.table.data(),
                                   s.table.size() * sizeof(std::int32_t), cudaMemcpyHostToDevice,
                                   cs));
  return kv_copy(pool_view(), dev_table_.data(), layers.begin, layers.size(), tokens.begin,
                 tokens.size(), packed, dir, cs);
}

status cuda_backend::pack_slice(const sequence& s, index_range layers, index_range tokens,
                                __nv_bfloat16* to) {
  ACCELLM_CUDA_TRY(cudaSetDevice(device_));
  // The copy stream waits for the last iteration that wrote this KV.
  ACCELLM_CUDA_TRY(cudaStreamWaitEvent(copy_stream_.get(), compute_done_.get(), 0));
  return stage_slice(s, layers, tokens, to, kv_direction::pack);
}

result<kv_chunk> cuda_backend::export_kv(request_id request, index_range layers,
                                         index_range tokens) {
  auto it = seqs_.find(request);
  if (it == seqs_.end())
    return fail(errc::not_found, "request " + std::to_string(request) + " is not cached");
  if (auto st = check_slice(it->second, layers, tokens); !st) return std::move(st).err();
  kv_chunk c;
  c.request = request;
  c.layers = layers;
  c.tokens = tokens;
  const std::uint64_t elems = 2ull * layers.size() * tokens.size() * shape_.attn.kv_width();
  c.bytes = elems * 2;
  if (elems == 0) return c;
  ACCELLM_CUDA_TRY(cudaSetDevice(device_));
  ACCELLM_TRY(ensure_staging(elems));
  ACCELLM_TRY(pack_slice(it->second, layers, tokens, dev_stage_.data()));
  cudaStream_t cs = copy_stream_.get();
  // Into lent memory the chunk then holds; the stage and a copy without room.
  const std::optional<host_lease> lease = lent_.take(c.bytes);
  std::byte* to = lease ? lease->data() : reinterpret_cast<std::byte*>(host_stage_.data());
  ACCELLM_CUDA_TRY(cudaMemcpyAsync(to, dev_stage_.data(), c.bytes, cudaMemcpyDeviceToHost, cs));
  ACCELLM_CUDA_TRY(cudaStreamSynchronize(cs));
  c.data = lease ? lease->share(0, c.bytes) : copy_out(to, c.bytes);
  return c;
}

status cuda_backend::ensure_group_events(std::size_t groups) {
  while (group_computed_.size() < groups) {
    auto computed = event::create();
    if (!computed) return std::move(computed).err();
    auto copied = event::create();
    if (!copied) return std::move(copied).err();
    group_computed_.push_back(std::move(*computed));
    group_copied_.push_back(std::move(*copied));
  }
  return {};
}

namespace {

// Where run_streaming put one (group, slice): packed straight into a
// cuda_region (gpu), into pinned memory and then a host region (host), or
// into pinned memory for kv_chunk::data (neither): the group's lease, or the
// stage when the pool had no room.
struct slice_target {
  std::optional<kv_place> place;
  bool gpu = false;
  std::byte* host = nullptr;
  bool dropped = false;  // for kv_chunk::data, but the pinned pool had no room
};

// The bytes of a place in a host region; the checks backend's default makes.
result<std::byte*> host_place(const kv_place& p, std::uint64_t bytes) {
  if (p.region == nullptr) return fail(errc::invalid_argument, "run_streaming: a place, no region");
  auto* host = dynamic_cast<host_region*>(p.region);
  if (host == nullptr)
    return fail(errc::unsupported, "run_streaming: a " + std::string{to_string(p.region->kind())} +
                                       " region that is not this GPU's");
  if (p.offset > host->bytes() || bytes > host->bytes() - p.offset)
    return fail(errc::out_of_range, "run_streaming: " + std::to_string(bytes) +
                                        " bytes at offset " + std::to_string(p.offset) +
                                        " run past the region's " + std::to_string(host->bytes()));
  return host->data() + p.offset;
}

}  // namespace

result<iteration_result> cuda_backend::run_streaming(const batch& b, const kv_stream& stream) {
  auto slices = stream_slices(b, stream);
  if (!slices) return std::move(slices).err();
  const std::vector<index_range> groups = layer_groups(shape_.layers, stream.layers_per_chunk);
  const bool prompt = std::any_of(b.items.begin(), b.items.end(),
                                  [](const batch_item& it) { return it.num_tokens > 1; });
  if (!prompt && groups.size() > 1) {
    // A decode-only iteration is one graph launch, with nothing to overlap:
    // its rows go out after it, in one group of every layer.
    kv_stream whole = stream;
    whole.layers_per_chunk = 0;
    return backend::run_streaming(b, whole);
  }
  if (!prompt || groups.size() < 2 || slices->empty()) return backend::run_streaming(b, stream);
  ACCELLM_TRY(check_batch(b));
  ACCELLM_TRY(grow_batch(b));

  // The staging buffers hold every (group, slice) one after another, group by
  // group; at[g * n + i] is where slice i of group g starts, at.back() the end.
  // A slice packed into a ring leaves its part of them unused.
  const std::size_t n = slices->size();
  const std::uint64_t kvw = shape_.attn.kv_width();
  std::vector<std::uint64_t> at;
  at.reserve(groups.size() * n + 1);
  std::uint64_t total = 0;
  for (const index_range g : groups)
    for (const stream_slice& sl : *slices) {
      at.push_back(total);
      total += 2ull * g.size() * sl.tokens.size() * kvw;
    }
  at.push_back(total);
  ACCELLM_TRY(ensure_staging(total));
  ACCELLM_TRY(ensure_group_events(groups.size()));
  // The plan puts item k's block table in slot k (build_plan).
  std::vector<std::uint32_t> slot(n);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t k = 0; k < b.items.size(); ++k)
      if (b.items[k].request == (*slices)[i].request) slot[i] = static_cast<std::uint32_t>(k);

  std::vector<slice_target> where(groups.size() * n);
  // Per group, the pinned memory lent for what goes to the host, if any.
  // Declared before the hooks, so that it outlives every copy into it.
  std::vector<std::optional<host_lease>> lent(groups.size());
  // Where element `elem` of the staging layout lands on the host.
  auto landing = [&](std::size_t g, std::uint64_t elem) -> std::byte* {
    if (lent[g]) return lent[g]->data() + (elem - at[g * n]) * 2;
    return reinterpret_cast<std::byte*>(host_stage_.data() + elem);
  };
  // Host, in the hook: asks stream.place for slice i of group g; where to pack it.
  auto target = [&](std::size_t g, std::size_t i) -> result<__nv_bfloat16*> {
    const std::size_t k = g * n + i;
    __nv_bfloat16* staged = dev_stage_.data() + at[k];
    if (!stream.place) return staged;
    const std::uint64_t bytes = (at[k + 1] - at[k]) * 2;
    where[k].place = stream.place(i, bytes);
    if (!where[k].place) return staged;
    if (auto* gpu = dynamic_cast<cuda_region*>(where[k].place->region)) {
      where[k].gpu = true;
      return region_span(*gpu, where[k].place->offset, bytes, "run_streaming");
    }
    auto host = host_place(*where[k].place, bytes);
    if (!host) return std::move(host).err();
    where[k].host = *host;
    return staged;
  };

  cudaStream_t cs = copy_stream_.get();
  std::size_t next = 0;  // the group whose last layer is enqueued next
  layer_hooks hooks;
  // Host: queue the group's copy behind its last layer, while later layers
  // are still being enqueued. The copy stream packs from the plan's block
  // tables, already on the device (no host-to-device upload that could make
  // the host wait for the copy stream).
  hooks.enqueued = [&](std::uint32_t l) -> status {
    if (l + 1 != groups[next].end) return {};
    const std::size_t g = next++;
    ACCELLM_CUDA_TRY(cudaEventRecord(group_computed_[g].get(), stream_.get()));
    ACCELLM_CUDA_TRY(cudaStreamWaitEvent(cs, group_computed_[g].get(), 0));
    const std::int32_t* tables = forward_->device_tables();
    for (std::size_t i = 0; i < n; ++i) {
      auto to = target(g, i);
      if (!to) return std::move(to).err();
      const index_range tokens = (*slices)[i].tokens;
      ACCELLM_TRY(kv_copy(pool_view(), tables + std::size_t{slot[i]} * limits_.table_stride(),
                          groups[g].begin, groups[g].size(), tokens.begin, tokens.size(), *to,
                          kv_direction::pack, cs));
    }
    // What did not go to a ring on the GPU: to pinned memory (lent for the
    // whole group: slices are adjacent), one copy per run of adjacent slices.
    const bool to_host = std::any_of(where.begin() + static_cast<std::ptrdiff_t>(g * n),
                                     where.begin() + static_cast<std::ptrdiff_t>(g * n + n),
                                     [](const slice_target& t) { return !t.gpu; });
    if (to_host) lent[g] = lent_.take((at[g * n + n] - at[g * n]) * 2);
    // No room in a pool there is: the slices bound for kv_chunk::data are
    // dropped (their copies given up) rather than copied out on this thread
    // at 3-4 GB/s while the GPU waits. The pool is sized so that the flow
    // control gives up a lagging copy first (config::default_kv_pinned_mib);
    // a pool of 0 asks for every chunk to be copied out.
    if (to_host && !lent[g] && lent_.cap_bytes() > 0)
      for (std::size_t i = 0; i < n; ++i) {
        slice_target& t = where[g * n + i];
        t.dropped = !t.gpu && t.host == nullptr;
      }
    const auto copied = [&](std::size_t i) {
      const slice_target& t = where[g * n + i];
      return !t.gpu && !t.dropped;
    };
    for (std::size_t i = 0; i < n;) {
      if (!copied(i)) {
        ++i;
        continue;
      }
      std::size_t j = i + 1;
      while (j < n && copied(j)) ++j;
      const std::uint64_t first = at[g * n + i], end = at[g * n + j];
      ACCELLM_CUDA_TRY(cudaMemcpyAsync(landing(g, first), dev_stage_.data() + first,
                                       (end - first) * 2, cudaMemcpyDeviceToHost, cs));
      i = j;
    }
    ACCELLM_CUDA_TRY(cudaEventRecord(group_copied_[g].get(), cs));
    return {};
  };
  // Host, once everything is queued: each group to the sink as it lands
  // (its ring bytes too: they were packed before the same event).
  hooks.before_wait = [&]() -> status {
    for (std::size_t g = 0; g < groups.size(); ++g) {
      ACCELLM_CUDA_TRY(cudaEventSynchronize(group_copied_[g].get()));
      std::vector<kv_chunk> chunks(n);
      for (std::size_t i = 0; i < n; ++i) {
        const std::size_t k = g * n + i;
        kv_chunk& c = chunks[i];
        c.request = (*slices)[i].request;
        c.layers = groups[g];
        c.tokens = (*slices)[i].tokens;
        c.bytes = (at[k + 1] - at[k]) * 2;
        const std::byte* staged = landing(g, at[k]);
        if (where[k].place) {
          c.ring = where[k].place->ring;
          c.ring_pos = where[k].place->pos;
        }
        if (where[k].host != nullptr)
          std::memcpy(where[k].host, staged, c.bytes);
        else if (where[k].dropped)
          c.dropped = true;
        else if (!where[k].gpu && lent[g])
          c.data = lent[g]->share((at[k] - at[g * n]) * 2, c.bytes);  // no copy
        else if (!where[k].gpu)
          c.data = copy_out(staged, c.bytes);
      }
      if (stream.sink) stream.sink(std::move(chunks));
      lent[g].reset();  // the chunks hold what they need of it
    }
    return {};
  };
  auto r = run_checked(b, &hooks);
  // A failed iteration may leave copies into lent memory in flight: they
  // land before it goes back to the pool.
  if (!r) (void)cudaStreamSynchronize(cs);
  return r;
}

status cuda_backend::check_incoming(request_id request, index_range layers,
                                    index_range tokens) const {
  if (layers.begin > layers.end || tokens.begin > tokens.end)
    return fail(errc::invalid_argument, "reversed layer or token range");
  if (layers.end > shape_.layers) return fail(errc::out_of_range, "layers end beyond the model");
  if (tokens.end > limits_.max_context)
    return fail(errc::out_of_range, "tokens end beyond max_context");
  auto found = seqs_.find(request);
  for (std::uint32_t l = layers.begin; l < layers.end; ++l) {
    const std::uint32_t have = found == seqs_.end() ? 0 : found->second.layer_tokens[l];
    if (tokens.begin > have)
      return fail(errc::out_of_range, "chunk starts at token " + std::to_string(tokens.begin) +
                                          ", layer " + std::to_string(l) + " holds " +
                                          std::to_string(have) + ": a gap");
  }
  return {};
}

status cuda_backend::unpack_from(request_id request, index_range layers, index_range tokens,
                                 __nv_bfloat16* from) {
  const bool created = seqs_.count(request) == 0;
  if (auto st = grow(request, tokens.end); !st) {
    if (created) release(request);
    return st;
  }
  sequence& s = seqs_.at(request);
  if (auto st = stage_slice(s, layers, tokens, from, kv_direction::unpack); !st) return st;
  ACCELLM_CUDA_TRY(cudaStreamSynchronize(copy_stream_.get()));
  for (std::uint32_t l = layers.begin; l < layers.end; ++l)
    s.layer_tokens[l] = std::max(s.layer_tokens[l], tokens.end);
  return {};
}

status cuda_backend::import_kv(const kv_chunk& chunk) {
  if (auto st = check_incoming(chunk.request, chunk.layers, chunk.tokens); !st) return st;
  const std::uint64_t elems =
      2ull * chunk.layers.size() * chunk.tokens.size() * shape_.attn.kv_width();
  if (chunk.data.size() != elems * 2 || chunk.bytes != chunk.data.size())
    return fail(errc::invalid_argument, "chunk data holds " + std::to_string(chunk.data.size()) +
                                            " bytes, the shape needs " + std::to_string(elems * 2));
  if (elems == 0) return {};
  ACCELLM_CUDA_TRY(cudaSetDevice(device_));
  reap_imports();
  if (auto st = ensure_staging(elems); !st) return st;
  const bool created = seqs_.count(chunk.request) == 0;
  if (auto st = grow(chunk.request, chunk.tokens.end); !st) {
    if (created) release(chunk.request);
    return st;
  }
  auto queued = import_async(chunk);
  if (!queued && created) release(chunk.request);
  if (!queued) return std::move(queued).err();
  if (*queued) return {};
  // No pinned memory to spare: through the stage, waiting for the copy.
  cudaStream_t cs = copy_stream_.get();
  std::memcpy(host_stage_.data(), chunk.data.data(), chunk.bytes);
  ACCELLM_CUDA_TRY(cudaStreamWaitEvent(cs, compute_done_.get(), 0));
  ACCELLM_CUDA_TRY(cudaMemcpyAsync(dev_stage_.data(), host_stage_.data(), chunk.bytes,
                                   cudaMemcpyHostToDevice, cs));
  auto st = unpack_from(chunk.request, chunk.layers, chunk.tokens, dev_stage_.data());
  if (!st && created) release(chunk.request);
  return st;
}

result<bool> cuda_backend::import_async(const kv_chunk& chunk) {
  sequence& s = seqs_.at(chunk.request);
  // The bytes the copy engine reads: chunk.data itself when it lies in this
  // backend's pinned pool (the worker put it there on arrival), else a lease
  // filled here; the block table goes in a lease too, as a pageable upload
  // may wait for the copy stream.
  const bool pinned = lent_.owns(chunk.data.data(), chunk.bytes);
  const std::uint64_t data_room = pinned ? 0 : host_pool::rounded(chunk.bytes);
  const std::uint64_t table_bytes = s.table.size() * sizeof(std::int32_t);
  std::optional<host_lease> lease = lent_.take(data_room + table_bytes);
  if (!lease) return false;
  if (!pinned) std::memcpy(lease->data(), chunk.data.data(), chunk.bytes);
  std::memcpy(lease->data() + data_room, s.table.data(), table_bytes);
  const std::byte* from = pinned ? chunk.data.data() : lease->data();
  cudaStream_t cs = copy_stream_.get();
  // After the last iteration, which may still read blocks this one reuses.
  ACCELLM_CUDA_TRY(cudaStreamWaitEvent(cs, compute_done_.get(), 0));
  ACCELLM_CUDA_TRY(
      cudaMemcpyAsync(dev_stage_.data(), from, chunk.bytes, cudaMemcpyHostToDevice, cs));
  const status unpacked =
      stage_slice(s, chunk.layers, chunk.tokens, dev_stage_.data(), kv_direction::unpack,
                  reinterpret_cast<const std::int32_t*>(lease->data() + data_room));
  // Whether or not it unpacked, the copies above read both until this event.
  std::vector<shared_bytes> held{lease->share(0, lease->size())};
  if (pinned) held.push_back(chunk.data);
  ACCELLM_TRY(track_import(chunk.request, std::move(held)));
  if (!unpacked) return unpacked.err();
  for (std::uint32_t l = chunk.layers.begin; l < chunk.layers.end; ++l)
    s.layer_tokens[l] = std::max(s.layer_tokens[l], chunk.tokens.end);
  return true;
}

status cuda_backend::track_import(request_id request, std::vector<shared_bytes> held) {
  event read;
  if (spare_events_.empty()) {
    ACCELLM_TRY_ASSIGN(read, event::create());
  } else {
    read = std::move(spare_events_.back());
    spare_events_.pop_back();
  }
  ACCELLM_CUDA_TRY(cudaEventRecord(read.get(), copy_stream_.get()));
  imports_.push_back({std::move(read), request, std::move(held)});
  ++importing_[request];
  return {};
}

void cuda_backend::reap_imports() noexcept {
  while (!imports_.empty()) {
    const cudaError_t q = cudaEventQuery(imports_.front().read.get());
    if (q == cudaErrorNotReady) (void)cudaGetLastError();  // not an error: not to be seen later
    if (q != cudaSuccess) return;
    pending_import& done = imports_.front();
    if (auto it = importing_.find(done.request); it != importing_.end() && --it->second == 0)
      importing_.erase(it);
    spare_events_.push_back(std::move(done.read));
    imports_.pop_front();
  }
}

status cuda_backend::wait_for_imports(const batch& b) {
  reap_imports();
  if (imports_.empty()) return {};
  const bool needed = std::any_of(b.items.begin(), b.items.end(), [&](const batch_item& it) {
    return importing_.count(it.request) != 0;
  });
  // The copy stream runs in order: its latest import covers the rest.
  if (needed) ACCELLM_CUDA_TRY(cudaStreamWaitEvent(stream_.get(), imports_.back().read.get(), 0));
  return {};
}

status cuda_backend::copy_kv_to(cuda_backend& dst, request_id request, index_range layers,
                                index_range tokens) {
  if (&dst == this)
    return fail(errc::invalid_argument, "copy_kv_to: source and destination are one");
  if (dst.shape_.layers != shape_.layers || dst.shape_.attn.kv_width() != shape_.attn.kv_width())
    return fail(errc::invalid_argument, "copy_kv_to: the two instances' KV shapes differ");
  auto it = seqs_.find(request);
  if (it == seqs_.end())
    return fail(errc::not_found, "request " + std::to_string(request) + " is not cached");
  if (auto st = check_slice(it->second, layers, tokens); !st) return st;
  if (auto st = dst.check_incoming(request, layers, tokens); !st) return st;
  const std::uint64_t elems = 2ull * layers.size() * tokens.size() * shape_.attn.kv_width();
  if (elems == 0) return {};
  // Pack here, on this instance's copy stream.
  ACCELLM_CUDA_TRY(cudaSetDevice(device_));
  ACCELLM_TRY(ensure_staging(elems));
  ACCELLM_TRY(pack_slice(it->second, layers, tokens, dev_stage_.data()));
  ACCELLM_CUDA_TRY(cudaEventRecord(packed_.get(), copy_stream_.get()));
  // One device-to-device copy (peer-to-peer across GPUs), then unpack there.
  ACCELLM_CUDA_TRY(cudaSetDevice(dst.device_));
  if (auto st = dst.ensure_staging(elems); !st) return st;
  cudaStream_t ds = dst.copy_stream_.get();
  ACCELLM_CUDA_TRY(cudaStreamWaitEvent(ds, packed_.get(), 0));
  ACCELLM_CUDA_TRY(cudaStreamWaitEvent(ds, dst.compute_done_.get(), 0));
  ACCELLM_CUDA_TRY(cudaMemcpyPeerAsync(dst.dev_stage_.data(), dst.device_, dev_stage_.data(),
                                       device_, elems * 2, ds));
  auto st = dst.unpack_from(request, layers, tokens, dst.dev_stage_.data());
  cudaSetDevice(device_);
  return st;
}

status cuda_backend::assume_cached(request_id request, std::uint32_t tokens) {
  if (seqs_.count(request) != 0)
    return fail(errc::invalid_argument, "request " + std::to_string(request) + " already cached");
  if (tokens > limits_.max_context) return fail(errc::out_of_range, "tokens beyond max_context");
  const std::uint64_t need = (tokens + limits_.block_tokens - 1) / limits_.block_tokens;
  if (need > free_.size()) return fail(errc::out_of_memory, "KV pool exhausted");
  if (auto st = grow(request, tokens); !st) return st;
  auto& lt = seqs_.at(request).layer_tokens;
  std::fill(lt.begin(), lt.end(), tokens);
  return {};
}

status cuda_backend::fill_pool(std::uint64_t seed) {
  if (auto st = fill_uniform(pool_.data(), pool_.size(), seed, 1.0f, stream_.get()); !st) return st;
  return stream_.synchronize();
}

}  // namespace accellm::device::cuda

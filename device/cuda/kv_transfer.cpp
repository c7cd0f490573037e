// cuda_backend's KV movement (declared in cuda_backend.hpp): export_kv, import_kv,
// copy_kv_to, and run_streaming's layer-group copies that overlap the forward pass.
#include "device/cuda/check.hpp"
#include "device/cuda/cuda_backend.hpp"
#include "device/cuda/fill_uniform.cuh"
#include "device/cuda/kv_copy.cuh"

#include <algorithm>
#include <cstring>
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
  return kv_pool_view{pool_.data(),           shape_.layers, limits_.block_tokens,
                      shape_.attn.kv_width(), nullptr,       0};
}

status cuda_backend::stage_slice(const sequence& s, index_range layers, index_range tokens,
                                 bool pack) {
  cudaStream_t cs = copy_stream_.get();
  ACCELLM_CUDA_TRY(cudaMemcpyAsync(dev_table_.data(), s.table.data(),
                                   s.table.size() * sizeof(std::int32_t), cudaMemcpyHostToDevice,
                                   cs));
  return kv_copy(pool_view(), dev_table_.data(), layers.begin, layers.size(), tokens.begin,
                 tokens.size(), dev_stage_.data(), pack ? kv_direction::pack : kv_direction::unpack,
                 cs);
}

status cuda_backend::pack_slice(const sequence& s, index_range layers, index_range tokens,
                                std::uint64_t elems) {
  ACCELLM_CUDA_TRY(cudaSetDevice(device_));
  if (auto st = ensure_staging(elems); !st) return st;
  // The copy stream waits for the last iteration that wrote this KV.
  ACCELLM_CUDA_TRY(cudaStreamWaitEvent(copy_stream_.get(), compute_done_.get(), 0));
  return stage_slice(s, layers, tokens, true);
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
  if (auto st = pack_slice(it->second, layers, tokens, elems); !st) return std::move(st).err();
  cudaStream_t cs = copy_stream_.get();
  ACCELLM_CUDA_TRY(
      cudaMemcpyAsync(host_stage_.data(), dev_stage_.data(), c.bytes, cudaMemcpyDeviceToHost, cs));
  ACCELLM_CUDA_TRY(cudaStreamSynchronize(cs));
  c.data.resize(c.bytes);
  std::memcpy(c.data.data(), host_stage_.data(), c.bytes);
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

result<iteration_result> cuda_backend::run_streaming(const batch& b, const kv_stream& stream) {
  auto slices = stream_slices(b, stream);
  if (!slices) return std::move(slices).err();
  const std::vector<index_range> groups = layer_groups(shape_.layers, stream.layers_per_chunk);
  const bool prompt = std::any_of(b.items.begin(), b.items.end(),
                                  [](const batch_item& it) { return it.num_tokens > 1; });
  if (groups.size() < 2 || slices->empty() || !prompt) return backend::run_streaming(b, stream);
  ACCELLM_TRY(check_batch(b));
  ACCELLM_TRY(grow_batch(b));

  // The staging buffers hold every (group, slice) one after another, group by
  // group; at[g * n + i] is where slice i of group g starts, at.back() the end.
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
      const index_range tokens = (*slices)[i].tokens;
      ACCELLM_TRY(kv_copy(pool_view(), tables + std::size_t{slot[i]} * limits_.table_stride(),
                          groups[g].begin, groups[g].size(), tokens.begin, tokens.size(),
                          dev_stage_.data() + at[g * n + i], kv_direction::pack, cs));
    }
    const std::uint64_t first = at[g * n], end = at[(g + 1) * n];
    ACCELLM_CUDA_TRY(cudaMemcpyAsync(host_stage_.data() + first, dev_stage_.data() + first,
                                     (end - first) * 2, cudaMemcpyDeviceToHost, cs));
    ACCELLM_CUDA_TRY(cudaEventRecord(group_copied_[g].get(), cs));
    return {};
  };
  // Host, once everything is queued: each group to the sink as it lands.
  hooks.before_wait = [&]() -> status {
    for (std::size_t g = 0; g < groups.size(); ++g) {
      ACCELLM_CUDA_TRY(cudaEventSynchronize(group_copied_[g].get()));
      std::vector<kv_chunk> chunks(n);
      for (std::size_t i = 0; i < n; ++i) {
        kv_chunk& c = chunks[i];
        c.request = (*slices)[i].request;
        c.layers = groups[g];
        c.tokens = (*slices)[i].tokens;
        c.bytes = (at[g * n + i + 1] - at[g * n + i]) * 2;
        c.data.resize(c.bytes);
        std::memcpy(c.data.data(), host_stage_.data() + at[g * n + i], c.bytes);
      }
      if (stream.sink) stream.sink(std::move(chunks));
    }
    return {};
  };
  return run_checked(b, &hooks);
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

status cuda_backend::unpack_staged(request_id request, index_range layers, index_range tokens) {
  const bool created = seqs_.count(request) == 0;
  if (auto st = grow(request, tokens.end); !st) {
    if (created) release(request);
    return st;
  }
  sequence& s = seqs_.at(request);
  if (auto st = stage_slice(s, layers, tokens, false); !st) return st;
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
  if (auto st = ensure_staging(elems); !st) return st;
  cudaStream_t cs = copy_stream_.get();
  std::memcpy(host_stage_.data(), chunk.data.data(), chunk.bytes);
  ACCELLM_CUDA_TRY(cudaStreamWaitEvent(cs, compute_done_.get(), 0));
  ACCELLM_CUDA_TRY(cudaMemcpyAsync(dev_stage_.data(), host_stage_.data(), chunk.bytes,
                                   cudaMemcpyHostToDevice, cs));
  return unpack_staged(chunk.request, chunk.layers, chunk.tokens);
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
  if (auto st = pack_slice(it->second, layers, tokens, elems); !st) return st;
  ACCELLM_CUDA_TRY(cudaEventRecord(packed_.get(), copy_stream_.get()));
  // One device-to-device copy (peer-to-peer across GPUs), then unpack there.
  ACCELLM_CUDA_TRY(cudaSetDevice(dst.device_));
  if (auto st = dst.ensure_staging(elems); !st) return st;
  cudaStream_t ds = dst.copy_stream_.get();
  ACCELLM_CUDA_TRY(cudaStreamWaitEvent(ds, packed_.get(), 0));
  ACCELLM_CUDA_TRY(cudaStreamWaitEvent(ds, dst.compute_done_.get(), 0));
  ACCELLM_CUDA_TRY(cudaMemcpyPeerAsync(dst.dev_stage_.data(), dst.device_, dev_stage_.data(),
                                       device_, elems * 2, ds));
  auto st = dst.unpack_staged(request, layers, tokens);
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

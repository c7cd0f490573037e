#include "device/cuda/cuda_backend.hpp"

#include "device/cuda/check.hpp"
#include "device/cuda/device_query.hpp"
#include "device/cuda/kv_copy.cuh"
#include "device/cuda/prefill_attention.cuh"
#include "device/cuda/programmatic.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <unordered_set>

namespace accellm::device::cuda {
namespace {

// The pinned pool grows by arenas of this much: a few layers of a long
// prompt each (a Llama-2-7B layer of 2048 tokens is 32 MiB), few enough
// allocations that their cost (pinning is ~10 GB/s) is paid once, early.
constexpr std::uint64_t pinned_arena_bytes = std::uint64_t{256} << 20;

std::string item_prefix(std::size_t i) {
  return "batch item " + std::to_string(i);
}

}  // namespace

result<int> parse_cuda_device(std::string_view name) {
  constexpr std::string_view prefix = "cuda:";
  if (name.substr(0, prefix.size()) != prefix || name.size() == prefix.size())
    return fail(errc::invalid_argument,
                "device \"" + std::string{name} + "\" is not of the form cuda:N");
  const std::string_view digits = name.substr(prefix.size());
  int index = -1;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), index);
  if (ec != std::errc{} || end != digits.data() + digits.size() || index < 0)
    return fail(errc::invalid_argument,
                "device \"" + std::string{name} + "\": N in cuda:N must be a device index");
  return index;
}

cuda_backend::cuda_backend(key, std::string name, model_spec spec, shard_shape shape,
                           cuda_options options)
    : name_(std::move(name)),
      spec_(std::move(spec)),
      shape_(shape),
      options_(options),
      lent_(0, 0, {}) {}

kv_geometry cuda_backend::kv() const noexcept {
  kv_geometry g;
  g.block_tokens = limits_.block_tokens;
  g.total_blocks = total_blocks_;
  g.bytes_per_block = 2ull * shape_.layers * limits_.block_tokens * shape_.attn.kv_width() * 2;
  g.kv_dtype = dtype::bf16;
  return g;
}

double cuda_backend::allreduce_seconds(std::uint32_t rows) const noexcept {
  if (shape_.tp <= 1 || rows == 0) return 0.0;
  const double tp = shape_.tp;
  const double bytes = static_cast<double>(rows) * shape_.hidden * 2.0;  // bf16 activations
  const double one = options_.allreduce_latency_s +
                     bytes * 2.0 * (tp - 1.0) / tp / options_.allreduce_bus_bytes_per_s;
  return 2.0 * shape_.layers * one;
}

status cuda_backend::init(int device) {
  device_ = device;
  ACCELLM_CUDA_TRY(cudaSetDevice(device));
  cudaDeviceProp prop{};
  ACCELLM_CUDA_TRY(cudaGetDeviceProperties(&prop, device));
  gpu_name_ = prop.name;
  lent_ =
      host_pool{options_.pinned_kv_bytes, std::min(options_.pinned_kv_bytes, pinned_arena_bytes),
                pinned_allocator(device)};
  ACCELLM_TRY_ASSIGN(stream_, stream::create());
  ACCELLM_TRY_ASSIGN(packed_, event::create());
  ACCELLM_TRY_ASSIGN(copy_stream_, stream::create());
  ACCELLM_TRY_ASSIGN(compute_done_, event::create());
  ACCELLM_TRY_ASSIGN(weights_, make_weights(shape_, options_.seed, stream_.get()));
  ACCELLM_TRY(stream_.synchronize());
  limits_.max_rows = options_.max_rows;
  limits_.max_items = options_.max_batch;
  limits_.max_context = options_.max_context ? options_.max_context : spec_.max_context;
  kv_pool_view view;
  view.layers = shape_.layers;
  view.block_tokens = limits_.block_tokens;
  view.kv_width = shape_.attn.kv_width();
  // Scratch first, so the pool takes what is left.
  gemm_planner_options planner;
  if (!options_.skinny_gemm) {
    planner.skinny = planner.skinny_wgmma = planner.skinny_tma = nullptr;
    planner.skinny_tma_split = nullptr;
    planner.skinny_stream = nullptr;
  }
  if (!options_.cublaslt_split_k) planner.lt.varied = 0;
  auto fwd =
      forward_pass::create(shape_, spec_, weights_, view, limits_, options_.graphs, stream_.get(),
                           options_.prefill, planner, options_.decode_attention_tile);
  if (!fwd) return std::move(fwd).err();
  forward_ = std::move(*fwd);
  int major = 0;
  ACCELLM_CUDA_TRY(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  ACCELLM_TRY(forward_->set_decode_split_rule(options_.decode_splits));
  if (options_.programmatic_launch && major >= 9) {
    const status works = programmatic_launch_works(stream_.get());
    forward_->set_programmatic_launch(works.ok());
    if (!works) programmatic_refused_ = works.err().message();
  }
  const std::uint64_t block_bytes = view.block_elems() * 2;
  std::uint64_t blocks = options_.kv_blocks;
  if (blocks == 0) {
    std::size_t free_bytes = 0, total = 0;
    ACCELLM_CUDA_TRY(cudaMemGetInfo(&free_bytes, &total));
    blocks =
        static_cast<std::uint64_t>(static_cast<double>(free_bytes) * options_.memory_fraction) /
        block_bytes;
  }
  if (blocks == 0 || blocks > 0x7fffffffull)
    return fail(errc::out_of_memory, "no room for a KV pool after the weights and scratch");
  ACCELLM_TRY_ASSIGN(pool_, device_buffer<__nv_bfloat16>::allocate(blocks * view.block_elems()));
  total_blocks_ = blocks;
  // Zeroed once: a row no KV was written to reads as zeros, not as whatever
  // the memory held (tma128 reads whole pages, the masked rows past a
  // request's last position too; 0 x NaN would be NaN).
  ACCELLM_CUDA_TRY(cudaMemsetAsync(pool_.data(), 0, pool_.bytes(), stream_.get()));
  ACCELLM_TRY(stream_.synchronize());
  forward_->set_pool(pool_.data(), static_cast<std::uint32_t>(blocks));
  free_.resize(blocks);
  for (std::uint64_t i = 0; i < blocks; ++i) free_[i] = static_cast<std::int32_t>(blocks - 1 - i);
  ACCELLM_TRY_ASSIGN(dev_table_, device_buffer<std::int32_t>::allocate(limits_.table_stride()));
  return {};
}

std::vector<std::string> cuda_backend::describe_setup() const {
  const kv_geometry g = kv();
  char pool[160];
  std::snprintf(pool, sizeof pool, ", KV pool %llu blocks of %u tokens (%.1f GiB)",
                static_cast<unsigned long long>(g.total_blocks), g.block_tokens,
                static_cast<double>(g.total_blocks * g.bytes_per_block) / (1ull << 30));
  const std::string shard =
      shape_.tp > 1 ? " (one shard of " + std::to_string(shape_.tp) + ", all-reduce modelled)" : "";
  const std::string pdl = programmatic_launch()           ? "on"
                          : !options_.programmatic_launch ? "off (asked off)"
                          : programmatic_refused_.empty()
                              ? "off (needs compute capability 9.0 or later)"
                              : "off: " + programmatic_refused_;
  return {name_ + " (" + gpu_name_ + "): " + spec_.name + shard + pool,
          "prefill attention " + describe(prefill_kernel_choice()),
          "decode attention tile " + describe(decode_tile_choice()) + "; context splits by " +
              decode_split_rule_name(options_.decode_splits),
          std::string{"CUDA graphs "} + (options_.graphs == use_graphs::yes ? "on" : "off") +
              ", programmatic launch " + pdl,
          std::string{"decode products: cuBLAS(Lt)"} +
              (options_.cublaslt_split_k ? " with split-K variants" : " proposals only") +
              (options_.skinny_gemm ? " or accellm's skinny GEMMs" : "") +
              ", the fastest verified one per batch size, timed on its first use; prompts' "
              "products: cuBLASLt's proposals, timed once per power-of-two bucket of rows"};
}

result<std::unique_ptr<cuda_backend>> make_cuda_backend(std::string_view device,
                                                        const model_spec& spec,
                                                        cuda_options options) {
  auto index = parse_cuda_device(device);
  if (!index) return std::move(index).err();
  if (options.max_rows == 0 || options.max_batch == 0 || options.memory_fraction <= 0.0 ||
      options.memory_fraction > 1.0)
    return fail(errc::invalid_argument,
                "cuda options: max_rows and max_batch must be positive, memory_fraction in (0, 1]");
  if (options.max_context > spec.max_context)
    return fail(errc::invalid_argument, "cuda options: max_context exceeds the model's");
  auto shape = make_shard_shape(spec, options.tp);
  if (!shape) return std::move(shape).err();
  if (const auto& tile = options.decode_attention_tile.fixed;
      tile && !decode_tile_built(*tile, shape->attn.head_dim))
    return fail(errc::invalid_argument, std::string{"cuda options: decode attention tile "} +
                                            decode_tile_name(*tile) + " needs head_dim 64 or 128");
  const auto s = probe();
  if (!s.usable()) return fail(errc::device_failure, "no usable CUDA device: " + s.reason);
  if (*index >= s.device_count)
    return fail(errc::not_found, std::string{device} + ": only " + std::to_string(s.device_count) +
                                     " CUDA device(s) present");
  auto b = std::make_unique<cuda_backend>(cuda_backend::key{}, std::string{device}, spec, *shape,
                                          options);
  if (auto st = b->init(*index); !st) return std::move(st).err().context(device);
  return b;
}

result<std::unique_ptr<cuda_backend>> make_cuda_backend(std::string_view device,
                                                        std::string_view model,
                                                        cuda_options options) {
  const model_spec* spec = find_model(model);
  if (spec == nullptr) return fail(errc::not_found, "unknown model \"" + std::string{model} + "\"");
  return make_cuda_backend(device, *spec, options);
}

std::uint32_t cuda_backend::cached_tokens(request_id request) const noexcept {
  auto it = seqs_.find(request);
  if (it == seqs_.end()) return 0;
  return *std::min_element(it->second.layer_tokens.begin(), it->second.layer_tokens.end());
}

cuda_backend::~cuda_backend() {
  // Imports in flight read memory their entries hold: it stays until then.
  if (!imports_.empty()) (void)cudaStreamSynchronize(copy_stream_.get());
}

void cuda_backend::release(request_id request) noexcept {
  auto it = seqs_.find(request);
  if (it == seqs_.end()) return;
  // Blocks an import still writes are not handed on before it is done.
  if (importing_.count(request) != 0) {
    (void)cudaEventSynchronize(imports_.back().read.get());
    reap_imports();
  }
  for (std::int32_t b : it->second.table) free_.push_back(b);
  seqs_.erase(it);
}

status cuda_backend::grow(request_id id, std::uint32_t tokens) {
  sequence& s = seqs_[id];
  if (s.layer_tokens.empty()) s.layer_tokens.assign(shape_.layers, 0);
  const std::uint32_t need = (tokens + limits_.block_tokens - 1) / limits_.block_tokens;
  while (s.table.size() < need) {
    if (free_.empty()) return fail(errc::out_of_memory, "KV pool exhausted");
    s.table.push_back(free_.back());
    free_.pop_back();
  }
  return {};
}

}  // namespace accellm::device::cuda

namespace accellm::device::cuda {

status cuda_backend::check_item(const batch_item& it) const {
  const std::string at = "request " + std::to_string(it.request) + ": ";
  if (it.num_tokens == 0 || it.tokens.size() != it.num_tokens)
    return fail(errc::invalid_argument, at + "num_tokens must be positive and match tokens");
  if (it.kind == phase::decode && it.num_tokens != 1)
    return fail(errc::invalid_argument, at + "a decode item has exactly one token");
  for (token_id t : it.tokens)
    if (t < 0 || static_cast<std::uint32_t>(t) >= spec_.vocab)
      return fail(errc::out_of_range, at + "token id " + std::to_string(t) + " outside vocabulary");
  if (static_cast<std::uint64_t>(it.context) + it.num_tokens > limits_.max_context)
    return fail(errc::out_of_range, at + "context + num_tokens exceeds max_context");
  auto found = seqs_.find(it.request);
  if (found == seqs_.end()) {
    if (it.kind == phase::decode || it.context > 0) return fail(errc::not_found, at + "not cached");
    return {};
  }
  // What every layer holds; rows beyond it in some layers (a copy cut off
  // between two layers) are overwritten from there.
  const auto& lt = found->second.layer_tokens;
  const std::uint32_t cached = *std::min_element(lt.begin(), lt.end());
  if (cached != it.context)
    return fail(errc::invalid_argument, at + "context " + std::to_string(it.context) + " but " +
                                            std::to_string(cached) + " cached in every layer");
  return {};
}

status cuda_backend::check_batch(const batch& b) const {
  if (b.items.empty()) return fail(errc::invalid_argument, "empty batch");
  if (b.items.size() > limits_.max_items)
    return fail(errc::too_large, "batch of " + std::to_string(b.items.size()) +
                                     " requests exceeds max_batch " +
                                     std::to_string(limits_.max_items));
  std::uint64_t rows = 0, blocks = 0;
  std::unordered_set<request_id> seen;
  for (std::size_t i = 0; i < b.items.size(); ++i) {
    const batch_item& it = b.items[i];
    if (!seen.insert(it.request).second)
      return fail(errc::invalid_argument,
                  item_prefix(i) + ": request " + std::to_string(it.request) + " appears twice");
    if (auto ok = check_item(it); !ok) return std::move(ok).err().context(item_prefix(i));
    auto found = seqs_.find(it.request);
    const std::uint64_t have = found == seqs_.end() ? 0 : found->second.table.size();
    const std::uint64_t need =
        (it.context + it.num_tokens + limits_.block_tokens - 1) / limits_.block_tokens;
    blocks += need > have ? need - have : 0;
    rows += it.num_tokens;
  }
  if (rows > limits_.max_rows)
    return fail(errc::too_large, "batch of " + std::to_string(rows) + " tokens exceeds max_rows " +
                                     std::to_string(limits_.max_rows));
  if (blocks > free_.size())
    return fail(errc::out_of_memory, "batch needs " + std::to_string(blocks) + " KV blocks, " +
                                         std::to_string(free_.size()) + " free");
  return {};
}

void cuda_backend::build_plan(const batch& b) {
  plan_.clear();
  plan_.items = static_cast<std::uint32_t>(b.items.size());
  const std::uint32_t stride = limits_.table_stride();
  plan_.tables.assign(static_cast<std::size_t>(plan_.items) * stride, 0);
  // Tiles of the chosen kernel's height.
  const prefill_kernel kernel = forward_->prefill_kernel_choice().kernel;
  std::int32_t row = 0;
  for (std::uint32_t i = 0; i < plan_.items; ++i) {
    const batch_item& it = b.items[i];
    const sequence& s = seqs_.at(it.request);
    std::copy(s.table.begin(), s.table.end(), plan_.tables.begin() + std::size_t{i} * stride);
    const auto slot = static_cast<std::int32_t>(i);
    for (std::uint32_t j = 0; j < it.num_tokens; ++j) {
      plan_.tokens.push_back(it.tokens[j]);
      plan_.pos.push_back(static_cast<std::int32_t>(it.context + j));
      plan_.slot.push_back(slot);
    }
    if (it.num_tokens == 1) {
      const auto len = static_cast<std::int32_t>(it.context + 1);
      plan_.decodes.push_back(decode_item{row, slot, len});
      plan_.max_decode_length = std::max(plan_.max_decode_length, it.context + 1);
    } else {
      append_prefill_tiles(plan_.tiles, kernel, row, it.num_tokens, it.context, slot);
    }
    row += static_cast<std::int32_t>(it.num_tokens);
    if (it.wants_output) plan_.out_rows.push_back(row - 1);
  }
  sort_longest_first(plan_.tiles);
}

status cuda_backend::grow_batch(const batch& b) {
  ACCELLM_CUDA_TRY(cudaSetDevice(device_));
  for (const batch_item& it : b.items) ACCELLM_TRY(grow(it.request, it.context + it.num_tokens));
  return {};
}

result<iteration_result> cuda_backend::run(const batch& b) {
  ACCELLM_TRY(check_batch(b));
  ACCELLM_TRY(grow_batch(b));
  return run_checked(b, nullptr);
}

result<iteration_result> cuda_backend::run_checked(const batch& b, const layer_hooks* hooks) {
  ACCELLM_TRY(wait_for_imports(b));
  build_plan(b);
  auto out = forward_->run(plan_, hooks);
  if (!out) return std::move(out).err().context(name_);
  ACCELLM_CUDA_TRY(cudaEventRecord(compute_done_.get(), stream_.get()));
  for (const batch_item& it : b.items) {
    auto& lt = seqs_.at(it.request).layer_tokens;
    std::fill(lt.begin(), lt.end(), it.context + it.num_tokens);
  }
  iteration_result r;
  const double seconds =
      out->second * 1e-3 + allreduce_seconds(static_cast<std::uint32_t>(plan_.tokens.size()));
  r.duration = std::chrono::nanoseconds{static_cast<std::int64_t>(seconds * 1e9)};
  r.next_tokens.reserve(b.items.size());
  std::size_t k = 0;
  for (const batch_item& it : b.items)
    r.next_tokens.push_back(it.wants_output ? out->first[k++] : no_token);
  return r;
}

}  // namespace accellm::device::cuda

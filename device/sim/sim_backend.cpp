#include "device/sim/sim_backend.hpp"

#include <algorithm>
#include <unordered_set>
#include <utility>

namespace accellm::device::sim {
namespace {

std::string req(request_id r) {
  return "request " + std::to_string(r);
}

std::uint32_t max_of(const std::vector<std::uint32_t>& v) {
  return v.empty() ? 0 : *std::max_element(v.begin(), v.end());
}
std::uint32_t min_of(const std::vector<std::uint32_t>& v) {
  return v.empty() ? 0 : *std::min_element(v.begin(), v.end());
}

}  // namespace

token_id pseudo_token(request_id request, std::uint32_t position, std::uint32_t vocab) noexcept {
  // splitmix64 finaliser over (request, position): well mixed, stable.
  std::uint64_t z = request * 0x9E3779B97F4A7C15ull + position + 0x632BE59BD9B4E019ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  // z * vocab / 2^64: a fair index into the vocabulary without a division.
  __extension__ using u128 = unsigned __int128;
  return static_cast<token_id>((static_cast<u128>(z) * vocab) >> 64);
}

sim_backend::sim_backend(std::string name, model_spec model, std::unique_ptr<cost_model> cost,
                         kv_geometry kv)
    : name_(std::move(name)), model_(std::move(model)), cost_(std::move(cost)), kv_(kv) {}

std::uint64_t sim_backend::blocks_for(std::uint64_t tokens) const noexcept {
  return (tokens + kv_.block_tokens - 1) / kv_.block_tokens;
}

std::uint64_t sim_backend::slice_bytes(index_range layers, index_range tokens) const noexcept {
  return std::uint64_t{layers.size()} * tokens.size() *
         model_.kv_bytes_per_token_layer(kv_.kv_dtype);
}

status sim_backend::check_item(const batch_item& item) const {
  if (auto blocks = item_blocks(item); !blocks) return std::move(blocks).err();
  return {};
}

// Blocks the item adds, or why it cannot run.
result<std::uint64_t> sim_backend::item_blocks(const batch_item& item) const {
  if (auto shape = check_item_shape(item); !shape)
    return std::move(shape).err().context(req(item.request));
  if (!item.tokens.empty() && item.tokens.size() != item.num_tokens) {
    return fail(errc::invalid_argument,
                req(item.request) + ": " + std::to_string(item.tokens.size()) +
                    " token ids for num_tokens " + std::to_string(item.num_tokens));
  }
  const auto it = held_.find(item.request);
  if (it == held_.end() && (item.context > 0 || item.kind == phase::decode)) {
    return fail(errc::not_found, req(item.request) + " has no KV here (context " +
                                     std::to_string(item.context) + ")");
  }
  // What every layer holds; rows beyond it in some layers (a copy cut off
  // between two layers) are overwritten from there, as on real devices.
  const std::uint32_t cached = it == held_.end() ? 0 : min_of(it->second);
  if (item.context != cached) {
    return fail(errc::out_of_range, req(item.request) + ": context " +
                                        std::to_string(item.context) + " but " +
                                        std::to_string(cached) + " tokens cached in every layer");
  }
  const std::uint32_t held = it == held_.end() ? 0 : max_of(it->second);
  const std::uint64_t end = std::uint64_t{cached} + item.num_tokens;
  return blocks_for(std::max<std::uint64_t>(end, held)) - blocks_for(held);
}

result<iteration_result> sim_backend::run(const batch& b) {
  if (auto ok = check_batch_shape(b); !ok) return std::move(ok).err();
  std::unordered_set<request_id> seen;
  std::uint64_t new_blocks = 0;
  for (const batch_item& item : b.items) {
    if (!seen.insert(item.request).second) {
      return fail(errc::invalid_argument, req(item.request) + " appears twice in the batch");
    }
    auto blocks = item_blocks(item);
    if (!blocks) return std::move(blocks).err();
    new_blocks += *blocks;
  }
  if (used_blocks_ + new_blocks > kv_.total_blocks) {
    return fail(errc::out_of_memory, name_ + ": batch needs " + std::to_string(new_blocks) +
                                         " KV blocks, " +
                                         std::to_string(kv_.total_blocks - used_blocks_) +
                                         " free of " + std::to_string(kv_.total_blocks));
  }
  auto time = cost_->iteration_time(b);
  if (!time) return std::move(time).err();
  iteration_result out;
  out.duration = *time;
  for (const batch_item& item : b.items) {
    auto& layers = held_.try_emplace(item.request, model_.layers, 0u).first->second;
    const std::uint32_t end = item.context + item.num_tokens;
    // Blocks follow the layer holding most: rows cut off beyond `end` go.
    used_blocks_ = used_blocks_ + blocks_for(end) - blocks_for(max_of(layers));
    std::fill(layers.begin(), layers.end(), end);
    out.next_tokens.push_back(item.wants_output ? pseudo_token(item.request, end, model_.vocab)
                                                : no_token);
  }
  return out;
}

status sim_backend::check_slice(index_range layers, index_range tokens) const {
  if (layers.size() == 0 || layers.end > model_.layers) {
    return fail(errc::out_of_range, "layers [" + std::to_string(layers.begin) + ", " +
                                        std::to_string(layers.end) + ") not within the " +
                                        std::to_string(model_.layers) + " layers");
  }
  if (tokens.size() == 0) return fail(errc::out_of_range, "empty token range");
  return {};
}

result<kv_chunk> sim_backend::export_kv(request_id request, index_range layers,
                                        index_range tokens) {
  const auto it = held_.find(request);
  if (it == held_.end()) return fail(errc::not_found, req(request) + " has no KV here");
  if (auto ok = check_slice(layers, tokens); !ok) return std::move(ok).err().context(req(request));
  for (std::uint32_t l = layers.begin; l < layers.end; ++l) {
    if (tokens.end > it->second[l]) {
      return fail(errc::out_of_range, req(request) + ": layer " + std::to_string(l) + " holds " +
                                          std::to_string(it->second[l]) +
                                          " tokens, export asks up to " +
                                          std::to_string(tokens.end));
    }
  }
  return kv_chunk{request, layers, tokens, slice_bytes(layers, tokens), {}};
}

status sim_backend::import_kv(const kv_chunk& chunk) {
  const std::string who = req(chunk.request);
  if (auto ok = check_slice(chunk.layers, chunk.tokens); !ok)
    return std::move(ok).err().context(who);
  const std::uint64_t expected = slice_bytes(chunk.layers, chunk.tokens);
  if (chunk.bytes != expected || (!chunk.data.empty() && chunk.data.size() != expected)) {
    return fail(errc::invalid_argument, who + ": chunk carries " + std::to_string(chunk.bytes) +
                                            " bytes (" + std::to_string(chunk.data.size()) +
                                            " of data), the slice is " + std::to_string(expected));
  }
  const auto it = held_.find(chunk.request);
  std::vector<std::uint32_t> layers =
      it == held_.end() ? std::vector<std::uint32_t>(model_.layers, 0u) : it->second;
  for (std::uint32_t l = chunk.layers.begin; l < chunk.layers.end; ++l) {
    if (chunk.tokens.begin > layers[l]) {
      return fail(errc::out_of_range, who + ": layer " + std::to_string(l) + " holds " +
                                          std::to_string(layers[l]) + " tokens, chunk starts at " +
                                          std::to_string(chunk.tokens.begin));
    }
    layers[l] = std::max(layers[l], chunk.tokens.end);
  }
  const std::uint64_t before = it == held_.end() ? 0 : blocks_for(max_of(it->second));
  const std::uint64_t after = blocks_for(max_of(layers));
  if (used_blocks_ - before + after > kv_.total_blocks) {
    return fail(errc::out_of_memory, name_ + ": import of " + who + " needs " +
                                         std::to_string(after - before) + " more KV blocks");
  }
  used_blocks_ = used_blocks_ - before + after;
  held_[chunk.request] = std::move(layers);
  return {};
}

std::uint32_t sim_backend::cached_tokens(request_id request) const noexcept {
  const auto it = held_.find(request);
  return it == held_.end() ? 0 : min_of(it->second);
}

void sim_backend::release(request_id request) noexcept {
  const auto it = held_.find(request);
  if (it == held_.end()) return;
  used_blocks_ -= blocks_for(max_of(it->second));
  held_.erase(it);
}

}  // namespace accellm::device::sim

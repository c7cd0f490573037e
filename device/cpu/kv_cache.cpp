#include "device/cpu/kv_cache.hpp"

#include <algorithm>
#include <functional>
#include <string>

namespace accellm::device::cpu {

kv_cache::kv_cache(const kv_shape& shape)
    : shape_(shape),
      block_floats_(2ull * shape.layers * shape.block_tokens * shape.kv_width),
      pool_(block_floats_ * shape.blocks) {
  free_.reserve(shape.blocks);
  // Pushed in reverse so that block 0 is handed out first.
  for (std::uint64_t b = shape.blocks; b > 0; --b)
    free_.push_back(static_cast<std::uint32_t>(b - 1));
}

const kv_cache::sequence* kv_cache::find(request_id request) const noexcept {
  const auto it = sequences_.find(request);
  return it == sequences_.end() ? nullptr : &it->second;
}

kv_cache::sequence* kv_cache::find(request_id request) noexcept {
  const auto it = sequences_.find(request);
  return it == sequences_.end() ? nullptr : &it->second;
}

std::uint64_t kv_cache::extra_blocks(request_id request, std::uint32_t tokens) const noexcept {
  const std::uint64_t needed =
      (static_cast<std::uint64_t>(tokens) + shape_.block_tokens - 1) / shape_.block_tokens;
  const sequence* s = find(request);
  const std::uint64_t have = s ? s->table.size() : 0;
  return needed > have ? needed - have : 0;
}

result<kv_cache::sequence*> kv_cache::grow(request_id request, std::uint32_t tokens) {
  const std::uint64_t extra = extra_blocks(request, tokens);
  if (extra > free_.size())
    return fail(errc::out_of_memory, "kv pool exhausted: request " + std::to_string(request) +
                                         " needs " + std::to_string(extra) + " more blocks, " +
                                         std::to_string(free_.size()) + " free");
  auto [it, inserted] = sequences_.try_emplace(request);
  sequence& s = it->second;
  if (inserted) s.layer_tokens.assign(shape_.layers, 0);
  for (std::uint64_t i = 0; i < extra; ++i) {
    s.table.push_back(free_.back());
    free_.pop_back();
  }
  return &s;
}

void kv_cache::release(request_id request) noexcept {
  const auto it = sequences_.find(request);
  if (it == sequences_.end()) return;
  for (const std::uint32_t b : it->second.table) free_.push_back(b);
  sequences_.erase(it);
}

std::uint64_t kv_cache::row_offset(const sequence& s, std::uint32_t layer, std::uint32_t kind,
                                   std::uint32_t pos) const noexcept {
  const std::uint64_t block = s.table[pos / shape_.block_tokens];
  const std::uint64_t slot = pos % shape_.block_tokens;
  return block * block_floats_ +
         ((2ull * layer + kind) * shape_.block_tokens + slot) * shape_.kv_width;
}

float* kv_cache::k_row(const sequence& s, std::uint32_t layer, std::uint32_t pos) noexcept {
  return pool_.data() + row_offset(s, layer, 0, pos);
}

float* kv_cache::v_row(const sequence& s, std::uint32_t layer, std::uint32_t pos) noexcept {
  return pool_.data() + row_offset(s, layer, 1, pos);
}

const float* kv_cache::k_row(const sequence& s, std::uint32_t layer,
                             std::uint32_t pos) const noexcept {
  return pool_.data() + row_offset(s, layer, 0, pos);
}

const float* kv_cache::v_row(const sequence& s, std::uint32_t layer,
                             std::uint32_t pos) const noexcept {
  return pool_.data() + row_offset(s, layer, 1, pos);
}

kv_layer_view kv_cache::view(const sequence& s, std::uint32_t layer) const noexcept {
  return kv_layer_view{pool_.data(),        s.table.data(),
                       block_floats_,       2ull * layer * shape_.block_tokens * shape_.kv_width,
                       shape_.block_tokens, shape_.kv_width};
}

std::uint32_t kv_cache::complete_tokens(const sequence& s) noexcept {
  if (s.layer_tokens.empty()) return 0;
  return *std::min_element(s.layer_tokens.begin(), s.layer_tokens.end());
}

bool kv_cache::uniform(const sequence& s) noexcept {
  return std::adjacent_find(s.layer_tokens.begin(), s.layer_tokens.end(), std::not_equal_to<>{}) ==
         s.layer_tokens.end();
}

}  // namespace accellm::device::cpu

// cpu::kv_cache: a paged fp32 KV cache — a fixed pool of blocks, a free list,
// and one block table per request.
//
// A block holds `block_tokens` consecutive token positions of every layer:
//   block = [layers][2 (K, V)][block_tokens][kv_width] floats.
// Position p of a request lives in block table[p / block_tokens], slot
// p % block_tokens. A request's table grows as its tokens grow; blocks go back
// to the free list on release. Each layer counts its own cached tokens, so a
// replica can be filled layer by layer (import_kv) before it is complete.
//
// Thread contract: not thread-safe; owned and used by one cpu_backend.
#pragma once

#include "common/result.hpp"
#include "common/types.hpp"

#include <cstdint>
#include <unordered_map>
#include <vector>

namespace accellm::device::cpu {

/// Pool dimensions.
struct kv_shape {
  std::uint32_t layers = 0;
  std::uint32_t kv_width = 0;  ///< floats of K (and of V) per token per layer
  std::uint32_t block_tokens = 16;
  std::uint64_t blocks = 0;  ///< pool capacity
};

/// One layer of one request's cache, for the attention kernel. The K row of
/// position p is block_k(p / block_tokens) + (p % block_tokens) * kv_width;
/// its V row is v_shift() floats further.
struct kv_layer_view {
  const float* pool = nullptr;
  const std::uint32_t* table = nullptr;
  std::uint64_t block_floats = 0;  ///< floats per block (all layers)
  std::uint64_t k_offset = 0;      ///< offset of this layer's K inside a block
  std::uint32_t block_tokens = 0;
  std::uint32_t kv_width = 0;

  /// First float of this layer's K rows in the request's `block_index`-th
  /// block; the V rows start v_shift() floats later.
  const float* block_k(std::uint32_t block_index) const noexcept {
    return pool + table[block_index] * block_floats + k_offset;
  }
  /// Distance from a block's K rows of this layer to its V rows.
  std::uint64_t v_shift() const noexcept {
    return static_cast<std::uint64_t>(block_tokens) * kv_width;
  }
};

class kv_cache {
 public:
  /// One request's cache: its block table and the tokens each layer holds.
  struct sequence {
    std::vector<std::uint32_t> table;
    std::vector<std::uint32_t> layer_tokens;
  };

  /// Allocates the whole pool (zeroed) up front.
  explicit kv_cache(const kv_shape& shape);

  const kv_shape& shape() const noexcept { return shape_; }
  std::uint64_t free_blocks() const noexcept { return free_.size(); }

  /// The request's cache, or nullptr when unknown.
  const sequence* find(request_id request) const noexcept;
  sequence* find(request_id request) noexcept;

  /// Blocks that must be added so that `request` can hold positions [0, tokens).
  std::uint64_t extra_blocks(request_id request, std::uint32_t tokens) const noexcept;

  /// Creates the request's cache if new and grows its table to hold [0, tokens).
  /// Fails with errc::out_of_memory, changing nothing, when the pool is short.
  /// The returned pointer stays valid until release(request).
  result<sequence*> grow(request_id request, std::uint32_t tokens);

  /// Frees the request's blocks; unknown ids are ignored.
  void release(request_id request) noexcept;

  /// K (or V) row of `layer` at position `pos`; `pos` must be inside the table.
  float* k_row(const sequence& s, std::uint32_t layer, std::uint32_t pos) noexcept;
  float* v_row(const sequence& s, std::uint32_t layer, std::uint32_t pos) noexcept;
  const float* k_row(const sequence& s, std::uint32_t layer, std::uint32_t pos) const noexcept;
  const float* v_row(const sequence& s, std::uint32_t layer, std::uint32_t pos) const noexcept;

  /// View of one layer for attention; valid until the table changes.
  kv_layer_view view(const sequence& s, std::uint32_t layer) const noexcept;

  /// Tokens held in every layer: the minimum over layers.
  static std::uint32_t complete_tokens(const sequence& s) noexcept;
  /// True when every layer holds the same number of tokens.
  static bool uniform(const sequence& s) noexcept;

 private:
  std::uint64_t row_offset(const sequence& s, std::uint32_t layer, std::uint32_t kind,
                           std::uint32_t pos) const noexcept;

  kv_shape shape_;
  std::uint64_t block_floats_;
  std::vector<float> pool_;
  std::vector<std::uint32_t> free_;  // LIFO: the most recently freed block is reused first
  std::unordered_map<request_id, sequence> sequences_;
};

}  // namespace accellm::device::cpu

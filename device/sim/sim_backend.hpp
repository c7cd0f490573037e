// sim_backend: a device::backend with no tensors. run() returns the duration
// a cost_model predicts and deterministic pseudo tokens; the KV cache is
// bookkeeping only (tokens held per request and layer, blocks used), so that
// a simulated cluster exercises the same capacity limits, context checks and
// layer-wise KV export/import as a real one.
//
// Pseudo tokens depend only on (request id, position): whichever instance
// decodes a request, and in whatever batch, produces the same tokens, as the
// real backends' greedy decoding does.
//
// Thread contract: one thread at a time (device::backend's contract).
#pragma once

#include "device/backend.hpp"
#include "device/sim/cost_model.hpp"

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace accellm::device::sim {

/// The token a simulated model emits for `request` at `position`, in
/// [0, vocab). Deterministic; vocab must be > 0.
token_id pseudo_token(request_id request, std::uint32_t position, std::uint32_t vocab) noexcept;

class sim_backend final : public backend {
 public:
  /// `name` is what name() returns ("sim:h100"); `cost` times iterations;
  /// `kv` gives the block size and pool size (total_blocks) to enforce.
  /// Precondition: cost != nullptr, kv.block_tokens > 0.
  sim_backend(std::string name, model_spec model, std::unique_ptr<cost_model> cost, kv_geometry kv);

  std::string_view name() const noexcept override { return name_; }
  const model_spec& model() const noexcept override { return model_; }
  kv_geometry kv() const noexcept override { return kv_; }

  /// Errors (nothing changes on error): invalid_argument for a malformed
  /// item (see cost_model::estimate, a request twice in one batch, token ids
  /// of the wrong count); not_found for a request with context > 0 or a
  /// decode that this backend has no KV for; out_of_range when `context`
  /// differs from the cached tokens or the request's layers are unevenly
  /// filled; out_of_memory when the new tokens need more blocks than are free.
  result<iteration_result> run(const batch& b) override;
  status check_item(const batch_item& item) const override;

  /// `bytes` = layers x tokens x the model's KV bytes per token and layer
  /// (whole instance, every KV head once); `data` is empty.
  result<kv_chunk> export_kv(request_id request, index_range layers, index_range tokens) override;

  /// Accepts chunks that extend each layer without a gap (tokens.begin <=
  /// tokens held in that layer). `bytes` must match the slice's size and
  /// `data` must be empty or that size. out_of_memory when the grown request
  /// needs more blocks than are free.
  status import_kv(const kv_chunk& chunk) override;

  std::uint32_t cached_tokens(request_id request) const noexcept override;
  void release(request_id request) noexcept override;

  /// KV blocks held by all requests.
  std::uint64_t used_blocks() const noexcept { return used_blocks_; }
  const cost_model& cost() const noexcept { return *cost_; }

 private:
  std::uint64_t blocks_for(std::uint64_t tokens) const noexcept;
  std::uint64_t slice_bytes(index_range layers, index_range tokens) const noexcept;
  result<std::uint64_t> item_blocks(const batch_item& item) const;
  status check_slice(index_range layers, index_range tokens) const;

  std::string name_;
  model_spec model_;
  std::unique_ptr<cost_model> cost_;
  kv_geometry kv_;
  /// Per request: tokens held in each layer (size model_.layers).
  std::unordered_map<request_id, std::vector<std::uint32_t>> held_;
  std::uint64_t used_blocks_ = 0;
};

}  // namespace accellm::device::sim

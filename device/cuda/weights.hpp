// cuda::weights: the bf16 parameters of one tensor-parallel shard of a
// Llama-family model, drawn on the device from a seed.
//
// With tp == 1 every tensor is exactly the bf16 rounding of device/cpu's fp32
// tensor for the same (spec, seed): same layout ([out x in] row-major, fused
// Q/K/V and gate/up) and the same per-tensor splitmix64 streams
// (fill_stream). That is what lets the tests compare the two backends token
// for token. A shard (tp > 1) holds heads/tp query heads, kv_heads/tp KV
// heads, ffn/tp of the MLP and vocab/tp of the LM head (Megatron-style
// column/row split); its values come from the same streams, so they are
// sized like the real shard but are not a slice of the tp == 1 tensors.
//
// Resource type: owns device memory; move-only; one thread at a time.
#pragma once

#include "common/result.hpp"
#include "device/cuda/paged_kv.hpp"
#include "device/cuda/runtime.hpp"
#include "device/model_spec.hpp"

#include <cuda_bf16.h>

#include <cstdint>
#include <vector>

namespace accellm::device::cuda {

/// Per-shard sizes of a model at tensor-parallel degree tp.
struct shard_shape {
  std::uint32_t tp = 1;
  std::uint32_t hidden = 0;
  attn_shape attn;          ///< heads and kv_heads of this shard
  std::uint32_t ffn = 0;    ///< ffn / tp
  std::uint32_t vocab = 0;  ///< LM-head rows of this shard: vocab / tp
  std::uint32_t layers = 0;
  std::uint32_t qkv_width() const noexcept { return attn.q_width() + 2 * attn.kv_width(); }
};

/// Checks that `spec` can be split tp ways and run by the kernels (head_dim
/// 16..256 and a power of two, heads/kv_heads in {1, 2, 4, 8}, kv_heads,
/// heads, ffn and vocab divisible by tp); invalid_argument otherwise.
result<shard_shape> make_shard_shape(const model_spec& spec, std::uint32_t tp);

struct layer_weights {
  device_buffer<__nv_bfloat16> attn_norm, wqkv, wo, mlp_norm, wgate_up, wdown;
};

struct weights {
  device_buffer<__nv_bfloat16> embedding, final_norm, lm_head;
  std::vector<layer_weights> layers;
  /// Bytes of all tensors.
  std::uint64_t bytes() const noexcept;
  /// Bytes a decode step reads: every tensor but the embedding (one row per
  /// token is read from it).
  std::uint64_t streamed_bytes() const noexcept;
};

/// Allocates and draws all tensors on stream `s` (asynchronously).
result<weights> make_weights(const shard_shape& shape, std::uint64_t seed, cudaStream_t s);

}  // namespace accellm::device::cuda

// The two ends of the model: embedding lookup (bf16 table -> fp32 residual
// stream) and greedy sampling (argmax of fp32 logits, ties to the lowest id,
// as device/cpu).
#pragma once

#include "common/result.hpp"

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace accellm::device::cuda {

/// x[r] = table[tokens[r]] for `rows` rows of width `d`. Token ids must be in
/// range (the backend checks them on the host).
status embed(const __nv_bfloat16* table, const std::int32_t* tokens, std::uint32_t rows,
             std::uint32_t d, float* x, cudaStream_t s);

/// out[r] = argmax of logits row r ([rows x vocab]); the lowest index wins ties.
status argmax_rows(const float* logits, std::uint32_t rows, std::uint32_t vocab, std::int32_t* out,
                   cudaStream_t s);

}  // namespace accellm::device::cuda

// rmsnorm: y = x / sqrt(mean(x^2) + eps) * gain, fp32 in, bf16 out (the GEMM
// operand), statistics in fp32. Matches device/cpu's rmsnorm up to bf16
// rounding of the output.
#pragma once

#include "common/result.hpp"

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace accellm::device::cuda {

/// Normalises `rows` rows of `n` floats. Row i of the output reads input row
/// `gather[i]` when `gather` is given (the LM head normalises only the rows
/// that want a token), else row i. Fails on n == 0 or null pointers.
status rmsnorm(const float* x, const __nv_bfloat16* gain, std::uint32_t rows, std::uint32_t n,
               float eps, const std::int32_t* gather, __nv_bfloat16* out, cudaStream_t s);

}  // namespace accellm::device::cuda

// gemm: the model's linear layers through cuBLAS, bf16 operands with fp32
// accumulation. Weights are stored as device/cpu stores them, row-major
// [out x in]; activations are row-major [rows x in]. In cuBLAS's column-major
// terms y^T = W x^T is a "TN" product, its fastest bf16 layout.
#pragma once

#include "common/result.hpp"

#include <cublas_v2.h>
#include <cuda_bf16.h>

#include <cstdint>

namespace accellm::device::cuda {

/// Element type of a GEMM's output.
enum class gemm_out : std::uint8_t { fp32, bf16 };

/// y[rows x out] = x[rows x in] * w[out x in]^T + beta * y. With beta = 1 and
/// an fp32 y this adds the projection onto the residual stream in one pass.
/// Fails on zero sizes or a cuBLAS error.
status gemm(cublasHandle_t h, const __nv_bfloat16* x, std::uint32_t rows, std::uint32_t in,
            const __nv_bfloat16* w, std::uint32_t out, void* y, gemm_out type, float beta);

}  // namespace accellm::device::cuda

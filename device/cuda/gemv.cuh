// gemv: the linear layers for the few-row iterations of small decode
// batches (1..8 rows), where cuBLAS's GEMM kernels leave HBM bandwidth
// unused. Same contract as gemm() (gemm.hpp): y[rows x out] = x[rows x in] *
// w[out x in]^T + beta * y, bf16 operands, fp32 accumulation and fp32 y.
// Each warp streams four weight rows with 16-byte loads and keeps the
// products of every input row in registers; x (at most 8 x in bf16) comes
// through L1.
#pragma once

#include "common/result.hpp"

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace accellm::device::cuda {

inline constexpr std::uint32_t gemv_max_rows = 8;

/// Fails (invalid_argument) on rows > gemv_max_rows, `in` not a multiple of
/// 8, zero sizes or null pointers.
status gemv(const __nv_bfloat16* x, std::uint32_t rows, std::uint32_t in, const __nv_bfloat16* w,
            std::uint32_t out, float* y, float beta, cudaStream_t s);

}  // namespace accellm::device::cuda

// bench_gpu_ceilings helper: how fast the best cuBLASLt algorithm runs a
// product of the model's shape, against cublasGemmEx's default choice.
// Times every algorithm cuBLASLt's heuristic offers (up to 16) and returns
// the fastest time in ms (0 when none ran). y is fp32 or bf16 (`type`);
// beta != 0 accumulates into it, as the model's residual products do.
#pragma once

#include "device/cuda/gemm.hpp"

#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace accellm::bench {

float best_lt_ms(const __nv_bfloat16* x, std::uint32_t rows, std::uint32_t in,
                 const __nv_bfloat16* w, std::uint32_t out, void* y, void* workspace,
                 std::size_t workspace_bytes, cudaStream_t s, int* algos_tried,
                 device::cuda::gemm_out type = device::cuda::gemm_out::fp32, float beta = 0.0f);

}  // namespace accellm::bench
